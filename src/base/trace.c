/*
 * trace.c — trace ids out of traceparent and X-Cloud-Trace-Context values.
 */
#include "trace.h"

#include <string.h>

/* hex32: the 32 hex digits at s, lower-cased into out; -1 when not that or all zero. */
static int hex32(const char *s, char out[33])
{
	for (int i = 0; i < 32; i++) {
		char ch = s[i];
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -1;
		out[i] = ch;
	}
	out[32] = '\0';
	return strspn(out, "0") == 32 ? -1 : 0; /* an all-zero trace id is invalid */
}

int trace_from_traceparent(const char *v, char out[33])
{
	if (!v || strlen(v) < 55 || v[2] != '-' || v[35] != '-')
		return -1;
	return hex32(v + 3, out);
}

int trace_from_cloud_context(const char *v, char out[33])
{
	if (!v || strlen(v) < 32 || (v[32] != '\0' && v[32] != '/'))
		return -1;
	return hex32(v, out);
}

int trace_id_of(const char *v, char out[33])
{
	return trace_from_traceparent(v, out) == 0 ? 0 : trace_from_cloud_context(v, out);
}
