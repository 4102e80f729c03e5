/*
 * template.c — `{{name}}` templates and their function pipelines.
 *
 * Compiling splits the source into parts: literal text, and variables whose
 * name is classified once (context attribute, extension, data, data path,
 * message attribute, message field, route, payload) and whose functions
 * (`| lower`, `| default "x"`) are looked up and their arguments checked and
 * unescaped once. Rendering walks the parts and appends to the caller's
 * buffer; a function rewrites its value in place at the end of that buffer,
 * so nothing is allocated but the buffer's growth, and it is cheap per event.
 */
#include "template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

typedef enum part_kind {
	P_LIT,
	P_ATTR,       /* context attribute: event_attr_by_id */
	P_EXT,        /* extension: event_ext */
	P_DATA,       /* the whole data */
	P_DATA_PATH,  /* json_path into JSON data */
	P_MSG_ATTR,   /* Pub/Sub message attribute */
	P_MSG_ID,
	P_MSG_PUBLISH_TIME,
	P_MSG_ORDERING_KEY,
	P_ROUTE,
	P_PAYLOAD,       /* the whole decoded message body */
	P_PAYLOAD_PATH,  /* json_path into it */
} part_kind;

typedef enum fn_id {
	FN_DEFAULT,
	FN_B64ENC,
	FN_B64DEC,
	FN_TOJSON,
	FN_LOWER,
	FN_UPPER,
	FN_SUBSTRING,
	FN_SPLIT,
} fn_id;

/* One function of a pipeline: its arguments as written, checked when compiling. */
typedef struct tmpl_call {
	fn_id fn;
	size_t column;  /* of its name in the source, from 1 */
	char *str;      /* default, split: the string argument (unescaped) */
	size_t str_len;
	long num[2];    /* substring: START LENGTH; split: INDEX in num[0] */
} tmpl_call;

typedef struct tmpl_part {
	part_kind kind;
	int optional;
	const char *arg;  /* literal text, attribute/extension name, path or key */
	size_t arg_len;
	int attr;         /* P_ATTR: event_attr_id(arg) */
	char *name;       /* the variable as written, without braces, blanks and '?' */
	tmpl_call *calls; /* the pipeline, NULL when there is none */
	size_t n_calls;
} tmpl_part;

struct jr_tmpl {
	char *src;
	tmpl_part *parts;
	size_t n;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* A path "a.b[0].c" or "[1].a": non-empty segments, brackets holding digits. */
static int path_ok(const char *p)
{
	int need_seg = *p != '[', after_index = 0;
	while (*p) {
		if (*p == '.') {
			if (need_seg)
				return 0;
			need_seg = 1;
			after_index = 0;
			p++;
		} else if (*p == '[') {
			if (need_seg)
				return 0;
			p++;
			if (*p < '0' || *p > '9')
				return 0;
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p++ != ']')
				return 0;
			after_index = 1;
		} else if (*p == ']' || is_blank(*p) || after_index) {
			return 0;
		} else {
			need_seg = 0;
			p++;
		}
	}
	return !need_seg;
}

/* classify: sets the kind and argument of a variable from its name; -1 with *err when invalid. */
static int classify(tmpl_part *pt, char **err)
{
	const char *n = pt->name;
	pt->arg = n;
	if (strcmp(n, "route") == 0) {
		pt->kind = P_ROUTE;
	} else if (strcmp(n, "data") == 0) {
		pt->kind = P_DATA;
	} else if (strncmp(n, "data.", 5) == 0 || strncmp(n, "data[", 5) == 0) {
		pt->kind = P_DATA_PATH;
		pt->arg = n + (n[4] == '.' ? 5 : 4);
		if (!path_ok(pt->arg))
			goto bad_path;
	} else if (strcmp(n, "payload") == 0) {
		pt->kind = P_PAYLOAD;
	} else if (strncmp(n, "payload.", 8) == 0 || strncmp(n, "payload[", 8) == 0) {
		pt->kind = P_PAYLOAD_PATH;
		pt->arg = n + (n[7] == '.' ? 8 : 7);
		if (!path_ok(pt->arg))
			goto bad_path;
	} else if (strncmp(n, "attributes.", 11) == 0 && n[11]) {
		pt->kind = P_MSG_ATTR;
		pt->arg = n + 11;
	} else if (strcmp(n, "message.id") == 0) {
		pt->kind = P_MSG_ID;
	} else if (strcmp(n, "message.publish_time") == 0) {
		pt->kind = P_MSG_PUBLISH_TIME;
	} else if (strcmp(n, "message.ordering_key") == 0) {
		pt->kind = P_MSG_ORDERING_KEY;
	} else if ((pt->attr = event_attr_id(n)) != 0) {
		pt->kind = P_ATTR;
	} else {
		for (const char *p = n; *p; p++)
			if (!is_lower_alnum(*p))
				goto unknown;
		pt->kind = P_EXT;
	}
	pt->arg_len = strlen(pt->arg);
	return 0;
bad_path:
	*err = jr_asprintf("bad %s path in {{%s}}", n[0] == 'p' ? "payload" : "data", n);
	return -1;
unknown:
	*err = jr_asprintf("unknown name {{%s}} (an extension name is lower-case letters, digits and '_')",
			   n);
	return -1;
}

