/*
 * route.c — matching and rendering, once per event per route.
 *
 * route_match is on the hot path (every event against every route) and
 * allocates nothing: attribute values are read in place, extensions and data
 * values compare by their text (a string's raw text, a number's source text,
 * true/false/null), and objects or arrays never match a condition.
 *
 * route_render renders each template into one scratch buffer and copies the
 * result into the request's arena, so a request is freed in one call.
 */
#include "route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "runlimits.h"
#include "trace.h"
#include "utf8.h"

/* Longest value one template may render to (Cloud Run refuses far less). */
#define RENDER_MAX (4u << 20)

/* A value's length when it is a C string whose length was not needed yet. */
#define C_STRING SIZE_MAX

/* same: s equals w (wn bytes); s has n bytes, or is a C string (n == C_STRING). */
static int same(const char *s, size_t n, const char *w, size_t wn)
{
	if (n == C_STRING)
		return strncmp(s, w, wn) == 0 && s[wn] == '\0';
	return n == wn && memcmp(s, w, wn) == 0;
}

static int strmatch(const jr_strmatch *m, const char *s, size_t n)
{
	if (m->exact && !same(s, n, m->exact, m->exact_len))
		return 0;
	if (m->prefix) {
		size_t pn = m->prefix_len;
		if (n == C_STRING ? strncmp(s, m->prefix, pn) != 0
				  : pn > n || memcmp(s, m->prefix, pn) != 0)
			return 0;
	}
	if (m->suffix) {
		size_t sn = m->suffix_len;
		if (n == C_STRING)
			n = strlen(s);
		if (sn > n || memcmp(s + n - sn, m->suffix, sn) != 0)
			return 0;
	}
	if (m->any_of) {
		size_t i = 0;
		while (i < m->n_any_of && !same(s, n, m->any_of[i], m->any_of_lens[i]))
			i++;
		if (i == m->n_any_of)
			return 0;
	}
	return 1;
}

/* json_text: the comparable text of a scalar JSON value; 0 for objects and arrays. */
static int json_text(const jr_json *v, const char **s, size_t *n)
{
	switch (v->type) {
	case JR_JSON_STRING:
	case JR_JSON_NUMBER:
		*s = v->s;
		*n = v->n;
		return 1;
	case JR_JSON_TRUE:
		*s = "true";
		break;
	case JR_JSON_FALSE:
		*s = "false";
		break;
	case JR_JSON_NULL:
		*s = "null";
		break;
	default:
		return 0;
	}
	*n = C_STRING;
	return 1;
}

/* ---- payload: the body of a plain Pub/Sub message ---- */

#define MP_TYPE "google.cloud.pubsub.topic.v1.messagePublished"

/*
 * message_body: the message data of a messagePublished event, decoded from
 * data.message.data: the one place every arrival keeps it (pull and push
 * build that data from the message; Eventarc delivers it so). 0 when there
 * is none; -1 when it is not base64.
 */
static int message_body(jr_event *ev, const char **body, size_t *n)
{
	if (!ev->type || strcmp(ev->type, MP_TYPE) != 0 || ev->data_kind != JR_DATA_JSON ||
	    !ev->data_json)
		return 0;
	const jr_json *d = json_get(json_get(ev->data_json, "message"), "data");
	if (!d || d->type != JR_JSON_STRING || d->n == 0)
		return 0;
	char *out;
	long k = base64_decode(&ev->arena, d->s, d->n, &out);
	if (k < 0)
		return -1;
	*body = out;
	*n = (size_t)k;
	return k > 0;
}

