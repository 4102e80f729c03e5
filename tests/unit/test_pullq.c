/*
 * test_pullq.c — the pull queue (pullq.h) against stand-in ports
 * (pullq_stubs.c) on a stepped clock: flow control pauses and resumes the
 * stream, leases are extended on time and left at max_extension, an ordering
 * key's messages go one at a time (a failed one sends the rest back),
 * attempts and holds, undecodable messages, and the drain. Each test checks
 * which ids were acked, modacked (with what deadline) and submitted.
 * Nothing sleeps; no gRPC, no loop.
 */
#include "cu.h"

#include <string.h>

#include "config_load.h"
#include "pullq.h"
#include "pullq_stubs.h"

/* ack_deadline 30 s: leases are extended every 20 s; max_extension 60 s. */
static const char *const base_yaml =
	"project: p\nregion: r\nsubscription: projects/p/subscriptions/s\n"
	"flow_control: { max_messages: 2, max_bytes: 1000, ack_deadline: 30s, max_extension: 60s }\n"
	"routes:\n"
	"  - { name: a, match: { type: google.cloud.pubsub.topic.v1.messagePublished }, job: ja }\n"
	"  - { name: b, match: { type: google.cloud.pubsub.topic.v1.messagePublished }, job: jb }\n";

typedef struct fx {
	jr_config c;
	stubs s;
	jr_pullq *q;
} fx;

static void fx_open(fx *f, const char *yaml)
{
	jr_buf errs;
	buf_init(&errs, 0);
	memset(&f->c, 0, sizeof f->c);
	CU_ASSERT_EQUAL_FATAL(config_load_string(&f->c, "t.yaml", yaml, strlen(yaml), &errs), 0);
	buf_free(&errs);
	stub_init(&f->s, f->c.n_routes);
	pullq_opts o = {.cfg = &f->c, .ack_deadline_s = 30, .timers = f->s.t, .seed = 42};
	pullq_ports io = stub_ports(&f->s);
	f->q = pullq_new(&o, &io);
}

static void fx_close(fx *f)
{
	pullq_free(f->q);
	stub_free(&f->s);
	config_free(&f->c);
}

/* rx: message id with ack id "a-<id>-<n>" (n: the delivery), ordering key (may be NULL). */
static void rx_full(fx *f, const char *id, int n, const char *key, int delivery_attempt,
		    const char *data)
{
	char ack[64];
	snprintf(ack, sizeof ack, "a-%s-%d", id, n);
	jr_pubsub_msg m = {.ack_id = ack, .message_id = id, .data = data,
			   .data_len = strlen(data), .ordering_key = key,
			   .delivery_attempt = delivery_attempt, .size = 100};
	pullq_receive(f->q, &m);
}

static void rx(fx *f, const char *id, const char *key)
{
	rx_full(f, id, 1, key, 0, "hello");
}

/* modack_of: the last modack's seconds for ack id; -1 when none. */
static int modack_of(const fx *f, const char *ack)
{
	const stub_act *a = stub_last(&f->s, ACT_MODACK, ack);
	return a ? a->n : -1;
}

/* attempt_of: the attempt of message id's last submission; -1 when never submitted. */
static int attempt_of(const fx *f, const char *id)
{
	const stub_sub *u = stub_sub_of(&f->s, id);
	return u ? u->attempt : -1;
}

/* modack_at: when the last modack of ack id was sent; -1 when none. */
static int64_t modack_at(const fx *f, const char *ack)
{
	const stub_act *a = stub_last(&f->s, ACT_MODACK, ack);
	return a ? a->at : -1;
}

static int state_of(const fx *f, const char *ack)
{
	return pullq_msg_state_of(f->q, ack);
}

