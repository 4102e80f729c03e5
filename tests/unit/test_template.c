#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "template.h"
#include "testev.h"

/* A storage-like event with extensions, JSON data and a Pub/Sub message. */
static jr_event *sample(void)
{
	jr_event *ev = tev_new("ev-1", "//storage.googleapis.com/projects/_/buckets/b",
			       "google.cloud.storage.object.v1.finalized");
	ev->subject = "objects/a.csv";
	ev->time = "2024-05-01T08:15:42Z";
	ev->datacontenttype = "application/json";
	ev->dataschema = "https://example.com/schema.json";
	tev_ext(ev, "bucket", tev_str(ev, "uploads"));
	tev_ext(ev, "attempt", tev_num(ev, "3"));
	tev_ext(ev, "replayed", tev_lit(ev, JR_JSON_TRUE));
	jr_json *items = tev_arr(ev);
	tev_push(ev, items, tev_put(ev, tev_obj(ev), "sku", tev_str(ev, "W-9")));
	tev_push(ev, items, tev_put(ev, tev_obj(ev), "sku", tev_str(ev, "S-1")));
	jr_json *meta = tev_obj(ev);
	tev_put(ev, meta, "a", tev_num(ev, "1"));
	jr_json *flags = tev_arr(ev);
	tev_push(ev, flags, tev_lit(ev, JR_JSON_TRUE));
	tev_push(ev, flags, tev_lit(ev, JR_JSON_NULL));
	tev_put(ev, meta, "b", flags);
	jr_json *data = tev_obj(ev);
	tev_put(ev, data, "name", tev_str(ev, "in/a \"q\".csv"));
	tev_put(ev, data, "size", tev_num(ev, "48213"));
	tev_put(ev, data, "ratio", tev_num(ev, "1.5e3"));
	tev_put(ev, data, "ok", tev_lit(ev, JR_JSON_FALSE));
	tev_put(ev, data, "items", items);
	tev_put(ev, data, "meta", meta);
	tev_data_json(ev, data);
	jr_message *m = tev_message(ev, "m-42", "2024-05-01T08:15:43Z", "key-7");
	tev_msg_attr(ev, m, "env", "prod");
	tev_msg_attr(ev, m, "tenant", "acme");
	return ev;
}

/* render: the rendering of src for ev on route "r1"; "<missing:NAME>" or "<error>". */
static char *render(const char *src, jr_event *ev)
{
	char *err = NULL;
	jr_tmpl *t = tmpl_compile(src, &err);
	if (!t) {
		char *s = jr_asprintf("<compile:%s>", err);
		free(err);
		return s;
	}
	jr_buf out;
	buf_init(&out, 0);
	const char *missing = NULL;
	int rc = tmpl_render(t, ev, "r1", &out, &missing);
	char *s = rc == 0 ? buf_take(&out) : rc == -1 ? jr_asprintf("<missing:%s>", missing) :
		  rc == -3 ? jr_asprintf("<nul:%s>", missing) : jr_strdup("<error>");
	buf_free(&out);
	tmpl_free(t);
	return s;
}

#define CHECK_RENDER(ev, src, want)                      \
	do {                                             \
		char *got_ = render(src, ev);            \
		CU_ASSERT_STRING_EQUAL(got_, want);      \
		free(got_);                              \
	} while (0)

static void test_literal(void)
{
	char *err = NULL;
	jr_tmpl *t = tmpl_compile("plain text } {", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NULL(err);
	CU_ASSERT_TRUE(tmpl_is_literal(t));
	CU_ASSERT_STRING_EQUAL(tmpl_source(t), "plain text } {");
	tmpl_free(t);
	t = tmpl_compile("a{{id}}", &err);
	CU_ASSERT_FALSE(tmpl_is_literal(t));
	CU_ASSERT_STRING_EQUAL(tmpl_source(t), "a{{id}}");
	tmpl_free(t);
	t = tmpl_compile("", &err);
	CU_ASSERT_TRUE(tmpl_is_literal(t));
	tmpl_free(t);
	jr_event *ev = sample();
	CHECK_RENDER(ev, "", "");
	CHECK_RENDER(ev, "no vars }}", "no vars }}");
	event_free(ev);
}

static void test_context_attributes(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{id}}|{{source}}|{{type}}",
		     "ev-1|//storage.googleapis.com/projects/_/buckets/b|"
		     "google.cloud.storage.object.v1.finalized");
	CHECK_RENDER(ev, "{{subject}} {{time}} {{datacontenttype}} {{dataschema}} {{specversion}}",
		     "objects/a.csv 2024-05-01T08:15:42Z application/json "
		     "https://example.com/schema.json 1.0");
	event_free(ev);
}

