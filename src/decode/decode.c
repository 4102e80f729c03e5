/*
 * decode.c — JSON documents into events: structured events, batches, Pub/Sub
 * push bodies and jobrelay's dead-letter records.
 *
 * A single event is parsed straight into the arena of the event that will
 * own it, so the attribute strings and the data tree are never copied. A
 * batch is parsed once into a scratch arena and each element is copied into
 * its own event's arena, so one event can be freed without the others and a
 * bad element costs only itself. Every form reports through dec_emit: one
 * callback per event or per rejected input.
 */
#include "decode_int.h"

#include <stdio.h>
#include <string.h>


#define BATCH_TOO_LARGE "batch of "

int decode_batch_too_large(const char *err)
{
	return err && !strncmp(err, BATCH_TOO_LARGE, sizeof BATCH_TOO_LARGE - 1) &&
	       strstr(err, " events is over the limit of ");
}

void dec_init(dec_ctx *x, const jr_decode_ctx *dc)
{
	x->dc = dc;
	dec_limits(dc->limits, &x->lim);
	x->topic = dc->topic;
	x->trace = NULL;
}

jr_event *dec_event(const dec_ctx *x)
{
	jr_event *ev = event_new();
	if (x->dc->origin)
		ev->origin = arena_strdup(&ev->arena, x->dc->origin);
	if (x->trace)
		ev->trace = arena_strdup(&ev->arena, x->trace);
	return ev;
}

int dec_emit(const dec_ctx *x, jr_event *ev, int rc, const char *err)
{
	if (rc < 0) {
		event_free(ev);
		x->dc->cb(x->dc->arg, NULL, err && *err ? err : "invalid event");
		return 1;
	}
	dec_trace(ev);
	x->dc->cb(x->dc->arg, ev, NULL);
	return 1;
}

int dec_fail(const dec_ctx *x, const char *err)
{
	x->dc->cb(x->dc->arg, NULL, err);
	return 1;
}

/* json_copy: a deep copy of v into a (strings and keys too). */
static jr_json *json_copy(jr_arena *a, const jr_json *v)
{
	jr_json *c = json_new(a, v->type);
	switch (v->type) {
	case JR_JSON_NUMBER:
	case JR_JSON_STRING:
		c->s = arena_strndup(a, v->s, v->n);
		c->n = v->n;
		break;
	case JR_JSON_ARRAY:
		for (size_t i = 0; i < v->n; i++)
			json_arr_add(a, c, json_copy(a, v->items[i]));
		break;
	case JR_JSON_OBJECT:
		for (size_t i = 0; i < v->n; i++)
			json_obj_add(a, c, arena_strndup(a, v->keys[i], v->key_lens[i]),
				     v->key_lens[i], json_copy(a, v->items[i]));
		break;
	default:
		break;
	}
	return c;
}

static int batch_element(const dec_ctx *x, const jr_json *el, size_t i)
{
	char err[DECODE_ERRLEN + 48], why[DECODE_ERRLEN];
	jr_event *ev = dec_event(x);
	int rc = -1;
	if (el->type != JR_JSON_OBJECT)
		snprintf(why, sizeof why, "not a JSON object");
	else
		rc = ce_from_json(ev, json_copy(&ev->arena, el), &x->lim, why, sizeof why);
	if (rc < 0)
		snprintf(err, sizeof err, "batch element %zu: %s", i, why);
	return dec_emit(x, ev, rc, err);
}

static int dec_batch(const dec_ctx *x, const char *text, size_t len)
{
	char err[DECODE_ERRLEN];
	jr_arena scratch;
	arena_init(&scratch);
	const jr_json *root = jsonparse(&scratch, text, len, x->lim.json_depth, err, sizeof err);
	int calls = 0;
	if (!root)
		calls = dec_fail(x, err);
	else if (root->type != JR_JSON_ARRAY)
		calls = dec_fail(x, "a batch must be a JSON array");
	else if (root->n > (size_t)x->lim.batch_events) {
		/* the whole batch is refused: none of its events may run (a resend would run them twice) */
		snprintf(err, sizeof err, BATCH_TOO_LARGE "%zu events is over the limit of %d events",
			 root->n, x->lim.batch_events);
		calls = dec_fail(x, err);
	} else
		for (size_t i = 0; i < root->n; i++)
			calls += batch_element(x, root->items[i], i);
	arena_free(&scratch);
	return calls;
}

/* pubsub_topic: "projects/P/topics/T" out of an Eventarc Pub/Sub source, or NULL. */
static const char *pubsub_topic(const char *source)
{
	static const char pre[] = "//pubsub.googleapis.com/";
	if (!source || strncmp(source, pre, sizeof pre - 1) != 0)
		return NULL;
	source += sizeof pre - 1;
	return strstr(source, "/topics/") ? source : NULL;
}

