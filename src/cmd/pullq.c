/*
 * pullq.c — the messages a pull worker holds (pullq.h; docs/pull.md).
 *
 * A received message is copied into one allocation of its exact size (the
 * queue's record, the ack id and the message: ids, data, attributes), and
 * waits in that compact form:
 *
 *   ordering key     behind the messages of its key still held, so one
 *                    key's messages are dispatched one after another
 *   otherwise        in the ready queue, FIFO
 *
 * It becomes an event (decoded into the event's arena; the event's message
 * points into the record) only when it is handed to the dispatcher: while
 * fewer than flow_control.max_messages / max_bytes are dispatched, and fewer
 * deliveries are busy than `concurrency` (more would only wait inside the
 * dispatcher, already rendered), not counting those that only wait for their
 * executions to finish (ack: on_completion; flow control still bounds them).
 * A message that does not decode is dead-lettered then (the message as a push
 * body, `raw`) and acked, or nacked with backoff when the sink failed or
 * there is none.
 *
 * Local flow control: the server's flow control (max_outstanding_* in the
 * first request) is the main limit; locally at most max_messages messages
 * (max_bytes bytes) are with the dispatcher, and when as many again wait,
 * the stream is no longer read (ports.pause) until they drain. So memory is
 * bounded by about twice the limits plus one response, and only the
 * messages with the dispatcher carry a decoded event and a rendered request.
 *
 * Leases: every message held (waiting or dispatched) is on one list in
 * lease order. On receipt it gets a modack of ack_deadline (the receipt
 * modack: pstest ignores the stream deadline of the first request, and the
 * lease then starts from a known point); one timer, armed only while the
 * list is non-empty, extends every lease due within the next quarter
 * interval at 2/3 of the deadline, until the message has been held
 * max_extension (then it is left to expire and be redelivered).
 *
 * Outcomes: DONE → ack; RETRY → modack(delay, at most 600 s); FAILED →
 * modack(backoff, 10 s doubling to 600 s): the event stays in Pub/Sub. A
 * message of an ordering key that is not acked takes the messages waiting
 * behind it back to Pub/Sub with the same delay, so their order holds.
 * Attempts are delivery_attempt when the subscription reports it, else
 * counted here per message id in a bounded map (entries made on a retry,
 * dropped on the ack, the oldest evicted past ATT_MAX), which also keeps the
 * routes still owed so a redelivery runs only those. A RETRY with hold set
 * (the job's breaker is open) is a modack for the remaining open time that
 * costs no attempt: the deliveries seen go to the dispatcher, which
 * subtracts the ones it held (per process: after a restart earlier holds
 * count as attempts again).
 *
 * Exactly-once subscriptions (the stream's subscription_properties say so;
 * pullq_confirm): a message's receipt modack must be confirmed before it is
 * dispatched (PQ_CONFIRMING when its turn came first); every modack and ack
 * of such a message is one pending operation (op) awaiting its confirmation,
 * kept on q->waits by when it is due: a confirmation timeout (CONF_TIMEOUT_MS)
 * or the resend after a temporary failure (backoff 1 s doubling to 10 s, full
 * jitter), bounded by the message's lease (lease_end_ms: from the last
 * confirmed modack). Invalid, or out of retries, means the lease is lost
 * (lost()): a message not yet dispatched never is (dropped when its turn
 * comes, the ones behind its key sent back), a dispatched one is not acked
 * when its outcome comes, and an ack is counted unconfirmed
 * (PULL-ACK-UNCONFIRMED). A confirmed ack frees the message: it is never sent
 * again. Confirmations are matched by ack id (q->byack).
 *
 * Drain (pullq_drain, on SIGTERM/SIGINT): no message is dispatched any more;
 * the intake is stopped first (ports.stop_intake), so that what is given back
 * is not handed straight back to this worker; then the waiting ones and any
 * that still arrive are nacked; deliveries in flight finish, or are nacked by
 * pullq_nack_dispatched when the owner's grace runs out.
 */
#include "pullq.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "jstring.h"
#include "list.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "policy.h"
#include "smap.h"

#define ATT_MAX 100000           /* messages whose attempts are remembered */
#define RAW_MAX (64u << 20)      /* the dead-letter record of an undecodable message */
#define CONF_TIMEOUT_MS 10000    /* a confirmation not seen by then counts as a temporary failure */

static const char *const msg_state_names[] = {
	"new", "confirming", "waiting", "ready", "dispatched", "released", "acking",
};

/* The operation of an exactly-once message awaiting its confirmation. */
typedef enum eod_op { OP_NONE, OP_RECEIPT, OP_EXTEND, OP_ACK } eod_op;

/* The messages of one ordering key held now: one active, the rest waiting in order. */
typedef struct keyq {
	smap_ent h;
	struct pmsg *head, *tail; /* waiting */
	size_t n;                 /* held: the active one and the waiting ones */
	char key[];
} keyq;

/* Attempts and routes still owed for a message id that was not acked. */
typedef struct att {
	smap_ent h;
	jr_link age;             /* in q->atts_age, oldest first */
	int attempts;            /* deliveries seen (holds included) */
	unsigned char *only;     /* n_routes bytes, or NULL: every route */
	char id[];
} att;

