/*
 * replay.c — the replay driver.
 *
 * Events are pulled from the input only while fewer than `concurrency`
 * route deliveries are open, so memory stays flat however long the input is.
 * Each (event, route) pair is one task: rendered once, then sent, retried on
 * a loop timer per its class policy, and finally counted as dispatched,
 * dead-lettered, dropped or failed. --dry-run takes a synchronous path that
 * renders and prints, with no loop and no client.
 */
#include "replay.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadletter.h"
#include "log.h"
#include "loop.h"
#include "route.h"
#include "runapi.h"

/* How long replay waits for the Run API channel at start-up (at most call_timeout). */
#define STARTUP_WAIT_MS 10000

typedef struct route_stats {
	long dispatched, failed, dead_lettered, dropped;
} route_stats;

typedef struct evref {
	jr_event *ev;
	int refs;
} evref;

typedef struct replay replay;

typedef struct task {
	replay *rp;
	evref *er;
	size_t ri;
	jr_runreq req;
	int attempts;
	struct task *next; /* in the ready queue */
} task;

struct replay {
	const jr_config *cfg;
	const jr_replay_opts *o;
	jr_loop *loop;
	jr_runapi *api;
	jr_sink *sink;
	jr_input *in;
	int input_done;
	route_stats *rs;
	long events, invalid, unrouted, unrouted_dl, unrouted_failed;
	int open_tasks, in_flight;
	task *ready_head, *ready_tail;
	uint64_t rng;
	int64_t started_ms, last_progress_ms;
	jr_buf line;
};

