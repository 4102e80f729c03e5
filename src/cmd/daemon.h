/*
 * daemon.h — the host of a long-running command (`pull`, `serve`): what both
 * need around their own work, written once.
 *
 * A jr_daemon owns, and frees in daemon_free:
 *   loop       the event loop (daemon_open)
 *   api        the Run API client (daemon_open_run_api)
 *   sink       the dead-letter sinks (daemon_open_sinks)
 *   d          the dispatcher: made by the command (its runner and options
 *              are its own) and handed over by assigning dm->d
 *   health     the /healthz, /readyz and /metrics port, for a command that has
 *              no HTTP server of its own (daemon_health)
 *   signals    the signal thread (daemon_signals) and the grace timer
 *   notify     systemd's notification socket and the watchdog timer
 *              (daemon_open: only when $NOTIFY_SOCKET is set)
 * The command borrows these pointers; everything else is its own, freed in
 * its ops.release.
 *
 * Signals: a SIGTERM or SIGINT while starting, or a second one, calls
 * ops.exit_now (which logs) and _exits with its code; the first one while
 * running moves the host to draining, arms the grace timer
 * (cfg->shutdown_grace_ms: ops.grace_over when it fires) and calls
 * ops.drain. The command then finishes its work in flight and stops the loop
 * (ops.done).
 *
 * Teardown, in this order (daemon_free):
 *   1. late SIGTERM/SIGINT are ignored (pending ones discarded)
 *   2. daemon_stop_dispatch: the dispatcher stops taking work, the Run API
 *      client is freed (its open calls cancelled), and the loop runs until
 *      every delivery has its outcome — the one drain loop
 *   3. the dispatcher is freed
 *   4. ops.release: what the command owns (Pub/Sub stream, HTTP server, ...)
 *   5. the grace timer, the health port, the signal thread
 *   6. the sinks are closed, then the loop is freed
 * and then, in daemon_main, gcreds_shutdown before grpc_shutdown.
 *
 * systemd (sdnotify.h; docs/install.md, "Under systemd"): READY=1 the
 * first time the command says it is ready (daemon_set_ready: pull's stream
 * open, serve listening), STATUS= when readiness changes later, STOPPING=1
 * when draining starts (or teardown, whichever comes first), and WATCHDOG=1
 * every half of $WATCHDOG_USEC from a loop timer, from daemon_open to
 * daemon_free, so a loop that stalls stops the pings. $WATCHDOG_PID, when
 * set, must name this process.
 *
 * Message ids: the host's own lines are prefixed with ops.tag: <TAG>-SIGNALS,
 * <TAG>-PORT, <TAG>-HTTP (PULL-PORT, PULL-HTTP, SERVE-SIGNALS, ...);
 * RUNAPI-INIT as before; DAEMON-STATE (debug) for each change of state;
 * DAEMON-SYSTEMD (info) once when systemd is notified, SDNOTIFY-* warnings.
 */
#ifndef JR_DAEMON_H
#define JR_DAEMON_H

#include <stdint.h>

#include "config.h"
#include "deadletter.h"
#include "dispatcher.h"
#include "httpd.h"
#include "loop.h"
#include "runjob.h"
#include "sdnotify.h"

typedef enum jr_daemon_state {
	JR_DAEMON_STARTING, /* a signal exits at once */
	JR_DAEMON_RUNNING,  /* the first signal drains */
	JR_DAEMON_DRAINING, /* a signal came: a second one exits at once */
	JR_DAEMON_STOPPING, /* the dispatcher is stopped and drained, then all is freed */
} jr_daemon_state;

typedef struct jr_daemon_ops {
	const char *tag; /* message-id prefix: "PULL", "SERVE" */
	/* drain: the first signal while running (signame "SIGTERM", ...); the grace timer runs */
	void (*drain)(void *arg, const char *signame);
	/* grace_over: shutdown_grace passed since drain, and the command did not cancel it */
	void (*grace_over)(void *arg);
	/* exit_now: a signal while starting (starting 1) or a second one: logs; the exit code */
	int (*exit_now)(void *arg, const char *signame, int starting);
	/* done: 1 when daemon_run may return */
	int (*done)(void *arg);
	/* release: frees what the command owns, after the dispatcher, before the loop; may be NULL */
	void (*release)(void *arg);
	void *arg;
} jr_daemon_ops;

