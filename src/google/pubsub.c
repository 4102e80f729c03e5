/*
 * pubsub.c — a StreamingPull session on the loop's completion queue.
 *
 * Design. One bidirectional google.pubsub.v1.Subscriber/StreamingPull call
 * at a time, driven by gRPC core batches whose tags the loop dispatches:
 *
 *   start   SEND_INITIAL_METADATA + SEND_MESSAGE(first request)
 *   status  RECV_STATUS_ON_CLIENT: completes when the stream ends
 *   recv    [RECV_INITIAL_METADATA +] RECV_MESSAGE, re-armed after each
 *           response unless paused: one receive is always pending
 *   send    SEND_MESSAGE(acks and modacks, or an empty keepalive request),
 *           one at a time
 *   close   SEND_CLOSE_FROM_CLIENT, once, when closing and nothing is queued
 *
 * No thread per message and no polling: an idle session has one pending
 * receive, one pending status and the keepalive timer (the flush timer is
 * armed only while ids wait; the settle timer once per stream).
 *
 * Keepalive: when nothing was sent on the stream for the keepalive interval
 * (30 s, grpcx_pubsub_keepalive_ms), an empty StreamingPullRequest goes out,
 * as Google's Go and Python clients send one every 30 s. The service closes a
 * stream that stays silent (about a minute), and the bytes written let gRPC
 * keep pinging the connection (it pings at most twice between two writes of
 * data): the channel pings after the same interval and closes the connection
 * when a ping is not answered within min(20 s, interval). So a connection
 * that died silently (a NAT or load balancer dropping it) ends the stream at
 * most interval + ping timeout after it went quiet (50 s), with UNAVAILABLE,
 * and the stream is reopened as after any end.
 *
 * The first request names the subscription, stream_ack_deadline_seconds, a
 * client_id (random, the same on every stream of the session, so the server
 * can carry state across reconnects) and the server-side flow control
 * (max_outstanding_messages / _bytes). It carries no acks: pstest ignores
 * everything but the subscription in a stream's first request, and the real
 * service does not need them there.
 *
 * Acks and modacks wait in a queue of ids (one buffer of NUL-terminated ids
 * plus an array of (offset, length, seconds); no allocation per id once the
 * buffers have grown). The queue is flushed at most 100 ms after its first
 * id arrived, or at once when it holds 2,500 ids; a request carries at most
 * 2,500 ids and 512 KiB (the limits Google's clients keep to). They go in
 * unary Acknowledge / ModifyAckDeadline calls (at most 4 at once, one kind
 * at a time, failed ones sent again after a backoff), as Google's Go and
 * Java clients send them: a unary call's status says whether the server
 * took the ids, while a message written to a stream the server has already
 * ended is lost without a word (the client learns of the end only once it
 * has read the stream's last messages, which flow control may hold back for
 * many seconds; leases then expire and messages go to other subscribers
 * while they are still being dispatched here). Only an exactly-once
 * subscription (subscription_properties in a response) sends them on the
 * stream, whose responses confirm every id (a request not confirmed in time
 * is sent again; pubsub_decode_confirmations, on_confirm): the ids of the
 * request in flight are kept until its send completes, and when the stream
 * dies first, its acks and modacks go back to the front of the queue and out
 * on the next stream; nacks of a failed request are dropped instead (the
 * message comes back when its deadline expires, and a nack re-sent late
 * could release a redelivery). After pubsub_stop_intake (the drain) the
 * stream is cancelled and every id goes in unary calls, so that nacked
 * messages are not handed straight back to this stream; only ids Pub/Sub
 * gave out are sent (pstest's unary ModifyAckDeadline crashes on an unknown
 * one).
 *
 * Reconnect: every stream end is followed by a new stream after a backoff
 * with full jitter (100 ms doubling to 60 s, retry/policy.h), reset when a
 * stream delivers a message, lived longer than the cap, or stayed up for
 * PS_SETTLE_MS and ended with a code that is not fatal: a stream that
 * receives nothing because the worker is at its flow-control limit is
 * healthy, and its acks must not wait a long backoff for the next one. Fatal codes
 * (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED,
 * FAILED_PRECONDITION, UNIMPLEMENTED) before the session was ever
 * established count toward startup_tries; when they are used up the session
 * is FAILED (the caller exits 3). Once established, the same codes are
 * retried like the others: a daemon outlives a permission fixed later.
 *
 * Each response is read by hand (pubsub_decode_response) into an arena that
 * is freed right after the messages were handed out; the size of a response is bounded by
 * the channel's max receive length (20 MiB, as Google's Go client).
 */
#include "pubsub.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/time.h>

#include "google/pubsub/v1/pubsub.pb-c.h"
#include "grpcx.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "pct.h"
#include "policy.h"
#include "utf8.h"

#define PS_METHOD "/google.pubsub.v1.Subscriber/StreamingPull"
#define PS_MAX_RECV (20 * 1024 * 1024)   /* one StreamingPullResponse */
#define PS_MAX_IDS 2500                  /* ids in one request */
#define PS_MAX_REQUEST_BYTES (512 * 1024)
#define PS_FLUSH_MS 100
#define PS_BACKOFF_INITIAL_MS 100
#define PS_BACKOFF_MAX_MS 60000
#define PS_SETTLE_MS 1000                /* a stream up this long counts as open */
#define PS_MAX_SUBSCRIPTION 1024
#define PS_DETAIL_MAX 512
/* Queued lease extensions past this many ids are dropped (acks and nacks never are). */
#define PS_MAX_QUEUED_BASE 100000
#define PS_ACK_METHOD "/google.pubsub.v1.Subscriber/Acknowledge"
#define PS_MODACK_METHOD "/google.pubsub.v1.Subscriber/ModifyAckDeadline"
#define PS_UNARY_MAX 4                   /* unary calls in flight */
#define PS_UNARY_TIMEOUT_MS 10000
#define PS_PULL_METHOD "/google.pubsub.v1.Subscriber/Pull"
#define PS_PULL_MAX 1000                 /* max_messages of one Pull */

typedef struct idq_ent {
	size_t off, len;
	int32_t secs; /* < 0: ack; 0: nack; > 0: new deadline */
} idq_ent;

/* A queue of ack ids: the ids NUL-terminated in one buffer, entries in an array. */
typedef struct idq {
	jr_buf ids;
	idq_ent *e;
	size_t n, cap;
} idq;

/* A unary Acknowledge or ModifyAckDeadline call in flight (after pubsub_stop_intake). */
typedef struct ps_unary {
	jr_pubsub *ps;
	jr_tag tag;
	grpcx_unary u;
	idq ids;          /* all acks, or all modacks of one deadline */
	struct ps_unary *next;
} ps_unary;

/* The unary Pull in flight (unary_only sessions). */
typedef struct ps_pull {
	jr_pubsub *ps;
	jr_tag tag;
	grpcx_unary u;
	jr_pubsub_pull_cb done;
	void *arg;
} ps_pull;

typedef struct ps_stream {
	jr_pubsub *ps;
	grpc_call *call;
	int refs; /* batches started and not completed */
	jr_tag t_start, t_recv, t_send, t_status, t_close;
	grpc_metadata send_md[2];
	grpc_metadata_array recv_md, trailing_md;
	grpc_byte_buffer *start_buf, *send_buf, *recv_buf;
	grpc_status_code status;
	grpc_slice details;
	int md_asked;      /* RECV_INITIAL_METADATA was part of a batch */
	int recv_pending, send_pending, send_ready, close_sent, status_done;
	int send_failed;   /* a send failed: the write side is gone; nothing more is sent on it */
	long received;     /* messages on this stream */
	int64_t opened_ms;
} ps_stream;

struct jr_pubsub {
	jr_loop *loop;
	grpc_channel *ch;
	void *method;
	jr_pubsub_opts o;
	char *subscription;
	char *params;       /* x-goog-request-params value */
	char target[300];
	char client_id[33];
	jr_pubsub_state state;
	ps_stream *st;
	idq pending, sending;
	int flush_due;
	jr_timer_id flush_timer, backoff_timer, settle_timer, keepalive_timer;
	int keepalive_ms;   /* an empty request after this long without a send */
	int64_t last_send_ms; /* when the last request was started on the stream */
	int paused, closing, freeing, established, startup_failures, backoff_attempt;
	size_t max_queued;
	long dropped_extensions;
	uint64_t rng;
	jr_pubsub_stats stats;
	jr_arena rx;        /* the response being handed out */
	long dropped_conf_ids;
	int intake_stopped;  /* pubsub_stop_intake: ids go in unary calls */
	int stream_ids;      /* acks and modacks go on the stream: an exactly-once subscription */
	void *ack_method, *modack_method;
	ps_unary *unary;     /* calls in flight */
	int n_unary, unary_failures;
	jr_timer_id unary_timer; /* the next unary attempt after a failure */
	void *pull_method;
	struct ps_pull *pull; /* the unary Pull in flight (unary_only), or NULL */
	char *ack_ptrs[PS_MAX_IDS];
	char *mod_ptrs[PS_MAX_IDS];
	int32_t mod_secs[PS_MAX_IDS];
};