static tmpl_part *add_part(jr_tmpl *t, size_t *cap)
{
	if (t->n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		t->parts = jr_realloc(t->parts, *cap * sizeof *t->parts);
	}
	tmpl_part *pt = &t->parts[t->n++];
	memset(pt, 0, sizeof *pt);
	return pt;
}

/* add_var: a variable from the text between "{{" and "}}" (or the first '|'). */
static int add_var(jr_tmpl *t, size_t *cap, const char *s, size_t n, char **err)
{
	int optional = 0;
	while (n && is_blank(*s))
		s++, n--;
	while (n && is_blank(s[n - 1]))
		n--;
	if (n && s[n - 1] == '?') {
		optional = 1;
		n--;
		while (n && is_blank(s[n - 1]))
			n--;
	}
	if (n == 0) {
		*err = jr_strdup("empty name in {{}}");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (is_blank(s[i]) || s[i] == '{' || s[i] == '}') {
			*err = jr_asprintf("invalid name '%.*s' in {{...}}", (int)n, s);
			return -1;
		}
	}
	tmpl_part *pt = add_part(t, cap);
	pt->optional = optional;
	pt->name = jr_strndup(s, n);
	return classify(pt, err);
}

/* ---- function pipelines ---- */

/* The functions: name, and its arguments: 's' a string, 'i' an integer. */
static const struct {
	const char *name;
	const char *args;
	const char *usage;
} fns[] = {
	[FN_DEFAULT] = {"default", "s", "default \"TEXT\""},
	[FN_B64ENC] = {"b64enc", "", "b64enc"},
	[FN_B64DEC] = {"b64dec", "", "b64dec"},
	[FN_TOJSON] = {"toJson", "", "toJson"},
	[FN_LOWER] = {"lower", "", "lower"},
	[FN_UPPER] = {"upper", "", "upper"},
	[FN_SUBSTRING] = {"substring", "ii", "substring START LENGTH"},
	[FN_SPLIT] = {"split", "si", "split \"SEP\" INDEX"},
};
#define N_FNS (sizeof fns / sizeof fns[0])
#define ARG_MAX 1000000000L /* an integer argument's bound, either sign */

/* A cursor over the source while a pipeline is read; column() is 1-based. */
typedef struct cursor {
	const char *src, *p, *end;
	char **err;
} cursor;

static size_t column(const cursor *c, const char *at)
{
	return (size_t)(at - c->src) + 1;
}

static void skip_blanks(cursor *c)
{
	while (c->p < c->end && is_blank(*c->p))
		c->p++;
}

static int fail_at(cursor *c, const char *at, const char *what)
{
	*c->err = jr_asprintf("%s at column %zu", what, column(c, at));
	return -1;
}

/* read_string: a "..." argument with \" and \\ escapes, unescaped into a new string. */
static int read_string(cursor *c, tmpl_call *k)
{
	const char *at = c->p++;
	jr_buf b;
	buf_init(&b, 0);
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' && c->p + 1 < c->end && (c->p[1] == '"' || c->p[1] == '\\'))
			c->p++;
		buf_addc(&b, *c->p++);
	}
	if (c->p >= c->end) {
		buf_free(&b);
		return fail_at(c, at, "unterminated string");
	}
	c->p++;
	k->str_len = b.len;
	k->str = buf_take(&b);
	return 0;
}

