/*
 * trace.c — trace contexts out of traceparent and X-Cloud-Trace-Context
 * values, and the child traceparent of a route delivery.
 */
#include "trace.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* hexn: the n hex digits at s, lower-cased into out; -1 when not that or all zero. */
static int hexn(const char *s, size_t n, char *out)
{
	int nonzero = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -1;
		out[i] = ch;
		nonzero |= ch != '0';
	}
	out[n] = '\0';
	return nonzero ? 0 : -1;
}

/* hexbyte: the two hex digits at s as a number, or -1. */
static int hexbyte(const char *s)
{
	int v = 0;
	for (int i = 0; i < 2; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

int trace_parse_traceparent(const char *v, jr_trace *out)
{
	if (!v || strnlen(v, TRACE_PARENT_LEN + 1) < TRACE_PARENT_LEN || v[2] != '-' ||
	    v[35] != '-' || v[52] != '-')
		return -1;
	int ver = hexbyte(v), flags = hexbyte(v + 53);
	char end = v[TRACE_PARENT_LEN];
	/* version 00 is exactly 55 characters; a later one may go on after a '-' */
	if (ver < 0 || ver == 0xff || flags < 0 || (end && (ver == 0 || end != '-')))
		return -1;
	if (hexn(v + 3, 32, out->id) < 0 || hexn(v + 36, 16, out->span) < 0)
		return -1;
	out->flags = (unsigned char)flags;
	return 0;
}

/* dec_u64: the decimal number at *s (1 to 20 digits, no overflow), *s past it; -1 when none. */
static int dec_u64(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t n = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (p - *s >= 20 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (p == *s)
		return -1;
	*s = p;
	*out = n;
	return 0;
}

int trace_parse_cloud_context(const char *v, jr_trace *out)
{
	if (!v || strnlen(v, 32) < 32 || hexn(v, 32, out->id) < 0)
		return -1;
	const char *p = v + 32;
	uint64_t span = 0, o = 0;
	if (*p == '/') {
		p++;
		if (dec_u64(&p, &span) < 0)
			return -1;
	}
	if (!strncmp(p, ";o=", 3)) {
		p += 3;
		if (dec_u64(&p, &o) < 0)
			return -1;
	}
	if (*p != '\0')
		return -1;
	out->span[0] = '\0';
	if (span)
		snprintf(out->span, sizeof out->span, "%016llx", (unsigned long long)span);
	out->flags = o == 1;
	return 0;
}

int trace_parse(const char *v, jr_trace *out)
{
	return trace_parse_traceparent(v, out) == 0 ? 0 : trace_parse_cloud_context(v, out);
}

/* ---- the dispatch span ---- */

static uint64_t secret;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void secret_init(void)
{
	if (getrandom(&secret, sizeof secret, GRND_NONBLOCK) == (ssize_t)sizeof secret)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	secret = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		       ((uint64_t)getpid() << 40));
}

void trace_dispatch_span(const jr_trace *t, uint64_t key, char out[17])
{
	pthread_once(&secret_once, secret_init);
	uint64_t h = 0xcbf29ce484222325ULL ^ secret; /* FNV-1a of the id, seeded */
	for (int i = 0; i < 32; i++)
		h = (h ^ (unsigned char)t->id[i]) * 0x100000001b3ULL;
	h = mix64(h ^ mix64(key ^ secret));
	for (;;) {
		snprintf(out, 17, "%016llx", (unsigned long long)h);
		if (h && strcmp(out, t->span) != 0)
			return;
		h = mix64(h + 1);
	}
}

void trace_child(const jr_trace *t, const char span[17], char out[TRACE_PARENT_LEN + 1])
{
	snprintf(out, TRACE_PARENT_LEN + 1, "00-%.32s-%.16s-%02x", t->id, span, t->flags);
}