/* decode_payload: fills ev's payload fields once, whatever the route's mode. */
static void decode_payload(const jr_payload_conf *pc, jr_event *ev)
{
	const char *body = NULL;
	size_t n = 0;
	char why[256];
	ev->payload_done = 1;
	int rc = message_body(ev, &body, &n);
	if (rc < 0)
		ev->payload_err = "the message data is not base64";
	if (rc <= 0)
		return;
	jr_json *v = pc->parse(&ev->arena, body, n, pc->max_depth, why, sizeof why);
	if (v) {
		ev->payload = v;
		ev->payload_is_json = 1;
		return;
	}
	ev->payload_err = arena_strdup(&ev->arena, why);
	if (utf8_valid(body, n) && !memchr(body, 0, n))
		ev->payload = json_new_string(&ev->arena, body, n);
	else
		ev->payload_err = "the message data is neither JSON nor UTF-8 text";
}

const jr_json *route_payload(const jr_route *r, jr_event *ev, const char **err)
{
	*err = NULL;
	if (r->payload.mode == JR_PAYLOAD_NONE || !r->payload.parse)
		return NULL;
	if (!ev->payload_done)
		decode_payload(&r->payload, ev);
	if (ev->payload_is_json)
		return ev->payload;
	if (ev->payload_err && (r->payload.mode == JR_PAYLOAD_JSON || !ev->payload)) {
		*err = ev->payload_err;
		return NULL;
	}
	return ev->payload;
}

/*
 * cond_value: the text a condition looks at, as s and its length n, or
 * n == C_STRING for a C string whose length strmatch works out only if it
 * must; 0 when the value is absent.
 */
static int cond_value(const jr_cond *k, jr_event *ev, const char **s, size_t *n)
{
	const jr_json *v;
	*n = C_STRING;
	switch (k->where) {
	case JR_COND_ATTR:
		if (k->attr > 0) {
			/* decoders never store a context attribute as an extension */
			*s = event_attr_by_id(ev, k->attr);
			return *s != NULL;
		}
		v = event_ext(ev, k->key);
		return v && json_text(v, s, n);
	case JR_COND_MSG_ATTR:
		*s = event_msg_attr(ev, k->key);
		return *s != NULL;
	case JR_COND_DATA:
		if (ev->data_kind != JR_DATA_JSON || !ev->data_json)
			return 0;
		v = json_ptr_get(ev->data_json, k->ptr);
		return v && json_text(v, s, n);
	case JR_COND_PAYLOAD:
		return 0; /* payload_value */
	}
	return 0;
}

/*
 * payload_value: cond_value for a condition on the payload (route_prepare
 * puts them last); 2 when the body cannot be read as the route's payload:
 * says: the route then takes the event, and route_render reports why.
 */
static int payload_value(const jr_route *r, const jr_cond *k, jr_event *ev, const char **s,
			 size_t *n)
{
	const char *err;
	const jr_json *v = route_payload(r, ev, &err);
	if (err)
		return 2;
	v = v ? json_ptr_get(v, k->ptr) : NULL;
	*n = C_STRING;
	return v && json_text(v, s, n);
}

/* payload_last: a stable reordering of r's conditions that puts those on the payload last. */
static void payload_last(jr_route *r)
{
	size_t w = 0;
	jr_cond *tmp = r->n_conds ? jr_malloc(r->n_conds * sizeof *tmp) : NULL;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < r->n_conds; i++)
			if ((r->conds[i].where == JR_COND_PAYLOAD) == pass)
				tmp[w++] = r->conds[i];
	if (w)
		memcpy(r->conds, tmp, w * sizeof *tmp);
	free(tmp);
}

void route_prepare(jr_route *r)
{
	payload_last(r);
	for (size_t i = 0; i < r->n_conds; i++) {
		jr_cond *k = &r->conds[i];
		jr_strmatch *m = &k->m;
		if (k->where == JR_COND_ATTR) {
			int id = event_attr_id(k->key);
			k->attr = id ? id : -1;
		}
		if (k->where == JR_COND_DATA || k->where == JR_COND_PAYLOAD) {
			json_ptr_free(k->ptr);
			k->ptr = json_ptr_compile(k->key);
		}
		m->exact_len = m->exact ? strlen(m->exact) : 0;
		m->prefix_len = m->prefix ? strlen(m->prefix) : 0;
		m->suffix_len = m->suffix ? strlen(m->suffix) : 0;
		free(m->any_of_lens);
		m->any_of_lens = m->n_any_of ? jr_malloc(m->n_any_of * sizeof *m->any_of_lens) : NULL;
		for (size_t j = 0; j < m->n_any_of; j++)
			m->any_of_lens[j] = strlen(m->any_of[j]);
	}
}