/* Each receipt gets the receipt modack of the ack deadline, then is submitted with attempt 1. */
static void test_receipt(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	CU_ASSERT_EQUAL(f.s.n_acts, 2);
	CU_ASSERT_EQUAL(f.s.acts[0].kind, ACT_MODACK);
	CU_ASSERT_STRING_EQUAL(f.s.acts[0].id, "a-m1-1");
	CU_ASSERT_EQUAL(f.s.acts[0].n, 30);
	CU_ASSERT_EQUAL(f.s.acts[1].kind, ACT_SUBMIT);
	CU_ASSERT_STRING_EQUAL(f.s.acts[1].id, "m1");
	CU_ASSERT_EQUAL(f.s.acts[1].n, 1);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), PQ_DISPATCHED);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(f.s.settled, 1);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->acked, 1);
	fx_close(&f);
}

/*
 * max_messages 2: two are dispatched, two more wait and the stream is paused;
 * an ack dispatches the next one and the stream is read again.
 */
static void test_flow_pause_resume(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	rx(&f, "m2", NULL);
	rx(&f, "m3", NULL);
	CU_ASSERT_EQUAL(f.s.paused, 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 2);
	rx(&f, "m4", NULL);
	CU_ASSERT_EQUAL(f.s.paused, 1); /* two wait: as many as max_messages */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 2);
	CU_ASSERT_EQUAL(state_of(&f, "a-m3-1"), PQ_READY);
	CU_ASSERT_EQUAL(pullq_held(f.q), 4);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 2);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m3"), 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m4"), 0);
	CU_ASSERT_EQUAL(f.s.paused, 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_PAUSE, NULL), 2); /* paused once, resumed once */
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m3", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m4", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 4);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/* max_bytes: a message that would take the dispatched bytes past the limit waits. */
static void test_flow_bytes(void)
{
	fx f;
	fx_open(&f, "project: p\nregion: r\nsubscription: projects/p/subscriptions/s\n"
		    "flow_control: { max_messages: 100, max_bytes: 150 }\n"
		    "routes:\n  - { name: a, match: { type: x }, job: ja }\n");
	rx(&f, "m1", NULL); /* 100 bytes: the first one always goes */
	rx(&f, "m2", NULL); /* 200 > 150: waits, and 100 queued bytes are under the limit */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 1);
	CU_ASSERT_EQUAL(f.s.paused, 0);
	rx(&f, "m3", NULL); /* 200 queued bytes: paused */
	CU_ASSERT_EQUAL(f.s.paused, 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m2"), 1);
	CU_ASSERT_EQUAL(f.s.paused, 0);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m3", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/* concurrency: busy deliveries hold the rest back; pump_soon (on_follow) dispatches again. */
static void test_concurrency_follow(void)
{
	fx f;
	fx_open(&f, base_yaml);
	f.s.busy = 64; /* the default concurrency, all taken */
	rx(&f, "m1", NULL);
	rx(&f, "m2", NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 1);
	f.s.busy = 0; /* m1 now only follows its execution */
	pullq_pump_soon(f.q);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m2"), 0); /* from a timer, not at once */
	stub_step(&f.s, 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m2"), 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	fx_close(&f);
}

/*
 * Leases: ack deadline 30 s, extended 20 s after each (re)start by a modack of
 * 30 s; at 60 s held (max_extension) no more modacks: the lease expires.
 */
static void test_lease_extension(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	stub_step(&f.s, 5000);
	rx(&f, "m2", NULL); /* 5 s later */
	stub_clear(&f.s);
	stub_step(&f.s, 14999); /* 19.999 s */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, NULL), 0);
	stub_step(&f.s, 1); /* 20 s: m1 due, m2 due at 25 s is within the quarter interval (5 s) */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, NULL), 2);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 30);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m2-1"), 30);
	CU_ASSERT_EQUAL(modack_at(&f, "a-m2-1"), f.s.now);
	stub_step(&f.s, 20000); /* 40 s */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, NULL), 4);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->extended, 4);
	stub_clear(&f.s);
	stub_step(&f.s, 20000); /* 60 s: m1 held max_extension; m2 55 s */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m1-1"), 0);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m2-1"), 30);
	stub_clear(&f.s);
	stub_step(&f.s, 20000); /* 80 s: m2 past it too; no timer left */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, NULL), 0);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 0);
	/* the outcome still acks: only the lease was left to run out */
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	fx_close(&f);
}

