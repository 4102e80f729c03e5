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
 * SIGTERM/SIGINT: no message is dispatched any more; the session's intake
 * stops first (the stream is cancelled, acks and modacks go in unary calls
 * from then on), so that the messages given back are not handed straight
 * back to this worker; then waiting ones and any that still arrive are
 * nacked (back to Pub/Sub for another worker); deliveries in flight get
 * shutdown_grace, after which they are nacked too; then the session sends
 * what is queued, bounded by the grace (at least 1 s), and pull_run returns
 * 0. A second signal exits at once.
 */
#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "dispatcher.h"
#include "gcreds.h"
#include "log.h"
#include "loop.h"
#include "pubsub.h"
#include "pullq.h"
#include "runjob.h"
#include "runwatch.h"

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
	jr_daemon dm;       /* the host: loop, Run API, sinks, dispatcher, health port, signals */
	jr_loop *loop;      /* dm.loop, borrowed */
	jr_dispatcher *d;   /* dm.d, borrowed */
	jr_pubsub *ps;
	jr_pullq *q; /* the messages held; made once the dispatcher is */
	pull_state state;
	int exit_code;
	int ack_deadline_s;
	jr_timer_id flush_timer;
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
	daemon_set_ready(&p->dm, st == PULL_RUNNING && p->ps && pubsub_state(p->ps) == JR_PUBSUB_OPEN);
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

