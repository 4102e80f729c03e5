#include "policy.h"

void policies_default(jr_policies *p)
{
	static const jr_policy defaults[] = {
#define JR_X(e, name, act, att, ini, mx, trip) {act, att, ini, mx},
		JR_ERRCLASS_MAP(JR_X)
#undef JR_X
	};
	for (int i = 0; i < JR_ERR__COUNT; i++)
		p->cls[i] = defaults[i];
}

int64_t backoff_bound_ms(const jr_policy *p, int attempt)
{
	if (attempt < 1)
		attempt = 1;
	int64_t b = p->initial_ms > 0 ? p->initial_ms : 0;
	for (int i = 1; i < attempt && b < p->max_ms; i++)
		b = b > INT64_MAX / 2 ? INT64_MAX : b * 2;
	return b < p->max_ms ? b : p->max_ms;
}

int64_t backoff_full_jitter_ms(const jr_policy *p, int attempt, uint64_t rnd)
{
	int64_t bound = backoff_bound_ms(p, attempt);
	if (bound <= 0)
		return 0;
	return (int64_t)(rnd % ((uint64_t)bound + 1));
}

jr_decision policy_decide(const jr_policies *ps, jr_errclass cls, int attempts,
			  int64_t hint_ms, int no_retry, uint64_t rnd)
{
	const jr_policy *p = &ps->cls[(unsigned)cls < JR_ERR__COUNT ? cls : JR_ERR_UNKNOWN];
	jr_decision d = {p->action, 0};
	if (d.action != JR_ACT_RETRY)
		return d;
	if (no_retry || attempts >= p->max_attempts) {
		d.action = JR_ACT_DEAD_LETTER;
		return d;
	}
	d.delay_ms = backoff_full_jitter_ms(p, attempts, rnd);
	if (hint_ms > d.delay_ms)
		d.delay_ms = hint_ms;
	return d;
}

uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}
