/*
 * cesql_fn.c — the built-in CESQL functions: string manipulation and ABS
 * (spec 3.5.1, 3.5.2) and the casting functions INT, BOOL, STRING, IS_BOOL,
 * IS_INT, IS_STRING.
 *
 * Each gets its arguments already cast to its parameter types (except the
 * casting functions, which get them as they are) and writes its result over
 * *out, which holds the zero value of its return type. Substrings point into
 * the argument; new text (CONCAT, CONCAT_WS, LOWER, UPPER) goes into the
 * evaluation's scratch. LOWER and UPPER map ASCII, Latin-1, Greek and
 * Cyrillic letters (where both cases have the same UTF-8 length) and leave
 * other characters as they are.
 */
#include "cesql_int.h"

#include <string.h>
#include <strings.h>

static cesql_value str(const char *s, size_t n)
{
	return (cesql_value){.type = CESQL_STRING, .s = s, .n = n};
}

/* char_count: the number of characters of s. */
static size_t char_count(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; k++)
		i += cesql_char_len(s + i, n - i);
	return k;
}

/* char_offset: the byte offset of character k of s (n when s is shorter). */
static size_t char_offset(const char *s, size_t n, size_t k)
{
	size_t i = 0;
	while (k-- > 0 && i < n)
		i += cesql_char_len(s + i, n - i);
	return i < n ? i : n;
}

/* decode: the code point at s (len bytes) and its length; an invalid byte is itself. */
static uint32_t decode(const char *s, size_t n, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	*len = cesql_char_len(s, n);
	switch (*len) {
	case 2: return (uint32_t)(u[0] & 0x1f) << 6 | (u[1] & 0x3f);
	case 3: return (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
	case 4:
		return (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3f) << 12 |
		       (uint32_t)(u[2] & 0x3f) << 6 | (u[3] & 0x3f);
	default: return u[0];
	}
}

static void fn_length(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)c;
	(void)n;
	size_t k = char_count(a[0].s, a[0].n);
	out->i = k > INT32_MAX ? INT32_MAX : (int32_t)k;
}

/* join: the strings a[0..n) with sep between them, into the scratch. */
static void join(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value sep, cesql_value *out)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += a[i].n + (i ? sep.n : 0);
	if (total == 0)
		return;
	char *p = cesql_salloc(c, total);
	if (!p)
		return;
	*out = str(p, total);
	for (size_t i = 0; i < n; i++) {
		if (i && sep.n) {
			memcpy(p, sep.s, sep.n);
			p += sep.n;
		}
		if (a[i].n)
			memcpy(p, a[i].s, a[i].n);
		p += a[i].n;
	}
}

static void fn_concat(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	join(c, a, n, str("", 0), out);
}

static void fn_concat_ws(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	join(c, a + 1, n - 1, a[0], out);
}

/* map_case: the other-case code point of cp for the 2-byte letters handled, or cp. */
static uint32_t map_case(uint32_t cp, int upper)
{
	if (!upper) {
		if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) ||
		    (cp >= 0x410 && cp <= 0x42F))
			return cp + 0x20;
		return cp >= 0x400 && cp <= 0x40F ? cp + 0x50 : cp;
	}
	if (cp == 0x3C2)
		return 0x3A3; /* final sigma */
	if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) || (cp >= 0x3B1 && cp <= 0x3C9) ||
	    (cp >= 0x430 && cp <= 0x44F))
		return cp - 0x20;
	return cp >= 0x450 && cp <= 0x45F ? cp - 0x50 : cp;
}

static void change_case(cesql_ctx *c, cesql_value x, int upper, cesql_value *out)
{
	if (x.n == 0)
		return;
	char *p = cesql_salloc(c, x.n);
	if (!p)
		return;
	for (size_t i = 0, k; i < x.n; i += k) {
		uint32_t cp = decode(x.s + i, x.n - i, &k);
		if (k == 1) {
			char ch = x.s[i];
			if (upper && ch >= 'a' && ch <= 'z')
				ch = (char)(ch - 'a' + 'A');
			else if (!upper && ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			p[i] = ch;
		} else if (k == 2) {
			cp = map_case(cp, upper);
			p[i] = (char)(0xC0 | (cp >> 6));
			p[i + 1] = (char)(0x80 | (cp & 0x3f));
		} else {
			memcpy(p + i, x.s + i, k);
		}
	}
	*out = str(p, x.n);
}

static void fn_lower(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	change_case(c, a[0], 0, out);
}

static void fn_upper(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	change_case(c, a[0], 1, out);
}

/* is_space: Unicode White_Space. */
static int is_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static void fn_trim(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)c;
	(void)n;
	const char *s = a[0].s;
	size_t b = 0, e = a[0].n, k;
	while (b < e && is_space(decode(s + b, e - b, &k)))
		b += k;
	while (e > b) {
		size_t st = e - 1;
		while (st > b && ((unsigned char)s[st] & 0xC0) == 0x80)
			st--;
		if (!is_space(decode(s + st, e - st, &k)) || st + k != e)
			break;
		e = st;
	}
	*out = str(s + b, e - b);
}

