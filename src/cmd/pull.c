/*
 * pull.c — the pull driver: Pub/Sub messages in, dispatcher outcomes out as
 * acks, modacks and nacks (docs/pull.md; docs/reference.md, outcomes).
 *
 * A received message is copied into one allocation of its exact size (the
 * driver's record, the ack id and the message: ids, data, attributes), and
 * waits in that compact form:
 *
 *   ordering key     behind the messages of its key still held, so one
 *                    key's messages are dispatched one after another
 *   otherwise        in the ready queue, FIFO
 *
 * It becomes an event (decoded into the event's arena; the event's message
 * points into the record) only when it is handed to the dispatcher: while
 * fewer than flow_control.max_messages / max_bytes are dispatched, and fewer
 * deliveries are open than `concurrency` (more would only wait inside the
 * dispatcher, already rendered), not counting those that only wait for their
 * executions to finish (ack: on_completion; flow control still bounds them). A message that does not decode is
 * dead-lettered then (the message as a push body, `raw`) and acked, or
 * nacked with backoff when the sink failed or there is none.
 *
 * Local flow control: the server's flow control (max_outstanding_* in the
 * first request) is the main limit; locally at most max_messages messages
 * (max_bytes bytes) are with the dispatcher, and when as many again wait,
 * the stream is no longer read (pubsub_pause) until they drain. So memory is
 * bounded by about twice the limits plus one response, and only the
 * messages with the dispatcher carry a decoded event and a rendered request.
 *
 * Leases: every message held (waiting or dispatched) is on one list in
 * lease order. On receipt it gets a modack of ack_deadline (the receipt
 * modack: pstest ignores the stream deadline of the first request, and the
 * lease then starts from a known point); one loop timer, armed only while
 * the list is non-empty, extends every lease due within the next quarter
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
 * SIGTERM/SIGINT: no message is dispatched any more; waiting ones and any
 * that still arrive are nacked at once (back to Pub/Sub for another worker);
 * deliveries in flight get shutdown_grace, after which they are nacked too;
 * then the session flushes its queue and half-closes, bounded by the grace
 * (at least 1 s), and pull_run returns 0. A second signal exits at once.
 */
#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "decode.h"
#include "dispatcher.h"
#include "json.h"
#include "list.h"
#include "gcreds.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pubsub.h"
#include "runjob.h"
#include "runwatch.h"
#include "smap.h"

#define STARTUP_WAIT_MS 10000    /* Pub/Sub and the Run API must be ready within it */
#define ATT_MAX 100000           /* messages whose attempts are remembered */
#define FLUSH_MIN_MS 1000        /* the final flush gets at least this long */
#define RAW_MAX (64u << 20)      /* the dead-letter record of an undecodable message */

typedef enum pull_state {
	PULL_STARTING,
	PULL_RUNNING,
	PULL_DRAINING, /* a signal came: in-flight deliveries finish, nothing new starts */
	PULL_FLUSHING, /* the session sends what is queued, then closes */
	PULL_STOPPED,
} pull_state;

static const char *const pull_state_names[] = {
	"starting", "running", "draining", "flushing", "stopped",
};

enum { PM_WAITING, PM_READY, PM_DISPATCHED, PM_RELEASED };

struct pull;

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
	jr_link age;             /* in p->atts_age, oldest first */
	int attempts;            /* deliveries seen (holds included) */
	unsigned char *only;     /* n_routes bytes, or NULL: every route */
	char id[];
} att;

/* A message held by the driver: one allocation with the message's bytes after it. */
typedef struct pmsg {
	struct pull *p;
	jr_event *ev;               /* while with the dispatcher (or being dead-lettered) */
	jr_message msg;             /* points into this allocation */
	const char *ack_id;
	keyq *kq;
	size_t size;
	int seen;                   /* deliveries of the message, this one included */
	unsigned char *only;
	int st;
	int64_t received_ms, lease_due_ms;
	jr_link lease;              /* in p->leases while its lease is kept */
	jr_link held;               /* in p->held_list */
	struct pmsg *qnext;         /* ready queue or key queue */
} pmsg;

