/*
 * event.h — the CloudEvent that every source decodes into.
 *
 * One jr_event owns an arena; every string and tree reachable from it lives
 * there, and event_free releases it all at once. Strings are NUL-terminated.
 * Context attributes are kept in their own fields; extensions keep their JSON
 * value (string, number or boolean) so a structured re-encoding is faithful.
 */
#ifndef JR_EVENT_H
#define JR_EVENT_H

#include <stddef.h>

#include "base64.h"
#include "json.h"
#include "mem.h"

typedef enum jr_data_kind {
	JR_DATA_NONE,   /* no data */
	JR_DATA_JSON,   /* data_json holds the tree; data/data_len its text when known */
	JR_DATA_TEXT,   /* data/data_len: text (e.g. text/plain, application/xml) */
	JR_DATA_BINARY, /* data/data_len: bytes (from data_base64, or a binary body) */
} jr_data_kind;

typedef struct jr_kv {
	const char *key;
	const char *value;
} jr_kv;

typedef struct jr_ext {
	const char *name;      /* lower-case name as validated */
	const jr_json *value;  /* STRING, NUMBER, TRUE or FALSE */
} jr_ext;

/* A Pub/Sub message the event came from (pull, push), when there was one. */
typedef struct jr_message {
	const char *id;
	const char *publish_time;   /* RFC 3339, may be NULL */
	const char *ordering_key;   /* may be NULL */
	const char *subscription;   /* may be NULL */
	const char *data;           /* decoded bytes */
	size_t data_len;
	jr_kv *attrs;
	size_t n_attrs;
	int delivery_attempt;       /* 0 when not reported */
} jr_message;

typedef struct jr_event {
	jr_arena arena;
	/* context attributes (NULL when absent); specversion is always "1.0" after decoding */
	const char *specversion;
	const char *id;
	const char *source;
	const char *type;
	const char *subject;
	const char *time;
	const char *datacontenttype;
	const char *dataschema;
	jr_ext *ext;
	size_t n_ext;
	/* data */
	jr_data_kind data_kind;
	const char *data;
	size_t data_len;
	const jr_json *data_json;
	/* origin */
	const jr_message *message;  /* NULL unless from Pub/Sub */
	const char *origin;         /* "file.ndjson:12", "pull", "http" — for logs and dead letters */
	const char *trace;          /* a valid traceparent or X-Cloud-Trace-Context (decode.h), or NULL */
	const jr_json *record;      /* the dead-letter record it was decoded from (decode.h), or NULL */
	/* the Pub/Sub message body for routes with payload: (route_payload), decoded once */
	int payload_done;           /* 1 once route_payload looked at the event */
	int payload_is_json;        /* payload is the parsed body */
	const jr_json *payload;     /* the body: JSON, or else a string node of its text; NULL: none */
	const char *payload_err;    /* why the body is not JSON (or not text), NULL when it is */
} jr_event;

/* event_new: an empty event with its own arena; free with event_free. */
jr_event *event_new(void);
/* event_free: releases ev and everything in its arena; NULL is a no-op. */
void event_free(jr_event *ev);
/* event_ext: the extension named name, or NULL. */
const jr_json *event_ext(const jr_event *ev, const char *name);
/*
 * event_ext_view: the extension named name as filters read it (filter.h,
 * cesql.h): ev's own extension; else, when payload is not NULL (the body a
 * route with payload: decoded, route_payload), a virtual one made from it:
 * `payload` is the body itself when it is a string, number or boolean (a
 * text body under payload: auto, or such a JSON value), and `payloadNAME` the
 * first top-level member of an object body whose value is a string, number or
 * boolean and whose key, lower-cased with every character but [a-z0-9]
 * dropped, is NAME (orderId: payloadorderid). NULL when none. Allocates
 * nothing: the value is the body's own node.
 */
const jr_json *event_ext_view(const jr_event *ev, const jr_json *payload, const char *name);
/* event_attr: context attribute or extension by name, as a string; numbers
 * and booleans render as their JSON text into the arena. NULL when absent. */
const char *event_attr(jr_event *ev, const char *name);
/* The context attributes by number, for event_attr_id and event_attr_by_id. */
enum {
	JR_ATTR_SPECVERSION = 1,
	JR_ATTR_ID,
	JR_ATTR_SOURCE,
	JR_ATTR_TYPE,
	JR_ATTR_SUBJECT,
	JR_ATTR_TIME,
	JR_ATTR_DATACONTENTTYPE,
	JR_ATTR_DATASCHEMA,
};
/*
 * event_attr_id: the JR_ATTR_* number of a context attribute name, 0 for any
 * other name. For code that looks a name up once (when a config is loaded)
 * and reads it per event with event_attr_by_id.
 */
int event_attr_id(const char *name);
/* event_attr_by_id: the context attribute numbered id (JR_ATTR_*), or NULL when absent. */
static inline const char *event_attr_by_id(const jr_event *ev, int id)
{
	switch (id) {
	case JR_ATTR_SPECVERSION: return ev->specversion;
	case JR_ATTR_ID: return ev->id;
	case JR_ATTR_SOURCE: return ev->source;
	case JR_ATTR_TYPE: return ev->type;
	case JR_ATTR_SUBJECT: return ev->subject;
	case JR_ATTR_TIME: return ev->time;
	case JR_ATTR_DATACONTENTTYPE: return ev->datacontenttype;
	case JR_ATTR_DATASCHEMA: return ev->dataschema;
	default: return NULL;
	}
}
/* event_msg_attr: a Pub/Sub message attribute, or NULL. */
const char *event_msg_attr(const jr_event *ev, const char *key);

/*
 * event_write_structured: appends ev as a structured-mode CloudEvent (JSON
 * format): JSON data as "data", text as a "data" string, binary as
 * "data_base64". -1 when out's max is reached.
 */
int event_write_structured(jr_buf *out, const jr_event *ev);
/* event_write_message: appends the Pub/Sub message as {"data"(base64),"attributes","messageId","publishTime","orderingKey"}. */
int event_write_message(jr_buf *out, const jr_message *m);

#endif
