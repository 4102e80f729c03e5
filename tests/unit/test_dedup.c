/* The dedup table: ttl, the entry bound, eviction of the oldest. */
#include "cu.h"
#include "dedup.h"
#include "route.h"

static void test_seen_within_ttl(void)
{
	jr_dedup *d = dedup_new(1000, 10);
	CU_ASSERT_FALSE(dedup_seen(d, 42, 0));
	dedup_add(d, 42, 100);
	CU_ASSERT_TRUE(dedup_seen(d, 42, 100));
	CU_ASSERT_TRUE(dedup_seen(d, 42, 1099));
	CU_ASSERT_FALSE(dedup_seen(d, 43, 500));
	/* ttl over */
	CU_ASSERT_FALSE(dedup_seen(d, 42, 1100));
	CU_ASSERT_EQUAL(dedup_count(d), 0);
	dedup_free(d);
}

static void test_renew(void)
{
	jr_dedup *d = dedup_new(1000, 10);
	dedup_add(d, 1, 0);
	dedup_add(d, 2, 500);
	dedup_add(d, 1, 900); /* renewed: now newer than 2 */
	CU_ASSERT_EQUAL(dedup_count(d), 2);
	CU_ASSERT_FALSE(dedup_seen(d, 2, 1500));
	CU_ASSERT_TRUE(dedup_seen(d, 1, 1500));
	CU_ASSERT_FALSE(dedup_seen(d, 1, 1900));
	dedup_free(d);
}

static void test_evicts_oldest(void)
{
	jr_dedup *d = dedup_new(60000, 3);
	for (uint64_t k = 1; k <= 5; k++)
		dedup_add(d, k, (int64_t)k);
	CU_ASSERT_EQUAL(dedup_count(d), 3);
	CU_ASSERT_EQUAL(dedup_evicted(d), 2);
	CU_ASSERT_FALSE(dedup_seen(d, 1, 10));
	CU_ASSERT_FALSE(dedup_seen(d, 2, 10));
	for (uint64_t k = 3; k <= 5; k++)
		CU_ASSERT_TRUE(dedup_seen(d, k, 10));
	dedup_free(d);
}

static void test_zero_ttl_keeps_nothing(void)
{
	jr_dedup *d = dedup_new(0, 10);
	dedup_add(d, 7, 0);
	CU_ASSERT_FALSE(dedup_seen(d, 7, 0));
	CU_ASSERT_EQUAL(dedup_count(d), 0);
	dedup_free(d);
}

/* many keys through a small table, against a plain array as the reference */
static void test_many_against_reference(void)
{
	enum { MAX = 500, N = 20000 };
	static int64_t added_at[N];
	jr_dedup *d = dedup_new(3000, MAX);
	uint64_t st = 1;
	for (int i = 0; i < N; i++)
		added_at[i] = -1;
	for (int64_t now = 0; now < N; now++) {
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		int k = (int)((st >> 33) % (uint64_t)(now + 1));
		int seen = dedup_seen(d, (uint64_t)k * 0x9E3779B97F4A7C15ULL, now);
		/* the reference: seen means added within ttl; the bound may forget, never invent */
		int within = added_at[k] >= 0 && now - added_at[k] < 3000;
		CU_ASSERT_FATAL(!seen || within);
		if (within && now - added_at[k] < 3000 && dedup_count(d) < MAX)
			CU_ASSERT_FATAL(seen);
		dedup_add(d, (uint64_t)k * 0x9E3779B97F4A7C15ULL, now);
		added_at[k] = now;
		CU_ASSERT_FATAL(dedup_count(d) <= MAX);
	}
	dedup_free(d);
}

static void test_counter(void)
{
	jr_dedup *d = dedup_new(1000, 2);
	CU_ASSERT_EQUAL(dedup_value(d, 9, 0), 0);
	CU_ASSERT_EQUAL(dedup_bump(d, 9, 0), 1);
	CU_ASSERT_EQUAL(dedup_bump(d, 9, 500), 2);
	CU_ASSERT_EQUAL(dedup_value(d, 9, 1400), 2); /* renewed at 500 */
	CU_ASSERT_EQUAL(dedup_value(d, 9, 1500), 0);
	/* an evicted key's count starts again */
	dedup_bump(d, 1, 1500);
	dedup_bump(d, 2, 1500);
	dedup_bump(d, 3, 1500);
	CU_ASSERT_EQUAL(dedup_value(d, 1, 1500), 0);
	CU_ASSERT_EQUAL(dedup_bump(d, 3, 1500), 2);
	/* a forgotten key starts again; the others stay; forgetting a missing key does nothing */
	dedup_forget(d, 3);
	CU_ASSERT_FALSE(dedup_seen(d, 3, 1500));
	CU_ASSERT_EQUAL(dedup_count(d), 1);
	CU_ASSERT_EQUAL(dedup_value(d, 2, 1500), 1);
	dedup_forget(d, 3);
	dedup_forget(d, 77);
	CU_ASSERT_EQUAL(dedup_count(d), 1);
	CU_ASSERT_EQUAL(dedup_bump(d, 3, 1600), 1);
	CU_ASSERT_EQUAL(dedup_bump(d, 4, 1600), 1); /* the free slot is reused: 2 is evicted */
	CU_ASSERT_EQUAL(dedup_value(d, 2, 1600), 0);
	CU_ASSERT_EQUAL(dedup_count(d), 2);
	jr_dedup *off = dedup_new(0, 2);
	CU_ASSERT_EQUAL(dedup_bump(off, 1, 0), 0);
	dedup_free(off);
	dedup_free(d);
}

/* A mark rides with its key: -1 before it is marked and after the key expires. */
static void test_mark(void)
{
	jr_dedup *d = dedup_new(1000, 4);
	CU_ASSERT_EQUAL(dedup_marked(d, 7, 0), -1);
	dedup_add(d, 7, 0);
	CU_ASSERT_EQUAL(dedup_marked(d, 7, 0), -1); /* there, never marked */
	dedup_mark(d, 7, 10, 123456);
	CU_ASSERT_EQUAL(dedup_marked(d, 7, 500), 123456);
	dedup_mark(d, 7, 600, 777);
	CU_ASSERT_EQUAL(dedup_marked(d, 7, 1500), 777); /* renewed at 600 */
	CU_ASSERT_EQUAL(dedup_marked(d, 7, 1601), -1);  /* expired */
	dedup_mark(d, 8, 0, 5);
	CU_ASSERT_EQUAL(dedup_value(d, 8, 0), 0);       /* the counter is apart */
	dedup_free(d);
}

static void test_key_matches_route_key(void)
{
	char hex[17], back[17];
	route_key("//src", "id-1", "route-a", hex);
	uint64_t h = route_key_hash("//src", "id-1", "route-a");
	snprintf(back, sizeof back, "%016llx", (unsigned long long)h);
	CU_ASSERT_STRING_EQUAL(hex, back);
	CU_ASSERT_NOT_EQUAL(h, route_key_hash("//src", "id-1", "route-b"));
}

int main(void)
{
	static const cu_test tests[] = {
		{"seen_within_ttl", test_seen_within_ttl},
		{"renew", test_renew},
		{"evicts_oldest", test_evicts_oldest},
		{"zero_ttl_keeps_nothing", test_zero_ttl_keeps_nothing},
		{"many_against_reference", test_many_against_reference},
		{"counter", test_counter},
		{"mark", test_mark},
		{"key_matches_route_key", test_key_matches_route_key},
		{NULL, NULL},
	};
	return cu_run("dedup", tests);
}