typedef struct pull {
	const jr_config *cfg;
	const jr_pull_opts *o;
	jr_daemon dm;       /* the host: loop, Run API, sinks, dispatcher, health port, signals */
	jr_loop *loop;      /* dm.loop, borrowed */
	jr_dispatcher *d;   /* dm.d, borrowed */
	jr_pubsub *ps;
	pull_state state;
	int exit_code;
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
	jr_timer_id lease_timer, flush_timer;
	jr_timer_id pump_timer; /* pump again: a delivery now only waits for its execution */
	smap keys, atts;
	jr_link atts_age;
	uint64_t rng;
	jr_buf raw;
	/* counters */
	long received, acked, retried, failed, invalid, nacked_draining, extended;
} pull;

static struct {
	jr_metric *received, *invalid, *extensions, *held, *dispatched;
} met;

static void metrics_init(void)
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

/* pull_set_state: every change of the driver's state: one log line (PULL-STATE). */
static void pull_set_state(pull *p, pull_state st, const char *why)
{
	if (p->state == st)
		return;
	pull_state from = p->state;
	p->state = st;
	daemon_set_ready(&p->dm, st == PULL_RUNNING && p->ps && pubsub_state(p->ps) == JR_PUBSUB_OPEN);
	char held[24], disp[24];
	snprintf(held, sizeof held, "%zu", p->held);
	snprintf(disp, sizeof disp, "%zu", p->dispatched);
	log_kv(JR_LOG_INFO, "PULL-STATE", "pull state changed", "subscription",
	       p->cfg->subscription, "state", pull_state_names[st], "from", pull_state_names[from],
	       "reason", why, "held", held, "dispatching", disp, NULL);
}

static void gauges(const pull *p)
{
	metric_set(met.held, NULL, (double)p->held);
	metric_set(met.dispatched, NULL, (double)p->dispatched);
}

/* ---- attempts ---- */

static att *att_find(pull *p, const char *id)
{
	return (att *)smap_find(&p->atts, id, smap_hash(id));
}

static void att_forget(pull *p, att *a)
{
	list_remove(&a->age);
	smap_del(&p->atts, &a->h);
	free(a->only);
	free(a);
}

/*
 * att_remember: message pm was delivered pm->seen times; retry (may be NULL) marks the
 * routes still owed.
 */
static void att_remember(pull *p, const pmsg *pm, const unsigned char *retry)
{
	const char *id = pm->msg.id;
	att *a = att_find(p, id);
	if (a) {
		list_remove(&a->age);
	} else {
		if (p->atts.n >= ATT_MAX)
			att_forget(p, list_item(list_first(&p->atts_age), att, age));
		size_t n = strlen(id);
		a = jr_calloc(1, sizeof *a + n + 1);
		memcpy(a->id, id, n + 1);
		a->h.key = a->id;
		a->h.h = smap_hash(a->id);
		smap_add(&p->atts, &a->h);
	}
	a->attempts = pm->seen;
	size_t nr = p->cfg->n_routes;
	if (retry && nr) {
		if (!a->only)
			a->only = jr_malloc(nr);
		memcpy(a->only, retry, nr);
	} else {
		free(a->only);
		a->only = NULL;
	}
	list_append(&p->atts_age, &a->age);
}

/* ---- leases ---- */

static void lease_tick(void *arg);

static void lease_arm(pull *p)
{
	jr_link *first = list_first(&p->leases);
	if (p->lease_timer || !first)
		return;
	p->lease_timer = loop_timer_add(p->loop,
					list_item(first, pmsg, lease)->lease_due_ms - loop_now_ms(),
					lease_tick, p);
}

static void lease_append(pull *p, pmsg *pm)
{
	list_append(&p->leases, &pm->lease);
}

static void lease_remove(pull *p, pmsg *pm)
{
	list_remove(&pm->lease); /* harmless when it has none */
	if (list_empty(&p->leases) && p->lease_timer) {
		loop_timer_cancel(p->loop, p->lease_timer);
		p->lease_timer = 0;
	}
}

