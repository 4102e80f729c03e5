/*
 * jstring.c — JSON strings: quoting and escaping bytes (RFC 8259, section 7).
 */
#include "jstring.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* Eight copies of byte c in a word, and the word's high bits. */
#define BYTES(c) (0x0101010101010101ULL * (c))
#define HIGH BYTES(0x80)

/*
 * plain_len: how many bytes from s on need no escaping in a JSON string (not
 * a control byte, '"' or '\\'). Eight bytes are tested at a time: a word is
 * clean when it has no byte below 0x20 and no byte equal to '"' or '\\'
 * (the has-less and has-zero bit tricks; the three tests can share ~w & HIGH
 * because XOR with '"' or '\\' leaves each byte's high bit alone). The word
 * holding the first byte to escape is then searched byte by byte.
 */
static int word_clean(uint64_t w)
{
	uint64_t q = w ^ BYTES('"'), b = w ^ BYTES('\\');
	return !(((w - BYTES(0x20)) | (q - BYTES(1)) | (b - BYTES(1))) & ~w & HIGH);
}

static size_t plain_len(const char *s, size_t n)
{
	size_t i = 0;
	uint64_t w;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		if (!word_clean(w))
			break;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

/* escape: the JSON escape of byte c (a control byte, '"' or '\\') into esc; its length. */
static size_t escape(unsigned char c, char esc[6])
{
	static const char hex[] = "0123456789abcdef";
	esc[0] = '\\';
	switch (c) {
	case '"': esc[1] = '"'; return 2;
	case '\\': esc[1] = '\\'; return 2;
	case '\n': esc[1] = 'n'; return 2;
	case '\r': esc[1] = 'r'; return 2;
	case '\t': esc[1] = 't'; return 2;
	case '\b': esc[1] = 'b'; return 2;
	case '\f': esc[1] = 'f'; return 2;
	default:
		esc[1] = 'u';
		esc[2] = '0';
		esc[3] = '0';
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 15];
		return 6;
	}
}

/* escaped: appends s[0..n) escaped, without quotes. */
static int escaped(jr_buf *out, const char *s, size_t n)
{
	size_t run = plain_len(s, n);
	for (;;) {
		if (buf_add(out, s, run) < 0)
			return -1;
		if (run == n)
			return 0;
		char esc[6];
		if (buf_add(out, esc, escape((unsigned char)s[run], esc)) < 0)
			return -1;
		s += run + 1;
		n -= run + 1;
		run = plain_len(s, n);
	}
}

int jstr_write(jr_buf *out, const char *s, size_t n)
{
	if (plain_len(s, n) == n) { /* nothing to escape: one copy */
		char *p = buf_space(out, n + 2);
		if (!p)
			return -1;
		p[0] = '"';
		memcpy(p + 1, s, n);
		p[n + 1] = '"';
		buf_added(out, n + 2);
		return 0;
	}
	if (buf_addc(out, '"') < 0 || escaped(out, s, n) < 0)
		return -1;
	return buf_addc(out, '"');
}

int jstr_write_text(jr_buf *out, const char *s, size_t n)
{
	size_t bad = utf8_invalid_at(s, n);
	if (bad == n)
		return jstr_write(out, s, n);
	size_t start = out->len;
	if (buf_addc(out, '"') < 0)
		goto full;
	for (;;) {
		if (escaped(out, s, bad) < 0)
			goto full;
		if (bad == n)
			break;
		if (buf_add(out, "\xEF\xBF\xBD", 3) < 0) /* U+FFFD for the byte s[bad] */
			goto full;
		s += bad + 1;
		n -= bad + 1;
		bad = utf8_invalid_at(s, n);
	}
	if (buf_addc(out, '"') == 0)
		return 0;
full:
	out->len = start;
	return -1;
}
