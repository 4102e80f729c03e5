/* The token bucket and its AIMD, time stepped by hand. */
#include <math.h>

#include "cu.h"
#include "ratelimit.h"

static void test_burst_then_refill(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 5, 3, 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	/* empty: one token comes in 200 ms */
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 200);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 150), 50);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 200), 0);
	/* a long pause refills only up to burst */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ratelimit_acquire(&r, 100000), 0);
	CU_ASSERT_TRUE(ratelimit_acquire(&r, 100000) > 0);
}

/* over any span of t ms, calls let through never exceed burst + rate * t */
static void test_bound_holds(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 7, 4, 0);
	int64_t at[2000];
	int n = 0;
	for (int64_t now = 0; now < 20000 && n < 2000; now += 13)
		while (n < 2000 && ratelimit_acquire(&r, now) == 0)
			at[n++] = now;
	CU_ASSERT_TRUE(n > 100);
	for (int i = 0; i < n; i++)
		for (int j = i; j < n; j++)
			CU_ASSERT_FATAL((double)(j - i + 1) <= 4 + 7 * (double)(at[j] - at[i]) / 1000.0 + 1e-9);
}

static void test_refund(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 1, 2, 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 1000);
	ratelimit_refund(&r);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	/* never past burst */
	ratelimit_refund(&r);
	ratelimit_refund(&r);
	ratelimit_refund(&r);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 1000);
}

static void test_unlimited_without_config(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 0, 0, 0);
	for (int i = 0; i < 10000; i++)
		CU_ASSERT_EQUAL_FATAL(ratelimit_acquire(&r, 0), 0);
	CU_ASSERT_EQUAL(ratelimit_rate(&r, 0), 0.0);
}

static void test_halving_and_recovery(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 10, 10, 0);
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 0, -1), 1);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 0), 5.0, 1e-9);
	/* the bucket was emptied */
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 200);
	/* a second answer within the gap does not halve again */
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 500, -1), 0);
	/* additive increase: 5% of 10/s a second */
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 1000), 5.5, 1e-9);
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 1000, -1), 1);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 1000), 2.75, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 3000), 3.75, 1e-9);
	/* back up to the ceiling, never past it */
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 60000), 10.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 600000), 10.0, 1e-9);
}

static void test_floor(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 1, 1, 0);
	int64_t now = 0;
	for (int i = 0; i < 20; i++, now += 1000)
		ratelimit_decrease(&r, now, -1);
	/* a decrease every second against +5% of the ceiling a second: the rate
	 * settles where halving meets the increase, x = (x + 0.05) / 2, above the
	 * floor of max(1/64, 1/60) per second */
	double rate = ratelimit_rate(&r, now - 1000);
	CU_ASSERT_DOUBLE_EQUAL(rate, 0.05, 1e-4);
	CU_ASSERT_TRUE(rate >= 1.0 / 60);
}

static void test_retry_info_blocks(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 100, 100, 0);
	ratelimit_decrease(&r, 0, 3000);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 0), 3000);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 2999), 1);
	/* a later RetryInfo within the decrease gap still extends the block */
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 500, 4000), 0);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 3000), 1500);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 4500), 0);
}

static void test_implicit_limit(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 0, 0, 0);
	/* 40 calls in the first second, 20 in the next, then RESOURCE_EXHAUSTED */
	for (int i = 0; i < 40; i++)
		ratelimit_acquire(&r, i * 25);
	for (int i = 0; i < 20; i++)
		ratelimit_acquire(&r, 1000 + i * 25);
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 1500, -1), 1);
	/* ceiling: 40/s observed over the last full second; halved */
	CU_ASSERT_DOUBLE_EQUAL(r.ceiling, 40.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 1500), 20.0, 1e-9);
	CU_ASSERT_EQUAL(ratelimit_acquire(&r, 1500), 50);
	/* 2/s each second: back at 40 after 10 s, and then unlimited again */
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 6500), 30.0, 1e-9);
	CU_ASSERT_EQUAL(ratelimit_rate(&r, 11500), 0.0);
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL_FATAL(ratelimit_acquire(&r, 11500), 0);
}

static void test_implicit_at_least_one(void)
{
	jr_ratelimit r;
	ratelimit_init(&r, 0, 0, 0);
	CU_ASSERT_EQUAL(ratelimit_decrease(&r, 5000, -1), 1);
	CU_ASSERT_DOUBLE_EQUAL(r.ceiling, 1.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ratelimit_rate(&r, 5000), 0.5, 1e-9);
}

int main(void)
{
	static const cu_test tests[] = {
		{"burst_then_refill", test_burst_then_refill},
		{"bound_holds", test_bound_holds},
		{"refund", test_refund},
		{"unlimited_without_config", test_unlimited_without_config},
		{"halving_and_recovery", test_halving_and_recovery},
		{"floor", test_floor},
		{"retry_info_blocks", test_retry_info_blocks},
		{"implicit_limit", test_implicit_limit},
		{"implicit_at_least_one", test_implicit_at_least_one},
		{NULL, NULL},
	};
	return cu_run("ratelimit", tests);
}
