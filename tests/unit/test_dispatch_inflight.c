/*
 * test_dispatch_inflight.c — two deliveries of one event at once, and what
 * serve's load shedding reads from the dispatcher. A stand-in runner keeps
 * every RunJob open until the test answers it (from the loop, as a real
 * runner would): a second delivery of an event whose RunJob is in flight
 * sends nothing and ends as a duplicate when the first started the job, or
 * sends its own when the first failed; shutdown ends a waiting one unsent.
 * dispatcher_queued counts tasks waiting for a call slot, and
 * dispatcher_latency_ms averages the answers' latency, and a delivery shed
 * before submit costs no attempt. Nothing sleeps.
 */
#include "cu.h"

#include <string.h>

#include <grpc/grpc.h>

#include "config_load.h"
#include "dispatcher.h"
#include "loop.h"
#include "testev.h"

#define CALLS_MAX 8

typedef struct call {
	jr_run_cb cb;
	void *arg;
} call;

typedef struct stub {
	jr_loop *l;
	int runs;
	call calls[CALLS_MAX]; /* open RunJob calls, in the order sent */
	int code;              /* the answer answer_one gives */
	int64_t latency_ms;
} stub;

static int s_run(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
{
	(void)req;
	(void)timeout_ms;
	stub *s = ctx;
	CU_ASSERT_FATAL(s->runs < CALLS_MAX);
	s->calls[s->runs++] = (call){cb, arg};
	return 0;
}

/* answer_one: call i gets s->code after s->latency_ms (said, not waited). */
static void answer_one(void *arg)
{
	stub *s = arg;
	for (int i = 0; i < s->runs; i++) {
		if (!s->calls[i].cb)
			continue;
		call c = s->calls[i];
		s->calls[i].cb = NULL;
		jr_runresult r = {.code = s->code, .message = s->code ? "injected" : "",
				  .execution = s->code ? NULL : "projects/p/locations/r/jobs/j/executions/x",
				  .retry_delay_ms = -1, .latency_ms = s->latency_ms};
		c.cb(c.arg, &r);
		return;
	}
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

typedef struct fixture {
	jr_config c;
	stub s;
	jr_dispatcher *d;
} fixture;

static void fx_open(fixture *f, const char *yaml)
{
	jr_buf errs;
	buf_init(&errs, 0);
	CU_ASSERT_EQUAL_FATAL(config_load_string(&f->c, "t.yaml", yaml, strlen(yaml), &errs), 0);
	buf_free(&errs);
	f->s = (stub){.l = loop_new()};
	jr_runner rn = {.run = s_run, .ctx = &f->s};
	f->d = dispatcher_new(&f->c, loop_timers(f->s.l), rn, NULL, NULL, NULL);
}

/* fx_turn: runs the loop until nothing is due now (outcomes are posted as 0 ms timers). */
static void fx_turn(fixture *f)
{
	for (int i = 0; i < 10; i++)
		loop_run_once(f->s.l, 0);
}

/* fx_answer: the oldest open call gets code; then the loop turns. */
static void fx_answer(fixture *f, int code, int64_t latency_ms)
{
	f->s.code = code;
	f->s.latency_ms = latency_ms;
	answer_one(&f->s);
	fx_turn(f);
}

static void fx_close(fixture *f)
{
	CU_ASSERT_EQUAL(dispatcher_open(f->d), 0);
	dispatcher_free(f->d);
	loop_free(f->s.l);
	config_free(&f->c);
}

static const char *const one_route =
	"project: p\nregion: r\n"
	"routes:\n  - { name: a, match: { type: t.x }, job: j }\n";
static const char *const no_dedup =
	"project: p\nregion: r\ndedup: { ttl: 0s }\n"
	"routes:\n  - { name: a, match: { type: t.x }, job: j }\n";

/* The first delivery starts the job: the second, submitted while it was in flight, is a duplicate. */
static void test_second_waits(void)
{
	const char *const yamls[] = {one_route, no_dedup}; /* with dedup off as well */
	for (size_t y = 0; y < 2; y++) {
		fixture f;
		fx_open(&f, yamls[y]);
		jr_event *e1 = tev_new("e1", "/s", "t.x"), *e2 = tev_new("e1", "/s", "t.x");
		result r1 = {0}, r2 = {0};
		dispatcher_submit(f.d, e1, 1, NULL, on_outcome, &r1);
		dispatcher_submit(f.d, e2, 2, NULL, on_outcome, &r2);
		fx_turn(&f);
		CU_ASSERT_EQUAL(f.s.runs, 1);
		CU_ASSERT_EQUAL(r1.done + r2.done, 0);
		fx_answer(&f, 0, 10);
		CU_ASSERT_EQUAL(f.s.runs, 1);
		CU_ASSERT_EQUAL(r1.done, 1);
		CU_ASSERT_EQUAL(r1.o.kind, JR_OUTCOME_DONE);
		CU_ASSERT_EQUAL(r1.o.dispatched, 1);
		CU_ASSERT_EQUAL(r2.done, 1);
		CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_DONE);
		CU_ASSERT_EQUAL(r2.o.duplicates, 1);
		CU_ASSERT_EQUAL(r2.o.dispatched, 0);
		fx_close(&f);
		event_free(e1);
		event_free(e2);
	}
}

/*
 * The first delivery fails (to be retried): the waiting one sends nothing at
 * once (that would skip the policy's delay): it is tried again later, as a
 * hold that costs no attempt. A third delivery while one already waits is
 * tried later at once, and not parked.
 */
static void test_second_goes_on(void)
{
	fixture f;
	fx_open(&f, one_route);
	jr_event *e1 = tev_new("e1", "/s", "t.x"), *e2 = tev_new("e1", "/s", "t.x"),
		 *e3 = tev_new("e1", "/s", "t.x");
	result r1 = {0}, r2 = {0}, r3 = {0};
	dispatcher_submit(f.d, e1, 1, NULL, on_outcome, &r1);
	dispatcher_submit(f.d, e2, 1, NULL, on_outcome, &r2);
	dispatcher_submit(f.d, e3, 1, NULL, on_outcome, &r3);
	fx_turn(&f);
	CU_ASSERT_EQUAL(r3.done, 1); /* one waiter a key */
	CU_ASSERT_EQUAL(r3.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r3.o.hold, 1);
	fx_answer(&f, JR_GRPC_UNAVAILABLE, 10);
	CU_ASSERT_EQUAL(r1.done, 1);
	CU_ASSERT_EQUAL(r1.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(f.s.runs, 1);
	CU_ASSERT_EQUAL(r2.done, 1);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.hold, 1);
	CU_ASSERT_EQUAL(r2.o.attempt, 1);
	/* its next delivery, with the key free, sends RunJob */
	result r4 = {0};
	dispatcher_submit(f.d, e2, 2, NULL, on_outcome, &r4);
	fx_turn(&f);
	CU_ASSERT_EQUAL(f.s.runs, 2);
	fx_answer(&f, 0, 10);
	CU_ASSERT_EQUAL(r4.done, 1);
	CU_ASSERT_EQUAL(r4.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r4.o.dispatched, 1);
	fx_close(&f);
	event_free(e1);
	event_free(e2);
	event_free(e3);
}

/* Other events and other routes are not held back by a key in flight. */
static void test_other_keys(void)
{
	fixture f;
	fx_open(&f, one_route);
	jr_event *e1 = tev_new("e1", "/s", "t.x"), *e2 = tev_new("e2", "/s", "t.x"),
		 *e3 = tev_new("e1", "/other", "t.x");
	result r[3] = {{0}};
	dispatcher_submit(f.d, e1, 1, NULL, on_outcome, &r[0]);
	dispatcher_submit(f.d, e2, 1, NULL, on_outcome, &r[1]);
	dispatcher_submit(f.d, e3, 1, NULL, on_outcome, &r[2]);
	fx_turn(&f);
	CU_ASSERT_EQUAL(f.s.runs, 3);
	for (int i = 0; i < 3; i++)
		fx_answer(&f, 0, 10);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(r[i].o.dispatched, 1);
	fx_close(&f);
	event_free(e1);
	event_free(e2);
	event_free(e3);
}

/* Shutdown while a delivery waits: it ends unsent (RETRY, hold: no attempt spent). */
static void test_stop_while_waiting(void)
{
	fixture f;
	fx_open(&f, one_route);
	jr_event *e1 = tev_new("e1", "/s", "t.x"), *e2 = tev_new("e1", "/s", "t.x");
	result r1 = {0}, r2 = {0};
	dispatcher_submit(f.d, e1, 1, NULL, on_outcome, &r1);
	dispatcher_submit(f.d, e2, 1, NULL, on_outcome, &r2);
	fx_turn(&f);
	dispatcher_stop(f.d);
	fx_answer(&f, JR_GRPC_CANCELLED, 10);
	CU_ASSERT_EQUAL(f.s.runs, 1);
	CU_ASSERT_EQUAL(r1.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.done, 1);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.hold, 1);
	fx_close(&f);
	event_free(e1);
	event_free(e2);
}

