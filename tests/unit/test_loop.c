/*
 * test_loop.c — jr_loop: timer order, cancel, loop_run_once waiting, and
 * completion-queue tags (from a lame channel: no network involved).
 * Nothing here sleeps: every wait is the loop's own.
 */
#include "cu.h"

#include <pthread.h>
#include <string.h>

#include <grpc/grpc.h>

#include "loop.h"

#define MAXLOG 1024

static int log_v[MAXLOG];
static int log_n;

static void note(void *arg)
{
	if (log_n < MAXLOG)
		log_v[log_n++] = (int)(intptr_t)arg;
}

/* run_until: runs the loop until n callbacks ran or 5 s passed; returns callbacks run. */
static int run_until(jr_loop *l, int n)
{
	int ran = 0;
	int64_t end = loop_now_ms() + 5000;
	while (ran < n && loop_now_ms() < end)
		ran += loop_run_once(l, end - loop_now_ms());
	return ran;
}

static void test_order(void)
{
	jr_loop *l = loop_new();
	log_n = 0;
	loop_timer_add(l, 30, note, (void *)3);
	loop_timer_add(l, 10, note, (void *)1);
	loop_timer_add(l, 20, note, (void *)2);
	loop_timer_add(l, 0, note, (void *)0);
	loop_timer_add(l, -5, note, (void *)10); /* negative: due now, after 0 (added later) */
	CU_ASSERT_EQUAL(loop_timers_pending(l), 5);
	CU_ASSERT_EQUAL(run_until(l, 5), 5);
	CU_ASSERT_EQUAL(log_n, 5);
	int want[] = { 0, 10, 1, 2, 3 };
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(log_v[i], want[i]);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 0);
	loop_free(l);
}

/* Many timers added within one millisecond run sorted by (delay, insertion order). */
static void test_order_many(void)
{
	enum { N = 600 };
	static int delay[N], cancelled[N];
	jr_loop *l = loop_new();
	jr_timer_id ids[N];
	int tries = 0;
	for (;;) {
		log_n = 0;
		int64_t t0 = loop_now_ms();
		for (int i = 0; i < N; i++) {
			delay[i] = (i * 7919) % 23; /* many ties */
			ids[i] = loop_timer_add(l, delay[i], note, (void *)(intptr_t)i);
		}
		if (loop_now_ms() == t0 || ++tries == 20)
			break;
		for (int i = 0; i < N; i++)
			loop_timer_cancel(l, ids[i]);
	}
	CU_ASSERT_TRUE(tries < 20);
	int live = N;
	for (int i = 0; i < N; i++) {
		cancelled[i] = (i % 3 == 1);
		if (cancelled[i]) {
			loop_timer_cancel(l, ids[i]);
			live--;
		}
	}
	CU_ASSERT_EQUAL(loop_timers_pending(l), live);
	CU_ASSERT_EQUAL(run_until(l, live), live);
	CU_ASSERT_EQUAL(log_n, live);
	for (int k = 0; k < log_n; k++)
		CU_ASSERT_FALSE(cancelled[log_v[k]]);
	for (int k = 1; k < log_n; k++) {
		int a = log_v[k - 1], b = log_v[k];
		CU_ASSERT_TRUE(delay[a] < delay[b] || (delay[a] == delay[b] && a < b));
	}
	loop_free(l);
}

static void test_cancel(void)
{
	jr_loop *l = loop_new();
	log_n = 0;
	jr_timer_id a = loop_timer_add(l, 5, note, (void *)1);
	jr_timer_id b = loop_timer_add(l, 5, note, (void *)2);
	jr_timer_id c = loop_timer_add(l, 5, note, (void *)3);
	CU_ASSERT(a != 0 && b != 0 && c != 0 && a != b && b != c);
	loop_timer_cancel(l, b);
	loop_timer_cancel(l, b);         /* twice: ignored */
	loop_timer_cancel(l, 0);         /* never an id */
	loop_timer_cancel(l, 987654321); /* unknown */
	CU_ASSERT_EQUAL(loop_timers_pending(l), 2);
	CU_ASSERT_EQUAL(run_until(l, 2), 2);
	CU_ASSERT_EQUAL(log_n, 2);
	CU_ASSERT_EQUAL(log_v[0], 1);
	CU_ASSERT_EQUAL(log_v[1], 3);
	/* a stale id whose slot was reused must not cancel the new timer */
	jr_timer_id d = loop_timer_add(l, 0, note, (void *)4);
	loop_timer_cancel(l, a);
	loop_timer_cancel(l, b);
	CU_ASSERT(d != a && d != b && d != c);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 1);
	CU_ASSERT_EQUAL(run_until(l, 1), 1);
	CU_ASSERT_EQUAL(log_v[2], 4);
	loop_free(l);
}