/* lease_tick: extends every lease due within a quarter interval; re-arms for the next. */
static void lease_tick(void *arg)
{
	pull *p = arg;
	p->lease_timer = 0;
	int64_t now = loop_now_ms(), horizon = now + p->lease_ms / 4;
	jr_link *last = list_last(&p->leases), *l;
	while ((l = list_first(&p->leases)) && list_item(l, pmsg, lease)->lease_due_ms <= horizon) {
		pmsg *pm = list_item(l, pmsg, lease);
		lease_remove(p, pm);
		if (now - pm->received_ms >= p->max_ext_ms) {
			log_kv(JR_LOG_WARNING, "PULL-LEASE-MAX",
			       "message held past flow_control.max_extension; its lease is left to expire",
			       "message_id", pm->msg.id, NULL);
		} else {
			pubsub_modack(p->ps, pm->ack_id, p->ack_deadline_s);
			p->extended++;
			metric_add(met.extensions, NULL, 1);
			pm->lease_due_ms = now + p->lease_ms;
			lease_append(p, pm);
		}
		if (l == last)
			break;
	}
	lease_arm(p);
}

/* ---- holding and releasing ---- */

static void pmsg_free(pmsg *pm)
{
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
static pmsg *pmsg_new(pull *p, const jr_pubsub_msg *m, const att *a)
{
	size_t nr = a && a->only ? p->cfg->n_routes : 0;
	size_t n = sizeof(pmsg) + m->n_attrs * sizeof(jr_kv) + nr + strlen(m->ack_id) + 1 +
		   strlen(m->message_id) + 1 + m->data_len + 1 +
		   (m->publish_time ? strlen(m->publish_time) + 1 : 0) +
		   (m->ordering_key ? strlen(m->ordering_key) + 1 : 0);
	for (size_t i = 0; i < m->n_attrs; i++)
		n += strlen(m->attrs[i].key) + strlen(m->attrs[i].value) + 2;
	pmsg *pm = jr_malloc(n);
	memset(pm, 0, sizeof *pm);
	list_init(&pm->lease);
	jr_kv *kv = (jr_kv *)(pm + 1);
	char *at = (char *)(kv + m->n_attrs);
	pm->p = p;
	pm->size = m->size;
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
	jm->subscription = p->cfg->subscription;
	jm->delivery_attempt = m->delivery_attempt;
	return pm;
}

static void hold(pull *p, pmsg *pm)
{
	list_append(&p->held_list, &pm->held);
	p->held++;
	pm->received_ms = loop_now_ms();
	pm->lease_due_ms = pm->received_ms + p->lease_ms;
	lease_append(p, pm);
	lease_arm(p);
}

static void unhold(pull *p, pmsg *pm)
{
	lease_remove(p, pm);
	list_remove(&pm->held);
	p->held--;
}

static void ready_push(pull *p, pmsg *pm)
{
	pm->st = PM_READY;
	pm->qnext = NULL;
	if (p->ready_tail)
		p->ready_tail->qnext = pm;
	else
		p->ready_head = pm;
	p->ready_tail = pm;
}

static void key_done(pull *p, keyq *kq)
{
	if (kq->n == 0) {
		smap_del(&p->keys, &kq->h);
		free(kq);
	}
}

static void nack_waiting(pull *p, pmsg *pm, int secs);

/*
 * release: pm leaves the driver (acked, or back to Pub/Sub). secs < 0: it
 * was acked, and the next message of its key becomes ready; else the
 * waiting messages of its key go back with a modack of secs.
 */
static void release(pull *p, pmsg *pm, int secs)
{
	unhold(p, pm);
	pm->st = PM_RELEASED;
	keyq *kq = pm->kq;
	if (!kq)
		return;
	pm->kq = NULL;
	kq->n--;
	if (secs >= 0) {
		while (kq->head) {
			pmsg *w = kq->head;
			kq->head = w->qnext;
			nack_waiting(p, w, secs);
		}
		kq->tail = NULL;
	} else if (kq->head) {
		pmsg *w = kq->head;
		kq->head = w->qnext;
		if (!kq->head)
			kq->tail = NULL;
		ready_push(p, w);
	}
	key_done(p, kq);
}

/* nack_waiting: a message never dispatched goes back to Pub/Sub after secs. */
static void nack_waiting(pull *p, pmsg *pm, int secs)
{
	pubsub_modack(p->ps, pm->ack_id, secs);
	p->queued--;
	p->queued_bytes -= (int64_t)pm->size;
	if (pm->kq) {
		pm->kq->n--;
		pm->kq = NULL; /* its key's other waiting messages are handled by the caller */
	}
	unhold(p, pm);
	pm->st = PM_RELEASED;
	pmsg_free(pm);
}

/* ---- dispatching ---- */

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o);

