/*
 * pubsub.h — one Pub/Sub StreamingPull session (gRPC core + protobuf-c).
 *
 * A session keeps one bidirectional google.pubsub.v1.Subscriber/StreamingPull
 * call open on the loop's completion queue, reopens it with backoff when it
 * ends, hands every received message to on_message, and sends the acks and
 * modacks it is given, batched, on the stream (in unary calls once
 * pubsub_stop_intake was called); an empty request when nothing
 * was sent for the keepalive interval (30 s, grpcx_pubsub_keepalive_ms), so
 * that a dead connection is found (docs/pull.md). Everything runs on the loop
 * thread; no function here blocks except pubsub_wait_ready and pubsub_free,
 * which drive the loop.
 *
 * A unary_only session (for `redrive`) opens no stream: it takes messages
 * with unary Pull calls (pubsub_pull) and sends acks and modacks in unary
 * calls from the start.
 *
 * Endpoint: PUBSUB_EMULATOR_HOST=host:port (plaintext, no credential lookup,
 * Google's convention), else pubsub.googleapis.com:443 with TLS and
 * Application Default Credentials (gcreds.h).
 */
#ifndef JR_PUBSUB_H
#define JR_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "loop.h"

typedef struct jr_pubsub jr_pubsub;

typedef enum jr_pubsub_state {
	JR_PUBSUB_IDLE,       /* pubsub_start not called yet */
	JR_PUBSUB_CONNECTING, /* a stream is open; it has not yet proven itself */
	JR_PUBSUB_OPEN,       /* the stream delivered a message, or stayed up for a second */
	JR_PUBSUB_BACKOFF,    /* the stream ended; the next one opens after a backoff */
	JR_PUBSUB_CLOSING,    /* pubsub_close: flushing acks, then half-closing */
	JR_PUBSUB_CLOSED,     /* no stream and none to come */
	JR_PUBSUB_FAILED,     /* the subscription cannot be pulled: start-up tries used up */
} jr_pubsub_state;

/* A received message; every pointer lives until on_message returns (copy what you keep). */
typedef struct jr_pubsub_msg {
	const char *ack_id;
	const char *message_id;
	const char *data;         /* data_len bytes, not NUL-terminated */
	size_t data_len;
	const jr_kv *attrs;
	size_t n_attrs;
	const char *publish_time; /* RFC 3339, UTC, or NULL */
	const char *ordering_key; /* NULL when empty */
	int delivery_attempt;     /* 0 when the subscription has no dead-letter policy */
	size_t size;              /* bytes counted for flow control (data, attributes, ids) */
} jr_pubsub_msg;

/*
 * What a response (or a unary call) confirmed, for an exactly-once
 * subscription (pubsub.proto: acknowledge_confirmation,
 * modify_ack_deadline_confirmation, subscription_properties). The ids live
 * until on_confirm returns. A unary Acknowledge / ModifyAckDeadline that
 * succeeded (after pubsub_stop_intake) is reported in the OK lists.
 */
typedef enum jr_pubsub_conf_list {
	JR_CONF_ACK_OK,        /* acknowledge_confirmation.ack_ids */
	JR_CONF_ACK_INVALID,   /* .invalid_ack_ids */
	JR_CONF_ACK_UNORDERED, /* .unordered_ack_ids */
	JR_CONF_ACK_TEMPORARY, /* .temporary_failed_ack_ids */
	JR_CONF_MOD_OK,        /* modify_ack_deadline_confirmation.ack_ids */
	JR_CONF_MOD_INVALID,   /* .invalid_ack_ids */
	JR_CONF_MOD_TEMPORARY, /* .temporary_failed_ack_ids */
	JR_CONF_LISTS,
} jr_pubsub_conf_list;

#define JR_PUBSUB_MAX_CONF_IDS 20000 /* ids kept per list and response; more are dropped */
#define JR_PUBSUB_MAX_ACK_ID 1024    /* longer ids in a confirmation are dropped */

