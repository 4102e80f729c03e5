/*
 * test_json.c — the jr_json tree (dispatch/json.c), the yajl parser building
 * it (src/decode/jsonparse.c), and event.c's writers and base64.
 */
#include <string.h>

#include "cu.h"
#include "event.h"
#include "json.h"
#include "jsonparse.h"

static char perr[256];

static jr_json *parse(jr_arena *a, const char *s)
{
	perr[0] = '\0';
	return jsonparse(a, s, strlen(s), 64, perr, sizeof perr);
}

/* compact: v as compact JSON in a static buffer. */
static const char *compact(const jr_json *v)
{
	static char out[4096];
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(json_write(&b, v), 0);
	snprintf(out, sizeof out, "%s", b.data ? b.data : "");
	buf_free(&b);
	return out;
}

static void test_parse_roundtrip(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *v = parse(&a, " {\"a\": [1, 2.50, -3e2, true, false, null],\n \"b\": {\"c\": \"d\"}} ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(compact(v), "{\"a\":[1,2.50,-3e2,true,false,null],\"b\":{\"c\":\"d\"}}");
	CU_ASSERT_EQUAL(v->type, JR_JSON_OBJECT);
	CU_ASSERT_EQUAL(v->n, 2);
	const jr_json *arr = json_get(v, "a");
	CU_ASSERT_EQUAL(arr->n, 6);
	CU_ASSERT_EQUAL(arr->items[1]->type, JR_JSON_NUMBER);
	CU_ASSERT_STRING_EQUAL(arr->items[1]->s, "2.50");
	CU_ASSERT_STRING_EQUAL(json_get_str(json_get(v, "b"), "c"), "d");
	CU_ASSERT_PTR_NULL(json_get_str(v, "a"));
	CU_ASSERT_PTR_NULL(json_get(arr, "a"));
	arena_free(&a);
}

static void test_parse_scalars_and_strings(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *v = parse(&a, "\"a\\u0000b\\n\\u00e9\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(v->type, JR_JSON_STRING);
	CU_ASSERT_EQUAL(v->n, 6);
	CU_ASSERT_EQUAL(memcmp(v->s, "a\0b\n\xc3\xa9", 6), 0);
	CU_ASSERT_STRING_EQUAL(compact(v), "\"a\\u0000b\\n\xc3\xa9\"");
	v = parse(&a, "12345678901234567890123");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->s, "12345678901234567890123");
	v = parse(&a, "{\"k\":1,\"k\":2}");
	CU_ASSERT_EQUAL(v->n, 2);
	CU_ASSERT_STRING_EQUAL(json_get(v, "k")->s, "1");
	arena_free(&a);
}

static void test_parse_bom(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *v = parse(&a, "\xEF\xBB\xBF{\"x\":1}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(json_get(v, "x")->s, "1");
	arena_free(&a);
}

static void test_parse_errors(void)
{
	jr_arena a;
	arena_init(&a);
	CU_ASSERT_PTR_NULL(parse(&a, "{\"a\":1} x"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "trailing data"));
	CU_ASSERT_PTR_NULL(parse(&a, "{\"a\":1}{}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "trailing data"));
	CU_ASSERT_PTR_NULL(parse(&a, "{\"a\": tru}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON at byte"));
	CU_ASSERT_PTR_NULL(parse(&a, "{\"a\":1,}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON at byte"));
	CU_ASSERT_PTR_NULL(parse(&a, "{\"a\":"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON"));
	CU_ASSERT_PTR_NULL(parse(&a, ""));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON"));
	CU_ASSERT_PTR_NULL(parse(&a, "   "));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON"));
	CU_ASSERT_PTR_NULL(parse(&a, "\"\xff\xfe\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "invalid JSON"));
	CU_ASSERT_PTR_NULL(parse(&a, "/* c */ {}"));
	CU_ASSERT_PTR_NULL(parse(&a, "[1] // c"));
	arena_free(&a);
}

static void test_parse_error_offset(void)
{
	jr_arena a;
	arena_init(&a);
	CU_ASSERT_PTR_NULL(parse(&a, "{\"abc\": x}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(perr, "at byte 9: invalid char"));
	arena_free(&a);
}

static char *nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);
	for (int i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth * 2 - 1 - i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

static void test_parse_depth(void)
{
	jr_arena a;
	arena_init(&a);
	char *ok = nested(64), *deep = nested(65);
	CU_ASSERT_PTR_NOT_NULL(jsonparse(&a, ok, strlen(ok), 64, perr, sizeof perr));
	CU_ASSERT_PTR_NULL(jsonparse(&a, deep, strlen(deep), 64, perr, sizeof perr));
	CU_ASSERT_STRING_EQUAL(perr, "nesting deeper than 64");
	CU_ASSERT_PTR_NULL(jsonparse(&a, "{\"a\":{\"b\":{}}}", 14, 2, perr, sizeof perr));
	CU_ASSERT_STRING_EQUAL(perr, "nesting deeper than 2");
	free(ok);
	free(deep);
	arena_free(&a);
}

/* Strings are parsed in place in a copy: every value intact, the caller's text untouched. */
static void test_parse_in_place(void)
{
	jr_arena a;
	arena_init(&a);
	const char *text = "{\"k\":\"v\",\"\":\"\",\"n\":12,\"a\":[1,\"x\",{\"e\\u0041\":\"\\\"\"}],"
			   "\"z\":0}";
	char *mine = strdup(text);
	const jr_json *v = jsonparse(&a, mine, strlen(mine), 64, perr, sizeof perr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(mine, text);
	CU_ASSERT_STRING_EQUAL(json_get_str(v, "k"), "v");
	CU_ASSERT_STRING_EQUAL(json_get_str(v, ""), "");
	CU_ASSERT_STRING_EQUAL(json_get(v, "n")->s, "12");
	CU_ASSERT_EQUAL(json_get(v, "n")->n, 2);
	CU_ASSERT_STRING_EQUAL(json_get(v, "z")->s, "0");
	const jr_json *arr = json_get(v, "a");
	CU_ASSERT_STRING_EQUAL(arr->items[0]->s, "1");
	CU_ASSERT_STRING_EQUAL(arr->items[1]->s, "x");
	CU_ASSERT_STRING_EQUAL(json_get_str(arr->items[2], "eA"), "\"");
	CU_ASSERT_STRING_EQUAL(compact(v), "{\"k\":\"v\",\"\":\"\",\"n\":12,\"a\":[1,\"x\",{\"eA\":\"\\\"\"}],"
					   "\"z\":0}");
	/* a number that ends the document, and one yajl only completes at the end */
	v = parse(&a, "42");
	CU_ASSERT_STRING_EQUAL(v->s, "42");
	v = parse(&a, "[42]");
	CU_ASSERT_STRING_EQUAL(v->items[0]->s, "42");
	free(mine);
	arena_free(&a);
}

/* More members and deeper nesting than the parser keeps in its context; appending after. */
static void test_parse_large(void)
{
	jr_arena a;
	arena_init(&a);
	jr_buf b;
	buf_init(&b, 0);
	buf_addc(&b, '{');
	for (int i = 0; i < 300; i++) {
		char m[48];
		snprintf(m, sizeof m, "%s\"k%d\":[%d,\"s%d\"]", i ? "," : "", i, i, i);
		buf_adds(&b, m);
	}
	buf_adds(&b, ",\"deep\":");
	for (int i = 0; i < 40; i++)
		buf_addc(&b, '[');
	for (int i = 0; i < 40; i++)
		buf_addc(&b, ']');
	buf_addc(&b, '}');
	jr_json *v = parse(&a, b.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(v->n, 301);
	jr_buf out;
	buf_init(&out, 0);
	CU_ASSERT_EQUAL(json_write(&out, v), 0);
	CU_ASSERT_STRING_EQUAL(out.data, b.data);
	buf_free(&out);
	CU_ASSERT_STRING_EQUAL(json_get(v, "k299")->items[1]->s, "s299");
	json_obj_add(&a, v, "more", 4, json_new_string(&a, "x", 1));
	json_arr_add(&a, (jr_json *)json_get(v, "k7"), json_new(&a, JR_JSON_NULL));
	CU_ASSERT_EQUAL(v->n, 302);
	CU_ASSERT_STRING_EQUAL(json_get_str(v, "more"), "x");
	CU_ASSERT_STRING_EQUAL(compact(json_get(v, "k7")), "[7,\"s7\",null]");
	CU_ASSERT_STRING_EQUAL(compact(json_get(v, "k0")), "[0,\"s0\"]");
	buf_free(&b);
	arena_free(&a);
}

static void test_pointer(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *v = parse(&a, "{\"a\":[{\"b/c\":1,\"m~n\":2}],\"\":3,\"x\":{\"y\":\"z\"}}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_EQUAL(json_pointer(v, ""), v);
	CU_ASSERT_STRING_EQUAL(json_pointer(v, "/a/0/b~1c")->s, "1");
	CU_ASSERT_STRING_EQUAL(json_pointer(v, "/a/0/m~0n")->s, "2");
	CU_ASSERT_STRING_EQUAL(json_pointer(v, "/")->s, "3");
	CU_ASSERT_STRING_EQUAL(json_pointer(v, "/x/y")->s, "z");
	CU_ASSERT_PTR_NULL(json_pointer(v, "x/y"));
	CU_ASSERT_PTR_NULL(json_pointer(v, "/a/01"));
	CU_ASSERT_PTR_NULL(json_pointer(v, "/a/1"));
	CU_ASSERT_PTR_NULL(json_pointer(v, "/a/-1"));
	CU_ASSERT_PTR_NULL(json_pointer(v, "/a/0/m~2n"));
	CU_ASSERT_PTR_NULL(json_pointer(v, "/x/y/z"));
	CU_ASSERT_PTR_NULL(json_pointer(NULL, "/x"));
	/* a compiled pointer finds exactly what json_pointer finds */
	static const char *const ptrs[] = { "", "/a/0/b~1c", "/a/0/m~0n", "/", "/x/y", "x/y",
					    "/a/01", "/a/1", "/a/-1", "/a/0/m~2n", "/x/y/z",
					    "/a/0", "/a", "//", "/x/" };
	for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
		jr_json_ptr *p = json_ptr_compile(ptrs[i]);
		CU_ASSERT_PTR_EQUAL(json_ptr_get(v, p), json_pointer(v, ptrs[i]));
		json_ptr_free(p);
	}
	CU_ASSERT_PTR_NULL(json_ptr_compile("x/y"));
	CU_ASSERT_PTR_NULL(json_ptr_compile("/a/0/m~2n"));
	arena_free(&a);
}

static void test_path(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *v = parse(&a, "{\"a\":{\"b\":[{\"c\":\"d\"},[5]]},\"n\":7}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(json_path(v, "a.b[0].c")->s, "d");
	CU_ASSERT_STRING_EQUAL(json_path(v, "a.b[1][0]")->s, "5");
	CU_ASSERT_STRING_EQUAL(json_path(v, "n")->s, "7");
	CU_ASSERT_PTR_EQUAL(json_path(v, ""), v);
	CU_ASSERT_PTR_NULL(json_path(v, "a..b"));
	CU_ASSERT_PTR_NULL(json_path(v, "a.b[0"));
	CU_ASSERT_PTR_NULL(json_path(v, "a.b[x]"));
	CU_ASSERT_PTR_NULL(json_path(v, "a.b[2]"));
	CU_ASSERT_PTR_NULL(json_path(v, "a.b.c"));
	CU_ASSERT_PTR_NULL(json_path(v, "n.m"));
	CU_ASSERT_PTR_NULL(json_path(v, ".a"));
	const jr_json *arr = parse(&a, "[[1,2]]");
	CU_ASSERT_STRING_EQUAL(json_path(arr, "[0][1]")->s, "2");
	arena_free(&a);
}

static void test_write_escapes(void)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(jstr_write(&b, "q\"b\\s/\x01\t\r\n\b\f\x1f", 13), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "\"q\\\"b\\\\s/\\u0001\\t\\r\\n\\b\\f\\u001f\"");
	buf_free(&b);
	buf_init(&b, 8);
	CU_ASSERT_EQUAL(jstr_write(&b, "0123456789", 10), -1);
	buf_free(&b);
}

/* The 8-bytes-at-a-time scan finds every byte to escape, wherever it is; others pass. */
static void test_write_escape_positions(void)
{
	static const struct {
		char c;
		const char *esc;
	} special[] = { { '"', "\\\"" }, { '\\', "\\\\" }, { '\n', "\\n" },
			{ '\x01', "\\u0001" }, { '\x1f', "\\u001f" }, { '\0', "\\u0000" } };
	jr_buf b, want;
	buf_init(&b, 0);
	buf_init(&want, 0);
	for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) {
		for (size_t len = 1; len <= 24; len++) {
			for (size_t at = 0; at < len; at++) {
				char s[24];
				for (size_t i = 0; i < len; i++)
					s[i] = (char)(i % 3 == 0 ? 'a' + (char)i : i % 3 == 1 ? '\xc3' : '\xa9');
				s[at] = special[k].c;
				buf_reset(&want);
				buf_addc(&want, '"');
				buf_add(&want, s, at);
				buf_adds(&want, special[k].esc);
				buf_add(&want, s + at + 1, len - at - 1);
				buf_addc(&want, '"');
				buf_reset(&b);
				CU_ASSERT_EQUAL(jstr_write(&b, s, len), 0);
				CU_ASSERT_EQUAL(b.len, want.len);
				CU_ASSERT_EQUAL(memcmp(b.data, want.data, want.len), 0);
			}
		}
	}
	buf_reset(&b);
	CU_ASSERT_EQUAL(jstr_write(&b, " !#[]~\x7f\x80\xff/", 10), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "\" !#[]~\x7f\x80\xff/\"");
	buf_free(&b);
	buf_free(&want);
}

static void test_render(void)
{
	jr_arena a;
	arena_init(&a);
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(json_render(&b, json_new_string(&a, "plain \"text\"", 12)), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "plain \"text\"");
	buf_reset(&b);
	CU_ASSERT_EQUAL(json_render(&b, parse(&a, "{ \"a\" : [ 1 , \"x\" ] }")), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "{\"a\":[1,\"x\"]}");
	buf_reset(&b);
	CU_ASSERT_EQUAL(json_render(&b, parse(&a, "1.0e5")), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "1.0e5");
	buf_free(&b);
	arena_free(&a);
}

static void test_builders(void)
{
	jr_arena a;
	arena_init(&a);
	jr_json *o = json_new(&a, JR_JSON_OBJECT);
	char key[16];
	for (int i = 0; i < 37; i++) {
		int n = snprintf(key, sizeof key, "k%d", i);
		json_obj_add(&a, o, arena_strndup(&a, key, (size_t)n), (size_t)n,
			     json_new_string(&a, key, (size_t)n));
	}
	CU_ASSERT_EQUAL(o->n, 37);
	for (int i = 0; i < 37; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CU_ASSERT_STRING_EQUAL(json_get_str(o, key), key);
	}
	jr_json *arr = json_new(&a, JR_JSON_ARRAY);
	for (int i = 0; i < 100; i++)
		json_arr_add(&a, arr, json_new(&a, i % 2 ? JR_JSON_TRUE : JR_JSON_FALSE));
	CU_ASSERT_EQUAL(arr->n, 100);
	CU_ASSERT_EQUAL(arr->items[99]->type, JR_JSON_TRUE);
	CU_ASSERT_EQUAL(arr->items[0]->type, JR_JSON_FALSE);
	CU_ASSERT_STRING_EQUAL(compact(json_new(&a, JR_JSON_ARRAY)), "[]");
	CU_ASSERT_STRING_EQUAL(compact(json_new(&a, JR_JSON_OBJECT)), "{}");
	arena_free(&a);
}

static void test_base64(void)
{
	jr_arena a;
	arena_init(&a);
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(base64_encode(&b, "Ma", 2), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "TWE=");
	buf_reset(&b);
	CU_ASSERT_EQUAL(base64_encode(&b, "\x01\x02\x03\x04", 4), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "AQIDBA==");
	buf_reset(&b);
	CU_ASSERT_EQUAL(base64_encode(&b, "", 0), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
	char *out;
	CU_ASSERT_EQUAL(base64_decode(&a, "TWE=", 4, &out), 2);
	CU_ASSERT_EQUAL(memcmp(out, "Ma", 2), 0);
	CU_ASSERT_EQUAL(base64_decode(&a, "TWE", 3, &out), 2);
	CU_ASSERT_EQUAL(base64_decode(&a, "dGVzdCBtZXNzYWdlIDM=", 20, &out), 14);
	CU_ASSERT_STRING_EQUAL(out, "test message 3");
	CU_ASSERT_EQUAL(base64_decode(&a, "-_8=", 4, &out), 2);
	CU_ASSERT_EQUAL((unsigned char)out[0], 0xfb);
	CU_ASSERT_EQUAL((unsigned char)out[1], 0xff);
	CU_ASSERT_EQUAL(base64_decode(&a, "", 0, &out), 0);
	CU_ASSERT_EQUAL(base64_decode(&a, "T", 1, &out), -1);
	CU_ASSERT_EQUAL(base64_decode(&a, "TW=E", 4, &out), -1);
	CU_ASSERT_EQUAL(base64_decode(&a, "TWE==", 5, &out), -1);
	CU_ASSERT_EQUAL(base64_decode(&a, "TW E", 4, &out), -1);
	CU_ASSERT_EQUAL(base64_decode(&a, "T!E=", 4, &out), -1);
	arena_free(&a);
}

static jr_event *sample_event(void)
{
	jr_event *ev = event_new();
	ev->specversion = "1.0";
	ev->id = "id-1";
	ev->source = "/src";
	ev->type = "t.x";
	ev->subject = "sub";
	ev->ext = arena_alloc(&ev->arena, 3 * sizeof *ev->ext);
	ev->ext[0].name = "count";
	ev->ext[0].value = jsonparse(&ev->arena, "42", 2, 4, NULL, 0);
	ev->ext[1].name = "flag";
	ev->ext[1].value = json_new(&ev->arena, JR_JSON_TRUE);
	ev->ext[2].name = "name";
	ev->ext[2].value = json_new_string(&ev->arena, "v\"1", 3);
	ev->n_ext = 3;
	return ev;
}

static void test_event_attr(void)
{
	jr_event *ev = sample_event();
	CU_ASSERT_STRING_EQUAL(event_attr(ev, "id"), "id-1");
	CU_ASSERT_STRING_EQUAL(event_attr(ev, "subject"), "sub");
	CU_ASSERT_PTR_NULL(event_attr(ev, "time"));
	CU_ASSERT_STRING_EQUAL(event_attr(ev, "count"), "42");
	CU_ASSERT_STRING_EQUAL(event_attr(ev, "flag"), "true");
	CU_ASSERT_STRING_EQUAL(event_attr(ev, "name"), "v\"1");
	CU_ASSERT_PTR_NULL(event_attr(ev, "missing"));
	CU_ASSERT_PTR_NOT_NULL(event_ext(ev, "count"));
	CU_ASSERT_PTR_NULL(event_ext(ev, "id"));
	CU_ASSERT_PTR_NULL(event_msg_attr(ev, "a"));
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	jr_kv kv[1] = { { "env", "prod" } };
	m->attrs = kv;
	m->n_attrs = 1;
	ev->message = m;
	CU_ASSERT_STRING_EQUAL(event_msg_attr(ev, "env"), "prod");
	CU_ASSERT_PTR_NULL(event_msg_attr(ev, "ENV"));
	event_free(ev);
	event_free(NULL);
}

static const char *structured(const jr_event *ev)
{
	static char out[1024];
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(event_write_structured(&b, ev), 0);
	snprintf(out, sizeof out, "%s", b.data);
	buf_free(&b);
	return out;
}

static void test_write_structured(void)
{
	jr_event *ev = sample_event();
	CU_ASSERT_STRING_EQUAL(structured(ev),
		"{\"specversion\":\"1.0\",\"id\":\"id-1\",\"source\":\"/src\",\"type\":\"t.x\","
		"\"subject\":\"sub\",\"count\":42,\"flag\":true,\"name\":\"v\\\"1\"}");
	ev->data_kind = JR_DATA_TEXT;
	ev->data = "hi\n";
	ev->data_len = 3;
	CU_ASSERT_PTR_NOT_NULL(strstr(structured(ev), ",\"data\":\"hi\\n\"}"));
	ev->data_kind = JR_DATA_BINARY;
	ev->data = "Ma";
	ev->data_len = 2;
	CU_ASSERT_PTR_NOT_NULL(strstr(structured(ev), ",\"data_base64\":\"TWE=\"}"));
	ev->data_kind = JR_DATA_JSON;
	ev->data_json = jsonparse(&ev->arena, "{ \"a\": [1] }", 12, 8, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(structured(ev), ",\"data\":{\"a\":[1]}}"));
	jr_buf small;
	buf_init(&small, 16);
	CU_ASSERT_EQUAL(event_write_structured(&small, ev), -1);
	buf_free(&small);
	event_free(ev);
}

static void test_write_message(void)
{
	jr_kv kv[2] = { { "a", "1" }, { "b\"", "2" } };
	jr_message m = { .id = "m1", .publish_time = "2021-02-05T04:06:14.109Z", .data = "Ma",
			 .data_len = 2, .attrs = kv, .n_attrs = 2 };
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(event_write_message(&b, &m), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "{\"data\":\"TWE=\",\"attributes\":{\"a\":\"1\",\"b\\\"\":\"2\"},"
				       "\"messageId\":\"m1\",\"publishTime\":\"2021-02-05T04:06:14.109Z\"}");
	buf_reset(&b);
	m.ordering_key = "k";
	m.n_attrs = 0;
	CU_ASSERT_EQUAL(event_write_message(&b, &m), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\"attributes\":{},"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, ",\"orderingKey\":\"k\"}"));
	buf_free(&b);
}

/* jstr_write_text: any bytes give a valid JSON string of valid UTF-8; the valid text is kept. */
static void test_write_text(void)
{
	static const struct { const char *in; size_t n; const char *want; } cases[] = {
		{ "plain", 5, "\"plain\"" },
		{ "caf\xc3\xa9 \"q\"", 9, "\"caf\xc3\xa9 \\\"q\\\"\"" },
		{ "dl-\xff", 4, "\"dl-\xef\xbf\xbd\"" },
		{ "\xc0\xaf\n", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\\n\"" },
		{ "a\0b\xed\xa0\x80", 6, "\"a\\u0000b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		jr_buf b;
		buf_init(&b, 0);
		CU_ASSERT_EQUAL(jstr_write_text(&b, cases[i].in, cases[i].n), 0);
		CU_ASSERT_TRUE(b.len == strlen(cases[i].want) && memcmp(b.data, cases[i].want, b.len) == 0);
		jr_arena a;
		arena_init(&a);
		CU_ASSERT_PTR_NOT_NULL(jsonparse(&a, b.data, b.len, 4, NULL, 0));
		arena_free(&a);
		buf_free(&b);
	}
	jr_buf small;
	buf_init(&small, 6);
	CU_ASSERT_EQUAL(jstr_write_text(&small, "ab\xff" "cd", 5), -1);
	CU_ASSERT_EQUAL(small.len, 0); /* nothing half written */
	buf_free(&small);
}

int main(void)
{
	static const cu_test tests[] = {
		{ "parse_roundtrip", test_parse_roundtrip },
		{ "parse_scalars_and_strings", test_parse_scalars_and_strings },
		{ "parse_bom", test_parse_bom },
		{ "parse_errors", test_parse_errors },
		{ "parse_error_offset", test_parse_error_offset },
		{ "parse_depth", test_parse_depth },
		{ "parse_in_place", test_parse_in_place },
		{ "parse_large", test_parse_large },
		{ "pointer", test_pointer },
		{ "path", test_path },
		{ "write_escapes", test_write_escapes },
		{ "write_escape_positions", test_write_escape_positions },
		{ "write_text", test_write_text },
		{ "render", test_render },
		{ "builders", test_builders },
		{ "base64", test_base64 },
		{ "event_attr", test_event_attr },
		{ "write_structured", test_write_structured },
		{ "write_message", test_write_message },
		{ NULL, NULL },
	};
	return cu_run("json", tests);
}