static jr_loop *g_loop;
static jr_timer_id g_victim;

static void cancel_victim(void *arg)
{
	note(arg);
	loop_timer_cancel(g_loop, g_victim);
}

/* A timer callback cancels a timer due in the same pass: it does not run. */
static void test_cancel_from_callback(void)
{
	jr_loop *l = g_loop = loop_new();
	log_n = 0;
	loop_timer_add(l, 0, cancel_victim, (void *)1);
	g_victim = loop_timer_add(l, 0, note, (void *)2);
	loop_timer_add(l, 0, note, (void *)3);
	CU_ASSERT_EQUAL(run_until(l, 2), 2);
	CU_ASSERT_EQUAL(log_n, 2);
	CU_ASSERT_EQUAL(log_v[0], 1);
	CU_ASSERT_EQUAL(log_v[1], 3);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 0);
	loop_free(l);
}

static int rearm_count;

static void rearm(void *arg)
{
	rearm_count++;
	loop_timer_add(g_loop, 0, rearm, arg);
}

/* A timer that re-arms itself with delay 0 runs once per loop_run_once, not forever. */
static void test_rearm_zero(void)
{
	jr_loop *l = g_loop = loop_new();
	rearm_count = 0;
	loop_timer_add(l, 0, rearm, NULL);
	CU_ASSERT_EQUAL(loop_run_once(l, 0), 1);
	CU_ASSERT_EQUAL(rearm_count, 1);
	CU_ASSERT_EQUAL(loop_run_once(l, 0), 1);
	CU_ASSERT_EQUAL(rearm_count, 2);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 1);
	loop_free(l); /* frees the pending timer without running it */
	CU_ASSERT_EQUAL(rearm_count, 2);
}

/* loop_run_once(-1) waits for the next timer and runs it in the same call. */
static void test_run_once_waits_for_timer(void)
{
	jr_loop *l = loop_new();
	log_n = 0;
	int64_t t0 = loop_now_ms();
	loop_timer_add(l, 60, note, (void *)7);
	CU_ASSERT_EQUAL(loop_run_once(l, -1), 1);
	int64_t waited = loop_now_ms() - t0;
	CU_ASSERT_TRUE(waited >= 60);
	CU_ASSERT_TRUE(waited < 2000);
	CU_ASSERT_EQUAL(log_n, 1);
	loop_free(l);
}

/* max_wait_ms bounds the wait when the next timer is later; nothing runs. */
static void test_run_once_max_wait(void)
{
	jr_loop *l = loop_new();
	log_n = 0;
	loop_timer_add(l, 10000, note, (void *)1);
	int64_t t0 = loop_now_ms();
	CU_ASSERT_EQUAL(loop_run_once(l, 40), 0);
	int64_t waited = loop_now_ms() - t0;
	CU_ASSERT_TRUE(waited >= 40);
	CU_ASSERT_TRUE(waited < 2000);
	t0 = loop_now_ms();
	CU_ASSERT_EQUAL(loop_run_once(l, 0), 0); /* a poll */
	CU_ASSERT_TRUE(loop_now_ms() - t0 < 1000);
	CU_ASSERT_EQUAL(log_n, 0);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 1);
	loop_free(l);
}

/* A call on a lame channel: its batch completes at once with an error status. */
typedef struct lame_call {
	jr_tag tag;
	grpc_call *call;
	grpc_metadata_array trailing;
	grpc_status_code status;
	grpc_slice details;
	int done, ok;
} lame_call;

static void lame_done(void *arg, int ok)
{
	lame_call *lc = arg;
	lc->done++;
	lc->ok = ok;
	note((void *)100);
}

static void lame_start(grpc_channel *ch, jr_loop *l, lame_call *lc)
{
	memset(lc, 0, sizeof *lc);
	lc->tag.fn = lame_done;
	lc->tag.arg = lc;
	grpc_metadata_array_init(&lc->trailing);
	lc->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, loop_cq(l),
					    grpc_slice_from_static_string("/t.T/M"), NULL,
					    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[1].data.recv_status_on_client.trailing_metadata = &lc->trailing;
	ops[1].data.recv_status_on_client.status = &lc->status;
	ops[1].data.recv_status_on_client.status_details = &lc->details;
	CU_ASSERT_EQUAL(grpc_call_start_batch(lc->call, ops, 2, &lc->tag, NULL), GRPC_CALL_OK);
}

static void lame_end(lame_call *lc)
{
	grpc_metadata_array_destroy(&lc->trailing);
	grpc_slice_unref(lc->details);
	grpc_call_unref(lc->call);
}