typedef struct jr_pubsub_conf {
	int has_properties;  /* subscription_properties was in the response */
	int exactly_once;    /* its exactly_once_delivery_enabled */
	int ordering;        /* its message_ordering_enabled */
	const char **ids[JR_CONF_LISTS];
	size_t n[JR_CONF_LISTS];
	size_t dropped;      /* ids over the bounds above */
} jr_pubsub_conf;

typedef struct jr_pubsub_opts {
	const char *subscription;     /* projects/P/subscriptions/S; copied */
	const char *endpoint;         /* NULL: the environment decides (above) */
	int ack_deadline_s;           /* stream_ack_deadline_seconds, 10..600 */
	int64_t max_outstanding_messages; /* server-side flow control (<= 0: none) */
	int64_t max_outstanding_bytes;
	int startup_tries;            /* streams refused with a fatal code before FAILED; 0: 3 */
	/*
	 * unary_only: no stream is ever opened: messages come from pubsub_pull,
	 * and acks and modacks go in unary calls from the start, as after
	 * pubsub_stop_intake (`redrive`).
	 */
	int unary_only;
	/* on_message: one received message; may call pubsub_ack/modack/pause. */
	void (*on_message)(void *arg, const jr_pubsub_msg *m);
	/* on_state: the session moved to st; code/detail: the status that ended a stream, if any. */
	void (*on_state)(void *arg, jr_pubsub_state st, int code, const char *detail);
	/*
	 * on_confirm: a response's subscription_properties and confirmations,
	 * before its messages go to on_message; also the ids of a unary call that
	 * succeeded. May be NULL.
	 */
	void (*on_confirm)(void *arg, const jr_pubsub_conf *c);
	void *arg;
} jr_pubsub_opts;

/*
 * pubsub_new: a session for o->subscription on loop l; nothing is sent yet.
 * NULL with err filled when the endpoint is invalid or credentials cannot be
 * created. The strings in o are copied.
 */
jr_pubsub *pubsub_new(jr_loop *l, const jr_pubsub_opts *o, char *err, size_t errlen);
/* pubsub_target: "host:port (plaintext)" or "pubsub.googleapis.com:443 (tls)", for logs. */
const char *pubsub_target(const jr_pubsub *ps);
/*
 * pubsub_wait_ready: connects the channel and waits, driving the loop, until
 * it is ready (0) or timeout_ms passed (-1). For the start-up check that
 * decides exit code 3.
 */
int pubsub_wait_ready(jr_pubsub *ps, int64_t timeout_ms);
/* pubsub_start: opens the first stream. Call once. */
void pubsub_start(jr_pubsub *ps);

/*
 * pubsub_ack / pubsub_modack: queue an ack, or a new deadline of `seconds`
 * (0..600; 0 is a nack) for ack_id (copied). Queued ids go out on the stream
 * within 100 ms, at most 2,500 ids a request, one request in flight at a
 * time; while no stream is open they wait for the next one (ack ids stay
 * valid across streams). Acks and modacks of a request that failed are sent
 * again on the next stream, nacks are not (the deadline expiring has the
 * same effect).
 */
void pubsub_ack(jr_pubsub *ps, const char *ack_id);
void pubsub_modack(jr_pubsub *ps, const char *ack_id, int seconds);
/* pubsub_queued: ids queued or in a request not yet completed. */
size_t pubsub_queued(const jr_pubsub *ps);

/*
 * pubsub_pull: one unary google.pubsub.v1.Subscriber/Pull of at most
 * max_messages (1..1000) with the deadline timeout_ms, for a unary_only
 * session. Each message received goes to on_message, as from a stream
 * (the same checks, the same bounds: one response at most 20 MiB); then
 * done(arg, code, detail, n) runs once, from the loop, with the call's status
 * and the messages handed out (not after pubsub_free began). At most one
 * Pull at a time: -1 when one is in flight or the session is not unary_only,
 * or the call could not start; else 0.
 */
