/*
 * dispatcher_stubs.h — stand-ins for what the dispatcher talks to, for unit
 * tests of its state machine: a runner whose calls the test answers
 * explicitly, a dead-letter sink that confirms now, later or fails, and a
 * stepped clock under the dispatcher's timers. Nothing runs on its own:
 * the test answers a call, confirms a write or advances the clock, then
 * turns the timers (stub_clock_turn) to run what became due.
 *
 * Each stand-in is owned by the test (usually on its stack); the dispatcher
 * gets jr_runner / jr_sink / jr_timers views of them, which must not outlive
 * them.
 */
#ifndef JR_TEST_DISPATCH_STUBS_H
#define JR_TEST_DISPATCH_STUBS_H

#include <stdint.h>

#include "deadletter.h"
#include "runner.h"
#include "timers.h"

#define STUB_CALLS_MAX 32

typedef enum stub_kind {
	STUB_RUN,
	STUB_FOLLOW,
	STUB_FIND,
} stub_kind;

/* One call the dispatcher made; open until the test answers it. */
typedef struct stub_call {
	stub_kind kind;
	jr_run_cb cb;          /* NULL once answered */
	void *arg;
	char job[256];         /* req->name */
	char key[128];         /* req->key */
	char traceparent[64];  /* req's TRACEPARENT env ("" when none) */
	char execution[256];   /* STUB_FOLLOW: started->execution ("" when none) */
	int64_t timeout_ms;    /* STUB_RUN */
	int64_t since_ms;      /* STUB_FIND */
} stub_call;

typedef struct stub_runner {
	stub_call calls[STUB_CALLS_MAX]; /* every call, in the order made */
	int n_calls;
	int runs, follows, finds;        /* calls made, by kind */
	int run_rc;                      /* what run returns (0; -1: could not start) */
} stub_runner;

/* stub_runner_port: the runner over s; follow and find only when asked for. */
jr_runner stub_runner_port(stub_runner *s, int with_follow, int with_find);
/* stub_nth: the n-th call (0-based) of kind, or NULL. */
stub_call *stub_nth(stub_runner *s, stub_kind kind, int n);
/* stub_answer: answers c with res (latency 0 unless set); c must be open. */
void stub_answer(stub_call *c, const jr_runresult *res);
/* stub_answer_code: answers c with a plain gRPC code (OK names an execution). */
void stub_answer_code(stub_call *c, int code);
/* stub_open_calls: calls not yet answered. */
int stub_open_calls(const stub_runner *s);

typedef enum stub_sink_mode {
	SINK_NOW,    /* durable on return */
	SINK_LATER,  /* answered by stub_sink_confirm */
	SINK_FAIL,   /* fails on return */
} stub_sink_mode;

#define STUB_DL_MAX 16

/* A dead letter written, as the sink saw it. */
typedef struct stub_dl {
	char route[64], code[64];
	int attempts;
	jr_errclass cls;
	jr_sink_cb cb;  /* SINK_LATER: NULL once confirmed */
	void *arg;
} stub_dl;

typedef struct stub_sink {
	jr_sink base;   /* first: the dispatcher's view */
	stub_sink_mode mode;
	stub_dl dl[STUB_DL_MAX];
	int writes;
} stub_sink;

/* stub_sink_init: an empty sink answering in mode; &s->base goes to dispatcher_new. */
void stub_sink_init(stub_sink *s, stub_sink_mode mode);
/* stub_sink_confirm: the later write i ends, durable (ok) or failed. */
void stub_sink_confirm(stub_sink *s, int i, int ok);

typedef struct stub_clock {
	int64_t now;    /* ms; the test moves it with stub_clock_advance */
	jr_timers *tm;
} stub_clock;

/* stub_clock_init: now = 1,000,000 ms and timers on it; stub_clock_free frees them. */
void stub_clock_init(stub_clock *c);
void stub_clock_free(stub_clock *c);
/* stub_clock_turn: runs timers until none is due now (outcomes are 0 ms timers). */
void stub_clock_turn(stub_clock *c);
/* stub_clock_advance: now += ms, then turns. */
void stub_clock_advance(stub_clock *c, int64_t ms);

#endif
