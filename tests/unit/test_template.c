#include <stdio.h>
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
	jr_tmpl_err e;
	int rc = tmpl_render(t, ev, "r1", &out, &e);
	char *s = rc == 0 ? buf_take(&out) : rc == -1 ? jr_asprintf("<missing:%s>", e.name) :
		  rc == -3 ? jr_asprintf("<nul:%s>", e.name) :
		  rc == -4 ? jr_asprintf("<fn:%s@%zu:%s>", e.name, e.column, e.why) :
		  jr_strdup("<error>");
	buf_free(&out);
	tmpl_free(t);
	return s;
}

#define CHECK_RENDER(ev, src, want)                      \
	do {                                             \
		char *got_ = render(src, ev);            \
		if (strcmp(got_, want)) { fprintf(stderr, "GOT %s\n", got_); } CU_ASSERT_STRING_EQUAL(got_, want);      \
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
	if (strcmp(err, want)) { fprintf(stderr, "GOT %s\n", err); } CU_ASSERT_STRING_EQUAL(err, want);
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
	CU_ASSERT_EQUAL(tmpl_render(t, ev, "r", &out, NULL), -2);
	buf_free(&out);
	tmpl_free(t);
	event_free(ev);
}

/* The functions, each on its own and in pipelines; absent values and default. */
static void test_functions(void)
{
	jr_event *ev = sample();
	CHECK_RENDER(ev, "{{ data.nope | default \"none\" }}", "none");
	CHECK_RENDER(ev, "{{ data.name | default \"none\" }}", "in/a \"q\".csv");
	CHECK_RENDER(ev, "{{ data.meta.b[1] | default \"was null\" }}", "was null");
	CHECK_RENDER(ev, "{{ subject2 | default \"a \\\"b\\\" \\\\ }}c\" }}", "a \"b\" \\ }}c");
	CHECK_RENDER(ev, "{{ attributes.env | upper }}-{{ bucket | upper | lower }}", "PROD-uploads");
	CHECK_RENDER(ev, "{{ attributes.tenant | b64enc }}", "YWNtZQ==");
	CHECK_RENDER(ev, "{{ attributes.tenant | b64enc | b64dec }}", "acme");
	CHECK_RENDER(ev, "{{ data.meta | toJson }}", "{\"a\":1,\"b\":[true,null]}");
	CHECK_RENDER(ev, "{{ data.name | toJson }}", "\"in/a \\\"q\\\".csv\"");
	CHECK_RENDER(ev, "{{ data.items[0].sku | lower | toJson }}", "\"w-9\"");
	CHECK_RENDER(ev, "{{ data.size | toJson }}", "48213");
	CHECK_RENDER(ev, "{{ id | toJson }}", "\"ev-1\"");
	CHECK_RENDER(ev, "{{ subject | substring 8 1 }}|{{ subject | substring 0 100 }}",
		     "a|objects/a.csv");
	CHECK_RENDER(ev, "[{{ subject | substring 50 2 }}]", "[]");
	CHECK_RENDER(ev, "{{ subject | split \"/\" 0 }} {{ subject | split \"/\" -1 }}",
		     "objects a.csv");
	CHECK_RENDER(ev, "{{ source | split \"/\" 2 }}", "storage.googleapis.com");
	CHECK_RENDER(ev, "{{ subject | split \"/\" 5 }}", "<missing:subject>");
	CHECK_RENDER(ev, "{{ subject | split \"/\" 5 | default \"-\" }}", "-");
	CHECK_RENDER(ev, "[{{ subject | split \"/\" -3 ? }}]", "[]");
	CHECK_RENDER(ev, "[{{ data.nope? | upper }}]", "[]");
	CHECK_RENDER(ev, "{{ data.nope | upper }}", "<missing:data.nope>");
	CHECK_RENDER(ev, "{{data.items|toJson}}", "[{\"sku\":\"W-9\"},{\"sku\":\"S-1\"}]");
	event_free(ev);

	ev = tev_new("1", "s", "t");
	jr_json *o = tev_obj(ev);
	tev_put(ev, o, "u", tev_str(ev, "h\xc3\xa9llo w\xc3\xb6rld"));
	tev_put(ev, o, "e", tev_str(ev, ""));
	tev_put(ev, o, "bin", tev_str(ev, "/w=="));
	tev_put(ev, o, "bad", tev_str(ev, "no*base64"));
	tev_put(ev, o, "nul", tev_str(ev, "AA=="));
	tev_data_json(ev, o);
	CHECK_RENDER(ev, "{{ data.u | substring 1 4 }}", "\xc3\xa9llo");
	CHECK_RENDER(ev, "{{ data.u | upper }}", "H\xc3\xa9LLO W\xc3\xb6RLD");
	CHECK_RENDER(ev, "{{ data.e | default \"empty\" }}", "empty");
	CHECK_RENDER(ev, "{{ data.e | b64enc }}|{{ data.e | split \",\" 0 }}", "|");
	CHECK_RENDER(ev, "x{{ data.bad | b64dec }}",
		     "<fn:data.bad@16:b64dec: the value is not base64>");
	CHECK_RENDER(ev, "{{ data.bin | b64dec }}",
		     "<fn:data.bin@15:b64dec: the decoded bytes are not UTF-8 text>");
	CHECK_RENDER(ev, "{{ data.nul | b64dec }}",
		     "<fn:data.nul@15:b64dec: the decoded bytes are not UTF-8 text>");
	event_free(ev);
}