static void fn_left_right(cesql_ctx *c, const cesql_value *a, int right, cesql_value *out)
{
	cesql_value x = a[0];
	int32_t y = a[1].i;
	*out = x;
	if (y < 0) {
		cesql_add_err(c, CESQL_ERR_FUNCTION_EVALUATION, "a negative length", NULL);
		return;
	}
	size_t len = char_count(x.s, x.n);
	if ((size_t)y >= len)
		return;
	size_t off = char_offset(x.s, x.n, right ? len - (size_t)y : (size_t)y);
	*out = right ? str(x.s + off, x.n - off) : str(x.s, off);
}

static void fn_left(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	fn_left_right(c, a, 0, out);
}

static void fn_right(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	fn_left_right(c, a, 1, out);
}

static void fn_substring(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	cesql_value x = a[0];
	int64_t pos = a[1].i, len = (int64_t)char_count(x.s, x.n);
	if (pos > len || pos < -len || (n == 3 && a[2].i < 0)) {
		cesql_add_err(c, CESQL_ERR_FUNCTION_EVALUATION, "position or length out of range",
			      NULL);
		return;
	}
	if (pos == 0)
		return;
	int64_t start = pos > 0 ? pos - 1 : len + pos;
	int64_t count = n == 3 ? a[2].i : len - start;
	if (count > len - start)
		count = len - start;
	size_t b = char_offset(x.s, x.n, (size_t)start);
	size_t e = char_offset(x.s, x.n, (size_t)(start + count));
	*out = str(x.s + b, e - b);
}

static void fn_abs(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	if (a[0].i == INT32_MIN) {
		cesql_add_err(c, CESQL_ERR_MATH, "ABS of -2147483648 overflows", NULL);
		out->i = INT32_MAX;
		return;
	}
	out->i = a[0].i < 0 ? -a[0].i : a[0].i;
}

static void fn_int(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	*out = cesql_to_int(c, a[0]);
}

static void fn_bool(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	*out = cesql_to_bool(c, a[0], 1);
}

static void fn_string(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)n;
	*out = cesql_to_string(c, a[0]);
}

static void fn_is_bool(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)c;
	(void)n;
	out->b = a[0].type == CESQL_BOOLEAN ||
		 (a[0].type == CESQL_STRING && cesql_str_bool(a[0].s, a[0].n) >= 0);
}

static void fn_is_int(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)c;
	(void)n;
	int32_t i;
	out->b = a[0].type == CESQL_INTEGER ||
		 (a[0].type == CESQL_STRING && cesql_parse_i32(a[0].s, a[0].n, &i) == 0);
}

static void fn_is_string(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out)
{
	(void)c;
	(void)n;
	out->b = a[0].type == CESQL_STRING;
}

#define S CESQL_STRING
#define I CESQL_INTEGER
#define B CESQL_BOOLEAN
static const cesql_builtin builtins[] = {
	{"LENGTH", 1, 1, I, {S, S, S}, 0, fn_length},
	{"CONCAT", 0, -1, S, {S, S, S}, 0, fn_concat},
	{"CONCAT_WS", 1, -1, S, {S, S, S}, 0, fn_concat_ws},
	{"LOWER", 1, 1, S, {S, S, S}, 0, fn_lower},
	{"UPPER", 1, 1, S, {S, S, S}, 0, fn_upper},
	{"TRIM", 1, 1, S, {S, S, S}, 0, fn_trim},
	{"LEFT", 2, 2, S, {S, I, I}, 0, fn_left},
	{"RIGHT", 2, 2, S, {S, I, I}, 0, fn_right},
	{"SUBSTRING", 2, 3, S, {S, I, I}, 0, fn_substring},
	{"ABS", 1, 1, I, {I, I, I}, 0, fn_abs},
	{"INT", 1, 1, I, {S, S, S}, 1, fn_int},
	{"BOOL", 1, 1, B, {S, S, S}, 1, fn_bool},
	{"STRING", 1, 1, S, {S, S, S}, 1, fn_string},
	{"IS_BOOL", 1, 1, B, {S, S, S}, 1, fn_is_bool},
	{"IS_INT", 1, 1, B, {S, S, S}, 1, fn_is_int},
	{"IS_STRING", 1, 1, B, {S, S, S}, 1, fn_is_string},
};
#undef S
#undef I
#undef B

const cesql_builtin *cesql_builtin_find(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
		const cesql_builtin *b = &builtins[i];
		if (strcmp(b->name, name) == 0 && n >= (size_t)b->min_args &&
		    (b->max_args < 0 || n <= (size_t)b->max_args))
			return b;
	}
	return NULL;
}