/* An acked message's lease is dropped: no modack after the ack, and the timer goes. */
static void test_lease_dropped_on_ack(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 0);
	stub_clear(&f.s);
	stub_step(&f.s, 60000);
	CU_ASSERT_EQUAL(f.s.n_acts, 0);
	fx_close(&f);
}

/* One message of a key at a time: the second waits (though there is room) until the first is acked. */
static void test_ordering_release(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "k1", "K");
	rx(&f, "k2", "K");
	rx(&f, "o1", "other");
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "k1"), 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "k2"), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "o1"), 1);
	CU_ASSERT_EQUAL(state_of(&f, "a-k2-1"), PQ_WAITING);
	/* its lease is kept while it waits */
	stub_step(&f.s, 20000);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k2-1"), 30);
	stub_outcome(&f.s, "o1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "k2"), 0); /* still behind k1 */
	stub_outcome(&f.s, "k1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-k1-1"), 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "k2"), 1);
	stub_outcome(&f.s, "k2", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-k2-1"), 1);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/*
 * A failed message blocks its key: the messages waiting behind it go back to
 * Pub/Sub with its delay, unsent, so they cannot overtake it; the key is free
 * again for the redeliveries.
 */
static void test_ordering_blocked_on_failure(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "k1", "K");
	rx(&f, "k2", "K");
	rx(&f, "k3", "K");
	stub_clear(&f.s);
	stub_outcome(&f.s, "k1", JR_OUTCOME_RETRY, 7500, 0, NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k1-1"), 8);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k2-1"), 8);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k3-1"), 8);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	/* the redeliveries, in order: k1 goes first, k2 waits for it */
	rx_full(&f, "k1", 2, "K", 0, "hello");
	rx_full(&f, "k2", 2, "K", 0, "hello");
	CU_ASSERT_EQUAL(attempt_of(&f, "k1"), 2);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "k2"), 0);
	stub_outcome(&f.s, "k1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-k1-2"), 1);
	CU_ASSERT_EQUAL(attempt_of(&f, "k2"), 1); /* k2 was never dispatched */
	/* a retry at once (delay 0) still sends the waiting ones back: nacked, not dispatched */
	rx_full(&f, "k3", 2, "K", 0, "hello");
	stub_clear(&f.s);
	stub_outcome(&f.s, "k2", JR_OUTCOME_RETRY, 0, 0, NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k2-2"), 0);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k3-2"), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/*
 * Attempts: counted here when Pub/Sub gives none (per message id, with the
 * routes still owed), Pub/Sub's delivery_attempt when given; an ack forgets.
 */
