/* base64.c — RFC 4648 base64, both alphabets. */
#include "base64.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(jr_buf *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	char quad[4];
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		quad[0] = b64_alphabet[(v >> 18) & 63];
		quad[1] = b64_alphabet[(v >> 12) & 63];
		quad[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		quad[3] = i + 2 < n ? b64_alphabet[v & 63] : '=';
		if (buf_add(out, quad, 4) < 0)
			return -1;
	}
	return 0;
}

/* b64_value: the 6-bit value of c, or -1; the standard alphabet's '+' and '/' only without url_only. */
static int b64_value(unsigned char c, int url_only)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || (c == '+' && !url_only))
		return 62;
	if (c == '_' || (c == '/' && !url_only))
		return 63;
	return -1;
}

/* b64_unpadded: length of s without its padding; -1 when the padding is wrong. */
static long b64_unpadded(const char *s, size_t n)
{
	size_t pad = 0;
	while (pad < n && pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	if (pad && n % 4 != 0)
		return -1;
	size_t m = n - pad;
	if (m % 4 == 1)
		return -1;
	return (long)m;
}

long base64_decode_to(const char *s, size_t n, unsigned char *out, size_t cap, unsigned flags)
{
	int strict = (flags & BASE64_URL_STRICT) != 0;
	long m = strict ? (n % 4 == 1 ? -1 : (long)n) : b64_unpadded(s, n);
	if (m < 0)
		return -1;
	size_t rem = (size_t)m % 4;
	if ((size_t)m / 4 * 3 + (rem ? rem - 1 : 0) > cap)
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (long i = 0; i < m; i++) {
		int v = b64_value((unsigned char)s[i], strict);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (strict && acc != 0) /* non-canonical: leftover bits must be zero */
		return -1;
	return (long)o;
}

long base64_decode(jr_arena *a, const char *s, size_t n, char **out)
{
	size_t cap = n / 4 * 3 + 2;
	unsigned char *d = arena_alloc(a, cap + 1);
	long k = base64_decode_to(s, n, d, cap, BASE64_ANY);
	if (k < 0)
		return -1;
	d[k] = '\0';
	*out = (char *)d;
	return k;
}
