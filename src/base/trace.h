/*
 * trace.h — the trace context of a request or event, from the two forms
 * Google's front ends and clients send: a W3C traceparent
 * "VV-TRACEID-SPANID-FF" and an X-Cloud-Trace-Context "TRACEID[/SPAN][;o=1]"
 * (SPAN in decimal), and the child traceparent jobrelay passes on. Pure but
 * for trace_dispatch_span's process secret; nothing allocated, every output
 * in the caller's fixed-size buffers.
 */
#ifndef JR_TRACE_H
#define JR_TRACE_H

#include <stdint.h>

/* A parsed trace context. */
typedef struct jr_trace {
	char id[33];         /* trace id: 32 lower-case hex digits, not all zero */
	char span[17];       /* parent span id: 16 lower-case hex digits; "" when none was sent */
	unsigned char flags; /* traceparent's flags byte; X-Cloud-Trace-Context: 1 with o=1, else 0 */
} jr_trace;

/* TRACE_PARENT_LEN: the length of a version 00 traceparent. */
#define TRACE_PARENT_LEN 55

/*
 * trace_parse_traceparent: value (may be NULL) as a W3C traceparent: version
 * two hex digits other than ff (00: exactly 55 characters; a later version:
 * 55, or more after a '-'), a trace id and a parent id not all zero, the
 * flags; hex in either case. 0 with *out filled, or -1 (out undefined).
 */
int trace_parse_traceparent(const char *value, jr_trace *out);
/*
 * trace_parse_cloud_context: value as X-Cloud-Trace-Context
 * "TRACEID[/SPAN][;o=N]": SPAN a decimal 64-bit number (written to out->span
 * as 16 hex digits; 0 or none: no span), o=1 sampled. 0, or -1 when malformed.
 */
int trace_parse_cloud_context(const char *value, jr_trace *out);
/* trace_parse: either form (traceparent first); 0 or -1 as above. */
int trace_parse(const char *value, jr_trace *out);

/* trace_sampled: 1 when t's sampled flag is set. */
static inline int trace_sampled(const jr_trace *t)
{
	return t->flags & 1;
}

/*
 * trace_dispatch_span: the span id of one route delivery of an event with
 * trace t, as 16 hex digits into out: a keyed hash of t's trace id and key
 * (the route's dedup key, route_key_hash) under a random secret drawn once
 * per process. So every render and log line of that delivery in this
 * process agrees on it without storing it, its retries keep it, and it is
 * never 0 nor t's parent span.
 */
void trace_dispatch_span(const jr_trace *t, uint64_t key, char out[17]);
/* trace_child: the traceparent "00-ID-SPAN-FF" of a child span of t, into out. */
void trace_child(const jr_trace *t, const char span[17], char out[TRACE_PARENT_LEN + 1]);

#endif
