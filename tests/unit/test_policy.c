/* Backoff and retry decisions, with the random source passed in. */
#include "cu.h"
#include "policy.h"

static void test_bound_doubles_and_caps(void)
{
	jr_policy p = {JR_ACT_RETRY, 8, 1000, 300000};
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 1), 1000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 2), 2000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 3), 4000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 9), 256000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 10), 300000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 1000000), 300000);
	CU_ASSERT_EQUAL(backoff_bound_ms(&p, 0), 1000);
	jr_policy huge = {JR_ACT_RETRY, 8, INT64_MAX / 3, INT64_MAX};
	CU_ASSERT_EQUAL(backoff_bound_ms(&huge, 5), INT64_MAX);
}

static void test_full_jitter_range(void)
{
	jr_policy p = {JR_ACT_RETRY, 8, 1000, 300000};
	CU_ASSERT_EQUAL(backoff_full_jitter_ms(&p, 1, 0), 0);
	CU_ASSERT_EQUAL(backoff_full_jitter_ms(&p, 1, 1000), 1000);
	CU_ASSERT_EQUAL(backoff_full_jitter_ms(&p, 1, 1001), 0);
	CU_ASSERT_EQUAL(backoff_full_jitter_ms(&p, 2, 1500), 1500);
	uint64_t st = 42, lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < 10000; i++) {
		int64_t d = backoff_full_jitter_ms(&p, 3, rng_next(&st));
		CU_ASSERT_FATAL(d >= 0 && d <= 4000);
		if ((uint64_t)d < lo)
			lo = (uint64_t)d;
		if ((uint64_t)d > hi)
			hi = (uint64_t)d;
	}
	/* spread over the whole interval, not clumped at one end */
	CU_ASSERT(lo < 100);
	CU_ASSERT(hi > 3900);
}

static void test_decide(void)
{
	jr_policies ps;
	policies_default(&ps);
	jr_decision d = policy_decide(&ps, JR_ERR_NETWORK, 1, -1, 0, 700);
	CU_ASSERT_EQUAL(d.action, JR_ACT_RETRY);
	CU_ASSERT_EQUAL(d.delay_ms, 700);
	d = policy_decide(&ps, JR_ERR_NETWORK, 7, -1, 0, 5);
	CU_ASSERT_EQUAL(d.action, JR_ACT_RETRY);
	d = policy_decide(&ps, JR_ERR_NETWORK, 8, -1, 0, 5);
	CU_ASSERT_EQUAL(d.action, JR_ACT_DEAD_LETTER);
	d = policy_decide(&ps, JR_ERR_NETWORK, 1, -1, 1, 5);
	CU_ASSERT_EQUAL(d.action, JR_ACT_DEAD_LETTER);
	d = policy_decide(&ps, JR_ERR_INVALID_REQUEST, 1, -1, 0, 5);
	CU_ASSERT_EQUAL(d.action, JR_ACT_DEAD_LETTER);
	/* RetryInfo larger than the jittered delay wins */
	d = policy_decide(&ps, JR_ERR_RESOURCE, 1, 9000, 0, 3);
	CU_ASSERT_EQUAL(d.action, JR_ACT_RETRY);
	CU_ASSERT_EQUAL(d.delay_ms, 9000);
	d = policy_decide(&ps, JR_ERR_RESOURCE, 1, 1, 0, 3000);
	CU_ASSERT_EQUAL(d.delay_ms, 3000);
	ps.cls[JR_ERR_PERMISSION].action = JR_ACT_DROP;
	d = policy_decide(&ps, JR_ERR_PERMISSION, 1, -1, 0, 5);
	CU_ASSERT_EQUAL(d.action, JR_ACT_DROP);
}

int main(void)
{
	static const cu_test tests[] = {
		{"backoff bound doubles and caps", test_bound_doubles_and_caps},
		{"full jitter covers [0, bound]", test_full_jitter_range},
		{"policy decisions", test_decide},
		{NULL, NULL},
	};
	return cu_run("policy", tests);
}
