/*
 * dltopic.c — the Pub/Sub topic dead-letter sink.
 *
 * A write builds the message (dl_topic_data, dl_topic_attributes) in a
 * scratch arena, packs the PublishRequest straight into a grpc slice, and
 * starts the call (grpcx_unary_start) or queues the packed request while
 * DLTOPIC_MAX_IN_FLIGHT calls are open; so the record need not outlive the
 * write. A call ends in one completion; the callback gets ok only for status
 * OK with at least one message id in the PublishResponse.
 *
 * Limits: a PublishRequest over 10 MB (Pub/Sub's limit) is refused at once
 * (the write fails, so the event is held, never dropped); attributes are
 * kept within Pub/Sub's limits by dl_topic_attributes.
 */
#include "dl_topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "dl_file.h"
#include "errclass.h"
#include "google/pubsub/v1/pubsub.pb-c.h"
#include "grpcx.h"
#include "list.h"
#include "log.h"
#include "pct.h"
#include "utf8.h"

#define PUBLISH_METHOD "/google.pubsub.v1.Publisher/Publish"
#define GET_TOPIC_METHOD "/google.pubsub.v1.Publisher/GetTopic"
#define DLTOPIC_MAX_RECV (1024 * 1024) /* a PublishResponse or Topic */
#define DLTOPIC_MAX_TOPIC 1024
#define DLTOPIC_ERR_TEXT 512

/* ---- attributes (pure) ---- */

char *dl_topic_utf8(jr_arena *a, const char *s, size_t n, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t cap = n < max ? n : max;
	char *out = arena_alloc_raw(a, cap + 1);
	size_t i = 0, o = 0;
	while (i < n) {
		size_t k = utf8_char_len(u + i, n - i);
		size_t w = k ? k : 1;
		if (o + w > max)
			break;
		if (k)
			memcpy(out + o, s + i, k);
		else
			out[o] = '?';
		o += w;
		i += w;
	}
	out[o] = '\0';
	return out;
}

static void put(dl_topic_attrs *out, jr_arena *a, const char *key, const char *v)
{
	out->kv[out->n].key = key;
	out->kv[out->n].value = dl_topic_utf8(a, v ? v : "", v ? strlen(v) : 0, DLTOPIC_VALUE_MAX);
	out->n++;
}

/*
 * original_ok: 1 to keep the original attribute, 0 when it is ours (replaced),
 * -1 when it cannot be published as it is: a bad key, or a value that is not
 * UTF-8 (a '?' for a byte would make it another value, which a re-drive would
 * then take for the original).
 */
static int original_ok(const char *key, const char *value)
{
	size_t n = strlen(key);
	if (!utf8_valid(value, strlen(value)))
		return -1;
	if (!strncmp(key, DLTOPIC_PREFIX, sizeof DLTOPIC_PREFIX - 1))
		return 0;
	if (n == 0 || n > DLTOPIC_KEY_MAX || !strncmp(key, "goog", 4) || !utf8_valid(key, n))
		return -1;
	return 1;
}

void dl_topic_attributes(const jr_dlrecord *r, jr_arena *a, dl_topic_attrs *out)
{
	out->n = 0;
	out->dropped = 0;
	char num[24], at[32];
	snprintf(num, sizeof num, "%d", r->attempts);
	log_time_text(r->failed_at_ms, at);
	put(out, a, DLTOPIC_PREFIX "error-class", errclass_name(r->cls));
	put(out, a, DLTOPIC_PREFIX "error-code", r->code);
	put(out, a, DLTOPIC_PREFIX "error-message", r->message);
	put(out, a, DLTOPIC_PREFIX "attempts", num);
	if (r->route)
		put(out, a, DLTOPIC_PREFIX "route", r->route);
	if (r->ev && r->ev->id)
		put(out, a, DLTOPIC_PREFIX "event-id", r->ev->id);
	if (r->ev && r->ev->source)
		put(out, a, DLTOPIC_PREFIX "event-source", r->ev->source);
	put(out, a, DLTOPIC_PREFIX "origin", r->origin);
	put(out, a, DLTOPIC_PREFIX "failed-at", at);

	const jr_message *m = r->ev ? r->ev->message : r->msg;
	if (r->ev && !m) /* the data is the structured CloudEvent: say so, as the Pub/Sub binding does */
		put(out, a, "content-type", DLTOPIC_STRUCTURED);
	size_t n_orig = m ? m->n_attrs : 0, keep = 0;
	for (size_t i = 0; i < n_orig; i++) {
		int ok = original_ok(m->attrs[i].key, m->attrs[i].value);
		keep += ok > 0;
		out->dropped += ok < 0;
	}
	size_t room = DLTOPIC_MAX_ATTRS - out->n;
	/* when not all fit, or some were dropped, the count takes one place */
	if (keep > room || (out->dropped && keep >= room))
		room--;
	for (size_t i = 0; i < n_orig; i++) {
		const jr_kv *kv = &m->attrs[i];
		if (original_ok(kv->key, kv->value) <= 0)
			continue;
		if (room == 0) {
			out->dropped++;
			continue;
		}
		put(out, a, kv->key, kv->value);
		room--;
	}
	if (out->dropped) {
		snprintf(num, sizeof num, "%zu", out->dropped);
		put(out, a, DLTOPIC_PREFIX "attributes-dropped", num);
	}
}

