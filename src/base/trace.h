/*
 * trace.h — the trace id of a request or event, from the two forms Google's
 * front ends and clients send: a W3C traceparent "VV-TRACEID-SPANID-FF" and an
 * X-Cloud-Trace-Context "TRACEID[/SPAN][;o=1]". Pure; nothing allocated.
 */
#ifndef JR_TRACE_H
#define JR_TRACE_H

/*
 * trace_from_traceparent / trace_from_cloud_context: the 32 hex digits of
 * value's trace id, lower-cased, into out (NUL-terminated); 0, or -1 when
 * value (may be NULL) is not of that form or its id is all zeros.
 */
int trace_from_traceparent(const char *value, char out[33]);
int trace_from_cloud_context(const char *value, char out[33]);
/* trace_id_of: either form (traceparent first); 0 or -1 as above. */
int trace_id_of(const char *value, char out[33]);

#endif
