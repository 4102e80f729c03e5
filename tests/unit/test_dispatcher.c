/*
 * test_dispatcher.c — the dispatcher's state machine, driven step by step
 * through the stand-ins of dispatcher_stubs.h: every RunJob, follow and find
 * is answered by the test, dead letters are confirmed by it, and time moves
 * only when it advances the stepped clock. No loop, no gRPC, no sleeps.
 *
 * Covered: retries (delay per policy, --no-retry dead letters), breaker
 * holds (no attempt spent, half-open probe), dead-letter waits (DONE only
 * once the sink confirmed; FAILED when it did not), rate-limit waits, dedup,
 * a delivery waiting for another of its key, ack: on_completion follow,
 * an ambiguous failure and its lookup, SIGTERM's dispatcher_stop, and the
 * trace and phase lines the dispatcher logs.
 */
#include "cu.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config_load.h"
#include "dispatcher_stubs.h"
#include "dispatcher.h"
#include "log.h"
#include "testev.h"
#include "trace.h"

typedef struct result {
	int done;
	jr_outcome o;
	unsigned char retry0; /* o.retry[0], copied (o.retry dies with the callback) */
} result;

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	(void)ev;
	result *r = arg;
	r->done++;
	r->o = *o;
	r->retry0 = o->retry ? o->retry[0] : 0;
	r->o.retry = NULL;
}

typedef struct fixture {
	jr_config c;
	stub_runner rn;
	stub_sink sink;
	stub_clock clk;
	jr_dispatcher *d;
	jr_event *evs[16];
	int n_evs;
	int follow_started; /* opts.on_follow calls */
} fixture;

static void on_follow(void *arg)
{
	((fixture *)arg)->follow_started++;
}

typedef struct fx_opts {
	int follow, find, no_retry;
	stub_sink_mode sink;
} fx_opts;

static void fx_open(fixture *f, const char *yaml, fx_opts fo)
{
	memset(f, 0, sizeof *f);
	jr_buf errs;
	buf_init(&errs, 0);
	int rc = config_load_string(&f->c, "t.yaml", yaml, strlen(yaml), &errs);
	if (rc)
		fprintf(stderr, "%.*s", (int)errs.len, errs.data);
	buf_free(&errs);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	stub_clock_init(&f->clk);
	stub_sink_init(&f->sink, fo.sink);
	jr_dispatch_opts o = {.no_retry = fo.no_retry, .on_follow = on_follow, .on_follow_arg = f};
	f->d = dispatcher_new(&f->c, f->clk.tm, stub_runner_port(&f->rn, fo.follow, fo.find),
			      &f->sink.base, NULL, &o);
}

/* fx_ev: an event of type t.x from /s (freed by fx_close). */
static jr_event *fx_ev(fixture *f, const char *id)
{
	CU_ASSERT_FATAL(f->n_evs < 16);
	return f->evs[f->n_evs++] = tev_new(id, "/s", "t.x");
}

/* fx_submit: delivery `attempt` of a new event id; the outcome goes to r. */
static jr_event *fx_submit(fixture *f, const char *id, int attempt, result *r)
{
	jr_event *ev = fx_ev(f, id);
	dispatcher_submit(f->d, ev, attempt, NULL, on_outcome, r);
	stub_clock_turn(&f->clk);
	return ev;
}

static void fx_close(fixture *f)
{
	CU_ASSERT_EQUAL(dispatcher_open(f->d), 0);
	CU_ASSERT_EQUAL(stub_open_calls(&f->rn), 0);
	dispatcher_free(f->d);
	stub_clock_free(&f->clk);
	config_free(&f->c);
	for (int i = 0; i < f->n_evs; i++)
		event_free(f->evs[i]);
}

#define ROUTE_A "routes:\n  - { name: a, match: { type: t.x }, job: j }\n"

static const char *const base_yaml = "project: p\nregion: r\n" ROUTE_A;

/* ---- retries ---- */

/* UNAVAILABLE: RETRY with the network policy's jittered delay (at most 1 s at attempt 1), or RetryInfo's when longer. */
static void test_retry_unavailable(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){0});
	result r = {0};
	fx_submit(&f, "e1", 1, &r);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_EQUAL(dispatcher_in_flight(f.d), 1);
	CU_ASSERT_STRING_EQUAL(stub_nth(&f.rn, STUB_RUN, 0)->job, "projects/p/locations/r/jobs/j");
	CU_ASSERT_EQUAL(stub_nth(&f.rn, STUB_RUN, 0)->timeout_ms, f.c.call_timeout_ms);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_UNAVAILABLE);
	CU_ASSERT_EQUAL(r.done, 0); /* never from inside the runner's callback */
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.done, 1);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r.o.hold, 0);
	CU_ASSERT_EQUAL(r.o.attempt, 1);
	CU_ASSERT_EQUAL(r.o.cls, JR_ERR_NETWORK);
	CU_ASSERT_EQUAL(r.retry0, 1);
	CU_ASSERT(r.o.delay_ms >= 0 && r.o.delay_ms <= 1000);
	CU_ASSERT_EQUAL(f.sink.writes, 0);
	CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].retried, 1);

	/* attempt 3 with RetryInfo 7 s: the hint is longer than the 4 s bound */
	result r2 = {0};
	fx_submit(&f, "e2", 3, &r2);
	jr_runresult res = {.code = JR_GRPC_UNAVAILABLE, .message = "busy", .retry_delay_ms = 7000};
	stub_answer(stub_nth(&f.rn, STUB_RUN, 1), &res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.attempt, 3);
	CU_ASSERT_EQUAL(r2.o.delay_ms, 7000);
	fx_close(&f);
}