int dl_topic_data(const jr_dlrecord *r, jr_buf *scratch, const char **data, size_t *len)
{
	const jr_message *m = r->ev ? r->ev->message : r->msg;
	if (m) {
		*data = m->data ? m->data : "";
		*len = m->data ? m->data_len : 0;
		return 0;
	}
	if (!r->ev) {
		*data = r->raw ? r->raw : "";
		*len = r->raw ? r->raw_len : 0;
		return 0;
	}
	buf_reset(scratch);
	if (event_write_structured(scratch, r->ev) < 0)
		return -1;
	*data = scratch->data;
	*len = scratch->len;
	return 0;
}

/* ---- the sink ---- */

typedef struct dltopic dltopic;

typedef struct pub {
	jr_tag tag;
	dltopic *t;
	jr_link link; /* in flight, or queued */
	jr_sink_cb cb;
	void *arg;
	grpc_byte_buffer *bb; /* queued: the packed request */
	int64_t started_ms;
	grpcx_unary u;
} pub;

struct dltopic {
	jr_sink base;
	jr_loop *loop;
	grpc_channel *ch;
	void *publish, *get_topic;
	char *topic;
	char *params; /* x-goog-request-params value */
	size_t plen;
	char target[300];
	int64_t timeout_ms;
	int in_flight, closing;
	jr_link calls, queue; /* in flight; waiting for room */
	jr_buf data;
	jr_arena arena;
};

