/*
 * test_jsonparse.c — jsonparse's fast path for plain documents against yajl
 * alone (jsonparse_yajl): for every document, both accept it with the same
 * tree (compared as json_write output) or both reject it with the same error.
 *
 * The documents: hand-picked edge cases (numbers, literals, whitespace,
 * escapes, non-ASCII, nesting at and past the depth limit, trailing data),
 * every JSON file of the google-cloudevents test data, and every one-byte
 * deletion and replacement of a storage event, so each byte of the fast
 * path's grammar meets a near miss.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cu.h"
#include "json.h"
#include "jsonparse.h"

static long compared, accepted;

/* check: doc parsed both ways at max_depth gives the same tree or the same error. */
static void check(const char *doc, size_t len, int max_depth)
{
	jr_arena a, b;
	char ea[256] = "", eb[256] = "";
	arena_init(&a);
	arena_init(&b);
	const jr_json *fast = jsonparse(&a, doc, len, max_depth, ea, sizeof ea);
	const jr_json *ref = jsonparse_yajl(&b, doc, len, max_depth, eb, sizeof eb);
	compared++;
	if ((fast == NULL) != (ref == NULL) || strcmp(ea, eb) != 0) {
		fprintf(stderr, "differs on [%.*s]: fast %s (%s), yajl %s (%s)\n", (int)len, doc,
			fast ? "ok" : "error", ea, ref ? "ok" : "error", eb);
		CU_FAIL("fast path and yajl disagree");
	} else if (fast) {
		jr_buf wa, wb;
		buf_init(&wa, 0);
		buf_init(&wb, 0);
		CU_ASSERT_EQUAL(json_write(&wa, fast), 0);
		CU_ASSERT_EQUAL(json_write(&wb, ref), 0);
		if (wa.len != wb.len || memcmp(wa.data, wb.data, wa.len) != 0) {
			fprintf(stderr, "different trees for [%.*s]\n", (int)len, doc);
			CU_FAIL("fast path and yajl build different trees");
		}
		accepted++;
		buf_free(&wa);
		buf_free(&wb);
	}
	arena_free(&a);
	arena_free(&b);
}

static void check_s(const char *doc)
{
	check(doc, strlen(doc), 64);
}

static void test_edge_cases(void)
{
	static const char *const docs[] = {
		"{}", "[]", " { } ", "[ ]", "{\"a\":{}}", "[[],[[]],{}]", "\"\"", "\"x\"", "0", "-0",
		"1", "-1", "10", "01", "-01", "1.", ".5", "1.5", "-1.5e10", "1e", "1e+", "1E-7",
		"1e5x", "+1", "-", "--1", "1 2", "true", "false", "null", "tru", "nul", "truex",
		"[true,false,null]", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{a:1}",
		"{\"a\":1 \"b\":2}", "[1 2]", "{\"a\":1]", "[1}", "{", "[", "}", "]", "", "   ",
		"\t\r\n{\"a\"\t:\r\n1}\n", "\v{}", "\f[]", "{}\v", "{}  x", "{} {}", "[][]",
		"\"a\\\"b\"", "\"a\\\\b\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"",
		"\"\\x\"", "\"caf\xc3\xa9\"", "\"\xc3\"", "\"\xff\"", "\"a\tb\"", "\"a\x01\"",
		"\"\x7f\"", "\"abcdefgh\"", "\"abcdefg\\n\"", "\"abcdefghijklmnop\"",
		"\"abcdefghijklmno\"", "\"abc", "\"abcdefghijklmnopqrstuvwxyz", "{\"k\\u0041\":1}",
		"{\"caf\xc3\xa9\":1}", "{\"a\":1,\"a\":2}", "/* c */ {}", "// c\n{}", "{}//",
		"\xef\xbb\xbf{\"a\":1}", "\xef\xbb\xbf", "[1,[2,[3,[4]]]]",
		"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
		"\"data\":{\"n\":[1,2.5,-3e2,true,false,null,\"x\",{\"y\":[]}]}}",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		check_s(docs[i]);
	check("[1,\0]", 5, 64);
	check("\"a\0b\"", 5, 64);
}

static void test_depth_limit(void)
{
	static const char *const docs[] = {"[[[]]]", "[[[1]]]", "{\"a\":{\"b\":{}}}",
					   "{\"a\":[{\"b\":1}]}", "[[]]", "[]", "1"};
	for (int depth = 1; depth <= 4; depth++)
		for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
			check(docs[i], strlen(docs[i]), depth);
}

/* check_file: a JSON file of the test data, whole and line by line. */
static void check_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	static char text[1 << 20];
	size_t n = fread(text, 1, sizeof text, f);
	fclose(f);
	check(text, n, 64);
	for (size_t s = 0, e; s < n; s = e + 1) {
		const char *nl = memchr(text + s, '\n', n - s);
		e = nl ? (size_t)(nl - text) : n;
		check(text + s, e - s, 64);
	}
}

