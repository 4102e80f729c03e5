/*
 * fuzz_event.h — the decode callback the decoder fuzz targets share: a
 * rejection must say why, a delivered event must be valid and re-encode
 * (structured, and its Pub/Sub message when it has one); then it is freed.
 */
#ifndef JR_FUZZ_EVENT_H
#define JR_FUZZ_EVENT_H

#include <stdlib.h>

#include "decode.h"

static void fuzz_check_event(void *arg, jr_event *ev, const char *err)
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

/* Small limits, so the limit paths are reachable. */
static const jr_limits fuzz_limits = {.event_bytes = 1 << 16, .json_depth = 16,
				      .attributes = 20, .header_bytes = 4096};

#endif