/* The network policy's 8 attempts spent, or --no-retry: the failure is dead-lettered. */
static void test_retry_exhausted_and_no_retry(void)
{
	for (int no_retry = 0; no_retry < 2; no_retry++) {
		fixture f;
		fx_open(&f, base_yaml, (fx_opts){.no_retry = no_retry});
		result r = {0};
		fx_submit(&f, "e1", no_retry ? 1 : 8, &r);
		stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_UNAVAILABLE);
		stub_clock_turn(&f.clk);
		CU_ASSERT_EQUAL(r.done, 1);
		CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
		CU_ASSERT_EQUAL(r.o.dead_lettered, 1);
		CU_ASSERT_PTR_NULL(r.o.retry);
		CU_ASSERT_EQUAL(f.sink.writes, 1);
		CU_ASSERT_STRING_EQUAL(f.sink.dl[0].code, "UNAVAILABLE");
		CU_ASSERT_STRING_EQUAL(f.sink.dl[0].route, "a");
		CU_ASSERT_EQUAL(f.sink.dl[0].attempts, no_retry ? 1 : 8);
		CU_ASSERT_EQUAL(f.sink.dl[0].cls, JR_ERR_NETWORK);
		CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].dead_lettered, 1);
		fx_close(&f);
	}
}

/* ---- breaker holds ---- */

static const char *const breaker_yaml =
	"project: p\nregion: r\ncall_timeout: 5s\n"
	"circuit_breaker: { window: 2, min_calls: 2, failure_rate: 0.5, open_for: 10s, "
	"max_open_for: 1m, half_open_calls: 1 }\n" ROUTE_A;

/*
 * Two failures open the job's breaker: later deliveries are held (RETRY,
 * hold = 1, no RunJob) for the open time left and cost no attempt. After it
 * one probe goes out; others wait for it; its success closes the breaker.
 */
static void test_breaker_hold_and_probe(void)
{
	fixture f;
	fx_open(&f, breaker_yaml, (fx_opts){0});
	result r1 = {0}, r2 = {0};
	fx_submit(&f, "e1", 1, &r1);
	fx_submit(&f, "e2", 1, &r2);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_UNAVAILABLE);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.hold, 0);

	stub_clock_advance(&f.clk, 4000);
	result h = {0};
	fx_submit(&f, "e3", 1, &h);
	CU_ASSERT_EQUAL(f.rn.runs, 2); /* nothing sent */
	CU_ASSERT_EQUAL(h.done, 1);
	CU_ASSERT_EQUAL(h.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(h.o.hold, 1);
	CU_ASSERT_EQUAL(h.o.held, 1);
	CU_ASSERT_EQUAL(h.retry0, 1);
	CU_ASSERT_EQUAL(h.o.delay_ms, 6000); /* 10 s open, 4 s gone */
	CU_ASSERT_EQUAL(h.o.cls, JR_ERR_NETWORK);
	CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].held, 1);

	/* half-open: e3's next delivery (its 2nd by the source's count) is the probe, attempt 1 */
	stub_clock_advance(&f.clk, 6000);
	result p = {0}, w = {0};
	jr_event *e3 = f.evs[2];
	dispatcher_submit(f.d, e3, 2, NULL, on_outcome, &p);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.runs, 3);
	fx_submit(&f, "e4", 1, &w); /* held while the probe is out: min(call_timeout, open_for) */
	CU_ASSERT_EQUAL(f.rn.runs, 3);
	CU_ASSERT_EQUAL(w.o.hold, 1);
	CU_ASSERT_EQUAL(w.o.delay_ms, 5000);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 2), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(p.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(p.o.dispatched, 1);
	CU_ASSERT_EQUAL(p.o.attempt, 1); /* the hold cost no attempt */

	/* closed again: the next delivery is sent */
	result n = {0};
	fx_submit(&f, "e5", 1, &n);
	CU_ASSERT_EQUAL(f.rn.runs, 4);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 3), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(n.o.kind, JR_OUTCOME_DONE);
	fx_close(&f);
}