static struct {
	jr_metric *acks, *nacks, *modacks, *reconnects, *streams;
} m;

static void metrics_init(void)
{
	m.acks = metric_register("jobrelay_pubsub_acks_total", JR_METRIC_COUNTER,
				 "Pub/Sub ack ids sent.", NULL, 0);
	m.nacks = metric_register("jobrelay_pubsub_nacks_total", JR_METRIC_COUNTER,
				  "Pub/Sub nacks sent (modifyAckDeadline 0).", NULL, 0);
	m.modacks = metric_register("jobrelay_pubsub_modacks_total", JR_METRIC_COUNTER,
				    "Pub/Sub modifyAckDeadline ids sent with a deadline above 0.",
				    NULL, 0);
	m.reconnects = metric_register("jobrelay_pubsub_stream_reconnects_total",
				       JR_METRIC_COUNTER, "StreamingPull streams reopened.", NULL, 0);
	m.streams = metric_register("jobrelay_pubsub_stream_open", JR_METRIC_GAUGE,
				    "1 while a StreamingPull stream is open.", NULL, 0);
}

/* ---- the id queue ---- */

static void idq_push(idq *q, const char *id, size_t len, int32_t secs)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->e = jr_realloc(q->e, q->cap * sizeof *q->e);
	}
	q->e[q->n++] = (idq_ent){q->ids.len, len, secs};
	buf_add(&q->ids, id, len);
	buf_addc(&q->ids, '\0');
}

static void idq_clear(idq *q)
{
	q->n = 0;
	buf_reset(&q->ids);
}

static void idq_free(idq *q)
{
	buf_free(&q->ids);
	free(q->e);
}

static void idq_swap(idq *a, idq *b)
{
	idq t = *a;
	*a = *b;
	*b = t;
}

/* idq_take: moves the first ids of src (at most PS_MAX_IDS, PS_MAX_REQUEST_BYTES) to the empty dst. */
static void idq_take(idq *dst, idq *src)
{
	size_t k = 0, bytes = 0;
	while (k < src->n && k < PS_MAX_IDS && bytes + src->e[k].len + 8 <= PS_MAX_REQUEST_BYTES)
		bytes += src->e[k++].len + 8;
	if (k == 0)
		k = 1; /* one id over the byte limit still goes, alone */
	if (k == src->n) {
		idq_swap(dst, src);
		return;
	}
	size_t cut = src->e[k].off;
	buf_add(&dst->ids, src->ids.data, cut);
	if (dst->cap < k) {
		dst->cap = k;
		dst->e = jr_realloc(dst->e, dst->cap * sizeof *dst->e);
	}
	memcpy(dst->e, src->e, k * sizeof *dst->e);
	dst->n = k;
	memmove(src->ids.data, src->ids.data + cut, src->ids.len - cut + 1);
	src->ids.len -= cut;
	memmove(src->e, src->e + k, (src->n - k) * sizeof *src->e);
	src->n -= k;
	for (size_t i = 0; i < src->n; i++)
		src->e[i].off -= cut;
}

/*
 * idq_requeue: the ids of a failed request go back in front of pending;
 * nacks only with keep_nacks (unary calls after the intake stopped).
 */
static void idq_requeue(idq *pending, idq *failed, int keep_nacks)
{
	idq merged = {0};
	for (size_t i = 0; i < failed->n; i++)
		if (keep_nacks || failed->e[i].secs != 0)
			idq_push(&merged, failed->ids.data + failed->e[i].off, failed->e[i].len,
				 failed->e[i].secs);
	for (size_t i = 0; i < pending->n; i++)
		idq_push(&merged, pending->ids.data + pending->e[i].off, pending->e[i].len,
			 pending->e[i].secs);
	idq_swap(pending, &merged);
	idq_free(&merged);
	idq_clear(failed);
}

/* ---- state ---- */

static const char *const state_names[] = {
	"idle", "connecting", "open", "backoff", "closing", "closed", "failed",
};

const char *pubsub_state_name(jr_pubsub_state st)
{
	return (unsigned)st < sizeof state_names / sizeof state_names[0] ? state_names[st] : "?";
}

jr_pubsub_state pubsub_state(const jr_pubsub *ps)
{
	return ps->state;
}

const jr_pubsub_stats *pubsub_stats(const jr_pubsub *ps)
{
	return &ps->stats;
}

const char *pubsub_target(const jr_pubsub *ps)
{
	return ps->target;
}

size_t pubsub_queued(const jr_pubsub *ps)
{
	size_t n = ps->pending.n + ps->sending.n;
	for (const ps_unary *c = ps->unary; c; c = c->next)
		n += c->ids.n;
	return n;
}

/*
 * stream_set_state: every change of the session's state goes through here:
 * one log line (msgid PUBSUB-STATE), then the owner's on_state.
 */
static void stream_set_state(jr_pubsub *ps, jr_pubsub_state st, int code, const char *detail,
			     int64_t delay_ms)
{
	if (ps->state == st && st != JR_PUBSUB_BACKOFF)
		return;
	jr_pubsub_state from = ps->state;
	ps->state = st;
	metric_set(m.streams, NULL, st == JR_PUBSUB_OPEN || st == JR_PUBSUB_CONNECTING ? 1 : 0);
	if (ps->freeing)
		return;
	char delay[32] = "";
	if (st == JR_PUBSUB_BACKOFF)
		snprintf(delay, sizeof delay, "%lldms", (long long)delay_ms);
	jr_log_level lv = st == JR_PUBSUB_FAILED ? JR_LOG_ERROR
			  : st == JR_PUBSUB_BACKOFF && code != 0 && code != 1 ? JR_LOG_WARNING
									: JR_LOG_INFO;
	log_kv(lv, "PUBSUB-STATE", "StreamingPull session state changed", "subscription",
	       ps->subscription, "state", pubsub_state_name(st), "from", pubsub_state_name(from),
	       "code", detail ? grpc_code_name(code) : NULL, "detail", detail,
	       "delay", delay[0] ? delay : NULL, NULL);
	if (ps->o.on_state)
		ps->o.on_state(ps->o.arg, st, code, detail);
}

/* ---- requests ---- */

