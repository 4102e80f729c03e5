/*
 * deadletter.h — dead letters: the record, its JSON form, and the sinks that
 * take it, behind one small table of functions.
 *
 * A sink takes a record (the event, the route, why it failed) and makes it
 * durable: the NDJSON file sink (src/deadletter/dl_file.c) writes and flushes
 * before it answers; the Pub/Sub topic sink (src/deadletter/dl_topic.c)
 * answers when Publish returns; src/deadletter/dl_sinks.c makes the
 * configured one, or both behind one sink.
 * An event is acked or counted as dead-lettered only after every configured
 * sink confirmed.
 */
#ifndef JR_DEADLETTER_H
#define JR_DEADLETTER_H

#include <stdint.h>

#include "errclass.h"
#include "event.h"
#include "mem.h"

typedef struct jr_dlrecord {
	const jr_event *ev;      /* NULL when the input could not be decoded at all */
	const char *raw;         /* the undecodable input (bounded), when ev is NULL */
	size_t raw_len;
	/* with raw: the Pub/Sub message that did not decode, when it came from one (pull) */
	const jr_message *msg;
	const char *origin;      /* where the event came from ("file:line", "pull", "http") */
	const char *route;       /* NULL for unrouted and undecodable events */
	int attempts;
	jr_errclass cls;
	const char *code;        /* gRPC code name, or "INVALID_EVENT", "UNROUTED" */
	const char *message;     /* truncated to 1024 bytes by the sink */
	int64_t failed_at_ms;    /* wall clock, Unix ms */
} jr_dlrecord;

/* Called once when a pending write ends; ok = 1 when durable. */
typedef void (*jr_sink_cb)(void *arg, int ok, const char *err);

typedef struct jr_sink jr_sink;
struct jr_sink {
	const char *name; /* "file", "topic", "file+topic": the metric label */
	/*
	 * counted: 1 when the sink counts its own writes in
	 * jobrelay_dead_letter_writes_total, one series per member sink (the
	 * composite of src/deadletter/dl_sinks.c); the dispatcher then does not.
	 */
	int counted;
	/*
	 * write: 0 when the record is durable on return; -1 with err filled when
	 * it failed now; 1 when cb will be called later (exactly once). cb is
	 * never called from inside write.
	 */
	int (*write)(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		     size_t errlen);
	/* close: flushes and frees the sink. */
	void (*close)(jr_sink *s);
};

/* DEADLETTER_MESSAGE_MAX: error messages are cut to this many bytes. */
#define DEADLETTER_MESSAGE_MAX 1024


/*
 * deadletter_write_json: appends r as one JSON object (no newline):
 * {"failed_at","origin","route","attempts","error":{"class","code","message"},
 *  "event":{structured CloudEvent},"message":{Pub/Sub message, when there was one}}
 * and "raw" (a string) instead of "event" for input that never decoded, or
 * "raw_base64" when that input is not UTF-8. The result is valid JSON and
 * valid UTF-8 whatever the input: text about it (origin, error message) has
 * each invalid byte written as U+FFFD.
 */
int deadletter_write_json(jr_buf *out, const jr_dlrecord *r);

#endif