/* A failed probe opens the breaker again, for twice as long. */
static void test_breaker_probe_fails(void)
{
	fixture f;
	fx_open(&f, breaker_yaml, (fx_opts){0});
	result r[4] = {{0}};
	fx_submit(&f, "e1", 1, &r[0]);
	fx_submit(&f, "e2", 1, &r[1]);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_UNAVAILABLE);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_UNAVAILABLE);
	stub_clock_advance(&f.clk, 10000);
	fx_submit(&f, "e3", 1, &r[2]);
	CU_ASSERT_EQUAL(f.rn.runs, 3);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 2), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r[2].o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r[2].o.hold, 0);
	fx_submit(&f, "e4", 1, &r[3]);
	CU_ASSERT_EQUAL(f.rn.runs, 3);
	CU_ASSERT_EQUAL(r[3].o.hold, 1);
	CU_ASSERT_EQUAL(r[3].o.delay_ms, 20000);
	fx_close(&f);
}

/* ---- dead-letter waits ---- */

/* INVALID_ARGUMENT is dead-lettered: DONE only after the sink confirmed; FAILED when it could not. */
static void test_dead_letter_waits(void)
{
	for (int ok = 0; ok < 2; ok++) {
		fixture f;
		fx_open(&f, base_yaml, (fx_opts){.sink = SINK_LATER});
		result r = {0};
		fx_submit(&f, "e1", 1, &r);
		stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_INVALID_ARGUMENT);
		stub_clock_advance(&f.clk, 60000);
		CU_ASSERT_EQUAL(f.sink.writes, 1);
		CU_ASSERT_STRING_EQUAL(f.sink.dl[0].code, "INVALID_ARGUMENT");
		CU_ASSERT_EQUAL(r.done, 0); /* not durable yet */
		CU_ASSERT_EQUAL(dispatcher_open(f.d), 1);
		stub_sink_confirm(&f.sink, 0, ok);
		CU_ASSERT_EQUAL(r.done, 0);
		stub_clock_turn(&f.clk);
		CU_ASSERT_EQUAL(r.done, 1);
		CU_ASSERT_EQUAL(r.o.kind, ok ? JR_OUTCOME_DONE : JR_OUTCOME_FAILED);
		CU_ASSERT_EQUAL(r.o.dead_lettered, ok);
		CU_ASSERT_EQUAL(r.o.failed, !ok);
		CU_ASSERT_EQUAL(r.o.cls, JR_ERR_INVALID_EVENT);
		CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].dead_lettered, ok);
		CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].failed, !ok);
		fx_close(&f);
	}
}

/* A sink that fails at once: FAILED, and the record goes to out. */
static void test_dead_letter_sink_fails_now(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.sink = SINK_FAIL});
	dispatcher_free(f.d);
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	f.d = dispatcher_new(&f.c, f.clk.tm, stub_runner_port(&f.rn, 0, 0), &f.sink.base, out,
			     NULL);
	result r = {0};
	fx_submit(&f, "e1", 1, &r);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_INVALID_ARGUMENT);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_FAILED);
	CU_ASSERT_EQUAL(r.o.failed, 1);
	CU_ASSERT_EQUAL(r.o.dead_lettered, 0);
	fclose(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"code\":\"INVALID_ARGUMENT\""));
	CU_ASSERT_EQUAL(text[len - 1], '\n');
	free(text);
	fx_close(&f);
}

/* ---- rate limits ---- */

/*
 * One token a 500 ms, burst 1: the second call waits for its token on the
 * clock (holding no call slot, not queued for one), the third behind it.
 */
static void test_rate_limit_wait(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nroutes:\n"
		    "  - { name: a, match: { type: t.x }, job: j, "
		    "rate_limit: { per_second: 2, burst: 1 } }\n",
		(fx_opts){0});
	result r[3] = {{0}};
	fx_submit(&f, "e1", 1, &r[0]);
	fx_submit(&f, "e2", 1, &r[1]);
	fx_submit(&f, "e3", 1, &r[2]);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 0);
	CU_ASSERT_EQUAL(dispatcher_in_flight(f.d), 1);
	stub_clock_advance(&f.clk, 499);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_clock_advance(&f.clk, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	stub_clock_advance(&f.clk, 499);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	stub_clock_advance(&f.clk, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 3);
	for (int i = 0; i < 3; i++)
		stub_answer_code(stub_nth(&f.rn, STUB_RUN, i), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(r[i].o.kind, JR_OUTCOME_DONE);
		CU_ASSERT_EQUAL(r[i].o.dispatched, 1);
	}
	fx_close(&f);
}

/* ---- dedup ---- */

/* A key that succeeded within dedup.ttl is a duplicate (no RunJob); after the ttl it is sent again. */
static void test_dedup_duplicate(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\ndedup: { ttl: 1m }\n" ROUTE_A, (fx_opts){0});
	result r1 = {0}, r2 = {0}, r3 = {0};
	fx_submit(&f, "e1", 1, &r1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.dispatched, 1);
	stub_clock_advance(&f.clk, 59000);
	fx_submit(&f, "e1", 2, &r2);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r2.o.duplicates, 1);
	CU_ASSERT_EQUAL(r2.o.dispatched, 0);
	CU_ASSERT_EQUAL(r2.o.matched, 1);
	CU_ASSERT_EQUAL(dispatcher_route_stats(f.d)[0].duplicates, 1);
	stub_clock_advance(&f.clk, 2000);
	fx_submit(&f, "e1", 3, &r3);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r3.o.dispatched, 1);
	fx_close(&f);
}

