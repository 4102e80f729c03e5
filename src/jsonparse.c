/*
 * jsonparse.c — yajl's callback parser building jr_json nodes in an arena.
 *
 * yajl_tree would build its own tree with a malloc per node, which we would
 * then copy; the callbacks here allocate each node once, in the arena of the
 * event that will own it. A stack of open containers (max_depth + 1 slots,
 * also in the arena) tracks where the next value goes; the pending object key
 * waits in the context until its value arrives. A container deeper than
 * max_depth cancels the parse, so a hostile document cannot recurse us (or
 * later json_write) deep.
 */
#include "jsonparse.h"

#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

typedef struct jp_ctx {
	jr_arena *a;
	jr_json **stack; /* open containers; stack[depth - 1] is the innermost */
	int depth, max_depth;
	jr_json *root;
	const char *key; /* pending object key (in the arena) */
	size_t klen;
	int too_deep;
} jp_ctx;

/* put: attaches v to the innermost container, or makes it the root. */
static int put(jp_ctx *c, jr_json *v)
{
	if (c->depth == 0) {
		c->root = v;
		return 1;
	}
	jr_json *top = c->stack[c->depth - 1];
	if (top->type == JR_JSON_OBJECT)
		json_obj_add(c->a, top, c->key, c->klen, v);
	else
		json_arr_add(c->a, top, v);
	return 1;
}

static int on_null(void *ctx)
{
	jp_ctx *c = ctx;
	return put(c, json_new(c->a, JR_JSON_NULL));
}

static int on_bool(void *ctx, int b)
{
	jp_ctx *c = ctx;
	return put(c, json_new(c->a, b ? JR_JSON_TRUE : JR_JSON_FALSE));
}

static int on_number(void *ctx, const char *s, size_t n)
{
	jp_ctx *c = ctx;
	jr_json *v = json_new_string(c->a, s, n);
	v->type = JR_JSON_NUMBER;
	return put(c, v);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	jp_ctx *c = ctx;
	return put(c, json_new_string(c->a, (const char *)s, n));
}

static int open_container(jp_ctx *c, jr_json_type t)
{
	if (c->depth >= c->max_depth) {
		c->too_deep = 1;
		return 0;
	}
	jr_json *v = json_new(c->a, t);
	put(c, v);
	c->stack[c->depth++] = v;
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, JR_JSON_OBJECT);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, JR_JSON_ARRAY);
}

static int on_key(void *ctx, const unsigned char *s, size_t n)
{
	jp_ctx *c = ctx;
	c->key = arena_strndup(c->a, (const char *)s, n);
	c->klen = n;
	return 1;
}

static int on_end(void *ctx)
{
	jp_ctx *c = ctx;
	c->depth--;
	return 1;
}

static const yajl_callbacks jp_callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end,
};

/* yajl_reason: yajl's error text without its "parse error: " prefix and newline. */
static void yajl_reason(yajl_handle h, const char *text, size_t len, char *out, size_t outlen)
{
	unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)text, len);
	const char *s = (const char *)e;
	const char *colon = s ? strstr(s, "error: ") : NULL;
	if (colon)
		s = colon + 7;
	size_t n = s ? strcspn(s, "\n") : 0;
	snprintf(out, outlen, "%.*s", (int)n, s ? s : "");
	if (e)
		yajl_free_error(h, e);
}

/* report: turns a failed parse into a reason; off is where text began in the input. */
static void report(yajl_handle h, jp_ctx *c, const char *text, size_t len, size_t off,
		   int at_end, char *err, size_t errlen)
{
	size_t at = off + (at_end ? len : yajl_get_bytes_consumed(h));
	if (!err || !errlen)
		return;
	if (c->too_deep) {
		snprintf(err, errlen, "nesting deeper than %d", c->max_depth);
		return;
	}
	if (c->root && c->depth == 0) {
		snprintf(err, errlen, "trailing data after the value at byte %zu", at);
		return;
	}
	char why[128];
	yajl_reason(h, text, len, why, sizeof why);
	snprintf(err, errlen, "invalid JSON at byte %zu: %s", at, why);
}

static size_t skip_bom(const char *text, size_t len)
{
	return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

jr_json *jsonparse(jr_arena *a, const char *text, size_t len, int max_depth,
		   char *err, size_t errlen)
{
	size_t off = skip_bom(text, len);
	text += off;
	len -= off;
	if (max_depth < 1)
		max_depth = 1;
	jp_ctx c = { .a = a, .max_depth = max_depth };
	c.stack = arena_alloc(a, (size_t)max_depth * sizeof *c.stack);
	yajl_handle h = yajl_alloc(&jp_callbacks, NULL, &c);
	yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
	int at_end = st == yajl_status_ok;
	if (at_end)
		st = yajl_complete_parse(h);
	if (st == yajl_status_ok && !c.root) {
		if (err && errlen)
			snprintf(err, errlen, "invalid JSON at byte %zu: no value", off + len);
		st = yajl_status_error;
	} else if (st != yajl_status_ok) {
		report(h, &c, text, len, off, at_end, err, errlen);
	}
	yajl_free(h);
	return st == yajl_status_ok ? c.root : NULL;
}
