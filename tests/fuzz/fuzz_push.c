/*
 * fuzz_push.c — libFuzzer entry point for JSON documents: Pub/Sub push bodies
 * (and so the three rules of product.md §3 on the message inside), structured
 * events, batches and dead-letter records, all through decode_json_doc.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
	if (ev->message)
		event_write_message(&out, ev->message);
	buf_free(&out);
	event_free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const jr_limits lim = { .event_bytes = 1 << 16, .json_depth = 16,
				       .attributes = 20, .header_bytes = 4096 };
	jr_decode_ctx dc = { .limits = &lim, .origin = "fuzz",
			     .topic = size % 2 ? "projects/fuzz/topics/t" : NULL,
			     .cb = on_event, .arg = NULL };
	decode_json_doc(&dc, (const char *)data, size);
	return 0;
}
