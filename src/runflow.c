/*
 * runflow.c — watches (GetExecution polling) and finds (ListExecutions).
 *
 * A watch polls GetExecution, one call at a time: the first after
 * RUNFLOW_POLL_FIRST_MS (at once for the CLI), then at an interval that
 * doubles up to RUNFLOW_POLL_MAX_MS. So a thousand executions followed for
 * an hour cost about 33 calls a second at most, and a short execution is
 * seen done within about its own run time. A failed poll is retried on the
 * same schedule; RUNFLOW_POLL_ERRORS in a row end the watch with that code
 * (NOT_FOUND and PERMISSION_DENIED at once: the execution is gone or not
 * ours to see). Watches are on a list so that closing can end them.
 *
 * A find reads ListExecutions pages (newest first, as the API documents)
 * until an execution older than the window, the page limit, or the key.
 */
#include "runflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

#define RUNFLOW_CALL_MS 30000 /* deadline of each GetExecution / ListExecutions */

typedef struct watch watch;

typedef struct flow {
	jr_runapi *api;
	jr_runadmin *admin;
	jr_link watches;
	int n;
	int closing;
} flow;

struct watch {
	flow *f;
	jr_link link;
	char *name;
	int64_t end_ms;      /* monotonic; 0: no limit */
	int64_t interval_ms;
	jr_timer_id timer;
	int in_call, errors;
	jr_watch_cb cb;
	void *arg;
};

static void watch_end(watch *w, int code, const char *message, const jr_execution *e);

/* flow_close: runapi_free's companion close; every watch ends with CANCELLED. */
static void flow_close(void *obj)
{
	flow *f = obj;
	f->closing = 1;
	for (jr_link *l = f->watches.next, *next; l != &f->watches; l = next) {
		next = l->next;
		watch *w = list_item(l, watch, link);
		if (w->in_call)
			continue; /* ended by runadmin_free, which cancels its call */
		loop_timer_cancel(runapi_loop(f->api), w->timer);
		watch_end(w, JR_GRPC_CANCELLED, "jobrelay is shutting down", NULL);
	}
	runadmin_free(f->admin);
	free(f);
}

/* The metric families (product.md §7): executions followed, and the lookups' results. */
static jr_metric *m_followed, *m_lookups;

static flow *flow_of(jr_runapi *api)
{
	flow *f = runapi_attached(api);
	if (!f) {
		m_followed = metric_register("jobrelay_executions_followed", JR_METRIC_GAUGE,
					     "Executions being followed (ack: on_completion, --wait).",
					     NULL, 0);
		m_lookups = metric_register("jobrelay_ambiguous_lookups_total", JR_METRIC_COUNTER,
					    "Lookups of an execution after an ambiguous RunJob failure, by result.",
					    NULL, 0);
		f = jr_calloc(1, sizeof *f);
		list_init(&f->watches);
		f->api = api;
		f->admin = runadmin_new(api);
		runapi_attach(api, f, flow_close);
	}
	return f;
}

jr_runadmin *runflow_admin(jr_runapi *api)
{
	return flow_of(api)->admin;
}

/* ---- watches ---- */

static void watch_end(watch *w, int code, const char *message, const jr_execution *e)
{
	flow *f = w->f;
	list_remove(&w->link);
	f->n--;
	metric_set(m_followed, NULL, f->n);
	w->cb(w->arg, code, message, e);
	free(w->name);
	free(w);
}

static void poll_now(void *arg);

static void on_get(void *arg, const jr_adminres *res)
{
	watch *w = arg;
	flow *f = w->f;
	w->in_call = 0;
	const jr_execution *e = res->code == 0 && res->n_execs ? &res->execs[0] : NULL;
	if (f->closing) {
		watch_end(w, JR_GRPC_CANCELLED, "jobrelay is shutting down", e);
		return;
	}
	if (e && runadmin_state_done(e->state)) {
		watch_end(w, 0, "", e);
		return;
	}
	if (res->code != 0) {
		w->errors++;
		if (res->code == JR_GRPC_NOT_FOUND || res->code == JR_GRPC_PERMISSION_DENIED ||
		    res->code == JR_GRPC_INVALID_ARGUMENT || w->errors >= RUNFLOW_POLL_ERRORS) {
			watch_end(w, res->code, res->message, NULL);
			return;
		}
	} else {
		w->errors = 0;
	}
	int64_t now = loop_now_ms();
	if (w->end_ms && now >= w->end_ms) {
		watch_end(w, JR_GRPC_DEADLINE_EXCEEDED, "the execution has not finished", e);
		return;
	}
	int64_t d = w->interval_ms;
	w->interval_ms = w->interval_ms * 2 > RUNFLOW_POLL_MAX_MS ? RUNFLOW_POLL_MAX_MS
								  : w->interval_ms * 2;
	if (w->end_ms && now + d > w->end_ms)
		d = w->end_ms - now;
	w->timer = loop_timer_add(runapi_loop(f->api), d, poll_now, w);
}

static void poll_now(void *arg)
{
	watch *w = arg;
	w->timer = 0;
	int64_t timeout = RUNFLOW_CALL_MS;
	if (w->end_ms) {
		int64_t left = w->end_ms - loop_now_ms();
		timeout = left < 1000 ? 1000 : left < timeout ? left : timeout;
	}
	w->in_call = 1;
	if (runadmin_get_execution(w->f->admin, w->name, timeout, on_get, w) < 0) {
		w->in_call = 0;
		watch_end(w, JR_GRPC_UNAVAILABLE, "cannot start GetExecution", NULL);
	}
}

