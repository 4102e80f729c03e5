/*
 * decode_msg.c — a Pub/Sub message into a CloudEvent (docs/decoding.md).
 *
 * Rule 1: attributes hold ce-specversion: binary mode of the CloudEvents
 * Pub/Sub binding (ce-* attributes, the content-type attribute, the data).
 * Rule 2: the content-type attribute starts with application/cloudevents, or
 * the data is a JSON object with specversion: structured mode.
 * Rule 3: anything else becomes the event Eventarc would deliver for it
 * (google.cloud.pubsub.topic.v1.messagePublished, MessagePublishedData).
 * The message itself stays on the event (ev->message) for routes that match
 * message attributes.
 */
#include "decode_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

#define MP_TYPE "google.cloud.pubsub.topic.v1.messagePublished"
#define PUBSUB_SERVICE "//pubsub.googleapis.com/"

static const char *msg_attr_ci(const jr_message *m, const char *key)
{
	for (size_t i = 0; i < m->n_attrs; i++)
		if (strcasecmp(m->attrs[i].key, key) == 0)
			return m->attrs[i].value;
	return NULL;
}

/* str_either: the string member named a, else b; NULL when neither is a string. */
static const char *str_either(const jr_json *o, const char *a, const char *b)
{
	const char *s = json_get_str(o, a);
	return s ? s : json_get_str(o, b);
}

/* has_nul: whether the string member named a or b holds a NUL byte (its C string would be cut). */
static int has_nul(const jr_json *o, const char *a, const char *b)
{
	const jr_json *v = json_get(o, a);
	if (!v || v->type != JR_JSON_STRING)
		v = json_get(o, b);
	return v && v->type == JR_JSON_STRING && strlen(v->s) != v->n;
}

/* msg_text_one: s (may be NULL) is valid UTF-8 without a NUL byte; else the reason, naming what. */
static int msg_text_one(const char *what, const char *key, const char *s, char *err,
			size_t errlen)
{
	size_t at;
	utf8_flaw f = s ? utf8_text_check(s, strlen(s), &at) : UTF8_CLEAN;
	if (f != UTF8_BAD && f != UTF8_NUL)
		return 0;
	snprintf(err, errlen, "message %s%s holds %s at byte %zu", what, key ? key : "",
		 utf8_flaw_text(f), at);
	return -1;
}

/*
 * msg_text: every string of the message is valid UTF-8 without a NUL byte
 * (a NUL cannot be kept, and whatever is kept must be written back readable).
 * Control characters are allowed in plain message attributes: they are not
 * CloudEvents attributes (the ce-* ones are checked as such).
 */