/* read_int: an integer argument, optionally negative, at most ARG_MAX in size. */
static int read_int(cursor *c, long *v)
{
	const char *at = c->p;
	int neg = c->p < c->end && *c->p == '-';
	c->p += neg;
	long n = 0;
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return fail_at(c, at, "expected an integer");
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		n = n * 10 + (*c->p++ - '0');
		if (n > ARG_MAX)
			return fail_at(c, at, "integer out of range");
	}
	*v = neg ? -n : n;
	return 0;
}

/* read_args: the arguments of k's function as its spec says; the count is checked. */
static int read_args(cursor *c, tmpl_call *k)
{
	const char *spec = fns[k->fn].args, *at = c->src + k->column - 1;
	size_t got = 0, ni = 0;
	for (;; got++) {
		skip_blanks(c);
		if (c->p >= c->end || *c->p == '|')
			break;
		char want = spec[got < strlen(spec) ? got : strlen(spec)];
		if (!want)
			break;
		int is_str = *c->p == '"';
		if ((want == 's') != is_str) {
			char what[96];
			snprintf(what, sizeof what, "%s: argument %zu must be %s", fns[k->fn].name,
				 got + 1, want == 's' ? "a \"string\"" : "an integer");
			return fail_at(c, c->p, what);
		}
		if (is_str ? read_string(c, k) : read_int(c, &k->num[ni++]))
			return -1;
	}
	if (got != strlen(spec) || (c->p < c->end && *c->p != '|')) {
		char what[128];
		snprintf(what, sizeof what, "%s takes %zu argument%s (%s)", fns[k->fn].name,
			 strlen(spec), strlen(spec) == 1 ? "" : "s", fns[k->fn].usage);
		return fail_at(c, at, what);
	}
	return 0;
}

static int args_ok(cursor *c, const tmpl_call *k)
{
	const char *at = c->src + k->column - 1;
	if (k->fn == FN_SUBSTRING && (k->num[0] < 0 || k->num[1] < 0))
		return fail_at(c, at, "substring: START and LENGTH must not be negative");
	if (k->fn == FN_SPLIT && k->str_len == 0)
		return fail_at(c, at, "split: the separator must not be empty");
	return 0;
}

/* read_call: one "| name args" (the '|' already read) into k. */
static int read_call(cursor *c, tmpl_call *k)
{
	skip_blanks(c);
	const char *at = c->p;
	while (c->p < c->end && (is_lower_alnum(*c->p) || (*c->p >= 'A' && *c->p <= 'Z')))
		c->p++;
	if (c->p == at)
		return fail_at(c, at, "expected a function name after '|'");
	k->column = column(c, at);
	size_t n = (size_t)(c->p - at), i = 0;
	while (i < N_FNS && (strlen(fns[i].name) != n || memcmp(fns[i].name, at, n) != 0))
		i++;
	if (i == N_FNS) {
		*c->err = jr_asprintf("unknown function '%.*s' at column %zu (default, b64enc, "
				      "b64dec, toJson, lower, upper, substring, split)",
				      (int)n, at, k->column);
		return -1;
	}
	k->fn = (fn_id)i;
	if (c->p < c->end && !is_blank(*c->p) && *c->p != '|')
		return fail_at(c, c->p, "unexpected character");
	return read_args(c, k) < 0 ? -1 : args_ok(c, k);
}

/* add_calls: the pipeline [p, end) after a variable's first '|' into pt. */
static int add_calls(tmpl_part *pt, const char *src, const char *p, const char *end, char **err)
{
	cursor c = {src, p, end, err};
	size_t cap = 0;
	while (c.end > c.p && is_blank(c.end[-1]))
		c.end--;
	if (c.end > c.p && c.end[-1] == '?') { /* `{{ x | f ? }}` as `{{ x? | f }}` */
		pt->optional = 1;
		c.end--;
	}
	for (;;) {
		if (pt->n_calls == cap) {
			cap = cap ? cap * 2 : 2;
			pt->calls = jr_realloc(pt->calls, cap * sizeof *pt->calls);
		}
		tmpl_call *k = &pt->calls[pt->n_calls++];
		memset(k, 0, sizeof *k);
		if (read_call(&c, k) < 0)
			return -1;
		if (c.p >= c.end)
			return 0;
		c.p++; /* the '|' read_args stopped at */
	}
}

/* var_end: the "}}" closing the variable opened before p; quotes count after a '|'. */
static const char *var_end(const char *p)
{
	int piped = 0, quoted = 0;
	for (; *p; p++) {
		if (quoted) {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '}' && p[1] == '}') {
			return p;
		} else if (*p == '|') {
			piped = 1;
		} else if (*p == '"' && piped) {
			quoted = 1;
		}
	}
	return NULL;
}