/* A message held by the queue: one allocation with the message's bytes after it. */
typedef struct pmsg {
	jr_pullq *q;
	jr_event *ev;               /* while with the dispatcher (or being dead-lettered) */
	jr_message msg;             /* points into this allocation */
	const char *ack_id;
	keyq *kq;
	size_t size;
	int seen;                   /* deliveries of the message, this one included */
	unsigned char *only;
	pullq_msg_state st;         /* only msg_set_state assigns it */
	int64_t received_ms, lease_due_ms;
	jr_link lease;              /* in q->leases while its lease is kept */
	jr_link held;               /* in q->held_list, or q->acking once PQ_ACKING */
	struct pmsg *qnext;         /* ready queue or key queue */
	/* exactly-once */
	int eod;                    /* received while the subscription was exactly-once */
	int confirmed;              /* its receipt modack was confirmed */
	int lost;                   /* its lease is lost: never dispatched, never acked */
	int in_byack;
	smap_ent byack;             /* in q->byack, by ack id */
	eod_op op;                  /* awaiting its confirmation */
	int op_secs, tries, resend; /* resend: op is sent again when wait_due_ms comes */
	int64_t op_sent_ms, wait_due_ms, lease_end_ms;
	jr_link wait;               /* in q->waits while op != OP_NONE */
} pmsg;

struct jr_pullq {
	const jr_config *cfg;
	pullq_ports io;
	jr_timers *t;
	int closed;
	int ack_deadline_s;
	int64_t lease_ms, max_ext_ms;
	/* flow */
	pmsg *ready_head, *ready_tail;
	size_t queued, dispatched;
	int64_t queued_bytes, dispatched_bytes;
	jr_link held_list;
	size_t held;
	/* leases */
	jr_link leases; /* by lease_due_ms */
	jr_timer_id lease_timer;
	jr_timer_id pump_timer; /* pump again: a delivery now only waits for its execution */
	smap keys, atts;
	jr_link atts_age;
	uint64_t rng;
	jr_buf raw;
	pullq_stats stats;
	/* exactly-once */
	int eod, eod_logged;
	smap byack;
	jr_link waits;  /* by wait_due_ms */
	jr_link acking; /* PQ_ACKING messages */
	jr_timer_id wait_timer;
};

static struct {
	jr_metric *received, *invalid, *extensions, *held, *dispatched;
} met;

void pullq_metrics_init(void)
{
	met.received = metric_register("jobrelay_events_received_total", JR_METRIC_COUNTER,
				     "Events received, by source.", NULL, 0);
	met.invalid = metric_register("jobrelay_events_invalid_total", JR_METRIC_COUNTER,
				    "Events that could not be decoded, by source.", NULL, 0);
	met.extensions = metric_register("jobrelay_pubsub_lease_extensions_total", JR_METRIC_COUNTER,
				       "Pub/Sub ack deadlines extended for messages in progress.",
				       NULL, 0);
	met.held = metric_register("jobrelay_pubsub_outstanding_messages", JR_METRIC_GAUGE,
				 "Pub/Sub messages received and not yet acked or nacked.", NULL, 0);
	met.dispatched = metric_register("jobrelay_pubsub_dispatching_messages", JR_METRIC_GAUGE,
				       "Pub/Sub messages with the dispatcher now.", NULL, 0);
}

/* ---- state ---- */

const char *pullq_msg_state_name(pullq_msg_state st)
{
	size_t n = sizeof msg_state_names / sizeof msg_state_names[0];
	return (unsigned)st < n ? msg_state_names[st] : "?";
}

/* msg_set_state: the one place a message's state changes (curl's mstate shape). */
static void msg_set_state(jr_pullq *q, pmsg *pm, pullq_msg_state next)
{
	(void)q;
	pm->st = next;
}

static void gauges(const jr_pullq *q)
{
	metric_set(met.held, NULL, (double)q->held);
	metric_set(met.dispatched, NULL, (double)q->dispatched);
}

static void send_modack(jr_pullq *q, const char *ack_id, int secs)
{
	q->io.modack(q->io.arg, ack_id, secs);
}

static void send_ack(jr_pullq *q, const char *ack_id)
{
	q->io.ack(q->io.arg, ack_id);
}

/* ---- attempts ---- */

static att *att_find(jr_pullq *q, const char *id)
{
	return (att *)smap_find(&q->atts, id, smap_hash(id));
}

static void att_forget(jr_pullq *q, att *a)
{
	list_remove(&a->age);
	smap_del(&q->atts, &a->h);
	free(a->only);
	free(a);
}

static void forget_attempts(jr_pullq *q, const char *id)
{
	att *a = att_find(q, id);
	if (a)
		att_forget(q, a);
}

/*
 * att_remember: message pm was delivered pm->seen times; retry (may be NULL) marks the
 * routes still owed.
 */
static void att_remember(jr_pullq *q, const pmsg *pm, const unsigned char *retry)
{
	const char *id = pm->msg.id;
	att *a = att_find(q, id);
	if (a) {
		list_remove(&a->age);
	} else {
		if (q->atts.n >= ATT_MAX)
			att_forget(q, list_item(list_first(&q->atts_age), att, age));
		size_t n = strlen(id);
		a = jr_calloc(1, sizeof *a + n + 1);
		memcpy(a->id, id, n + 1);
		a->h.key = a->id;
		a->h.h = smap_hash(a->id);
		smap_add(&q->atts, &a->h);
	}
	a->attempts = pm->seen;
	size_t nr = q->cfg->n_routes;
	if (retry && nr) {
		if (!a->only)
			a->only = jr_malloc(nr);
		memcpy(a->only, retry, nr);
	} else {
		free(a->only);
		a->only = NULL;
	}
	list_append(&q->atts_age, &a->age);
}

