/*
 * fuzz_pbwire.c — libFuzzer entry point for the protobuf messages jobrelay
 * reads by hand from gRPC answers: the StreamingPullResponse
 * (pubsub_decode_response) and the RunJob Operation (runjob_decode_operation).
 * Every input goes to both. Checked: a refused StreamingPullResponse returns
 * nothing; a read one gives messages whose ack id is a string, whose data
 * lies inside the input, whose attributes are strings and whose counts agree;
 * its confirmations (pubsub_decode_confirmations) keep to their bounds;
 * an Operation gives an operation name or INTERNAL, and a status text that
 * fits its buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "pubsub.h"
#include "runjob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jr_arena a;
	arena_init(&a);
	jr_pubsub_msg *m = NULL;
	size_t n = 99;
	int rc = pubsub_decode_response(data, size, &a, &m, &n);
	if (rc < 0 && (m || n))
		abort();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const jr_pubsub_msg *o = &m[i];
		if (!o->ack_id || strlen(o->ack_id) > size)
			abort();
		if (o->data_len && (o->data < (const char *)data ||
				    o->data + o->data_len > (const char *)data + size))
			abort();
		/* strings keep their bytes, a NUL as two (UTF8_NUL_TEXT): at most 2 × the input */
		if (o->message_id && strlen(o->message_id) > 2 * size)
			abort();
		for (size_t k = 0; k < o->n_attrs; k++)
			if (!o->attrs[k].key || !o->attrs[k].value ||
			    strlen(o->attrs[k].key) + strlen(o->attrs[k].value) > 2 * size)
				abort();
		if (o->delivery_attempt < 0 || (o->publish_time && strlen(o->publish_time) > 30))
			abort();
	}
	arena_free(&a);

	arena_init(&a);
	jr_pubsub_conf c;
	rc = pubsub_decode_confirmations(data, size, &a, &c);
	for (int l = 0; l < JR_CONF_LISTS; l++) {
		if (c.n[l] > JR_PUBSUB_MAX_CONF_IDS || (rc < 0 && c.n[l]))
			abort();
		for (size_t i = 0; i < c.n[l]; i++)
			if (!c.ids[l][i] || !c.ids[l][i][0] || strlen(c.ids[l][i]) > 2 * JR_PUBSUB_MAX_ACK_ID)
				abort();
	}
	arena_free(&a);

	arena_init(&a);
	char msgbuf[RUNJOB_MAX_MESSAGE + 1];
	jr_runresult r = { .code = 0, .message = "", .retry_delay_ms = -1 };
	runjob_decode_operation(data, size, &a, &r, msgbuf);
	if (r.code == 0 && !r.operation)
		abort();
	if (!r.message || strlen(r.message) > RUNJOB_MAX_MESSAGE)
		abort();
	if ((r.execution && strlen(r.execution) > size) || (r.log_uri && strlen(r.log_uri) > size))
		abort();
	arena_free(&a);
	return 0;
}
