/*
 * decode_int.h — what the decode_*.c files share; not a public contract.
 *
 * decode.c        document forms: structured, batch, push body, dead letter
 * decode_ce.c     building and validating a CloudEvent from attributes
 * decode_msg.c    a Pub/Sub message into an event (the three rules of docs/decoding.md)
 * decode_http.c   HTTP requests and `.http` captures
 */
#ifndef JR_DECODE_INT_H
#define JR_DECODE_INT_H

#include <stddef.h>

#include "decode.h"
#include "jsonparse.h"

#define DECODE_ERRLEN 256

/* The state of one decode call: the caller's context plus what the input adds. */
typedef struct dec_ctx {
	const jr_decode_ctx *dc;
	jr_limits lim;          /* dc->limits with defaults for unset fields */
	const char *topic;      /* topic hint for rule 3 (request path, else config) */
	const char *trace;      /* trace context of the request, copied into events */
} dec_ctx;

/* What a JSON document may be, for dec_json. */
typedef enum dec_want {
	DEC_ANY,   /* decode_json_doc: any JSON form */
	DEC_EVENT, /* application/cloudevents+json: one structured event */
	DEC_BATCH, /* application/cloudevents-batch+json: an array of events */
} dec_want;

/* decode.c */
void dec_init(dec_ctx *x, const jr_decode_ctx *dc);
void dec_limits(const jr_limits *in, jr_limits *out);
jr_event *dec_event(const dec_ctx *x);
void dec_trace(jr_event *ev);
int dec_emit(const dec_ctx *x, jr_event *ev, int rc, const char *err);
int dec_fail(const dec_ctx *x, const char *err);
int dec_json(const dec_ctx *x, const char *text, size_t len, dec_want want);
size_t dec_skip_ws(const char *s, size_t len);

/* decode_ce.c */
int ce_from_json(jr_event *ev, const jr_json *obj, const jr_limits *lim, char *err,
		 size_t errlen);
/* ce_from_pairs: binary mode: attrs hold names without the ce- prefix (lower
 * case) and values; ct is the transport's content type (may be NULL); the
 * data bytes (in ev's arena) follow the content type. */
int ce_from_pairs(jr_event *ev, const jr_kv *attrs, size_t n, const char *ct,
		  const char *data, size_t len, const jr_limits *lim, char *err, size_t errlen);
int ce_is_json_type(const char *ct);
int ce_type_is(const char *ct, const char *type);
int ce_rfc3339(const char *s);

/* decode_msg.c */
jr_message *msg_from_json(jr_event *ev, const jr_json *m, const char *subscription,
			  const jr_limits *lim, char *err, size_t errlen);
int msg_push(jr_event *ev, const jr_json *root, const dec_ctx *x, char *err, size_t errlen);

#endif
