/*
 * utf8.c — RFC 3629 UTF-8. The table of well-formed sequences (RFC 3629 §4):
 * the second byte's range depends on the first byte, which is what rules
 * out overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF
 * (F4); C0, C1 and F5–FF never start a sequence.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/*
 * Most text is ASCII: the loops below first skip eight bytes at a time while
 * none has its high bit set (and, for attribute text, none is below 0x20 or
 * 0x7F), and only then look at one character at a time.
 */
#define BYTES(c) (0x0101010101010101ULL * (c))

static uint64_t load8(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

/* ascii_run: how many of the n bytes at u are ASCII, counted eight at a time (a multiple of 8). */
static size_t ascii_run(const unsigned char *u, size_t n)
{
	size_t i = 0;
	while (i + 8 <= n && !(load8(u + i) & BYTES(0x80)))
		i += 8;
	return i;
}

/* printable_run: the same for printable ASCII, 0x20-0x7E (no control character, no DEL). */
static size_t printable_run(const unsigned char *u, size_t n)
{
	size_t i = 0;
	while (i + 8 <= n) {
		uint64_t w = load8(u + i), d = w ^ BYTES(0x7F);
		uint64_t low = (w - BYTES(0x20)) & ~w;         /* a byte below 0x20 */
		uint64_t del = (d - BYTES(0x01)) & ~d;         /* a byte equal to 0x7F */
		if ((w | low | del) & BYTES(0x80))
			break;
		i += 8;
	}
	return i;
}

size_t utf8_char_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	unsigned lo = 0x80, hi = 0xBF;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		k = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		k = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 4;
		if (c == 0xF0)
			lo = 0x90; /* no overlong forms */
		else if (c == 0xF4)
			hi = 0x8F; /* nothing past U+10FFFF */
	} else {
		return 0;
	}
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return k;
}

size_t utf8_invalid_at(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		i += ascii_run(u + i, n - i);
		if (i >= n)
			break;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = utf8_char_len(u + i, n - i);
		if (!k)
			return i;
		i += k;
	}
	return n;
}

int utf8_valid(const char *s, size_t n)
{
	return utf8_invalid_at(s, n) == n;
}

size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	return k;
}

utf8_flaw utf8_text_check(const char *s, size_t n, size_t *at)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		i += printable_run(u + i, n - i);
		if (i >= n)
			break;
		unsigned c = u[i];
		if (c >= 0x20 && c < 0x7F) {
			i++;
			continue;
		}
		utf8_flaw f = UTF8_CLEAN;
		size_t k = 1;
		if (c == 0 || (c == 0xC0 && i + 1 < n && u[i + 1] == 0x80))
			f = UTF8_NUL;
		else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
			f = UTF8_CONTROL;
		else if (!(k = utf8_char_len(u + i, n - i)))
			f = UTF8_BAD;
		else if (c == 0xC2 && u[i + 1] < 0xA0)
			f = UTF8_CONTROL; /* U+0080–U+009F */
		if (f) {
			if (at)
				*at = i;
			return f;
		}
		i += k;
	}
	return UTF8_CLEAN;
}

const char *utf8_flaw_text(utf8_flaw f)
{
	switch (f) {
	case UTF8_BAD: return "invalid UTF-8";
	case UTF8_NUL: return "a NUL byte";
	case UTF8_CONTROL: return "a control character";
	default: return "nothing wrong";
	}
}
