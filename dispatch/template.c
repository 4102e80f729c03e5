/*
 * template.c — `{{name}}` templates.
 *
 * Compiling splits the source into parts: literal text, and variables whose
 * name is classified once (context attribute, extension, data, data path,
 * message attribute, message field, route). Rendering walks the parts and
 * appends to the caller's buffer; it allocates nothing itself except when
 * the buffer grows, so it is cheap per event.
 */
#include "template.h"

#include <stdlib.h>
#include <string.h>

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
} part_kind;

typedef struct tmpl_part {
	part_kind kind;
	int optional;
	const char *arg;  /* literal text, attribute/extension name, path or key */
	size_t arg_len;
	int attr;         /* P_ATTR: event_attr_id(arg) */
	char *name;       /* the variable as written, without braces, blanks and '?' */
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
	*err = jr_asprintf("bad data path in {{%s}}", n);
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

/* add_var: a variable from the text between "{{" and "}}". */
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
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			*err = jr_asprintf("unclosed '{{' at column %zu", (size_t)(open - t->src) + 1);
			goto fail;
		}
		if (add_var(t, &cap, open + 2, (size_t)(close - open - 2), err) < 0)
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
	for (size_t i = 0; i < t->n; i++)
		free(t->parts[i].name);
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

/* render_var: appends one variable; 1 when it is absent, -1 when out is full. */
static int render_var(const tmpl_part *pt, jr_event *ev, const char *route, jr_buf *out)
{
	const jr_message *m = ev->message;
	switch (pt->kind) {
	case P_ATTR:
		return add_opt(out, event_attr_by_id(ev, pt->attr));
	case P_EXT: {
		const jr_json *v = event_ext(ev, pt->arg);
		return v ? json_render(out, v) : 1;
	}
	case P_DATA:
		return render_data(ev, out);
	case P_DATA_PATH: {
		if (ev->data_kind != JR_DATA_JSON || !ev->data_json)
			return 1;
		const jr_json *v = json_path(ev->data_json, pt->arg);
		return v ? json_render(out, v) : 1;
	}
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
	case P_LIT:
		break;
	}
	return buf_add(out, pt->arg, pt->arg_len);
}

int tmpl_render(const jr_tmpl *t, jr_event *ev, const char *route, jr_buf *out,
		const char **missing)
{
	for (size_t i = 0; i < t->n; i++) {
		const tmpl_part *pt = &t->parts[i];
		size_t at = out->len;
		int rc = render_var(pt, ev, route, out);
		if (rc < 0)
			return -2;
		if (rc == 0 && out->len > at && memchr(out->data + at, 0, out->len - at)) {
			/* a string value or text data holding U+0000: it would be cut there */
			if (missing)
				*missing = pt->name;
			return -3;
		}
		if (rc > 0 && !pt->optional) {
			if (missing)
				*missing = pt->name;
			return -1;
		}
	}
	return 0;
}
