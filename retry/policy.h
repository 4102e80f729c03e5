/*
 * policy.h — what to do with a failure of a given class on a given attempt,
 * and how long to wait before the next one.
 *
 * Pure: no clock, no global random state. Callers pass the attempt number and
 * a random 64-bit value, so tests can step through exactly.
 */
#ifndef JR_POLICY_H
#define JR_POLICY_H

#include <stdint.h>

#include "errclass.h"

typedef struct jr_policy {
	jr_action action;
	int max_attempts;      /* total attempts, the first included; >= 1 */
	int64_t initial_ms;    /* backoff before attempt 2 (upper bound, full jitter) */
	int64_t max_ms;        /* cap on the backoff bound */
} jr_policy;

/* One policy per class; a route's set starts as a copy of the global set. */
typedef struct jr_policies {
	jr_policy cls[JR_ERR__COUNT];
} jr_policies;

/* policies_default: fills p with the defaults of the error table (retry/errclass.h). */
void policies_default(jr_policies *p);

/* backoff_bound_ms: min(max_ms, initial_ms * 2^(attempt-1)) for attempt >= 1, without overflow. */
int64_t backoff_bound_ms(const jr_policy *p, int attempt);
/* backoff_full_jitter_ms: a delay uniform in [0, bound] taken from rnd (full jitter). */
int64_t backoff_full_jitter_ms(const jr_policy *p, int attempt, uint64_t rnd);

typedef struct jr_decision {
	jr_action action;   /* RETRY (wait delay_ms), DEAD_LETTER or DROP */
	int64_t delay_ms;   /* for RETRY */
} jr_decision;

/*
 * policy_decide: the outcome of a failure of class cls after `attempts`
 * attempts (>= 1) have been made. A RETRY policy whose attempts have run out
 * gives DEAD_LETTER. hint_ms (>= 0, e.g. from google.rpc.RetryInfo) replaces
 * the jittered backoff when it is larger. no_retry turns RETRY into DEAD_LETTER.
 */
jr_decision policy_decide(const jr_policies *ps, jr_errclass cls, int attempts,
			  int64_t hint_ms, int no_retry, uint64_t rnd);

/* rng_next: xorshift64* step; state must be non-zero. For callers that need a random source. */
uint64_t rng_next(uint64_t *state);

#endif