/* ---- in flight: a second delivery of a key waits for the first ---- */

static void test_key_waiter(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){0});
	result r1 = {0}, r2 = {0};
	fx_submit(&f, "e1", 1, &r1);
	fx_submit(&f, "e1", 2, &r2);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_EQUAL(r2.done, 0);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.dispatched, 1);
	CU_ASSERT_EQUAL(r2.done, 1);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r2.o.duplicates, 1);

	/* the first fails: the waiter sends nothing now and is held for 1 s */
	result r3 = {0}, r4 = {0};
	fx_submit(&f, "e2", 1, &r3);
	fx_submit(&f, "e2", 1, &r4);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	CU_ASSERT_EQUAL(r3.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r3.o.hold, 0);
	CU_ASSERT_EQUAL(r4.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r4.o.hold, 1);
	CU_ASSERT_EQUAL(r4.o.delay_ms, 1000);
	fx_close(&f);
}

/* ---- ack: on_completion ---- */

static const char *const completion_yaml =
	"project: p\nregion: r\nroutes:\n"
	"  - { name: a, match: { type: t.x }, job: j, ack: on_completion }\n";

/* RunJob OK: the execution is followed (no call slot); a failed execution is application: dead-lettered. */
static void test_follow_application_failure(void)
{
	fixture f;
	fx_open(&f, completion_yaml, (fx_opts){.follow = 1});
	result r = {0};
	fx_submit(&f, "e1", 1, &r);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.done, 0);
	CU_ASSERT_EQUAL(f.rn.follows, 1);
	CU_ASSERT_EQUAL(f.follow_started, 1);
	CU_ASSERT_EQUAL(dispatcher_following(f.d), 1);
	CU_ASSERT_EQUAL(dispatcher_in_flight(f.d), 0);
	stub_call *fc = stub_nth(&f.rn, STUB_FOLLOW, 0);
	CU_ASSERT_STRING_EQUAL(fc->execution, "projects/p/locations/r/jobs/j/executions/x");
	jr_runresult res = {.code = JR_GRPC_UNKNOWN, .message = "task failed", .retry_delay_ms = -1,
			    .has_class = 1, .cls = JR_ERR_APPLICATION, .code_name = "EXECUTION_FAILED"};
	stub_answer(fc, &res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(dispatcher_following(f.d), 0);
	CU_ASSERT_EQUAL(r.done, 1);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dead_lettered, 1);
	CU_ASSERT_EQUAL(r.o.cls, JR_ERR_APPLICATION);
	CU_ASSERT_EQUAL(f.sink.writes, 1);
	CU_ASSERT_STRING_EQUAL(f.sink.dl[0].code, "EXECUTION_FAILED");
	CU_ASSERT_EQUAL(f.sink.dl[0].cls, JR_ERR_APPLICATION);
	fx_close(&f);
}

/* The execution's end could not be read: unconfirmed, dead-lettered, and never sent again. */
static void test_follow_unconfirmed(void)
{
	fixture f;
	fx_open(&f, completion_yaml, (fx_opts){.follow = 1});
	result r = {0}, again = {0};
	fx_submit(&f, "e1", 1, &r);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_answer_code(stub_nth(&f.rn, STUB_FOLLOW, 0), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dead_lettered, 1);
	CU_ASSERT_STRING_EQUAL(f.sink.dl[0].code, "EXECUTION_UNCONFIRMED");
	fx_submit(&f, "e1", 2, &again);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_EQUAL(again.o.duplicates, 1);
	fx_close(&f);
}

/* ---- ambiguous failures ---- */

/* DEADLINE_EXCEEDED: find looks for the execution; found means dispatched, none means the failure stands. */
static void test_ambiguous_find(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r1 = {0}, r2 = {0};
	fx_submit(&f, "e1", 1, &r1);
	fx_submit(&f, "e2", 1, &r2);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_DEADLINE_EXCEEDED);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.finds, 2);
	CU_ASSERT_EQUAL(r1.done + r2.done, 0);
	stub_call *c1 = stub_nth(&f.rn, STUB_FIND, 0);
	CU_ASSERT(c1->since_ms > 0);
	CU_ASSERT_STRING_EQUAL(c1->key, stub_nth(&f.rn, STUB_RUN, 0)->key);
	jr_runresult found = {.code = 0, .message = "", .retry_delay_ms = -1, .recovered = 1,
			      .execution = "projects/p/locations/r/jobs/j/executions/y"};
	stub_answer(c1, &found);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 1), JR_GRPC_NOT_FOUND);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r1.o.dispatched, 1);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.cls, JR_ERR_NETWORK);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	fx_close(&f);
}