static grpc_byte_buffer *pack_request(const Google__Pubsub__V1__StreamingPullRequest *rq)
{
	size_t n = google__pubsub__v1__streaming_pull_request__get_packed_size(rq);
	grpc_slice s = grpc_slice_malloc(n);
	google__pubsub__v1__streaming_pull_request__pack(rq, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static grpc_byte_buffer *first_request(jr_pubsub *ps)
{
	Google__Pubsub__V1__StreamingPullRequest rq = GOOGLE__PUBSUB__V1__STREAMING_PULL_REQUEST__INIT;
	rq.subscription = ps->subscription;
	rq.stream_ack_deadline_seconds = ps->o.ack_deadline_s;
	rq.client_id = ps->client_id;
	rq.max_outstanding_messages = ps->o.max_outstanding_messages;
	rq.max_outstanding_bytes = ps->o.max_outstanding_bytes;
	return pack_request(&rq);
}

/* ids_request: the ids in ps->sending as one request; counts them. */
static grpc_byte_buffer *ids_request(jr_pubsub *ps)
{
	Google__Pubsub__V1__StreamingPullRequest rq = GOOGLE__PUBSUB__V1__STREAMING_PULL_REQUEST__INIT;
	size_t na = 0, nm = 0;
	long nacks = 0;
	for (size_t i = 0; i < ps->sending.n; i++) {
		const idq_ent *e = &ps->sending.e[i];
		char *id = ps->sending.ids.data + e->off;
		if (e->secs < 0) {
			ps->ack_ptrs[na++] = id;
		} else {
			ps->mod_ptrs[nm] = id;
			ps->mod_secs[nm++] = e->secs;
			nacks += e->secs == 0;
		}
	}
	rq.n_ack_ids = na;
	rq.ack_ids = ps->ack_ptrs;
	rq.n_modify_deadline_seconds = nm;
	rq.modify_deadline_seconds = ps->mod_secs;
	rq.n_modify_deadline_ack_ids = nm;
	rq.modify_deadline_ack_ids = ps->mod_ptrs;
	ps->stats.acks += (long)na;
	ps->stats.nacks += nacks;
	ps->stats.modacks += (long)nm - nacks;
	ps->stats.requests++;
	metric_add(m.acks, NULL, (double)na);
	metric_add(m.nacks, NULL, (double)nacks);
	metric_add(m.modacks, NULL, (double)((long)nm - nacks));
	return pack_request(&rq);
}

/* ---- the stream ---- */

static void on_start(void *arg, int ok);
static void on_recv(void *arg, int ok);
static void on_send(void *arg, int ok);
static void on_status(void *arg, int ok);
static void on_close(void *arg, int ok);
static void open_stream(jr_pubsub *ps);
static void flush(jr_pubsub *ps);

static int start_batch(ps_stream *st, const grpc_op *ops, size_t n, jr_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(st->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		log_kv(JR_LOG_ERROR, "PUBSUB-BATCH", "cannot start a StreamingPull batch; cancelling",
		       "subscription", st->ps->subscription, "error", grpc_call_error_to_string(e),
		       NULL);
		grpc_call_cancel(st->call, NULL);
		return -1;
	}
	st->refs++;
	return 0;
}

static void start_recv(ps_stream *st)
{
	/* a stream whose send failed is read even when paused: its status comes only after its messages */
	if (st->recv_pending || st->status_done || (st->ps->paused && !st->send_failed))
		return;
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (!st->md_asked) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &st->recv_md;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &st->recv_buf;
	if (start_batch(st, ops, n, &st->t_recv) == 0) {
		st->md_asked = 1;
		st->recv_pending = 1;
	}
}

static void flush(jr_pubsub *ps);

static void flush_timer_fired(void *arg)
{
	jr_pubsub *ps = arg;
	ps->flush_timer = 0;
	ps->flush_due = 1;
	flush(ps);
}

/* queue_id: one id into pending; the flush timer runs while ids wait. */
static void queue_id(jr_pubsub *ps, const char *ack_id, int32_t secs)
{
	if (secs > 0 && ps->pending.n >= ps->max_queued) {
		if (ps->dropped_extensions++ % 10000 == 0)
			log_kv(JR_LOG_WARNING, "PUBSUB-QUEUE-FULL",
			       "too many ids wait for a stream; lease extensions dropped",
			       "subscription", ps->subscription, NULL);
		return;
	}
	idq_push(&ps->pending, ack_id, strlen(ack_id), secs);
	if (ps->pending.n >= PS_MAX_IDS || ps->closing)
		ps->flush_due = 1;
	else if (!ps->flush_due && !ps->flush_timer)
		ps->flush_timer = loop_timer_add(ps->loop, PS_FLUSH_MS, flush_timer_fired, ps);
	if (ps->flush_due)
		flush(ps);
}

void pubsub_ack(jr_pubsub *ps, const char *ack_id)
{
	queue_id(ps, ack_id, -1);
}

void pubsub_modack(jr_pubsub *ps, const char *ack_id, int seconds)
{
	queue_id(ps, ack_id, seconds < 0 ? 0 : seconds > 600 ? 600 : seconds);
}

static void half_close(ps_stream *st)
{
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (start_batch(st, &op, 1, &st->t_close) == 0)
		st->close_sent = 1;
}

/* ---- unary calls, once the intake stopped ---- */

static void unary_flush(jr_pubsub *ps);
static int is_fatal(int code);

/* ent_kind: an id's kind: -1 for an ack, else its modack's deadline. */
static int32_t ent_kind(const idq_ent *e)
{
	return e->secs < 0 ? -1 : e->secs;
}

/* unary_kind: the kind of a queue's first id (all of a call's ids share it). */
static int32_t unary_kind(const idq *q)
{
	return ent_kind(&q->e[0]);
}

/*
 * idq_take_kind: moves into the empty dst the ids of src of the first one's
 * kind (acks, or modacks of its deadline), within a request's limits.
 */
static void idq_take_kind(idq *dst, idq *src)
{
	int32_t kind = unary_kind(src);
	idq rest = {0};
	size_t bytes = 0;
	for (size_t i = 0; i < src->n; i++) {
		const idq_ent *e = &src->e[i];
		const char *id = src->ids.data + e->off;
		if (ent_kind(e) == kind && dst->n < PS_MAX_IDS &&
		    (dst->n == 0 || bytes + e->len + 8 <= PS_MAX_REQUEST_BYTES)) {
			idq_push(dst, id, e->len, e->secs);
			bytes += e->len + 8;
		} else {
			idq_push(&rest, id, e->len, e->secs);
		}
	}
	idq_swap(src, &rest);
	idq_free(&rest);
}

static grpc_byte_buffer *pack_slice(size_t n, void (*fill)(const void *, uint8_t *), const void *rq)
{
	grpc_slice s = grpc_slice_malloc(n);
	fill(rq, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static void pack_ack(const void *rq, uint8_t *out)
{
	google__pubsub__v1__acknowledge_request__pack(rq, out);
}

static void pack_modack(const void *rq, uint8_t *out)
{
	google__pubsub__v1__modify_ack_deadline_request__pack(rq, out);
}

/* unary_request: the ids of q (one kind) as an AcknowledgeRequest or ModifyAckDeadlineRequest; counted. */
static grpc_byte_buffer *unary_request(jr_pubsub *ps, const idq *q)
{
	for (size_t i = 0; i < q->n; i++)
		ps->ack_ptrs[i] = q->ids.data + q->e[i].off;
	int32_t secs = q->e[0].secs;
	ps->stats.unary_calls++;
	ps->stats.requests++;
	if (secs < 0) {
		Google__Pubsub__V1__AcknowledgeRequest rq = GOOGLE__PUBSUB__V1__ACKNOWLEDGE_REQUEST__INIT;
		rq.subscription = ps->subscription;
		rq.n_ack_ids = q->n;
		rq.ack_ids = ps->ack_ptrs;
		ps->stats.acks += (long)q->n;
		metric_add(m.acks, NULL, (double)q->n);
		return pack_slice(google__pubsub__v1__acknowledge_request__get_packed_size(&rq),
				  pack_ack, &rq);
	}
	Google__Pubsub__V1__ModifyAckDeadlineRequest rq =
		GOOGLE__PUBSUB__V1__MODIFY_ACK_DEADLINE_REQUEST__INIT;
	rq.subscription = ps->subscription;
	rq.n_ack_ids = q->n;
	rq.ack_ids = ps->ack_ptrs;
	rq.ack_deadline_seconds = secs;
	if (secs == 0) {
		ps->stats.nacks += (long)q->n;
		metric_add(m.nacks, NULL, (double)q->n);
	} else {
		ps->stats.modacks += (long)q->n;
		metric_add(m.modacks, NULL, (double)q->n);
	}
	return pack_slice(google__pubsub__v1__modify_ack_deadline_request__get_packed_size(&rq),
			  pack_modack, &rq);
}

/* check_closed: after the intake stopped, CLOSED once closing and every id went out. */
static void check_closed(jr_pubsub *ps)
{
	if ((ps->intake_stopped || !ps->stream_ids) && ps->closing && !ps->st &&
	    ps->pending.n == 0 && ps->n_unary == 0 && !ps->freeing)
		stream_set_state(ps, JR_PUBSUB_CLOSED, 0, NULL, 0);
}

static void unary_timer_fired(void *arg)
{
	jr_pubsub *ps = arg;
	ps->unary_timer = 0;
	ps->flush_due = 1;
	flush(ps);
}

/* unary_confirm: a unary call succeeded: its ids to on_confirm as confirmed (not nacks). */
static void unary_confirm(jr_pubsub *ps, const idq *q)
{
	int32_t secs = q->e[0].secs;
	if (!ps->o.on_confirm || secs == 0)
		return;
	jr_pubsub_conf c;
	memset(&c, 0, sizeof c);
	int l = secs < 0 ? JR_CONF_ACK_OK : JR_CONF_MOD_OK;
	c.ids[l] = (const char **)ps->ack_ptrs;
	c.n[l] = q->n;
	for (size_t i = 0; i < q->n; i++)
		ps->ack_ptrs[i] = q->ids.data + q->e[i].off;
	ps->o.on_confirm(ps->o.arg, &c);
}

/* unary_failed: sent again after a backoff, or dropped on a fatal code. */
static void unary_failed(jr_pubsub *ps, ps_unary *c, int code, const char *detail)
{
	int drop = is_fatal(code) || ps->freeing;
	char n[24];
	snprintf(n, sizeof n, "%zu", c->ids.n);
	ps->stats.unary_failed++;
	log_kv(JR_LOG_WARNING, "PUBSUB-UNARY-FAILED",
	       drop ? "unary ack/modack call failed; its ids are dropped"
		    : "unary ack/modack call failed; sent again",
	       "subscription", ps->subscription, "code", grpc_code_name(code), "detail", detail,
	       "ids", n, NULL);
	if (drop)
		return;
	idq_requeue(&ps->pending, &c->ids, 1);
	if (!ps->unary_timer) {
		jr_policy p = { JR_ACT_RETRY, 0, PS_BACKOFF_INITIAL_MS, 5000 };
		int64_t delay = backoff_full_jitter_ms(&p, ++ps->unary_failures, rng_next(&ps->rng));
		ps->unary_timer = loop_timer_add(ps->loop, delay, unary_timer_fired, ps);
	}
}

static void on_unary(void *arg, int ok)
{
	ps_unary *c = arg;
	jr_pubsub *ps = c->ps;
	for (ps_unary **pp = &ps->unary; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ps->n_unary--;
	int code = ok ? (int)c->u.status : GRPC_STATUS_UNKNOWN;
	if (code == GRPC_STATUS_OK) {
		ps->unary_failures = 0;
		if (!ps->freeing)
			unary_confirm(ps, &c->ids);
	} else {
		char detail[PS_DETAIL_MAX + 1];
		grpcx_copy_text(detail, PS_DETAIL_MAX, GRPC_SLICE_START_PTR(c->u.details),
				GRPC_SLICE_LENGTH(c->u.details));
		unary_failed(ps, c, code, detail);
	}
	grpcx_unary_end(&c->u);
	idq_free(&c->ids);
	free(c);
	if (!ps->freeing) {
		flush(ps);
		check_closed(ps);
	}
}

/*
 * other_kind_in_flight: a call of another kind than the next queued ids is in
 * flight. Calls of one kind may run side by side (their order does not
 * matter); another kind waits, so that a release (deadline 0) or an ack never
 * overtakes an earlier modack of the same id on the way to the server.
 */
static int other_kind_in_flight(const jr_pubsub *ps)
{
	int32_t next = unary_kind(&ps->pending);
	for (const ps_unary *c = ps->unary; c; c = c->next)
		if (unary_kind(&c->ids) != next)
			return 1;
	return 0;
}

/* unary_flush: starts calls for the queued ids while fewer than PS_UNARY_MAX are in flight. */
static void unary_flush(jr_pubsub *ps)
{
	while (ps->pending.n > 0 && ps->n_unary < PS_UNARY_MAX && !ps->unary_timer && !ps->freeing &&
	       !other_kind_in_flight(ps)) {
		ps_unary *c = jr_calloc(1, sizeof *c);
		c->ps = ps;
		c->tag = (jr_tag){on_unary, c};
		idq_take_kind(&c->ids, &ps->pending);
		grpc_byte_buffer *bb = unary_request(ps, &c->ids);
		void *method = unary_kind(&c->ids) < 0 ? ps->ack_method : ps->modack_method;
		if (grpcx_unary_start(&c->u, ps->ch, method, loop_cq(ps->loop), PS_UNARY_TIMEOUT_MS,
				      ps->params, strlen(ps->params), bb, &c->tag) < 0) {
			unary_failed(ps, c, GRPC_STATUS_UNAVAILABLE, "the call could not start");
			idq_free(&c->ids);
			free(c);
			return;
		}
		c->next = ps->unary;
		ps->unary = c;
		ps->n_unary++;
	}
}

/* flush_unary_mode: flush once the intake stopped: due ids go in unary calls. */
static void flush_unary_mode(jr_pubsub *ps)
{
	if (!ps->flush_due && !ps->closing)
		return;
	if (ps->flush_timer) {
		loop_timer_cancel(ps->loop, ps->flush_timer);
		ps->flush_timer = 0;
	}
	unary_flush(ps);
	ps->flush_due = ps->pending.n > 0;
}

/* flush: sends the next request when one is due and the stream can take it. */
static void flush(jr_pubsub *ps)
{
	ps_stream *st = ps->st;
	if (ps->intake_stopped) {
		flush_unary_mode(ps);
		return;
	}
	if (!ps->stream_ids) {
		/* the stream only receives: once closing and every id is through, it is half-closed */
		flush_unary_mode(ps);
		if (ps->closing && ps->pending.n == 0 && ps->n_unary == 0 && st && st->send_ready &&
		    !st->send_pending && !st->send_failed && !st->close_sent && !st->status_done)
			half_close(st);
		return;
	}
	if (!st || !st->send_ready || st->send_pending || st->send_failed || st->close_sent ||
	    st->status_done)
		return;
	if (ps->pending.n == 0) {
		ps->flush_due = 0;
		if (ps->closing)
			half_close(st);
		return;
	}
	if (!ps->flush_due && !ps->closing)
		return;
	if (ps->flush_timer) {
		loop_timer_cancel(ps->loop, ps->flush_timer);
		ps->flush_timer = 0;
	}
	idq_take(&ps->sending, &ps->pending);
	st->send_buf = ids_request(ps);
	/* more than one request's worth waits: the next goes when this one completes */
	ps->flush_due = ps->pending.n > 0;
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = st->send_buf;
	if (start_batch(st, &op, 1, &st->t_send) == 0) {
		st->send_pending = 1;
		ps->last_send_ms = loop_now_ms();
	} else {
		grpc_byte_buffer_destroy(st->send_buf);
		st->send_buf = NULL;
		idq_requeue(&ps->pending, &ps->sending, ps->intake_stopped);
		ps->flush_due = 1;
	}
}

/*
 * keepalive_fired: an empty request when the stream can send and nothing was
 * sent for keepalive_ms; re-armed for keepalive_ms after the last send. A
 * send still in flight counts as traffic. Not while closing.
 */
static void keepalive_fired(void *arg)
{
	jr_pubsub *ps = arg;
	ps_stream *st = ps->st;
	ps->keepalive_timer = 0;
	if (!st || st->status_done || st->close_sent || ps->closing)
		return;
	int64_t now = loop_now_ms();
	if (st->send_ready && !st->send_pending && !st->send_failed &&
	    now - ps->last_send_ms >= ps->keepalive_ms) {
		Google__Pubsub__V1__StreamingPullRequest rq = GOOGLE__PUBSUB__V1__STREAMING_PULL_REQUEST__INIT;
		st->send_buf = pack_request(&rq);
		grpc_op op;
		memset(&op, 0, sizeof op);
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = st->send_buf;
		if (start_batch(st, &op, 1, &st->t_send) < 0) {
			grpc_byte_buffer_destroy(st->send_buf);
			st->send_buf = NULL;
			return; /* the stream is cancelled; the next one arms its own timer */
		}
		st->send_pending = 1;
		ps->last_send_ms = now;
	}
	int64_t due = ps->last_send_ms + ps->keepalive_ms - now;
	ps->keepalive_timer = loop_timer_add(ps->loop, due > 0 ? due : ps->keepalive_ms,
					     keepalive_fired, ps);
}

static int is_fatal(int code)
{
	return code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_NOT_FOUND ||
	       code == GRPC_STATUS_PERMISSION_DENIED || code == GRPC_STATUS_UNAUTHENTICATED ||
	       code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_UNIMPLEMENTED;
}

static void backoff_fired(void *arg)
{
	jr_pubsub *ps = arg;
	ps->backoff_timer = 0;
	open_stream(ps);
}

/* stream_ended: what follows a stream's end: closed, failed, or another stream after a backoff. */
static void stream_ended(jr_pubsub *ps, int code, const char *detail, long received,
			 int64_t lived_ms)
{
	if (ps->freeing)
		return;
	if (ps->intake_stopped) {
		stream_set_state(ps, JR_PUBSUB_CLOSING, code, code ? detail : NULL, 0);
		check_closed(ps);
		return;
	}
	if (ps->closing && ps->pending.n == 0 && ps->n_unary == 0) {
		stream_set_state(ps, JR_PUBSUB_CLOSED, code, code ? detail : NULL, 0);
		return;
	}
	if (ps->closing && !ps->stream_ids) {
		/* the ids left go in unary calls; closed once they are through (check_closed) */
		stream_set_state(ps, JR_PUBSUB_CLOSING, code, code ? detail : NULL, 0);
		flush(ps);
		check_closed(ps);
		return;
	}
	/* a stream that delivered, or settled and then ended for a reason that is no refusal
	 * (Pub/Sub rotates streams; a worker at its flow-control limit receives nothing), was
	 * healthy: the next one opens after the first step of the backoff */
	if (received > 0 || lived_ms >= PS_BACKOFF_MAX_MS || (lived_ms >= PS_SETTLE_MS && !is_fatal(code)))
		ps->backoff_attempt = 0;
	if (is_fatal(code) && !ps->established &&
	    ++ps->startup_failures >= ps->o.startup_tries) {
		stream_set_state(ps, JR_PUBSUB_FAILED, code, detail, 0);
		return;
	}
	jr_policy p = { JR_ACT_RETRY, 0, PS_BACKOFF_INITIAL_MS, PS_BACKOFF_MAX_MS };
	int64_t delay = backoff_full_jitter_ms(&p, ++ps->backoff_attempt, rng_next(&ps->rng));
	stream_set_state(ps, JR_PUBSUB_BACKOFF, code, detail, delay);
	ps->backoff_timer = loop_timer_add(ps->loop, delay, backoff_fired, ps);
}

static void stream_unref(ps_stream *st)
{
	if (--st->refs > 0)
		return;
	jr_pubsub *ps = st->ps;
	if (ps->st == st)
		ps->st = NULL;
	if (ps->settle_timer) {
		loop_timer_cancel(ps->loop, ps->settle_timer);
		ps->settle_timer = 0;
	}
	if (ps->keepalive_timer) {
		loop_timer_cancel(ps->loop, ps->keepalive_timer);
		ps->keepalive_timer = 0;
	}
	char detail[PS_DETAIL_MAX + 1];
	int code = st->status_done ? (int)st->status : GRPC_STATUS_UNKNOWN;
	if (st->status_done)
		grpcx_copy_text(detail, PS_DETAIL_MAX, GRPC_SLICE_START_PTR(st->details),
				GRPC_SLICE_LENGTH(st->details));
	else
		snprintf(detail, sizeof detail, "stream ended without a status");
	if (!detail[0])
		snprintf(detail, sizeof detail, "%s", code == 0 ? "stream closed by the server"
								: grpc_code_name(code));
	long received = st->received;
	int64_t lived = loop_now_ms() - st->opened_ms;
	grpc_slice_unref(st->details);
	grpc_metadata_array_destroy(&st->recv_md);
	grpc_metadata_array_destroy(&st->trailing_md);
	if (st->recv_buf)
		grpc_byte_buffer_destroy(st->recv_buf);
	grpc_call_unref(st->call);
	free(st);
	stream_ended(ps, code, detail, received, lived);
}

static void on_start(void *arg, int ok)
{
	ps_stream *st = arg;
	grpc_byte_buffer_destroy(st->start_buf);
	st->start_buf = NULL;
	if (ok) {
		st->send_ready = 1;
		flush(st->ps);
	}
	stream_unref(st);
}

static void on_send(void *arg, int ok)
{
	ps_stream *st = arg;
	jr_pubsub *ps = st->ps;
	grpc_byte_buffer_destroy(st->send_buf);
	st->send_buf = NULL;
	st->send_pending = 0;
	if (ok) {
		idq_clear(&ps->sending);
	} else {
		/*
		 * The stream's write side is gone (the server ended it, or the
		 * connection): the ids wait for the next stream, and this one is
		 * read to its end, paused or not, so that its status arrives and
		 * the session reconnects (sending again here would fail at once,
		 * over and over, until then).
		 */
		idq_requeue(&ps->pending, &ps->sending, ps->intake_stopped);
		ps->flush_due = 1;
		st->send_failed = 1;
		ps->stats.send_failed++;
		start_recv(st);
	}
	if (ps->intake_stopped && !st->status_done)
		grpc_call_cancel(st->call, NULL); /* its last request went; nothing more is read */
	flush(ps);
	stream_unref(st);
}

static void on_close(void *arg, int ok)
{
	stream_unref(arg);
}

static void on_status(void *arg, int ok)
{
	ps_stream *st = arg;
	st->status_done = 1;
	stream_unref(st);
}

static void settle_fired(void *arg)
{
	jr_pubsub *ps = arg;
	ps->settle_timer = 0;
	if (ps->st && ps->state == JR_PUBSUB_CONNECTING) {
		ps->established = 1;
		stream_set_state(ps, JR_PUBSUB_OPEN, 0, NULL, 0);
	}
}

/* ---- responses ---- */

/* The last publish second formatted, and its text: rfc3339's cache (per thread). */
static _Thread_local struct {
	int64_t sec;
	size_t len;
	char txt[24];
} pt_cache;

/*
 * rfc3339: a Timestamp as proto3 JSON writes it (0, 3, 6 or 9 fraction
 * digits) into buf (32 bytes), or NULL. The seconds' text is made once per
 * second of publish time (messages of a response mostly share it), the
 * fraction by hand: gmtime_r + strftime + snprintf for every message cost
 * 1,100 instructions.
 */
static const char *rfc3339(int64_t sec, int32_t nanos, char *buf)
{
	if (sec != pt_cache.sec || pt_cache.len == 0) {
		time_t s = (time_t)sec;
		struct tm tm;
		if (!gmtime_r(&s, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
			return NULL;
		pt_cache.len = strftime(pt_cache.txt, sizeof pt_cache.txt, "%Y-%m-%dT%H:%M:%S", &tm);
		pt_cache.sec = sec;
	}
	memcpy(buf, pt_cache.txt, pt_cache.len);
	char *p = buf + pt_cache.len;
	int32_t ns = nanos >= 0 && nanos <= 999999999 ? nanos : 0;
	int digits = ns == 0 ? 0 : ns % 1000000 == 0 ? 3 : ns % 1000 == 0 ? 6 : 9;
	if (digits) {
		int32_t v = digits == 3 ? ns / 1000000 : digits == 6 ? ns / 1000 : ns;
		*p = '.';
		for (int i = digits; i >= 1; i--, v /= 10)
			p[i] = (char)('0' + v % 10);
		p += digits + 1;
	}
	p[0] = 'Z';
	p[1] = '\0';
	return buf;
}

/*
 * Reading a StreamingPullResponse by hand (protobuf-c's unpack cost 6,900
 * instructions a message, mostly allocations of structs and attribute
 * entries dropped right after). Only received_messages (1) is read:
 *   ReceivedMessage { ack_id = 1; PubsubMessage message = 2; int32 delivery_attempt = 3 }
 *   PubsubMessage { bytes data = 1; map<string,string> attributes = 2;
 *                   message_id = 3; Timestamp publish_time = 4; ordering_key = 5 }
 *   Timestamp { int64 seconds = 1; int32 nanos = 2 }
 * With protobuf's rules: unknown fields are skipped, a known field with
 * another wire type makes the response malformed, the last value of a scalar
 * wins, and a message field that occurs twice is merged (read in order into
 * the same place; attributes add up). A malformed response hands out nothing
 * (the stream is then reopened), as a failed unpack did.
 */
typedef struct rx_msg {
	grpcx_pb_field ack_id, data, message_id, ordering_key;
	int has_message, has_time;
	int64_t seconds;
	int32_t nanos;
	int32_t delivery_attempt;
	size_t n_attrs;
	jr_kv *attrs; /* pass 2: where the attributes go */
} rx_msg;

#define WT_VARINT 0
#define WT_LEN 2

/* read_timestamp: merges the Timestamp t into rm. 0, or -1. */
static int read_timestamp(const grpcx_pb_field *t, rx_msg *rm)
{
	const uint8_t *p = t->data, *end = t->data + t->len;
	grpcx_pb_field f;
	int rc;
	rm->has_time = 1;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num == 1 && f.wt == WT_VARINT)
			rm->seconds = (int64_t)f.v;
		else if (f.num == 2 && f.wt == WT_VARINT)
			rm->nanos = (int32_t)f.v;
		else if (f.num <= 2)
			return -1;
	}
	return rc;
}

/*
 * text_dup: a string field of a message into a, NUL-terminated; a NUL byte in
 * it becomes UTF8_NUL_TEXT, so the message is refused as holding a NUL byte
 * (decode_message) instead of being cut short there and matching another.
 */
static char *text_dup(jr_arena *a, const uint8_t *p, size_t n)
{
	if (!p || !memchr(p, 0, n))
		return arena_strndup(a, p ? (const char *)p : "", n);
	char *d = arena_alloc_raw(a, 2 * n + 1), *o = d;
	for (size_t i = 0; i < n; i++) {
		if (p[i]) {
			*o++ = (char)p[i];
		} else {
			memcpy(o, UTF8_NUL_TEXT, 2);
			o += 2;
		}
	}
	*o = '\0';
	return d;
}

/* read_attr: one map entry { key = 1; value = 2 }, into kv when not NULL (strings in a). 0, or -1. */
static int read_attr(const grpcx_pb_field *e, jr_arena *a, jr_kv *kv)
{
	const uint8_t *p = e->data, *end = e->data + e->len;
	grpcx_pb_field f, key = { 0 }, val = { 0 };
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num <= 2 && f.wt != WT_LEN)
			return -1;
		if (f.num == 1)
			key = f;
		else if (f.num == 2)
			val = f;
	}
	if (rc < 0)
		return -1;
	if (kv) {
		kv->key = text_dup(a, key.data, key.len);
		kv->value = text_dup(a, val.data, val.len);
	}
	return 0;
}

/* read_message: merges the PubsubMessage pm into rm; with a, stores attributes at rm->attrs. */
static int read_message(const grpcx_pb_field *pm, rx_msg *rm, jr_arena *a)
{
	const uint8_t *p = pm->data, *end = pm->data + pm->len;
	grpcx_pb_field f;
	int rc;
	rm->has_message = 1;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num <= 5 && f.wt != WT_LEN)
			return -1;
		switch (f.num) {
		case 1:
			rm->data = f;
			break;
		case 2:
			if (read_attr(&f, a, a ? &rm->attrs[rm->n_attrs] : NULL) < 0)
				return -1;
			rm->n_attrs++;
			break;
		case 3:
			rm->message_id = f;
			break;
		case 4:
			if (read_timestamp(&f, rm) < 0)
				return -1;
			break;
		case 5:
			rm->ordering_key = f;
			break;
		}
	}
	return rc;
}

/* read_received: the ReceivedMessage r into rm: without a, checks it and counts attributes; with a, stores them. */
static int read_received(const grpcx_pb_field *r, rx_msg *rm, jr_arena *a)
{
	const uint8_t *p = r->data, *end = r->data + r->len;
	grpcx_pb_field f;
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num == 1 && f.wt == WT_LEN) {
			rm->ack_id = f;
		} else if (f.num == 2 && f.wt == WT_LEN) {
			if (read_message(&f, rm, a) < 0)
				return -1;
		} else if (f.num == 3 && f.wt == WT_VARINT) {
			rm->delivery_attempt = (int32_t)f.v;
		} else if (f.num <= 3) {
			return -1;
		}
	}
	return rc;
}

