/*
 * runwatch.h — following executions to their end, and finding the execution
 * of a RunJob whose answer was lost: the dispatcher's follow and find hooks
 * (dispatcher.h) and the CLI's --wait.
 *
 * State lives beside the Run API client (runjob_attach): one runexec
 * client and the executions being watched. runjob_free closes it first:
 * every watch still open ends with CANCELLED (its callback runs), so the
 * deliveries behind them end as a retry.
 */
#ifndef JR_RUNWATCH_H
#define JR_RUNWATCH_H

#include <stdint.h>

#include "route.h"
#include "runexec.h"
#include "runjob.h"

#define RUNWATCH_POLL_FIRST_MS 1000   /* first GetExecution after this long */
#define RUNWATCH_POLL_MAX_MS 30000    /* the interval doubles up to this */
/* The defaults of the config's read_retry (dispatch/config.h), for clients that have no config. */
#define RUNWATCH_READ_BACKOFF_MS 1000      /* first retry of a failed read */
#define RUNWATCH_READ_BACKOFF_MAX_MS 30000 /* the read backoff doubles up to this */
#define RUNWATCH_POLL_ERRORS 10            /* consecutive failed polls that end a watch */
#define RUNWATCH_FIND_ATTEMPTS 4           /* ListExecutions lookups of one find at most */
#define RUNWATCH_FIND_PAGES 50             /* ListExecutions pages of 100 one find reads at most */
#define RUNWATCH_FIND_SKEW_MS 60000   /* find also looks this far before since_ms (clock skew) */

/*
 * runwatch_follow: the runner's follow hook (ctx: the jr_runjob). Watches
 * started->execution; cb gets code 0 when it succeeded, or has_class set:
 * application for a failed or cancelled execution (code_name
 * EXECUTION_FAILED / EXECUTION_CANCELLED, message the failure reason),
 * timeout for a timed-out one (EXECUTION_TIMED_OUT); or, without a class,
 * CANCELLED when jobrelay shuts down, and any other gRPC code when the
 * execution could not be read to its end (read_retry.max_attempts failed
 * GetExecution in a row, each retried after the read backoff;
 * INVALID_ARGUMENT at once). 0, or -1 (cb will not run) when there is no
 * execution name or the client is closing.
 */
int runwatch_follow(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		   void *arg);

/*
 * runwatch_find: the runner's find hook (ctx: the jr_runjob). Lists the
 * executions of req's job, newest first, at most read_retry.lookup_pages pages,
 * down to since_ms - RUNWATCH_FIND_SKEW_MS, for one whose template env has
 * JOBRELAY_KEY = req->key: cb gets code 0, recovered = 1, its name and log
 * URI; NOT_FOUND when there is none (or the job itself is not found: then
 * no execution of it is this event's); any other code when the lookup
 * failed: a failed ListExecutions is retried after the read backoff,
 * read_retry.lookup_attempts lookups in all, and the last error is given
 * (CANCELLED at shutdown). 0, or -1.
 */
int runwatch_find(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg);

/*
 * runwatch_watch: watches execution name until it ends (cb: code 0 and the
 * final execution) or max_ms passes (> 0; cb: DEADLINE_EXCEEDED and the last
 * execution seen, or NULL), or it cannot be watched (cb: the gRPC code, e
 * NULL or the last seen). The first look is at once. 0, or -1.
 */
typedef void (*jr_watch_cb)(void *arg, int code, const char *message, const jr_execution *e);
int runwatch_watch(jr_runjob *api, const char *name, int64_t max_ms, jr_watch_cb cb, void *arg);

/*
 * runwatch_startup_check: for serve, pull and replay, before any event:
 * applies cfg->read_retry to the follows and finds over api, then checks
 * that jobrelay may read the executions of each job the routes name (only
 * only_route's when given; templated jobs are known per event and not
 * checked): one ListExecutions (page_size 1, deadline min(call_timeout,
 * RUNJOB_STARTUP_WAIT_MS)) per distinct job,
 * run on api's loop until all answered. PERMISSION_DENIED is fatal for a
 * job that an ack: on_completion route names (RUNAPI-READS-DENIED, naming
 * the job and the permission), else a warning that the lookup after an
 * ambiguous failure is unavailable; NOT_FOUND and other codes are warnings;
 * UNAVAILABLE and DEADLINE_EXCEEDED are fatal (unreachable). 0, or -1: the
 * command exits 3.
 */
int runwatch_startup_check(jr_runjob *api, const jr_config *cfg, const char *only_route);

/* runwatch_admin: the runexec client beside api (made on first use). */
jr_runexec *runwatch_admin(jr_runjob *api);


/* runwatch_runner: the dispatcher's runner (dispatch/runner.h) over Run API client c. */
jr_runner runwatch_runner(jr_runjob *c);

#endif