/* ---- leases ---- */

static void lease_tick(void *arg);
static void eod_sent(jr_pullq *q, pmsg *pm, eod_op op, int secs);

static void lease_arm(jr_pullq *q)
{
	jr_link *first = list_first(&q->leases);
	if (q->lease_timer || !first)
		return;
	q->lease_timer = timers_add(q->t, list_item(first, pmsg, lease)->lease_due_ms - timers_now(q->t),
				    lease_tick, q);
}

static void lease_append(jr_pullq *q, pmsg *pm)
{
	list_append(&q->leases, &pm->lease);
}

static void lease_remove(jr_pullq *q, pmsg *pm)
{
	list_remove(&pm->lease); /* harmless when it has none */
	if (list_empty(&q->leases) && q->lease_timer) {
		timers_cancel(q->t, q->lease_timer);
		q->lease_timer = 0;
	}
}

/* lease_tick: extends every lease due within a quarter interval; re-arms for the next. */
static void lease_tick(void *arg)
{
	jr_pullq *q = arg;
	q->lease_timer = 0;
	int64_t now = timers_now(q->t), horizon = now + q->lease_ms / 4;
	jr_link *last = list_last(&q->leases), *l;
	while ((l = list_first(&q->leases)) && list_item(l, pmsg, lease)->lease_due_ms <= horizon) {
		pmsg *pm = list_item(l, pmsg, lease);
		lease_remove(q, pm);
		if (now - pm->received_ms >= q->max_ext_ms) {
			log_kv(JR_LOG_WARNING, "PULL-LEASE-MAX",
			       "message held past flow_control.max_extension; its lease is left to expire",
			       "message_id", pm->msg.id, NULL);
		} else if (pm->eod && !pm->confirmed) {
			/* its receipt modack is still retried on its own */
			pm->lease_due_ms = now + q->lease_ms;
			lease_append(q, pm);
		} else {
			send_modack(q, pm->ack_id, q->ack_deadline_s);
			if (pm->eod)
				eod_sent(q, pm, OP_EXTEND, q->ack_deadline_s);
			q->stats.extended++;
			metric_add(met.extensions, NULL, 1);
			pm->lease_due_ms = now + q->lease_ms;
			lease_append(q, pm);
		}
		if (l == last)
			break;
	}
	lease_arm(q);
}

/* ---- holding and releasing ---- */

static void wait_clear(jr_pullq *q, pmsg *pm);

static void pmsg_free(pmsg *pm)
{
	jr_pullq *q = pm->q;
	wait_clear(q, pm);
	if (pm->in_byack)
		smap_del(&q->byack, &pm->byack);
	event_free(pm->ev);
	free(pm);
}

static char *put(char **at, const char *s, size_t n)
{
	char *d = *at;
	memcpy(d, s, n);
	d[n] = '\0';
	*at += n + 1;
	return d;
}

/* pmsg_new: the record of m, with a copy of the message in the same allocation. */
static pmsg *pmsg_new(jr_pullq *q, const jr_pubsub_msg *m, const att *a)
{
	size_t nr = a && a->only ? q->cfg->n_routes : 0;
	size_t n = sizeof(pmsg) + m->n_attrs * sizeof(jr_kv) + nr + strlen(m->ack_id) + 1 +
		   strlen(m->message_id) + 1 + m->data_len + 1 +
		   (m->publish_time ? strlen(m->publish_time) + 1 : 0) +
		   (m->ordering_key ? strlen(m->ordering_key) + 1 : 0);
	for (size_t i = 0; i < m->n_attrs; i++)
		n += strlen(m->attrs[i].key) + strlen(m->attrs[i].value) + 2;
	pmsg *pm = jr_malloc(n);
	memset(pm, 0, sizeof *pm);
	list_init(&pm->lease);
	list_init(&pm->wait);
	jr_kv *kv = (jr_kv *)(pm + 1);
	char *at = (char *)(kv + m->n_attrs);
	pm->q = q;
	pm->size = m->size;
	msg_set_state(q, pm, PQ_NEW);
	if (nr) {
		pm->only = (unsigned char *)at;
		memcpy(at, a->only, nr);
		at += nr;
	}
	pm->ack_id = put(&at, m->ack_id, strlen(m->ack_id));
	jr_message *jm = &pm->msg;
	jm->id = put(&at, m->message_id, strlen(m->message_id));
	jm->data = put(&at, m->data ? m->data : "", m->data_len);
	jm->data_len = m->data_len;
	if (m->publish_time)
		jm->publish_time = put(&at, m->publish_time, strlen(m->publish_time));
	if (m->ordering_key)
		jm->ordering_key = put(&at, m->ordering_key, strlen(m->ordering_key));
	for (size_t i = 0; i < m->n_attrs; i++) {
		kv[i].key = put(&at, m->attrs[i].key, strlen(m->attrs[i].key));
		kv[i].value = put(&at, m->attrs[i].value, strlen(m->attrs[i].value));
	}
	jm->attrs = m->n_attrs ? kv : NULL;
	jm->n_attrs = m->n_attrs;
	jm->subscription = q->cfg->subscription;
	jm->delivery_attempt = m->delivery_attempt;
	return pm;
}