static char *field_str(jr_arena *a, const grpcx_pb_field *f)
{
	return arena_strndup(a, f->data ? (const char *)f->data : "", f->len);
}

/* out_msg: the jr_pubsub_msg of rm (strings copied into a, data pointing into the response). */
static void out_msg(const rx_msg *rm, jr_arena *a, jr_pubsub_msg *o)
{
	o->ack_id = field_str(a, &rm->ack_id);
	o->message_id = rm->has_message ? text_dup(a, rm->message_id.data, rm->message_id.len) : NULL;
	o->data = rm->data.len ? (const char *)rm->data.data : "";
	o->data_len = rm->data.len;
	o->attrs = rm->attrs;
	o->n_attrs = rm->n_attrs;
	if (rm->has_time) {
		char tbuf[32];
		const char *t = rfc3339(rm->seconds, rm->nanos, tbuf);
		o->publish_time = t ? arena_strdup(a, t) : NULL;
	}
	o->ordering_key = rm->ordering_key.len && rm->ordering_key.data[0]
			    ? text_dup(a, rm->ordering_key.data, rm->ordering_key.len) : NULL;
	o->delivery_attempt = rm->delivery_attempt > 0 ? rm->delivery_attempt : 0;
	size_t size = rm->data.len + strlen(o->message_id ? o->message_id : "") +
		      (o->ordering_key ? strlen(o->ordering_key) : 0);
	for (size_t k = 0; k < rm->n_attrs; k++)
		size += strlen(rm->attrs[k].key) + strlen(rm->attrs[k].value);
	o->size = size;
}