static int dec_object(jr_event *ev, const jr_json *root, const dec_ctx *x, dec_want want,
		      char *err, size_t errlen);

/*
 * dead_letter_raw: the input of a record that never decoded ("raw", or
 * "raw_base64" for input that was not UTF-8), decoded again as a JSON
 * document of any form but a dead-letter record; an input that still does
 * not decode is refused with its reason.
 */
static int dead_letter_raw(jr_event *ev, const jr_json *raw, const jr_json *b64,
			   const dec_ctx *x, char *err, size_t errlen)
{
	const jr_json *v = raw ? raw : b64;
	if (v->type != JR_JSON_STRING) {
		snprintf(err, errlen, "dead-letter record: %s must be a string",
			 raw ? "raw" : "raw_base64");
		return -1;
	}
	const char *text = v->s;
	long len = (long)v->n;
	if (!raw && (len = base64_decode(&ev->arena, v->s, v->n, (char **)&text)) < 0) {
		snprintf(err, errlen, "dead-letter record: raw_base64 is not base64");
		return -1;
	}
	char why[DECODE_ERRLEN];
	const jr_json *root = jsonparse(&ev->arena, text, (size_t)len, x->lim.json_depth, why,
					 sizeof why);
	if (root && root->type == JR_JSON_OBJECT && json_get(root, "failed_at")) {
		snprintf(err, errlen, "dead-letter record: its raw input is a dead-letter record");
		return -1;
	}
	if (root && dec_object(ev, root, x, DEC_ANY, why, sizeof why) == 0)
		return 0;
	snprintf(err, errlen, "dead-letter record of undecodable input: %.200s", why);
	return -1;
}

/* dead_letter: re-dispatches the original event of a dead-letter record. */
static int dead_letter(jr_event *ev, const jr_json *root, const dec_ctx *x, char *err,
		       size_t errlen)
{
	const jr_json *orig = json_get(root, "event");
	const jr_json *msg = json_get(root, "message");
	ev->record = root; /* in ev's arena: its route, error and failed_at (redrive) */
	if (!msg || msg->type != JR_JSON_OBJECT) {
		const jr_json *raw = json_get(root, "raw"), *b64 = json_get(root, "raw_base64");
		if (!orig && (raw || b64))
			return dead_letter_raw(ev, raw, b64, x, err, errlen);
		if (!orig) {
			snprintf(err, errlen, "dead-letter record has no event and no message");
			return -1;
		}
		return ce_from_json(ev, orig, &x->lim, err, errlen);
	}
	const char *sub = json_get_str(msg, "subscription");
	if (!sub)
		sub = json_get_str(json_get(orig, "data"), "subscription");
	const char *topic = pubsub_topic(json_get_str(orig, "source"));
	if (!msg_from_json(ev, msg, sub, &x->lim, err, errlen))
		return -1;
	return decode_message(ev, &x->lim, topic ? topic : x->topic, err, errlen);
}

/* dec_object: a parsed JSON object in ev's arena, by its form. */
static int dec_object(jr_event *ev, const jr_json *root, const dec_ctx *x, dec_want want,
		      char *err, size_t errlen)
{
	if (root->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	if (want == DEC_EVENT || json_get(root, "specversion"))
		return ce_from_json(ev, root, &x->lim, err, errlen);
	const jr_json *m = json_get(root, "message");
	if (m && m->type == JR_JSON_OBJECT && !json_get(root, "failed_at"))
		return msg_push(ev, root, x, err, errlen);
	if (json_get(root, "failed_at"))
		return dead_letter(ev, root, x, err, errlen);
	return ce_from_json(ev, root, &x->lim, err, errlen);
}

int dec_json(const dec_ctx *x, const char *text, size_t len, dec_want want)
{
	char err[DECODE_ERRLEN];
	if (len > x->lim.event_bytes) {
		snprintf(err, sizeof err, "document of %zu bytes is over the limit of %zu bytes",
			 len, x->lim.event_bytes);
		return dec_fail(x, err);
	}
	size_t ws = dec_skip_ws(text, len);
	if (want == DEC_BATCH || (want == DEC_ANY && ws < len && text[ws] == '['))
		return dec_batch(x, text, len);
	jr_event *ev = dec_event(x);
	const jr_json *root = jsonparse(&ev->arena, text, len, x->lim.json_depth, err, sizeof err);
	int rc = root ? dec_object(ev, root, x, want, err, sizeof err) : -1;
	return dec_emit(x, ev, rc, err);
}

int decode_json_doc(const jr_decode_ctx *dc, const char *text, size_t len)
{
	dec_ctx x;
	dec_init(&x, dc);
	return dec_json(&x, text, len, DEC_ANY);
}