/* add_expr: a variable and its pipeline from the text between "{{" and "}}". */
static int add_expr(jr_tmpl *t, size_t *cap, const char *s, const char *end, char **err)
{
	const char *bar = memchr(s, '|', (size_t)(end - s));
	if (add_var(t, cap, s, (size_t)((bar ? bar : end) - s), err) < 0)
		return -1;
	if (!bar)
		return 0;
	return add_calls(&t->parts[t->n - 1], t->src, bar + 1, end, err);
}

jr_tmpl *tmpl_compile(const char *src, char **err)
{
	jr_tmpl *t = jr_calloc(1, sizeof *t);
	size_t cap = 0;
	t->src = jr_strdup(src);
	const char *p = t->src;
	*err = NULL;
	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			tmpl_part *pt = add_part(t, &cap);
			pt->arg = p;
			pt->arg_len = strlen(p);
			break;
		}
		if (open > p) {
			tmpl_part *pt = add_part(t, &cap);
			pt->arg = p;
			pt->arg_len = (size_t)(open - p);
		}
		const char *close = var_end(open + 2);
		if (!close) {
			*err = jr_asprintf("unclosed '{{' at column %zu", (size_t)(open - t->src) + 1);
			goto fail;
		}
		if (add_expr(t, &cap, open + 2, close, err) < 0)
			goto fail;
		p = close + 2;
	}
	return t;
fail:
	tmpl_free(t);
	return NULL;
}

void tmpl_free(jr_tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		for (size_t j = 0; j < t->parts[i].n_calls; j++)
			free(t->parts[i].calls[j].str);
		free(t->parts[i].calls);
		free(t->parts[i].name);
	}
	free(t->parts);
	free(t->src);
	free(t);
}

const char *tmpl_source(const jr_tmpl *t)
{
	return t->src;
}

int tmpl_is_literal(const jr_tmpl *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].kind != P_LIT)
			return 0;
	return 1;
}

int tmpl_uses_payload(const jr_tmpl *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].kind == P_PAYLOAD || t->parts[i].kind == P_PAYLOAD_PATH)
			return 1;
	return 0;
}

/* render_data: the whole data; JSON as json_render does, text as is, binary as base64. */
static int render_data(const jr_event *ev, jr_buf *out)
{
	switch (ev->data_kind) {
	case JR_DATA_JSON:
		if (ev->data_json)
			return json_render(out, ev->data_json);
		return buf_add(out, ev->data, ev->data_len);
	case JR_DATA_TEXT:
		return buf_add(out, ev->data, ev->data_len);
	case JR_DATA_BINARY:
		return base64_encode(out, ev->data, ev->data_len);
	case JR_DATA_NONE:
		break;
	}
	return 1;
}

static int add_opt(jr_buf *out, const char *s)
{
	return s ? buf_adds(out, s) : 1;
}

/* var_node: the JSON value of a JSON-valued variable; 1 when it is not JSON-valued, 0 when absent. */
static int var_node(const tmpl_part *pt, const jr_event *ev, const jr_json **v)
{
	*v = NULL;
	switch (pt->kind) {
	case P_EXT:
		*v = event_ext(ev, pt->arg);
		return 0;
	case P_DATA:
		if (ev->data_kind != JR_DATA_JSON || !ev->data_json)
			return 1;
		*v = ev->data_json;
		return 0;
	case P_DATA_PATH:
		if (ev->data_kind == JR_DATA_JSON && ev->data_json)
			*v = json_path(ev->data_json, pt->arg);
		return 0;
	case P_PAYLOAD:
		*v = ev->payload;
		return 0;
	case P_PAYLOAD_PATH:
		if (ev->payload && ev->payload_is_json)
			*v = json_path(ev->payload, pt->arg);
		return 0;
	default:
		return 1;
	}
}