/* pack: the PublishRequest of one message with data and attributes, as a grpc byte buffer. */
static grpc_byte_buffer *pack(const char *topic, const char *data, size_t len,
			      const dl_topic_attrs *at, size_t *size)
{
	Google__Pubsub__V1__PubsubMessage__AttributesEntry ent[DLTOPIC_MAX_ATTRS];
	Google__Pubsub__V1__PubsubMessage__AttributesEntry *entp[DLTOPIC_MAX_ATTRS];
	for (size_t i = 0; i < at->n; i++) {
		google__pubsub__v1__pubsub_message__attributes_entry__init(&ent[i]);
		ent[i].key = (char *)at->kv[i].key;
		ent[i].value = (char *)at->kv[i].value;
		entp[i] = &ent[i];
	}
	Google__Pubsub__V1__PubsubMessage msg;
	google__pubsub__v1__pubsub_message__init(&msg);
	msg.data.data = (uint8_t *)data;
	msg.data.len = len;
	msg.n_attributes = at->n;
	msg.attributes = entp;
	Google__Pubsub__V1__PubsubMessage *msgp = &msg;
	Google__Pubsub__V1__PublishRequest rq;
	google__pubsub__v1__publish_request__init(&rq);
	rq.topic = (char *)topic;
	rq.n_messages = 1;
	rq.messages = &msgp;
	*size = google__pubsub__v1__publish_request__get_packed_size(&rq);
	if (*size > DLTOPIC_REQUEST_MAX)
		return NULL;
	grpc_slice s = grpc_slice_malloc(*size);
	google__pubsub__v1__publish_request__pack(&rq, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static void publish_done(void *arg, int ok);

/* start: p's call; -1 when it could not start (p is then the caller's to end). */
static int start(dltopic *t, pub *p)
{
	grpc_byte_buffer *bb = p->bb;
	p->bb = NULL;
	p->started_ms = loop_now_ms();
	if (grpcx_unary_start(&p->u, t->ch, t->publish, loop_cq(t->loop), t->timeout_ms, t->params,
			      t->plen, bb, &p->tag) < 0)
		return -1;
	list_append(&t->calls, &p->link);
	t->in_flight++;
	return 0;
}

/* start_queued: starts waiting publishes while there is room; one that cannot start fails. */
static void start_queued(dltopic *t)
{
	while (!list_empty(&t->queue) && t->in_flight < DLTOPIC_MAX_IN_FLIGHT) {
		pub *p = list_item(list_first(&t->queue), pub, link);
		list_remove(&p->link);
		if (t->closing || start(t, p) < 0) {
			if (p->bb)
				grpc_byte_buffer_destroy(p->bb);
			char err[DLTOPIC_ERR_TEXT];
			snprintf(err, sizeof err, "publish to %s: %s", t->topic,
				 t->closing ? "sink closed" : "call could not start");
			p->cb(p->arg, 0, err);
			free(p);
		}
	}
}

/* has_message_id: the PublishResponse in bb names at least one message id; copies the first to id. */
static int has_message_id(grpc_byte_buffer *bb, char *id, size_t cap)
{
	grpc_slice s;
	if (!bb || grpcx_message_slice(bb, DLTOPIC_MAX_RECV, &s) < 0)
		return 0;
	Google__Pubsub__V1__PublishResponse *res = google__pubsub__v1__publish_response__unpack(
		NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	int ok = res && res->n_message_ids > 0 && res->message_ids[0] && res->message_ids[0][0];
	if (ok)
		grpcx_copy_text(id, cap - 1, res->message_ids[0], strlen(res->message_ids[0]));
	if (res)
		google__pubsub__v1__publish_response__free_unpacked(res, NULL);
	return ok;
}

static void publish_done(void *arg, int ok)
{
	pub *p = arg;
	dltopic *t = p->t;
	list_remove(&p->link);
	t->in_flight--;
	char err[DLTOPIC_ERR_TEXT + 1400], id[128];
	int good = 0;
	if (!ok) {
		snprintf(err, sizeof err, "publish to %s: call batch failed", t->topic);
	} else if (p->u.status != GRPC_STATUS_OK) {
		char detail[301];
		grpcx_copy_text(detail, 300, GRPC_SLICE_START_PTR(p->u.details),
				GRPC_SLICE_LENGTH(p->u.details));
		snprintf(err, sizeof err, "publish to %s: %s: %s", t->topic,
			 grpc_code_name((int)p->u.status), detail);
	} else if (!has_message_id(p->u.recv_buf, id, sizeof id)) {
		snprintf(err, sizeof err, "publish to %s: OK without a message id", t->topic);
	} else {
		good = 1;
		if (log_enabled(JR_LOG_DEBUG)) {
			char ms[24];
			snprintf(ms, sizeof ms, "%lldms", (long long)(loop_now_ms() - p->started_ms));
			log_kv(JR_LOG_DEBUG, "DLTOPIC-PUBLISHED", "dead letter published", "topic",
			       t->topic, "message_id", id, "latency", ms, NULL);
		}
	}
	grpcx_unary_end(&p->u);
	jr_sink_cb cb = p->cb;
	void *cb_arg = p->arg;
	free(p);
	start_queued(t);
	cb(cb_arg, good, good ? NULL : err);
}

static int topic_write(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		       size_t errlen)
{
	dltopic *t = (dltopic *)s;
	if (t->closing || !cb) {
		snprintf(err, errlen, "publish to %s: %s", t->topic,
			 t->closing ? "sink closed" : "no callback for an asynchronous sink");
		return -1;
	}
	const char *data;
	size_t len, size = 0;
	if (dl_topic_data(r, &t->data, &data, &len) < 0) {
		snprintf(err, errlen,
			 "publish to %s: the event's JSON alone is over Pub/Sub's limit of %d bytes",
			 t->topic, DLTOPIC_REQUEST_MAX);
		return -1;
	}
	dl_topic_attrs at;
	dl_topic_attributes(r, &t->arena, &at);
	grpc_byte_buffer *bb = pack(t->topic, data, len, &at, &size);
	arena_free(&t->arena);
	if (t->data.cap > 1u << 20)
		buf_free(&t->data); /* a large event's text is not kept around */
	if (!bb) {
		snprintf(err, errlen,
			 "publish to %s: the dead-letter message is %zu bytes, over Pub/Sub's limit of %d bytes",
			 t->topic, size, DLTOPIC_REQUEST_MAX);
		return -1;
	}
	pub *p = jr_calloc(1, sizeof *p);
	p->tag.fn = publish_done;
	p->tag.arg = p;
	p->t = t;
	p->cb = cb;
	p->arg = arg;
	p->bb = bb;
	if (t->in_flight < DLTOPIC_MAX_IN_FLIGHT && list_empty(&t->queue)) {
		if (start(t, p) < 0) {
			free(p);
			snprintf(err, errlen, "publish to %s: call could not start", t->topic);
			return -1;
		}
		return 1;
	}
	list_append(&t->queue, &p->link);
	return 1;
}

static void topic_close(jr_sink *s)
{
	dltopic *t = (dltopic *)s;
	t->closing = 1;
	start_queued(t); /* fails every queued publish */
	for (jr_link *l = t->calls.next; l != &t->calls; l = l->next)
		grpc_call_cancel(list_item(l, pub, link)->u.call, NULL);
	while (t->in_flight > 0)
		loop_run_once(t->loop, -1);
	grpc_channel_destroy(t->ch);
	buf_free(&t->data);
	arena_free(&t->arena);
	free(t->params);
	free(t->topic);
	free(t);
}

jr_sink *dl_topic_open(jr_loop *l, const char *topic, int64_t timeout_ms, char *err,
		      size_t errlen)
{
	if (!topic || !*topic || strlen(topic) > DLTOPIC_MAX_TOPIC) {
		snprintf(err, errlen, "no usable dead-letter topic name");
		return NULL;
	}
	char target[300];
	grpc_channel *ch = grpcx_pubsub_channel(NULL, DLTOPIC_MAX_RECV, target, sizeof target, err,
						errlen);
	if (!ch)
		return NULL;
	dltopic *t = jr_calloc(1, sizeof *t);
	list_init(&t->calls);
	list_init(&t->queue);
	t->base.name = "topic";
	t->base.write = topic_write;
	t->base.close = topic_close;
	t->loop = l;
	t->ch = ch;
	t->publish = grpc_channel_register_call(ch, PUBLISH_METHOD, NULL, NULL);
	t->get_topic = grpc_channel_register_call(ch, GET_TOPIC_METHOD, NULL, NULL);
	t->topic = jr_strdup(topic);
	size_t n = strlen(topic);
	t->params = jr_malloc(sizeof "topic=" + 3 * n);
	memcpy(t->params, "topic=", 6);
	t->plen = 6 + pct_encode(topic, n, t->params + 6);
	t->timeout_ms = timeout_ms;
	snprintf(t->target, sizeof t->target, "%s", target);
	/* an event's structured JSON: the event is at most limits.event_bytes; past 10 MB it cannot be published anyway */
	buf_init(&t->data, DLTOPIC_REQUEST_MAX);
	arena_init(&t->arena);
	return &t->base;
}

const char *dl_topic_target(const jr_sink *s)
{
	return ((const dltopic *)s)->target;
}

typedef struct check_call {
	jr_tag tag;
	int done;
} check_call;

static void check_done(void *arg, int ok)
{
	(void)ok;
	((check_call *)arg)->done = 1;
}

int dl_topic_check(jr_sink *s, int64_t timeout_ms, char *err, size_t errlen)
{
	dltopic *t = (dltopic *)s;
	Google__Pubsub__V1__GetTopicRequest rq;
	google__pubsub__v1__get_topic_request__init(&rq);
	rq.topic = t->topic;
	size_t n = google__pubsub__v1__get_topic_request__get_packed_size(&rq);
	grpc_slice sl = grpc_slice_malloc(n);
	google__pubsub__v1__get_topic_request__pack(&rq, GRPC_SLICE_START_PTR(sl));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	check_call c = {{check_done, NULL}, 0};
	c.tag.arg = &c;
	grpcx_unary u;
	if (grpcx_unary_start(&u, t->ch, t->get_topic, loop_cq(t->loop), timeout_ms, t->params,
			      t->plen, bb, &c.tag) < 0) {
		snprintf(err, errlen, "GetTopic could not start");
		return GRPC_STATUS_INTERNAL;
	}
	while (!c.done)
		loop_run_once(t->loop, -1);
	int code = (int)u.status;
	grpcx_copy_text(err, errlen - 1, GRPC_SLICE_START_PTR(u.details), GRPC_SLICE_LENGTH(u.details));
	grpcx_unary_end(&u);
	return code;
}
