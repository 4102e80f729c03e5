/*
 * pullq_stubs.h — stand-in ports for the pull queue (pullq.h) and a stepped
 * clock, compiled into test_pullq (tests/CMakeLists.txt adds
 * tests/unit/<name>_stubs.c to test_<name>).
 *
 * Every port call is recorded in order (acts); submissions and dead letters
 * are kept open until the test answers them with stub_outcome / stub_raw_done.
 * Time moves only with stub_step. The stub owns nothing of the queue's: the
 * events it records stay the queue's.
 */
#ifndef JR_TEST_PULLQ_STUBS_H
#define JR_TEST_PULLQ_STUBS_H

#include "pullq.h"

#define STUB_ACTS 256
#define STUB_SUBS 64

typedef enum stub_act_kind {
	ACT_ACK, ACT_MODACK, ACT_PAUSE, ACT_SUBMIT, ACT_DEAD_LETTER, ACT_STOP_INTAKE
} stub_act_kind;

typedef struct stub_act {
	stub_act_kind kind;
	char id[64];  /* ack id (ack, modack), message id (submit, dead letter) */
	int n;        /* modack: seconds (0: nack); pause: 1/0; submit: attempt */
	int64_t at;   /* the stepped clock when it happened */
} stub_act;

typedef struct stub_sub {
	char id[64];              /* message id */
	jr_outcome_cb cb;         /* submit; NULL once answered */
	jr_raw_cb raw_cb;         /* dead letter; NULL once answered */
	void *arg;
	jr_event *ev;
	int attempt;
	unsigned char only[8];    /* the routes asked for (when has_only) */
	int has_only;
} stub_sub;

typedef struct stubs {
	int64_t now;
	jr_timers *t;
	stub_act acts[STUB_ACTS];
	int n_acts;
	stub_sub subs[STUB_SUBS];
	int n_subs;
	int paused;   /* the last pause asked for */
	int busy;     /* what ports.busy answers */
	int settled;  /* ports.settled calls */
	size_t n_routes;
} stubs;

void stub_init(stubs *s, size_t n_routes);
void stub_free(stubs *s);
pullq_ports stub_ports(stubs *s);
/* stub_step: the clock moves ms on, then every timer due runs (ones they add too). */
void stub_step(stubs *s, int64_t ms);
/* stub_outcome: the open submission of message id ends with kind (delay_ms, hold); retry may be NULL. */
void stub_outcome(stubs *s, const char *id, jr_outcome_kind kind, int64_t delay_ms, int hold,
		  const unsigned char *retry);
/* stub_raw_done: the open dead letter of message id ends (ok 1: every sink confirmed). */
void stub_raw_done(stubs *s, const char *id, int ok);
/* stub_count: recorded actions of kind for id (NULL: any id). */
int stub_count(const stubs *s, stub_act_kind kind, const char *id);
/* stub_last: the last recorded action of kind for id, or NULL. */
const stub_act *stub_last(const stubs *s, stub_act_kind kind, const char *id);
/* stub_sub_of: the last submission of message id, or NULL. */
const stub_sub *stub_sub_of(const stubs *s, const char *id);
/* stub_clear: forgets the recorded actions (open submissions stay). */
void stub_clear(stubs *s);

#endif