/*
 * check_other: the response's other fields, not used, well-formed as
 * protobuf-c's unpack required: modify_ack_deadline_confirmation (3: ack id
 * lists 1-3, length-delimited), subscription_properties (4: two bools, any
 * well-formed fields), acknowledge_confirmation (5: ack id lists 1-4). 0, or -1.
 */
static int check_other(const grpcx_pb_field *o)
{
	if (o->wt != WT_LEN)
		return -1;
	uint64_t last = o->num == 3 ? 3 : o->num == 4 ? 0 : 4; /* protobuf-c takes any wire type for a bool */
	unsigned wt = WT_LEN;
	const uint8_t *p = o->data, *end = o->data + o->len;
	grpcx_pb_field f;
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0)
		if (f.num <= last && f.wt != wt)
			return -1;
	return rc;
}

int pubsub_decode_response(const void *buf, size_t len, jr_arena *a, jr_pubsub_msg **out,
			   size_t *n)
{
	const uint8_t *p = buf, *end = p + len;
	grpcx_pb_field f;
	size_t count = 0;
	int rc;
	*out = NULL;
	*n = 0;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if ((f.num == 1 && f.wt != WT_LEN) || (f.num >= 3 && f.num <= 5 && check_other(&f) < 0))
			return -1;
		count += f.num == 1;
	}
	if (rc < 0)
		return -1;
	if (count == 0)
		return 0;
	/* pass 1: check every message and count its attributes, before anything is handed out */
	rx_msg *rx = arena_alloc(a, count * sizeof *rx);
	size_t i = 0;
	for (p = buf; grpcx_pb_next(&p, end, &f) > 0;)
		if (f.num == 1 && read_received(&f, &rx[i++], NULL) < 0)
			return -1;
	/* pass 2: the attributes into arrays of the counted size, then the messages */
	jr_pubsub_msg *msgs = arena_alloc(a, count * sizeof *msgs);
	i = 0;
	for (p = buf; grpcx_pb_next(&p, end, &f) > 0;) {
		if (f.num != 1)
			continue;
		rx_msg *rm = &rx[i];
		if (rm->n_attrs) {
			rx_msg fill = { .attrs = arena_alloc(a, rm->n_attrs * sizeof *rm->attrs) };
			read_received(&f, &fill, a); /* checked in pass 1 */
			rm->attrs = fill.attrs;
		}
		out_msg(rm, a, &msgs[i++]);
	}
	*out = msgs;
	*n = count;
	return 0;
}

