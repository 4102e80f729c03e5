/*
 * serve.c — the `serve` driver: HTTP requests in, dispatcher deliveries out.
 *
 * Each POST becomes one sreq: its body is decoded into events (one for
 * binary, structured and push forms, several for a batch), each event is
 * submitted to the dispatcher, and when the last outcome is in the request
 * is answered for all of them (docs/serve.md): 204 when
 * every event is done (dispatched, dropped, unrouted, or dead-lettered with
 * the sink's confirmation), else 503 — or 429 when only RESOURCE_EXHAUSTED
 * asks for a retry — with Retry-After from the longest delay asked for.
 * Pub/Sub push and Eventarc redeliver on any non-2xx answer, so nothing is
 * held here between deliveries: a retry is the sender's next delivery, and
 * its deliveryAttempt (when the push body carries one) is the attempt count.
 *
 * Load shedding: a request whose events would wait for a RunJob call slot
 * longer than serve.max_queue_wait (estimated from the dispatcher's queue,
 * `concurrency` and the moving average of RunJob latency) is answered 503
 * with Retry-After at once, and nothing of it is dispatched; a request is
 * always admitted when no dispatch is waiting, so a large batch still goes.
 *
 * A request that does not decode is an invalid_event: with a dead-letter
 * file the raw body (cut at 64 KiB) is dead-lettered, and once the sink
 * confirmed the request is answered by its valid events (204 when there are
 * none); without a sink it gets 400 with the reason and none of its events
 * is dispatched, so a resent batch cannot run twice; a sink that fails gives
 * 503.
 *
 * Shutdown (docs/serve.md): on SIGTERM the server quiesces, requests in flight get up
 * to shutdown_grace to finish, and what is left is answered 503; then RunJob
 * calls still open are cancelled and the process exits 0. A second signal
 * exits at once. sreqs are kept on a free list, so a steady load allocates
 * none.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "daemon.h"
#include "decode.h"
#include "dispatcher.h"
#include "httpd.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "runjob.h"
#include "runwatch.h"

/* How long serve waits for the Run API channel at start-up (at most call_timeout). */
#define DEFAULT_PORT 8080
#define TRACE_MAX 160

typedef struct serve serve;
typedef struct sreq sreq;

typedef enum serve_state {
	SERVE_STARTING,
	SERVE_RUNNING,
	SERVE_DRAINING,   /* a signal came: no new requests; those in flight finish */
	SERVE_GRACE_OVER, /* shutdown_grace passed: what was left is answered 503 */
	SERVE_STOPPING,   /* drained (or start-up failed): a request still handed over gets 503 */
} serve_state;

static const char *const serve_state_names[] = {
	"starting", "running", "draining", "grace_over", "stopping",
};

/* The worst outcome among a request's events, in the order they dominate. */
typedef enum verdict {
	V_DONE,      /* 204 */
	V_RESOURCE,  /* 429 */
	V_RETRY,     /* 503 */
} verdict;

struct sreq {
	serve *s;
	jr_http_req *http;  /* NULL once answered */
	jr_event **evs;
	size_t n_evs, cap_evs;
	int open;           /* outcomes still to come */
	int invalid;        /* parts that did not decode */
	char error[256];    /* the first decode error */
	verdict worst;
	int64_t delay_ms;
	char trace[TRACE_MAX]; /* the request's trace for its lines, "" when none */
	char span[17];      /* its parent span ("" when none) */
	int sampled;
	jr_link link;       /* in the open list, or the free list */
};

struct serve {
	const jr_config *cfg;
	const jr_serve_opts *o;
	jr_daemon dm;       /* the host: loop, Run API, sinks, dispatcher, signals, grace timer */
	jr_loop *loop;      /* dm.loop, borrowed */
	jr_sink *sink;      /* dm.sink, borrowed */
	jr_dispatcher *d;   /* dm.d, borrowed */
	jr_httpd *http;
	jr_auth *auth;
	serve_state state;  /* serve_set_state */
	jr_link open;       /* requests not yet finished */
	int n_open;
	jr_link free_list;
	jr_metric *received, *requests, *shed;
};

/* ---- the --dry-run runner: every RunJob succeeds at once, from the loop ---- */

typedef struct dry_runner dry_runner;

typedef struct dry_call {
	dry_runner *dr;
	jr_run_cb cb;
	void *arg;
	struct dry_call *next; /* free list */
} dry_call;

struct dry_runner {
	jr_loop *loop;
	dry_call *free_list;
};