/* filter_error: a CESQL error in r's filters: counted per route and kind, logged at debug. */
static void filter_error(const jr_route *r, const jr_event *ev, const cesql_result *res)
{
	const cesql_error *e = &res->errors[0];
	const char *kind = cesql_errkind_name(e->kind);
	char l[256];
	metrics_labels(l, sizeof l, "route", r->name, "error", kind, NULL);
	metric_add(metric_register("jobrelay_filter_errors_total", JR_METRIC_COUNTER,
				   "Events a route's filters did not match because a CESQL "
				   "expression reported an error", NULL, 0),
		   l, 1);
	if (log_enabled(JR_LOG_DEBUG))
		log_kv(JR_LOG_DEBUG, "ROUTE-FILTER-ERROR", "a filter's CESQL expression reported an "
		       "error: the route does not match", "route", r->name, "event_id", ev->id,
		       "error", kind, "detail", e->what, "name", e->name, NULL);
}

/*
 * filters_pass: r's filters hold for ev (a CESQL error: they do not). On a
 * route with payload: they also read the body (route_payload decodes it into
 * ev's arena once); one that does not decode gives them nothing. No other
 * allocation.
 */
static int filters_pass(const jr_route *r, jr_event *ev)
{
	char buf[CESQL_SCRATCH_DEFAULT];
	cesql_scratch s = {buf, sizeof buf, 0};
	cesql_result res;
	const char *perr;
	const jr_json *p = route_payload(r, ev, &perr);
	jr_filter_outcome o = filter_eval(r->filters, r->n_filters, ev, p, &s, &res);
	if (o == JR_FILTER_ERROR)
		filter_error(r, ev, &res);
	return o == JR_FILTER_PASS;
}

int route_match(const jr_route *r, jr_event *ev)
{
	for (size_t i = 0; i < r->n_conds; i++) {
		const char *s = NULL;
		size_t n = 0;
		const jr_cond *k = &r->conds[i];
		int got = k->where == JR_COND_PAYLOAD ? payload_value(r, k, ev, &s, &n)
						      : cond_value(k, ev, &s, &n);
		if (got == 2) /* the body does not decode: the render names it (invalid_event) */
			break; /* payload conditions come last (route_prepare): only filters remain */
		if (!got || !strmatch(&k->m, s, n))
			return 0;
	}
	return !r->n_filters || filters_pass(r, ev);
}

uint64_t route_key_hash(const char *source, const char *id, const char *route)
{
	/* FNV-1a 64 over source \0 id \0 route */
	const char *parts[3] = {source ? source : "", id ? id : "", route ? route : ""};
	uint64_t h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < 3; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
			h ^= *p;
			h *= 0x100000001b3ULL;
		}
		if (i < 2)
			h *= 0x100000001b3ULL; /* the \0 separator: h ^= 0 is a no-op */
	}
	return h;
}

void route_key(const char *source, const char *id, const char *route, char out[17])
{
	uint64_t h = route_key_hash(source, id, route);
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, h >>= 4)
		out[i] = hex[h & 15];
	out[16] = '\0';
}

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == ':';
}

/* segment_ok: a non-empty resource name segment of [A-Za-z0-9._:-] ending at '/' or NUL. */
static const char *segment_ok(const char *s)
{
	const char *p = s;
	while (name_char_ok(*p))
		p++;
	if (p == s || (*p && *p != '/'))
		return NULL;
	return p;
}