static void test_extensions(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{bucket}}/{{attempt}}/{{replayed}}", "uploads/3/true");
	CHECK_RENDER(ev, "{{nosuchext}}", "<missing:nosuchext>");
	event_free(ev);
}

static void test_data(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{data.name}}", "in/a \"q\".csv");
	CHECK_RENDER(ev, "{{data.size}} {{data.ratio}} {{data.ok}}", "48213 1.5e3 false");
	CHECK_RENDER(ev, "{{data.items[1].sku}}", "S-1");
	CHECK_RENDER(ev, "{{data.meta}}", "{\"a\":1,\"b\":[true,null]}");
	CHECK_RENDER(ev, "{{data.meta.b}}", "[true,null]");
	CHECK_RENDER(ev, "{{data.items[2].sku}}", "<missing:data.items[2].sku>");
	CHECK_RENDER(ev, "{{data.name.x}}", "<missing:data.name.x>");
	CHECK_RENDER(ev, "{{data}}",
		     "{\"name\":\"in/a \\\"q\\\".csv\",\"size\":48213,\"ratio\":1.5e3,\"ok\":false,"
		     "\"items\":[{\"sku\":\"W-9\"},{\"sku\":\"S-1\"}],"
		     "\"meta\":{\"a\":1,\"b\":[true,null]}}");
	event_free(ev);

	ev = tev_new("1", "s", "t");
	jr_json *arr = tev_arr(ev);
	tev_push(ev, arr, tev_str(ev, "zero"));
	tev_push(ev, arr, tev_put(ev, tev_obj(ev), "k", tev_str(ev, "v")));
	tev_data_json(ev, arr);
	CHECK_RENDER(ev, "{{data[0]}}-{{data[1].k}}", "zero-v");
	event_free(ev);
}

static void test_data_kinds(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	CHECK_RENDER(ev, "{{data}}", "<missing:data>");
	CHECK_RENDER(ev, "[{{data?}}]", "[]");
	tev_data(ev, JR_DATA_TEXT, "hello, world", 12);
	CHECK_RENDER(ev, "{{data}}", "hello, world");
	CHECK_RENDER(ev, "{{data.x}}", "<missing:data.x>");
	tev_data(ev, JR_DATA_BINARY, "\x01\x02\x03\x04", 4);
	CHECK_RENDER(ev, "{{data}}", "AQIDBA==");
	tev_data_json(ev, tev_str(ev, "just text"));
	CHECK_RENDER(ev, "{{data}}", "just text");
	event_free(ev);
}

static void test_message(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{attributes.env}}-{{attributes.tenant}}", "prod-acme");
	CHECK_RENDER(ev, "{{message.id}} {{message.publish_time}} {{message.ordering_key}}",
		     "m-42 2024-05-01T08:15:43Z key-7");
	CHECK_RENDER(ev, "{{attributes.none}}", "<missing:attributes.none>");
	event_free(ev);

	ev = tev_new("1", "s", "t");
	CHECK_RENDER(ev, "{{message.id}}", "<missing:message.id>");
	CHECK_RENDER(ev, "{{attributes.env}}", "<missing:attributes.env>");
	CHECK_RENDER(ev, "<{{message.ordering_key?}}>", "<>");
	tev_message(ev, "m", NULL, NULL);
	CHECK_RENDER(ev, "{{message.publish_time}}", "<missing:message.publish_time>");
	event_free(ev);
}

static void test_route_name(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "route={{route}}", "route=r1");
	event_free(ev);
}

