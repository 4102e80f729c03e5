/*
 * jsonparse.c — yajl's callback parser building jr_json nodes in an arena.
 *
 * yajl_tree would build its own tree with a malloc per node, which we would
 * then copy; the callbacks here allocate each node once, in the arena of the
 * event that will own it. The members of the open containers wait on a stack
 * (keys, lengths and values, innermost container last) until their container
 * closes; it then gets them all at once (json_set_members), so member arrays
 * are allocated once, not regrown by doubling. The stacks start in the parse
 * context (enough for typical events) and move to the heap when they must
 * grow; the pending object key waits in the context until its value arrives.
 *
 * Strings are parsed in place, in a copy: the document is copied into the
 * arena once, and a key, string or number that yajl hands over as a pointer
 * into the document (it does unless the string had escapes) becomes a
 * pointer to the same bytes in the copy, NUL-terminated by overwriting the
 * byte after it (its closing quote, or the delimiter after a number), which
 * no other value uses. The rest (decoded escapes, a number yajl buffered) is
 * copied on its own. One copy per document instead of one per string.
 * A container deeper than max_depth cancels the parse, so a hostile document
 * cannot recurse us (or later json_write) deep.
 *
 * Most documents take a faster path first (fast_parse): a small tokenizer
 * for plain JSON — ASCII strings without escapes, the JSON number grammar,
 * true/false/null, the four JSON whitespace bytes — that drives the same
 * callbacks as yajl would, in the same order, so it builds the same tree.
 * At the first thing it does not handle (an escape, a non-ASCII or control
 * byte, any syntax error, a container too deep) it gives up, and the whole
 * document is parsed again by yajl from a fresh copy: escapes, UTF-8
 * validation, every error and its message stay yajl's. It costs yajl's
 * lexer and one allocation of yajl's per token on the common path.
 *
 * Strings are held to RFC 3629 (src/base/utf8.h) on top of yajl's looser
 * check, and a \\u escape of half a surrogate pair without its other half is
 * an error (yajl would write '?' or pair it with any escape that follows).
 * The fast path takes ASCII only, so it never meets either.
 */
#include "jsonparse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "utf8.h"

#define JP_MEMBERS 64 /* members held in the context before the heap is used */
#define JP_OPEN 16    /* open containers held in the context */

typedef struct jp_ctx {
	jr_arena *a;
	const char *text; /* the document yajl parses */
	char *copy;       /* its copy in the arena (one byte longer, for a NUL) */
	size_t len;
	/* members of the open containers, innermost last: three parallel stacks */
	const char **keys;
	size_t *klens;
	jr_json **items;
	size_t n, cap;
	/* open containers, and where each one's members start on the stacks */
	jr_json **open;
	size_t *first;
	int depth, open_cap, max_depth;
	jr_json *root;
	const char *key; /* pending object key (in the arena) */
	size_t klen;
	int too_deep;
	yajl_handle h;      /* while yajl parses: for the offset of a bad string */
	size_t bad_at;      /* a string that is not valid UTF-8 ends before this byte; 0: none */
	const char *keys0[JP_MEMBERS];
	size_t klens0[JP_MEMBERS];
	jr_json *items0[JP_MEMBERS];
	jr_json *open0[JP_OPEN];
	size_t first0[JP_OPEN];
} jp_ctx;

/* grow: array p of n elements, doubled; p moves off its inline storage first. */
static void *grow(void *p, const void *inline_storage, size_t n, size_t elem)
{
	if (p != inline_storage)
		return jr_realloc(p, 2 * n * elem);
	void *q = jr_malloc(2 * n * elem);
	memcpy(q, p, n * elem);
	return q;
}

static void release(void *p, const void *inline_storage)
{
	if (p != inline_storage)
		free(p);
}