static void dry_fire(void *arg)
{
	dry_call *c = arg;
	dry_runner *dr = c->dr;
	jr_runresult res = {.code = 0, .message = "", .operation = "dry-run",
			    .execution = "dry-run", .retry_delay_ms = -1};
	jr_run_cb cb = c->cb;
	void *cb_arg = c->arg;
	c->next = dr->free_list;
	dr->free_list = c;
	cb(cb_arg, &res);
}

static int dry_run(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
{
	(void)timeout_ms;
	dry_runner *dr = ctx;
	dry_call *c = dr->free_list;
	if (c)
		dr->free_list = c->next;
	else
		c = jr_malloc(sizeof *c);
	c->dr = dr;
	c->cb = cb;
	c->arg = arg;
	if (log_enabled(JR_LOG_DEBUG))
		log_kv(JR_LOG_DEBUG, "DRY-RUN", "RunJob not sent (--dry-run)", "job", req->name, NULL);
	loop_timer_add(dr->loop, 0, dry_fire, c);
	return 0;
}

static void dry_free(dry_runner *dr)
{
	while (dr->free_list) {
		dry_call *c = dr->free_list;
		dr->free_list = c->next;
		free(c);
	}
}

/* ---- requests ---- */

static sreq *sreq_get(serve *s, jr_http_req *http)
{
	jr_link *l = list_last(&s->free_list);
	sreq *q;
	if (l) {
		list_remove(l);
		q = list_item(l, sreq, link);
	} else {
		q = jr_calloc(1, sizeof *q);
	}
	jr_event **evs = q->evs;
	size_t cap = q->cap_evs;
	*q = (sreq){.s = s, .http = http, .evs = evs, .cap_evs = cap};
	list_append(&s->open, &q->link);
	s->n_open++;
	return q;
}

static void sreq_put(sreq *q)
{
	serve *s = q->s;
	list_remove(&q->link);
	s->n_open--;
	list_append(&s->free_list, &q->link);
}

static void answer(sreq *q, int status, const char *text)
{
	if (!q->http)
		return;
	char n[16], st[8];
	snprintf(n, sizeof n, "%zu", q->n_evs);
	snprintf(st, sizeof st, "%d", status);
	if (status == 429 || status == 503) {
		int64_t secs = (q->delay_ms + 999) / 1000;
		char ra[24];
		snprintf(ra, sizeof ra, "%lld", (long long)(secs < 1 ? 1 : secs));
		httpd_req_add_header(q->http, "Retry-After", ra);
	}
	if (status >= 300)
		log_kv(status >= 500 ? JR_LOG_WARNING : JR_LOG_INFO, "HTTP-ANSWER", text, "status", st,
		       "events", n, "path", httpd_req_path(q->http), NULL);
	else if (log_enabled(JR_LOG_DEBUG))
		log_kv(JR_LOG_DEBUG, "HTTP-ANSWER", text, "status", st, "events", n, NULL);
	char body[320];
	int len = snprintf(body, sizeof body, "%s\n", text);
	if (len < 0 || (size_t)len >= sizeof body)
		len = (int)sizeof body - 1;
	httpd_respond(q->http, status, "text/plain; charset=utf-8", status == 204 ? NULL : body,
		      status == 204 ? 0 : (size_t)len);
	q->http = NULL;
}

static void finish(sreq *q)
{
	switch (q->worst) {
	case V_DONE:
		answer(q, 204, "done");
		break;
	case V_RESOURCE:
		answer(q, 429, "Run API quota exhausted: retry later");
		break;
	case V_RETRY:
		answer(q, 503, "not done: retry later");
		break;
	}
	sreq_put(q);
}

static void worsen(sreq *q, verdict v, int64_t delay_ms)
{
	if (v > q->worst)
		q->worst = v;
	if (delay_ms > q->delay_ms)
		q->delay_ms = delay_ms;
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	sreq *q = arg;
	log_set_trace(q->trace, q->span, q->sampled);
	if (o->kind == JR_OUTCOME_RETRY)
		worsen(q, o->cls == JR_ERR_RESOURCE && !o->hold ? V_RESOURCE : V_RETRY, o->delay_ms);
	else if (o->kind == JR_OUTCOME_FAILED)
		worsen(q, V_RETRY, 0);
	event_free(ev);
	if (--q->open == 0)
		finish(q);
	log_set_trace(NULL, NULL, 0);
}

static void on_decoded(void *arg, jr_event *ev, const char *err)
{
	sreq *q = arg;
	if (!ev) {
		if (!q->invalid++)
			snprintf(q->error, sizeof q->error, "%s", err ? err : "undecodable");
		return;
	}
	if (q->n_evs == q->cap_evs) {
		q->cap_evs = q->cap_evs ? q->cap_evs * 2 : 4;
		q->evs = jr_realloc(q->evs, q->cap_evs * sizeof *q->evs);
	}
	q->evs[q->n_evs++] = ev;
}

/* trace_text: "projects/P/traces/T" of t into out, or "" when no t or no project. */
static void trace_text(const serve *s, const jr_trace *t, char out[TRACE_MAX])
{
	out[0] = '\0';
	if (t && s->cfg->project)
		snprintf(out, TRACE_MAX, "projects/%s/traces/%s", s->cfg->project, t->id);
}

/* set_trace: q's lines carry its request's trace and parent span (the dispatcher's its own). */
static void set_trace(serve *s, sreq *q)
{
	const jr_trace *t = httpd_req_trace(q->http);
	trace_text(s, t, q->trace);
	snprintf(q->span, sizeof q->span, "%s", t ? t->span : "");
	q->sampled = t && trace_sampled(t);
	log_set_trace(q->trace, q->span, q->sampled);
}

/*
 * pre_body: push authentication, on MHD's thread before the body is read
 * (httpd.h), so a request without valid credentials costs no body memory.
 * The token is taken from X-Serverless-Authorization when the request has
 * that header, else from Authorization: Cloud Run's IAM check prefers it the
 * same way. auth_check may run on any thread; s->auth and s->cfg do not
 * change while the server runs.
 */
static int pre_body(void *arg, const jr_http_req *http, char *text, size_t textlen)
{
	serve *s = arg;
	char why[128];
	const char *hdr = "x-serverless-authorization";
	const char *v = httpd_req_header(http, hdr);
	if (!v) {
		hdr = "authorization";
		v = httpd_req_header(http, hdr);
	}
	int code = auth_check(s->auth, v, (int64_t)time(NULL), why, sizeof why);
	if (code == 0)
		return 0;
	char c[8], trace[TRACE_MAX];
	const jr_trace *t = httpd_req_trace(http);
	trace_text(s, t, trace);
	log_set_trace(trace, t ? t->span : NULL, t && trace_sampled(t));
	snprintf(c, sizeof c, "%d", code);
	log_kv(JR_LOG_WARNING, "AUTH-REJECTED", "push request refused", "status", c, "reason", why,
	       "header", hdr, "path", httpd_req_path(http), NULL);
	log_set_trace(NULL, NULL, 0);
	snprintf(text, textlen, "%s\n", code == 401 ? "unauthenticated" : "forbidden");
	return code;
}

/*
 * held_bytes: what q's decoded events hold, for the memory budget: each
 * event's arena bytes plus a block (arenas grow in 4 KiB blocks).
 */
static size_t held_bytes(const sreq *q)
{
	size_t n = q->cap_evs * sizeof *q->evs;
	for (size_t i = 0; i < q->n_evs; i++)
		n += q->evs[i]->arena.used + 4096;
	return n;
}

static void on_raw_done(void *arg, int ok)
{
	sreq *q = arg;
	log_set_trace(q->trace, q->span, q->sampled);
	if (!ok)
		worsen(q, V_RETRY, 0);
	if (--q->open == 0)
		finish(q);
	log_set_trace(NULL, NULL, 0);
}

/*
 * queue_wait_ms: the expected wait for a call slot of the last of n tasks
 * submitted behind `queued` waiting ones, when `concurrency` slots each free
 * up every latency_ms.
 */
static int64_t queue_wait_ms(int queued, size_t n, int concurrency, int64_t latency_ms)
{
	return ((int64_t)queued + (int64_t)n) * latency_ms / (concurrency > 0 ? concurrency : 1);
}

/*
 * admitted: 1 when q's events may be dispatched now; else 0 after answering
 * 503 (its events freed, nothing dispatched). Before the first RunJob answer
 * a call is taken to last the whole budget, so `concurrency` tasks may wait.
 */
static int admitted(serve *s, sreq *q)
{
	int queued = dispatcher_queued(s->d);
	if (queued == 0 || q->n_evs == 0)
		return 1;
	int64_t budget = s->cfg->serve_max_queue_wait_ms;
	int64_t lat = dispatcher_latency_ms(s->d);
	int64_t wait = queue_wait_ms(queued, q->n_evs, s->cfg->concurrency, lat < 0 ? budget : lat);
	if (wait <= budget)
		return 1;
	metric_add(s->shed, NULL, 1);
	q->delay_ms = wait - budget < 60000 ? wait - budget : 60000; /* Retry-After at most a minute */
	answer(q, 503, "overloaded: too many dispatches waiting for the Run API; retry later");
	for (size_t i = 0; i < q->n_evs; i++) {
		dispatcher_shed(s->d, q->evs[i]); /* the sender counts this delivery: no attempt */
		event_free(q->evs[i]);
	}
	q->n_evs = 0;
	return 0;
}

/* invalid_parts: dead-letters an undecodable body. 1 when the request may go on, 0 after answering. */
static int invalid_parts(serve *s, sreq *q, const char *body, size_t len)
{
	char n[16];
	snprintf(n, sizeof n, "%d", q->invalid);
	log_kv(JR_LOG_ERROR, "EVENT-INVALID", "request body rejected", "error", q->error, "parts", n,
	       "path", httpd_req_path(q->http), NULL);
	/* no sink, or a batch past limits.batch_events (the sender must split it; none of it ran) */
	if (!s->sink || (q->n_evs == 0 && decode_batch_too_large(q->error))) {
		for (size_t i = 0; i < q->n_evs; i++)
			event_free(q->evs[i]);
		char text[300];
		snprintf(text, sizeof text, "invalid event: %s", q->error);
		q->n_evs = 0;
		answer(q, 400, text);
		return 0;
	}
	/* answered only once the sinks confirmed (on_raw_done) */
	q->open++;
	/* the whole body (at most limits.event_bytes): a record cut short could not be replayed */
	dispatcher_dead_letter_raw(s->d, body, len, NULL, "http", q->error,
				   on_raw_done, q);
	return 1;
}

static void on_post(void *arg, jr_http_req *http)
{
	serve *s = arg;
	sreq *q = sreq_get(s, http);
	set_trace(s, q);
	metric_add(s->requests, NULL, 1);
	if (s->state == SERVE_STOPPING) {
		answer(q, 503, "shutting down");
		sreq_put(q);
		log_set_trace(NULL, NULL, 0);
		return;
	}
	size_t nh, len;
	const jr_header *h = httpd_req_headers(http, &nh);
	const char *body = httpd_req_body(http, &len);
	jr_decode_ctx dc = {.limits = &s->cfg->limits, .origin = "http", .topic = s->cfg->topic,
			    .cb = on_decoded, .arg = q};
	decode_http(&dc, h, nh, httpd_req_path(http), body, len);
	metric_add(s->received, "source=\"serve\"", (double)(q->n_evs + (size_t)q->invalid));
	if (httpd_req_hold(http, held_bytes(q)) < 0) {
		/* its events would pass limits.inflight_bytes: none is dispatched */
		for (size_t i = 0; i < q->n_evs; i++)
			event_free(q->evs[i]);
		q->n_evs = 0;
		q->delay_ms = 1000;
		answer(q, 503, "server busy: request memory at its limit");
		sreq_put(q);
		log_set_trace(NULL, NULL, 0);
		return;
	}
	if (!admitted(s, q) || (q->invalid && !invalid_parts(s, q, body, len))) {
		sreq_put(q);
		log_set_trace(NULL, NULL, 0);
		return;
	}
	/* the outcomes come from the loop, never from inside submit, so open is final here */
	q->open += (int)q->n_evs;
	for (size_t i = 0; i < q->n_evs; i++) {
		jr_event *ev = q->evs[i];
		/* Pub/Sub counts the deliveries that were held: the dispatcher subtracts them */
		int attempt = ev->message && ev->message->delivery_attempt > 0
				      ? ev->message->delivery_attempt : 1;
		dispatcher_submit(s->d, ev, attempt, NULL, on_outcome, q);
	}
	if (q->open == 0)
		finish(q);
	log_set_trace(NULL, NULL, 0);
}

static int is_ready(void *arg)
{
	serve *s = arg;
	return daemon_ready(&s->dm) && (!s->auth || auth_ready(s->auth));
}

/* ---- state and shutdown ---- */

/* serve_set_state: every change of the server's state: one log line (SERVE-STATE). */
static void serve_set_state(serve *s, serve_state st, const char *why)
{
	if (s->state == st)
		return;
	serve_state from = s->state;
	s->state = st;
	char n[16];
	snprintf(n, sizeof n, "%d", s->n_open);
	log_kv(JR_LOG_INFO, "SERVE-STATE", "serve state changed", "state", serve_state_names[st],
	       "from", serve_state_names[from], "reason", why, "open_requests", n, NULL);
}

/* grace_over: the host's grace timer fired: what is still open is answered 503. */
static void grace_over(void *arg)
{
	serve *s = arg;
	serve_set_state(s, SERVE_GRACE_OVER, "shutdown_grace over");
	int n = 0;
	for (jr_link *l = s->open.next; l != &s->open; l = l->next) {
		sreq *q = list_item(l, sreq, link);
		if (q->http) {
			answer(q, 503, "shutting down: not finished within shutdown_grace");
			n++;
		}
	}
	char c[16];
	snprintf(c, sizeof c, "%d", n);
	log_kv(n ? JR_LOG_WARNING : JR_LOG_INFO, "SERVE-GRACE-OVER",
	       "shutdown_grace over: unfinished requests answered 503", "requests", c, NULL);
}

/* exit_now: a signal during start-up, or a second one: the process exits with the code returned. */
static int exit_now(void *arg, const char *signame, int starting)
{
	serve *s = arg;
	if (starting) {
		log_kv(JR_LOG_INFO, "SERVE-EXIT-NOW", "signal during start-up: exiting", "signal",
		       signame, NULL);
		return 0;
	}
	char n[16];
	snprintf(n, sizeof n, "%d", s->n_open);
	log_kv(JR_LOG_WARNING, "SERVE-EXIT-NOW", "second signal: exiting at once", "signal",
	       signame, "open_requests", n, NULL);
	return s->n_open ? 1 : 0;
}

/* begin_drain: the host's first signal while running; its grace timer runs (grace_over). */
static void begin_drain(void *arg, const char *signame)
{
	serve *s = arg;
	serve_set_state(s, SERVE_DRAINING, signame);
	daemon_set_ready(&s->dm, 0);
	httpd_quiesce(s->http);
	char n[16], g[32];
	/* handed to the loop and not answered: those in s->open, and those not yet delivered */
	snprintf(n, sizeof n, "%d", httpd_pending(s->http));
	snprintf(g, sizeof g, "%lldms", (long long)s->cfg->shutdown_grace_ms);
	log_kv(JR_LOG_INFO, "SERVE-DRAIN", "signal received: no new requests; finishing those in flight",
	       "signal", signame, "open_requests", n, "grace", g, NULL);
}

/* drained: every request that reached the loop was answered, and none waits to. */
static int drained(const serve *s)
{
	if (s->state == SERVE_GRACE_OVER)
		return 1;
	for (const jr_link *l = s->open.next; l != &s->open; l = l->next)
		if (list_item(l, sreq, link)->http)
			return 0;
	return httpd_pending(s->http) == 0;
}

/* serve_done: the host's loop ends once a signal came and every request was answered. */
static int serve_done(void *arg)
{
	const serve *s = arg;
	return s->state >= SERVE_DRAINING && drained(s);
}

/* ---- start and stop ---- */

static void labels_from_env(void)
{
	static const char *const keys[] = {"K_SERVICE", "K_REVISION", "K_CONFIGURATION"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *v = getenv(keys[i]);
		if (v && *v)
			log_label(keys[i], v);
	}
}

/* raise_nofile: a server wants its descriptor limit (soft up to hard). */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int open_peers(serve *s, dry_runner *dr)
{
	char err[256];
	if (!s->o->dry_run) {
		int rc = daemon_open_sinks(&s->dm);
		if (rc)
			return rc;
		s->sink = s->dm.sink;
	}
	s->auth = auth_new(s->cfg, err, sizeof err);
	if (!s->auth && err[0]) {
		log_kv(JR_LOG_ERROR, "AUTH-INIT", "cannot set up push authentication", "error", err,
		       NULL);
		return 2;
	}
	/* the dispatcher logs each event's lines with its trace (from the request's headers) */
	jr_runner r = {.run = dry_run, .ctx = dr};
	if (!s->o->dry_run) {
		int rc = daemon_open_run_api(&s->dm, s->o->run_endpoint);
		if (rc == 0)
			rc = daemon_check_run_api(&s->dm, NULL);
		if (rc)
			return rc;
		r = runwatch_runner(s->dm.api);
	}
	/* no `out`: an event whose dead letter failed gets 503, so its sender keeps it */
	s->d = s->dm.d = dispatcher_new(s->cfg, loop_timers(s->loop), r, s->sink, NULL, NULL);
	return 0;
}

static int start_http(serve *s)
{
	int port = daemon_env_port(s->o->port, DEFAULT_PORT);
	if (port < 0) {
		log_kv(JR_LOG_ERROR, "SERVE-PORT", "$PORT is not a port number", "PORT", getenv("PORT"),
		       NULL);
		return 2;
	}
	raise_nofile();
	jr_httpd_opts ho = {
		.port = port, .bind = s->o->bind, .post = on_post, .post_arg = s,
		.ready = is_ready, .ready_arg = s, .max_body = s->cfg->limits.event_bytes,
		.max_header = s->cfg->limits.header_bytes, .max_connections = s->o->max_connections,
		.conn_timeout_ms = s->o->request_timeout_ms,
		.idle_timeout_ms = s->cfg->limits.idle_timeout_ms,
		.max_inflight = s->cfg->limits.inflight_bytes,
		.pre_body = s->auth ? pre_body : NULL, .pre_body_arg = s,
	};
	char err[256];
	s->http = httpd_start(s->loop, &ho, err, sizeof err);
	if (!s->http) {
		log_kv(JR_LOG_ERROR, "SERVE-LISTEN", "cannot start the HTTP server", "error", err, NULL);
		return 2;
	}
	char p[16];
	snprintf(p, sizeof p, "%d", httpd_port(s->http));
	log_kv(JR_LOG_INFO, "SERVE-LISTENING", "serving HTTP", "port", p, "address",
	       s->o->bind ? s->o->bind : "0.0.0.0", "dry_run", s->o->dry_run ? "true" : "false",
	       NULL);
	return 0;
}

/* run_until_drained: serves until a signal came and every request was answered, then stops dispatching. */
static void run_until_drained(serve *s)
{
	daemon_run(&s->dm);
	serve_set_state(s, SERVE_STOPPING, "drained");
	daemon_grace_cancel(&s->dm);
	daemon_stop_dispatch(&s->dm);
}

/* serve_release: the host's teardown step 4: the HTTP server and the push authentication. */
static void serve_release(void *arg)
{
	serve *s = arg;
	s->d = NULL;
	httpd_free(s->http);
	s->http = NULL;
	auth_free(s->auth);
	s->auth = NULL;
}

static void free_requests(serve *s)
{
	jr_link *l;
	while ((l = list_first(&s->free_list))) {
		sreq *q = list_item(l, sreq, link);
		list_remove(l);
		free(q->evs);
		free(q);
	}
}

int serve_run(const jr_config *cfg, const jr_serve_opts *o)
{
	serve s = {.cfg = cfg, .o = o};
	list_init(&s.open);
	list_init(&s.free_list);
	s.received = metric_register("jobrelay_events_received_total", JR_METRIC_COUNTER,
				     "Events received, by source.", NULL, 0);
	s.requests = metric_register("jobrelay_http_requests_total", JR_METRIC_COUNTER,
				     "POST requests handed to the dispatcher side.", NULL, 0);
	s.shed = metric_register("jobrelay_http_shed_total", JR_METRIC_COUNTER,
				 "POST requests answered 503 at once: their dispatches would wait "
				 "longer than serve.max_queue_wait.", NULL, 0);
	labels_from_env();
	jr_daemon_ops ops = {.tag = "SERVE", .drain = begin_drain, .grace_over = grace_over,
			     .exit_now = exit_now, .done = serve_done, .release = serve_release,
			     .arg = &s};
	daemon_open(&s.dm, cfg, &ops);
	s.loop = s.dm.loop;
	dry_runner dr = {.loop = s.loop};
	int rc = daemon_signals(&s.dm) < 0 ? 2 : 0;
	if (rc == 0)
		rc = open_peers(&s, &dr);
	if (rc == 0)
		rc = start_http(&s);
	if (rc == 0) {
		daemon_running(&s.dm);
		daemon_set_ready(&s.dm, 1);
		serve_set_state(&s, SERVE_RUNNING, "started");
		run_until_drained(&s);
		log_kv(JR_LOG_INFO, "SERVE-STOPPED", "drained; exiting", NULL);
	}
	serve_set_state(&s, SERVE_STOPPING, "start-up failed");
	daemon_free(&s.dm);
	dry_free(&dr);
	free_requests(&s);
	return rc;
}