static void evref_release(evref *er)
{
	if (--er->refs == 0) {
		event_free(er->ev);
		free(er);
	}
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * dead_letter: writes the record to the sink. Returns 1 when durable, 0 when
 * there is no sink or it failed; then the record is printed on o->out so
 * nothing is lost silently.
 */
static int dead_letter(replay *rp, const jr_dlrecord *r)
{
	char err[256] = "no dead-letter sink configured";
	int rc = -1;
	if (rp->sink) {
		rc = rp->sink->write(rp->sink, r, NULL, NULL, err, sizeof err);
		/* the file sink is synchronous; a pending answer is not expected here */
		if (rc == 1)
			rc = -1;
	}
	if (rc == 0) {
		log_kv(JR_LOG_WARNING, "DEADLETTER-OK", "event dead-lettered", "route", r->route,
		       "event_id", r->ev ? r->ev->id : NULL, "origin", r->origin, "class",
		       errclass_name(r->cls), "code", r->code, "error", r->message, NULL);
		return 1;
	}
	log_kv(JR_LOG_ERROR, "DEADLETTER-FAILED", "event could not be dead-lettered; printed",
	       "route", r->route, "event_id", r->ev ? r->ev->id : NULL, "origin", r->origin,
	       "class", errclass_name(r->cls), "code", r->code, "error", r->message, "sink_error",
	       err, NULL);
	buf_reset(&rp->line);
	deadletter_write_json(&rp->line, r);
	buf_addc(&rp->line, '\n');
	fwrite(rp->line.data, 1, rp->line.len, rp->o->out);
	fflush(rp->o->out);
	return 0;
}

static void task_free(task *t)
{
	replay *rp = t->rp;
	runreq_free(&t->req);
	evref_release(t->er);
	free(t);
	rp->open_tasks--;
}

static void task_dead_letter(task *t, jr_errclass cls, const char *code, const char *msg)
{
	replay *rp = t->rp;
	const jr_route *r = &rp->cfg->routes[t->ri];
	jr_dlrecord rec = {
		.ev = t->er->ev, .origin = t->er->ev->origin, .route = r->name,
		.attempts = t->attempts, .cls = cls, .code = code, .message = msg,
		.failed_at_ms = wall_ms(),
	};
	if (dead_letter(rp, &rec))
		rp->rs[t->ri].dead_lettered++;
	else
		rp->rs[t->ri].failed++;
}

static void task_submit(task *t);

static void on_retry_timer(void *arg)
{
	task_submit(arg);
}

static void task_failed(task *t, int code, const char *msg, int64_t hint_ms)
{
	replay *rp = t->rp;
	const jr_route *r = &rp->cfg->routes[t->ri];
	jr_errclass cls = errclass_from_grpc(code);
	jr_decision d = policy_decide(&r->policies, cls, t->attempts, hint_ms, rp->o->no_retry,
				      rng_next(&rp->rng));
	if (d.action == JR_ACT_RETRY) {
		char delay[32], att[16];
		snprintf(delay, sizeof delay, "%lldms", (long long)d.delay_ms);
		snprintf(att, sizeof att, "%d", t->attempts);
		log_kv(JR_LOG_WARNING, "DISPATCH-RETRY", "RunJob failed; retrying", "route", r->name,
		       "event_id", t->er->ev->id, "job", t->req.name, "class", errclass_name(cls),
		       "code", grpc_code_name(code), "error", msg, "attempt", att, "delay", delay, NULL);
		loop_timer_add(rp->loop, d.delay_ms, on_retry_timer, t);
		return;
	}
	if (d.action == JR_ACT_DROP) {
		log_kv(JR_LOG_WARNING, "DISPATCH-DROP", "RunJob failed; dropped by policy", "route",
		       r->name, "event_id", t->er->ev->id, "class", errclass_name(cls), "code",
		       grpc_code_name(code), "error", msg, NULL);
		rp->rs[t->ri].dropped++;
	} else {
		task_dead_letter(t, cls, grpc_code_name(code), msg);
	}
	task_free(t);
}

static void drain_ready(replay *rp);

static void on_run_done(void *arg, const jr_runresult *res)
{
	task *t = arg;
	replay *rp = t->rp;
	rp->in_flight--;
	if (res->code == 0) {
		const jr_route *r = &rp->cfg->routes[t->ri];
		char att[16];
		snprintf(att, sizeof att, "%d", t->attempts);
		log_kv(JR_LOG_INFO, "DISPATCH-OK", "execution started", "route", r->name, "event_id",
		       t->er->ev->id, "job", t->req.name, "execution", res->execution, "log_uri",
		       res->log_uri, "attempt", att, NULL);
		rp->rs[t->ri].dispatched++;
		task_free(t);
	} else {
		task_failed(t, res->code, res->message, res->retry_delay_ms);
	}
	drain_ready(rp);
}

static void task_start(task *t)
{
	replay *rp = t->rp;
	t->attempts++;
	rp->in_flight++;
	if (runapi_run(rp->api, &t->req, rp->cfg->call_timeout_ms, on_run_done, t) < 0) {
		rp->in_flight--;
		task_failed(t, JR_GRPC_UNAVAILABLE, "could not start the RunJob call", -1);
	}
}

static void task_submit(task *t)
{
	replay *rp = t->rp;
	if (rp->in_flight < rp->cfg->concurrency) {
		task_start(t);
		return;
	}
	t->next = NULL;
	if (rp->ready_tail)
		rp->ready_tail->next = t;
	else
		rp->ready_head = t;
	rp->ready_tail = t;
}

static void drain_ready(replay *rp)
{
	while (rp->ready_head && rp->in_flight < rp->cfg->concurrency) {
		task *t = rp->ready_head;
		rp->ready_head = t->next;
		if (!rp->ready_head)
			rp->ready_tail = NULL;
		task_start(t);
	}
}

static void print_dry_run(replay *rp, const jr_route *r, const jr_event *ev, const jr_runreq *req)
{
	jr_buf *b = &rp->line;
	buf_reset(b);
	buf_adds(b, "{\"route\":");
	json_write_string(b, r->name, strlen(r->name));
	buf_adds(b, ",\"event\":{\"id\":");
	json_write_string(b, ev->id, strlen(ev->id));
	buf_adds(b, ",\"source\":");
	json_write_string(b, ev->source, strlen(ev->source));
	buf_adds(b, ",\"type\":");
	json_write_string(b, ev->type, strlen(ev->type));
	buf_adds(b, "},\"request\":");
	runreq_write_json(b, req);
	buf_adds(b, "}\n");
	fwrite(b->data, 1, b->len, rp->o->out);
}

static void start_route(replay *rp, evref *er, size_t ri)
{
	const jr_route *r = &rp->cfg->routes[ri];
	task *t = jr_calloc(1, sizeof *t);
	t->rp = rp;
	t->er = er;
	t->ri = ri;
	er->refs++;
	rp->open_tasks++;
	char *err = NULL;
	if (route_render(rp->cfg, r, er->ev, &t->req, &err) < 0) {
		log_kv(JR_LOG_ERROR, "ROUTE-RENDER-FAILED", "cannot render the request", "route",
		       r->name, "event_id", er->ev->id, "origin", er->ev->origin, "error", err, NULL);
		if (rp->o->dry_run)
			rp->rs[ri].failed++;
		else
			task_dead_letter(t, JR_ERR_INVALID_EVENT, "INVALID_EVENT", err);
		free(err);
		task_free(t);
		return;
	}
	if (rp->o->dry_run) {
		print_dry_run(rp, r, er->ev, &t->req);
		rp->rs[ri].dispatched++;
		task_free(t);
		return;
	}
	task_submit(t);
}

static void handle_unrouted(replay *rp, jr_event *ev)
{
	rp->unrouted++;
	if (rp->cfg->unrouted != JR_UNROUTED_DEAD_LETTER || rp->o->dry_run) {
		log_kv(JR_LOG_DEBUG, "EVENT-UNROUTED", "no route matches; dropped", "event_id", ev->id,
		       "type", ev->type, "origin", ev->origin, NULL);
		return;
	}
	jr_dlrecord rec = {
		.ev = ev, .origin = ev->origin, .attempts = 0, .cls = JR_ERR_INVALID_EVENT,
		.code = "UNROUTED", .message = "no route matches the event", .failed_at_ms = wall_ms(),
	};
	if (dead_letter(rp, &rec))
		rp->unrouted_dl++;
	else
		rp->unrouted_failed++;
}

static void handle_invalid(replay *rp, jr_input_item *it)
{
	rp->invalid++;
	log_kv(JR_LOG_ERROR, "EVENT-INVALID", "input rejected", "error", it->error, NULL);
	if (rp->o->dry_run || !rp->sink)
		return; /* reported above, counted as a failure */
	jr_dlrecord rec = {
		.raw = it->raw ? it->raw : "", .raw_len = it->raw ? it->raw_len : 0,
		.origin = input_position(rp->in), .cls = JR_ERR_INVALID_EVENT,
		.code = "INVALID_EVENT", .message = it->error, .failed_at_ms = wall_ms(),
	};
	dead_letter(rp, &rec);
}

static void handle_item(replay *rp, jr_input_item *it)
{
	rp->events++;
	if (!it->ev) {
		handle_invalid(rp, it);
		free(it->error);
		free(it->raw);
		return;
	}
	evref *er = jr_malloc(sizeof *er);
	er->ev = it->ev;
	er->refs = 1;
	int matched = 0;
	for (size_t i = 0; i < rp->cfg->n_routes; i++) {
		const jr_route *r = &rp->cfg->routes[i];
		if (rp->o->route && strcmp(rp->o->route, r->name) != 0)
			continue;
		if (route_match(r, er->ev)) {
			matched++;
			start_route(rp, er, i);
		}
	}
	if (!matched)
		handle_unrouted(rp, er->ev);
	evref_release(er);
}

static void pump(replay *rp)
{
	jr_input_item it;
	while (!rp->input_done && rp->open_tasks < rp->cfg->concurrency) {
		if (!input_next(rp->in, &it)) {
			rp->input_done = 1;
			break;
		}
		handle_item(rp, &it);
	}
}

static void progress(replay *rp, int final)
{
	if (!rp->o->progress)
		return;
	int64_t now = loop_now_ms();
	if (!final && now - rp->last_progress_ms < 1000)
		return;
	rp->last_progress_ms = now;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	long done = 0;
	for (size_t i = 0; i < rp->cfg->n_routes; i++)
		done += rp->rs[i].dispatched;
	double secs = (double)(now - rp->started_ms) / 1000.0;
	fprintf(stderr, "\r\033[Kreplay: %ld events read, %ld dispatched, %d in flight, %.0f events/s",
		rp->events, done, rp->in_flight, secs > 0 ? (double)rp->events / secs : 0.0);
}

static int summary(replay *rp)
{
	FILE *f = rp->o->summary;
	int bad = rp->invalid > 0 || rp->unrouted_dl > 0 || rp->unrouted_failed > 0;
	fprintf(f, "%-32s %10s %8s %14s %8s\n", "route", "dispatched", "failed", "dead-lettered",
		"dropped");
	for (size_t i = 0; i < rp->cfg->n_routes; i++) {
		const route_stats *s = &rp->rs[i];
		if (rp->o->route && strcmp(rp->o->route, rp->cfg->routes[i].name) != 0)
			continue;
		fprintf(f, "%-32s %10ld %8ld %14ld %8ld\n", rp->cfg->routes[i].name, s->dispatched,
			s->failed, s->dead_lettered, s->dropped);
		bad |= s->failed > 0 || s->dead_lettered > 0;
	}
	fprintf(f, "events: %ld read, %ld invalid, %ld unrouted", rp->events, rp->invalid,
		rp->unrouted);
	if (rp->unrouted_dl || rp->unrouted_failed)
		fprintf(f, " (%ld dead-lettered, %ld failed)", rp->unrouted_dl, rp->unrouted_failed);
	fprintf(f, "\n");
	fflush(f);
	return bad ? 1 : 0;
}

static int open_peers(replay *rp)
{
	char err[256];
	if (rp->cfg->dead_letter_file) {
		rp->sink = deadletter_file_open(rp->cfg->dead_letter_file, err, sizeof err);
		if (!rp->sink) {
			log_kv(JR_LOG_ERROR, "DEADLETTER-OPEN", "cannot open the dead-letter file", "error",
			       err, NULL);
			return 2;
		}
	}
	if (rp->o->dry_run)
		return 0;
	rp->loop = loop_new();
	rp->api = runapi_new(rp->loop, rp->o->run_endpoint, err, sizeof err);
	if (!rp->api) {
		log_kv(JR_LOG_ERROR, "RUNAPI-INIT", "cannot create the Run API client", "error", err,
		       NULL);
		return 3;
	}
	int64_t wait = rp->cfg->call_timeout_ms < STARTUP_WAIT_MS ? rp->cfg->call_timeout_ms
								  : STARTUP_WAIT_MS;
	if (runapi_wait_ready(rp->api, wait) < 0) {
		char ms[32];
		snprintf(ms, sizeof ms, "%lldms", (long long)wait);
		log_kv(JR_LOG_ERROR, "RUNAPI-UNREACHABLE", "cannot reach the Run API", "target",
		       runapi_target(rp->api), "waited", ms, NULL);
		return 3;
	}
	log_kv(JR_LOG_INFO, "RUNAPI-READY", "Run API channel ready", "target",
	       runapi_target(rp->api), NULL);
	return 0;
}

int replay_run(const jr_config *cfg, const jr_replay_opts *o)
{
	replay rp = {.cfg = cfg, .o = o};
	rp.rs = jr_calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *rp.rs);
	rp.rng = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
	buf_init(&rp.line, 0);
	int rc = open_peers(&rp);
	if (rc == 0) {
		rp.in = input_new(o->paths, o->n_paths, o->format, &cfg->limits, cfg->topic);
		rp.started_ms = rp.last_progress_ms = loop_now_ms();
		pump(&rp);
		while (rp.open_tasks > 0 || !rp.input_done) {
			if (rp.loop)
				loop_run_once(rp.loop, -1);
			pump(&rp);
			progress(&rp, 0);
		}
		progress(&rp, 1);
		fflush(o->out);
		rc = summary(&rp);
		input_free(rp.in);
	}
	if (rp.api)
		runapi_free(rp.api);
	if (rp.loop)
		loop_free(rp.loop);
	if (rp.sink)
		rp.sink->close(rp.sink);
	buf_free(&rp.line);
	free(rp.rs);
	return rc;
}