static void hold(jr_pullq *q, pmsg *pm)
{
	list_append(&q->held_list, &pm->held);
	q->held++;
	pm->received_ms = timers_now(q->t);
	pm->lease_due_ms = pm->received_ms + q->lease_ms;
	lease_append(q, pm);
	lease_arm(q);
}

static void unhold(jr_pullq *q, pmsg *pm)
{
	lease_remove(q, pm);
	list_remove(&pm->held);
	q->held--;
}

static void ready_push(jr_pullq *q, pmsg *pm)
{
	msg_set_state(q, pm, PQ_READY);
	pm->qnext = NULL;
	if (q->ready_tail)
		q->ready_tail->qnext = pm;
	else
		q->ready_head = pm;
	q->ready_tail = pm;
}

/*
 * promote: pm's turn came (first of its key, or none): ready, or, on an
 * exactly-once subscription before its receipt modack was confirmed,
 * confirming (ready once it is). A lost one goes to the ready queue, where
 * pump drops it.
 */
static void promote(jr_pullq *q, pmsg *pm)
{
	if (pm->eod && !pm->confirmed && !pm->lost)
		msg_set_state(q, pm, PQ_CONFIRMING);
	else
		ready_push(q, pm);
}

static void key_done(jr_pullq *q, keyq *kq)
{
	if (kq->n == 0) {
		smap_del(&q->keys, &kq->h);
		free(kq);
	}
}

static void nack_waiting(jr_pullq *q, pmsg *pm, int secs);
static void drop(jr_pullq *q, pmsg *pm);

/*
 * release: pm leaves the queue (acked, or back to Pub/Sub). secs < 0: it
 * was acked, and the next message of its key becomes ready; else the
 * waiting messages of its key go back with a modack of secs.
 */
static void release(jr_pullq *q, pmsg *pm, int secs)
{
	unhold(q, pm);
	msg_set_state(q, pm, PQ_RELEASED);
	keyq *kq = pm->kq;
	if (!kq)
		return;
	pm->kq = NULL;
	kq->n--;
	if (secs >= 0) {
		while (kq->head) {
			pmsg *w = kq->head;
			kq->head = w->qnext;
			nack_waiting(q, w, secs);
		}
		kq->tail = NULL;
	} else if (kq->head) {
		pmsg *w = kq->head;
		kq->head = w->qnext;
		if (!kq->head)
			kq->tail = NULL;
		promote(q, w);
	}
	key_done(q, kq);
}

/* nack_waiting: a message never dispatched goes back to Pub/Sub after secs. */
static void nack_waiting(jr_pullq *q, pmsg *pm, int secs)
{
	send_modack(q, pm->ack_id, secs);
	q->queued--;
	q->queued_bytes -= (int64_t)pm->size;
	if (pm->kq) {
		pm->kq->n--;
		pm->kq = NULL; /* its key's other waiting messages are handled by the caller */
	}
	unhold(q, pm);
	msg_set_state(q, pm, PQ_RELEASED);
	pmsg_free(pm);
}

/* ---- dispatching ---- */

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o);

/* await_ack: an exactly-once message was acked: kept (without its event) until the ack is confirmed. */
static void await_ack(jr_pullq *q, pmsg *pm)
{
	event_free(pm->ev);
	pm->ev = NULL;
	msg_set_state(q, pm, PQ_ACKING);
	list_append(&q->acking, &pm->held);
	eod_sent(q, pm, OP_ACK, 0);
}

/* finish: pm leaves the queue (release); freed, unless an exactly-once ack awaits its confirmation. */
static void finish(jr_pullq *q, pmsg *pm, int secs)
{
	release(q, pm, secs);
	if (secs < 0 && pm->eod)
		await_ack(q, pm);
	else
		pmsg_free(pm);
}

static void update_pause(jr_pullq *q)
{
	int full = q->queued >= (size_t)q->cfg->flow_max_messages ||
		   q->queued_bytes >= q->cfg->flow_max_bytes;
	q->io.pause(q->io.arg, full);
	gauges(q);
}

static int secs_of(int64_t ms)
{
	int64_t s = ms <= 0 ? 0 : (ms + 999) / 1000;
	return s > 600 ? 600 : (int)s;
}

/* failed_backoff_s: the nack delay after a failed dead letter: 10 s doubling to 600 s, full jitter, at least 1 s. */
static int failed_backoff_s(jr_pullq *q, int attempt)
{
	jr_policy pol = { JR_ACT_RETRY, 0, 10000, 600000 };
	int64_t ms = backoff_full_jitter_ms(&pol, attempt, rng_next(&q->rng));
	return secs_of(ms < 1000 ? 1000 : ms);
}

/* on_raw_done: an undecodable message's dead letter ended; acked, or nacked with backoff. */
static void on_raw_done(void *arg, int ok)
{
	pmsg *pm = arg;
	jr_outcome o = {.kind = ok ? JR_OUTCOME_DONE : JR_OUTCOME_FAILED,
			.cls = JR_ERR_INVALID_EVENT};
	on_outcome(pm, pm->ev, &o);
}

/* to_dispatcher: pm counts as dispatched until its outcome comes back. */
static void to_dispatcher(jr_pullq *q, pmsg *pm)
{
	q->dispatched++;
	q->dispatched_bytes += (int64_t)pm->size;
	msg_set_state(q, pm, PQ_DISPATCHED);
}