static void test_attempts(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	static const unsigned char owed[2] = {0, 1}; /* route b only */
	stub_outcome(&f.s, "m1", JR_OUTCOME_RETRY, 2000, 0, owed);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 2);
	rx_full(&f, "m1", 2, NULL, 0, "hello");
	const stub_sub *u = stub_sub_of(&f.s, "m1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_EQUAL(u->attempt, 2);
	CU_ASSERT_TRUE(u->has_only);
	CU_ASSERT_EQUAL(u->only[0], 0);
	CU_ASSERT_EQUAL(u->only[1], 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_RETRY, 2000, 0, NULL); /* every route again */
	rx_full(&f, "m1", 3, NULL, 0, "hello");
	u = stub_sub_of(&f.s, "m1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_EQUAL(u->attempt, 3);
	CU_ASSERT_FALSE(u->has_only);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-3"), 1);
	rx_full(&f, "m1", 4, NULL, 0, "hello"); /* acked, then delivered again: counting restarts */
	CU_ASSERT_EQUAL(attempt_of(&f, "m1"), 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	/* Pub/Sub's delivery_attempt wins over the count */
	rx_full(&f, "m2", 1, NULL, 5, "hello");
	CU_ASSERT_EQUAL(attempt_of(&f, "m2"), 5);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->retried, 2);
	fx_close(&f);
}

/*
 * A hold (RETRY with hold: the job's breaker is open) is a modack for the
 * breaker's remaining open time (at most 600 s). The queue passes deliveries
 * seen, holds included (the dispatcher subtracts its holds from them), so the
 * redelivery goes with attempt 2 and the dispatcher makes it attempt 1 again.
 */
static void test_hold(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	stub_outcome(&f.s, "m1", JR_OUTCOME_RETRY, 45000, 1, NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 45);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 0);
	rx_full(&f, "m1", 2, NULL, 0, "hello");
	CU_ASSERT_EQUAL(attempt_of(&f, "m1"), 2);
	stub_outcome(&f.s, "m1", JR_OUTCOME_RETRY, 3600000, 1, NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-2"), 600); /* capped */
	/* Pub/Sub's delivery_attempt counts holds as well: passed as is */
	rx_full(&f, "m1", 3, NULL, 3, "hello");
	CU_ASSERT_EQUAL(attempt_of(&f, "m1"), 3);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-3"), 1);
	fx_close(&f);
}

/* FAILED (a dead letter not written): a modack with backoff of 10 s doubling, full jitter, at least 1 s. */
static void test_failed_backoff(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	stub_outcome(&f.s, "m1", JR_OUTCOME_FAILED, 0, 0, NULL);
	int secs = modack_of(&f, "a-m1-1");
	CU_ASSERT_TRUE(secs >= 1 && secs <= 10);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->failed, 1);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/* A message that does not decode is dead-lettered raw, then acked; nacked with backoff when that failed. */
static void test_invalid(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx_full(&f, "bad1", 1, NULL, 0, "{\"specversion\":\"1.0\"}"); /* structured, no id/type/source */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_DEAD_LETTER, "bad1"), 1);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 1);
	stub_raw_done(&f.s, "bad1", 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-bad1-1"), 1);
	rx_full(&f, "bad2", 1, NULL, 0, "{\"specversion\":\"1.0\"}");
	stub_raw_done(&f.s, "bad2", 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-bad2-1"), 0);
	int secs = modack_of(&f, "a-bad2-1");
	CU_ASSERT_TRUE(secs >= 1 && secs <= 10);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->invalid, 2);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/*
 * Drain (SIGTERM): waiting messages (ready and behind a key) are nacked at
 * once, new arrivals too; the ones in flight finish and are acked.
 */
static void test_drain(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "k1", "K");
	rx(&f, "m1", NULL);
	rx(&f, "k2", "K"); /* behind k1 */
	rx(&f, "m2", NULL); /* ready: max_messages 2 are dispatched */
	CU_ASSERT_EQUAL(f.s.paused, 1);
	stub_clear(&f.s);
	pullq_drain(f.q);
	CU_ASSERT_EQUAL(modack_of(&f, "a-k2-1"), 0);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m2-1"), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, NULL), 2);
	CU_ASSERT_EQUAL(f.s.paused, 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->nacked_draining, 2);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 2);
	rx(&f, "m3", NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m3-1"), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	stub_outcome(&f.s, "k1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-k1-1"), 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(f.s.settled, 2);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->nacked_draining, 3);
	fx_close(&f);
}

/* Grace over: messages in flight are nacked; a late DONE still acks, a late RETRY sends nothing more. */
static void test_grace_nack(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	rx(&f, "m2", NULL);
	pullq_drain(f.q);
	stub_clear(&f.s);
	pullq_nack_dispatched(f.q);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 0);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m2-1"), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 2); /* their outcomes are still owed */
	stub_clear(&f.s);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m2", JR_OUTCOME_RETRY, 1000, 0, NULL);
	CU_ASSERT_EQUAL(f.s.n_acts, 1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(f.s.settled, 0);
	CU_ASSERT_EQUAL(pullq_dispatched(f.q), 0);
	fx_close(&f);
}

