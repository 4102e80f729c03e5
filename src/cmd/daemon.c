/*
 * daemon.c — the host of `pull` and `serve` (daemon.h): loop, signals, grace
 * timer, health port, start-up checks of the Run API, systemd's
 * notifications and watchdog, the drain loop and teardown in its order.
 */
#include "daemon.h"

#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dl_sinks.h"
#include "gcreds.h"
#include "log.h"
#include "runwatch.h"
#include "signals.h"

static const char *const daemon_state_names[] = {
	"starting", "running", "draining", "stopping",
};

/* daemon_set_state: every change of the host's state: one debug line (DAEMON-STATE). */
static void daemon_set_state(jr_daemon *dm, jr_daemon_state st, const char *why)
{
	if (dm->state == st)
		return;
	jr_daemon_state from = dm->state;
	dm->state = st;
	if (log_enabled(JR_LOG_DEBUG))
		log_kv(JR_LOG_DEBUG, "DAEMON-STATE", "daemon state changed", "command", dm->ops.tag,
		       "state", daemon_state_names[st], "from", daemon_state_names[from], "reason", why,
		       NULL);
}

/* msgid: "<TAG>-<what>" into buf. */
static const char *msgid(const jr_daemon *dm, char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s-%s", dm->ops.tag, what);
	return buf;
}

int daemon_main(int (*run)(const jr_config *, const void *), const jr_config *c, const void *o)
{
	signals_block();
	grpc_init();
	int rc = run(c, o);
	gcreds_shutdown();
	grpc_shutdown();
	return rc;
}

/* ---- systemd: readiness, watchdog, stopping (sdnotify.h) ---- */

/* watchdog_fire: WATCHDOG=1, and the next one; a loop that stalls sends none. */
static void watchdog_fire(void *arg)
{
	jr_daemon *dm = arg;
	sdnotify_send(&dm->notify, "WATCHDOG=1", NULL);
	dm->watchdog = loop_timer_add(dm->loop, dm->watchdog_ms, watchdog_fire, dm);
}

/* notify_open: the socket from $NOTIFY_SOCKET and, with $WATCHDOG_USEC, the watchdog's timer. */
static void notify_open(jr_daemon *dm)
{
	dm->told_ready = -1;
	if (sdnotify_open(&dm->notify, NULL) < 0 || !sdnotify_enabled(&dm->notify))
		return;
	uint64_t usec = sdnotify_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
					       getpid());
	char wd[32] = "off";
	if (usec) {
		dm->watchdog_ms = (int64_t)(usec / 2000);
		if (dm->watchdog_ms < 1)
			dm->watchdog_ms = 1;
		snprintf(wd, sizeof wd, "%lldms", (long long)dm->watchdog_ms);
		watchdog_fire(dm);
	}
	log_kv(JR_LOG_INFO, "DAEMON-SYSTEMD", "notifying systemd", "command", dm->ops.tag,
	       "NOTIFY_SOCKET", getenv("NOTIFY_SOCKET"), "watchdog_every", wd, NULL);
}

/* notify_stopping: STOPPING=1, once: the first signal, or teardown. */
static void notify_stopping(jr_daemon *dm, const char *why)
{
	if (dm->told_stopping)
		return;
	dm->told_stopping = 1;
	char st[64];
	snprintf(st, sizeof st, "stopping (%s)", why);
	sdnotify_send(&dm->notify, "STOPPING=1", st);
}

static void notify_close(jr_daemon *dm)
{
	if (dm->watchdog) {
		loop_timer_cancel(dm->loop, dm->watchdog);
		dm->watchdog = 0;
	}
	sdnotify_close(&dm->notify);
}

void daemon_open(jr_daemon *dm, const jr_config *cfg, const jr_daemon_ops *ops)
{
	*dm = (jr_daemon){.cfg = cfg, .ops = *ops, .state = JR_DAEMON_STARTING};
	dm->loop = loop_new();
	notify_open(dm);
}

/* ---- signals and the grace timer ---- */

static void grace_fire(void *arg)
{
	jr_daemon *dm = arg;
	dm->grace = 0;
	dm->ops.grace_over(dm->ops.arg);
}

static void on_signal(void *arg, int signo)
{
	jr_daemon *dm = arg;
	const char *name = signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal";
	int starting = dm->state == JR_DAEMON_STARTING;
	if (dm->signals++ > 0 || starting)
		_exit(dm->ops.exit_now(dm->ops.arg, name, starting));
	if (dm->state != JR_DAEMON_RUNNING)
		return;
	daemon_set_state(dm, JR_DAEMON_DRAINING, name);
	notify_stopping(dm, name);
	dm->grace_end_ms = loop_now_ms() + dm->cfg->shutdown_grace_ms;
	dm->grace = loop_timer_add(dm->loop, dm->cfg->shutdown_grace_ms, grace_fire, dm);
	dm->ops.drain(dm->ops.arg, name);
}

int daemon_signals(jr_daemon *dm)
{
	if (signals_start(dm->loop, on_signal, dm) == 0)
		return 0;
	char id[32];
	log_kv(JR_LOG_ERROR, msgid(dm, id, sizeof id, "SIGNALS"), "cannot start the signal thread",
	       NULL);
	return -1;
}