/* render_var: appends one variable; 1 when it is absent, -1 when out is full. */
static int render_var(const tmpl_part *pt, jr_event *ev, const char *route, jr_buf *out)
{
	const jr_message *m = ev->message;
	const jr_json *v;
	if (pt->kind != P_LIT && var_node(pt, ev, &v) == 0)
		return v ? json_render(out, v) : 1;
	switch (pt->kind) {
	case P_ATTR:
		return add_opt(out, event_attr_by_id(ev, pt->attr));
	case P_DATA:
		return render_data(ev, out);
	case P_MSG_ATTR:
		return add_opt(out, event_msg_attr(ev, pt->arg));
	case P_MSG_ID:
		return add_opt(out, m ? m->id : NULL);
	case P_MSG_PUBLISH_TIME:
		return add_opt(out, m ? m->publish_time : NULL);
	case P_MSG_ORDERING_KEY:
		return add_opt(out, m ? m->ordering_key : NULL);
	case P_ROUTE:
		return add_opt(out, route);
	default:
		break;
	}
	return buf_add(out, pt->arg, pt->arg_len);
}

/*
 * A value on its way through a pipeline: absent, a JSON node not written
 * yet (so toJson sees the tree and default sees null), or text: the bytes of
 * out from `at` on.
 */
typedef enum val_state { V_ABSENT, V_NODE, V_TEXT } val_state;

typedef struct pval {
	val_state st;
	const jr_json *node;
	jr_buf *out;
	size_t at;
} pval;

static char *seg(const pval *v)
{
	return v->out->data + v->at;
}

static size_t seg_len(const pval *v)
{
	return v->out->len - v->at;
}

/* set_seg: the text becomes n bytes at src, which lies in out past at (or is at itself). */
static void set_seg(pval *v, const char *src, size_t n)
{
	memmove(seg(v), src, n);
	v->out->len = v->at + n;
	v->out->data[v->out->len] = '\0';
}

/* as_text: the value written as text (a node as json_render does); -1 when out is full. */
static int as_text(pval *v)
{
	if (v->st != V_NODE)
		return 0;
	v->st = V_TEXT;
	return json_render(v->out, v->node);
}

static int is_empty(const pval *v)
{
	if (v->st == V_ABSENT)
		return 1;
	if (v->st == V_NODE)
		return v->node->type == JR_JSON_NULL ||
		       (v->node->type == JR_JSON_STRING && v->node->n == 0);
	return seg_len(v) == 0;
}

static int fn_default(pval *v, const tmpl_call *k)
{
	if (!is_empty(v))
		return 0;
	v->out->len = v->at;
	v->st = V_TEXT;
	return buf_add(v->out, k->str, k->str_len);
}

/* fn_tojson: a node as compact JSON, text as a JSON string. */
static int fn_tojson(pval *v)
{
	if (v->st == V_NODE) {
		v->st = V_TEXT;
		return json_write(v->out, v->node);
	}
	size_t n = seg_len(v), from = v->out->len;
	if (n > (SIZE_MAX - 2) / 6 || !buf_space(v->out, n * 6 + 2))
		return -1; /* room for the worst case: jstr_write does not grow out below */
	if (jstr_write(v->out, seg(v), n) < 0)
		return -1;
	set_seg(v, v->out->data + from, v->out->len - from);
	return 0;
}

static int fn_b64enc(pval *v)
{
	size_t n = seg_len(v), from = v->out->len;
	if (n > SIZE_MAX / 2 || !buf_space(v->out, (n + 2) / 3 * 4))
		return -1;
	if (base64_encode(v->out, seg(v), n) < 0)
		return -1;
	set_seg(v, v->out->data + from, v->out->len - from);
	return 0;
}

/* fn_b64dec: -1 full, -2 with *why when the input is not base64 or the bytes are not text. */
static int fn_b64dec(pval *v, const char **why)
{
	size_t n = seg_len(v), room = n / 4 * 3 + 2;
	char *to = buf_space(v->out, room);
	if (!to)
		return -1;
	long k = base64_decode_to(seg(v), n, (unsigned char *)to, room, BASE64_ANY);
	if (k < 0) {
		*why = "b64dec: the value is not base64";
		return -2;
	}
	if (!utf8_valid(to, (size_t)k) || memchr(to, 0, (size_t)k)) {
		*why = "b64dec: the decoded bytes are not UTF-8 text";
		return -2;
	}
	set_seg(v, to, (size_t)k);
	return 0;
}