static void update_pause(pull *p)
{
	int full = p->queued >= (size_t)p->cfg->flow_max_messages ||
		   p->queued_bytes >= p->cfg->flow_max_bytes;
	pubsub_pause(p->ps, full);
	gauges(p);
}

static int secs_of(int64_t ms)
{
	int64_t s = ms <= 0 ? 0 : (ms + 999) / 1000;
	return s > 600 ? 600 : (int)s;
}

/* failed_backoff_s: the nack delay after a failed dead letter: 10 s doubling to 600 s, full jitter, at least 1 s. */
static int failed_backoff_s(pull *p, int attempt)
{
	jr_policy pol = { JR_ACT_RETRY, 0, 10000, 600000 };
	int64_t ms = backoff_full_jitter_ms(&pol, attempt, rng_next(&p->rng));
	return secs_of(ms < 1000 ? 1000 : ms);
}

static void forget_attempts(pull *p, const char *id)
{
	att *a = att_find(p, id);
	if (a)
		att_forget(p, a);
}

/* on_raw_done: an undecodable message's dead letter ended; acked, or nacked with backoff. */
static void on_raw_done(void *arg, int ok)
{
	pmsg *pm = arg;
	jr_outcome o = {.kind = ok ? JR_OUTCOME_DONE : JR_OUTCOME_FAILED,
			.cls = JR_ERR_INVALID_EVENT};
	on_outcome(pm, pm->ev, &o);
}

/*
 * invalid: an undecodable message is dead-lettered as the push body it would
 * have been ({"message":...,"subscription":...}), then acked; nacked with
 * backoff when no sink confirmed it. policies.invalid_event.action: drop acks
 * it. The message leaves the driver.
 */
static void invalid(pull *p, pmsg *pm, const char *err)
{
	const jr_message *jm = &pm->msg;
	p->invalid++;
	metric_add(met.invalid, "source=\"pull\"", 1);
	log_kv(JR_LOG_ERROR, "EVENT-INVALID", "message cannot be decoded", "message_id", jm->id,
	       "subscription", p->cfg->subscription, "error", err, NULL);
	int ok = 1;
	if (p->cfg->policies.cls[JR_ERR_INVALID_EVENT].action != JR_ACT_DROP) {
		buf_reset(&p->raw);
		buf_addlit(&p->raw, "{\"message\":");
		event_write_message(&p->raw, jm);
		buf_addlit(&p->raw, ",\"subscription\":");
		jstr_write(&p->raw, p->cfg->subscription, strlen(p->cfg->subscription));
		if (buf_addc(&p->raw, '}') == 0) {
			/* held as dispatched until the sinks answer (on_raw_done) */
			p->dispatched++;
			p->dispatched_bytes += (int64_t)pm->size;
			pm->st = PM_DISPATCHED;
			dispatcher_dead_letter_raw(p->d, p->raw.data, p->raw.len, jm, "pull", err,
						   on_raw_done, pm);
			return;
		}
		ok = 0;
	}
	int secs = -1;
	if (ok) {
		pubsub_ack(p->ps, pm->ack_id);
		p->acked++;
		forget_attempts(p, jm->id);
	} else {
		secs = failed_backoff_s(p, pm->seen); /* not decodable: no event, so no holds */
		pubsub_modack(p->ps, pm->ack_id, secs);
		att_remember(p, pm, NULL);
	}
	release(p, pm, secs);
	pmsg_free(pm);
}

/* dispatch: decodes pm into its event and hands it to the dispatcher (or dead-letters it). */
static void dispatch(pull *p, pmsg *pm)
{
	jr_event *ev = event_new();
	ev->origin = "pull";
	ev->message = &pm->msg;
	pm->ev = ev;
	char err[256];
	if (decode_message(ev, &p->cfg->limits, p->cfg->topic, err, sizeof err) < 0) {
		invalid(p, pm, err);
		return;
	}
	p->dispatched++;
	p->dispatched_bytes += (int64_t)pm->size;
	pm->st = PM_DISPATCHED;
	dispatcher_submit(p->d, ev, pm->seen, pm->only, on_outcome, pm);
}