static void test_function_errors(void)
{
	check_compile_error("{{ data.x | lowr }}",
			    "unknown function 'lowr' at column 13 (default, b64enc, b64dec, "
			    "toJson, lower, upper, substring, split)");
	check_compile_error("ab{{ id | }}", "expected a function name after '|' at column 10");
	check_compile_error("{{ id || lower }}", "expected a function name after '|' at column 8");
	check_compile_error("{{ id | default }}",
			    "default takes 1 argument (default \"TEXT\") at column 9");
	check_compile_error("{{ id | lower \"x\" }}",
			    "lower takes 0 arguments (lower) at column 9");
	check_compile_error("{{ id | substring 1 }}",
			    "substring takes 2 arguments (substring START LENGTH) at column 9");
	check_compile_error("{{ id | substring 1 2 3 }}",
			    "substring takes 2 arguments (substring START LENGTH) at column 9");
	check_compile_error("{{ id | substring \"1\" 2 }}",
			    "substring: argument 1 must be an integer at column 19");
	check_compile_error("{{ id | split \"/\" x }}", "expected an integer at column 19");
	check_compile_error("{{ id | split 1 2 }}",
			    "split: argument 1 must be a \"string\" at column 15");
	check_compile_error("{{ id | split \"\" 1 }}",
			    "split: the separator must not be empty at column 9");
	check_compile_error("{{ id | substring -1 2 }}",
			    "substring: START and LENGTH must not be negative at column 9");
	check_compile_error("{{ id | substring 1 99999999999 }}", "integer out of range at column 21");
	check_compile_error("{{ id | default \"x }}", "unclosed '{{' at column 1");
	check_compile_error("{{ id | upper! }}", "unexpected character at column 14");
	check_compile_error("{{ nope.x | upper }}",
			    "unknown name {{nope.x}} (an extension name is lower-case letters, "
			    "digits and '_')");
	check_compile_error("{{ payload.a..b | upper }}", "bad payload path in {{payload.a..b}}");
}

/* {{payload...}} reads ev->payload, which route_payload fills (test_route tests that). */
static void test_payload(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	char *err = NULL;
	jr_tmpl *t = tmpl_compile("{{ payload.kind? }}", &err);
	CU_ASSERT_TRUE(tmpl_uses_payload(t));
	tmpl_free(t);
	t = tmpl_compile("{{ data.kind }}", &err);
	CU_ASSERT_FALSE(tmpl_uses_payload(t));
	tmpl_free(t);
	CHECK_RENDER(ev, "{{payload}}", "<missing:payload>");
	CHECK_RENDER(ev, "[{{payload.kind?}}]", "[]");
	jr_json *p = tev_obj(ev);
	tev_put(ev, p, "orderId", tev_str(ev, "O-1"));
	tev_put(ev, p, "kind", tev_str(ev, "refund"));
	tev_put(ev, p, "lines", tev_push(ev, tev_arr(ev), tev_num(ev, "2")));
	ev->payload = p;
	ev->payload_is_json = 1;
	CHECK_RENDER(ev, "{{payload.orderId}}:{{ payload.kind | upper }}:{{payload.lines[0]}}",
		     "O-1:REFUND:2");
	CHECK_RENDER(ev, "{{payload}}", "{\"orderId\":\"O-1\",\"kind\":\"refund\",\"lines\":[2]}");
	ev->payload = tev_str(ev, "plain text");
	ev->payload_is_json = 0;
	CHECK_RENDER(ev, "{{payload}}|{{payload.kind?}}", "plain text|");
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
		{"functions", test_functions},
		{"function errors at compile time", test_function_errors},
		{"payload", test_payload},
		{NULL, NULL},
	};
	return cu_run("template", tests);
}
