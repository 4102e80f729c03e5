/*
 * runwatch.c — watches (GetExecution polling) and finds (ListExecutions).
 *
 * A watch polls GetExecution, one call at a time: the first after
 * RUNWATCH_POLL_FIRST_MS (at once for the CLI), then at an interval that
 * doubles up to RUNWATCH_POLL_MAX_MS. So a thousand executions followed for
 * an hour cost about 33 calls a second at most, and a short execution is
 * seen done within about its own run time. A failed poll is a read to
 * retry: after the read backoff (read_retry: initial_backoff doubling to
 * max_backoff), until max_attempts fail in a row; then the watch ends with
 * that code. INVALID_ARGUMENT ends it at once (the name is wrong); for the
 * CLI's watches NOT_FOUND and PERMISSION_DENIED do too, while a follow
 * retries them (an execution RunJob just named may not be readable yet,
 * and a permission may be granted). Watches are on a list so that closing
 * can end them.
 *
 * A find reads ListExecutions pages (newest first, as the API documents)
 * until an execution older than the window, the page limit
 * (read_retry.lookup_pages), or the key. A
 * lookup whose call fails starts again from the first page after the read
 * backoff, up to lookup_attempts in all. Finds are on a list too.
 */
#include "runwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "gcreds.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "smap.h"
#include "template.h"

#define RUNWATCH_CALL_MS 30000 /* deadline of each GetExecution / ListExecutions */
#define RUNWATCH_JUDGED_MAX 1024 /* jobs whose executions were judged for LOOKUP-CANNOT-MATCH */

typedef struct watch watch;
typedef struct finder finder;

typedef struct flow {
	jr_runjob *api;
	jr_runexec *admin;
	jr_link watches;
	jr_link finds;
	int n;
	int closing;
	jr_read_retry rr;
	smap judged;          /* judged_job by name: jobs whose first lookup examined executions */
} flow;

/* A job whose first lookup examined executions (LOOKUP-CANNOT-MATCH is logged once a job). */
typedef struct judged_job {
	smap_ent h;           /* key: name */
	char name[];
} judged_job;

struct watch {
	flow *f;
	jr_link link;
	char *name;
	int64_t end_ms;      /* monotonic; 0: no limit */
	int64_t interval_ms;
	jr_timer_id timer;
	int in_call, errors;
	int follow;          /* a dispatcher's follow: NOT_FOUND and PERMISSION_DENIED are retried too */
	jr_watch_cb cb;
	void *arg;
};

/* A find: the lookup after an ambiguous RunJob failure. */
struct finder {
	flow *f;
	jr_link link;
	char *job, *key;
	int64_t since_ms;
	int pages, attempts;
	int examined, with_env; /* executions examined; of those, with any env in their template */
	int in_call;
	jr_timer_id timer;
	jr_run_cb cb;
	void *arg;
};

static void watch_end(watch *w, int code, const char *message, const jr_execution *e);
static void find_end(finder *fd, const jr_runresult *r);
static void find_free(finder *fd);

/* flow_close: runjob_free's companion close; every watch ends with CANCELLED. */
static void flow_close(void *obj)
{
	flow *f = obj;
	f->closing = 1;
	for (jr_link *l = f->watches.next, *next; l != &f->watches; l = next) {
		next = l->next;
		watch *w = list_item(l, watch, link);
		if (w->in_call)
			continue; /* ended by runexec_free, which cancels its call */
		loop_timer_cancel(runjob_loop(f->api), w->timer);
		watch_end(w, JR_GRPC_CANCELLED, "jobrelay is shutting down", NULL);
	}
	for (jr_link *l = f->finds.next, *next; l != &f->finds; l = next) {
		next = l->next;
		finder *fd = list_item(l, finder, link);
		if (fd->in_call)
			continue; /* ended by runexec_free, which cancels its call */
		loop_timer_cancel(runjob_loop(f->api), fd->timer);
		jr_runresult r = {.code = JR_GRPC_CANCELLED, .message = "jobrelay is shutting down",
				  .retry_delay_ms = -1};
		find_end(fd, &r);
	}
	runexec_free(f->admin);
	for (size_t i = 0; i < f->judged.nb; i++)
		for (smap_ent *e = f->judged.b[i], *next; e; e = next) {
			next = e->hnext;
			free(e);
		}
	smap_free(&f->judged);
	free(f);
}