/* put: pushes v as a member of the innermost container, or makes it the root. */
static int put(jp_ctx *c, jr_json *v)
{
	if (c->depth == 0) {
		c->root = v;
		return 1;
	}
	if (c->n == c->cap) {
		c->keys = grow(c->keys, c->keys0, c->cap, sizeof *c->keys);
		c->klens = grow(c->klens, c->klens0, c->cap, sizeof *c->klens);
		c->items = grow(c->items, c->items0, c->cap, sizeof *c->items);
		c->cap *= 2;
	}
	c->keys[c->n] = c->key; /* not read for array members */
	c->klens[c->n] = c->klen;
	c->items[c->n] = v;
	c->n++;
	return 1;
}

/* own: s[0..n) as a NUL-terminated string in the arena, in place in the copy when it can. */
static const char *own(jp_ctx *c, const char *s, size_t n)
{
	uintptr_t p = (uintptr_t)s, t = (uintptr_t)c->text;
	if (p >= t && n <= c->len && p - t <= c->len - n) {
		char *d = c->copy + (p - t);
		d[n] = '\0';
		return d;
	}
	return arena_strndup(c->a, s, n);
}

static jr_json *scalar(jp_ctx *c, jr_json_type t, const char *s, size_t n)
{
	jr_json *v = json_new(c->a, t);
	v->s = own(c, s, n);
	v->n = n;
	return v;
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
	return put(c, scalar(c, JR_JSON_NUMBER, s, n));
}

/*
 * strict: whether a string yajl decoded is valid UTF-8 (RFC 3629). yajl's
 * own check takes overlong forms, surrogates and code points past U+10FFFF
 * (and its \\u decoding writes a lone low surrogate as one); those stop the
 * parse here, so no tree ever holds them.
 */
static int strict(jp_ctx *c, const unsigned char *s, size_t n)
{
	if (!c->h || utf8_valid((const char *)s, n)) /* the fast path's strings are printable ASCII */
		return 1;
	c->bad_at = c->h ? yajl_get_bytes_consumed(c->h) : 1;
	if (c->bad_at == 0)
		c->bad_at = 1;
	return 0;
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	jp_ctx *c = ctx;
	if (!strict(c, s, n))
		return 0;
	return put(c, scalar(c, JR_JSON_STRING, (const char *)s, n));
}

static int open_container(jp_ctx *c, jr_json_type t)
{
	if (c->depth >= c->max_depth) {
		c->too_deep = 1;
		return 0;
	}
	jr_json *v = json_new(c->a, t);
	put(c, v);
	if (c->depth == c->open_cap) {
		size_t n = (size_t)c->open_cap;
		c->open = grow(c->open, c->open0, n, sizeof *c->open);
		c->first = grow(c->first, c->first0, n, sizeof *c->first);
		c->open_cap *= 2;
	}
	c->open[c->depth] = v;
	c->first[c->depth] = c->n;
	c->depth++;
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
	if (!strict(c, s, n))
		return 0;
	c->key = own(c, (const char *)s, n);
	c->klen = n;
	return 1;
}

/* on_end: the innermost container closes and takes its members off the stacks. */
static int on_end(void *ctx)
{
	jp_ctx *c = ctx;
	c->depth--;
	size_t f = c->first[c->depth];
	json_set_members(c->a, c->open[c->depth], c->n - f, c->keys + f, c->klens + f,
			 c->items + f);
	c->n = f;
	return 1;
}

/* ---- the fast path ---- */

/* plain_byte: c may appear unescaped in a string the fast path takes (printable ASCII but '"' and '\\'). */
static int plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Eight copies of byte c in a word, and the word's high bits. */
#define BYTES(c) (0x0101010101010101ULL * (c))
#define HIGH BYTES(0x80)

/*
 * not_plain: the high bit of each byte of w that is not plain_byte. A byte
 * below 0x20 or equal to '"', '\\' or 0x7f is found with the has-less and
 * has-zero bit tricks (XOR with those leaves each byte's high bit alone, so
 * they share ~w & HIGH), a byte of 0x80 or more by its high bit. The tricks
 * can flag a byte above one that really is flagged, never below it, so the
 * lowest bit set is exact.
 */
