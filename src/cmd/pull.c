/*
 * pull.c — the pull driver: Pub/Sub messages in, dispatcher outcomes out as
 * acks, modacks and nacks (docs/pull.md; docs/reference.md, outcomes).
 *
 * The messages held (flow control, leases, ordering keys, attempts, holds)
 * are the queue's (pullq.c); this file wires it to the StreamingPull session
 * (pubsub.c: acks, modacks, pausing) and the dispatcher (submit, dead
 * letters, open deliveries), and runs the process: start-up, health
 * endpoints, signals and the drain.
 *
 * SIGTERM/SIGINT: no message is dispatched any more; waiting ones and any
 * that still arrive are nacked at once (back to Pub/Sub for another worker);
 * deliveries in flight get shutdown_grace, after which they are nacked too;
 * then the session flushes its queue and half-closes, bounded by the grace
 * (at least 1 s), and pull_run returns 0. A second signal exits at once.
 */
#include "pull.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl_sinks.h"
#include "dispatcher.h"
#include "httpd.h"
#include "gcreds.h"
#include "log.h"
#include "loop.h"
#include "pubsub.h"
#include "pullq.h"
#include "runjob.h"
#include "runwatch.h"
#include "signals.h"

#define STARTUP_WAIT_MS 10000    /* Pub/Sub and the Run API must be ready within it */
#define FLUSH_MIN_MS 1000        /* the final flush gets at least this long */

typedef enum pull_state {
	PULL_STARTING,
	PULL_RUNNING,
	PULL_DRAINING, /* a signal came: in-flight deliveries finish, nothing new starts */
	PULL_FLUSHING, /* the session sends what is queued, then closes */
	PULL_STOPPED,
} pull_state;

static const char *const pull_state_names[] = {
	"starting", "running", "draining", "flushing", "stopped",
};

typedef struct pull {
	const jr_config *cfg;
	const jr_pull_opts *o;
	jr_loop *loop;
	jr_runjob *api;
	jr_pubsub *ps;
	jr_sink *sink;
	jr_dispatcher *d;
	jr_httpd *http;
	jr_pullq *q; /* the messages held; made once the dispatcher is */
	pull_state state;
	int exit_code;
	int signals;
	int ready; /* read by the HTTP thread */
	int ack_deadline_s;
	int64_t grace_end_ms;
	jr_timer_id grace_timer, flush_timer;
} pull;

static void metrics_init(void)
{
	pullq_metrics_init();
}

/* in_flight: messages with the dispatcher (none before the queue is made). */
static size_t in_flight(const pull *p)
{
	return p->q ? pullq_dispatched(p->q) : 0;
}

/* ---- state ---- */

/* pull_set_state: every change of the driver's state: one log line (PULL-STATE). */
static void pull_set_state(pull *p, pull_state st, const char *why)
{
	if (p->state == st)
		return;
	pull_state from = p->state;
	p->state = st;
	if (p->q && st != PULL_RUNNING)
		pullq_close(p->q); /* nothing is dispatched any more */
	__atomic_store_n(&p->ready,
			 st == PULL_RUNNING && p->ps && pubsub_state(p->ps) == JR_PUBSUB_OPEN,
			 __ATOMIC_RELEASE);
	char held[24], disp[24];
	snprintf(held, sizeof held, "%zu", p->q ? pullq_held(p->q) : 0);
	snprintf(disp, sizeof disp, "%zu", in_flight(p));
	log_kv(JR_LOG_INFO, "PULL-STATE", "pull state changed", "subscription",
	       p->cfg->subscription, "state", pull_state_names[st], "from", pull_state_names[from],
	       "reason", why, "held", held, "dispatching", disp, NULL);
}

/* ---- the queue's ports: the session and the dispatcher ---- */

static void port_ack(void *arg, const char *ack_id)
{
	pull *p = arg;
	pubsub_ack(p->ps, ack_id);
}

static void port_modack(void *arg, const char *ack_id, int secs)
{
	pull *p = arg;
	pubsub_modack(p->ps, ack_id, secs);
}

static void port_pause(void *arg, int paused)
{
	pull *p = arg;
	pubsub_pause(p->ps, paused);
}

static void port_submit(void *arg, jr_event *ev, int attempt, const unsigned char *only,
			jr_outcome_cb cb, void *cb_arg)
{
	pull *p = arg;
	dispatcher_submit(p->d, ev, attempt, only, cb, cb_arg);
}

