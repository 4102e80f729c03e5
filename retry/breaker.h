/*
 * breaker.h — a circuit breaker for one job (docs/policies.md).
 *
 * CLOSED: every call goes through and its result enters a count window of
 * the last `window` calls. When at least `min_calls` are in the window and
 * the share of failures (a breaker-tripping class, errclass_trips_breaker)
 * reaches `failure_rate`, it OPENs for `open_for`. Then it is HALF_OPEN:
 * `half_open_calls` probes go through; when all of them succeed it CLOSEs
 * (window emptied, open time back to `open_for`), the first that fails opens
 * it again for twice the last open time, at most `max_open_for`.
 *
 * Pure: the caller passes the time (monotonic ms). Every call that
 * breaker_allow lets through carries a ticket; its result counts only while
 * the breaker is still in the state (and period) that let it through, so a
 * call started before the breaker opened, or a probe from an earlier
 * half-open period, changes nothing. Memory: the struct plus window/8 bytes.
 */
#ifndef JR_BREAKER_H
#define JR_BREAKER_H

#include <stdint.h>

typedef struct jr_breaker_conf {
	int window, min_calls, half_open_calls;
	double failure_rate;
	int64_t open_for_ms, max_open_for_ms;
} jr_breaker_conf;

typedef enum jr_breaker_state {
	JR_BREAKER_CLOSED,
	JR_BREAKER_HALF_OPEN,
	JR_BREAKER_OPEN,
} jr_breaker_state;

typedef struct jr_breaker {
	jr_breaker_conf c;
	jr_breaker_state state;
	uint32_t epoch;        /* changes with every state change */
	unsigned char *bits;   /* the window: 1 = failure, ring of c.window bits */
	int pos, n, fails;     /* next slot, calls in the window, failures among them */
	int probes_out, probes_ok;
	int64_t open_until_ms; /* OPEN: when it turns HALF_OPEN */
	int64_t open_for_ms;   /* the length of the current (or last) open period */
	double opened_rate;    /* failure rate when it last opened from CLOSED */
} jr_breaker;

/* A call's pass: allowed (a ticket for breaker_record), or held for wait_ms. */
typedef struct jr_breaker_pass {
	int allowed;
	uint32_t ticket;
	/* held: ms until OPEN ends; 0 while HALF_OPEN with every probe out (its answer decides) */
	int64_t wait_ms;
	int changed;           /* this call changed the state (OPEN -> HALF_OPEN) */
} jr_breaker_pass;

/* breaker_init: a CLOSED breaker with conf c (copied; window >= 1, others >= 1). Free with breaker_free. */
void breaker_init(jr_breaker *b, const jr_breaker_conf *c);
/* breaker_free: releases the window (not b). */
void breaker_free(jr_breaker *b);
/* breaker_allow: may a call go now? An allowed call must be reported with breaker_record. */
jr_breaker_pass breaker_allow(jr_breaker *b, int64_t now_ms);
/*
 * breaker_record: the result of a call let through with ticket: failed = 1
 * for a breaker-tripping class, 0 for a success or any other class. Returns
 * 1 when the state changed (read b->state, b->open_for_ms).
 */
int breaker_record(jr_breaker *b, int64_t now_ms, uint32_t ticket, int failed);
/*
 * breaker_release: a call let through with ticket never reached the job (no
 * access token): it counts neither way; a half-open probe's slot is freed.
 */
void breaker_release(jr_breaker *b, uint32_t ticket);
/* breaker_failure_rate: failures / calls in the window now (0 when empty). */
double breaker_failure_rate(const jr_breaker *b);
/* breaker_remaining_ms: OPEN: ms until it may half-open (>= 0); else 0. */
int64_t breaker_remaining_ms(const jr_breaker *b, int64_t now_ms);
/* breaker_state_name: "closed", "half_open", "open". */
const char *breaker_state_name(jr_breaker_state s);

#endif