static void test_optional_and_whitespace(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{ id }}|{{\tid\t}}|{{id }}", "ev-1|ev-1|ev-1");
	CHECK_RENDER(ev, "a{{subject2?}}b", "ab");
	CHECK_RENDER(ev, "a{{ data.nope ? }}b{{ id? }}", "abev-1");
	CHECK_RENDER(ev, "x{{data.nope}}y{{missing2}}", "<missing:data.nope>");
	event_free(ev);
	ev = tev_new("1", "s", "t");
	CHECK_RENDER(ev, "{{subject}}", "<missing:subject>");
	CHECK_RENDER(ev, "{{subject?}}{{time?}}", "");
	event_free(ev);
}

static void check_compile_error(const char *src, const char *want)
{
	char *err = NULL;
	jr_tmpl *t = tmpl_compile(src, &err);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_STRING_EQUAL(err, want);
	free(err);
	tmpl_free(t);
}

static void test_compile_errors(void)
{
	check_compile_error("gs://{{data.bucket", "unclosed '{{' at column 6");
	check_compile_error("{{id}} {{", "unclosed '{{' at column 8");
	check_compile_error("a{{}}", "empty name in {{}}");
	check_compile_error("{{ ? }}", "empty name in {{}}");
	check_compile_error("{{a b}}", "invalid name 'a b' in {{...}}");
	check_compile_error("{{{id}}}", "invalid name '{id' in {{...}}");
	check_compile_error("{{message.foo}}",
			    "unknown name {{message.foo}} (an extension name is lower-case "
			    "letters, digits and '_')");
	check_compile_error("{{methodName}}",
			    "unknown name {{methodName}} (an extension name is lower-case "
			    "letters, digits and '_')");
	check_compile_error("{{data.}}", "bad data path in {{data.}}");
	check_compile_error("{{data.a..b}}", "bad data path in {{data.a..b}}");
	check_compile_error("{{data.a[x]}}", "bad data path in {{data.a[x]}}");
	check_compile_error("{{data.a[1}}", "bad data path in {{data.a[1}}");
	check_compile_error("{{data.a[1]b}}", "bad data path in {{data.a[1]b}}");
	check_compile_error("{{attributes.}}",
			    "unknown name {{attributes.}} (an extension name is lower-case "
			    "letters, digits and '_')");
}

/* A NUL byte in a rendered value is a render error naming the variable, never a cut value. */
static void test_nul_in_value(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	jr_json *o = tev_obj(ev);
	jr_json *ab = json_new_string(&ev->arena, "a\0b", 3);
	tev_put(ev, o, "s", ab);
	tev_put(ev, o, "n", tev_str(ev, "plain"));
	tev_data_json(ev, o);
	CHECK_RENDER(ev, "x={{data.s}}", "<nul:data.s>");
	CHECK_RENDER(ev, "{{data.n}}", "plain");
	CHECK_RENDER(ev, "{{data}}", "{\"s\":\"a\\u0000b\",\"n\":\"plain\"}"); /* JSON: escaped */
	tev_data(ev, JR_DATA_TEXT, "a\0b", 3);
	CHECK_RENDER(ev, "{{data}}", "<nul:data>");
	event_free(ev);
}

static void test_buffer_limit(void)
{
	jr_event *ev = sample();
	char *err = NULL;
	jr_tmpl *t = tmpl_compile("{{data}}", &err);
	jr_buf out;
	buf_init(&out, 16);
	const char *missing = NULL;
	CU_ASSERT_EQUAL(tmpl_render(t, ev, "r", &out, &missing), -2);
	buf_free(&out);
	tmpl_free(t);
	event_free(ev);
}

int main(void)
{
	static const cu_test tests[] = {
		{"literal", test_literal},
		{"context attributes", test_context_attributes},
		{"extensions", test_extensions},
		{"data and data paths", test_data},
		{"data kinds", test_data_kinds},
		{"message and attributes", test_message},
		{"route name", test_route_name},
		{"optional and whitespace", test_optional_and_whitespace},
		{"compile errors", test_compile_errors},
		{"buffer limit", test_buffer_limit},
		{"a NUL byte in a value", test_nul_in_value},
		{NULL, NULL},
	};
	return cu_run("template", tests);
}