static void port_dead_letter_raw(void *arg, const char *raw, size_t raw_len,
				 const jr_message *msg, const char *error, jr_raw_cb cb,
				 void *cb_arg)
{
	pull *p = arg;
	dispatcher_dead_letter_raw(p->d, raw, raw_len, msg, "pull", error, cb, cb_arg);
}

static int port_busy(void *arg)
{
	pull *p = arg;
	return dispatcher_open(p->d) - dispatcher_following(p->d);
}

static void finish_if_drained(pull *p);

static void port_settled(void *arg)
{
	finish_if_drained(arg);
}

/* queue_new: the queue, wired to the session and the dispatcher. */
static jr_pullq *queue_new(pull *p)
{
	pullq_opts qo = {
		.cfg = p->cfg,
		.ack_deadline_s = p->ack_deadline_s,
		.timers = loop_timers(p->loop),
		.seed = (uint64_t)loop_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x2545F4914F6CDD1DULL,
	};
	pullq_ports io = {
		.arg = p,
		.ack = port_ack,
		.modack = port_modack,
		.pause = port_pause,
		.submit = port_submit,
		.dead_letter_raw = port_dead_letter_raw,
		.busy = port_busy,
		.settled = port_settled,
	};
	return pullq_new(&qo, &io);
}

/* on_follow: a delivery began following its execution: the queue may dispatch again. */
static void on_follow(void *arg)
{
	pull *p = arg;
	pullq_pump_soon(p->q);
}

static void on_message(void *arg, const jr_pubsub_msg *m)
{
	pull *p = arg;
	pullq_receive(p->q, m);
}

/* ---- shutdown ---- */

static void stop(pull *p, const char *why)
{
	pull_set_state(p, PULL_STOPPED, why);
}

static void flush_deadline(void *arg)
{
	pull *p = arg;
	p->flush_timer = 0;
	char n[24];
	snprintf(n, sizeof n, "%zu", pubsub_queued(p->ps));
	log_kv(JR_LOG_WARNING, "PULL-FLUSH-TIMEOUT", "acks not all confirmed sent before the deadline",
	       "queued_ids", n, NULL);
	stop(p, "flush deadline");
}

/* flush_and_close: the last acks and nacks go out, then the stream is half-closed. */
static void flush_and_close(pull *p)
{
	pull_set_state(p, PULL_FLUSHING, "nothing left in flight");
	if (p->grace_timer) {
		loop_timer_cancel(p->loop, p->grace_timer);
		p->grace_timer = 0;
	}
	int64_t left = p->grace_end_ms - loop_now_ms();
	p->flush_timer = loop_timer_add(p->loop, left < FLUSH_MIN_MS ? FLUSH_MIN_MS : left,
					flush_deadline, p);
	pubsub_close(p->ps);
}

static void finish_if_drained(pull *p)
{
	if (p->state == PULL_DRAINING && in_flight(p) == 0)
		flush_and_close(p);
}

static void grace_over(void *arg)
{
	pull *p = arg;
	p->grace_timer = 0;
	char n[24];
	snprintf(n, sizeof n, "%zu", in_flight(p));
	log_kv(in_flight(p) ? JR_LOG_WARNING : JR_LOG_INFO, "PULL-GRACE-OVER",
	       "shutdown_grace over: messages still in flight are nacked", "messages", n, NULL);
	pullq_nack_dispatched(p->q);
	flush_and_close(p);
}

static void begin_drain(pull *p, const char *why)
{
	pull_set_state(p, PULL_DRAINING, why);
	pullq_drain(p->q);
	p->grace_end_ms = loop_now_ms() + p->cfg->shutdown_grace_ms;
	if (in_flight(p) == 0) {
		flush_and_close(p);
		return;
	}
	p->grace_timer = loop_timer_add(p->loop, p->cfg->shutdown_grace_ms, grace_over, p);
}

static void on_signal(void *arg, int signo)
{
	pull *p = arg;
	const char *name = signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal";
	if (p->signals++ > 0 || p->state == PULL_STARTING) {
		char n[24];
		snprintf(n, sizeof n, "%zu", in_flight(p));
		log_kv(JR_LOG_WARNING, "PULL-EXIT-NOW", p->state == PULL_STARTING
			       ? "signal during start-up: exiting" : "second signal: exiting at once",
		       "signal", name, "in_flight", n, NULL);
		_exit(in_flight(p) ? 1 : 0);
	}
	if (p->state == PULL_RUNNING)
		begin_drain(p, name);
}