/*
 * pump: hands ready messages to the dispatcher while the flow limits allow
 * and fewer deliveries are open than `concurrency`.
 */
static void pump(pull *p)
{
	while (p->ready_head && p->state == PULL_RUNNING) {
		pmsg *pm = p->ready_head;
		if (p->dispatched > 0 &&
		    (p->dispatched >= (size_t)p->cfg->flow_max_messages ||
		     p->dispatched_bytes + (int64_t)pm->size > p->cfg->flow_max_bytes ||
		     dispatcher_open(p->d) - dispatcher_following(p->d) >= p->cfg->concurrency))
			break;
		p->ready_head = pm->qnext;
		if (!p->ready_head)
			p->ready_tail = NULL;
		p->queued--;
		p->queued_bytes -= (int64_t)pm->size;
		dispatch(p, pm);
	}
	update_pause(p);
}

static void finish_if_drained(pull *p);

/*
 * A delivery that only waits for its execution (ack: on_completion) no longer
 * counts against `concurrency` in pump: when one starts, pump again soon (from
 * the loop, not inside the dispatcher's callback).
 */
static void pump_soon(void *arg)
{
	pull *p = arg;
	p->pump_timer = 0;
	pump(p);
}

static void on_follow(void *arg)
{
	pull *p = arg;
	if (!p->pump_timer)
		p->pump_timer = loop_timer_add(p->loop, 0, pump_soon, p);
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	pmsg *pm = arg;
	pull *p = pm->p;
	const char *id = pm->msg.id;
	p->dispatched--;
	p->dispatched_bytes -= (int64_t)pm->size;
	if (pm->st == PM_RELEASED) {
		/* nacked when shutdown_grace ran out; a late success is still worth an ack */
		if (o->kind == JR_OUTCOME_DONE)
			pubsub_ack(p->ps, pm->ack_id);
		pmsg_free(pm);
		gauges(p);
		return;
	}
	int secs = -1;
	if (o->kind == JR_OUTCOME_DONE) {
		pubsub_ack(p->ps, pm->ack_id);
		p->acked++;
		forget_attempts(p, id);
	} else {
		if (o->kind == JR_OUTCOME_RETRY) {
			secs = secs_of(o->delay_ms);
			p->retried++;
		} else {
			secs = failed_backoff_s(p, o->attempt);
			p->failed++;
		}
		pubsub_modack(p->ps, pm->ack_id, secs);
		att_remember(p, pm, o->kind == JR_OUTCOME_RETRY ? o->retry : NULL);
		char att_s[16], delay[16];
		snprintf(att_s, sizeof att_s, "%d", o->attempt);
		snprintf(delay, sizeof delay, "%ds", secs);
		log_kv(o->kind == JR_OUTCOME_RETRY ? JR_LOG_INFO : JR_LOG_WARNING, "PULL-REDELIVER",
		       o->kind != JR_OUTCOME_RETRY ? "dead letter not written; message left in Pub/Sub"
		       : o->hold ? "message held in Pub/Sub: the job's circuit breaker is open"
				 : "message left in Pub/Sub to be retried",
		       "message_id", id, "event_id", ev->id, "attempt", att_s, "delay", delay, "class",
		       errclass_name(o->cls), NULL);
	}
	release(p, pm, secs);
	pmsg_free(pm);
	pump(p);
	finish_if_drained(p);
}

/* ---- receiving ---- */

static void enqueue(pull *p, pmsg *pm)
{
	p->queued++;
	p->queued_bytes += (int64_t)pm->size;
	hold(p, pm);
	const char *key = pm->msg.ordering_key;
	if (key) {
		uint64_t h = smap_hash(key);
		keyq *kq = (keyq *)smap_find(&p->keys, key, h);
		if (!kq) {
			size_t n = strlen(key);
			kq = jr_calloc(1, sizeof *kq + n + 1);
			memcpy(kq->key, key, n + 1);
			kq->h.key = kq->key;
			kq->h.h = h;
			smap_add(&p->keys, &kq->h);
		}
		pm->kq = kq;
		if (kq->n++ > 0) {
			pm->st = PM_WAITING;
			pm->qnext = NULL;
			if (kq->tail)
				kq->tail->qnext = pm;
			else
				kq->head = pm;
			kq->tail = pm;
			return;
		}
	}
	ready_push(p, pm);
}