/* full_name_ok: "projects/P/locations/L/jobs/J". */
static int full_name_ok(const char *s)
{
	static const char *const coll[3] = {"projects/", "locations/", "jobs/"};
	for (int i = 0; i < 3; i++) {
		size_t cn = strlen(coll[i]);
		if (strncmp(s, coll[i], cn) != 0)
			return 0;
		s = segment_ok(s + cn);
		if (!s || (i < 2 && *s++ != '/'))
			return 0;
	}
	return *s == '\0';
}

/* job_full_name: the full job name for a rendered job text, in a; NULL with *err. */
static char *job_full_name(const jr_config *c, const jr_route *r, const char *job,
			   jr_arena *a, char **err)
{
	if (strchr(job, '/')) {
		if (!full_name_ok(job)) {
			*err = jr_asprintf("job name '%s' is not projects/PROJECT/locations/REGION/jobs/JOB",
					   job);
			return NULL;
		}
		return arena_strdup(a, job);
	}
	if (!segment_ok(job)) {
		*err = jr_asprintf("job '%s' is not a valid job id", job);
		return NULL;
	}
	const char *project = r->project ? r->project : c->project;
	const char *region = r->region ? r->region : c->region;
	if (!project) {
		*err = jr_asprintf("no project for job '%s': set project in the route or the config, "
				   "or $GOOGLE_CLOUD_PROJECT", job);
		return NULL;
	}
	if (!region) {
		*err = jr_asprintf("no region for job '%s': set region in the route or the config", job);
		return NULL;
	}
	const char *parts[6] = {"projects/", project, "/locations/", region, "/jobs/", job};
	size_t lens[6], total = 0;
	for (int i = 0; i < 6; i++)
		total += lens[i] = strlen(parts[i]);
	char *name = arena_alloc(a, total + 1), *p = name;
	for (int i = 0; i < 6; i++) {
		memcpy(p, parts[i], lens[i]);
		p += lens[i];
	}
	*p = '\0';
	return name;
}

/*
 * render_one: renders t into the arena; NULL with *err naming where: what and
 * what_arg ("env INPUT"), or what and the index when index >= 0 ("args[1]").
 */
static char *render_one(const jr_tmpl *t, jr_event *ev, const char *route, jr_buf *scratch,
			jr_arena *a, const char *what, const char *what_arg, long index,
			char **err)
{
	jr_tmpl_err te;
	buf_reset(scratch);
	int rc = tmpl_render(t, ev, route, scratch, &te);
	const char *missing = te.name;
	if (rc < 0) {
		char idx[32] = "";
		if (index >= 0)
			snprintf(idx, sizeof idx, "[%ld]", index);
		if (rc == -1)
			*err = jr_asprintf("template {{%s}} in %s%s%s: no such field", missing, what,
					   what_arg, idx);
		else if (rc == -4)
			*err = jr_asprintf("template {{%s}} in %s%s%s at column %zu: %s", missing,
					   what, what_arg, idx, te.column, te.why);
		else if (rc == -3)
			*err = jr_asprintf("template {{%s}} in %s%s%s: the value holds a NUL byte, "
					   "which %s cannot carry", missing, what, what_arg, idx,
					   index >= 0 ? "an argument" : "an environment value");
		else
			*err = jr_asprintf("template in %s%s%s renders more than %u bytes", what,
					   what_arg, idx, RENDER_MAX);
		return NULL;
	}
	return arena_strndup(a, scratch->data ? scratch->data : "", scratch->len);
}

static void env_add(jr_runreq *req, const char *name, const char *value)
{
	req->env[req->n_env].key = name;
	req->env[req->n_env].value = value;
	req->n_env++;
}

