/*
 * dispatcher_stubs.c — the stand-ins of dispatcher_stubs.h.
 */
#include "dispatcher_stubs.h"

#include <stdio.h>
#include <string.h>

#include "cu.h"

static stub_call *stub_add(stub_runner *s, stub_kind kind, const jr_runreq *req, jr_run_cb cb,
			   void *arg)
{
	CU_ASSERT_FATAL(s->n_calls < STUB_CALLS_MAX);
	stub_call *c = &s->calls[s->n_calls++];
	*c = (stub_call){.kind = kind, .cb = cb, .arg = arg};
	snprintf(c->job, sizeof c->job, "%s", req->name ? req->name : "");
	snprintf(c->key, sizeof c->key, "%s", req->key ? req->key : "");
	for (size_t i = 0; i < req->n_env; i++)
		if (!strcmp(req->env[i].key, "TRACEPARENT"))
			snprintf(c->traceparent, sizeof c->traceparent, "%s", req->env[i].value);
	return c;
}

static int s_run(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
{
	stub_runner *s = ctx;
	if (s->run_rc < 0)
		return -1;
	stub_add(s, STUB_RUN, req, cb, arg)->timeout_ms = timeout_ms;
	s->runs++;
	return 0;
}

static int s_follow(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		    void *arg)
{
	stub_runner *s = ctx;
	stub_call *c = stub_add(s, STUB_FOLLOW, req, cb, arg);
	snprintf(c->execution, sizeof c->execution, "%s",
		 started->execution ? started->execution : "");
	s->follows++;
	return 0;
}

static int s_find(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg)
{
	stub_runner *s = ctx;
	stub_add(s, STUB_FIND, req, cb, arg)->since_ms = since_ms;
	s->finds++;
	return 0;
}

jr_runner stub_runner_port(stub_runner *s, int with_follow, int with_find)
{
	return (jr_runner){.run = s_run, .follow = with_follow ? s_follow : NULL,
			   .find = with_find ? s_find : NULL, .ctx = s};
}

stub_call *stub_nth(stub_runner *s, stub_kind kind, int n)
{
	for (int i = 0; i < s->n_calls; i++)
		if (s->calls[i].kind == kind && n-- == 0)
			return &s->calls[i];
	return NULL;
}

void stub_answer(stub_call *c, const jr_runresult *res)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->cb);
	jr_run_cb cb = c->cb;
	c->cb = NULL;
	cb(c->arg, res);
}

void stub_answer_code(stub_call *c, int code)
{
	jr_runresult r = {.code = code, .message = code ? "injected" : "",
			  .operation = code ? NULL : "operations/o",
			  .execution = code ? NULL : "projects/p/locations/r/jobs/j/executions/x",
			  .retry_delay_ms = -1};
	stub_answer(c, &r);
}

int stub_open_calls(const stub_runner *s)
{
	int n = 0;
	for (int i = 0; i < s->n_calls; i++)
		n += s->calls[i].cb != NULL;
	return n;
}

static int sink_write(jr_sink *base, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		      size_t errlen)
{
	stub_sink *s = (stub_sink *)base;
	CU_ASSERT_FATAL(s->writes < STUB_DL_MAX);
	stub_dl *d = &s->dl[s->writes++];
	*d = (stub_dl){.attempts = r->attempts, .cls = r->cls};
	snprintf(d->route, sizeof d->route, "%s", r->route ? r->route : "");
	snprintf(d->code, sizeof d->code, "%s", r->code ? r->code : "");
	switch (s->mode) {
	case SINK_NOW:
		return 0;
	case SINK_LATER:
		d->cb = cb;
		d->arg = arg;
		return 1;
	case SINK_FAIL:
		break;
	}
	snprintf(err, errlen, "stub sink refused");
	return -1;
}

static void sink_close(jr_sink *base)
{
	(void)base;
}

void stub_sink_init(stub_sink *s, stub_sink_mode mode)
{
	*s = (stub_sink){.base = {.name = "stub", .write = sink_write, .close = sink_close},
			 .mode = mode};
}

void stub_sink_confirm(stub_sink *s, int i, int ok)
{
	CU_ASSERT_FATAL(i < s->writes && s->dl[i].cb != NULL);
	jr_sink_cb cb = s->dl[i].cb;
	s->dl[i].cb = NULL;
	cb(s->dl[i].arg, ok, ok ? NULL : "stub sink failed later");
}

static int64_t clock_now(void *ctx)
{
	return ((stub_clock *)ctx)->now;
}

void stub_clock_init(stub_clock *c)
{
	c->now = 1000000;
	c->tm = timers_new(clock_now, c);
}

void stub_clock_free(stub_clock *c)
{
	timers_free(c->tm);
	c->tm = NULL;
}

void stub_clock_turn(stub_clock *c)
{
	for (int i = 0; i < 100 && timers_run_due(c->tm) > 0; i++)
		;
}

void stub_clock_advance(stub_clock *c, int64_t ms)
{
	c->now += ms;
	stub_clock_turn(c);
}