/*
 * invalid: an undecodable message is dead-lettered as the push body it would
 * have been ({"message":...,"subscription":...}), then acked; nacked with
 * backoff when no sink confirmed it. policies.invalid_event.action: drop acks
 * it. The message leaves the queue.
 */
static void invalid(jr_pullq *q, pmsg *pm, const char *err)
{
	const jr_message *jm = &pm->msg;
	q->stats.invalid++;
	metric_add(met.invalid, "source=\"pull\"", 1);
	log_kv(JR_LOG_ERROR, "EVENT-INVALID", "message cannot be decoded", "message_id", jm->id,
	       "subscription", q->cfg->subscription, "error", err, NULL);
	int ok = 1;
	if (q->cfg->policies.cls[JR_ERR_INVALID_EVENT].action != JR_ACT_DROP) {
		buf_reset(&q->raw);
		buf_addlit(&q->raw, "{\"message\":");
		event_write_message(&q->raw, jm);
		buf_addlit(&q->raw, ",\"subscription\":");
		jstr_write(&q->raw, q->cfg->subscription, strlen(q->cfg->subscription));
		if (buf_addc(&q->raw, '}') == 0) {
			/* held as dispatched until the sinks answer (on_raw_done) */
			to_dispatcher(q, pm);
			q->io.dead_letter_raw(q->io.arg, q->raw.data, q->raw.len, jm, err,
					      on_raw_done, pm);
			return;
		}
		ok = 0;
	}
	int secs = -1;
	if (ok) {
		send_ack(q, pm->ack_id);
		q->stats.acked++;
		forget_attempts(q, jm->id);
	} else {
		secs = failed_backoff_s(q, pm->seen); /* not decodable: no event, so no holds */
		send_modack(q, pm->ack_id, secs);
		att_remember(q, pm, NULL);
	}
	finish(q, pm, secs);
}

/* dispatch: decodes pm into its event and hands it to the dispatcher (or dead-letters it). */
static void dispatch(jr_pullq *q, pmsg *pm)
{
	jr_event *ev = event_new();
	ev->origin = "pull";
	ev->message = &pm->msg;
	pm->ev = ev;
	char err[256];
	if (decode_message(ev, &q->cfg->limits, q->cfg->topic, err, sizeof err) < 0) {
		invalid(q, pm, err);
		return;
	}
	to_dispatcher(q, pm);
	q->io.submit(q->io.arg, ev, pm->seen, pm->only, on_outcome, pm);
}

/*
 * pump: hands ready messages to the dispatcher while the flow limits allow
 * and fewer deliveries are busy than `concurrency`.
 */
static void pump(jr_pullq *q)
{
	while (q->ready_head && !q->closed) {
		pmsg *pm = q->ready_head;
		if (q->dispatched > 0 &&
		    (q->dispatched >= (size_t)q->cfg->flow_max_messages ||
		     q->dispatched_bytes + (int64_t)pm->size > q->cfg->flow_max_bytes ||
		     q->io.busy(q->io.arg) >= q->cfg->concurrency))
			break;
		q->ready_head = pm->qnext;
		if (!q->ready_head)
			q->ready_tail = NULL;
		q->queued--;
		q->queued_bytes -= (int64_t)pm->size;
		if (pm->lost)
			drop(q, pm); /* exactly-once: its lease was lost while it waited */
		else
			dispatch(q, pm);
	}
	update_pause(q);
}

static void pump_timer_fired(void *arg)
{
	jr_pullq *q = arg;
	q->pump_timer = 0;
	pump(q);
}

/*
 * A delivery that only waits for its execution (ack: on_completion) no longer
 * counts against `concurrency` in pump: when one starts, pump again soon (from
 * a timer, not inside the dispatcher's callback).
 */
void pullq_pump_soon(jr_pullq *q)
{
	if (!q->pump_timer)
		q->pump_timer = timers_add(q->t, 0, pump_timer_fired, q);
}

/* redeliver: a RETRY or FAILED outcome: modack with its delay, attempts remembered, one log line. */
static int redeliver(jr_pullq *q, pmsg *pm, jr_event *ev, const jr_outcome *o)
{
	int secs;
	if (o->kind == JR_OUTCOME_RETRY) {
		secs = secs_of(o->delay_ms);
		q->stats.retried++;
	} else {
		secs = failed_backoff_s(q, o->attempt);
		q->stats.failed++;
	}
	send_modack(q, pm->ack_id, secs);
	att_remember(q, pm, o->kind == JR_OUTCOME_RETRY ? o->retry : NULL);
	char att_s[16], delay[16];
	snprintf(att_s, sizeof att_s, "%d", o->attempt);
	snprintf(delay, sizeof delay, "%ds", secs);
	log_kv(o->kind == JR_OUTCOME_RETRY ? JR_LOG_INFO : JR_LOG_WARNING, "PULL-REDELIVER",
	       o->kind != JR_OUTCOME_RETRY ? "dead letter not written; message left in Pub/Sub"
	       : o->hold ? "message held in Pub/Sub: the job's circuit breaker is open"
			 : "message left in Pub/Sub to be retried",
	       "message_id", pm->msg.id, "event_id", ev->id, "attempt", att_s, "delay", delay,
	       "class", errclass_name(o->cls), NULL);
	return secs;
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	pmsg *pm = arg;
	jr_pullq *q = pm->q;
	q->dispatched--;
	q->dispatched_bytes -= (int64_t)pm->size;
	if (pm->st == PQ_RELEASED) {
		/* nacked when the owner's grace ran out; a late success is still worth an ack */
		if (o->kind == JR_OUTCOME_DONE)
			send_ack(q, pm->ack_id);
		pmsg_free(pm);
		gauges(q);
		return;
	}
	int secs = -1;
	if (pm->lost) {
		secs = 0; /* exactly-once, lease lost: an ack would be invalid; a redelivery comes */
	} else if (o->kind == JR_OUTCOME_DONE) {
		send_ack(q, pm->ack_id);
		q->stats.acked++;
		forget_attempts(q, pm->msg.id);
	} else {
		secs = redeliver(q, pm, ev, o);
	}
	finish(q, pm, secs);
	pump(q);
	q->io.settled(q->io.arg);
}