/* ---- SIGTERM ---- */

/* dispatcher_stop: queued and rate-waiting tasks end unsent (RETRY, hold); the call in flight finishes. */
static void test_stop_drains(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nconcurrency: 1\n" ROUTE_A, (fx_opts){0});
	result r[4] = {{0}};
	fx_submit(&f, "e1", 1, &r[0]);
	fx_submit(&f, "e2", 3, &r[1]);
	fx_submit(&f, "e3", 1, &r[2]);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 2);
	dispatcher_stop(f.d);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 0);
	for (int i = 1; i < 3; i++) {
		CU_ASSERT_EQUAL(r[i].done, 1);
		CU_ASSERT_EQUAL(r[i].o.kind, JR_OUTCOME_RETRY);
		CU_ASSERT_EQUAL(r[i].o.hold, 1);
		CU_ASSERT_EQUAL(r[i].retry0, 1);
	}
	CU_ASSERT_EQUAL(r[1].o.attempt, 3);
	fx_submit(&f, "e4", 1, &r[3]); /* submitted after stop: unsent too */
	CU_ASSERT_EQUAL(r[3].o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r[3].o.hold, 1);
	CU_ASSERT_EQUAL(r[0].done, 0);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.runs, 1); /* nothing more leaves the queue */
	CU_ASSERT_EQUAL(r[0].o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r[0].o.dispatched, 1);
	fx_close(&f);
}

/* ---- log lines: the event's trace, and phase changes ---- */

/* log_lines_with: the lines of text that hold both a and b. */
static int log_lines_with(const char *text, const char *a, const char *b)
{
	int n = 0;
	for (const char *l = text; l && *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		char line[4096];
		snprintf(line, sizeof line, "%.*s", (int)len, l);
		n += strstr(line, a) && strstr(line, b);
		l = end ? end + 1 : NULL;
	}
	return n;
}

/*
 * An event with a traceparent: every dispatcher line about it, also those
 * logged from the runner's callbacks, names its Cloud Trace, its sampled flag
 * and the route delivery's dispatch span, which is the parent span of the
 * execution's TRACEPARENT; an event without one names none and gets no
 * TRACEPARENT; TASK-PHASE lines show CALL -> FOLLOW at debug level.
 */
static void test_trace_and_phase_lines(void)
{
	char path[] = "/tmp/jr_test_dispatcher_XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	log_setup(fd, JR_LOG_JSON, JR_LOG_DEBUG);
	fixture f;
	fx_open(&f, completion_yaml, (fx_opts){.follow = 1});
	result r1 = {0}, r2 = {0};
	jr_event *e1 = fx_ev(&f, "e1");
	e1->trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	dispatcher_submit(f.d, e1, 1, NULL, on_outcome, &r1);
	fx_submit(&f, "e2", 1, &r2);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_OK);
	stub_answer_code(stub_nth(&f.rn, STUB_FOLLOW, 0), JR_GRPC_OK);
	stub_answer_code(stub_nth(&f.rn, STUB_FOLLOW, 1), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.dispatched + r2.o.dispatched, 2);
	fx_close(&f);
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	size_t len;
	char *text = cu_read_file(path, &len);
	close(fd);
	unlink(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	const char *tr =
		"\"logging.googleapis.com/trace\":\"projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736\"";
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-STARTED\"", "\"e1\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-STARTED\"", tr), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-OK\"", "\"e1\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-OK\"", tr), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"TASK-PHASE\"", "\"FOLLOW\""), 2);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"e2\"", "logging.googleapis.com/trace"), 0);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"e1\"", tr), 3); /* STARTED, PHASE, OK */
	/* the execution's TRACEPARENT: the same trace and flags, the dispatch span as parent */
	const stub_call *c1 = stub_nth(&f.rn, STUB_RUN, 0), *c2 = stub_nth(&f.rn, STUB_RUN, 1);
	CU_ASSERT_EQUAL(!c1->traceparent[0] + !c2->traceparent[0], 1); /* e1's only */
	const char *tp = c1->traceparent[0] ? c1->traceparent : c2->traceparent;
	jr_trace child;
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent(tp, &child), 0);
	CU_ASSERT_STRING_EQUAL(child.id, "4bf92f3577b34da6a3ce929d0e0e4736");
	CU_ASSERT_STRING_NOT_EQUAL(child.span, "00f067aa0ba902b7");
	CU_ASSERT_EQUAL(child.flags, 1);
	char span[80];
	snprintf(span, sizeof span, "\"logging.googleapis.com/spanId\":\"%s\"", child.span);
	CU_ASSERT_EQUAL(log_lines_with(text, span, "\"DISPATCH-STARTED\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, span, "\"DISPATCH-OK\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, span, "\"logging.googleapis.com/trace_sampled\":true"), 3);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"e2\"", "logging.googleapis.com/spanId"), 0);
	free(text);
}


