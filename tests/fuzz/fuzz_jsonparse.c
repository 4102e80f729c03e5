/*
 * fuzz_jsonparse.c — differential: jsonparse (the plain-document fast path
 * in front of yajl) must give exactly what yajl alone gives: the same tree
 * (compared as compact JSON) or the same rejection with the same message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jr_arena a, b;
	char ea[256] = "", eb[256] = "";
	arena_init(&a);
	arena_init(&b);
	int depth = 1 + (int)(size % 24);
	const jr_json *fast = jsonparse(&a, (const char *)data, size, depth, ea, sizeof ea);
	const jr_json *ref = jsonparse_yajl(&b, (const char *)data, size, depth, eb, sizeof eb);
	if (!fast != !ref)
		abort();
	if (!fast) {
		if (strcmp(ea, eb) != 0)
			abort();
	} else {
		jr_buf wa, wb;
		buf_init(&wa, 0);
		buf_init(&wb, 0);
		json_write(&wa, fast);
		json_write(&wb, ref);
		if (wa.len != wb.len || memcmp(wa.data, wb.data, wa.len) != 0)
			abort();
		buf_free(&wa);
		buf_free(&wb);
	}
	arena_free(&a);
	arena_free(&b);
	return 0;
}
