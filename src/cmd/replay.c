/*
 * replay.c — the replay driver.
 *
 * Events are pulled from the input only while fewer than `concurrency`
 * deliveries are open, so memory stays flat however long the input is. Each
 * event goes through the dispatcher; a RETRY outcome is slept on (a loop
 * timer) and the routes still owed are submitted again with the attempt
 * count raised, until each ends dispatched, dropped or dead-lettered.
 * --dry-run takes a synchronous path that renders and prints, with no loop
 * and no client.
 */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "dispatcher.h"
#include "log.h"
#include "loop.h"
#include "route.h"
#include "runjob.h"
#include "runwatch.h"
#include "dl_sinks.h"


typedef struct replay {
	const jr_config *cfg;
	const jr_replay_opts *o;
	jr_loop *loop;
	jr_runjob *api;
	jr_sink *sink;
	jr_dispatcher *d;
	jr_input *in;
	int input_done;
	long events, invalid, waiting;
	jr_route_stats *dry;          /* --dry-run counters */
	long dry_unrouted;
	int64_t started_ms, last_progress_ms;
	jr_buf line;
} replay;

/* A delivery being retried: the routes still owed and the attempt count. */
typedef struct pending {
	replay *rp;
	jr_event *ev;
	int attempt;
	unsigned char *only;
} pending;

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o);

static void resubmit(void *arg)
{
	pending *p = arg;
	p->rp->waiting--;
	dispatcher_submit(p->rp->d, p->ev, p->attempt, p->only, on_outcome, p);
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	pending *p = arg;
	replay *rp = p->rp;
	if (o->kind == JR_OUTCOME_RETRY) {
		if (!p->only)
			p->only = jr_malloc(rp->cfg->n_routes ? rp->cfg->n_routes : 1);
		memcpy(p->only, o->retry, rp->cfg->n_routes);
		p->attempt++; /* a delivery; the dispatcher does not count the ones it held */
		rp->waiting++;
		loop_timer_add(rp->loop, o->delay_ms, resubmit, p);
		return;
	}
	event_free(ev);
	free(p->only);
	free(p);
}

static void submit(replay *rp, jr_event *ev)
{
	pending *p = jr_calloc(1, sizeof *p);
	p->rp = rp;
	p->ev = ev;
	p->attempt = 1;
	dispatcher_submit(rp->d, ev, 1, NULL, on_outcome, p);
}

/* ---- --dry-run: synchronous ---- */

static void print_dry_run(jr_buf *b, FILE *out, const jr_route *r, const jr_event *ev,
			  const jr_runreq *req)
{
	buf_reset(b);
	buf_adds(b, "{\"route\":");
	jstr_write(b, r->name, strlen(r->name));
	buf_adds(b, ",\"event\":{\"id\":");
	jstr_write(b, ev->id, strlen(ev->id));
	buf_adds(b, ",\"source\":");
	jstr_write(b, ev->source, strlen(ev->source));
	buf_adds(b, ",\"type\":");
	jstr_write(b, ev->type, strlen(ev->type));
	buf_adds(b, "},\"request\":");
	runreq_write_json(b, req);
	buf_adds(b, "}\n");
	fwrite(b->data, 1, b->len, out);
}

int replay_dry_run_event(const jr_config *cfg, const char *only_route, jr_event *ev, FILE *out,
			 jr_buf *line, jr_route_stats *stats)
{
	int matched = 0;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const jr_route *r = &cfg->routes[i];
		if (only_route && strcmp(only_route, r->name) != 0)
			continue;
		if (!route_match(r, ev))
			continue;
		matched++;
		jr_runreq req;
		char *err = NULL;
		if (route_render(cfg, r, ev, &req, &err) < 0) {
			log_kv(JR_LOG_ERROR, "ROUTE-RENDER-FAILED", "cannot render the request", "route",
			       r->name, "event_id", ev->id, "origin", ev->origin, "error", err, NULL);
			stats[i].failed++;
			free(err);
		} else {
			print_dry_run(line, out, r, ev, &req);
			stats[i].dispatched++;
		}
		runreq_free(&req);
	}
	return matched;
}

static void dry_run(replay *rp, jr_event *ev)
{
	if (!replay_dry_run_event(rp->cfg, rp->o->route, ev, rp->o->out, &rp->line, rp->dry))
		rp->dry_unrouted++;
	event_free(ev);
}

/* ---- input ---- */

static void handle_item(replay *rp, jr_input_item *it)
{
	rp->events++;
	if (!it->ev) {
		rp->invalid++;
		log_kv(JR_LOG_ERROR, "EVENT-INVALID", "input rejected", "error", it->error, NULL);
		/* a dry run writes nothing; otherwise the input goes to the dead-letter file */
		if (!rp->o->dry_run && rp->sink)
			dispatcher_dead_letter_raw(rp->d, it->raw, it->raw_len, NULL,
						   input_position(rp->in), it->error, NULL, NULL);
		free(it->error);
		free(it->raw);
		return;
	}
	if (rp->o->dry_run)
		dry_run(rp, it->ev);
	else
		submit(rp, it->ev);
}

