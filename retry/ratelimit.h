/*
 * ratelimit.h — a token bucket per route, with AIMD on RESOURCE_EXHAUSTED
 * (docs/policies.md).
 *
 * A configured route (`rate_limit: {per_second, burst}`) starts with a full
 * bucket of `burst` tokens refilled at `per_second`; each RunJob call takes
 * one. RESOURCE_EXHAUSTED halves the rate (multiplicative decrease; at most
 * once a RL_DECREASE_GAP_MS, so the answers of calls already in flight
 * count once), empties the bucket, and, when the answer carried
 * google.rpc.RetryInfo, lets no call through until that delay has passed.
 * Then the rate creeps back up by 5% of the ceiling per second (additive
 * increase: from half to full in 10 s) up to the ceiling. The rate never
 * goes below floor = max(ceiling/64, one call a minute), nor above the
 * ceiling, and the bucket never holds more than `burst`.
 *
 * A route without rate_limit is not limited until RunJob says
 * RESOURCE_EXHAUSTED. Then the limiter takes as ceiling the rate observed
 * over the last full second (calls let through; at least 1/s), halves it and
 * recovers as above; when the rate is back at that implicit ceiling the
 * route is unlimited again. Its bucket holds one second of calls.
 *
 * Pure: the caller passes the time (monotonic ms).
 */
#ifndef JR_RATELIMIT_H
#define JR_RATELIMIT_H

#include <stdint.h>

#define RL_DECREASE_GAP_MS 1000

typedef struct jr_ratelimit {
	double conf_rate;       /* configured per_second; 0: none */
	double ceiling;         /* the rate recovered to: conf_rate, or the implicit one */
	double rate;            /* in force; 0: unlimited */
	double burst, tokens;
	int64_t last_ms;        /* tokens and rate are as of this time */
	int64_t blocked_until_ms;
	int64_t last_decrease_ms;
	int decreased;          /* a decrease has happened (last_decrease_ms is valid) */
	int64_t win_start_ms;   /* the observed rate: calls in the current and the previous second */
	int win_count, prev_count;
} jr_ratelimit;

/* ratelimit_init: per_second > 0 with burst >= 1 for a configured limit; per_second 0 for none. */
void ratelimit_init(jr_ratelimit *r, double per_second, int burst, int64_t now_ms);
/*
 * ratelimit_acquire: takes a token for a call now and returns 0, or returns
 * the ms to wait (> 0) before a token may be there (nothing taken).
 */
int64_t ratelimit_acquire(jr_ratelimit *r, int64_t now_ms);
/*
 * ratelimit_refund: gives back the token of a call that acquire let through
 * but that was not sent after all (held by the breaker, or a duplicate); the
 * bucket still never holds more than burst.
 */
void ratelimit_refund(jr_ratelimit *r);
/*
 * ratelimit_decrease: RunJob answered RESOURCE_EXHAUSTED now; retry_after_ms
 * is RetryInfo's delay (< 0: none). Returns 1 when the rate was lowered
 * (0 within RL_DECREASE_GAP_MS of the last decrease; the RetryInfo delay
 * still applies).
 */
int ratelimit_decrease(jr_ratelimit *r, int64_t now_ms, int64_t retry_after_ms);
/* ratelimit_rate: the rate in force as of now (calls/s); 0 when unlimited. */
double ratelimit_rate(jr_ratelimit *r, int64_t now_ms);

#endif