static void on_message(void *arg, const jr_pubsub_msg *m)
{
	pull *p = arg;
	p->received++;
	metric_add(met.received, "source=\"pull\"", 1);
	if (p->state != PULL_RUNNING) {
		/* draining: straight back to Pub/Sub, for another worker */
		pubsub_modack(p->ps, m->ack_id, 0);
		p->nacked_draining++;
		return;
	}
	const att *a = att_find(p, m->message_id);
	pmsg *pm = pmsg_new(p, m, a);
	/* Pub/Sub's delivery_attempt grows with every redelivery, holds too: the dispatcher
	 * subtracts those */
	pm->seen = m->delivery_attempt > 0 ? m->delivery_attempt : a ? a->attempts + 1 : 1;
	if (log_enabled(JR_LOG_DEBUG)) {
		char att_s[16];
		snprintf(att_s, sizeof att_s, "%d", pm->seen);
		log_kv(JR_LOG_DEBUG, "PULL-RECEIVED", "message received", "message_id", pm->msg.id,
		       "ordering_key", pm->msg.ordering_key, "delivery", att_s, NULL);
	}
	pubsub_modack(p->ps, pm->ack_id, p->ack_deadline_s); /* the receipt modack */
	enqueue(p, pm);
	pump(p);
}

/* ---- shutdown ---- */

static void stop(pull *p, const char *why)
{
	pull_set_state(p, PULL_STOPPED, why);
}

static void flush_deadline(void *arg)
{
	pull *p = arg;
	p->flush_timer = 0;
	char n[24];
	snprintf(n, sizeof n, "%zu", pubsub_queued(p->ps));
	log_kv(JR_LOG_WARNING, "PULL-FLUSH-TIMEOUT", "acks not all confirmed sent before the deadline",
	       "queued_ids", n, NULL);
	stop(p, "flush deadline");
}

/* flush_and_close: the last acks and nacks go out, then the stream is half-closed. */
static void flush_and_close(pull *p)
{
	pull_set_state(p, PULL_FLUSHING, "nothing left in flight");
	daemon_grace_cancel(&p->dm);
	int64_t left = daemon_grace_left_ms(&p->dm);
	p->flush_timer = loop_timer_add(p->loop, left < FLUSH_MIN_MS ? FLUSH_MIN_MS : left,
					flush_deadline, p);
	pubsub_close(p->ps);
}

static void finish_if_drained(pull *p)
{
	if (p->state == PULL_DRAINING && p->dispatched == 0)
		flush_and_close(p);
}

/* grace_over: the host's grace timer fired while deliveries were still in flight. */
static void grace_over(void *arg)
{
	pull *p = arg;
	char n[24];
	snprintf(n, sizeof n, "%zu", p->dispatched);
	log_kv(p->dispatched ? JR_LOG_WARNING : JR_LOG_INFO, "PULL-GRACE-OVER",
	       "shutdown_grace over: messages still in flight are nacked", "messages", n, NULL);
	for (jr_link *l = p->held_list.next, *next; l != &p->held_list; l = next) {
		next = l->next;
		pmsg *pm = list_item(l, pmsg, held);
		if (pm->st != PM_DISPATCHED)
			continue;
		pubsub_modack(p->ps, pm->ack_id, 0);
		release(p, pm, 0);
	}
	flush_and_close(p);
}

/* nack_all_waiting: every message not yet dispatched goes back to Pub/Sub now. */
static void nack_all_waiting(pull *p)
{
	for (size_t i = 0; i < p->keys.nb; i++) {
		for (smap_ent *e = p->keys.b[i]; e; e = e->hnext) {
			keyq *kq = (keyq *)e;
			while (kq->head) {
				pmsg *w = kq->head;
				kq->head = w->qnext;
				nack_waiting(p, w, 0);
				p->nacked_draining++;
			}
			kq->tail = NULL;
		}
	}
	while (p->ready_head) {
		pmsg *pm = p->ready_head;
		p->ready_head = pm->qnext;
		keyq *kq = pm->kq;
		nack_waiting(p, pm, 0);
		p->nacked_draining++;
		if (kq)
			key_done(p, kq);
	}
	p->ready_tail = NULL;
}

