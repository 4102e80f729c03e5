/*
 * fuzz_template.c — libFuzzer target: the input as a route template (an env
 * value, an argument, a job name) with variables and function pipelines,
 * compiled and, when it compiles, rendered against a fixed event that has
 * data, extensions, a Pub/Sub message and a decoded payload: once with room
 * to spare, once with a buffer of a few bytes (the "out's max is reached"
 * paths), and once with the payload as text (payload: auto). Compiling must
 * return a template or an error message; rendering must return one of its
 * documented codes with the fields it promises set; ASan and UBSan report
 * the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json.h"
#include "template.h"

#define FUZZ_TEMPLATE_MAX 4096
#define FUZZ_RENDER_MAX (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jr_json *str(jr_event *ev, const char *s)
{
	return json_new_string(&ev->arena, s, strlen(s));
}

static jr_json *num(jr_event *ev, const char *text)
{
	jr_json *v = json_new(&ev->arena, JR_JSON_NUMBER);
	v->s = text;
	v->n = strlen(text);
	return v;
}

static void put(jr_event *ev, jr_json *obj, const char *key, jr_json *v)
{
	json_obj_add(&ev->arena, obj, key, strlen(key), v);
}

/* fuzz_data: {"a": {"b": [1, "x", null]}, "blob": "aGVsbG8=", "s": "Hello, World", "n": 12.5, "nul": "a\u0000b"} */
static jr_json *fuzz_data(jr_event *ev)
{
	jr_json *d = json_new(&ev->arena, JR_JSON_OBJECT), *a = json_new(&ev->arena, JR_JSON_OBJECT);
	jr_json *b = json_new(&ev->arena, JR_JSON_ARRAY);
	json_arr_add(&ev->arena, b, num(ev, "1"));
	json_arr_add(&ev->arena, b, str(ev, "x"));
	json_arr_add(&ev->arena, b, json_new(&ev->arena, JR_JSON_NULL));
	put(ev, a, "b", b);
	put(ev, d, "a", a);
	put(ev, d, "blob", str(ev, "aGVsbG8="));
	put(ev, d, "s", str(ev, "Hello, World"));
	put(ev, d, "n", num(ev, "12.5"));
	put(ev, d, "nul", json_new_string(&ev->arena, "a\0b", 3));
	return d;
}

/* fuzz_payload: {"orderId": "O-1", "kind": "refund", "items": [{"sku": "A-1"}], "b64": "aGk=", "ok": true} */
static jr_json *fuzz_payload(jr_event *ev)
{
	jr_json *p = json_new(&ev->arena, JR_JSON_OBJECT), *items = json_new(&ev->arena, JR_JSON_ARRAY);
	jr_json *item = json_new(&ev->arena, JR_JSON_OBJECT);
	put(ev, item, "sku", str(ev, "A-1"));
	json_arr_add(&ev->arena, items, item);
	put(ev, p, "orderId", str(ev, "O-1"));
	put(ev, p, "kind", str(ev, "refund"));
	put(ev, p, "items", items);
	put(ev, p, "b64", str(ev, "aGk="));
	put(ev, p, "ok", json_new(&ev->arena, JR_JSON_TRUE));
	return p;
}

static jr_message *fuzz_message(jr_event *ev)
{
	static jr_kv attrs[] = {{"origin", "shop"}, {"ce-type", "x"}, {"empty", ""}};
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	memset(m, 0, sizeof *m);
	m->id = "m-1";
	m->publish_time = "2026-12-07T10:00:00Z";
	m->ordering_key = "k";
	m->data = "{\"orderId\":\"O-1\"}";
	m->data_len = strlen(m->data);
	m->attrs = attrs;
	m->n_attrs = sizeof attrs / sizeof attrs[0];
	return m;
}

/* fuzz_event: a new event with every kind of value a template can name. */
static jr_event *fuzz_event(void)
{
	jr_event *ev = event_new();
	*ev = (jr_event){.arena = ev->arena, .specversion = "1.0", .id = "id-1",
			 .source = "//pubsub.googleapis.com/projects/p/topics/t",
			 .type = "google.cloud.pubsub.topic.v1.messagePublished",
			 .subject = "a/b.csv", .time = "2026-12-07T10:00:00Z",
			 .datacontenttype = "application/json"};
	ev->ext = arena_alloc(&ev->arena, 3 * sizeof *ev->ext);
	ev->ext[0] = (jr_ext){"tenant", str(ev, "acme")};
	ev->ext[1] = (jr_ext){"size", num(ev, "1024")};
	ev->ext[2] = (jr_ext){"flag", json_new(&ev->arena, JR_JSON_TRUE)};
	ev->n_ext = 3;
	ev->data_kind = JR_DATA_JSON;
	ev->data_json = fuzz_data(ev);
	ev->message = fuzz_message(ev);
	ev->payload_done = 1;
	ev->payload_is_json = 1;
	ev->payload = fuzz_payload(ev);
	return ev;
}

/* render: t against ev into a buffer of at most max bytes; checks what tmpl_render promises. */
static void render(const jr_tmpl *t, jr_event *ev, size_t max)
{
	jr_buf out;
	jr_tmpl_err e;
	buf_init(&out, max);
	int rc = tmpl_render(t, ev, "route-1", &out, &e);
	if (rc < -4 || rc > 0 || (rc != 0 && rc != -2 && !e.name) || (rc == -4 && !e.why) ||
	    out.len > max)
		abort();
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_TEMPLATE_MAX)
		return 0;
	char *text = malloc(size + 1), *err = NULL;
	memcpy(text, data, size);
	text[size] = '\0';
	jr_tmpl *t = tmpl_compile(text, &err);
	if (!t) {
		if (!err || !*err)
			abort(); /* a refusal always says why */
		free(err);
		free(text);
		return 0;
	}
	if (strcmp(tmpl_source(t), text) != 0)
		abort();
	jr_event *ev = fuzz_event();
	render(t, ev, FUZZ_RENDER_MAX);
	render(t, ev, 8);
	ev->payload_is_json = 0; /* payload: auto, a body that is text */
	ev->payload = json_new_string(&ev->arena, "kind=refund", 11);
	render(t, ev, FUZZ_RENDER_MAX);
	event_free(ev);
	tmpl_free(t);
	free(text);
	return 0;
}