/* ---- repeats: a lookup before RunJob (repeat_check) ---- */

#define PUBLISHED "2024-05-01T12:00:00Z"
#define PUBLISHED_MS 1714564800000LL

/* fx_msg: ev came in a Pub/Sub message, delivery `attempt` (0: not reported), published at publish (may be NULL). */
static jr_event *fx_msg(jr_event *ev, int attempt, const char *publish)
{
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	m->id = ev->id;
	m->publish_time = publish ? arena_strdup(&ev->arena, publish) : NULL;
	m->delivery_attempt = attempt;
	ev->message = m;
	return ev;
}

/* fx_submit_msg: as fx_submit, for an event from a Pub/Sub message. */
static jr_event *fx_submit_msg(fixture *f, const char *id, int attempt, const char *publish,
			       result *r)
{
	jr_event *ev = fx_msg(fx_ev(f, id), attempt, publish);
	dispatcher_submit(f->d, ev, attempt > 0 ? attempt : 1, NULL, on_outcome, r);
	stub_clock_turn(&f->clk);
	return ev;
}

/* now_rfc3339: the wall clock now, as Pub/Sub writes publish times. */
static const char *now_rfc3339(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static const jr_runresult found_res = {.code = 0, .message = "", .retry_delay_ms = -1,
				       .recovered = 1,
				       .execution = "projects/p/locations/r/jobs/j/executions/y"};

/* A redelivery (attempt 2) whose execution exists: found, DONE, no RunJob; the lookup starts a minute before publication. */
static void test_repeat_found(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0};
	fx_submit_msg(&f, "e1", 2, PUBLISHED, &r);
	CU_ASSERT_EQUAL(f.rn.finds, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	stub_call *c = stub_nth(&f.rn, STUB_FIND, 0);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_EQUAL(c->since_ms, PUBLISHED_MS - 60000);
	CU_ASSERT_STRING_EQUAL(c->job, "projects/p/locations/r/jobs/j");
	CU_ASSERT(strlen(c->key) > 0);
	CU_ASSERT_EQUAL(dispatcher_in_flight(f.d), 0);
	stub_answer(c, &found_res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.done, 1);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	/* it counts for dedup: the next delivery is a duplicate, with no lookup */
	result r2 = {0};
	dispatcher_submit(f.d, f.evs[0], 3, NULL, on_outcome, &r2);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.duplicates, 1);
	CU_ASSERT_EQUAL(f.rn.finds, 1);
	fx_close(&f);
}

/* Not found: RunJob as usual, on the same attempt. */
static void test_repeat_not_found(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0};
	fx_submit_msg(&f, "e1", 0, PUBLISHED, &r); /* no attempt reported; published long ago */
	CU_ASSERT_EQUAL(f.rn.finds, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 0), JR_GRPC_NOT_FOUND);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	CU_ASSERT_STRING_EQUAL(stub_nth(&f.rn, STUB_RUN, 0)->key, stub_nth(&f.rn, STUB_FIND, 0)->key);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	CU_ASSERT_EQUAL(r.o.attempt, 1);
	fx_close(&f);
}

/*
 * A lookup that found nothing marks where the key's next lookup starts: the
 * redelivery after a failed RunJob looks only from when that lookup began,
 * not from the publish time again (a busy job's pages are read once).
 */
static void test_repeat_next_lookup_starts_at_last(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0};
	int64_t before = (int64_t)time(NULL) * 1000;
	jr_event *ev = fx_submit_msg(&f, "e1", 2, PUBLISHED, &r);
	CU_ASSERT_EQUAL_FATAL(f.rn.finds, 1);
	CU_ASSERT_EQUAL(stub_nth(&f.rn, STUB_FIND, 0)->since_ms, PUBLISHED_MS - 60000);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 0), JR_GRPC_NOT_FOUND);
	CU_ASSERT_EQUAL_FATAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_PERMISSION_DENIED);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
	result r2 = {0};
	dispatcher_submit(f.d, ev, 3, NULL, on_outcome, &r2);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL_FATAL(f.rn.finds, 2);
	int64_t since = stub_nth(&f.rn, STUB_FIND, 1)->since_ms;
	CU_ASSERT(since >= before);
	CU_ASSERT(since <= (int64_t)time(NULL) * 1000 + 1000);
	/* a failed lookup marks nothing: the one after it starts where this one did */
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 1), JR_GRPC_UNAVAILABLE);
	CU_ASSERT_EQUAL_FATAL(f.rn.runs, 2); /* RunJob anyway (LOOKUP-FAILED) */
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 1), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_DONE);
	fx_close(&f);
}

/* log_capture: log lines go to a temporary file until log_captured returns its text (free it). */
static int log_capture(char *path)
{
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	log_setup(fd, JR_LOG_JSON, JR_LOG_INFO);
	return fd;
}

