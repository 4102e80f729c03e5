/*
 * test_dispatch_reads.c — the dispatcher after RunJob returned OK, or ended
 * ambiguously, with a stand-in runner whose reads (follow, find) answer what
 * each test says: a failed read never sends RunJob again (the route ends as
 * EXECUTION_UNCONFIRMED, and a later delivery of the event is a duplicate);
 * shutdown still retries; a lookup that failed or found nothing leaves the
 * original failure's policy; a call refused for want of a token is held.
 * Every answer comes from the loop, as a real
 * runner's does; nothing sleeps.
 */
#include "cu.h"

#include <string.h>

#include <grpc/grpc.h>

#include "config_load.h"
#include "dispatcher.h"
#include "loop.h"
#include "testev.h"

#define EXEC "projects/p/locations/r/jobs/j/executions/j-abcde"

typedef struct stub {
	jr_loop *l;
	int runs, follows, finds;
	int run_code;    /* RunJob's answer */
	int follow_code; /* follow's answer (-1: follow cannot start) */
	int find_code;   /* find's answer (0: found) */
	int64_t creds_ms; /* > 0: RunJob could not get a token; the source retries after this */
} stub;

typedef struct answer {
	jr_run_cb cb;
	void *arg;
	int code;
	int recovered;
	int64_t creds_ms;
} answer;

static void answer_now(void *arg)
{
	answer *a = arg;
	jr_runresult r = {.code = a->code, .message = a->code ? "injected" : "",
			  .retry_delay_ms = -1, .recovered = a->recovered};
	if (a->code == 0)
		r.execution = EXEC;
	if (a->creds_ms > 0) { /* what runjob reports for a call the token source refused */
		r.code = JR_GRPC_UNAVAILABLE;
		r.has_class = 1;
		r.cls = JR_ERR_CREDENTIALS;
		r.code_name = "CREDENTIALS";
		r.retry_delay_ms = a->creds_ms;
	}
	a->cb(a->arg, &r);
	free(a);
}

static void later(stub *s, int code, int recovered, jr_run_cb cb, void *arg)
{
	answer *a = malloc(sizeof *a);
	*a = (answer){cb, arg, code, recovered, 0};
	loop_timer_add(s->l, 0, answer_now, a);
}

static int s_run(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
{
	(void)req;
	(void)timeout_ms;
	stub *s = ctx;
	s->runs++;
	if (s->creds_ms > 0) {
		answer *a = malloc(sizeof *a);
		*a = (answer){cb, arg, 0, 0, s->creds_ms};
		loop_timer_add(s->l, 0, answer_now, a);
		return 0;
	}
	later(s, s->run_code, 0, cb, arg);
	return 0;
}

static int s_follow(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		    void *arg)
{
	(void)req;
	stub *s = ctx;
	s->follows++;
	CU_ASSERT_STRING_EQUAL(started->execution, EXEC);
	if (s->follow_code < 0)
		return -1;
	later(s, s->follow_code, 0, cb, arg);
	return 0;
}

static int s_find(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg)
{
	(void)req;
	(void)since_ms;
	stub *s = ctx;
	s->finds++;
	later(s, s->find_code, s->find_code == 0, cb, arg);
	return 0;
}

/* A sink that keeps the last record's code, class and message. */
typedef struct rec_sink {
	jr_sink s;
	int n;
	jr_errclass cls;
	char code[64], msg[1500];
} rec_sink;

static int rs_write(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		    size_t errlen)
{
	(void)cb;
	(void)arg;
	(void)err;
	(void)errlen;
	rec_sink *k = (rec_sink *)s;
	k->n++;
	k->cls = r->cls;
	snprintf(k->code, sizeof k->code, "%s", r->code);
	snprintf(k->msg, sizeof k->msg, "%s", r->message);
	return 0;
}

static void rs_close(jr_sink *s)
{
	(void)s;
}

typedef struct result {
	int done;
	jr_outcome o;
} result;

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	(void)ev;
	result *r = arg;
	r->done++;
	r->o = *o;
	r->o.retry = NULL;
}

static const char *const on_completion =
	"project: p\nregion: r\n"
	"routes:\n  - { name: a, match: { type: t.x }, job: j, ack: on_completion }\n";
static const char *const on_dispatch =
	"project: p\nregion: r\n"
	"routes:\n  - { name: a, match: { type: t.x }, job: j }\n";

/* deliver: n deliveries of one event through a dispatcher over s and k; out[i] their outcomes. */
static void deliver(const char *yaml, stub *s, rec_sink *k, int n, result *out)
{
	jr_config c;
	jr_buf errs;
	buf_init(&errs, 0);
	CU_ASSERT_EQUAL_FATAL(config_load_string(&c, "t.yaml", yaml, strlen(yaml), &errs), 0);
	buf_free(&errs);
	*k = (rec_sink){.s = {.name = "test", .write = rs_write, .close = rs_close}};
	s->l = loop_new();
	jr_runner rn = {.run = s_run, .follow = s_follow, .find = s_find, .ctx = s};
	jr_dispatcher *d = dispatcher_new(&c, loop_timers(s->l), rn, &k->s, NULL, NULL);
	jr_event *ev = tev_new("e1", "/t", "t.x");
	for (int i = 0; i < n; i++) {
		out[i] = (result){0};
		dispatcher_submit(d, ev, i + 1, NULL, on_outcome, &out[i]);
		int64_t end = loop_now_ms() + 5000;
		while (!out[i].done && loop_now_ms() < end)
			loop_run_once(s->l, end - loop_now_ms());
		CU_ASSERT_EQUAL(out[i].done, 1);
	}
	CU_ASSERT_EQUAL(dispatcher_open(d), 0);
	dispatcher_free(d);
	event_free(ev);
	loop_free(s->l);
	config_free(&c);
}