/* begin_drain: the host's first signal while running; its grace timer runs (grace_over). */
static void begin_drain(void *arg, const char *why)
{
	pull *p = arg;
	if (p->state != PULL_RUNNING)
		return;
	pull_set_state(p, PULL_DRAINING, why);
	nack_all_waiting(p);
	update_pause(p);
	if (p->dispatched == 0)
		flush_and_close(p);
}

/* exit_now: a signal during start-up, or a second one: the process exits with the code returned. */
static int exit_now(void *arg, const char *signame, int starting)
{
	pull *p = arg;
	char n[24];
	snprintf(n, sizeof n, "%zu", p->dispatched);
	log_kv(JR_LOG_WARNING, "PULL-EXIT-NOW", starting ? "signal during start-up: exiting"
	       : "second signal: exiting at once", "signal", signame, "in_flight", n, NULL);
	return p->dispatched ? 1 : 0;
}

static void on_state(void *arg, jr_pubsub_state st, int code, const char *detail)
{
	pull *p = arg;
	daemon_set_ready(&p->dm, p->state == PULL_RUNNING && st == JR_PUBSUB_OPEN);
	if (st == JR_PUBSUB_FAILED) {
		log_kv(JR_LOG_ERROR, "PULL-SUBSCRIPTION", "cannot pull the subscription",
		       "subscription", p->cfg->subscription, "code", grpc_code_name(code), "error",
		       detail, "target", pubsub_target(p->ps), NULL);
		p->exit_code = 3;
		stop(p, "subscription cannot be pulled");
	} else if (st == JR_PUBSUB_CLOSED && p->state == PULL_FLUSHING) {
		stop(p, "stream closed");
	}
}

/* ---- start and stop ---- */

static int open_pubsub(pull *p)
{
	char err[256];
	jr_pubsub_opts po = {
		.subscription = p->cfg->subscription,
		.endpoint = p->o->pubsub_endpoint,
		.ack_deadline_s = p->ack_deadline_s,
		.max_outstanding_messages = p->cfg->flow_max_messages,
		.max_outstanding_bytes = p->cfg->flow_max_bytes,
		.on_message = on_message,
		.on_state = on_state,
		.arg = p,
	};
	p->ps = pubsub_new(p->loop, &po, err, sizeof err);
	if (!p->ps) {
		log_kv(JR_LOG_ERROR, "PUBSUB-INIT", "cannot create the Pub/Sub client", "subscription",
		       p->cfg->subscription, "error", err, NULL);
		return 3;
	}
	return 0;
}

/* wait_services: credentials, Pub/Sub and the Run API ready within STARTUP_WAIT_MS, or 3. */
static int wait_services(pull *p)
{
	char ms[32];
	snprintf(ms, sizeof ms, "%dms", STARTUP_WAIT_MS);
	if (gcreds_startup_check(STARTUP_WAIT_MS) < 0)
		return 3;
	if (pubsub_wait_ready(p->ps, STARTUP_WAIT_MS) < 0) {
		log_kv(JR_LOG_ERROR, "PUBSUB-UNREACHABLE", "cannot reach Pub/Sub", "target",
		       pubsub_target(p->ps), "subscription", p->cfg->subscription, "waited", ms, NULL);
		return 3;
	}
	return daemon_check_run_api(&p->dm, NULL);
}

static int pull_done(void *arg)
{
	return ((pull *)arg)->state == PULL_STOPPED;
}

static void pull_release(void *arg);