/* Queue depth past concurrency, and the latency average (weight 1/8). */
static void test_queue_and_latency(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nconcurrency: 1\n"
		    "routes:\n  - { name: a, match: { type: t.x }, job: j }\n");
	jr_event *ev[3] = {tev_new("e1", "/s", "t.x"), tev_new("e2", "/s", "t.x"),
			   tev_new("e3", "/s", "t.x")};
	result r[3] = {{0}};
	CU_ASSERT_EQUAL(dispatcher_latency_ms(f.d), -1);
	for (int i = 0; i < 3; i++)
		dispatcher_submit(f.d, ev[i], 1, NULL, on_outcome, &r[i]);
	fx_turn(&f);
	CU_ASSERT_EQUAL(dispatcher_in_flight(f.d), 1);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 2);
	fx_answer(&f, 0, 1000);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 1);
	CU_ASSERT_EQUAL(dispatcher_latency_ms(f.d), 1000);
	fx_answer(&f, 0, 1800);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 0);
	CU_ASSERT_EQUAL(dispatcher_latency_ms(f.d), 1100);
	fx_answer(&f, 0, 1100);
	CU_ASSERT_EQUAL(dispatcher_latency_ms(f.d), 1100);
	CU_ASSERT_EQUAL(f.s.runs, 3);
	fx_close(&f);
	for (int i = 0; i < 3; i++)
		event_free(ev[i]);
}