static void port_stop_intake(void *arg)
{
	pull *p = arg;
	pubsub_stop_intake(p->ps);
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
		.stop_intake = port_stop_intake,
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

/* on_confirm: subscription properties and exactly-once confirmations, to the queue. */
static void on_confirm(void *arg, const jr_pubsub_conf *c)
{
	pull *p = arg;
	if (p->q)
		pullq_confirm(p->q, c);
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
	daemon_grace_cancel(&p->dm);
	int64_t left = daemon_grace_left_ms(&p->dm);
	p->flush_timer = loop_timer_add(p->loop, left < FLUSH_MIN_MS ? FLUSH_MIN_MS : left,
					flush_deadline, p);
	pubsub_close(p->ps);
}

static void finish_if_drained(pull *p)
{
	if (p->state == PULL_DRAINING && in_flight(p) == 0)
		flush_and_close(p);
}

/* grace_over: the host's grace timer fired while deliveries were still in flight. */
static void grace_over(void *arg)
{
	pull *p = arg;
	char n[24];
	snprintf(n, sizeof n, "%zu", in_flight(p));
	log_kv(in_flight(p) ? JR_LOG_WARNING : JR_LOG_INFO, "PULL-GRACE-OVER",
	       "shutdown_grace over: messages still in flight are nacked", "messages", n, NULL);
	pullq_nack_dispatched(p->q);
	flush_and_close(p);
}

/* begin_drain: the host's first signal while running; its grace timer runs (grace_over). */
static void begin_drain(void *arg, const char *why)
{
	pull *p = arg;
	if (p->state != PULL_RUNNING) {
		daemon_grace_cancel(&p->dm); /* already stopping: nothing to drain */
		return;
	}
	pull_set_state(p, PULL_DRAINING, why);
	pullq_drain(p->q);
	if (in_flight(p) == 0)
		flush_and_close(p);
}

/* exit_now: a signal during start-up, or a second one: the process exits with the code returned. */
static int exit_now(void *arg, const char *signame, int starting)
{
	pull *p = arg;
	char n[24];
	snprintf(n, sizeof n, "%zu", in_flight(p));
	log_kv(JR_LOG_WARNING, "PULL-EXIT-NOW", starting ? "signal during start-up: exiting"
	       : "second signal: exiting at once", "signal", signame, "in_flight", n, NULL);
	return in_flight(p) ? 1 : 0;
}

static void on_state(void *arg, jr_pubsub_state st, int code, const char *detail)
{
	pull *p = arg;
	daemon_set_ready(&p->dm, p->state == PULL_RUNNING && st == JR_PUBSUB_OPEN);
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

static int open_pubsub(pull *p)
{
	char err[256];
	jr_pubsub_opts po = {
		.subscription = p->cfg->subscription,
		.endpoint = p->o->pubsub_endpoint,
		.ack_deadline_s = p->ack_deadline_s,
		.max_outstanding_messages = p->cfg->flow_max_messages,
		.max_outstanding_bytes = p->cfg->flow_max_bytes,
		.on_message = on_message,
		.on_state = on_state,
		.on_confirm = on_confirm,
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

/* wait_services: credentials, Pub/Sub and the Run API ready within STARTUP_WAIT_MS, or 3. */
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
	return daemon_check_run_api(&p->dm, NULL);
}

static int pull_done(void *arg)
{
	return ((pull *)arg)->state == PULL_STOPPED;
}

static void pull_release(void *arg);

static int start(pull *p)
{
	const jr_config *cfg = p->cfg;
	if (!cfg->subscription) {
		log_kv(JR_LOG_ERROR, "PULL-CONFIG", "pull needs `subscription:` in the config",
		       "config", cfg->path, NULL);
		return 2;
	}
	jr_daemon_ops ops = {.tag = "PULL", .drain = begin_drain, .grace_over = grace_over,
			     .exit_now = exit_now, .done = pull_done, .release = pull_release, .arg = p};
	daemon_open(&p->dm, cfg, &ops);
	p->loop = p->dm.loop;
	int rc = daemon_open_run_api(&p->dm, p->o->run_endpoint);
	if (rc == 0)
		rc = open_pubsub(p);
	if (rc == 0)
		rc = daemon_health(&p->dm, p->o->http_port, p->o->bind);
	if (rc == 0 && daemon_signals(&p->dm) < 0)
		rc = 1;
	if (rc == 0)
		rc = wait_services(p);
	if (rc == 0)
		rc = daemon_open_sinks(&p->dm);
	if (rc != 0)
		return rc;
	log_kv(JR_LOG_INFO, "PULL-READY", "Pub/Sub and the Run API are reachable", "subscription",
	       cfg->subscription, "pubsub", pubsub_target(p->ps), "run_api",
	       runjob_target(p->dm.api), NULL);
	jr_dispatch_opts dop = {.on_follow = on_follow, .on_follow_arg = p};
	p->d = p->dm.d = dispatcher_new(cfg, loop_timers(p->loop), runwatch_runner(p->dm.api),
					p->dm.sink, NULL, &dop);
	p->q = queue_new(p);
	daemon_running(&p->dm);
	pull_set_state(p, PULL_RUNNING, "started");
	pubsub_start(p->ps);
	return 0;
}

/* pull_release: the host's teardown step 4: after the dispatcher, before the loop goes. */
static void pull_release(void *arg)
{
	pull *p = arg;
	p->d = NULL;
	pubsub_free(p->ps);
	pullq_free(p->q);
	p->q = NULL;
	loop_timer_cancel(p->loop, p->flush_timer);
}

static void summary(const pull *p)
{
	char rcv[24], ack[24], ret[24], fail[24], inv[24], nd[24], ext[24], lost[24], unc[24];
	char un[24], streams[24], sf[24];
	const pullq_stats *st = pullq_get_stats(p->q);
	snprintf(rcv, sizeof rcv, "%ld", st->received);
	snprintf(ack, sizeof ack, "%ld", st->acked);
	snprintf(ret, sizeof ret, "%ld", st->retried);
	snprintf(fail, sizeof fail, "%ld", st->failed);
	snprintf(inv, sizeof inv, "%ld", st->invalid);
	snprintf(nd, sizeof nd, "%ld", st->nacked_draining);
	snprintf(ext, sizeof ext, "%ld", st->extended);
	snprintf(lost, sizeof lost, "%ld", st->lease_lost);
	snprintf(unc, sizeof unc, "%ld", st->ack_unconfirmed);
	snprintf(un, sizeof un, "%ld", pubsub_stats(p->ps)->unary_calls);
	snprintf(streams, sizeof streams, "%ld", pubsub_stats(p->ps)->streams);
	snprintf(sf, sizeof sf, "%ld", pubsub_stats(p->ps)->send_failed);
	log_kv(JR_LOG_INFO, "PULL-SUMMARY", "pull stopped", "subscription", p->cfg->subscription,
	       "received", rcv, "acked", ack, "retry_later", ret, "dead_letter_failed", fail,
	       "invalid", inv, "nacked_at_shutdown", nd, "lease_extensions", ext,
	       "leases_lost", lost, "acks_unconfirmed", unc, "unary_calls", un, "streams", streams,
	       "sends_failed", sf, NULL);
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
		daemon_run(&p.dm);
		rc = p.exit_code;
		summary(&p);
	}
	daemon_free(&p.dm);
	return rc;
}