static void fn_case(pval *v, int upper)
{
	for (char *p = seg(v), *e = p + seg_len(v); p < e; p++) {
		if (upper && *p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
		else if (!upper && *p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
}

/* char_at: the byte offset of character i of s[0..n) (n when past the end); UTF-8 aware. */
static size_t char_at(const char *s, size_t n, long i)
{
	size_t off = 0;
	for (; i > 0 && off < n; i--) {
		size_t k = utf8_char_len((const unsigned char *)s + off, n - off);
		off += k ? k : 1;
	}
	return off;
}

static void fn_substring(pval *v, const tmpl_call *k)
{
	const char *s = seg(v);
	size_t n = seg_len(v), b = char_at(s, n, k->num[0]);
	size_t e = b + char_at(s + b, n - b, k->num[1]);
	set_seg(v, s + b, e - b);
}

/* next_sep: the next separator of k in s[0..n) from off, or n. */
static size_t next_sep(const char *s, size_t n, size_t off, const tmpl_call *k)
{
	while (off + k->str_len <= n && memcmp(s + off, k->str, k->str_len) != 0)
		off++;
	return off + k->str_len <= n ? off : n;
}

/* fn_split: part INDEX (negative: from the end) of the text split at SEP; absent past the end. */
static void fn_split(pval *v, const tmpl_call *k)
{
	const char *s = seg(v);
	size_t n = seg_len(v), parts = 1, off = 0;
	for (size_t at = next_sep(s, n, 0, k); at < n; at = next_sep(s, n, at + k->str_len, k))
		parts++;
	long want = k->num[0] < 0 ? (long)parts + k->num[0] : k->num[0];
	if (want < 0 || (size_t)want >= parts) {
		v->out->len = v->at;
		v->st = V_ABSENT;
		return;
	}
	for (long i = 0; i < want; i++)
		off = next_sep(s, n, off, k) + k->str_len;
	set_seg(v, s + off, next_sep(s, n, off, k) - off);
}

/* apply: one function; 0, -1 when out is full, -2 with *why when the function fails. */
static int apply(pval *v, const tmpl_call *k, const char **why)
{
	if (k->fn == FN_DEFAULT)
		return fn_default(v, k);
	if (v->st == V_ABSENT)
		return 0;
	if (k->fn == FN_TOJSON)
		return fn_tojson(v);
	if (as_text(v) < 0)
		return -1;
	switch (k->fn) {
	case FN_B64ENC:
		return fn_b64enc(v);
	case FN_B64DEC:
		return fn_b64dec(v, why);
	case FN_LOWER:
	case FN_UPPER:
		fn_case(v, k->fn == FN_UPPER);
		return 0;
	case FN_SUBSTRING:
		fn_substring(v, k);
		return 0;
	case FN_SPLIT:
		fn_split(v, k);
		return 0;
	default:
		return 0;
	}
}

/* render_piped: a variable with functions: 0, 1 absent, -1 full, -2 failed (e filled). */
static int render_piped(const tmpl_part *pt, jr_event *ev, const char *route, jr_buf *out,
			jr_tmpl_err *e)
{
	pval v = {V_TEXT, NULL, out, out->len};
	if (var_node(pt, ev, &v.node) == 0) {
		v.st = v.node ? V_NODE : V_ABSENT;
	} else {
		int rc = render_var(pt, ev, route, out);
		if (rc < 0)
			return -1;
		if (rc > 0)
			v.st = V_ABSENT;
	}
	for (size_t i = 0; i < pt->n_calls; i++) {
		int rc = apply(&v, &pt->calls[i], &e->why);
		if (rc == -2)
			e->column = pt->calls[i].column;
		if (rc < 0)
			return rc;
	}
	if (as_text(&v) < 0)
		return -1;
	return v.st == V_ABSENT;
}

int tmpl_render(const jr_tmpl *t, jr_event *ev, const char *route, jr_buf *out,
		jr_tmpl_err *e)
{
	jr_tmpl_err dummy;
	if (!e)
		e = &dummy;
	memset(e, 0, sizeof *e);
	for (size_t i = 0; i < t->n; i++) {
		const tmpl_part *pt = &t->parts[i];
		size_t at = out->len;
		int rc = pt->n_calls ? render_piped(pt, ev, route, out, e)
				     : render_var(pt, ev, route, out);
		e->name = pt->name;
		if (rc == -2)
			return -4;
		if (rc < 0)
			return -2;
		if (rc == 0 && out->len > at && memchr(out->data + at, 0, out->len - at))
			return -3; /* a string value or text data holding U+0000: it would be cut there */
		if (rc > 0 && !pt->optional)
			return -1;
	}
	e->name = NULL;
	return 0;
}