/* ---- exactly-once subscriptions ---- */

/* confirm: one id in list l of a confirmation (no properties). */
static void confirm(fx *f, jr_pubsub_conf_list l, const char *ack)
{
	jr_pubsub_conf c;
	memset(&c, 0, sizeof c);
	const char *ids[1] = {ack};
	c.ids[l] = ids;
	c.n[l] = 1;
	pullq_confirm(f->q, &c);
}

/* eod_on: a response's subscription_properties with exactly_once_delivery_enabled. */
static void eod_on(fx *f)
{
	jr_pubsub_conf c;
	memset(&c, 0, sizeof c);
	c.has_properties = 1;
	c.exactly_once = 1;
	pullq_confirm(f->q, &c);
}

/* The receipt modack must be confirmed before the message is dispatched. */
static void test_eod_receipt_wait(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	rx(&f, "m1", NULL);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 30);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), PQ_CONFIRMING);
	CU_ASSERT_STRING_EQUAL(pullq_msg_state_name(PQ_CONFIRMING), "confirming");
	confirm(&f, JR_CONF_ACK_OK, "a-m1-1"); /* an ack confirmation does not confirm a modack */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	confirm(&f, JR_CONF_MOD_OK, "a-m1-1");
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m1"), 1);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), PQ_DISPATCHED);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->confirmed, 1);
	/* without exactly-once (properties saying so), nothing waits */
	jr_pubsub_conf off;
	memset(&off, 0, sizeof off);
	off.has_properties = 1;
	pullq_confirm(f.q, &off);
	rx(&f, "m2", NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m2"), 1);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(state_of(&f, "a-m2-1"), -1); /* freed at once: no confirmation awaited */
	fx_close(&f);
}

/* An invalid receipt modack: the lease is lost; dropped from the queue, never dispatched. */
static void test_eod_receipt_invalid(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	rx(&f, "m1", NULL);
	rx(&f, "k1", "K");
	rx(&f, "k2", "K"); /* waiting behind k1 */
	confirm(&f, JR_CONF_MOD_INVALID, "a-m1-1");
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), -1);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->lease_lost, 1);
	confirm(&f, JR_CONF_MOD_OK, "a-k2-1");  /* k2 confirmed, still behind k1 */
	confirm(&f, JR_CONF_MOD_INVALID, "a-k1-1"); /* k1 lost: k2 goes back, not ahead of it */
	CU_ASSERT_EQUAL(modack_of(&f, "a-k2-1"), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->lease_lost, 2);
	stub_step(&f.s, 120000); /* nothing is retried for them */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 0);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 0);
	fx_close(&f);
}

/* A temporarily failed receipt modack is sent again after a backoff; then confirmed and dispatched. */
static void test_eod_receipt_temporary(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	rx(&f, "m1", NULL);
	confirm(&f, JR_CONF_MOD_TEMPORARY, "a-m1-1");
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m1-1"), 1);
	stub_step(&f.s, 1000); /* the first backoff: at most 1 s */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m1-1"), 2);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m1-1"), 30);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	confirm(&f, JR_CONF_MOD_OK, "a-m1-1");
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m1"), 1);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	confirm(&f, JR_CONF_ACK_OK, "a-m1-1");
	/* retries are bounded by the lease: m2 fails for good, never dispatched */
	rx(&f, "m2", NULL);
	for (int i = 0; i < 40 && state_of(&f, "a-m2-1") >= 0; i++) {
		confirm(&f, JR_CONF_MOD_TEMPORARY, "a-m2-1");
		stub_step(&f.s, 10000);
	}
	CU_ASSERT_EQUAL(state_of(&f, "a-m2-1"), -1);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, "m2"), 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->lease_lost, 1);
	/* no confirmation at all counts as a temporary failure after 10 s */
	rx(&f, "m3", NULL);
	stub_step(&f.s, 10000);
	stub_step(&f.s, 1000);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m3-1"), 2);
	fx_close(&f);
}