static char *log_captured(char *path, int fd)
{
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	size_t len;
	char *text = cu_read_file(path, &len);
	close(fd);
	unlink(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	return text;
}

/* The lookup failed (after the runner's retries): RunJob anyway, and the duplicate risk is logged. */
static void test_repeat_lookup_failed(void)
{
	char path[] = "/tmp/jr_test_dispatcher_XXXXXX";
	int fd = log_capture(path);
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0};
	fx_submit_msg(&f, "e1", 2, PUBLISHED, &r);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 0), JR_GRPC_UNAVAILABLE);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_DONE);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	fx_close(&f);
	char *text = log_captured(path, fd);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"LOOKUP-FAILED\"", "\"duplicate_risk\":\"yes\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-LOOKUP\"", "\"why\":\"attempt\""), 1);
	CU_ASSERT_EQUAL(log_lines_with(text, "\"DISPATCH-FOUND\"", "\"e1\""), 0);
	free(text);
}

/* A delivery whose earlier ones were all held here (or shed) started nothing: not looked up. */
static void test_repeat_after_holds_only(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0};
	jr_event *ev = fx_msg(fx_ev(&f, "e1"), 2, PUBLISHED);
	dispatcher_shed(f.d, ev); /* delivery 1 was turned away unsubmitted */
	dispatcher_submit(f.d, ev, 2, NULL, on_outcome, &r);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.finds, 0);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	fx_close(&f);
}

/* Mode never: a redelivery is sent at once, no lookup. */
static void test_repeat_mode_never(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nrepeat_check: { mode: never }\n" ROUTE_A,
		(fx_opts){.find = 1});
	result r = {0};
	fx_submit_msg(&f, "e1", 5, PUBLISHED, &r);
	CU_ASSERT_EQUAL(f.rn.finds, 0);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	fx_close(&f);
}

/* Not suspected: a fresh first delivery, an event with no message; and no find (--dry-run) means no lookup. */
static void test_repeat_not_suspected(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	char now[64];
	result r[3] = {{0}};
	fx_submit_msg(&f, "e1", 1, now_rfc3339(now, sizeof now), &r[0]);
	fx_submit(&f, "e2", 4, &r[1]); /* no Pub/Sub message: on_redelivery never suspects it */
	CU_ASSERT_EQUAL(f.rn.finds, 0);
	CU_ASSERT_EQUAL(f.rn.runs, 2);
	for (int i = 0; i < 2; i++)
		stub_answer_code(stub_nth(&f.rn, STUB_RUN, i), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r[0].o.dispatched + r[1].o.dispatched, 2);
	fx_close(&f);

	fx_open(&f, base_yaml, (fx_opts){0}); /* a runner without find */
	fx_submit_msg(&f, "e3", 2, PUBLISHED, &r[2]);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r[2].o.dispatched, 1);
	fx_close(&f);
}

/* Mode always: an event with no message is looked up too. */
static void test_repeat_mode_always(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nrepeat_check: { mode: always, lookback: 10m }\n" ROUTE_A,
		(fx_opts){.find = 1});
	result r = {0};
	fx_submit(&f, "e1", 1, &r);
	CU_ASSERT_EQUAL(f.rn.finds, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	stub_call *c = stub_nth(&f.rn, STUB_FIND, 0);
	int64_t back = (int64_t)time(NULL) * 1000 - c->since_ms; /* lookback: no publish time */
	CU_ASSERT(back >= 600000 - 2000 && back <= 600000 + 2000);
	stub_answer(c, &found_res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	fx_close(&f);
}

/* No token for the lookup: held (RETRY, hold), no RunJob, no attempt spent. */
static void test_repeat_credentials_hold(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r = {0}, r2 = {0};
	jr_event *ev = fx_submit_msg(&f, "e1", 2, PUBLISHED, &r);
	jr_runresult creds = {.code = JR_GRPC_UNAUTHENTICATED, .message = "no token",
			      .retry_delay_ms = 2500, .has_class = 1, .cls = JR_ERR_CREDENTIALS};
	stub_answer(stub_nth(&f.rn, STUB_FIND, 0), &creds);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r.o.hold, 1);
	CU_ASSERT_EQUAL(r.o.held, 1);
	CU_ASSERT_EQUAL(r.o.cls, JR_ERR_CREDENTIALS);
	CU_ASSERT_EQUAL(r.o.delay_ms, 2500);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	CU_ASSERT_EQUAL(f.sink.writes, 0);
	/* the next delivery (the message says attempt 3): the hold is not an attempt */
	((jr_message *)ev->message)->delivery_attempt = 3;
	dispatcher_submit(f.d, ev, 3, NULL, on_outcome, &r2);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.finds, 2); /* 3 less the hold: still a redelivery, looked up */
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 1), JR_GRPC_NOT_FOUND);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_UNAVAILABLE);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 2), JR_GRPC_NOT_FOUND); /* ambiguous: looked up */
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.kind, JR_OUTCOME_RETRY);
	CU_ASSERT_EQUAL(r2.o.attempt, 2);
	fx_close(&f);
}