static int open_deliveries(const replay *rp)
{
	return rp->d ? dispatcher_open(rp->d) + (int)rp->waiting : 0;
}

static void pump(replay *rp)
{
	jr_input_item it;
	while (!rp->input_done && open_deliveries(rp) < rp->cfg->concurrency) {
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
	const jr_route_stats *rs = rp->d ? dispatcher_route_stats(rp->d) : rp->dry;
	long done = 0;
	for (size_t i = 0; i < rp->cfg->n_routes; i++)
		done += rs[i].dispatched;
	double secs = (double)(now - rp->started_ms) / 1000.0;
	fprintf(stderr, "\r\033[Kreplay: %ld events read, %ld dispatched, %d in flight, %.0f events/s",
		rp->events, done, rp->d ? dispatcher_in_flight(rp->d) : 0,
		secs > 0 ? (double)rp->events / secs : 0.0);
}

static int summary(replay *rp)
{
	FILE *f = rp->o->summary;
	const jr_route_stats *rs = rp->d ? dispatcher_route_stats(rp->d) : rp->dry;
	long udl = 0, ufail = 0;
	long unrouted = rp->d ? dispatcher_unrouted(rp->d, &udl, &ufail) : rp->dry_unrouted;
	int bad = rp->invalid > 0 || udl > 0 || ufail > 0;
	fprintf(f, "%-32s %10s %8s %14s %8s %10s %6s\n", "route", "dispatched", "failed",
		"dead-lettered", "dropped", "duplicate", "held");
	for (size_t i = 0; i < rp->cfg->n_routes; i++) {
		if (rp->o->route && strcmp(rp->o->route, rp->cfg->routes[i].name) != 0)
			continue;
		fprintf(f, "%-32s %10ld %8ld %14ld %8ld %10ld %6ld\n", rp->cfg->routes[i].name,
			rs[i].dispatched, rs[i].failed, rs[i].dead_lettered, rs[i].dropped,
			rs[i].duplicates, rs[i].held);
		bad |= rs[i].failed > 0 || rs[i].dead_lettered > 0;
	}
	fprintf(f, "events: %ld read, %ld invalid, %ld unrouted", rp->events, rp->invalid, unrouted);
	if (udl || ufail)
		fprintf(f, " (%ld dead-lettered, %ld failed)", udl, ufail);
	fprintf(f, "\n");
	fflush(f);
	return bad ? 1 : 0;
}

static int open_peers(replay *rp)
{
	char err[256];
	if (rp->o->dry_run) {
		rp->dry = jr_calloc(rp->cfg->n_routes ? rp->cfg->n_routes : 1, sizeof *rp->dry);
		return 0;
	}
	rp->loop = loop_new();
	rp->api = runjob_new(rp->loop, rp->o->run_endpoint, err, sizeof err);
	if (!rp->api) {
		log_kv(JR_LOG_ERROR, "RUNAPI-INIT", "cannot create the Run API client", "error", err,
		       NULL);
		return 3;
	}
	if (runjob_startup_check(rp->api, rp->cfg->call_timeout_ms) < 0 ||
	    runwatch_startup_check(rp->api, rp->cfg, rp->o->route) < 0)
		return 3;
	int rc = dl_sinks_open(rp->cfg, rp->loop, &rp->sink);
	if (rc)
		return rc;
	jr_dispatch_opts dopt = {.no_retry = rp->o->no_retry, .only_route = rp->o->route,
				 .replay = 1};
	rp->d = dispatcher_new(rp->cfg, loop_timers(rp->loop), runwatch_runner(rp->api), rp->sink, rp->o->out,
			       &dopt);
	return 0;
}

int replay_run(const jr_config *cfg, const jr_replay_opts *o)
{
	replay rp = {.cfg = cfg, .o = o};
	buf_init(&rp.line, 0);
	int rc = open_peers(&rp);
	if (rc == 0) {
		rp.in = input_new(o->paths, o->n_paths, o->format, &cfg->limits, cfg->topic);
		rp.started_ms = rp.last_progress_ms = loop_now_ms();
		pump(&rp);
		while (open_deliveries(&rp) > 0 || !rp.input_done) {
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
	dispatcher_free(rp.d);
	if (rp.api)
		runjob_free(rp.api);
	if (rp.sink)
		rp.sink->close(rp.sink);
	if (rp.loop)
		loop_free(rp.loop);
	buf_free(&rp.line);
	free(rp.dry);
	return rc;
}
