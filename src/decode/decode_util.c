/*
 * decode_util.c — what every decoder shares and needs nothing else for: the
 * limits with their defaults filled in, and the start of a document past a
 * BOM and white space. (Kept apart so that the form decoders, which decode.c
 * calls, do not call back into decode.c.)
 */
#include "decode_int.h"

#include <string.h>

#include "trace.h"

#define DEF_EVENT_BYTES (10u << 20)
#define DEF_JSON_DEPTH 64
#define DEF_ATTRIBUTES 100
#define DEF_HEADER_BYTES (64u << 10)
#define DEF_BATCH_EVENTS 1000

void dec_limits(const jr_limits *in, jr_limits *out)
{
	jr_limits z = { 0 };
	if (!in)
		in = &z;
	out->event_bytes = in->event_bytes ? in->event_bytes : DEF_EVENT_BYTES;
	out->json_depth = in->json_depth > 0 ? in->json_depth : DEF_JSON_DEPTH;
	out->attributes = in->attributes > 0 ? in->attributes : DEF_ATTRIBUTES;
	out->header_bytes = in->header_bytes ? in->header_bytes : DEF_HEADER_BYTES;
	out->batch_events = in->batch_events > 0 ? in->batch_events : DEF_BATCH_EVENTS;
	out->inflight_bytes = in->inflight_bytes;
	out->idle_timeout_ms = in->idle_timeout_ms;
}

size_t dec_skip_ws(const char *s, size_t len)
{
	size_t i = len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * dec_trace: ev->trace becomes the first valid of: the event's `traceparent`
 * extension (CloudEvents distributed tracing), what ev->trace already holds
 * (the HTTP request's traceparent or X-Cloud-Trace-Context, dec_event), the
 * Pub/Sub message's `googclient_traceparent` attribute (Google's client
 * libraries with OpenTelemetry on); NULL when none is. An invalid value is
 * passed over. Calling it again changes nothing.
 */
void dec_trace(jr_event *ev)
{
	jr_trace t;
	const jr_json *tp = event_ext(ev, "traceparent");
	if (tp && tp->type == JR_JSON_STRING && trace_parse_traceparent(tp->s, &t) == 0) {
		ev->trace = tp->s;
		return;
	}
	if (trace_parse(ev->trace, &t) == 0)
		return;
	const char *g = ev->message ? event_msg_attr(ev, "googclient_traceparent") : NULL;
	ev->trace = trace_parse_traceparent(g, &t) == 0 ? g : NULL;
}