/* ---- exactly-once: operations awaiting their confirmation ---- */

static void wait_tick(void *arg);

static void wait_rearm(jr_pullq *q)
{
	if (q->wait_timer) {
		timers_cancel(q->t, q->wait_timer);
		q->wait_timer = 0;
	}
	jr_link *first = list_first(&q->waits);
	if (first)
		q->wait_timer = timers_add(q->t, list_item(first, pmsg, wait)->wait_due_ms -
						   timers_now(q->t), wait_tick, q);
}

/* wait_set: pm's op is due (its timeout, or its resend) at due; q->waits stays sorted. */
static void wait_set(jr_pullq *q, pmsg *pm, int64_t due)
{
	list_remove(&pm->wait);
	pm->wait_due_ms = due;
	jr_link *at = q->waits.prev;
	while (at != &q->waits && list_item(at, pmsg, wait)->wait_due_ms > due)
		at = at->prev;
	list_append(at->next, &pm->wait); /* right after at */
	if (q->waits.next == &pm->wait)
		wait_rearm(q);
}

/* wait_clear: pm awaits nothing any more. */
static void wait_clear(jr_pullq *q, pmsg *pm)
{
	pm->op = OP_NONE;
	pm->resend = 0;
	if (!list_linked(&pm->wait))
		return;
	list_remove(&pm->wait);
	if (list_empty(&q->waits) && q->wait_timer) {
		timers_cancel(q->t, q->wait_timer);
		q->wait_timer = 0;
	}
}

/* eod_sent: op (secs: a modack's deadline) went out for pm now; confirmed within CONF_TIMEOUT_MS, or retried. */
static void eod_sent(jr_pullq *q, pmsg *pm, eod_op op, int secs)
{
	if (pm->op != op)
		pm->tries = 0;
	pm->op = op;
	pm->op_secs = secs;
	pm->resend = 0;
	pm->op_sent_ms = timers_now(q->t);
	wait_set(q, pm, pm->op_sent_ms + CONF_TIMEOUT_MS);
}

/* drop: a message not dispatched whose lease was lost leaves the queue; the ones behind its key go back. */
static void drop(jr_pullq *q, pmsg *pm)
{
	release(q, pm, 0);
	pmsg_free(pm);
}

/*
 * lost: pm's lease is lost (an op answered invalid, or not confirmed within
 * the lease). An ack: counted unconfirmed, pm freed. Else counted once; a
 * confirming message is dropped now, a waiting or ready one when its turn
 * comes, a dispatched one is not acked when its outcome comes.
 */
static void lost(jr_pullq *q, pmsg *pm, const char *why)
{
	eod_op op = pm->op;
	wait_clear(q, pm);
	if (op == OP_ACK) {
		q->stats.ack_unconfirmed++;
		log_kv(JR_LOG_WARNING, "PULL-ACK-UNCONFIRMED",
		       "ack not confirmed: the job ran; a redelivery would be a repeat",
		       "message_id", pm->msg.id, "reason", why, NULL);
		list_remove(&pm->held);
		pmsg_free(pm);
		return;
	}
	if (pm->lost)
		return;
	pm->lost = 1;
	q->stats.lease_lost++;
	lease_remove(q, pm);
	log_kv(JR_LOG_INFO, "PULL-LEASE-LOST",
	       pm->st == PQ_DISPATCHED ? "lease lost while dispatched: its outcome will not be acked"
				       : "lease lost: the message is dropped, never dispatched",
	       "message_id", pm->msg.id, "state", pullq_msg_state_name(pm->st), "reason", why, NULL);
	if (pm->st == PQ_CONFIRMING) {
		q->queued--;
		q->queued_bytes -= (int64_t)pm->size;
		drop(q, pm);
	}
}

/* eod_temporary: pm's op failed for now, or was not confirmed in time: sent again after a backoff within the lease. */
static void eod_temporary(jr_pullq *q, pmsg *pm)
{
	jr_policy pol = { JR_ACT_RETRY, 0, 1000, 10000 };
	int64_t delay = backoff_full_jitter_ms(&pol, ++pm->tries, rng_next(&q->rng));
	if (delay < 200)
		delay = 200;
	int64_t now = timers_now(q->t);
	if (now + delay >= pm->lease_end_ms) {
		lost(q, pm, "not confirmed within its lease");
		return;
	}
	pm->resend = 1;
	wait_set(q, pm, now + delay);
}