/*
 * Confirmations (exactly-once subscriptions): acknowledge_confirmation (5:
 * ack_ids 1, invalid 2, unordered 3, temporary 4), modify_ack_deadline_
 * confirmation (3: ack_ids 1, invalid 2, temporary 3), subscription_
 * properties (4: exactly_once 1, ordering 2; bools, varint). Read in two
 * passes (count, then fill), merged as protobuf merges: lists add up, the
 * last bool wins.
 */
static int conf_list_of(uint64_t outer, uint64_t inner)
{
	if (outer == 5 && inner >= 1 && inner <= 4)
		return JR_CONF_ACK_OK + (int)inner - 1;
	if (outer == 3 && inner >= 1 && inner <= 3)
		return JR_CONF_MOD_OK + (int)inner - 1;
	return -1;
}

/*
 * bool_of: a bool field as protobuf-c's unpack reads it, whatever its wire
 * type (true when a byte of its encoding, a length prefix included, has a
 * low 7 bits set); after: where grpcx_pb_next left off.
 */
static int bool_of(const grpcx_pb_field *f, const uint8_t *after)
{
	if (f->wt == WT_VARINT)
		return f->v != 0;
	if (f->wt == WT_LEN)
		return f->len != 0;
	size_t n = f->wt == 1 ? 8 : 4;
	for (size_t i = 0; i < n; i++)
		if (after[-(ptrdiff_t)n + (ptrdiff_t)i] & 0x7f)
			return 1;
	return 0;
}

static int read_properties(const grpcx_pb_field *o, jr_pubsub_conf *c)
{
	const uint8_t *p = o->data, *end = o->data + o->len;
	grpcx_pb_field f;
	int rc;
	c->has_properties = 1;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num == 1)
			c->exactly_once = bool_of(&f, p);
		else if (f.num == 2)
			c->ordering = bool_of(&f, p);
	}
	return rc;
}

/* read_conf: one confirmation o; fill 0 counts its ids into c->n, fill 1 stores them (strings in a). */
static int read_conf(const grpcx_pb_field *o, jr_pubsub_conf *c, jr_arena *a, int fill)
{
	const uint8_t *p = o->data, *end = o->data + o->len;
	grpcx_pb_field f;
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		int l = conf_list_of(o->num, f.num);
		if (l < 0)
			continue;
		if (f.wt != WT_LEN)
			return -1;
		if (f.len == 0 || f.len > JR_PUBSUB_MAX_ACK_ID || c->n[l] >= JR_PUBSUB_MAX_CONF_IDS) {
			c->dropped += fill;
			continue;
		}
		if (fill)
			c->ids[l][c->n[l]] = text_dup(a, f.data, f.len);
		c->n[l]++;
	}
	return rc;
}