static int start(pull *p)
{
	const jr_config *cfg = p->cfg;
	if (!cfg->subscription) {
		log_kv(JR_LOG_ERROR, "PULL-CONFIG", "pull needs `subscription:` in the config",
		       "config", cfg->path, NULL);
		return 2;
	}
	jr_daemon_ops ops = {.tag = "PULL", .drain = begin_drain, .grace_over = grace_over,
			     .exit_now = exit_now, .done = pull_done, .release = pull_release, .arg = p};
	daemon_open(&p->dm, cfg, &ops);
	p->loop = p->dm.loop;
	int rc = daemon_open_run_api(&p->dm, p->o->run_endpoint);
	if (rc == 0)
		rc = open_pubsub(p);
	if (rc == 0)
		rc = daemon_health(&p->dm, p->o->http_port, p->o->bind);
	if (rc == 0 && daemon_signals(&p->dm) < 0)
		rc = 1;
	if (rc == 0)
		rc = wait_services(p);
	if (rc == 0)
		rc = daemon_open_sinks(&p->dm);
	if (rc != 0)
		return rc;
	log_kv(JR_LOG_INFO, "PULL-READY", "Pub/Sub and the Run API are reachable", "subscription",
	       cfg->subscription, "pubsub", pubsub_target(p->ps), "run_api",
	       runjob_target(p->dm.api), NULL);
	jr_dispatch_opts dop = {.on_follow = on_follow, .on_follow_arg = p};
	p->d = p->dm.d = dispatcher_new(cfg, loop_timers(p->loop), runwatch_runner(p->dm.api),
					p->dm.sink, NULL, &dop);
	daemon_running(&p->dm);
	pull_set_state(p, PULL_RUNNING, "started");
	pubsub_start(p->ps);
	return 0;
}

/* pull_release: the host's teardown step 4: after the dispatcher, before the loop goes. */
static void pull_release(void *arg)
{
	pull *p = arg;
	p->d = NULL;
	pubsub_free(p->ps);
	for (jr_link *l = p->held_list.next, *next; l != &p->held_list; l = next) {
		next = l->next;
		pmsg_free(list_item(l, pmsg, held));
	}
	for (size_t i = 0; i < p->keys.nb; i++)
		for (smap_ent *e = p->keys.b[i], *next; e; e = next) {
			next = e->hnext;
			free(e);
		}
	smap_free(&p->keys);
	jr_link *l;
	while ((l = list_first(&p->atts_age)))
		att_forget(p, list_item(l, att, age));
	smap_free(&p->atts);
	loop_timer_cancel(p->loop, p->lease_timer);
	loop_timer_cancel(p->loop, p->flush_timer);
	loop_timer_cancel(p->loop, p->pump_timer);
}

static void summary(const pull *p)
{
	char rcv[24], ack[24], ret[24], fail[24], inv[24], nd[24], ext[24];
	snprintf(rcv, sizeof rcv, "%ld", p->received);
	snprintf(ack, sizeof ack, "%ld", p->acked);
	snprintf(ret, sizeof ret, "%ld", p->retried);
	snprintf(fail, sizeof fail, "%ld", p->failed);
	snprintf(inv, sizeof inv, "%ld", p->invalid);
	snprintf(nd, sizeof nd, "%ld", p->nacked_draining);
	snprintf(ext, sizeof ext, "%ld", p->extended);
	log_kv(JR_LOG_INFO, "PULL-SUMMARY", "pull stopped", "subscription", p->cfg->subscription,
	       "received", rcv, "acked", ack, "retry_later", ret, "dead_letter_failed", fail,
	       "invalid", inv, "nacked_at_shutdown", nd, "lease_extensions", ext, NULL);
}

int pull_run(const jr_config *cfg, const jr_pull_opts *o)
{
	pull p = {.cfg = cfg, .o = o, .state = PULL_STARTING};
	list_init(&p.held_list);
	list_init(&p.leases);
	list_init(&p.atts_age);
	p.ack_deadline_s = (int)(cfg->flow_ack_deadline_ms / 1000);
	if (p.ack_deadline_s < 10)
		p.ack_deadline_s = 10;
	if (p.ack_deadline_s > 600)
		p.ack_deadline_s = 600;
	p.lease_ms = (int64_t)p.ack_deadline_s * 1000 * 2 / 3;
	p.max_ext_ms = cfg->flow_max_extension_ms;
	p.rng = (uint64_t)loop_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x2545F4914F6CDD1DULL;
	buf_init(&p.raw, RAW_MAX);
	metrics_init();
	int rc = start(&p);
	if (rc == 0) {
		daemon_run(&p.dm);
		rc = p.exit_code;
		summary(&p);
	}
	daemon_free(&p.dm);
	buf_free(&p.raw);
	return rc;
}
