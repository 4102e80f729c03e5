/*
 * decode.h — every input form of docs/decoding.md into jr_event.
 *
 * Each decoder reports through one callback, called once per event found:
 * with the event (ownership passes to the callback) or with ev == NULL and a
 * reason naming what was wrong. `origin` names the input ("a.ndjson:3") and is
 * copied into each event and prefixed to no message (the caller does that).
 * A batch yields one call per element; a bad element costs only itself.
 */
#ifndef JR_DECODE_H
#define JR_DECODE_H

#include <stddef.h>

#include "config.h"
#include "event.h"
#include "header.h"

typedef void (*jr_decode_cb)(void *arg, jr_event *ev, const char *err);

typedef struct jr_decode_ctx {
	const jr_limits *limits;
	const char *origin;     /* copied into each event */
	const char *topic;      /* config `topic:` for rule 3 of decode_message, may be NULL */
	jr_decode_cb cb;
	void *arg;
} jr_decode_ctx;

/*
 * decode_json_doc: one JSON document of any JSON form: a structured
 * CloudEvent, a batch array, a Pub/Sub push body ({"message":...}), or a
 * jobrelay dead-letter record ({"failed_at":...,"event":...}: the original
 * event, or its Pub/Sub message when the record has one; ev->record is then
 * the parsed record). Returns the number of callbacks made.
 */
int decode_json_doc(const jr_decode_ctx *dc, const char *text, size_t len);

/* decode_batch_too_large: err is the error of a batch past limits.batch_events (refused whole). */
int decode_batch_too_large(const char *err);


/*
 * Every decoder sets ev->trace (event.h) to the first valid trace context of:
 * the event's `traceparent` extension, the HTTP request's `traceparent`
 * header (else its X-Cloud-Trace-Context), the Pub/Sub message's
 * `googclient_traceparent` attribute. Invalid values are passed over.
 */

/*
 * decode_http: an HTTP request body with its headers: binary, structured,
 * batch, push wrapped (JSON with "message") or unwrapped (x-goog-pubsub-*
 * headers). path is the request path (may be NULL). Returns callbacks made.
 */
int decode_http(const jr_decode_ctx *dc, const jr_header *h, size_t n_headers,
		const char *path, const char *body, size_t len);

/*
 * decode_http_capture: a `.http` capture: request line, headers, blank line,
 * body (CRLF or LF). Returns callbacks made.
 */
int decode_http_capture(const jr_decode_ctx *dc, const char *text, size_t len);

/*
 * decode_message: turns ev->message (already filled, in ev's arena) into the
 * CloudEvent by the three rules of docs/decoding.md, and sets ev->trace (the
 * event's traceparent extension, else what ev->trace held, else the message's
 * googclient_traceparent attribute; the first valid). Returns 0, or -1 with a
 * reason in err[errlen].
 */
int decode_message(jr_event *ev, const jr_limits *lim, const char *topic, char *err,
		   size_t errlen);

/*
 * decode_validate: checks ev against CloudEvents 1.0 (required attributes
 * non-empty, RFC 3339 time, extension names). 0, or -1 with a reason.
 */
int decode_validate(const jr_event *ev, char *err, size_t errlen);

#endif