/* The metric families (docs/jobs.md, metrics): executions followed, and the lookups' results. */
static jr_metric *m_followed, *m_lookups;

static flow *flow_of(jr_runjob *api)
{
	flow *f = runjob_attached(api);
	if (!f) {
		m_followed = metric_register("jobrelay_executions_followed", JR_METRIC_GAUGE,
					     "Executions being followed (ack: on_completion, --wait).",
					     NULL, 0);
		m_lookups = metric_register("jobrelay_ambiguous_lookups_total", JR_METRIC_COUNTER,
					    "Lookups of an execution by JOBRELAY_KEY (after an ambiguous RunJob "
					    "failure, or before RunJob for a suspected repeat), by result.",
					    NULL, 0);
		f = jr_calloc(1, sizeof *f);
		list_init(&f->watches);
		list_init(&f->finds);
		f->rr = (jr_read_retry){RUNWATCH_READ_BACKOFF_MS, RUNWATCH_READ_BACKOFF_MAX_MS,
					RUNWATCH_POLL_ERRORS, RUNWATCH_FIND_ATTEMPTS,
					RUNWATCH_FIND_PAGES};
		f->api = api;
		f->admin = runexec_new(api);
		runjob_attach(api, f, flow_close);
	}
	return f;
}

jr_runexec *runwatch_admin(jr_runjob *api)
{
	return flow_of(api)->admin;
}