static void test_tag_dispatch(void)
{
	jr_loop *l = loop_new();
	grpc_channel *ch = grpc_lame_client_channel_create("lame", GRPC_STATUS_UNAVAILABLE, "lame");
	lame_call lc;
	log_n = 0;
	loop_timer_add(l, 10000, note, (void *)1);
	lame_start(ch, l, &lc);
	CU_ASSERT_EQUAL(lc.done, 0); /* never from inside start_batch */
	CU_ASSERT_EQUAL(run_until(l, 1), 1);
	CU_ASSERT_EQUAL(lc.done, 1);
	CU_ASSERT_EQUAL(lc.ok, 1);
	CU_ASSERT_EQUAL(lc.status, GRPC_STATUS_UNAVAILABLE);
	CU_ASSERT_EQUAL(loop_timers_pending(l), 1);
	lame_end(&lc);
	grpc_channel_destroy(ch);
	loop_free(l);
}

/* loop_free drains the queue: a tag still queued runs with ok=0. */
static void test_free_drains(void)
{
	jr_loop *l = loop_new();
	grpc_channel *ch = grpc_lame_client_channel_create("lame", GRPC_STATUS_UNAVAILABLE, "lame");
	lame_call lc;
	log_n = 0;
	lame_start(ch, l, &lc);
	loop_timer_add(l, 0, note, (void *)1);
	loop_free(l);
	CU_ASSERT_EQUAL(lc.done, 1);
	CU_ASSERT_EQUAL(lc.ok, 0);
	CU_ASSERT_EQUAL(log_n, 1); /* the tag ran; the timer did not */
	lame_end(&lc);
	grpc_channel_destroy(ch);
}

/* Completions and due timers both run in one loop_run_once. */
static void test_tags_and_timers_together(void)
{
	jr_loop *l = loop_new();
	grpc_channel *ch = grpc_lame_client_channel_create("lame", GRPC_STATUS_UNAVAILABLE, "lame");
	lame_call a, b;
	log_n = 0;
	lame_start(ch, l, &a);
	lame_start(ch, l, &b);
	loop_timer_add(l, 0, note, (void *)1);
	CU_ASSERT_EQUAL(run_until(l, 3), 3);
	CU_ASSERT_EQUAL(a.done + b.done, 2);
	CU_ASSERT_EQUAL(log_n, 3);
	lame_end(&a);
	lame_end(&b);
	grpc_channel_destroy(ch);
	loop_free(l);
}

static void test_now_monotonic(void)
{
	int64_t a = loop_now_ms(), b = loop_now_ms();
	CU_ASSERT_TRUE(a > 0);
	CU_ASSERT_TRUE(b >= a);
}

typedef struct poster {
	jr_loop *l;
	int n;
} poster;

static void *post_thread(void *arg)
{
	poster *p = arg;
	for (int i = 0; i < p->n; i++)
		loop_post(p->l, note, (void *)(intptr_t)(1000 + i));
	return NULL;
}

/* loop_post from another thread ends a wait with no timer due, and keeps order. */
static void test_post_from_thread(void)
{
	jr_loop *l = loop_new();
	log_n = 0;
	poster p = {l, 50};
	pthread_t t;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, post_thread, &p), 0);
	int64_t end = loop_now_ms() + 10000;
	while (log_n < 50 && loop_now_ms() < end)
		loop_run_once(l, -1); /* no timers: only a post can wake it */
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(log_n, 50);
	for (int i = 0; i < 50 && i < log_n; i++)
		CU_ASSERT_EQUAL(log_v[i], 1000 + i);
	loop_post(l, note, (void *)7); /* still queued at free: dropped, not run */
	loop_free(l);
	CU_ASSERT_EQUAL(log_n, 50);
}

static const cu_test tests[] = {
	{ "post_from_thread", test_post_from_thread },
	{ "order", test_order },
	{ "order_many", test_order_many },
	{ "cancel", test_cancel },
	{ "cancel_from_callback", test_cancel_from_callback },
	{ "rearm_zero", test_rearm_zero },
	{ "run_once_waits_for_timer", test_run_once_waits_for_timer },
	{ "run_once_max_wait", test_run_once_max_wait },
	{ "tag_dispatch", test_tag_dispatch },
	{ "free_drains", test_free_drains },
	{ "tags_and_timers_together", test_tags_and_timers_together },
	{ "now_monotonic", test_now_monotonic },
	{ NULL, NULL },
};

int main(void)
{
	grpc_init();
	int rc = cu_run("loop", tests);
	grpc_shutdown();
	return rc;
}