static int render_overrides(const jr_route *r, jr_event *ev, jr_runreq *req, jr_buf *scratch,
			    char **err)
{
	jr_arena *a = &req->arena;
	req->env = arena_alloc(a, (r->n_env + 8) * sizeof *req->env); /* 7 auto + TRACEPARENT */
	for (size_t i = 0; i < r->n_env; i++) {
		char *v = render_one(r->env[i].value, ev, r->name, scratch, a, "env ",
				     r->env[i].name, -1, err);
		if (!v)
			return -1;
		env_add(req, arena_strdup(a, r->env[i].name), v);
	}
	req->args = arena_alloc(a, (r->n_args ? r->n_args : 1) * sizeof *req->args);
	for (size_t i = 0; i < r->n_args; i++) {
		req->args[i] = render_one(r->args[i], ev, r->name, scratch, a, "args", "",
					  (long)i, err);
		if (!req->args[i])
			return -1;
		req->n_args++;
	}
	return 0;
}

/*
 * add_traceparent: TRACEPARENT, a child of ev's trace context (ev->trace)
 * whose span is this route delivery's dispatch span (trace_dispatch_span:
 * the span of the dispatcher's lines about it, the same on every retry).
 * None when ev has no trace, when the route sets TRACEPARENT itself, or when
 * one more variable would pass Cloud Run's count: it never fails an event
 * (the count is checked at config load without it).
 */
static void add_traceparent(jr_runreq *req, const jr_route *r, const jr_event *ev)
{
	jr_trace t;
	if (trace_parse(ev->trace, &t) < 0)
		return;
	for (size_t i = 0; i < r->n_env; i++)
		if (!strcmp(r->env[i].name, "TRACEPARENT"))
			return;
	if (req->n_env >= JR_RUN_ENV_COUNT_MAX) {
		log_kv(JR_LOG_DEBUG, "ROUTE-TRACE-OMITTED",
		       "TRACEPARENT left out: the request has as many env variables as Cloud Run allows",
		       "route", r->name, "event_id", ev->id, NULL);
		return;
	}
	char span[17], *tp = arena_alloc(&req->arena, TRACE_PARENT_LEN + 1);
	trace_dispatch_span(&t, route_key_hash(ev->source, ev->id, r->name), span);
	trace_child(&t, span, tp);
	env_add(req, "TRACEPARENT", tp);
}

/* add_auto_env: the CE_* and JOBRELAY_* variables, copied so req outlives ev and c. */
static void add_auto_env(jr_runreq *req, const jr_route *r, jr_event *ev)
{
	jr_arena *a = &req->arena;
	env_add(req, "CE_ID", arena_strdup(a, ev->id ? ev->id : ""));
	env_add(req, "CE_SOURCE", arena_strdup(a, ev->source ? ev->source : ""));
	env_add(req, "CE_TYPE", arena_strdup(a, ev->type ? ev->type : ""));
	if (ev->subject)
		env_add(req, "CE_SUBJECT", arena_strdup(a, ev->subject));
	if (ev->time)
		env_add(req, "CE_TIME", arena_strdup(a, ev->time));
	env_add(req, "JOBRELAY_ROUTE", arena_strdup(a, r->name));
	env_add(req, "JOBRELAY_KEY", req->key);
	add_traceparent(req, r, ev);
}

int route_render(const jr_config *c, const jr_route *r, jr_event *ev, jr_runreq *req,
		 char **err)
{
	memset(req, 0, sizeof *req);
	arena_init(&req->arena);
	*err = NULL;
	jr_buf scratch;
	buf_init(&scratch, RENDER_MAX);
	int rc = -1;
	const char *perr = NULL;
	if (r->payload.mode != JR_PAYLOAD_NONE && (route_payload(r, ev, &perr), perr)) {
		*err = jr_asprintf("payload: %s (the route reads it as %s)", perr,
				   r->payload.mode == JR_PAYLOAD_JSON ? "json" : "auto");
		goto out;
	}
	char *job = render_one(r->job, ev, r->name, &scratch, &req->arena, "job", "", -1, err);
	if (!job || !(req->name = job_full_name(c, r, job, &req->arena, err)))
		goto out;
	if (render_overrides(r, ev, req, &scratch, err) < 0)
		goto out;
	req->key = arena_alloc(&req->arena, 17);
	route_key(ev->source, ev->id, r->name, req->key);
	add_auto_env(req, r, ev);
	req->container = r->container ? arena_strdup(&req->arena, r->container) : NULL;
	req->has_args = r->has_args;
	req->task_count = r->task_count;
	req->timeout_ms = r->timeout_ms;
	rc = runlimits_check(req, err);
out:
	buf_free(&scratch);
	return rc;
}

