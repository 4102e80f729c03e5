/*
 * pullq.h — the messages a pull worker holds: flow control, leases, ordering
 * keys, attempts, holds and the drain (docs/pull.md). pull.c wires it to the
 * StreamingPull session (pubsub.c) and the dispatcher; everything it does
 * outside goes through pullq_ports and a jr_timers, so a test drives it with
 * stand-in ports and a stepped clock.
 *
 * Ownership: a jr_pullq owns every message it was given (pullq_receive copies
 * it) until the message is acked or nacked, no outcome is owed for it and,
 * on an exactly-once subscription, its ack was confirmed or given up;
 * pullq_free frees what is left. It does not own the config, the ports' arg
 * or the timers, which must outlive it.
 *
 * Threading: none of its own. One thread (the loop's) calls every function,
 * runs its timers and calls the callbacks it handed to ports.submit and
 * ports.dead_letter_raw; the ports are called from that thread only, never
 * re-entrantly from inside a port call (a port must not call back into the
 * queue before it returns).
 */
#ifndef JR_PULLQ_H
#define JR_PULLQ_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dispatcher.h"
#include "event.h"
#include "pubsub.h"
#include "timers.h"

typedef struct jr_pullq jr_pullq;

/* What the queue asks of the outside. Every member is required; arg is passed to each. */
typedef struct pullq_ports {
	void *arg;
	/* ack: the message is done. */
	void (*ack)(void *arg, const char *ack_id);
	/* modack: a new ack deadline of secs seconds; 0 is a nack (back to Pub/Sub now). */
	void (*modack)(void *arg, const char *ack_id, int secs);
	/* pause: 1 stops reading the stream (the queue is full), 0 reads it again. */
	void (*pause)(void *arg, int paused);
	/* submit: dispatcher_submit's contract; cb(cb_arg, ev, outcome) runs later, exactly once. */
	void (*submit)(void *arg, jr_event *ev, int attempt, const unsigned char *only,
		       jr_outcome_cb cb, void *cb_arg);
	/* dead_letter_raw: dispatcher_dead_letter_raw's contract (origin "pull"). */
	void (*dead_letter_raw)(void *arg, const char *raw, size_t raw_len, const jr_message *msg,
				const char *error, jr_raw_cb cb, void *cb_arg);
	/* busy: deliveries that hold a call slot (open and not only following an execution). */
	int (*busy)(void *arg);
	/* settled: an outcome was acted on (acks sent, the next messages dispatched). */
	void (*settled)(void *arg);
	/* stop_intake: no more messages are wanted (the drain, before it nacks anything). */
	void (*stop_intake)(void *arg);
} pullq_ports;

typedef struct pullq_opts {
	const jr_config *cfg; /* flow_*, concurrency, n_routes, subscription, topic, limits, policies */
	int ack_deadline_s;   /* the lease a modack gives; extended at 2/3 of it */
	jr_timers *timers;    /* the lease and pump timers, and the clock */
	uint64_t seed;        /* non-zero: the failed-nack backoff's jitter */
} pullq_opts;

/* Counters for the summary line. */
typedef struct pullq_stats {
	long received, acked, retried, failed, invalid, nacked_draining, extended;
	long lease_lost;      /* exactly-once: leases found lost (invalid, or retries past the lease) */
	long ack_unconfirmed; /* exactly-once: acks answered invalid or never confirmed */
	long confirmed;       /* exactly-once: receipt modacks confirmed (messages let through) */
} pullq_stats;

/* A message's life in the queue (msg_set_state is the one place it changes). */
typedef enum pullq_msg_state {
	PQ_NEW,        /* copied, not yet queued */
	PQ_CONFIRMING, /* exactly-once: its turn came, its receipt modack is not yet confirmed */
	PQ_WAITING,    /* behind the message of its ordering key that is held */
	PQ_READY,      /* in the ready queue, FIFO */
	PQ_DISPATCHED, /* with the dispatcher (or its dead letter being written) */
	PQ_RELEASED,   /* acked or nacked; an outcome may still be owed */
	PQ_ACKING,     /* exactly-once: acked, the ack's confirmation awaited */
} pullq_msg_state;

/* pullq_metrics_init: registers the queue's metric families (idempotent). */
void pullq_metrics_init(void);
/* pullq_new: an empty, open queue; o and ports are copied. */
jr_pullq *pullq_new(const pullq_opts *o, const pullq_ports *ports);
/* pullq_free: frees every message still held and cancels its timers; NULL is a no-op. */
void pullq_free(jr_pullq *q);

/*
 * pullq_receive: a message from the stream: receipt modack, then queued and
 * dispatched when the limits allow. Once closed, nacked at once instead.
 */
void pullq_receive(jr_pullq *q, const jr_pubsub_msg *m);
/*
 * pullq_confirm: a response's subscription_properties (exactly-once on or
 * off, for messages received from now on) and the confirmations of acks and
 * modacks sent before (docs/pull.md, exactly-once subscriptions). Ids not
 * held, or not awaiting that kind of confirmation, are ignored.
 */
void pullq_confirm(jr_pullq *q, const jr_pubsub_conf *c);
/* pullq_pump_soon: dispatch again from a 0 ms timer (a delivery began following its execution). */
void pullq_pump_soon(jr_pullq *q);
/* pullq_close: nothing is dispatched any more; messages that still arrive are nacked. */
void pullq_close(jr_pullq *q);
/*
 * pullq_drain: pullq_close, ports.stop_intake, and then every message not
 * yet dispatched is nacked.
 */
void pullq_drain(jr_pullq *q);
/* pullq_nack_dispatched: messages with the dispatcher are nacked now (a late DONE still acks). */
void pullq_nack_dispatched(jr_pullq *q);

/* pullq_held: messages received and not yet acked or nacked. */
size_t pullq_held(const jr_pullq *q);
/* pullq_dispatched: messages whose outcome is owed (nacked ones included). */
size_t pullq_dispatched(const jr_pullq *q);
const pullq_stats *pullq_get_stats(const jr_pullq *q);
/* pullq_msg_state_of: the state of the held message with this ack id; -1 when none is held. */
int pullq_msg_state_of(const jr_pullq *q, const char *ack_id);
/* pullq_msg_state_name: "waiting", "ready", ... */
const char *pullq_msg_state_name(pullq_msg_state st);

#endif
