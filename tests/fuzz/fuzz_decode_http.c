/*
 * fuzz_decode_http.c — libFuzzer entry point for `.http` captures: the request
 * line and header parser, then every HTTP form (binary, structured, batch,
 * Pub/Sub push wrapped and unwrapped). Small limits make the limit paths
 * reachable; every event is checked for its invariants and freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "fuzz_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jr_decode_ctx dc = { .limits = &fuzz_limits, .origin = "fuzz", .topic = NULL,
			     .cb = fuzz_check_event, .arg = NULL };
	decode_http_capture(&dc, (const char *)data, size);
	return 0;
}
