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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_event(void *arg, jr_event *ev, const char *err)
{
	(void)arg;
	if (!ev) {
		if (!err || !*err)
			abort(); /* a rejection always says why */
		return;
	}
	char why[256];
	if (decode_validate(ev, why, sizeof why) != 0)
		abort(); /* a delivered event is always valid */
	jr_buf out;
	buf_init(&out, 0);
	event_write_structured(&out, ev);
	buf_free(&out);
	event_free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const jr_limits lim = { .event_bytes = 1 << 16, .json_depth = 16,
				       .attributes = 20, .header_bytes = 4096 };
	jr_decode_ctx dc = { .limits = &lim, .origin = "fuzz", .topic = NULL,
			     .cb = on_event, .arg = NULL };
	decode_http_capture(&dc, (const char *)data, size);
	return 0;
}
