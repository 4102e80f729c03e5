/*
 * filter.c — evaluating and printing the Subscriptions API filter dialects.
 *
 * Attribute values are read in place, as route.c's conditions read them: a
 * context attribute's text; an extension's string, a number's source text,
 * or true/false. The recursion over all/any/not is bounded by
 * JR_FILTER_MAX_DEPTH, which the config loader enforces.
 */
#include "filter.h"

#include <stdlib.h>
#include <string.h>

#include "jstring.h"

/* What one evaluation reads and where it reports. */
typedef struct fctx {
	const jr_event *ev;
	const jr_json *payload;  /* the route's decoded body, or NULL (event_ext_view) */
	cesql_scratch *s;
	cesql_result *res;
} fctx;

/* attr_text: the text of attribute a of the event; 0 when the event lacks it. */
static int attr_text(const jr_filter_attr *a, const fctx *c, const char **s, size_t *n)
{
	const char *v = a->attr ? event_attr_by_id(c->ev, a->attr) : NULL;
	if (v) {
		*s = v;
		*n = strlen(v);
		return 1;
	}
	const jr_json *j = a->attr ? NULL : event_ext_view(c->ev, c->payload, a->name);
	if (!j)
		return 0;
	switch (j->type) {
	case JR_JSON_STRING:
	case JR_JSON_NUMBER:
		*s = j->s;
		*n = j->n;
		return 1;
	case JR_JSON_TRUE:
		*s = "true";
		*n = 4;
		return 1;
	case JR_JSON_FALSE:
		*s = "false";
		*n = 5;
		return 1;
	default:
		return 0;
	}
}

static int attr_holds(jr_filter_kind k, const jr_filter_attr *a, const fctx *c)
{
	const char *s;
	size_t n, wn = a->value_len;
	if (!attr_text(a, c, &s, &n))
		return 0;
	switch (k) {
	case JR_FILTER_EXACT: return n == wn && memcmp(s, a->value, wn) == 0;
	case JR_FILTER_PREFIX: return n >= wn && memcmp(s, a->value, wn) == 0;
	default: return n >= wn && memcmp(s + n - wn, a->value, wn) == 0;
	}
}

static jr_filter_outcome eval_sql(const jr_filter *f, const fctx *c)
{
	cesql_result *res = c->res;
	if (cesql_eval_view(f->sql, c->ev, c->payload, c->s, res) < 0)
		return JR_FILTER_ERROR;
	return res->value.type == CESQL_BOOLEAN && res->value.b ? JR_FILTER_PASS : JR_FILTER_FAIL;
}

static jr_filter_outcome eval_list(const jr_filter *f, size_t n, const fctx *c);

static jr_filter_outcome eval_one(const jr_filter *f, const fctx *c)
{
	jr_filter_outcome o;
	switch (f->kind) {
	case JR_FILTER_ALL:
		return eval_list(f->kids, f->n_kids, c);
	case JR_FILTER_ANY:
		for (size_t i = 0; i < f->n_kids; i++)
			if ((o = eval_one(&f->kids[i], c)) != JR_FILTER_FAIL)
				return o;
		return JR_FILTER_FAIL;
	case JR_FILTER_NOT:
		o = eval_one(&f->kids[0], c);
		return o == JR_FILTER_ERROR ? o : o == JR_FILTER_PASS ? JR_FILTER_FAIL : JR_FILTER_PASS;
	case JR_FILTER_SQL:
		return eval_sql(f, c);
	default:
		for (size_t i = 0; i < f->n_attrs; i++)
			if (!attr_holds(f->kind, &f->attrs[i], c))
				return JR_FILTER_FAIL;
		return JR_FILTER_PASS;
	}
}

static jr_filter_outcome eval_list(const jr_filter *f, size_t n, const fctx *c)
{
	for (size_t i = 0; i < n; i++) {
		jr_filter_outcome o = eval_one(&f[i], c);
		if (o != JR_FILTER_PASS)
			return o;
	}
	return JR_FILTER_PASS;
}

jr_filter_outcome filter_eval(const jr_filter *f, size_t n, const jr_event *ev,
			      const jr_json *payload, cesql_scratch *s, cesql_result *res)
{
	fctx c = {.ev = ev, .payload = payload, .s = s, .res = res};
	return eval_list(f, n, &c);
}

void filter_attr_set(jr_filter_attr *a, const char *name, const char *value)
{
	a->name = jr_strdup(name);
	a->value = jr_strdup(value);
	a->value_len = strlen(value);
	a->attr = event_attr_id(name);
}

void filter_free(jr_filter *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < f[i].n_attrs; j++) {
			free(f[i].attrs[j].name);
			free(f[i].attrs[j].value);
		}
		free(f[i].attrs);
		filter_free(f[i].kids, f[i].n_kids);
		cesql_free(f[i].sql);
	}
	free(f);
}

const char *filter_kind_name(jr_filter_kind k)
{
	static const char *const names[] = {"exact", "prefix", "suffix", "all", "any", "not", "sql"};
	return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static int write_one(jr_buf *out, const jr_filter *f)
{
	int rc = buf_adds(out, filter_kind_name(f->kind)) | buf_addc(out, '(');
	if (f->kind == JR_FILTER_SQL) {
		const char *t = cesql_source(f->sql);
		rc |= jstr_write(out, t, strlen(t));
	}
	for (size_t i = 0; i < f->n_attrs; i++) {
		if (i)
			rc |= buf_addlit(out, ", ");
		rc |= buf_adds(out, f->attrs[i].name) | buf_addc(out, '=') |
		      jstr_write(out, f->attrs[i].value, f->attrs[i].value_len);
	}
	for (size_t i = 0; i < f->n_kids; i++) {
		if (i)
			rc |= buf_addlit(out, ", ");
		rc |= write_one(out, &f->kids[i]);
	}
	return rc | buf_addc(out, ')');
}

int filter_write(jr_buf *out, const jr_filter *f, size_t n)
{
	if (n == 1)
		return write_one(out, f) ? -1 : 0;
	jr_filter all = {.kind = JR_FILTER_ALL, .kids = (jr_filter *)f, .n_kids = n};
	return write_one(out, &all) ? -1 : 0;
}
