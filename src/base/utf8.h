/*
 * utf8.h — the one UTF-8 validator of the program (RFC 3629: no overlong
 * forms, no surrogates U+D800–U+DFFF, nothing above U+10FFFF), and what is
 * built on it: cutting text on a character boundary, and the check for
 * CloudEvents attribute values.
 */
#ifndef JR_UTF8_H
#define JR_UTF8_H

#include <stddef.h>

/* utf8_char_len: the length (1-4) of the valid UTF-8 sequence at s (n > 0 bytes left), or 0. */
size_t utf8_char_len(const unsigned char *s, size_t n);
/* utf8_invalid_at: the offset of the first byte of s[0..n) that starts no valid sequence; n when all is valid. */
size_t utf8_invalid_at(const char *s, size_t n);
/* utf8_valid: 1 when s[0..n) is valid UTF-8 (NUL bytes included), else 0. */
int utf8_valid(const char *s, size_t n);
/* utf8_cut: the length of the longest prefix of s[0..n), at most max bytes, that does not split a character. */
size_t utf8_cut(const char *s, size_t n, size_t max);

/*
 * UTF8_NUL_TEXT: what a transport puts for a NUL byte it cannot keep in a C
 * string (a percent-decoded %00, a NUL in a Pub/Sub attribute): never valid
 * UTF-8, so the value stays distinct from any value without it and the event
 * is refused, never merged with another.
 */
#define UTF8_NUL_TEXT "\xC0\x80"

/* What utf8_text_check found. */
typedef enum utf8_flaw {
	UTF8_CLEAN = 0,
	UTF8_BAD,     /* a byte that starts no valid UTF-8 sequence */
	UTF8_NUL,     /* a NUL byte */
	UTF8_CONTROL, /* another control character: U+0001–U+001F but TAB, LF, CR; U+007F–U+009F */
} utf8_flaw;

/*
 * utf8_text_check: whether s[0..n) may be the value of a CloudEvents
 * attribute: valid UTF-8 without control characters, where TAB, LF and CR
 * are let through (HTTP media types put TAB between parameters; the
 * CloudEvents conformance vectors have an extension value ending in LF).
 * Returns UTF8_CLEAN, or
 * the first flaw with its offset in *at. The overlong pair C0 80 counts as a
 * NUL byte: it is how a NUL byte is carried in a C string (UTF8_NUL_TEXT).
 */
utf8_flaw utf8_text_check(const char *s, size_t n, size_t *at);
/* utf8_flaw_text: a short description of a flaw ("a NUL byte", ...), for error messages. */
const char *utf8_flaw_text(utf8_flaw f);

#endif
