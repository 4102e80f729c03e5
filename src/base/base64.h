/*
 * base64.h — the one base64 coder of the program (RFC 4648): the standard
 * alphabet for writing; for reading, either alphabet with optional padding
 * (Pub/Sub, CloudEvents data_base64, dead-letter records) or strict
 * base64url without padding (JWS, RFC 7515 §2).
 */
#ifndef JR_BASE64_H
#define JR_BASE64_H

#include <stddef.h>

#include "mem.h"

/* base64_encode: appends the standard base64 (with padding) of p[0..n) to out; -1 past out's max. */
int base64_encode(jr_buf *out, const void *p, size_t n);

/* Flags of base64_decode_to. */
enum {
	BASE64_ANY = 0,      /* '+' or '-', '/' or '_'; padding optional but, when there, right */
	BASE64_URL_STRICT = 1, /* '-' and '_' only, no padding, unused trailing bits zero */
};

/*
 * base64_decode_to: decodes s[0..n) into out (room for cap bytes). Returns
 * the decoded length, or -1 when s is not base64 under flags (a character
 * outside the alphabet, an impossible length, wrong padding) or cap is too
 * small. n / 4 * 3 + 2 bytes are always enough.
 */
long base64_decode_to(const char *s, size_t n, unsigned char *out, size_t cap, unsigned flags);
/* base64_decode: base64_decode_to with BASE64_ANY into a new arena allocation (NUL-terminated); its length, or -1. */
long base64_decode(jr_arena *a, const char *s, size_t n, char **out);

#endif