static void on_state(void *arg, jr_pubsub_state st, int code, const char *detail)
{
	pull *p = arg;
	__atomic_store_n(&p->ready, p->state == PULL_RUNNING && st == JR_PUBSUB_OPEN,
			 __ATOMIC_RELEASE);
	if (st == JR_PUBSUB_FAILED) {
		log_kv(JR_LOG_ERROR, "PULL-SUBSCRIPTION", "cannot pull the subscription",
		       "subscription", p->cfg->subscription, "code", grpc_code_name(code), "error",
		       detail, "target", pubsub_target(p->ps), NULL);
		p->exit_code = 3;
		stop(p, "subscription cannot be pulled");
	} else if (st == JR_PUBSUB_CLOSED && p->state == PULL_FLUSHING) {
		stop(p, "stream closed");
	}
}

/* ---- start and stop ---- */

static int http_ready(void *arg)
{
	pull *p = arg;
	return __atomic_load_n(&p->ready, __ATOMIC_ACQUIRE) && !gcreds_failing(gcreds_active());
}

static int env_port(const jr_pull_opts *o)
{
	if (o->http_port >= 0)
		return o->http_port;
	const char *s = getenv("PORT");
	if (!s || !*s)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v < 0 || v > 65535 ? -2 : (int)v;
}

static int start_http(pull *p)
{
	int port = env_port(p->o);
	if (port == -1)
		return 0;
	if (port < -1) {
		log_kv(JR_LOG_ERROR, "PULL-PORT", "$PORT is not a port number", "PORT",
		       getenv("PORT"), NULL);
		return 2;
	}
	jr_httpd_opts ho = { .port = port, .bind = p->o->bind, .ready = http_ready, .ready_arg = p };
	char err[256];
	p->http = httpd_start(p->loop, &ho, err, sizeof err);
	if (!p->http) {
		log_kv(JR_LOG_ERROR, "PULL-PORT", "cannot serve the health endpoints", "error", err,
		       NULL);
		return 2;
	}
	char ps[16];
	snprintf(ps, sizeof ps, "%d", httpd_port(p->http));
	log_kv(JR_LOG_INFO, "PULL-HTTP", "serving /healthz, /readyz and /metrics", "port", ps,
	       "bind", p->o->bind ? p->o->bind : "0.0.0.0", NULL);
	return 0;
}

static int open_clients(pull *p)
{
	char err[256];
	p->api = runjob_new(p->loop, p->o->run_endpoint, err, sizeof err);
	if (!p->api) {
		log_kv(JR_LOG_ERROR, "RUNJOB-INIT", "cannot create the Run API client", "error", err,
		       NULL);
		return 3;
	}
	jr_pubsub_opts po = {
		.subscription = p->cfg->subscription,
		.endpoint = p->o->pubsub_endpoint,
		.ack_deadline_s = p->ack_deadline_s,
		.max_outstanding_messages = p->cfg->flow_max_messages,
		.max_outstanding_bytes = p->cfg->flow_max_bytes,
		.on_message = on_message,
		.on_state = on_state,
		.arg = p,
	};
	p->ps = pubsub_new(p->loop, &po, err, sizeof err);
	if (!p->ps) {
		log_kv(JR_LOG_ERROR, "PUBSUB-INIT", "cannot create the Pub/Sub client", "subscription",
		       p->cfg->subscription, "error", err, NULL);
		return 3;
	}
	return 0;
}

/* wait_services: both channels ready within STARTUP_WAIT_MS, or exit code 3. */
static int wait_services(pull *p)
{
	char ms[32];
	snprintf(ms, sizeof ms, "%dms", STARTUP_WAIT_MS);
	if (gcreds_startup_check(STARTUP_WAIT_MS) < 0)
		return 3;
	if (pubsub_wait_ready(p->ps, STARTUP_WAIT_MS) < 0) {
		log_kv(JR_LOG_ERROR, "PUBSUB-UNREACHABLE", "cannot reach Pub/Sub", "target",
		       pubsub_target(p->ps), "subscription", p->cfg->subscription, "waited", ms, NULL);
		return 3;
	}
	if (runjob_startup_check(p->api, p->cfg->call_timeout_ms) < 0 ||
	    runwatch_startup_check(p->api, p->cfg, NULL) < 0)
		return 3;
	return 0;
}

