/* The circuit breaker's state machine, time stepped by hand. */
#include "breaker.h"
#include "cu.h"

static const jr_breaker_conf conf = {
	.window = 10, .min_calls = 4, .half_open_calls = 1, .failure_rate = 0.5,
	.open_for_ms = 1000, .max_open_for_ms = 5000,
};

/* call: one call at now with the given result; returns whether the state changed. */
static int call(jr_breaker *b, int64_t now, int failed)
{
	jr_breaker_pass p = breaker_allow(b, now);
	CU_ASSERT_FATAL(p.allowed);
	return breaker_record(b, now, p.ticket, failed);
}

static void open_it(jr_breaker *b, int64_t now)
{
	for (int i = 0; i < conf.min_calls; i++)
		call(b, now, 1);
	CU_ASSERT_EQUAL_FATAL(b->state, JR_BREAKER_OPEN);
}

static void test_min_calls(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	/* three failures in a row: under min_calls, stays closed */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(call(&b, 0, 1), 0);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_CLOSED);
	CU_ASSERT_DOUBLE_EQUAL(breaker_failure_rate(&b), 1.0, 1e-9);
	/* the fourth reaches min_calls */
	CU_ASSERT_EQUAL(call(&b, 0, 1), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	CU_ASSERT_DOUBLE_EQUAL(b.opened_rate, 1.0, 1e-9);
	breaker_free(&b);
}

static void test_rate_threshold(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	/* 1 failure in 4: 0.25 < 0.5 */
	call(&b, 0, 0);
	call(&b, 0, 0);
	call(&b, 0, 0);
	CU_ASSERT_EQUAL(call(&b, 0, 1), 0);
	/* 2 in 5: 0.4 */
	CU_ASSERT_EQUAL(call(&b, 0, 1), 0);
	CU_ASSERT_DOUBLE_EQUAL(breaker_failure_rate(&b), 0.4, 1e-9);
	/* 3 in 6: 0.5 reaches failure_rate */
	CU_ASSERT_EQUAL(call(&b, 0, 1), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	CU_ASSERT_DOUBLE_EQUAL(b.opened_rate, 0.5, 1e-9);
	breaker_free(&b);
}

static void test_window_slides(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	/* 4 failures then many successes push the failures out of the window of 10 */
	call(&b, 0, 0);
	call(&b, 0, 0);
	call(&b, 0, 0);
	call(&b, 0, 0);
	for (int i = 0; i < 4; i++)
		call(&b, 0, i % 2); /* 2 failures in 8: 0.25 */
	for (int i = 0; i < 10; i++)
		call(&b, 0, 0);
	CU_ASSERT_EQUAL(b.n, 10);
	CU_ASSERT_EQUAL(b.fails, 0);
	/* 4 failures in a full window: 0.4; the fifth: 0.5 */
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(call(&b, 0, 1), 0);
	CU_ASSERT_EQUAL(b.fails, 4);
	CU_ASSERT_EQUAL(b.n, 10);
	CU_ASSERT_EQUAL(call(&b, 0, 1), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	breaker_free(&b);
}

static void test_open_holds_then_half_open_closes(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	open_it(&b, 100);
	jr_breaker_pass p = breaker_allow(&b, 100);
	CU_ASSERT_FALSE(p.allowed);
	CU_ASSERT_EQUAL(p.wait_ms, 1000);
	p = breaker_allow(&b, 1099);
	CU_ASSERT_FALSE(p.allowed);
	CU_ASSERT_EQUAL(p.wait_ms, 1);
	CU_ASSERT_EQUAL(breaker_remaining_ms(&b, 600), 500);
	/* open_for over: one probe goes, the next call is held until it answers */
	p = breaker_allow(&b, 1100);
	CU_ASSERT_TRUE(p.allowed);
	CU_ASSERT_TRUE(p.changed);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_HALF_OPEN);
	jr_breaker_pass q = breaker_allow(&b, 1100);
	CU_ASSERT_FALSE(q.allowed);
	CU_ASSERT_EQUAL(q.wait_ms, 0);
	CU_ASSERT_EQUAL(breaker_record(&b, 1200, p.ticket, 0), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_CLOSED);
	CU_ASSERT_EQUAL(b.n, 0);
	CU_ASSERT_TRUE(breaker_allow(&b, 1200).allowed);
	breaker_free(&b);
}

static void test_reopen_doubles_up_to_max(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	open_it(&b, 0);
	int64_t now = 0;
	const int64_t expect[] = {2000, 4000, 5000, 5000};
	for (int i = 0; i < 4; i++) {
		now += b.open_for_ms;
		jr_breaker_pass p = breaker_allow(&b, now);
		CU_ASSERT_TRUE_FATAL(p.allowed);
		CU_ASSERT_EQUAL(breaker_record(&b, now, p.ticket, 1), 1);
		CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
		CU_ASSERT_EQUAL(b.open_for_ms, expect[i]);
		CU_ASSERT_EQUAL(breaker_allow(&b, now).wait_ms, expect[i]);
	}
	/* a successful probe closes it and the next opening is open_for again */
	now += b.open_for_ms;
	jr_breaker_pass p = breaker_allow(&b, now);
	CU_ASSERT_EQUAL(breaker_record(&b, now, p.ticket, 0), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_CLOSED);
	open_it(&b, now);
	CU_ASSERT_EQUAL(b.open_for_ms, 1000);
	breaker_free(&b);
}

static void test_several_probes(void)
{
	jr_breaker_conf c = conf;
	c.half_open_calls = 3;
	jr_breaker b;
	breaker_init(&b, &c);
	open_it(&b, 0);
	jr_breaker_pass p[4];
	for (int i = 0; i < 4; i++)
		p[i] = breaker_allow(&b, 1000);
	CU_ASSERT_TRUE(p[0].allowed && p[1].allowed && p[2].allowed);
	CU_ASSERT_FALSE(p[3].allowed);
	/* two succeed: still half-open, and no fourth probe while the third is out */
	CU_ASSERT_EQUAL(breaker_record(&b, 1001, p[0].ticket, 0), 0);
	CU_ASSERT_EQUAL(breaker_record(&b, 1001, p[1].ticket, 0), 0);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_HALF_OPEN);
	CU_ASSERT_FALSE(breaker_allow(&b, 1001).allowed);
	/* the third closes it */
	CU_ASSERT_EQUAL(breaker_record(&b, 1002, p[2].ticket, 0), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_CLOSED);

	/* again, and now one probe of three fails: open again, for twice as long */
	open_it(&b, 2000);
	for (int i = 0; i < 3; i++)
		p[i] = breaker_allow(&b, 3000);
	CU_ASSERT_EQUAL(breaker_record(&b, 3001, p[0].ticket, 0), 0);
	CU_ASSERT_EQUAL(breaker_record(&b, 3001, p[1].ticket, 1), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	CU_ASSERT_EQUAL(b.open_for_ms, 2000);
	/* the last probe of that period answers late: it changes nothing */
	CU_ASSERT_EQUAL(breaker_record(&b, 3002, p[2].ticket, 0), 0);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	breaker_free(&b);
}

static void test_stale_results_ignored(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	jr_breaker_pass early = breaker_allow(&b, 0); /* sent while closed */
	open_it(&b, 0);
	/* its failure arrives while open, then after the breaker closed again */
	CU_ASSERT_EQUAL(breaker_record(&b, 10, early.ticket, 1), 0);
	jr_breaker_pass probe = breaker_allow(&b, 1000);
	/* a stale result during half-open is not taken for the probe */
	CU_ASSERT_EQUAL(breaker_record(&b, 1000, early.ticket, 0), 0);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_HALF_OPEN);
	CU_ASSERT_EQUAL(breaker_record(&b, 1000, probe.ticket, 0), 1);
	CU_ASSERT_EQUAL(breaker_record(&b, 1000, early.ticket, 1), 0);
	CU_ASSERT_EQUAL(b.n, 0);
	breaker_free(&b);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(breaker_state_name(JR_BREAKER_CLOSED), "closed");
	CU_ASSERT_STRING_EQUAL(breaker_state_name(JR_BREAKER_HALF_OPEN), "half_open");
	CU_ASSERT_STRING_EQUAL(breaker_state_name(JR_BREAKER_OPEN), "open");
}

