#include "breaker.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

static void window_clear(jr_breaker *b)
{
	memset(b->bits, 0, ((size_t)b->c.window + 7) / 8);
	b->pos = b->n = b->fails = 0;
}

void breaker_init(jr_breaker *b, const jr_breaker_conf *c)
{
	memset(b, 0, sizeof *b);
	b->c = *c;
	if (b->c.window < 1)
		b->c.window = 1;
	if (b->c.half_open_calls < 1)
		b->c.half_open_calls = 1;
	b->bits = jr_calloc(((size_t)b->c.window + 7) / 8, 1);
	b->open_for_ms = b->c.open_for_ms;
}

void breaker_free(jr_breaker *b)
{
	free(b->bits);
	b->bits = NULL;
}

const char *breaker_state_name(jr_breaker_state s)
{
	static const char *const names[] = {"closed", "half_open", "open"};
	return (unsigned)s < 3 ? names[s] : "?";
}

double breaker_failure_rate(const jr_breaker *b)
{
	return b->n ? (double)b->fails / (double)b->n : 0.0;
}

int64_t breaker_remaining_ms(const jr_breaker *b, int64_t now_ms)
{
	if (b->state != JR_BREAKER_OPEN || now_ms >= b->open_until_ms)
		return 0;
	return b->open_until_ms - now_ms;
}

/* set_state: every state change goes through here. */
static void set_state(jr_breaker *b, jr_breaker_state s, int64_t now_ms)
{
	b->state = s;
	b->epoch++;
	b->probes_out = b->probes_ok = 0;
	if (s == JR_BREAKER_OPEN) {
		b->open_until_ms = now_ms + b->open_for_ms;
	} else if (s == JR_BREAKER_CLOSED) {
		b->open_for_ms = b->c.open_for_ms;
		window_clear(b);
	}
}

jr_breaker_pass breaker_allow(jr_breaker *b, int64_t now_ms)
{
	jr_breaker_pass p = {0};
	if (b->state == JR_BREAKER_OPEN) {
		if (now_ms < b->open_until_ms) {
			p.wait_ms = b->open_until_ms - now_ms;
			return p;
		}
		set_state(b, JR_BREAKER_HALF_OPEN, now_ms);
		p.changed = 1;
	}
	if (b->state == JR_BREAKER_HALF_OPEN) {
		if (b->probes_out + b->probes_ok >= b->c.half_open_calls)
			return p; /* held until the probes answer */
		b->probes_out++;
	}
	p.allowed = 1;
	p.ticket = b->epoch;
	return p;
}

static void window_add(jr_breaker *b, int failed)
{
	unsigned char *byte = &b->bits[b->pos / 8], bit = (unsigned char)(1u << (b->pos % 8));
	if (b->n == b->c.window) {
		if (*byte & bit)
			b->fails--;
	} else {
		b->n++;
	}
	if (failed) {
		*byte |= bit;
		b->fails++;
	} else {
		*byte &= (unsigned char)~bit;
	}
	b->pos = (b->pos + 1) % b->c.window;
}

void breaker_release(jr_breaker *b, uint32_t ticket)
{
	if (ticket == b->epoch && b->state == JR_BREAKER_HALF_OPEN)
		b->probes_out--; /* the probe's slot goes to the next call */
}

int breaker_record(jr_breaker *b, int64_t now_ms, uint32_t ticket, int failed)
{
	if (ticket != b->epoch || b->state == JR_BREAKER_OPEN)
		return 0;
	if (b->state == JR_BREAKER_CLOSED) {
		window_add(b, failed);
		if (b->n < b->c.min_calls || breaker_failure_rate(b) < b->c.failure_rate)
			return 0;
		b->opened_rate = breaker_failure_rate(b);
		b->open_for_ms = b->c.open_for_ms;
		window_clear(b);
		set_state(b, JR_BREAKER_OPEN, now_ms);
		return 1;
	}
	/* HALF_OPEN: a probe */
	b->probes_out--;
	if (failed) {
		int64_t next = b->open_for_ms > b->c.max_open_for_ms / 2 ? b->c.max_open_for_ms
									 : b->open_for_ms * 2;
		b->open_for_ms = next;
		set_state(b, JR_BREAKER_OPEN, now_ms);
		return 1;
	}
	if (++b->probes_ok < b->c.half_open_calls)
		return 0;
	set_state(b, JR_BREAKER_CLOSED, now_ms);
	return 1;
}
