/*
 * fuzz_push.c — libFuzzer entry point for JSON documents: Pub/Sub push bodies
 * (and so the three rules of docs/decoding.md on the message inside), structured
 * events, batches and dead-letter records, all through decode_json_doc.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "decode.h"
#include "fuzz_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jr_decode_ctx dc = { .limits = &fuzz_limits, .origin = "fuzz",
			     .topic = size % 2 ? "projects/fuzz/topics/t" : NULL,
			     .cb = fuzz_check_event, .arg = NULL };
	decode_json_doc(&dc, (const char *)data, size);
	return 0;
}