/* dispatch_confirmed: m received, its receipt confirmed, dispatched. */
static void dispatch_confirmed(fx *f, const char *id)
{
	char ack[64];
	snprintf(ack, sizeof ack, "a-%s-1", id);
	rx(f, id, NULL);
	confirm(f, JR_CONF_MOD_OK, ack);
	CU_ASSERT_EQUAL(stub_count(&f->s, ACT_SUBMIT, id), 1);
}

/* An ack is confirmed once, and never sent again after that. */
static void test_eod_ack_once(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	dispatch_confirmed(&f, "m1");
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), PQ_ACKING);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	confirm(&f, JR_CONF_MOD_OK, "a-m1-1"); /* a modack confirmation does not confirm the ack */
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), PQ_ACKING);
	confirm(&f, JR_CONF_ACK_OK, "a-m1-1");
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), -1);
	confirm(&f, JR_CONF_ACK_TEMPORARY, "a-m1-1"); /* late, for a confirmed ack: ignored */
	stub_step(&f.s, 120000);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 1);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->ack_unconfirmed, 0);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 0);
	fx_close(&f);
}

/* A temporarily failed ack is sent again; an ack that stays unconfirmed past the lease is counted. */
static void test_eod_ack_temporary(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	dispatch_confirmed(&f, "m1");
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	confirm(&f, JR_CONF_ACK_TEMPORARY, "a-m1-1");
	stub_step(&f.s, 1000);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 2);
	confirm(&f, JR_CONF_ACK_OK, "a-m1-1");
	stub_step(&f.s, 60000);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m1-1"), 2);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), -1);
	/* invalid: the job ran, the ack is not confirmed: counted, not sent again */
	dispatch_confirmed(&f, "m2");
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	confirm(&f, JR_CONF_ACK_INVALID, "a-m2-1");
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->ack_unconfirmed, 1);
	CU_ASSERT_EQUAL(state_of(&f, "a-m2-1"), -1);
	/* temporary until past the lease (30 s from the receipt): given up, counted */
	dispatch_confirmed(&f, "m3");
	stub_outcome(&f.s, "m3", JR_OUTCOME_DONE, 0, 0, NULL);
	for (int i = 0; i < 40 && state_of(&f, "a-m3-1") >= 0; i++) {
		confirm(&f, JR_CONF_ACK_TEMPORARY, "a-m3-1");
		stub_step(&f.s, 10000);
	}
	CU_ASSERT_EQUAL(state_of(&f, "a-m3-1"), -1);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->ack_unconfirmed, 2);
	CU_ASSERT_TRUE(stub_count(&f.s, ACT_ACK, "a-m3-1") >= 2);
	CU_ASSERT_EQUAL(timers_pending(f.s.t), 0);
	fx_close(&f);
}

/* A lease extension answered invalid while dispatched: the lease is lost; the outcome is not acked. */
static void test_eod_lease_lost_dispatched(void)
{
	fx f;
	fx_open(&f, base_yaml);
	eod_on(&f);
	dispatch_confirmed(&f, "m1");
	stub_step(&f.s, 20000); /* the extension */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m1-1"), 2);
	confirm(&f, JR_CONF_MOD_INVALID, "a-m1-1");
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->lease_lost, 1);
	stub_step(&f.s, 40000); /* no more extensions */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_MODACK, "a-m1-1"), 2);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 0);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	CU_ASSERT_EQUAL(state_of(&f, "a-m1-1"), -1);
	/* a confirmed extension keeps it going: acked as usual */
	dispatch_confirmed(&f, "m2");
	stub_step(&f.s, 20000);
	confirm(&f, JR_CONF_MOD_OK, "a-m2-1");
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, "a-m2-1"), 1);
	fx_close(&f);
}