/* conf_pass: one pass over the response's fields 3, 4 and 5. */
static int conf_pass(const void *buf, size_t len, jr_pubsub_conf *c, jr_arena *a, int fill)
{
	const uint8_t *p = buf, *end = p + len;
	grpcx_pb_field f;
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.num < 3 || f.num > 5)
			continue;
		if (f.wt != WT_LEN)
			return -1;
		if (f.num == 4 ? read_properties(&f, c) < 0 : read_conf(&f, c, a, fill) < 0)
			return -1;
	}
	return rc;
}

int pubsub_decode_confirmations(const void *buf, size_t len, jr_arena *a, jr_pubsub_conf *c)
{
	memset(c, 0, sizeof *c);
	if (conf_pass(buf, len, c, a, 0) < 0) {
		memset(c, 0, sizeof *c);
		return -1;
	}
	size_t counted[JR_CONF_LISTS];
	memcpy(counted, c->n, sizeof counted);
	for (int l = 0; l < JR_CONF_LISTS; l++) {
		c->ids[l] = counted[l] ? arena_alloc(a, counted[l] * sizeof *c->ids[l]) : NULL;
		c->n[l] = 0;
	}
	conf_pass(buf, len, c, a, 1); /* checked in the first pass */
	return 0;
}

static int conf_empty(const jr_pubsub_conf *c)
{
	for (int l = 0; l < JR_CONF_LISTS; l++)
		if (c->n[l])
			return 0;
	return !c->has_properties;
}

/* handle_confirmations: the response's properties and confirmations to on_confirm. */
static int handle_confirmations(jr_pubsub *ps, const void *buf, size_t len)
{
	jr_pubsub_conf c;
	if (pubsub_decode_confirmations(buf, len, &ps->rx, &c) < 0)
		return -1;
	if (c.dropped && ps->dropped_conf_ids++ % 1000 == 0)
		log_kv(JR_LOG_WARNING, "PUBSUB-CONFIRM-DROPPED",
		       "confirmation ids over the bounds were dropped", "subscription",
		       ps->subscription, NULL);
	if (c.has_properties && ps->stream_ids != c.exactly_once) {
		/* exactly-once: acks and modacks on the stream, whose responses confirm them */
		ps->stream_ids = c.exactly_once;
		flush(ps);
	}
	if (!conf_empty(&c) && ps->o.on_confirm)
		ps->o.on_confirm(ps->o.arg, &c);
	return 0;
}

/* hand_out: the messages of a response to on_message; one without ack id or message id is skipped. */
static size_t hand_out(jr_pubsub *ps, const jr_pubsub_msg *msgs, size_t n)
{
	size_t handed = 0;
	for (size_t i = 0; i < n; i++) {
		const jr_pubsub_msg *rm = &msgs[i];
		if (!rm->ack_id[0] || !rm->message_id || !rm->message_id[0]) {
			log_kv(JR_LOG_ERROR, "PUBSUB-BAD-MESSAGE",
			       "received a message without ack id or message id; skipped",
			       "subscription", ps->subscription, NULL);
			continue;
		}
		ps->stats.received++;
		handed++;
		ps->o.on_message(ps->o.arg, rm);
	}
	return handed;
}

/* handle_response: 0, or -1 when the response cannot be read (the stream is then cancelled). */
static int handle_response(jr_pubsub *ps, ps_stream *st, grpc_byte_buffer *bb)
{
	grpc_slice s;
	if (grpcx_message_slice(bb, PS_MAX_RECV, &s) < 0)
		return -1;
	jr_pubsub_msg *msgs;
	size_t n;
	int rc = pubsub_decode_response(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), &ps->rx,
					&msgs, &n);
	if (rc == 0)
		rc = handle_confirmations(ps, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
	if (rc == 0 && n > 0) {
		st->received += (long)n;
		ps->backoff_attempt = 0;
		if (ps->state == JR_PUBSUB_CONNECTING) {
			ps->established = 1;
			stream_set_state(ps, JR_PUBSUB_OPEN, 0, NULL, 0);
		}
	}
	if (rc == 0)
		hand_out(ps, msgs, n);
	arena_free(&ps->rx);
	grpc_slice_unref(s); /* the messages' data pointed into it */
	return rc;
}

static void on_recv(void *arg, int ok)
{
	ps_stream *st = arg;
	jr_pubsub *ps = st->ps;
	st->recv_pending = 0;
	if (ok && st->recv_buf) {
		grpc_byte_buffer *bb = st->recv_buf;
		st->recv_buf = NULL;
		if (handle_response(ps, st, bb) < 0) {
			log_kv(JR_LOG_ERROR, "PUBSUB-BAD-RESPONSE",
			       "cannot read a StreamingPullResponse; reopening the stream",
			       "subscription", ps->subscription, NULL);
			grpc_call_cancel_with_status(st->call, GRPC_STATUS_INTERNAL,
						     "unreadable StreamingPullResponse", NULL);
		} else if (!ps->freeing) {
			start_recv(st);
		}
		grpc_byte_buffer_destroy(bb);
	}
	stream_unref(st);
}

static void open_stream(jr_pubsub *ps)
{
	ps_stream *st = jr_calloc(1, sizeof *st);
	st->ps = ps;
	st->t_start = (jr_tag){on_start, st};
	st->t_recv = (jr_tag){on_recv, st};
	st->t_send = (jr_tag){on_send, st};
	st->t_status = (jr_tag){on_status, st};
	st->t_close = (jr_tag){on_close, st};
	st->opened_ms = loop_now_ms();
	grpc_metadata_array_init(&st->recv_md);
	grpc_metadata_array_init(&st->trailing_md);
	st->details = grpc_empty_slice();
	st->call = grpc_channel_create_registered_call(ps->ch, NULL, GRPC_PROPAGATE_DEFAULTS,
						       loop_cq(ps->loop), ps->method,
						       gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	st->send_md[0].key = grpc_slice_from_static_string("x-goog-request-params");
	st->send_md[0].value = grpc_slice_from_static_string(ps->params);
	st->send_md[1].key = grpc_slice_from_static_string("x-goog-api-client");
	st->send_md[1].value = grpc_slice_from_static_string(grpcx_api_client());
	st->start_buf = first_request(ps);
	ps->st = st;
	if (ps->stats.streams++ > 0) {
		ps->stats.reconnects++;
		metric_add(m.reconnects, NULL, 1);
	}

	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &st->trailing_md;
	ops[0].data.recv_status_on_client.status = &st->status;
	ops[0].data.recv_status_on_client.status_details = &st->details;
	st->refs = 1; /* held while the batches start */
	start_batch(st, ops, 1, &st->t_status);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 2;
	ops[0].data.send_initial_metadata.metadata = st->send_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = st->start_buf;
	if (start_batch(st, ops, 2, &st->t_start) < 0) {
		grpc_byte_buffer_destroy(st->start_buf);
		st->start_buf = NULL;
	}
	start_recv(st);
	ps->last_send_ms = loop_now_ms();
	stream_set_state(ps, ps->closing ? JR_PUBSUB_CLOSING : JR_PUBSUB_CONNECTING, 0, NULL, 0);
	if (!ps->closing) {
		ps->settle_timer = loop_timer_add(ps->loop, PS_SETTLE_MS, settle_fired, ps);
		ps->keepalive_timer = loop_timer_add(ps->loop, ps->keepalive_ms, keepalive_fired, ps);
	}
	stream_unref(st);
}

/* ---- unary Pull (unary_only sessions) ---- */

static void on_pull(void *arg, int ok)
{
	ps_pull *c = arg;
	jr_pubsub *ps = c->ps;
	ps->pull = NULL;
	int code = ok ? (int)c->u.status : GRPC_STATUS_UNKNOWN;
	char detail[PS_DETAIL_MAX + 1] = "";
	size_t handed = 0;
	if (code != GRPC_STATUS_OK) {
		grpcx_copy_text(detail, PS_DETAIL_MAX, GRPC_SLICE_START_PTR(c->u.details),
				GRPC_SLICE_LENGTH(c->u.details));
	} else if (c->u.recv_buf && !ps->freeing) {
		/* a PullResponse's received_messages is field 1, as a StreamingPullResponse's */
		grpc_slice s;
		jr_pubsub_msg *msgs;
		size_t n;
		if (grpcx_message_slice(c->u.recv_buf, PS_MAX_RECV, &s) < 0) {
			code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			snprintf(detail, sizeof detail, "PullResponse over %d bytes", PS_MAX_RECV);
		} else {
			if (pubsub_decode_response(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s),
						   &ps->rx, &msgs, &n) < 0) {
				code = GRPC_STATUS_INTERNAL;
				snprintf(detail, sizeof detail, "unreadable PullResponse");
			} else {
				handed = hand_out(ps, msgs, n);
			}
			arena_free(&ps->rx);
			grpc_slice_unref(s);
		}
	}
	grpcx_unary_end(&c->u);
	if (!ps->freeing)
		c->done(c->arg, code, detail, handed);
	free(c);
}

