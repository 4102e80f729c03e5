/*
 * fuzz_cesql.c — libFuzzer target: the input as a CESQL expression (a route's
 * `filters: - sql:`), compiled and, when it compiles, evaluated against a
 * fixed event with a small scratch buffer, so the scratch-full paths are
 * reachable. Whatever the bytes, compiling must return (an expression or an
 * error with a position inside the text) and evaluating must yield a value;
 * ASan and UBSan report the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cesql.h"
#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	cesql_free(e);
	free(text);
	return 0;
}
