/*
 * pct.h — percent-encoding (RFC 3986: the unreserved characters are kept),
 * for x-goog-request-params values and HTML form bodies.
 */
#ifndef JR_PCT_H
#define JR_PCT_H

#include <stddef.h>

/*
 * pct_encode: writes s[0..n) percent-encoded to out, which must hold 3n+1
 * bytes; returns the length written (a NUL is added).
 */
size_t pct_encode(const char *s, size_t n, char *out);

#endif