static uint64_t not_plain(uint64_t w)
{
	uint64_t q = w ^ BYTES('"'), b = w ^ BYTES('\\'), d = w ^ BYTES(0x7f);
	uint64_t low = (w - BYTES(0x20)) | (q - BYTES(1)) | (b - BYTES(1)) | (d - BYTES(1));
	return ((low & ~w) | w) & HIGH;
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* plain_string: the end of the plain string whose contents start at p (its closing quote), or NULL. */
static const unsigned char *plain_string(const unsigned char *p, const unsigned char *end)
{
	uint64_t w, bad;
	for (; end - p >= 8; p += 8) {
		memcpy(&w, p, 8);
		if ((bad = not_plain(w)) != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			p += __builtin_ctzll(bad) / 8; /* the first byte that is not plain */
#endif
			break;
		}
	}
	while (p < end && plain_byte(*p))
		p++;
	return p < end && *p == '"' ? p : NULL;
}

static const unsigned char *digits(const unsigned char *p, const unsigned char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* number: the end of the JSON number starting at p, or NULL when none starts there. */
static const unsigned char *number(const unsigned char *p, const unsigned char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p == end || *p < '0' || *p > '9')
		return NULL;
	p = *p == '0' ? p + 1 : digits(p, end);
	if (p < end && *p == '.') {
		const unsigned char *f = digits(p + 1, end);
		if (f == p + 1)
			return NULL;
		p = f;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		const unsigned char *e = digits(p, end);
		if (e == p)
			return NULL;
		p = e;
	}
	return p;
}

/* literal: p + n when the n bytes at p are word, else NULL. */
static const unsigned char *literal(const unsigned char *p, const unsigned char *end,
				    const char *word, size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* fast_value: the value starting at p through the callbacks; the byte after it, or NULL. */
static const unsigned char *fast_value(jp_ctx *c, const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q;
	switch (*p) {
	case '{':
		return open_container(c, JR_JSON_OBJECT) ? p + 1 : NULL;
	case '[':
		return open_container(c, JR_JSON_ARRAY) ? p + 1 : NULL;
	case '"':
		if (!(q = plain_string(p + 1, end)))
			return NULL;
		on_string(c, p + 1, (size_t)(q - p - 1));
		return q + 1;
	case 't':
		return (q = literal(p, end, "true", 4)) && on_bool(c, 1) ? q : NULL;
	case 'f':
		return (q = literal(p, end, "false", 5)) && on_bool(c, 0) ? q : NULL;
	case 'n':
		return (q = literal(p, end, "null", 4)) && on_null(c) ? q : NULL;
	default:
		if (!(q = number(p, end)))
			return NULL;
		on_number(c, (const char *)p, (size_t)(q - p));
		return q;
	}
}

/* in_object: the innermost open container is an object. */
static int in_object(const jp_ctx *c)
{
	return c->open[c->depth - 1]->type == JR_JSON_OBJECT;
}

/*
 * fast_parse: the whole document through the callbacks, as yajl would call
 * them; 0 when it meets anything it leaves to yajl (see the top).
 */
static int fast_parse(jp_ctx *c)
{
	const unsigned char *p = (const unsigned char *)c->text, *end = p + c->len, *q;
	enum { VALUE, KEY, AFTER } want = VALUE;
	for (;;) {
		p = skip_ws(p, end);
		if (want == AFTER && c->depth == 0)
			return p == end;
		if (p == end)
			return 0;
		switch (want) {
		case VALUE:
			if (!(p = fast_value(c, p, end)))
				return 0;
			want = AFTER;
			if (p[-1] == '{' || p[-1] == '[') {
				/* a container just opened: its first key or value, or its end */
				const unsigned char *e = skip_ws(p, end);
				if (e < end && *e == (p[-1] == '{' ? '}' : ']')) {
					on_end(c);
					p = e + 1;
				} else {
					want = p[-1] == '{' ? KEY : VALUE;
				}
			}
			break;
		case KEY:
			if (*p != '"' || !(q = plain_string(p + 1, end)))
				return 0;
			on_key(c, (const unsigned char *)p + 1, (size_t)(q - p - 1));
			p = skip_ws(q + 1, end);
			if (p == end || *p != ':')
				return 0;
			p++;
			want = VALUE;
			break;
		case AFTER:
			if (*p == ',') {
				want = in_object(c) ? KEY : VALUE;
			} else if (*p == (in_object(c) ? '}' : ']')) {
				on_end(c);
			} else {
				return 0;
			}
			p++;
			break;
		}
	}
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
	if (c->bad_at) {
		snprintf(err, errlen, "invalid UTF-8 in the string ending at byte %zu", off + c->bad_at);
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

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return 0;
		*v = *v << 4 | (unsigned)d;
	}
	return 1;
}

/*
 * surrogates_at: the offset of the first \uD800-\uDFFF escape in text that is
 * not half of a high-low pair, or len. yajl turns a lone high surrogate into
 * '?' and pairs a high one with whatever escape follows; so a document yajl
 * took is checked here (backslashes occur only inside its strings).
 */
static size_t surrogates_at(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		unsigned v, w;
		if (end - p < 6 || p[1] != 'u' || !hex4(p + 2, &v)) {
			p += end - p < 2 ? end - p : 2; /* never past the end (yajl refuses a lone '\\' anyway) */
			continue;
		}
		if (v >= 0xDC00 && v <= 0xDFFF)
			return (size_t)(p - text);
		if (v >= 0xD800 && v <= 0xDBFF) {
			if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &w) ||
			    w < 0xDC00 || w > 0xDFFF)
				return (size_t)(p - text);
			p += 12;
			continue;
		}
		p += 6;
	}
	return len;
}