/* The lookup owns the key and a call slot: a second delivery waits for it, and is a duplicate when found. */
static void test_repeat_lookup_owns_key_and_slot(void)
{
	fixture f;
	fx_open(&f, "project: p\nregion: r\nconcurrency: 1\n" ROUTE_A, (fx_opts){.find = 1});
	result r1 = {0}, r2 = {0}, r3 = {0};
	jr_event *ev = fx_submit_msg(&f, "e1", 2, PUBLISHED, &r1);
	dispatcher_submit(f.d, ev, 3, NULL, on_outcome, &r2);
	fx_submit(&f, "e2", 1, &r3);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.finds, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	CU_ASSERT_EQUAL(dispatcher_queued(f.d), 1); /* e2 waits for the slot the lookup holds */
	stub_answer(stub_nth(&f.rn, STUB_FIND, 0), &found_res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.dispatched, 1);
	CU_ASSERT_EQUAL(r2.o.duplicates, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 1); /* e2's, once the slot was free */
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r3.o.dispatched, 1);
	fx_close(&f);
}

/* An ambiguous RunJob whose lookup failed: the key's next delivery, even a fresh one, looks first. */
static void test_repeat_seen_after_unsettled(void)
{
	fixture f;
	fx_open(&f, base_yaml, (fx_opts){.find = 1});
	result r1 = {0}, r2 = {0};
	jr_event *ev = fx_submit_msg(&f, "e1", 0, NULL, &r1);
	CU_ASSERT_EQUAL(f.rn.finds, 0);
	stub_answer_code(stub_nth(&f.rn, STUB_RUN, 0), JR_GRPC_DEADLINE_EXCEEDED);
	stub_answer_code(stub_nth(&f.rn, STUB_FIND, 0), JR_GRPC_UNAVAILABLE);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r1.o.kind, JR_OUTCOME_RETRY);
	dispatcher_submit(f.d, ev, 2, NULL, on_outcome, &r2);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(f.rn.finds, 2);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	stub_answer(stub_nth(&f.rn, STUB_FIND, 1), &found_res);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r2.o.dispatched, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 1);
	fx_close(&f);
}

/* ack: on_completion: an execution found before RunJob is followed to its end. */
static void test_repeat_found_followed(void)
{
	fixture f;
	fx_open(&f, completion_yaml, (fx_opts){.follow = 1, .find = 1});
	result r = {0};
	fx_submit_msg(&f, "e1", 2, PUBLISHED, &r);
	stub_answer(stub_nth(&f.rn, STUB_FIND, 0), &found_res);
	CU_ASSERT_EQUAL(f.rn.follows, 1);
	CU_ASSERT_STRING_EQUAL(stub_nth(&f.rn, STUB_FOLLOW, 0)->execution, found_res.execution);
	stub_answer_code(stub_nth(&f.rn, STUB_FOLLOW, 0), JR_GRPC_OK);
	stub_clock_turn(&f.clk);
	CU_ASSERT_EQUAL(r.o.dispatched, 1);
	CU_ASSERT_EQUAL(f.rn.runs, 0);
	fx_close(&f);
}

static const cu_test tests[] = {
	{"retry_unavailable", test_retry_unavailable},
	{"retry_exhausted_and_no_retry", test_retry_exhausted_and_no_retry},
	{"breaker_hold_and_probe", test_breaker_hold_and_probe},
	{"breaker_probe_fails", test_breaker_probe_fails},
	{"dead_letter_waits", test_dead_letter_waits},
	{"dead_letter_sink_fails_now", test_dead_letter_sink_fails_now},
	{"rate_limit_wait", test_rate_limit_wait},
	{"dedup_duplicate", test_dedup_duplicate},
	{"key_waiter", test_key_waiter},
	{"follow_application_failure", test_follow_application_failure},
	{"follow_unconfirmed", test_follow_unconfirmed},
	{"ambiguous_find", test_ambiguous_find},
	{"stop_drains", test_stop_drains},
	{"trace_and_phase_lines", test_trace_and_phase_lines},
	{"repeat_found", test_repeat_found},
	{"repeat_not_found", test_repeat_not_found},
	{"repeat_next_lookup_starts_at_last", test_repeat_next_lookup_starts_at_last},
	{"repeat_lookup_failed", test_repeat_lookup_failed},
	{"repeat_after_holds_only", test_repeat_after_holds_only},
	{"repeat_mode_never", test_repeat_mode_never},
	{"repeat_not_suspected", test_repeat_not_suspected},
	{"repeat_mode_always", test_repeat_mode_always},
	{"repeat_credentials_hold", test_repeat_credentials_hold},
	{"repeat_lookup_owns_key_and_slot", test_repeat_lookup_owns_key_and_slot},
	{"repeat_seen_after_unsettled", test_repeat_seen_after_unsettled},
	{"repeat_found_followed", test_repeat_found_followed},
	{NULL, NULL},
};

int main(void)
{
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	return cu_run("dispatcher", tests);
}