void runreq_free(jr_runreq *req)
{
	arena_free(&req->arena);
	memset(req, 0, sizeof *req);
}

int route_job_check(const jr_config *c, const jr_route *r, char **err)
{
	*err = NULL;
	if (!tmpl_is_literal(r->job))
		return 0;
	jr_arena a;
	arena_init(&a);
	int rc = job_full_name(c, r, tmpl_source(r->job), &a, err) ? 0 : -1;
	arena_free(&a);
	return rc;
}

char *route_job_display(const jr_config *c, const jr_route *r)
{
	const char *job = tmpl_source(r->job);
	if (strchr(job, '/'))
		return jr_strdup(job);
	const char *project = r->project ? r->project : c->project;
	const char *region = r->region ? r->region : c->region;
	return jr_asprintf("projects/%s/locations/%s/jobs/%s", project ? project : "?",
			   region ? region : "?", job);
}

/* write_duration: proto3 JSON Duration, "600s", "1.5s", "0.001s". */
static int write_duration(jr_buf *out, int64_t ms)
{
	int64_t ip = ms / 1000, frac = ms % 1000;
	int rc = buf_addc(out, '"') | buf_addi(out, ip);
	if (frac) {
		char f[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
			     (char)('0' + frac % 10)};
		size_t n = 4;
		while (f[n - 1] == '0')
			n--;
		rc |= buf_add(out, f, n);
	}
	return rc | buf_add(out, "s\"", 2);
}

/* write_str: s as a JSON string. */
static int write_str(jr_buf *out, const char *s)
{
	return jstr_write(out, s, strlen(s));
}

static int write_container(jr_buf *out, const jr_runreq *req)
{
	int rc = 0;
	if (req->container)
		rc |= buf_addlit(out, "{\"name\":") | write_str(out, req->container) |
		      buf_addlit(out, ",\"env\":[");
	else
		rc |= buf_addlit(out, "{\"env\":[");
	for (size_t i = 0; i < req->n_env; i++) {
		rc |= i ? buf_addlit(out, ",{\"name\":") : buf_addlit(out, "{\"name\":");
		rc |= write_str(out, req->env[i].key) | buf_addlit(out, ",\"value\":") |
		      write_str(out, req->env[i].value) | buf_addc(out, '}');
	}
	rc |= buf_addc(out, ']');
	if (req->has_args && req->n_args) {
		rc |= buf_addlit(out, ",\"args\":[");
		for (size_t i = 0; i < req->n_args; i++) {
			if (i)
				rc |= buf_addc(out, ',');
			rc |= write_str(out, req->args[i]);
		}
		rc |= buf_addc(out, ']');
	} else if (req->has_args) {
		rc |= buf_addlit(out, ",\"clearArgs\":true");
	}
	return rc | buf_addc(out, '}');
}

int runreq_write_json(jr_buf *out, const jr_runreq *req)
{
	int rc = buf_addlit(out, "{\"name\":") | write_str(out, req->name);
	rc |= buf_addlit(out, ",\"overrides\":{\"containerOverrides\":[");
	rc |= write_container(out, req);
	rc |= buf_addc(out, ']');
	if (req->task_count)
		rc |= buf_addlit(out, ",\"taskCount\":") | buf_addi(out, req->task_count);
	if (req->timeout_ms)
		rc |= buf_addlit(out, ",\"timeout\":") | write_duration(out, req->timeout_ms);
	rc |= buf_addlit(out, "}}");
	return rc ? -1 : 0;
}
