/*
 * deadletter.c — the dead-letter record as one JSON object (docs/dead-letter.md).
 */
#include "deadletter.h"

#include <string.h>

#include "json.h"
#include "log.h"
#include "utf8.h"

static void add_str_member(jr_buf *out, const char *key, const char *v)
{
	jstr_write(out, key, strlen(key));
	buf_addc(out, ':');
	if (v)
		jstr_write_text(out, v, strlen(v));
	else
		buf_adds(out, "null");
}

static void add_rfc3339_ms(jr_buf *out, int64_t ms)
{
	char t[32];
	log_time_text(ms, t);
	buf_addc(out, '"');
	buf_adds(out, t);
	buf_addc(out, '"');
}

/* add_raw: bytes as "raw" when they are UTF-8 text, else as "raw_base64". */
static void add_raw(jr_buf *out, const char *p, size_t n)
{
	if (utf8_valid(p, n)) {
		buf_adds(out, ",\"raw\":");
		jstr_write(out, p, n);
	} else {
		buf_adds(out, ",\"raw_base64\":\"");
		base64_encode(out, p, n);
		buf_addc(out, '"');
	}
}

/*
 * add_event: the event (and its message) as JSON. Every decoded event is
 * valid UTF-8; should one not be, what would have been its "event" goes as
 * "raw_base64", so the line stays readable (replay then refuses it, named).
 */
static void add_event(jr_buf *out, const jr_event *ev)
{
	size_t start = out->len;
	buf_adds(out, ",\"event\":");
	size_t ev_at = out->len;
	event_write_structured(out, ev);
	size_t ev_end = out->len;
	if (ev->message) {
		buf_adds(out, ",\"message\":");
		event_write_message(out, ev->message);
	}
	if (utf8_valid(out->data + start, out->len - start))
		return;
	jr_buf copy;
	buf_init(&copy, 0);
	buf_add(&copy, out->data + ev_at, ev_end - ev_at);
	out->len = start;
	add_raw(out, copy.data, copy.len);
	buf_free(&copy);
}

int deadletter_write_json(jr_buf *out, const jr_dlrecord *r)
{
	buf_adds(out, "{\"failed_at\":");
	add_rfc3339_ms(out, r->failed_at_ms);
	buf_addc(out, ',');
	add_str_member(out, "origin", r->origin);
	buf_addc(out, ',');
	add_str_member(out, "route", r->route);
	buf_printf(out, ",\"attempts\":%d,\"error\":{", r->attempts);
	add_str_member(out, "class", errclass_name(r->cls));
	buf_addc(out, ',');
	add_str_member(out, "code", r->code);
	buf_adds(out, ",\"message\":");
	const char *m = r->message ? r->message : "";
	jstr_write_text(out, m, utf8_cut(m, strlen(m), DEADLETTER_MESSAGE_MAX));
	buf_addc(out, '}');
	if (r->ev)
		add_event(out, r->ev);
	else if (r->raw)
		add_raw(out, r->raw, r->raw_len);
	return buf_addc(out, '}');
}