static int watch_start(jr_runapi *api, const char *name, int64_t first_ms, int64_t max_ms,
		       jr_watch_cb cb, void *arg)
{
	if (!name || !*name || runapi_closing(api))
		return -1;
	flow *f = flow_of(api);
	if (f->closing)
		return -1;
	watch *w = jr_calloc(1, sizeof *w);
	w->f = f;
	w->name = jr_strdup(name);
	w->end_ms = max_ms > 0 ? loop_now_ms() + max_ms : 0;
	w->interval_ms = RUNFLOW_POLL_FIRST_MS;
	w->cb = cb;
	w->arg = arg;
	list_append(&f->watches, &w->link);
	f->n++;
	metric_set(m_followed, NULL, f->n);
	w->timer = loop_timer_add(runapi_loop(api), first_ms, poll_now, w);
	return 0;
}

int runflow_watch(jr_runapi *api, const char *name, int64_t max_ms, jr_watch_cb cb, void *arg)
{
	return watch_start(api, name, 0, max_ms, cb, arg);
}

/* ---- follow: a watch for the dispatcher ---- */

typedef struct follow {
	jr_run_cb cb;
	void *arg;
} follow;

static void on_followed(void *arg, int code, const char *message, const jr_execution *e)
{
	follow *fo = arg;
	jr_runresult r = {.code = code, .message = message ? message : "", .retry_delay_ms = -1};
	char msg[1200];
	if (e) {
		r.execution = e->name;
		r.log_uri = e->log_uri;
	}
	if (code == 0 && e && e->state != JR_EXEC_SUCCEEDED) {
		r.code = JR_GRPC_UNKNOWN;
		r.has_class = 1;
		r.cls = e->state == JR_EXEC_TIMED_OUT ? JR_ERR_TIMEOUT : JR_ERR_APPLICATION;
		r.code_name = e->state == JR_EXEC_TIMED_OUT   ? "EXECUTION_TIMED_OUT"
			      : e->state == JR_EXEC_CANCELLED ? "EXECUTION_CANCELLED"
							      : "EXECUTION_FAILED";
		snprintf(msg, sizeof msg, "execution %s %s: %.1000s", e->name,
			 e->state == JR_EXEC_TIMED_OUT	 ? "timed out"
			 : e->state == JR_EXEC_CANCELLED ? "was cancelled"
							 : "failed",
			 e->reason ? e->reason : "(no reason given)");
		r.message = msg;
	}
	fo->cb(fo->arg, &r);
	free(fo);
}

int runflow_follow(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		   void *arg)
{
	(void)req;
	follow *fo = jr_malloc(sizeof *fo);
	*fo = (follow){cb, arg};
	if (watch_start(ctx, started ? started->execution : NULL, RUNFLOW_POLL_FIRST_MS, 0,
			on_followed, fo) < 0) {
		free(fo);
		return -1;
	}
	return 0;
}

/* ---- find ---- */

typedef struct finder {
	flow *f;
	char *job, *key;
	int64_t since_ms;
	int pages;
	jr_run_cb cb;
	void *arg;
} finder;

static void find_end(finder *fd, const jr_runresult *r)
{
	const char *result = r->recovered ? "found" : r->code == JR_GRPC_NOT_FOUND ? "not_found" : "failed";
	char l[64];
	metrics_labels(l, sizeof l, "result", result, NULL);
	metric_add(m_lookups, l, 1);
	fd->cb(fd->arg, r);
	free(fd->job);
	free(fd->key);
	free(fd);
}

static void on_page(void *arg, const jr_adminres *res)
{
	finder *fd = arg;
	jr_runresult r = {.code = res->code, .message = res->message, .retry_delay_ms = -1};
	if (res->code != 0) {
		find_end(fd, &r);
		return;
	}
	int older = 0; /* reached executions made before the attempt: no page after helps */
	for (size_t i = 0; i < res->n_execs; i++) {
		const jr_execution *e = &res->execs[i];
		const char *k = runadmin_env_get(e, "JOBRELAY_KEY");
		if (k && !strcmp(k, fd->key)) {
			r.execution = e->name;
			r.log_uri = e->log_uri;
			r.recovered = 1;
			find_end(fd, &r);
			return;
		}
		if (e->create_ms && e->create_ms < fd->since_ms - RUNFLOW_FIND_SKEW_MS) {
			older = 1; /* newest first: the rest are older still */
			break;
		}
	}
	int more = *res->next_page_token && ++fd->pages < RUNFLOW_FIND_PAGES && !fd->f->closing;
	if (more && res->n_execs && !older &&
	    runadmin_list_executions(fd->f->admin, fd->job, 100, res->next_page_token,
				     RUNFLOW_CALL_MS, on_page, fd) == 0)
		return;
	r.code = JR_GRPC_NOT_FOUND;
	r.message = "no execution carries this JOBRELAY_KEY";
	find_end(fd, &r);
}

int runflow_find(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg)
{
	jr_runapi *api = ctx;
	if (!req->name || !req->key || runapi_closing(api))
		return -1;
	flow *f = flow_of(api);
	if (f->closing)
		return -1;
	finder *fd = jr_calloc(1, sizeof *fd);
	fd->f = f;
	fd->job = jr_strdup(req->name);
	fd->key = jr_strdup(req->key);
	fd->since_ms = since_ms;
	fd->cb = cb;
	fd->arg = arg;
	if (runadmin_list_executions(f->admin, fd->job, 100, NULL, RUNFLOW_CALL_MS, on_page, fd) < 0) {
		free(fd->job);
		free(fd->key);
		free(fd);
		return -1;
	}
	return 0;
}
