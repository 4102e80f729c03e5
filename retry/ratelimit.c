#include "ratelimit.h"

#include <math.h>
#include <string.h>

#define AI_SHARE 0.05        /* additive increase: this share of the ceiling per second */
#define FLOOR_SHARE (1.0 / 64)
#define FLOOR_MIN (1.0 / 60) /* calls per second */

void ratelimit_init(jr_ratelimit *r, double per_second, int burst, int64_t now_ms)
{
	memset(r, 0, sizeof *r);
	if (per_second > 0) {
		r->conf_rate = r->ceiling = r->rate = per_second;
		r->burst = r->tokens = burst >= 1 ? burst : 1;
	}
	r->last_ms = r->win_start_ms = now_ms;
}

static double floor_rate(const jr_ratelimit *r)
{
	double f = r->ceiling * FLOOR_SHARE;
	if (f < FLOOR_MIN)
		f = FLOOR_MIN;
	return f < r->ceiling ? f : r->ceiling;
}

/* advance: refill the bucket and raise the rate for the time since last_ms. */
static void advance(jr_ratelimit *r, int64_t now_ms)
{
	if (now_ms <= r->last_ms)
		return;
	double secs = (double)(now_ms - r->last_ms) / 1000.0;
	r->last_ms = now_ms;
	if (r->rate <= 0)
		return;
	r->tokens += r->rate * secs; /* at the rate before the increase: never more than allowed */
	if (r->tokens > r->burst)
		r->tokens = r->burst;
	if (r->rate < r->ceiling) {
		r->rate += r->ceiling * AI_SHARE * secs;
		if (r->rate >= r->ceiling) {
			r->rate = r->ceiling;
			if (r->conf_rate <= 0)
				r->rate = 0; /* back at the implicit ceiling: unlimited again */
		}
	}
}

static void observe(jr_ratelimit *r, int64_t now_ms)
{
	int64_t age = now_ms - r->win_start_ms;
	if (age >= 1000) {
		r->prev_count = age < 2000 ? r->win_count : 0;
		r->win_count = 0;
		r->win_start_ms = now_ms;
	}
	r->win_count++;
}

int64_t ratelimit_acquire(jr_ratelimit *r, int64_t now_ms)
{
	advance(r, now_ms);
	if (now_ms < r->blocked_until_ms)
		return r->blocked_until_ms - now_ms;
	if (r->rate > 0) {
		if (r->tokens < 1.0) {
			double ms = ceil((1.0 - r->tokens) / r->rate * 1000.0);
			return ms < 1 ? 1 : (int64_t)ms;
		}
		r->tokens -= 1.0;
	}
	observe(r, now_ms);
	return 0;
}

void ratelimit_refund(jr_ratelimit *r)
{
	if (r->win_count > 0)
		r->win_count--;
	if (r->rate <= 0)
		return;
	r->tokens += 1.0;
	if (r->tokens > r->burst)
		r->tokens = r->burst;
}

int ratelimit_decrease(jr_ratelimit *r, int64_t now_ms, int64_t retry_after_ms)
{
	advance(r, now_ms);
	if (retry_after_ms > 0 && now_ms + retry_after_ms > r->blocked_until_ms)
		r->blocked_until_ms = now_ms + retry_after_ms;
	if (r->decreased && now_ms - r->last_decrease_ms < RL_DECREASE_GAP_MS)
		return 0;
	r->decreased = 1;
	r->last_decrease_ms = now_ms;
	if (r->rate <= 0) {
		/* unlimited until now: the implicit ceiling is the rate observed */
		int seen = r->prev_count > r->win_count ? r->prev_count : r->win_count;
		r->ceiling = seen > 1 ? seen : 1;
		r->rate = r->ceiling;
		r->burst = ceil(r->ceiling);
	}
	r->rate /= 2;
	if (r->rate < floor_rate(r))
		r->rate = floor_rate(r);
	r->tokens = 0;
	return 1;
}

double ratelimit_rate(jr_ratelimit *r, int64_t now_ms)
{
	advance(r, now_ms);
	return r->rate;
}