typedef void (*jr_pubsub_pull_cb)(void *arg, int code, const char *detail, size_t n);
int pubsub_pull(jr_pubsub *ps, int max_messages, int64_t timeout_ms, jr_pubsub_pull_cb done,
		void *arg);

/*
 * pubsub_pause: paused != 0 stops reading from the stream once the receive
 * in progress completes (HTTP/2 flow control then holds the server back);
 * 0 reads again. For local flow control.
 */
void pubsub_pause(jr_pubsub *ps, int paused);

/*
 * pubsub_stop_intake: no message is taken any more: reading stops, the
 * stream is cancelled once its request in flight (if any) completed, and no
 * stream is opened again. Ids queued from now on, and those not yet sent, go
 * out in unary Acknowledge / ModifyAckDeadline calls on the same channel
 * (at most 2,500 ids and 512 KiB a call, modacks grouped by deadline, four
 * calls in flight, each with the routing header and a 10 s deadline); a
 * failed call is sent again after a backoff (a fatal code drops it, logged).
 * Messages from a response read before the cancel still go to on_message.
 * For the drain: nothing is handed back to a stream that would deliver it
 * again at once.
 */
void pubsub_stop_intake(jr_pubsub *ps);

/*
 * pubsub_close: no stream is opened again; the queued ids are sent, then the
 * stream is half-closed. on_state(CLOSED) follows once the server ended it
 * (a stream in backoff is reopened at once when ids are still queued).
 * Messages that still arrive meanwhile go to on_message.
 */
void pubsub_close(jr_pubsub *ps);
/*
 * pubsub_free: cancels the stream, drives the loop until its operations have
 * completed, and frees the session (ids still queued are dropped). Call
 * before loop_free. NULL is a no-op.
 */
void pubsub_free(jr_pubsub *ps);

jr_pubsub_state pubsub_state(const jr_pubsub *ps);
/* pubsub_state_name: "connecting", "open", ... */
const char *pubsub_state_name(jr_pubsub_state st);

/* Counters since pubsub_new. */
typedef struct jr_pubsub_stats {
	long received;   /* messages */
	long acks;       /* ack ids sent */
	long modacks;    /* modack ids sent with a deadline > 0 */
	long nacks;      /* modack ids sent with deadline 0 */
	long requests;   /* ack/modack requests sent */
	long streams;    /* streams opened */
	long reconnects; /* streams reopened after one ended */
	long unary_calls; /* unary Acknowledge / ModifyAckDeadline calls started */
	long unary_failed; /* of those, failed (sent again, or dropped on a fatal code) */
	long send_failed; /* stream sends that failed: at most one a stream */
} jr_pubsub_stats;

const jr_pubsub_stats *pubsub_stats(const jr_pubsub *ps);

/*
 * pubsub_routing_header: the x-goog-request-params value for subscription
 * into out (cap bytes): "subscription=<url-encoded name>". Returns its
 * length, or 0 when it does not fit.
 */
size_t pubsub_routing_header(const char *subscription, char *out, size_t cap);

/*
 * pubsub_decode_response: the ReceivedMessages of a packed
 * google.pubsub.v1.StreamingPullResponse, as *n messages in *out (the array
 * and every string in arena a; data points into buf). message_id is NULL
 * when a message has no PubsubMessage. 0, or -1 when the bytes are malformed
 * (then nothing is returned). Used by the session; exposed for tests.
 */
int pubsub_decode_response(const void *buf, size_t len, jr_arena *a, jr_pubsub_msg **out,
			   size_t *n);
/*
 * pubsub_decode_confirmations: the subscription_properties and the
 * confirmations' ack id lists of a packed StreamingPullResponse into *c
 * (arrays and strings in a; at most JR_PUBSUB_MAX_CONF_IDS ids a list, ids
 * longer than JR_PUBSUB_MAX_ACK_ID dropped, counted in c->dropped). 0, or
 * -1 when malformed (then *c is empty). Exposed for tests.
 */
int pubsub_decode_confirmations(const void *buf, size_t len, jr_arena *a, jr_pubsub_conf *c);

#endif