/* A released call (it never reached the job) counts neither way; a probe's slot is freed. */
static void test_release(void)
{
	jr_breaker b;
	breaker_init(&b, &conf);
	/* closed: releases leave the window empty, so min_calls is never reached by them */
	for (int i = 0; i < 10; i++)
		breaker_release(&b, breaker_allow(&b, 0).ticket);
	CU_ASSERT_EQUAL(b.n, 0);
	open_it(&b, 0);
	/* half-open: the released probe neither closes nor reopens, and another may go */
	jr_breaker_pass p = breaker_allow(&b, 1000);
	CU_ASSERT_TRUE(p.allowed);
	CU_ASSERT_FALSE(breaker_allow(&b, 1000).allowed);
	breaker_release(&b, p.ticket);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_HALF_OPEN);
	p = breaker_allow(&b, 1001);
	CU_ASSERT_TRUE(p.allowed);
	CU_ASSERT_EQUAL(breaker_record(&b, 1002, p.ticket, 0), 1);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_CLOSED);
	/* a stale ticket's release changes nothing */
	open_it(&b, 2000);
	breaker_release(&b, p.ticket);
	CU_ASSERT_EQUAL(b.state, JR_BREAKER_OPEN);
	breaker_free(&b);
}

int main(void)
{
	static const cu_test tests[] = {
		{"min_calls", test_min_calls},
		{"rate_threshold", test_rate_threshold},
		{"window_slides", test_window_slides},
		{"open_holds_then_half_open_closes", test_open_holds_then_half_open_closes},
		{"reopen_doubles_up_to_max", test_reopen_doubles_up_to_max},
		{"several_probes", test_several_probes},
		{"stale_results_ignored", test_stale_results_ignored},
		{"release", test_release},
		{"names", test_names},
		{NULL, NULL},
	};
	return cu_run("breaker", tests);
}