static size_t skip_bom(const char *text, size_t len)
{
	return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* parse: jsonparse, with the fast path tried first when fast is set. */
static jr_json *parse(jr_arena *a, const char *text, size_t len, int max_depth, char *err,
		      size_t errlen, int fast)
{
	size_t off = skip_bom(text, len);
	text += off;
	len -= off;
	if (max_depth < 1)
		max_depth = 1;
	jp_ctx c;
	c.a = a;
	c.text = text;
	c.copy = arena_strndup(a, text, len);
	c.len = len;
	c.keys = c.keys0;
	c.klens = c.klens0;
	c.items = c.items0;
	c.n = 0;
	c.cap = JP_MEMBERS;
	c.open = c.open0;
	c.first = c.first0;
	c.depth = 0;
	c.open_cap = JP_OPEN;
	c.max_depth = max_depth;
	c.root = NULL;
	c.key = NULL;
	c.klen = 0;
	c.too_deep = 0;
	c.h = NULL;
	c.bad_at = 0;
	if (fast && fast_parse(&c))
		goto done;
	/* left to yajl: start again from a fresh copy (the fast path wrote NULs into it) */
	memcpy(c.copy, text, len);
	c.n = 0;
	c.depth = 0;
	c.root = NULL;
	c.key = NULL;
	c.klen = 0;
	c.too_deep = 0;
	yajl_handle h = yajl_alloc(&jp_callbacks, NULL, &c);
	c.h = h;
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
	} else {
		size_t at = surrogates_at(text, len);
		if (at < len) {
			/* the escape's text, never past the end (text need not be NUL-terminated) */
			size_t left = len - at - 1;
			int show = left < 6 ? (int)left : 6;
			if (err && errlen)
				snprintf(err, errlen,
					 "invalid JSON at byte %zu: unpaired surrogate escape \\%.*s",
					 off + at, show, text + at + 1);
			st = yajl_status_error;
		}
	}
	yajl_free(h);
	if (st != yajl_status_ok)
		c.root = NULL;
done:
	release(c.keys, c.keys0);
	release(c.klens, c.klens0);
	release(c.items, c.items0);
	release(c.open, c.open0);
	release(c.first, c.first0);
	return c.root;
}

jr_json *jsonparse(jr_arena *a, const char *text, size_t len, int max_depth,
		   char *err, size_t errlen)
{
	return parse(a, text, len, max_depth, err, errlen, 1);
}

jr_json *jsonparse_yajl(jr_arena *a, const char *text, size_t len, int max_depth,
			char *err, size_t errlen)
{
	return parse(a, text, len, max_depth, err, errlen, 0);
}
