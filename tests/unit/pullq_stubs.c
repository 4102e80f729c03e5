/*
 * pullq_stubs.c — the pull queue's ports as recorders, and a stepped clock
 * (pullq_stubs.h). Compiled into test_pullq only.
 */
#include "pullq_stubs.h"

#include <stdio.h>
#include <string.h>

#include "cu.h"

static void record(stubs *s, stub_act_kind kind, const char *id, int n)
{
	CU_ASSERT_FATAL(s->n_acts < STUB_ACTS);
	stub_act *a = &s->acts[s->n_acts++];
	a->kind = kind;
	snprintf(a->id, sizeof a->id, "%s", id ? id : "");
	a->n = n;
	a->at = s->now;
}

static void p_ack(void *arg, const char *ack_id)
{
	record(arg, ACT_ACK, ack_id, 0);
}

static void p_modack(void *arg, const char *ack_id, int secs)
{
	record(arg, ACT_MODACK, ack_id, secs);
}

/* p_pause: called on every pump; recorded only when it changes. */
static void p_pause(void *arg, int paused)
{
	stubs *s = arg;
	if (paused != s->paused)
		record(s, ACT_PAUSE, NULL, paused);
	s->paused = paused;
}

static stub_sub *open_sub(stubs *s, const char *id)
{
	CU_ASSERT_FATAL(s->n_subs < STUB_SUBS);
	stub_sub *u = &s->subs[s->n_subs++];
	memset(u, 0, sizeof *u);
	snprintf(u->id, sizeof u->id, "%s", id);
	return u;
}

static void p_submit(void *arg, jr_event *ev, int attempt, const unsigned char *only,
		     jr_outcome_cb cb, void *cb_arg)
{
	stubs *s = arg;
	stub_sub *u = open_sub(s, ev->message->id);
	u->cb = cb;
	u->arg = cb_arg;
	u->ev = ev;
	u->attempt = attempt;
	if (only && s->n_routes <= sizeof u->only) {
		memcpy(u->only, only, s->n_routes);
		u->has_only = 1;
	}
	record(s, ACT_SUBMIT, ev->message->id, attempt);
}

static void p_dead_letter_raw(void *arg, const char *raw, size_t raw_len, const jr_message *msg,
			      const char *error, jr_raw_cb cb, void *cb_arg)
{
	stubs *s = arg;
	CU_ASSERT_PTR_NOT_NULL(error);
	CU_ASSERT_PTR_NOT_NULL(memmem(raw, raw_len, "\"subscription\":", 15));
	stub_sub *u = open_sub(s, msg->id);
	u->raw_cb = cb;
	u->arg = cb_arg;
	record(s, ACT_DEAD_LETTER, msg->id, 0);
}

static int p_busy(void *arg)
{
	return ((stubs *)arg)->busy;
}

static void p_settled(void *arg)
{
	((stubs *)arg)->settled++;
}

static void p_stop_intake(void *arg)
{
	record(arg, ACT_STOP_INTAKE, NULL, 0);
}

static int64_t stepped(void *ctx)
{
	return ((stubs *)ctx)->now;
}

void stub_init(stubs *s, size_t n_routes)
{
	memset(s, 0, sizeof *s);
	s->now = 1000000;
	s->t = timers_new(stepped, s);
	s->n_routes = n_routes;
}

void stub_free(stubs *s)
{
	timers_free(s->t);
}

pullq_ports stub_ports(stubs *s)
{
	return (pullq_ports){
		.arg = s,
		.ack = p_ack,
		.modack = p_modack,
		.pause = p_pause,
		.submit = p_submit,
		.dead_letter_raw = p_dead_letter_raw,
		.busy = p_busy,
		.settled = p_settled,
		.stop_intake = p_stop_intake,
	};
}

void stub_step(stubs *s, int64_t ms)
{
	s->now += ms;
	for (int i = 0; i < 100 && timers_run_due(s->t) > 0; i++)
		;
}

static stub_sub *find_open(stubs *s, const char *id, int raw)
{
	for (int i = s->n_subs - 1; i >= 0; i--) {
		stub_sub *u = &s->subs[i];
		if (strcmp(u->id, id) == 0 && (raw ? u->raw_cb != NULL : u->cb != NULL))
			return u;
	}
	return NULL;
}

void stub_outcome(stubs *s, const char *id, jr_outcome_kind kind, int64_t delay_ms, int hold,
		  const unsigned char *retry)
{
	stub_sub *u = find_open(s, id, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	jr_outcome o = {.kind = kind, .hold = hold, .attempt = u->attempt, .delay_ms = delay_ms,
			.cls = JR_ERR_TIMEOUT, .retry = retry};
	jr_outcome_cb cb = u->cb;
	u->cb = NULL;
	cb(u->arg, u->ev, &o);
}

void stub_raw_done(stubs *s, const char *id, int ok)
{
	stub_sub *u = find_open(s, id, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	jr_raw_cb cb = u->raw_cb;
	u->raw_cb = NULL;
	cb(u->arg, ok);
}

int stub_count(const stubs *s, stub_act_kind kind, const char *id)
{
	int n = 0;
	for (int i = 0; i < s->n_acts; i++)
		n += s->acts[i].kind == kind && (!id || strcmp(s->acts[i].id, id) == 0);
	return n;
}

const stub_act *stub_last(const stubs *s, stub_act_kind kind, const char *id)
{
	for (int i = s->n_acts - 1; i >= 0; i--)
		if (s->acts[i].kind == kind && (!id || strcmp(s->acts[i].id, id) == 0))
			return &s->acts[i];
	return NULL;
}

const stub_sub *stub_sub_of(const stubs *s, const char *id)
{
	for (int i = s->n_subs - 1; i >= 0; i--)
		if (strcmp(s->subs[i].id, id) == 0)
			return &s->subs[i];
	return NULL;
}

void stub_clear(stubs *s)
{
	s->n_acts = 0;
}