/* Deliveries shed before submit cost no attempt: the next submit's attempt is less them. */
static void test_shed_no_attempt(void)
{
	fixture f;
	fx_open(&f, one_route);
	jr_event *e1 = tev_new("e1", "/s", "t.x");
	dispatcher_shed(f.d, e1);
	dispatcher_shed(f.d, e1);
	result r = {0};
	dispatcher_submit(f.d, e1, 3, NULL, on_outcome, &r);
	fx_turn(&f);
	fx_answer(&f, JR_GRPC_UNAVAILABLE, 10);
	CU_ASSERT_EQUAL(r.done, 1);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r.o.attempt, 1);
	fx_close(&f);
	event_free(e1);
}

int main(void)
{
	grpc_init();
	static const cu_test tests[] = {
		{"a second delivery while the first is in flight: a duplicate", test_second_waits},
		{"the first is to be retried: the second is tried later", test_second_goes_on},
		{"other events and sources are not held back", test_other_keys},
		{"shutdown while waiting: unsent, held", test_stop_while_waiting},
		{"queue depth and latency average", test_queue_and_latency},
		{"a shed delivery costs no attempt", test_shed_no_attempt},
		{NULL, NULL},
	};
	int rc = cu_run("dispatch_inflight", tests);
	grpc_shutdown();
	return rc;
}