static void walk(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *ent;
	char path[4096];
	while ((ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
		struct stat st;
		if (stat(path, &st) < 0)
			continue;
		size_t n = strlen(ent->d_name);
		if (S_ISDIR(st.st_mode) && depth < 12)
			walk(path, depth + 1);
		else if (S_ISREG(st.st_mode) && n > 5 && strcmp(ent->d_name + n - 5, ".json") == 0)
			check_file(path);
	}
	closedir(d);
}

static void test_testdata(void)
{
	long before = compared;
	walk(JR_TESTDATA "/google-cloudevents", 0);
	fprintf(stderr, "\ntest data: %ld documents compared\n", compared - before);
	CU_ASSERT_TRUE(compared - before > 100);
}

/* An event as bench/gen_events.js writes it (one name with a quote and non-ASCII letters). */
static const char event[] =
	"{\"specversion\":\"1.0\",\"id\":\"9000000000003870\","
	"\"source\":\"//storage.googleapis.com/projects/_/buckets/acme-uploads\","
	"\"type\":\"google.cloud.storage.object.v1.finalized\","
	"\"subject\":\"objects/in/report \\\"final\\\" \xc3\xa9t\xc3\xa9.csv\","
	"\"time\":\"2024-05-01T00:00:00.036Z\",\"datacontenttype\":\"application/json\","
	"\"bucket\":\"acme-uploads\",\"data\":{\"bucket\":\"acme-uploads\","
	"\"contentType\":\"text/csv\",\"crc32c\":\"IZPJfE==\",\"generation\":\"1714521600036455\","
	"\"md5Hash\":\"udx/PwJUaPJukIQDn3P/tZ==\",\"metageneration\":1,\"size\":-1.5e3,"
	"\"temporaryHold\":false,\"eventBasedHold\":true,\"metadata\":null,\"tags\":[],"
	"\"n\":[0,12,{}],\"name\":\"in/orders-ab12.csv\"}}";

static void test_one_byte_changes(void)
{
	static const char repl[] = "\"\\{}[],: 0-1.eE+tfnu\x01\x7f\xc3\t\vx";
	char doc[sizeof event];
	size_t n = sizeof event - 1;
	long before = compared;
	check(event, n, 64);
	for (size_t i = 0; i < n; i++) {
		/* without byte i */
		memcpy(doc, event, i);
		memcpy(doc + i, event + i + 1, n - i - 1);
		check(doc, n - 1, 64);
		/* byte i replaced */
		for (const char *r = repl; *r; r++) {
			if (*r == event[i])
				continue;
			memcpy(doc, event, n);
			doc[i] = *r;
			check(doc, n, 64);
		}
		/* cut after byte i */
		check(event, i + 1, 64);
	}
	fprintf(stderr, "\none-byte changes: %ld documents compared, %ld accepted in all\n",
		compared - before, accepted);
	CU_ASSERT_TRUE(compared - before > 10000);
}

/* expect_bad: doc is refused by both paths with a reason containing why. */
static void expect_bad(const char *doc, size_t len, const char *why)
{
	jr_arena a;
	char e[256] = "";
	arena_init(&a);
	const jr_json *v = jsonparse(&a, doc, len, 64, e, sizeof e);
	if (v || !strstr(e, why)) {
		fprintf(stderr, "[%.*s]: %s (%s), wanted an error with \"%s\"\n", (int)len, doc,
			v ? "accepted" : "refused", e, why);
		CU_FAIL("strict UTF-8 check");
	}
	check(doc, len, 64);
	arena_free(&a);
}

#define BAD(lit, why) expect_bad(lit, sizeof lit - 1, why)

static void test_strict_utf8(void)
{
	/* raw bytes yajl's own check takes: overlong, surrogate, past U+10FFFF */
	BAD("\"\xC0\x80\"", "invalid UTF-8 in the string ending at byte");
	BAD("\"\xE0\x80\xAF\"", "invalid UTF-8");
	BAD("\"\xED\xA0\x80\"", "invalid UTF-8");
	BAD("\"\xF4\x90\x80\x80\"", "invalid UTF-8");
	BAD("\"\xF5\x80\x80\x80\"", "invalid");
	BAD("{\"k\xC0\xAF\":1}", "invalid UTF-8");
	BAD("{\"id\":\"x\",\"data\":[\"ok\",\"\xED\xBF\xBF\"]}", "invalid UTF-8");
	/* escapes of half a surrogate pair */
	BAD("\"\\ud800\"", "unpaired surrogate escape \\ud800");
	BAD("\"\\udc00\"", "invalid UTF-8"); /* yajl writes a lone low one as ED B0 80 */
	BAD("\"\\uD800\\u0041\"", "unpaired surrogate escape");
	BAD("\"a\\ud83d\\ud83d\"", "unpaired surrogate escape");
	BAD("{\"\\udfff\":1}", "invalid UTF-8");
	BAD("{\"\\ud800x\":1}", "unpaired surrogate escape");
	/* still fine: a pair, an escaped backslash before u, a NUL escape */
	jr_arena a;
	arena_init(&a);
	char e[256];
	const jr_json *v = jsonparse(&a, "\"\\ud83d\\ude00\"", 14, 64, e, sizeof e);
	CU_ASSERT_PTR_NOT_NULL(v);
	v = jsonparse(&a, "\"\\\\ud800\"", 9, 64, e, sizeof e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->s, "\\ud800");
	v = jsonparse(&a, "\"x\\u0000y\"", 10, 64, e, sizeof e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(v->n, 3);
	CU_ASSERT_EQUAL(memcmp(v->s, "x\0y", 3), 0);
	arena_free(&a);
}

int main(void)
{
	static const cu_test tests[] = {
		{"edge cases", test_edge_cases},
		{"depth limit", test_depth_limit},
		{"strict UTF-8 in strings", test_strict_utf8},
		{"google-cloudevents test data", test_testdata},
		{"one-byte changes of an event", test_one_byte_changes},
		{NULL, NULL},
	};
	return cu_run("jsonparse", tests);
}
