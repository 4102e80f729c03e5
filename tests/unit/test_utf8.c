/* The one UTF-8 validator (src/base/utf8.h) and the one base64 coder (src/base/base64.h). */
#include <string.h>

#include "base64.h"
#include "cu.h"
#include "utf8.h"

#define S(lit) lit, sizeof lit - 1

static void test_valid(void)
{
	CU_ASSERT_TRUE(utf8_valid(S("")));
	CU_ASSERT_TRUE(utf8_valid(S("plain ascii")));
	CU_ASSERT_TRUE(utf8_valid(S("a\0b"))); /* U+0000 is a character */
	CU_ASSERT_TRUE(utf8_valid(S("\xC2\x80")));             /* U+0080 */
	CU_ASSERT_TRUE(utf8_valid(S("\xDF\xBF")));             /* U+07FF */
	CU_ASSERT_TRUE(utf8_valid(S("\xE0\xA0\x80")));         /* U+0800 */
	CU_ASSERT_TRUE(utf8_valid(S("\xED\x9F\xBF")));         /* U+D7FF */
	CU_ASSERT_TRUE(utf8_valid(S("\xEE\x80\x80")));         /* U+E000 */
	CU_ASSERT_TRUE(utf8_valid(S("\xEF\xBF\xBF")));         /* U+FFFF */
	CU_ASSERT_TRUE(utf8_valid(S("\xF0\x90\x80\x80")));     /* U+10000 */
	CU_ASSERT_TRUE(utf8_valid(S("\xF4\x8F\xBF\xBF")));     /* U+10FFFF */
	CU_ASSERT_TRUE(utf8_valid(S("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80")));
}

static void test_invalid(void)
{
	/* overlong forms */
	CU_ASSERT_FALSE(utf8_valid(S("\xC0\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xC1\xBF")));
	CU_ASSERT_FALSE(utf8_valid(S("\xE0\x80\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xE0\x9F\xBF")));
	CU_ASSERT_FALSE(utf8_valid(S("\xF0\x80\x80\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xF0\x8F\xBF\xBF")));
	/* surrogates */
	CU_ASSERT_FALSE(utf8_valid(S("\xED\xA0\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xED\xBF\xBF")));
	/* past U+10FFFF */
	CU_ASSERT_FALSE(utf8_valid(S("\xF4\x90\x80\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xF5\x80\x80\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xF8\x88\x80\x80\x80")));
	/* stray, truncated, bad continuation */
	CU_ASSERT_FALSE(utf8_valid(S("\x80")));
	CU_ASSERT_FALSE(utf8_valid(S("\xFF")));
	CU_ASSERT_FALSE(utf8_valid(S("\xFE")));
	CU_ASSERT_FALSE(utf8_valid(S("\xC3")));
	CU_ASSERT_FALSE(utf8_valid(S("\xE2\x82")));
	CU_ASSERT_FALSE(utf8_valid(S("\xE2\x28\xA1")));
	CU_ASSERT_FALSE(utf8_valid(S("\xF0\x9F\x98")));
	CU_ASSERT_EQUAL(utf8_invalid_at(S("dl-\xff")), 3);
	CU_ASSERT_EQUAL(utf8_invalid_at(S("ok")), 2);
}

static void test_cut(void)
{
	const char *s = "a\xE2\x82\xAC" "b"; /* a € b */
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 10), 5);
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 4), 4);
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 3), 1);
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 2), 1);
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 1), 1);
	CU_ASSERT_EQUAL(utf8_cut(s, 5, 0), 0);
}