int pubsub_pull(jr_pubsub *ps, int max_messages, int64_t timeout_ms, jr_pubsub_pull_cb done,
		void *arg)
{
	if (!ps->o.unary_only || ps->pull || ps->freeing)
		return -1;
	Google__Pubsub__V1__PullRequest rq = GOOGLE__PUBSUB__V1__PULL_REQUEST__INIT;
	rq.subscription = ps->subscription;
	rq.max_messages = max_messages < 1 ? 1 : max_messages > PS_PULL_MAX ? PS_PULL_MAX : max_messages;
	size_t n = google__pubsub__v1__pull_request__get_packed_size(&rq);
	grpc_slice sl = grpc_slice_malloc(n);
	google__pubsub__v1__pull_request__pack(&rq, GRPC_SLICE_START_PTR(sl));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	ps_pull *c = jr_calloc(1, sizeof *c);
	c->ps = ps;
	c->tag = (jr_tag){on_pull, c};
	c->done = done;
	c->arg = arg;
	if (grpcx_unary_start(&c->u, ps->ch, ps->pull_method, loop_cq(ps->loop), timeout_ms,
			      ps->params, strlen(ps->params), bb, &c->tag) < 0) {
		free(c);
		return -1;
	}
	ps->pull = c;
	return 0;
}

/* ---- the session ---- */

size_t pubsub_routing_header(const char *subscription, char *out, size_t cap)
{
	static const char key[] = "subscription=";
	size_t n = strlen(subscription);
	if (cap < sizeof key + 3 * n)
		return 0;
	memcpy(out, key, sizeof key - 1);
	return sizeof key - 1 + pct_encode(subscription, n, out + sizeof key - 1);
}

static void random_client_id(char out[33])
{
	unsigned char b[16];
	FILE *f = fopen("/dev/urandom", "rb");
	size_t got = f ? fread(b, 1, sizeof b, f) : 0;
	if (f)
		fclose(f);
	if (got != sizeof b) {
		uint64_t s = (uint64_t)loop_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
		for (size_t i = 0; i < sizeof b; i++)
			b[i] = (unsigned char)rng_next(&s);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof b; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
}

jr_pubsub *pubsub_new(jr_loop *l, const jr_pubsub_opts *o, char *err, size_t errlen)
{
	if (!o->subscription || !*o->subscription || strlen(o->subscription) > PS_MAX_SUBSCRIPTION) {
		snprintf(err, errlen, "no usable subscription name");
		return NULL;
	}
	char target[300];
	grpc_channel *ch = grpcx_pubsub_channel(o->endpoint, PS_MAX_RECV, target, sizeof target,
						err, errlen);
	if (!ch)
		return NULL;
	metrics_init();
	jr_pubsub *ps = jr_calloc(1, sizeof *ps);
	ps->loop = l;
	ps->ch = ch;
	ps->method = grpc_channel_register_call(ch, PS_METHOD, NULL, NULL);
	ps->ack_method = grpc_channel_register_call(ch, PS_ACK_METHOD, NULL, NULL);
	ps->modack_method = grpc_channel_register_call(ch, PS_MODACK_METHOD, NULL, NULL);
	ps->pull_method = grpc_channel_register_call(ch, PS_PULL_METHOD, NULL, NULL);
	ps->o = *o;
	if (ps->o.startup_tries <= 0)
		ps->o.startup_tries = 3;
	ps->subscription = jr_strdup(o->subscription);
	ps->o.subscription = ps->subscription;
	size_t cap = 16 + 3 * strlen(o->subscription);
	ps->params = jr_malloc(cap);
	pubsub_routing_header(ps->subscription, ps->params, cap);
	snprintf(ps->target, sizeof ps->target, "%s", target);
	ps->keepalive_ms = grpcx_pubsub_keepalive_ms(err, errlen); /* checked by grpcx_pubsub_channel */
	random_client_id(ps->client_id);
	ps->rng = (uint64_t)loop_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0xD1B54A32D192ED03ULL;
	int64_t mm = o->max_outstanding_messages > 0 ? o->max_outstanding_messages : 1000;
	ps->max_queued = PS_MAX_QUEUED_BASE + (size_t)(mm > 1000000 ? 1000000 : mm) * 4;
	buf_init(&ps->pending.ids, 0);
	buf_init(&ps->sending.ids, 0);
	arena_init(&ps->rx);
	ps->intake_stopped = ps->o.unary_only; /* acks and modacks in unary calls from the start */
	return ps;
}

int pubsub_wait_ready(jr_pubsub *ps, int64_t timeout_ms)
{
	return grpcx_wait_ready(ps->ch, ps->loop, timeout_ms);
}

void pubsub_start(jr_pubsub *ps)
{
	if (ps->state == JR_PUBSUB_IDLE && !ps->o.unary_only)
		open_stream(ps);
}

void pubsub_pause(jr_pubsub *ps, int paused)
{
	if (ps->paused == !!paused)
		return;
	ps->paused = !!paused;
	if (!paused && ps->st)
		start_recv(ps->st);
}

static void cancel_timer(jr_pubsub *ps, jr_timer_id *t)
{
	if (*t) {
		loop_timer_cancel(ps->loop, *t);
		*t = 0;
	}
}

void pubsub_stop_intake(jr_pubsub *ps)
{
	if (ps->intake_stopped || ps->state == JR_PUBSUB_FAILED || ps->state == JR_PUBSUB_CLOSED)
		return;
	ps->intake_stopped = 1;
	ps->paused = 1;
	cancel_timer(ps, &ps->backoff_timer);
	cancel_timer(ps, &ps->settle_timer);
	cancel_timer(ps, &ps->keepalive_timer);
	char n[24];
	snprintf(n, sizeof n, "%zu", pubsub_queued(ps));
	log_kv(JR_LOG_INFO, "PUBSUB-INTAKE-STOPPED",
	       "no more messages taken: stream cancelled, acks and modacks go in unary calls",
	       "subscription", ps->subscription, "queued_ids", n, NULL);
	if (ps->st && !ps->st->send_pending && !ps->st->status_done)
		grpc_call_cancel(ps->st->call, NULL); /* else once its request in flight completed */
	if (ps->st)
		stream_set_state(ps, JR_PUBSUB_CLOSING, 0, NULL, 0);
	ps->flush_due = ps->pending.n > 0;
	flush(ps);
}

void pubsub_close(jr_pubsub *ps)
{
	if (ps->closing || ps->state == JR_PUBSUB_FAILED || ps->state == JR_PUBSUB_CLOSED)
		return;
	ps->closing = 1;
	ps->flush_due = 1;
	if (ps->intake_stopped) {
		flush(ps);
		check_closed(ps);
		return;
	}
	if (ps->settle_timer) {
		loop_timer_cancel(ps->loop, ps->settle_timer);
		ps->settle_timer = 0;
	}
	if (ps->st) {
		stream_set_state(ps, JR_PUBSUB_CLOSING, 0, NULL, 0);
		flush(ps);
		return;
	}
	if (ps->backoff_timer) {
		loop_timer_cancel(ps->loop, ps->backoff_timer);
		ps->backoff_timer = 0;
	}
	if (ps->pending.n > 0 && ps->state != JR_PUBSUB_IDLE)
		open_stream(ps);
	else
		stream_set_state(ps, JR_PUBSUB_CLOSED, 0, NULL, 0);
}

void pubsub_free(jr_pubsub *ps)
{
	if (!ps)
		return;
	ps->freeing = 1;
	if (ps->st)
		grpc_call_cancel(ps->st->call, NULL);
	for (ps_unary *c = ps->unary; c; c = c->next)
		grpc_call_cancel(c->u.call, NULL);
	if (ps->pull)
		grpc_call_cancel(ps->pull->u.call, NULL);
	while (ps->st || ps->n_unary > 0 || ps->pull)
		loop_run_once(ps->loop, -1);
	loop_timer_cancel(ps->loop, ps->unary_timer);
	loop_timer_cancel(ps->loop, ps->flush_timer);
	loop_timer_cancel(ps->loop, ps->backoff_timer);
	loop_timer_cancel(ps->loop, ps->settle_timer);
	loop_timer_cancel(ps->loop, ps->keepalive_timer);
	metric_set(m.streams, NULL, 0);
	grpc_channel_destroy(ps->ch);
	idq_free(&ps->pending);
	idq_free(&ps->sending);
	arena_free(&ps->rx);
	free(ps->subscription);
	free(ps->params);
	free(ps);
}