/* Reads denied after RunJob OK: one RunJob, done, EXECUTION_UNCONFIRMED naming the execution. */
static void test_follow_denied(void)
{
	stub s = {.follow_code = JR_GRPC_PERMISSION_DENIED};
	rec_sink k;
	result r[2];
	deliver(on_completion, &s, &k, 2, r);
	CU_ASSERT_EQUAL(s.runs, 1);
	CU_ASSERT_EQUAL(s.follows, 1);
	CU_ASSERT_EQUAL(r[0].o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r[0].o.dead_lettered, 1);
	CU_ASSERT_EQUAL(k.n, 1);
	CU_ASSERT_STRING_EQUAL(k.code, "EXECUTION_UNCONFIRMED");
	CU_ASSERT_EQUAL(k.cls, JR_ERR_PERMISSION);
	CU_ASSERT_PTR_NOT_NULL(strstr(k.msg, "execution " EXEC " started"));
	/* the event again (a redelivery): its job started, so it is a duplicate */
	CU_ASSERT_EQUAL(r[1].o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r[1].o.duplicates, 1);
}

/* Every read failure is unconfirmed, never a retry: UNAVAILABLE, NOT_FOUND, a follow that cannot start. */
static void test_follow_other_failures(void)
{
	const int codes[] = {JR_GRPC_UNAVAILABLE, JR_GRPC_NOT_FOUND, JR_GRPC_DEADLINE_EXCEEDED, -1};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		stub s = {.follow_code = codes[i]};
		rec_sink k;
		result r;
		deliver(on_completion, &s, &k, 1, &r);
		CU_ASSERT_EQUAL(s.runs, 1);
		CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
		CU_ASSERT_STRING_EQUAL(k.code, "EXECUTION_UNCONFIRMED");
	}
}

/* Shutdown (CANCELLED) is not a failed read: the route is retried, nothing dead-lettered. */
static void test_follow_shutdown(void)
{
	stub s = {.follow_code = JR_GRPC_CANCELLED};
	rec_sink k;
	result r;
	deliver(on_completion, &s, &k, 1, &r);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(k.n, 0);
}

/* The execution succeeded: dispatched. */
static void test_follow_ok(void)
{
	stub s = {0};
	rec_sink k;
	result r;
	deliver(on_completion, &s, &k, 1, &r);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	CU_ASSERT_EQUAL(k.n, 0);
}

/* An ambiguous RunJob: found → dispatched; not found or the lookup failed → the timeout policy (retry). */
static void test_find(void)
{
	const int codes[] = {0, JR_GRPC_NOT_FOUND, JR_GRPC_PERMISSION_DENIED};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		stub s = {.run_code = JR_GRPC_DEADLINE_EXCEEDED, .find_code = codes[i]};
		rec_sink k;
		result r;
		deliver(on_dispatch, &s, &k, 1, &r);
		CU_ASSERT_EQUAL(s.runs, 1);
		CU_ASSERT_EQUAL(s.finds, 1);
		CU_ASSERT_EQUAL(k.n, 0);
		if (codes[i] == 0) {
			CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
			CU_ASSERT_EQUAL(r.o.dispatched, 1);
		} else {
			CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
			CU_ASSERT_EQUAL(r.o.cls, JR_ERR_TIMEOUT);
		}
	}
}

/*
 * No access token (class credentials): the call never reached the API, so the
 * route is held: RETRY with hold set, the token source's delay (at least 1 s),
 * no dead letter, no find, and the holds cost no attempt.
 */
static void test_credentials_hold(void)
{
	const int64_t delays[] = {2500, 10};
	for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
		stub s = {.creds_ms = delays[i]};
		rec_sink k;
		result r[3];
		deliver(on_dispatch, &s, &k, 3, r);
		CU_ASSERT_EQUAL(s.runs, 3);
		CU_ASSERT_EQUAL(s.finds, 0);
		CU_ASSERT_EQUAL(k.n, 0);
		for (int j = 0; j < 3; j++) {
			CU_ASSERT_EQUAL(r[j].o.kind, JR_OUTCOME_RETRY);
			CU_ASSERT_EQUAL(r[j].o.hold, 1);
			CU_ASSERT_EQUAL(r[j].o.held, 1);
			CU_ASSERT_EQUAL(r[j].o.cls, JR_ERR_CREDENTIALS);
			CU_ASSERT_EQUAL(r[j].o.delay_ms, delays[i] > 1000 ? delays[i] : 1000);
			CU_ASSERT_EQUAL(r[j].o.attempt, 1); /* deliveries 1, 2, 3 less the holds before each */
		}
	}
}

int main(void)
{
	grpc_init();
	static const cu_test tests[] = {
		{"follow denied: one RunJob, unconfirmed, then a duplicate", test_follow_denied},
		{"other read failures: unconfirmed", test_follow_other_failures},
		{"shutdown while following: retried", test_follow_shutdown},
		{"execution succeeded: dispatched", test_follow_ok},
		{"ambiguous failure: found, not found, lookup failed", test_find},
		{"no access token: held, no attempt, no dead letter", test_credentials_hold},
		{NULL, NULL},
	};
	int rc = cu_run("dispatch_reads", tests);
	grpc_shutdown();
	return rc;
}
