/*
 * fuzz_cesql.c — libFuzzer target: the input as a CESQL expression (a route's
 * `filters: - sql:`), compiled and, when it compiles, evaluated against a
 * fixed event with a small scratch buffer, so the scratch-full paths are
 * reachable, and again with a route's payload as extensions (payloadNAME,
 * event_ext_view). Whatever the bytes, compiling must return (an expression or an
 * error with a position inside the text) and evaluating must yield a value;
 * ASan and UBSan report the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cesql.h"
#include "event.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(jr_arena *a, jr_json *obj, const char *key, jr_json *v)
{
	json_obj_add(a, obj, key, strlen(key), v);
}

/* body: a route's decoded payload, {"orderId": "O-1", "Kind": "refund", "n": 42, "ok": true, "x": null}, built once. */
static const jr_json *body(void)
{
	static jr_arena a;
	static jr_json *p;
	if (p)
		return p;
	arena_init(&a);
	p = json_new(&a, JR_JSON_OBJECT);
	jr_json *n = json_new(&a, JR_JSON_NUMBER);
	n->s = "42";
	n->n = 2;
	put(&a, p, "orderId", json_new_string(&a, "O-1", 3));
	put(&a, p, "Kind", json_new_string(&a, "refund", 6));
	put(&a, p, "n", n);
	put(&a, p, "ok", json_new(&a, JR_JSON_TRUE));
	put(&a, p, "x", json_new(&a, JR_JSON_NULL));
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CESQL_MAX_TEXT + 16)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	cesql_parse_error err;
	cesql_expr *e = cesql_compile(text, &err);
	if (!e) {
		if (!err.message[0])
			abort(); /* a refusal always says why */
		free(text);
		return 0;
	}
	jr_event ev = {.specversion = "1.0", .id = "id-1", .source = "/fuzz", .type = "t.fuzz",
		       .subject = "a/b.csv", .time = "2026-12-07T10:00:00Z"};
	char buf[64];
	cesql_scratch s = {.buf = buf, .cap = sizeof buf};
	cesql_result res;
	cesql_eval(e, &ev, &s, &res);
	cesql_eval_view(e, &ev, body(), &s, &res); /* payloadorderid, payloadkind... */
	cesql_free(e);
	free(text);
	return 0;
}