/* eod_ok: pm's op was confirmed. */
static void eod_ok(jr_pullq *q, pmsg *pm)
{
	eod_op op = pm->op;
	if (op != OP_ACK)
		pm->lease_end_ms = pm->op_sent_ms + (int64_t)pm->op_secs * 1000;
	wait_clear(q, pm);
	if (op == OP_ACK) {
		list_remove(&pm->held); /* confirmed: never sent again */
		pmsg_free(pm);
		return;
	}
	if (op == OP_RECEIPT && !pm->confirmed) {
		pm->confirmed = 1;
		q->stats.confirmed++;
		if (pm->st == PQ_CONFIRMING)
			ready_push(q, pm);
	}
}

static void wait_tick(void *arg)
{
	jr_pullq *q = arg;
	q->wait_timer = 0;
	int64_t now = timers_now(q->t);
	jr_link *l;
	while ((l = list_first(&q->waits)) && list_item(l, pmsg, wait)->wait_due_ms <= now) {
		pmsg *pm = list_item(l, pmsg, wait);
		if (!pm->resend) {
			eod_temporary(q, pm); /* no confirmation in time */
			continue;
		}
		if (pm->op == OP_ACK)
			send_ack(q, pm->ack_id);
		else
			send_modack(q, pm->ack_id, pm->op_secs);
		eod_sent(q, pm, pm->op, pm->op_secs);
	}
	if (!q->wait_timer)
		wait_rearm(q);
	pump(q);
}

static void set_exactly_once(jr_pullq *q, int on)
{
	if (on && !q->eod_logged) {
		q->eod_logged = 1;
		log_kv(JR_LOG_INFO, "PULL-EXACTLY-ONCE",
		       "exactly-once delivery: a message is dispatched once its receipt modack is confirmed",
		       "subscription", q->cfg->subscription, NULL);
	}
	q->eod = on;
}

/* confirm_one: one id of list l; ignored unless a held message awaits that kind of confirmation. */
static void confirm_one(jr_pullq *q, const char *id, jr_pubsub_conf_list l)
{
	smap_ent *e = smap_find(&q->byack, id, smap_hash(id));
	if (!e)
		return;
	pmsg *pm = (pmsg *)(void *)((char *)e - offsetof(pmsg, byack));
	int is_ack = l <= JR_CONF_ACK_TEMPORARY;
	if (pm->op == OP_NONE || is_ack != (pm->op == OP_ACK))
		return;
	switch (l) {
	case JR_CONF_ACK_OK:
	case JR_CONF_MOD_OK:
		eod_ok(q, pm);
		break;
	case JR_CONF_ACK_INVALID:
	case JR_CONF_MOD_INVALID:
		lost(q, pm, "invalid ack id");
		break;
	default: /* temporary, or unordered */
		if (!pm->resend)
			eod_temporary(q, pm);
		break;
	}
}

void pullq_confirm(jr_pullq *q, const jr_pubsub_conf *c)
{
	if (c->has_properties)
		set_exactly_once(q, c->exactly_once);
	for (int l = 0; l < JR_CONF_LISTS; l++)
		for (size_t i = 0; i < c->n[l]; i++)
			confirm_one(q, c->ids[l][i], (jr_pubsub_conf_list)l);
	pump(q);
}

/* byack_add: pm can be found by its ack id (the first held with that id). */
static void byack_add(jr_pullq *q, pmsg *pm)
{
	uint64_t h = smap_hash(pm->ack_id);
	if (smap_find(&q->byack, pm->ack_id, h))
		return;
	pm->byack.key = pm->ack_id;
	pm->byack.h = h;
	smap_add(&q->byack, &pm->byack);
	pm->in_byack = 1;
}

/* ---- receiving ---- */

/* key_queue: the queue of key, made when none of its messages is held. */
static keyq *key_queue(jr_pullq *q, const char *key)
{
	uint64_t h = smap_hash(key);
	keyq *kq = (keyq *)smap_find(&q->keys, key, h);
	if (!kq) {
		size_t n = strlen(key);
		kq = jr_calloc(1, sizeof *kq + n + 1);
		memcpy(kq->key, key, n + 1);
		kq->h.key = kq->key;
		kq->h.h = h;
		smap_add(&q->keys, &kq->h);
	}
	return kq;
}

static void enqueue(jr_pullq *q, pmsg *pm)
{
	q->queued++;
	q->queued_bytes += (int64_t)pm->size;
	hold(q, pm);
	const char *key = pm->msg.ordering_key;
	if (key) {
		keyq *kq = key_queue(q, key);
		pm->kq = kq;
		if (kq->n++ > 0) {
			msg_set_state(q, pm, PQ_WAITING);
			pm->qnext = NULL;
			if (kq->tail)
				kq->tail->qnext = pm;
			else
				kq->head = pm;
			kq->tail = pm;
			return;
		}
	}
	promote(q, pm);
}