static int start(pull *p)
{
	const jr_config *cfg = p->cfg;
	if (!cfg->subscription) {
		log_kv(JR_LOG_ERROR, "PULL-CONFIG", "pull needs `subscription:` in the config",
		       "config", cfg->path, NULL);
		return 2;
	}
	p->loop = loop_new();
	int rc = open_clients(p);
	if (rc == 0)
		rc = start_http(p);
	if (rc == 0 && signals_start(p->loop, on_signal, p) < 0) {
		log_kv(JR_LOG_ERROR, "PULL-SIGNALS", "cannot start the signal thread", NULL);
		rc = 1;
	}
	if (rc == 0)
		rc = wait_services(p);
	if (rc == 0)
		rc = dl_sinks_open(cfg, p->loop, &p->sink);
	if (rc != 0)
		return rc;
	log_kv(JR_LOG_INFO, "PULL-READY", "Pub/Sub and the Run API are reachable", "subscription",
	       cfg->subscription, "pubsub", pubsub_target(p->ps), "run_api", runjob_target(p->api),
	       NULL);
	jr_dispatch_opts dop = {.on_follow = on_follow, .on_follow_arg = p};
	p->d = dispatcher_new(cfg, loop_timers(p->loop), runwatch_runner(p->api), p->sink, NULL, &dop);
	p->q = queue_new(p);
	pull_set_state(p, PULL_RUNNING, "started");
	pubsub_start(p->ps);
	return 0;
}

/* teardown: cancels what is left; every outcome callback runs before the dispatcher goes. */
static void teardown(pull *p)
{
	if (p->d)
		dispatcher_stop(p->d);
	if (p->api)
		runjob_free(p->api);
	while (p->d && dispatcher_open(p->d) > 0)
		loop_run_once(p->loop, 100);
	dispatcher_free(p->d);
	pubsub_free(p->ps);
	pullq_free(p->q);
	if (p->loop) {
		loop_timer_cancel(p->loop, p->grace_timer);
		loop_timer_cancel(p->loop, p->flush_timer);
	}
	httpd_free(p->http);
	signals_stop();
	if (p->sink)
		p->sink->close(p->sink);
	if (p->loop)
		loop_free(p->loop);
}

static void summary(const pull *p)
{
	char rcv[24], ack[24], ret[24], fail[24], inv[24], nd[24], ext[24];
	const pullq_stats *st = pullq_get_stats(p->q);
	snprintf(rcv, sizeof rcv, "%ld", st->received);
	snprintf(ack, sizeof ack, "%ld", st->acked);
	snprintf(ret, sizeof ret, "%ld", st->retried);
	snprintf(fail, sizeof fail, "%ld", st->failed);
	snprintf(inv, sizeof inv, "%ld", st->invalid);
	snprintf(nd, sizeof nd, "%ld", st->nacked_draining);
	snprintf(ext, sizeof ext, "%ld", st->extended);
	log_kv(JR_LOG_INFO, "PULL-SUMMARY", "pull stopped", "subscription", p->cfg->subscription,
	       "received", rcv, "acked", ack, "retry_later", ret, "dead_letter_failed", fail,
	       "invalid", inv, "nacked_at_shutdown", nd, "lease_extensions", ext, NULL);
}

int pull_run(const jr_config *cfg, const jr_pull_opts *o)
{
	pull p = {.cfg = cfg, .o = o, .state = PULL_STARTING};
	p.ack_deadline_s = (int)(cfg->flow_ack_deadline_ms / 1000);
	if (p.ack_deadline_s < 10)
		p.ack_deadline_s = 10;
	if (p.ack_deadline_s > 600)
		p.ack_deadline_s = 600;
	metrics_init();
	int rc = start(&p);
	if (rc == 0) {
		while (p.state != PULL_STOPPED)
			loop_run_once(p.loop, -1);
		rc = p.exit_code;
		summary(&p);
	}
	/* late signals find nothing to do: pending ones are discarded, not queued to a freed loop */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	teardown(&p);
	return rc;
}