int64_t daemon_grace_left_ms(const jr_daemon *dm)
{
	return dm->grace_end_ms - loop_now_ms();
}

void daemon_grace_cancel(jr_daemon *dm)
{
	if (dm->grace) {
		loop_timer_cancel(dm->loop, dm->grace);
		dm->grace = 0;
	}
}

/* ---- start-up ---- */

int daemon_open_run_api(jr_daemon *dm, const char *endpoint)
{
	char err[256];
	dm->api = runjob_new(dm->loop, endpoint, err, sizeof err);
	if (!dm->api) {
		log_kv(JR_LOG_ERROR, "RUNAPI-INIT", "cannot create the Run API client", "error", err,
		       NULL);
		return 3;
	}
	return 0;
}

int daemon_check_run_api(jr_daemon *dm, const char *route)
{
	if (runjob_startup_check(dm->api, dm->cfg->call_timeout_ms) < 0 ||
	    runwatch_startup_check(dm->api, dm->cfg, route) < 0)
		return 3;
	return 0;
}

int daemon_open_sinks(jr_daemon *dm)
{
	return dl_sinks_open(dm->cfg, dm->loop, &dm->sink);
}

int daemon_env_port(int opt, int dflt)
{
	if (opt >= 0)
		return opt;
	const char *s = getenv("PORT");
	if (!s || !*s)
		return dflt;
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v < 0 || v > 65535 ? -2 : (int)v;
}

static int health_ready(void *arg)
{
	return daemon_ready(arg);
}

int daemon_health(jr_daemon *dm, int opt, const char *bind)
{
	char id[32];
	int port = daemon_env_port(opt, -1);
	if (port == -1)
		return 0;
	if (port < -1) {
		log_kv(JR_LOG_ERROR, msgid(dm, id, sizeof id, "PORT"), "$PORT is not a port number",
		       "PORT", getenv("PORT"), NULL);
		return 2;
	}
	jr_httpd_opts ho = {.port = port, .bind = bind, .ready = health_ready, .ready_arg = dm};
	char err[256];
	dm->health = httpd_start(dm->loop, &ho, err, sizeof err);
	if (!dm->health) {
		log_kv(JR_LOG_ERROR, msgid(dm, id, sizeof id, "PORT"),
		       "cannot serve the health endpoints", "error", err, NULL);
		return 2;
	}
	char ps[16];
	snprintf(ps, sizeof ps, "%d", httpd_port(dm->health));
	log_kv(JR_LOG_INFO, msgid(dm, id, sizeof id, "HTTP"), "serving /healthz, /readyz and /metrics",
	       "port", ps, "bind", bind ? bind : "0.0.0.0", NULL);
	return 0;
}

void daemon_set_ready(jr_daemon *dm, int ready)
{
	ready = !!ready;
	__atomic_store_n(&dm->ready, ready, __ATOMIC_RELEASE);
	/* systemd hears of the first readiness, then of each change until stopping */
	if (dm->told_stopping || dm->told_ready == ready || (dm->told_ready < 0 && !ready))
		return;
	if (dm->told_ready < 0)
		sdnotify_send(&dm->notify, "READY=1", "ready");
	else
		sdnotify_send(&dm->notify, ready ? "STATUS=ready" : "STATUS=not ready", NULL);
	dm->told_ready = ready;
}

int daemon_ready(jr_daemon *dm)
{
	return __atomic_load_n(&dm->ready, __ATOMIC_ACQUIRE) && !gcreds_failing(gcreds_active());
}

/* ---- running ---- */

void daemon_running(jr_daemon *dm)
{
	daemon_set_state(dm, JR_DAEMON_RUNNING, "started");
}

void daemon_run(jr_daemon *dm)
{
	while (!dm->ops.done(dm->ops.arg))
		loop_run_once(dm->loop, -1);
}

/* ---- teardown ---- */

void daemon_stop_dispatch(jr_daemon *dm)
{
	if (dm->dispatch_stopped)
		return;
	dm->dispatch_stopped = 1;
	daemon_set_state(dm, JR_DAEMON_STOPPING, "stopping the dispatcher");
	notify_stopping(dm, "stopping the dispatcher");
	/* tasks not sent end unsent; RunJob calls still open are cancelled; their deliveries end */
	if (dm->d)
		dispatcher_stop(dm->d);
	if (dm->api) {
		runjob_free(dm->api);
		dm->api = NULL;
	}
	while (dm->d && dispatcher_open(dm->d) > 0)
		loop_run_once(dm->loop, 100);
}

void daemon_free(jr_daemon *dm)
{
	/* late signals find nothing to do: pending ones are discarded, not queued to a freed loop */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (!dm->loop)
		return;
	daemon_stop_dispatch(dm);
	dispatcher_free(dm->d);
	dm->d = NULL;
	if (dm->ops.release)
		dm->ops.release(dm->ops.arg);
	daemon_grace_cancel(dm);
	notify_close(dm);
	httpd_free(dm->health);
	signals_stop();
	if (dm->sink)
		dm->sink->close(dm->sink);
	loop_free(dm->loop);
	*dm = (jr_daemon){0};
}