/* read_backoff: the wait before retrying a read that failed `failures` times in a row. */
static int64_t read_backoff(const flow *f, int failures)
{
	int64_t d = f->rr.initial_backoff_ms;
	for (int i = 1; i < failures && d < f->rr.max_backoff_ms; i++)
		d *= 2;
	return d < f->rr.max_backoff_ms ? d : f->rr.max_backoff_ms;
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

/* creds_delay: how long a read refused for want of a token waits: the token source's next try, at least 1 s. */
static int64_t creds_delay(void)
{
	int64_t d = gcreds_retry_in_ms(gcreds_active());
	return d > 1000 ? d : 1000;
}

static void on_get(void *arg, const jr_adminres *res)
{
	watch *w = arg;
	flow *f = w->f;
	w->in_call = 0;
	const jr_execution *e = res->code == 0 && res->n_execs ? &res->execs[0] : NULL;
	if (e && runexec_state_done(e->state)) { /* an answer that came in time counts, closing or not */
		watch_end(w, 0, "", e);
		return;
	}
	if (f->closing) {
		watch_end(w, JR_GRPC_CANCELLED, "jobrelay is shutting down", e);
		return;
	}
	int64_t d;
	if (gcreds_call_error(res->code, res->message)) {
		d = creds_delay(); /* no token: the read never left; it costs no attempt */
	} else if (res->code != 0) {
		w->errors++;
		if (res->code == JR_GRPC_INVALID_ARGUMENT ||
		    ((res->code == JR_GRPC_NOT_FOUND || res->code == JR_GRPC_PERMISSION_DENIED) &&
		     !w->follow) ||
		    w->errors >= f->rr.max_attempts) {
			char msg[1200];
			snprintf(msg, sizeof msg, "GetExecution failed %d time%s in a row: %.1000s",
				 w->errors, w->errors == 1 ? "" : "s", res->message);
			/* a CANCELLED read is no shutdown: that code is kept for closing */
			watch_end(w, res->code == JR_GRPC_CANCELLED ? JR_GRPC_UNKNOWN : res->code, msg,
				  NULL);
			return;
		}
		d = read_backoff(f, w->errors);
	} else {
		w->errors = 0;
		d = w->interval_ms;
		w->interval_ms = w->interval_ms * 2 > RUNWATCH_POLL_MAX_MS ? RUNWATCH_POLL_MAX_MS
									  : w->interval_ms * 2;
	}
	int64_t now = loop_now_ms();
	if (w->end_ms && now >= w->end_ms) {
		watch_end(w, JR_GRPC_DEADLINE_EXCEEDED, "the execution has not finished", e);
		return;
	}
	if (w->end_ms && now + d > w->end_ms)
		d = w->end_ms - now;
	w->timer = loop_timer_add(runjob_loop(f->api), d, poll_now, w);
}

static void poll_now(void *arg)
{
	watch *w = arg;
	w->timer = 0;
	int64_t timeout = RUNWATCH_CALL_MS;
	if (w->end_ms) {
		int64_t left = w->end_ms - loop_now_ms();
		timeout = left < 1000 ? 1000 : left < timeout ? left : timeout;
	}
	w->in_call = 1;
	if (runexec_get_execution(w->f->admin, w->name, timeout, on_get, w) < 0) {
		w->in_call = 0;
		watch_end(w, JR_GRPC_UNAVAILABLE, "cannot start GetExecution", NULL);
	}
}

static int watch_start(jr_runjob *api, const char *name, int64_t first_ms, int64_t max_ms,
		       int follow, jr_watch_cb cb, void *arg)
{
	if (!name || !*name || runjob_closing(api))
		return -1;
	flow *f = flow_of(api);
	if (f->closing)
		return -1;
	watch *w = jr_calloc(1, sizeof *w);
	w->f = f;
	w->name = jr_strdup(name);
	w->end_ms = max_ms > 0 ? loop_now_ms() + max_ms : 0;
	w->interval_ms = RUNWATCH_POLL_FIRST_MS;
	w->follow = follow;
	w->cb = cb;
	w->arg = arg;
	list_append(&f->watches, &w->link);
	f->n++;
	metric_set(m_followed, NULL, f->n);
	w->timer = loop_timer_add(runjob_loop(api), first_ms, poll_now, w);
	return 0;
}

int runwatch_watch(jr_runjob *api, const char *name, int64_t max_ms, jr_watch_cb cb, void *arg)
{
	return watch_start(api, name, 0, max_ms, 0, cb, arg);
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

int runwatch_follow(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		   void *arg)
{
	(void)req;
	follow *fo = jr_malloc(sizeof *fo);
	*fo = (follow){cb, arg};
	if (watch_start(ctx, started ? started->execution : NULL, RUNWATCH_POLL_FIRST_MS, 0, 1,
			on_followed, fo) < 0) {
		free(fo);
		return -1;
	}
	return 0;
}

/* ---- find ---- */

static void find_free(finder *fd)
{
	free(fd->job);
	free(fd->key);
	free(fd);
}

/*
 * judge: at the first lookup of fd's job that examined executions, a
 * warning when none of them carries any env in its template: the lookup
 * rests on executions showing the overrides they were started with
 * (JOBRELAY_KEY among them), which Google does not document; if they do
 * not, no lookup can ever find one, and every suspected repeat runs again.
 */
static void judge(finder *fd)
{
	flow *f = fd->f;
	uint64_t h = smap_hash(fd->job);
	if (!fd->examined || f->judged.n >= RUNWATCH_JUDGED_MAX || smap_find(&f->judged, fd->job, h))
		return;
	size_t n = strlen(fd->job);
	judged_job *j = jr_calloc(1, sizeof *j + n + 1);
	memcpy(j->name, fd->job, n + 1);
	j->h.h = h;
	j->h.key = j->name;
	smap_add(&f->judged, &j->h);
	if (fd->with_env)
		return;
	char seen[16];
	snprintf(seen, sizeof seen, "%d", fd->examined);
	log_kv(JR_LOG_WARNING, "LOOKUP-CANNOT-MATCH",
	       "none of the job's executions examined shows any env override: a lookup by "
	       "JOBRELAY_KEY can never find one, so repeats and ambiguous failures may start "
	       "duplicates",
	       "job", fd->job, "executions_examined", seen, "why",
	       "executions carry no env in their template (the API did not return overrides)", NULL);
}

static void find_end(finder *fd, const jr_runresult *r)
{
	judge(fd);
	const char *result = r->recovered ? "found" : r->code == JR_GRPC_NOT_FOUND ? "not_found" : "failed";
	char l[64];
	metrics_labels(l, sizeof l, "result", result, NULL);
	metric_add(m_lookups, l, 1);
	list_remove(&fd->link);
	fd->cb(fd->arg, r);
	find_free(fd);
}

static void on_page(void *arg, const jr_adminres *res);

/* find_call: the lookup's first page (again); 0, or -1 when the call cannot start. */
static int find_call(finder *fd)
{
	fd->pages = 0;
	fd->examined = fd->with_env = 0;
	fd->attempts++;
	fd->in_call = 1;
	if (runexec_list_executions(fd->f->admin, fd->job, 100, NULL, RUNWATCH_CALL_MS, on_page,
				     fd) < 0) {
		fd->in_call = 0;
		return -1;
	}
	return 0;
}

static void find_again(void *arg)
{
	finder *fd = arg;
	fd->timer = 0;
	if (find_call(fd) < 0) {
		jr_runresult r = {.code = JR_GRPC_UNAVAILABLE, .message = "cannot start ListExecutions",
				  .retry_delay_ms = -1};
		find_end(fd, &r);
	}
}

static void on_page(void *arg, const jr_adminres *res)
{
	finder *fd = arg;
	flow *f = fd->f;
	fd->in_call = 0;
	jr_runresult r = {.code = res->code, .message = res->message, .retry_delay_ms = -1};
	if (res->code == JR_GRPC_NOT_FOUND) {
		/* the job is gone: no execution of it can be this event's */
		find_end(fd, &r);
		return;
	}
	if (gcreds_call_error(res->code, res->message) && !f->closing) {
		fd->attempts--; /* no token: the lookup never left; it costs no attempt */
		fd->timer = loop_timer_add(runjob_loop(f->api), creds_delay(), find_again, fd);
		return;
	}
	if (res->code != 0) {
		if (f->closing || fd->attempts >= f->rr.lookup_attempts) {
			find_end(fd, &r);
			return;
		}
		int64_t d = read_backoff(f, fd->attempts);
		char att[16], delay[32];
		snprintf(att, sizeof att, "%d", fd->attempts);
		snprintf(delay, sizeof delay, "%lldms", (long long)d);
		log_kv(JR_LOG_WARNING, "LOOKUP-RETRY",
		       "ListExecutions failed; the lookup is retried before any new RunJob", "job",
		       fd->job, "code", grpc_code_name(res->code), "error", res->message, "attempt",
		       att, "delay", delay, NULL);
		fd->timer = loop_timer_add(runjob_loop(f->api), d, find_again, fd);
		return;
	}
	int older = 0; /* reached executions made before the attempt: no page after helps */
	for (size_t i = 0; i < res->n_execs; i++) {
		const jr_execution *e = &res->execs[i];
		fd->examined++;
		fd->with_env += e->n_env > 0;
		const char *k = runexec_env_get(e, "JOBRELAY_KEY");
		if (k && !strcmp(k, fd->key)) {
			r.execution = e->name;
			r.log_uri = e->log_uri;
			r.recovered = 1;
			find_end(fd, &r);
			return;
		}
		if (e->create_ms && e->create_ms < fd->since_ms - RUNWATCH_FIND_SKEW_MS) {
			older = 1; /* newest first: the rest are older still */
			break;
		}
	}
	int more = *res->next_page_token && ++fd->pages < fd->f->rr.lookup_pages && !fd->f->closing;
	if (more && res->n_execs && !older) {
		fd->in_call = 1;
		if (runexec_list_executions(fd->f->admin, fd->job, 100, res->next_page_token,
					     RUNWATCH_CALL_MS, on_page, fd) == 0)
			return;
		fd->in_call = 0;
	}
	r.code = JR_GRPC_NOT_FOUND;
	r.message = "no execution carries this JOBRELAY_KEY";
	find_end(fd, &r);
}

int runwatch_find(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg)
{
	jr_runjob *api = ctx;
	if (!req->name || !req->key || runjob_closing(api))
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
	if (find_call(fd) < 0) {
		find_free(fd);
		return -1;
	}
	list_append(&f->finds, &fd->link);
	return 0;
}

/* ---- the start-up check of reads ---- */

typedef struct read_check {
	char *job;
	const char *route;    /* a route that names it: the first with ack: on_completion, if any */
	int on_completion;    /* some route with ack: on_completion names it */
	int code, done;
	char *message;
} read_check;

static void on_check(void *arg, const jr_adminres *res)
{
	read_check *c = arg;
	c->code = res->code;
	c->message = jr_strdup(res->message);
	c->done = 1;
}

/* check_verdict: logs what c's answer means; -1 when the command must not start. */
static int check_verdict(jr_runjob *api, const read_check *c)
{
	const char *code = grpc_code_name(c->code);
	switch (c->code) {
	case 0:
		return 0;
	case JR_GRPC_PERMISSION_DENIED:
		if (c->on_completion) {
			log_kv(JR_LOG_ERROR, "RUNAPI-READS-DENIED",
			       "jobrelay may not read the job's executions, which ack: on_completion "
			       "follows",
			       "job", c->job, "route", c->route, "permission",
			       "run.executions.list", "needs", "run.executions.get, run.executions.list",
			       "code", code, "error", c->message, NULL);
			return -1;
		}
		log_kv(JR_LOG_WARNING, "AMBIGUITY-CHECK-UNAVAILABLE",
		       "jobrelay may not list the job's executions: after an ambiguous RunJob failure "
		       "the lookup will fail, and a retry may run the job twice",
		       "job", c->job, "route", c->route, "permission", "run.executions.list", "code",
		       code, "error", c->message, NULL);
		return 0;
	case JR_GRPC_NOT_FOUND:
		log_kv(JR_LOG_WARNING, "RUNAPI-JOB-NOT-FOUND", "the job does not exist", "job", c->job,
		       "route", c->route, "error", c->message, NULL);
		return 0;
	case JR_GRPC_UNAVAILABLE:
	case JR_GRPC_DEADLINE_EXCEEDED:
		log_kv(JR_LOG_ERROR, "RUNAPI-UNREACHABLE", "cannot reach the Run API", "target",
		       runjob_target(api), "job", c->job, "code", code, "error", c->message, NULL);
		return -1;
	default:
		log_kv(JR_LOG_WARNING, "RUNAPI-READS-UNCHECKED",
		       "could not check that jobrelay may read the job's executions", "job", c->job,
		       "route", c->route, "code", code, "error", c->message, NULL);
		return 0;
	}
}

int runwatch_startup_check(jr_runjob *api, const jr_config *cfg, const char *only_route)
{
	int64_t timeout_ms = cfg->call_timeout_ms < RUNJOB_STARTUP_WAIT_MS ? cfg->call_timeout_ms
									 : RUNJOB_STARTUP_WAIT_MS;
	flow *f = flow_of(api);
	f->rr = cfg->read_retry;
	read_check *cs = jr_calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *cs);
	size_t n = 0;
	int pending = 0, rc = 0;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const jr_route *r = &cfg->routes[i];
		if ((only_route && strcmp(only_route, r->name) != 0) || !tmpl_is_literal(r->job))
			continue; /* a templated job is known per event only */
		char *job = route_job_display(cfg, r);
		size_t k = 0;
		while (k < n && strcmp(cs[k].job, job) != 0)
			k++;
		if (k < n)
			free(job);
		else
			cs[n++] = (read_check){.job = job, .route = r->name};
		if (r->ack == JR_ACK_ON_COMPLETION && !cs[k].on_completion) {
			cs[k].on_completion = 1;
			cs[k].route = r->name;
		}
	}
	for (size_t k = 0; k < n; k++) {
		if (runexec_list_executions(f->admin, cs[k].job, 1, NULL, timeout_ms, on_check,
					     &cs[k]) == 0) {
			pending++;
			continue;
		}
		cs[k].done = 1;
		cs[k].code = JR_GRPC_UNAVAILABLE;
		cs[k].message = jr_strdup("cannot start ListExecutions");
	}
	while (pending > 0) {
		loop_run_once(runjob_loop(api), -1);
		pending = 0;
		for (size_t k = 0; k < n; k++)
			pending += !cs[k].done;
	}
	for (size_t k = 0; k < n; k++) {
		if (check_verdict(api, &cs[k]) < 0)
			rc = -1;
		free(cs[k].job);
		free(cs[k].message);
	}
	free(cs);
	return rc;
}

static int runjob_runner(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb,
			 void *arg)
{
	return runjob_run(ctx, req, timeout_ms, cb, arg);
}

jr_runner runwatch_runner(jr_runjob *c)
{
	return (jr_runner){
		.run = runjob_runner, .follow = runwatch_follow, .find = runwatch_find, .ctx = c};
}