/* Drain: the intake is stopped before anything is nacked; confirming messages are nacked too. */
static void test_drain_order(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "m1", NULL);
	rx(&f, "m2", NULL);
	rx(&f, "m3", NULL); /* waits */
	eod_on(&f);
	rx(&f, "m4", NULL); /* confirming */
	stub_clear(&f.s);
	pullq_drain(f.q);
	CU_ASSERT_EQUAL_FATAL(f.s.n_acts >= 3, 1);
	CU_ASSERT_EQUAL(f.s.acts[0].kind, ACT_STOP_INTAKE);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_STOP_INTAKE, NULL), 1);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m3-1"), 0);
	CU_ASSERT_EQUAL(modack_of(&f, "a-m4-1"), 0);
	CU_ASSERT_EQUAL(pullq_get_stats(f.q)->nacked_draining, 2);
	confirm(&f, JR_CONF_MOD_OK, "a-m4-1"); /* too late: nothing dispatched */
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_SUBMIT, NULL), 0);
	stub_outcome(&f.s, "m1", JR_OUTCOME_DONE, 0, 0, NULL);
	stub_outcome(&f.s, "m2", JR_OUTCOME_DONE, 0, 0, NULL);
	CU_ASSERT_EQUAL(stub_count(&f.s, ACT_ACK, NULL), 2);
	CU_ASSERT_EQUAL(pullq_held(f.q), 0);
	fx_close(&f);
}

/* pullq_free frees what is still held (run under ASan for the proof). */
static void test_free_held(void)
{
	fx f;
	fx_open(&f, base_yaml);
	rx(&f, "k1", "K");
	rx(&f, "k2", "K");
	rx(&f, "m1", NULL);
	rx(&f, "m2", NULL);
	stub_outcome(&f.s, "m1", JR_OUTCOME_RETRY, 1000, 0, NULL); /* an attempt remembered */
	CU_ASSERT_EQUAL(pullq_held(f.q), 3);
	CU_ASSERT_STRING_EQUAL(pullq_msg_state_name(PQ_WAITING), "waiting");
	CU_ASSERT_EQUAL(state_of(&f, "a-k2-1"), PQ_WAITING);
	CU_ASSERT_EQUAL(state_of(&f, "a-nope"), -1);
	fx_close(&f);
}

static const cu_test tests[] = {
	{"receipt modack, submit, ack", test_receipt},
	{"flow: paused at max_messages, resumed below", test_flow_pause_resume},
	{"flow: max_bytes", test_flow_bytes},
	{"concurrency, and pump_soon after on_follow", test_concurrency_follow},
	{"lease: extended on the clock, left at max_extension", test_lease_extension},
	{"lease: dropped on the ack", test_lease_dropped_on_ack},
	{"ordering key: one at a time, next after the ack", test_ordering_release},
	{"ordering key: a failure sends the waiting back", test_ordering_blocked_on_failure},
	{"attempts: counted, delivery_attempt, routes owed", test_attempts},
	{"hold: modack for the open time, deliveries passed", test_hold},
	{"failed: backoff modack", test_failed_backoff},
	{"invalid: dead-lettered raw, acked or nacked", test_invalid},
	{"drain: waiting nacked, in flight finish", test_drain},
	{"grace over: in flight nacked, late DONE acks", test_grace_nack},
	{"exactly-once: dispatched once the receipt is confirmed", test_eod_receipt_wait},
	{"exactly-once: invalid receipt, dropped, never dispatched", test_eod_receipt_invalid},
	{"exactly-once: temporary receipt failure retried, bounded", test_eod_receipt_temporary},
	{"exactly-once: ack confirmed once, never again", test_eod_ack_once},
	{"exactly-once: ack retried, unconfirmed counted", test_eod_ack_temporary},
	{"exactly-once: lease lost while dispatched, no ack", test_eod_lease_lost_dispatched},
	{"drain: intake stopped before the nacks", test_drain_order},
	{"free with messages held", test_free_held},
	{NULL, NULL},
};

int main(void)
{
	return cu_run("pullq", tests);
}