static void test_text_check(void)
{
	size_t at = 99;
	CU_ASSERT_EQUAL(utf8_text_check(S("event-1 caf\xC3\xA9"), &at), UTF8_CLEAN);
	CU_ASSERT_EQUAL(utf8_text_check(S("nul\0one"), &at), UTF8_NUL);
	CU_ASSERT_EQUAL(at, 3);
	CU_ASSERT_EQUAL(utf8_text_check(S("a\tb\r\n"), &at), UTF8_CLEAN); /* whitespace is let through */
	CU_ASSERT_EQUAL(utf8_text_check(S("a\x01"), &at), UTF8_CONTROL);
	CU_ASSERT_EQUAL(utf8_text_check(S("a\x1b[31m"), &at), UTF8_CONTROL);
	CU_ASSERT_EQUAL(utf8_text_check(S("nul\xC0\x80one"), &at), UTF8_NUL);
	CU_ASSERT_EQUAL(at, 3);
	CU_ASSERT_EQUAL(utf8_text_check(S("a\x7F"), &at), UTF8_CONTROL);
	CU_ASSERT_EQUAL(utf8_text_check(S("a\xC2\x85"), &at), UTF8_CONTROL); /* U+0085 */
	CU_ASSERT_EQUAL(at, 1);
	CU_ASSERT_EQUAL(utf8_text_check(S("a\xC2\xA0"), &at), UTF8_CLEAN);    /* U+00A0 */
	CU_ASSERT_EQUAL(utf8_text_check(S("t\xFE"), &at), UTF8_BAD);
	CU_ASSERT_EQUAL(at, 1);
	CU_ASSERT_EQUAL(utf8_text_check(S("\xED\xA0\x80"), &at), UTF8_BAD);
	CU_ASSERT_STRING_EQUAL(utf8_flaw_text(UTF8_NUL), "a NUL byte");
}

static long dec(const char *s, unsigned flags, char *out)
{
	long n = base64_decode_to(s, strlen(s), (unsigned char *)out, 64, flags);
	if (n >= 0)
		out[n] = '\0';
	return n;
}

static void test_base64(void)
{
	char o[65];
	CU_ASSERT_EQUAL(dec("aGVsbG8=", BASE64_ANY, o), 5);
	CU_ASSERT_STRING_EQUAL(o, "hello");
	CU_ASSERT_EQUAL(dec("aGVsbG8", BASE64_ANY, o), 5);
	CU_ASSERT_EQUAL(dec("-_8", BASE64_ANY, o), 2);
	CU_ASSERT_EQUAL(dec("+/8", BASE64_ANY, o), 2);
	CU_ASSERT_EQUAL(dec("aGVsbG8==", BASE64_ANY, o), -1);
	CU_ASSERT_EQUAL(dec("a", BASE64_ANY, o), -1);
	CU_ASSERT_EQUAL(dec("a b=", BASE64_ANY, o), -1);
	/* strict base64url: no padding, no standard alphabet, canonical */
	CU_ASSERT_EQUAL(dec("aGVsbG8", BASE64_URL_STRICT, o), 5);
	CU_ASSERT_EQUAL(dec("aGVsbG8=", BASE64_URL_STRICT, o), -1);
	CU_ASSERT_EQUAL(dec("+/8", BASE64_URL_STRICT, o), -1);
	CU_ASSERT_EQUAL(dec("Zh", BASE64_URL_STRICT, o), -1);
	CU_ASSERT_EQUAL(dec("Zg", BASE64_URL_STRICT, o), 1);
	unsigned char small[2];
	CU_ASSERT_EQUAL(base64_decode_to("aGVsbG8", 7, small, sizeof small, BASE64_ANY), -1);
	/* round trip of every byte value */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(base64_encode(&b, all, sizeof all), 0);
	jr_arena a;
	arena_init(&a);
	char *back;
	CU_ASSERT_EQUAL(base64_decode(&a, b.data, b.len, &back), 256);
	CU_ASSERT_EQUAL(memcmp(back, all, 256), 0);
	arena_free(&a);
	buf_free(&b);
}

int main(void)
{
	static const cu_test tests[] = {
		{"valid", test_valid},
		{"invalid", test_invalid},
		{"cut", test_cut},
		{"text_check", test_text_check},
		{"base64", test_base64},
		{NULL, NULL},
	};
	return cu_run("utf8", tests);
}
