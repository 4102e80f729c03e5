/*
 * test_route_trace.c — the TRACEPARENT env of a rendered RunJob request
 * (dispatch/route.c): a child of the event's trace context with the route
 * delivery's dispatch span, the same on every render of it; none without a
 * trace, when the route sets its own, or at Cloud Run's env count limit
 * (never an error: an event within the limits still renders).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_load.h"
#include "cu.h"
#include "log.h"
#include "route.h"
#include "runlimits.h"
#include "testev.h"
#include "trace.h"

#define ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP "00-" ID "-00f067aa0ba902b7-01"

static const char *const yaml = "project: p\nregion: r\nroutes:\n"
				"  - { name: a, job: j, overrides: { env: { X: \"{{id}}\" } } }\n"
				"  - { name: b, job: j }\n"
				"  - { name: own, job: j, overrides: { env: { TRACEPARENT: mine } } }\n";

static jr_config *load(const char *text)
{
	jr_config *c = jr_calloc(1, sizeof *c);
	jr_buf errs;
	buf_init(&errs, 0);
	int n = config_load_string(c, "t.yaml", text, strlen(text), &errs);
	if (n)
		fprintf(stderr, "unexpected config errors:\n%s", errs.data);
	CU_ASSERT_EQUAL_FATAL(n, 0);
	buf_free(&errs);
	return c;
}

static void unload(jr_config *c)
{
	config_free(c);
	free(c);
}

/* env_of: the value of env name in q, NULL when absent; *count: how many have that name. */
static const char *env_of(const jr_runreq *q, const char *name, int *count)
{
	const char *v = NULL;
	*count = 0;
	for (size_t i = 0; i < q->n_env; i++)
		if (!strcmp(q->env[i].key, name)) {
			v = q->env[i].value;
			(*count)++;
		}
	return v;
}

/* traceparent: route ri's TRACEPARENT for ev, copied into out (""): none. */
static void traceparent(const jr_config *c, size_t ri, jr_event *ev, char out[64])
{
	jr_runreq q;
	char *err = NULL;
	int n;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[ri], ev, &q, &err), 0);
	CU_ASSERT_PTR_NULL(err);
	const char *v = env_of(&q, "TRACEPARENT", &n);
	CU_ASSERT_TRUE(n <= 1);
	snprintf(out, 64, "%s", v ? v : "");
	runreq_free(&q);
	free(err);
}

static void test_child_of_the_event(void)
{
	jr_config *c = load(yaml);
	jr_event *ev = tev_new("e1", "/s", "t");
	ev->trace = TP;
	char a1[64], a2[64], b[64];
	traceparent(c, 0, ev, a1);
	traceparent(c, 0, ev, a2);
	traceparent(c, 1, ev, b);
	jr_trace in, got;
	CU_ASSERT_EQUAL_FATAL(trace_parse(TP, &in), 0);
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent(a1, &got), 0);
	CU_ASSERT_EQUAL(strncmp(a1, "00-" ID "-", 36), 0); /* the same trace */
	CU_ASSERT_STRING_EQUAL(a1 + 52, "-01");           /* the same flags */
	CU_ASSERT_STRING_NOT_EQUAL(got.span, in.span);    /* a new span */
	char span[17];
	trace_dispatch_span(&in, route_key_hash("/s", "e1", "a"), span);
	CU_ASSERT_STRING_EQUAL(got.span, span); /* the dispatch span of the dispatcher's lines */
	CU_ASSERT_STRING_EQUAL(a1, a2);         /* a retry renders the same span */
	CU_ASSERT_STRING_NOT_EQUAL(a1, b);      /* another route delivery, another span */
	CU_ASSERT_EQUAL(strncmp(b, "00-" ID "-", 36), 0);

	/* X-Cloud-Trace-Context (decimal span, o=1): the child is a version 00 traceparent */
	ev->trace = ID "/67667974448284343;o=1";
	traceparent(c, 0, ev, a1);
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent(a1, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.id, ID);
	CU_ASSERT_STRING_NOT_EQUAL(got.span, "00f067aa0ba902b7");
	CU_ASSERT_EQUAL(got.flags, 1);
	ev->trace = ID ";o=0";
	traceparent(c, 0, ev, a1);
	CU_ASSERT_STRING_EQUAL(a1 + 52, "-00");
	event_free(ev);
	unload(c);
}

static void test_none(void)
{
	jr_config *c = load(yaml);
	jr_event *ev = tev_new("e1", "/s", "t");
	char v[64];
	traceparent(c, 0, ev, v);
	CU_ASSERT_STRING_EQUAL(v, ""); /* no trace, no env */
	ev->trace = "00-" ID "-0000000000000000-01";
	traceparent(c, 0, ev, v);
	CU_ASSERT_STRING_EQUAL(v, ""); /* a malformed one: the same, and no error */
	ev->trace = TP;
	traceparent(c, 2, ev, v);
	CU_ASSERT_STRING_EQUAL(v, "mine"); /* the route's own is kept, alone */
	event_free(ev);
	unload(c);
}

/*
 * A route with as many env variables as the config allows: with CE_SUBJECT
 * and CE_TIME the request has Cloud Run's 1000; TRACEPARENT is left out
 * (a debug line says so) and the event renders as it did without a trace.
 */
static void test_at_the_count_limit(void)
{
	jr_buf y;
	buf_init(&y, 0);
	buf_printf(&y, "project: p\nregion: r\nroutes:\n  - name: full\n    job: j\n"
		       "    overrides:\n      env:\n");
	for (int i = 0; i < JR_RUN_ENV_COUNT_MAX - JR_RUN_AUTO_ENV_MAX; i++)
		buf_printf(&y, "        V%d: v\n", i);
	jr_config *c = load(y.data);
	buf_free(&y);
	char path[] = "/tmp/jr-test-route-trace.XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	log_setup(fd, JR_LOG_JSON, JR_LOG_DEBUG);

	jr_event *ev = tev_new("e1", "/s", "t");
	ev->subject = "sub";
	ev->time = "2024-05-01T08:15:42Z";
	ev->trace = TP;
	jr_runreq q;
	char *err = NULL;
	int n;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[0], ev, &q, &err), 0);
	CU_ASSERT_PTR_NULL(err);
	CU_ASSERT_EQUAL(q.n_env, JR_RUN_ENV_COUNT_MAX);
	CU_ASSERT_PTR_NULL(env_of(&q, "TRACEPARENT", &n));
	runreq_free(&q);
	ev->subject = NULL; /* one below the limit: it fits */
	CU_ASSERT_EQUAL(route_render(c, &c->routes[0], ev, &q, &err), 0);
	CU_ASSERT_EQUAL(q.n_env, JR_RUN_ENV_COUNT_MAX);
	CU_ASSERT_PTR_NOT_NULL(env_of(&q, "TRACEPARENT", &n));
	runreq_free(&q);
	event_free(ev);
	unload(c);

	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	char text[4096] = "";
	ssize_t got = pread(fd, text, sizeof text - 1, 0);
	close(fd);
	CU_ASSERT_TRUE(got > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"severity\":\"DEBUG\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"msgid\":\"ROUTE-TRACE-OMITTED\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"route\":\"full\",\"event_id\":\"e1\""));
}

int main(void)
{
	static const cu_test tests[] = {
		{"a child of the event's trace", test_child_of_the_event},
		{"none without a trace, or with the route's own", test_none},
		{"left out at the env count limit", test_at_the_count_limit},
		{NULL, NULL},
	};
	return cu_run("route_trace", tests);
}
