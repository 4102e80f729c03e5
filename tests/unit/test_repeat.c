/* The repeat policy: which deliveries are suspected repeats, the lookup's window, times. */
#include "cu.h"
#include "repeat.h"

#define NOW 1714564800000LL /* 2024-05-01T12:00:00Z */

static jr_repeat_in msg(int attempt, int64_t publish_ms)
{
	return (jr_repeat_in){.has_message = 1, .delivery_attempt = attempt,
			      .publish_ms = publish_ms};
}

/* on_redelivery: a fresh first delivery is not suspected; attempt > 1, age and seen are. */
static void test_on_redelivery(void)
{
	jr_repeat_conf c = repeat_conf_default();
	CU_ASSERT_EQUAL(c.mode, JR_REPEAT_ON_REDELIVERY);
	CU_ASSERT_EQUAL(c.min_age_ms, 10000);
	jr_repeat_in in = msg(1, NOW - 50);
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
	in = msg(0, NOW - 9999); /* attempt not reported, just under min_age */
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
	in = msg(2, NOW - 50);
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_BY_ATTEMPT);
	in = msg(0, NOW - 10000); /* no attempt reported: the age stands in for it */
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_BY_AGE);
	in = msg(1, NOW - 600000); /* reported first delivery: its age is a backlog, no repeat */
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
	in = msg(0, NOW + 5000); /* published "later" than now: clock skew, not old */
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
	in = msg(0, -1); /* no publish time (or a replayed record's): the age rule is out */
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
	in.seen = 1;
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_BY_SEEN);
	CU_ASSERT_STRING_EQUAL(repeat_why_name(JR_REPEAT_BY_SEEN), "seen");
	in = msg(1, NOW - 600000);
	in.seen = 1;
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_BY_SEEN);
	c.min_age_ms = 60000;
	in = msg(0, NOW - 30000);
	CU_ASSERT_EQUAL(repeat_suspect(&c, &in, NOW), JR_REPEAT_NOT);
}

/* Without a Pub/Sub message only mode always suspects; never suspects nothing. */
static void test_modes_and_no_message(void)
{
	jr_repeat_conf c = repeat_conf_default();
	jr_repeat_in none = {.has_message = 0, .delivery_attempt = 5, .publish_ms = 0, .seen = 1};
	CU_ASSERT_EQUAL(repeat_suspect(&c, &none, NOW), JR_REPEAT_NOT);
	c.mode = JR_REPEAT_ALWAYS;
	CU_ASSERT_EQUAL(repeat_suspect(&c, &none, NOW), JR_REPEAT_BY_MODE);
	jr_repeat_in fresh = msg(1, NOW);
	CU_ASSERT_EQUAL(repeat_suspect(&c, &fresh, NOW), JR_REPEAT_BY_MODE);
	c.mode = JR_REPEAT_NEVER;
	jr_repeat_in old = msg(9, 0);
	old.seen = 1;
	CU_ASSERT_EQUAL(repeat_suspect(&c, &old, NOW), JR_REPEAT_NOT);
}

/* The lookup starts a minute before the publish time, or lookback before now; never later than now. */
static void test_since(void)
{
	jr_repeat_conf c = repeat_conf_default();
	CU_ASSERT_EQUAL(repeat_since_ms(&c, NOW - 1000, NOW), NOW - 1000 - REPEAT_SKEW_MS);
	CU_ASSERT_EQUAL(repeat_since_ms(&c, -1, NOW), NOW - 3600000);
	CU_ASSERT_EQUAL(repeat_since_ms(&c, NOW + 3600000, NOW), NOW);
	c.lookback_ms = 0;
	CU_ASSERT_EQUAL(repeat_since_ms(&c, -1, NOW), NOW);
}

static void test_mode_names(void)
{
	jr_repeat_mode m = JR_REPEAT_NEVER;
	CU_ASSERT_EQUAL(repeat_mode_parse("always", &m), 0);
	CU_ASSERT_EQUAL(m, JR_REPEAT_ALWAYS);
	CU_ASSERT_EQUAL(repeat_mode_parse("on_redelivery", &m), 0);
	CU_ASSERT_EQUAL(m, JR_REPEAT_ON_REDELIVERY);
	CU_ASSERT_EQUAL(repeat_mode_parse("sometimes", &m), -1);
	CU_ASSERT_EQUAL(repeat_mode_parse(NULL, &m), -1);
	CU_ASSERT_STRING_EQUAL(repeat_mode_name(JR_REPEAT_NEVER), "never");
}

/* RFC 3339 times as Pub/Sub and CloudEvents write them. */
static void test_time(void)
{
	int64_t ms = 0;
	CU_ASSERT_EQUAL(repeat_time_ms("2024-05-01T12:00:00Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, NOW);
	CU_ASSERT_EQUAL(repeat_time_ms("2024-05-01T12:00:00.123456789Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, NOW + 123);
	CU_ASSERT_EQUAL(repeat_time_ms("2024-05-01T12:00:00.5Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, NOW + 500);
	CU_ASSERT_EQUAL(repeat_time_ms("2024-05-01T13:30:00+01:30", &ms), 0);
	CU_ASSERT_EQUAL(ms, NOW);
	CU_ASSERT_EQUAL(repeat_time_ms("1970-01-01T00:00:00Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, 0);
	CU_ASSERT_EQUAL(repeat_time_ms("2000-02-29T00:00:00Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, 951782400000LL);
	const char *bad[] = {"", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z",
			     "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zx", "x024-05-01T12:00:00Z",
			     "2024-05-01T12:00:00+0100"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(repeat_time_ms(bad[i], &ms), -1);
	CU_ASSERT_EQUAL(repeat_time_ms(NULL, &ms), -1);
}

static const cu_test tests[] = {
	{"on_redelivery", test_on_redelivery},
	{"modes_and_no_message", test_modes_and_no_message},
	{"since", test_since},
	{"mode_names", test_mode_names},
	{"time", test_time},
	{NULL, NULL},
};

int main(void)
{
	return cu_run("repeat", tests);
}