static int msg_text(const jr_message *m, char *err, size_t errlen)
{
	if (msg_text_one("id", NULL, m->id, err, errlen) < 0 ||
	    msg_text_one("publish time", NULL, m->publish_time, err, errlen) < 0 ||
	    msg_text_one("ordering key", NULL, m->ordering_key, err, errlen) < 0 ||
	    msg_text_one("subscription", NULL, m->subscription, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < m->n_attrs; i++) {
		const char *k = m->attrs[i].key;
		if (msg_text_one("attribute name", NULL, k, err, errlen) < 0 ||
		    msg_text_one("attribute ", utf8_valid(k, strlen(k)) ? k : "?", m->attrs[i].value,
				 err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int msg_attrs(jr_event *ev, jr_message *m, const jr_json *attrs, const jr_limits *lim,
		     char *err, size_t errlen)
{
	if (!attrs || attrs->type == JR_JSON_NULL)
		return 0;
	if (attrs->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "message attributes must be a JSON object");
		return -1;
	}
	if (attrs->n > (size_t)lim->attributes) {
		snprintf(err, errlen, "more than %d message attributes", lim->attributes);
		return -1;
	}
	m->attrs = arena_alloc(&ev->arena, (attrs->n ? attrs->n : 1) * sizeof *m->attrs);
	for (size_t i = 0; i < attrs->n; i++) {
		const jr_json *v = attrs->items[i];
		if (v->type != JR_JSON_STRING) {
			snprintf(err, errlen, "message attribute %.64s is not a string",
				 attrs->keys[i]);
			return -1;
		}
		if (strlen(attrs->keys[i]) != attrs->key_lens[i] || strlen(v->s) != v->n) {
			snprintf(err, errlen, "message attribute %.64s holds a NUL byte",
				 attrs->keys[i]);
			return -1;
		}
		m->attrs[i].key = attrs->keys[i];
		m->attrs[i].value = v->s;
	}
	m->n_attrs = attrs->n;
	return 0;
}

static int msg_data(jr_event *ev, jr_message *m, const jr_json *d, char *err, size_t errlen)
{
	if (!d || d->type == JR_JSON_NULL) {
		m->data = "";
		return 0;
	}
	char *out;
	long n = d->type == JR_JSON_STRING ? base64_decode(&ev->arena, d->s, d->n, &out) : -1;
	if (n < 0) {
		snprintf(err, errlen, "message data is not a base64 string");
		return -1;
	}
	m->data = out;
	m->data_len = (size_t)n;
	return 0;
}

jr_message *msg_from_json(jr_event *ev, const jr_json *mj, const char *subscription,
			  const jr_limits *lim, char *err, size_t errlen)
{
	if (!mj || mj->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "Pub/Sub message must be a JSON object");
		return NULL;
	}
	if (has_nul(mj, "messageId", "message_id") || has_nul(mj, "orderingKey", "ordering_key") ||
	    has_nul(mj, "publishTime", "publish_time")) {
		snprintf(err, errlen, "Pub/Sub message id, publish time or ordering key holds a NUL byte");
		return NULL;
	}
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	m->id = str_either(mj, "messageId", "message_id");
	m->publish_time = str_either(mj, "publishTime", "publish_time");
	m->ordering_key = str_either(mj, "orderingKey", "ordering_key");
	m->subscription = subscription;
	if (!m->id || !*m->id) {
		snprintf(err, errlen, "Pub/Sub message has no messageId");
		return NULL;
	}
	if (m->ordering_key && !*m->ordering_key)
		m->ordering_key = NULL;
	if (msg_attrs(ev, m, json_get(mj, "attributes"), lim, err, errlen) < 0 ||
	    msg_data(ev, m, json_get(mj, "data"), err, errlen) < 0)
		return NULL;
	ev->message = m;
	return m;
}

static int delivery_attempt(const jr_json *root)
{
	const jr_json *v = json_get(root, "deliveryAttempt");
	if (!v)
		v = json_get(root, "delivery_attempt");
	if (!v || v->type != JR_JSON_NUMBER)
		return 0;
	long n = strtol(v->s, NULL, 10);
	return n > 0 && n < 1000000 ? (int)n : 0;
}

int msg_push(jr_event *ev, const jr_json *root, const dec_ctx *x, char *err, size_t errlen)
{
	if (json_get(root, "context") || json_get(root, "data")) {
		snprintf(err, errlen, "ambiguous body: a Pub/Sub push message next to "
				      "\"context\" or \"data\"");
		return -1;
	}
	const jr_json *sub = json_get(root, "subscription");
	if (sub && sub->type != JR_JSON_STRING) {
		snprintf(err, errlen, "push subscription must be a string");
		return -1;
	}
	jr_message *m = msg_from_json(ev, json_get(root, "message"), sub ? sub->s : NULL,
				      &x->lim, err, errlen);
	if (!m)
		return -1;
	m->delivery_attempt = delivery_attempt(root);
	return decode_message(ev, &x->lim, x->topic, err, errlen);
}

/* rule_binary: rule 1, the ce-* attributes. */
static int rule_binary(jr_event *ev, const jr_message *m, const jr_limits *lim, char *err,
		       size_t errlen)
{
	jr_kv *ce = arena_alloc(&ev->arena, (m->n_attrs + 1) * sizeof *ce);
	size_t n = 0;
	for (size_t i = 0; i < m->n_attrs; i++) {
		const char *k = m->attrs[i].key;
		if (strncasecmp(k, "ce-", 3) != 0)
			continue;
		char *name = arena_strdup(&ev->arena, k + 3);
		for (char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		ce[n].key = name;
		ce[n].value = m->attrs[i].value;
		n++;
	}
	const char *ct = msg_attr_ci(m, "content-type");
	return ce_from_pairs(ev, ce, n, ct, m->data, m->data_len, lim, err, errlen);
}

static int has_bytes(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++) {
		const char *q = memchr(p + i, needle[0], n - i - k + 1);
		if (!q)
			return 0;
		i = (size_t)(q - p);
		if (memcmp(q, needle, k) == 0)
			return 1;
	}
	return 0;
}

/* rule_structured: rule 2; returns 1 when the data is not a structured event. */
static int rule_structured(jr_event *ev, const jr_message *m, const jr_limits *lim, int forced,
			   char *err, size_t errlen)
{
	if (!forced) {
		size_t ws = dec_skip_ws(m->data, m->data_len);
		if (ws >= m->data_len || m->data[ws] != '{' ||
		    !has_bytes(m->data + ws, m->data_len - ws, "\"specversion\""))
			return 1;
	}
	char why[DECODE_ERRLEN];
	const jr_json *root = jsonparse(&ev->arena, m->data, m->data_len, lim->json_depth, why,
					sizeof why);
	if (!forced && (!root || !json_get(root, "specversion")))
		return 1;
	if (!root) {
		snprintf(err, errlen, "structured message data: %s", why);
		return -1;
	}
	return ce_from_json(ev, root, lim, err, errlen);
}

static jr_json *str_ref(jr_arena *a, const char *s)
{
	jr_json *v = json_new(a, JR_JSON_STRING);
	v->s = s;
	v->n = strlen(s);
	return v;
}

static void put_str(jr_arena *a, jr_json *o, const char *k, const char *v)
{
	if (v)
		json_obj_add(a, o, k, strlen(k), str_ref(a, v));
}

static jr_json *mp_message(jr_arena *a, const jr_message *m)
{
	jr_json *o = json_new(a, JR_JSON_OBJECT);
	if (m->n_attrs) {
		jr_json *at = json_new(a, JR_JSON_OBJECT);
		for (size_t i = 0; i < m->n_attrs; i++)
			put_str(a, at, m->attrs[i].key, m->attrs[i].value);
		json_obj_add(a, o, "attributes", 10, at);
	}
	if (m->data_len) {
		jr_buf b;
		buf_init(&b, 0);
		base64_encode(&b, m->data, m->data_len);
		json_obj_add(a, o, "data", 4, json_new_string(a, b.data, b.len));
		buf_free(&b);
	}
	put_str(a, o, "messageId", m->id);
	put_str(a, o, "message_id", m->id);
	put_str(a, o, "publishTime", m->publish_time);
	put_str(a, o, "publish_time", m->publish_time);
	put_str(a, o, "orderingKey", m->ordering_key);
	return o;
}

static const char *mp_source(jr_arena *a, const char *topic, const char *sub)
{
	const char *name = topic && *topic ? topic : sub;
	if (!name || !*name)
		return NULL;
	if (strncmp(name, "//", 2) == 0)
		return name;
	size_t pre = sizeof PUBSUB_SERVICE - 1, n = strlen(name);
	char *s = arena_alloc(a, pre + n + 1);
	memcpy(s, PUBSUB_SERVICE, pre);
	memcpy(s + pre, name, n + 1);
	return s;
}

/* rule_published: rule 3, the Eventarc messagePublished event. */
static int rule_published(jr_event *ev, const jr_message *m, const char *topic, char *err,
			  size_t errlen)
{
	jr_arena *a = &ev->arena;
	ev->source = mp_source(a, topic, m->subscription);
	if (!ev->source) {
		snprintf(err, errlen, "cannot name the event source: no topic is configured "
				      "and the message names no subscription");
		return -1;
	}
	ev->specversion = "1.0";
	ev->type = MP_TYPE;
	ev->id = m->id;
	ev->time = m->publish_time;
	ev->datacontenttype = "application/json";
	jr_json *d = json_new(a, JR_JSON_OBJECT);
	json_obj_add(a, d, "message", 7, mp_message(a, m));
	put_str(a, d, "subscription", m->subscription);
	if (m->delivery_attempt > 0) {
		char num[16];
		int n = snprintf(num, sizeof num, "%d", m->delivery_attempt);
		jr_json *v = json_new_string(a, num, (size_t)n);
		v->type = JR_JSON_NUMBER;
		json_obj_add(a, d, "deliveryAttempt", 15, v);
	}
	ev->data_kind = JR_DATA_JSON;
	ev->data_json = d;
	return decode_validate(ev, err, errlen);
}

static int msg_limits(const jr_message *m, const jr_limits *lim, char *err, size_t errlen)
{
	if (m->n_attrs > (size_t)lim->attributes) {
		snprintf(err, errlen, "more than %d message attributes", lim->attributes);
		return -1;
	}
	if (m->data_len > lim->event_bytes) {
		snprintf(err, errlen, "message data of %zu bytes is over the limit of %zu bytes",
			 m->data_len, lim->event_bytes);
		return -1;
	}
	if (!m->id || !*m->id) {
		snprintf(err, errlen, "Pub/Sub message has no messageId");
		return -1;
	}
	return 0;
}

/* message_event: decode_message but for the trace. */
static int message_event(jr_event *ev, const jr_limits *lim_in, const char *topic, char *err,
			 size_t errlen)
{
	jr_limits lim;
	dec_limits(lim_in, &lim);
	if (!ev->message) {
		snprintf(err, errlen, "no Pub/Sub message");
		return -1;
	}
	jr_message view = *ev->message; /* data never NULL below */
	const jr_message *m = &view;
	if (!view.data)
		view.data = "";
	if (msg_limits(m, &lim, err, errlen) < 0 || msg_text(m, err, errlen) < 0)
		return -1;
	if (msg_attr_ci(m, "ce-specversion"))
		return rule_binary(ev, m, &lim, err, errlen);
	const char *ct = msg_attr_ci(m, "content-type");
	int ce_ct = ct && strncasecmp(ct, "application/cloudevents", 23) == 0;
	if (ce_ct && !ce_type_is(ct, "application/cloudevents+json")) {
		snprintf(err, errlen, "unsupported CloudEvents format \"%.64s\" in a Pub/Sub message",
			 ct);
		return -1;
	}
	int rc = rule_structured(ev, m, &lim, ce_ct, err, errlen);
	if (rc <= 0)
		return rc;
	return rule_published(ev, m, topic, err, errlen);
}

int decode_message(jr_event *ev, const jr_limits *lim_in, const char *topic, char *err,
		   size_t errlen)
{
	if (message_event(ev, lim_in, topic, err, errlen) < 0)
		return -1;
	dec_trace(ev);
	return 0;
}