void pullq_receive(jr_pullq *q, const jr_pubsub_msg *m)
{
	q->stats.received++;
	metric_add(met.received, "source=\"pull\"", 1);
	if (q->closed) {
		/* draining: straight back to Pub/Sub, for another worker */
		send_modack(q, m->ack_id, 0);
		q->stats.nacked_draining++;
		return;
	}
	const att *a = att_find(q, m->message_id);
	pmsg *pm = pmsg_new(q, m, a);
	/* Pub/Sub's delivery_attempt grows with every redelivery, holds too: the dispatcher
	 * subtracts those */
	pm->seen = m->delivery_attempt > 0 ? m->delivery_attempt : a ? a->attempts + 1 : 1;
	if (log_enabled(JR_LOG_DEBUG)) {
		char att_s[16];
		snprintf(att_s, sizeof att_s, "%d", pm->seen);
		log_kv(JR_LOG_DEBUG, "PULL-RECEIVED", "message received", "message_id", pm->msg.id,
		       "ordering_key", pm->msg.ordering_key, "delivery", att_s, NULL);
	}
	send_modack(q, pm->ack_id, q->ack_deadline_s); /* the receipt modack */
	pm->eod = q->eod;
	if (pm->eod)
		byack_add(q, pm);
	enqueue(q, pm);
	if (pm->eod) {
		pm->lease_end_ms = pm->received_ms + (int64_t)q->ack_deadline_s * 1000;
		eod_sent(q, pm, OP_RECEIPT, q->ack_deadline_s);
	}
	pump(q);
}

/* ---- closing and draining ---- */

void pullq_close(jr_pullq *q)
{
	q->closed = 1;
}

/* nack_all_waiting: every message not yet dispatched (confirming, waiting, ready) goes back to Pub/Sub now. */
static void nack_all_waiting(jr_pullq *q)
{
	for (jr_link *l = q->held_list.next, *next; l != &q->held_list; l = next) {
		next = l->next;
		pmsg *pm = list_item(l, pmsg, held);
		if (pm->st == PQ_DISPATCHED)
			continue;
		nack_waiting(q, pm, 0);
		q->stats.nacked_draining++;
	}
	q->ready_head = q->ready_tail = NULL;
	for (size_t i = 0; i < q->keys.nb; i++) {
		for (smap_ent *e = q->keys.b[i], *enext; e; e = enext) {
			enext = e->hnext;
			keyq *kq = (keyq *)e;
			kq->head = kq->tail = NULL;
			key_done(q, kq);
		}
	}
}

void pullq_drain(jr_pullq *q)
{
	pullq_close(q);
	q->io.stop_intake(q->io.arg); /* first: what is nacked must not come straight back here */
	nack_all_waiting(q);
	update_pause(q);
}

void pullq_nack_dispatched(jr_pullq *q)
{
	for (jr_link *l = q->held_list.next, *next; l != &q->held_list; l = next) {
		next = l->next;
		pmsg *pm = list_item(l, pmsg, held);
		if (pm->st != PQ_DISPATCHED)
			continue;
		send_modack(q, pm->ack_id, 0);
		wait_clear(q, pm);
		release(q, pm, 0);
	}
}

/* ---- life ---- */

jr_pullq *pullq_new(const pullq_opts *o, const pullq_ports *ports)
{
	jr_pullq *q = jr_calloc(1, sizeof *q);
	q->cfg = o->cfg;
	q->io = *ports;
	q->t = o->timers;
	q->ack_deadline_s = o->ack_deadline_s;
	q->lease_ms = (int64_t)o->ack_deadline_s * 1000 * 2 / 3;
	q->max_ext_ms = o->cfg->flow_max_extension_ms;
	q->rng = o->seed ? o->seed : 0x2545F4914F6CDD1DULL;
	list_init(&q->held_list);
	list_init(&q->leases);
	list_init(&q->atts_age);
	list_init(&q->waits);
	list_init(&q->acking);
	buf_init(&q->raw, RAW_MAX);
	pullq_metrics_init();
	return q;
}

void pullq_free(jr_pullq *q)
{
	if (!q)
		return;
	for (jr_link *l = q->held_list.next, *next; l != &q->held_list; l = next) {
		next = l->next;
		pmsg_free(list_item(l, pmsg, held));
	}
	for (jr_link *l = q->acking.next, *next; l != &q->acking; l = next) {
		next = l->next;
		pmsg_free(list_item(l, pmsg, held));
	}
	smap_free(&q->byack);
	timers_cancel(q->t, q->wait_timer);
	for (size_t i = 0; i < q->keys.nb; i++)
		for (smap_ent *e = q->keys.b[i], *next; e; e = next) {
			next = e->hnext;
			free(e);
		}
	smap_free(&q->keys);
	jr_link *l;
	while ((l = list_first(&q->atts_age)))
		att_forget(q, list_item(l, att, age));
	smap_free(&q->atts);
	timers_cancel(q->t, q->lease_timer);
	timers_cancel(q->t, q->pump_timer);
	buf_free(&q->raw);
	free(q);
}

/* ---- reading ---- */

size_t pullq_held(const jr_pullq *q)
{
	return q->held;
}

size_t pullq_dispatched(const jr_pullq *q)
{
	return q->dispatched;
}

const pullq_stats *pullq_get_stats(const jr_pullq *q)
{
	return &q->stats;
}

static int state_in(const jr_link *head, const char *ack_id)
{
	for (const jr_link *l = head->next; l != head; l = l->next) {
		const pmsg *pm = list_item(l, pmsg, held);
		if (strcmp(pm->ack_id, ack_id) == 0)
			return (int)pm->st;
	}
	return -1;
}

int pullq_msg_state_of(const jr_pullq *q, const char *ack_id)
{
	int st = state_in(&q->held_list, ack_id);
	return st >= 0 ? st : state_in(&q->acking, ack_id);
}