typedef struct jr_daemon {
	const jr_config *cfg;
	jr_daemon_ops ops;
	jr_daemon_state state;
	jr_loop *loop;
	jr_runjob *api;
	jr_sink *sink;
	jr_dispatcher *d;
	jr_httpd *health;
	int ready;         /* read on the HTTP thread: daemon_set_ready, daemon_ready */
	int signals;       /* signals received */
	int dispatch_stopped;
	jr_timer_id grace;
	int64_t grace_end_ms;
	jr_sdnotify notify;   /* systemd's notification socket; disabled without $NOTIFY_SOCKET */
	jr_timer_id watchdog; /* the next WATCHDOG=1 */
	int64_t watchdog_ms;  /* half of $WATCHDOG_USEC; 0: no watchdog */
	int told_ready;       /* readiness systemd was last told: -1 nothing yet, 0, 1 */
	int told_stopping;    /* STOPPING=1 was sent */
} jr_daemon;

/* daemon_main: blocks SIGTERM/SIGINT, grpc_init, run(c, o), gcreds_shutdown, grpc_shutdown. */
int daemon_main(int (*run)(const jr_config *, const void *), const jr_config *c, const void *o);

/* daemon_open: dm starts with its loop, in state starting; ops is copied. */
void daemon_open(jr_daemon *dm, const jr_config *cfg, const jr_daemon_ops *ops);
/* daemon_signals: starts the signal thread. 0, or -1 after logging <TAG>-SIGNALS. */
int daemon_signals(jr_daemon *dm);
/* daemon_open_run_api: the Run API client at endpoint (NULL: default). 0, or 3 after logging. */
int daemon_open_run_api(jr_daemon *dm, const char *endpoint);
/* daemon_check_run_api: the Run API answers and route's jobs (NULL: all) can be watched. 0, or 3. */
int daemon_check_run_api(jr_daemon *dm, const char *route);
/* daemon_open_sinks: the configured dead-letter sinks. 0, or the exit code (logged). */
int daemon_open_sinks(jr_daemon *dm);
/* daemon_env_port: opt when >= 0, else $PORT, else dflt; -2 when $PORT is not a port number. */
int daemon_env_port(int opt, int dflt);
/*
 * daemon_health: serves /healthz, /readyz (daemon_ready) and /metrics on
 * daemon_env_port(opt, -1) at bind (NULL: 0.0.0.0); nothing without a port.
 * 0, or 2 after logging <TAG>-PORT.
 */
int daemon_health(jr_daemon *dm, int opt, const char *bind);

/*
 * daemon_set_ready / daemon_ready: readiness as the command sees it; ready
 * also needs credentials. daemon_set_ready runs on the loop's thread (it
 * notifies systemd); daemon_ready may be called from any thread.
 */
void daemon_set_ready(jr_daemon *dm, int ready);
int daemon_ready(jr_daemon *dm);

/* daemon_running: start-up is over; signals drain from now on. */
void daemon_running(jr_daemon *dm);
/* daemon_run: runs the loop until ops.done. */
void daemon_run(jr_daemon *dm);
/* daemon_grace_left_ms: what is left of shutdown_grace since the drain began. */
int64_t daemon_grace_left_ms(const jr_daemon *dm);
/* daemon_grace_cancel: the grace timer will not fire (no-op when it is not armed). */
void daemon_grace_cancel(jr_daemon *dm);
/* daemon_stop_dispatch: teardown step 2; once, later calls do nothing. */
void daemon_stop_dispatch(jr_daemon *dm);
/* daemon_free: the whole teardown above; dm may be zeroed or partly started. */
void daemon_free(jr_daemon *dm);

#endif
