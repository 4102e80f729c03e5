/*
 * runner.h — the port through which the dispatcher starts jobs: a table of
 * functions over a context it does not know. The Run API client is one
 * (src/google/runwatch.h: runwatch_runner); `--dry-run` and the unit tests
 * bring their own. The request (jr_runreq) is route.h's.
 */
#ifndef JR_RUNNER_H
#define JR_RUNNER_H

#include <stdint.h>

#include "errclass.h"
#include "route.h"

typedef struct jr_runresult {
	int code;                /* gRPC status code; 0 = OK */
	const char *message;     /* status details text, "" when none */
	const char *operation;   /* OK: the Operation's name */
	const char *execution;   /* OK: Execution name from Operation.metadata, or NULL */
	const char *log_uri;     /* OK: Execution.log_uri, or NULL */
	int64_t retry_delay_ms;  /* google.rpc.RetryInfo from the status details, -1 when absent */
	int64_t latency_ms;
	/*
	 * Set by runners that do more than one call (follow, find; the Run
	 * API's in src/google/runwatch.c): has_class = 1 means cls, not code, is the error class
	 * (ack: on_completion: a failed execution is application, a timed-out
	 * one timeout); recovered = 1 means the call failed ambiguously
	 * (DEADLINE_EXCEEDED, UNAVAILABLE) but its execution was found
	 * (ListExecutions), so code is 0 and the event counts as dispatched.
	 */
	int has_class;
	jr_errclass cls;
	const char *code_name;   /* with has_class: the code recorded ("EXECUTION_FAILED"), else NULL */
	int recovered;
} jr_runresult;

/* The strings in res live until the callback returns. */
typedef void (*jr_run_cb)(void *arg, const jr_runresult *res);

/*
 * jr_runner: how RunJob is sent; the Run API client, or a stand-in for
 * --dry-run and tests. run is required; the others may be NULL.
 *
 * follow: for a request with on_completion set whose RunJob returned OK
 * (started holds that answer): follows the execution until it ends and calls
 * cb once with code 0 when it succeeded, or has_class set (application,
 * timeout); without a class, CANCELLED means jobrelay is shutting down (the
 * policy decides, as for a network error) and any other code that the
 * execution could not be read to its end (its reads were retried as reads):
 * the dispatcher then never sends RunJob again for it (EXECUTION_UNCONFIRMED,
 * docs/jobs.md). The call's concurrency slot is free while it is followed.
 * 0, or -1 when it could not start (cb will not run; also unconfirmed).
 *
 * find: after a sent RunJob ended ambiguously (DEADLINE_EXCEEDED,
 * UNAVAILABLE), looks for an execution of req's job created at or after
 * since_ms (wall clock, Unix ms) whose overrides carry req->key as
 * JOBRELAY_KEY: cb gets code 0 with recovered = 1 and the execution when
 * there is one, NOT_FOUND when there is none, another code when the lookup
 * failed (after the runner's own retries of it: the dispatcher logs the
 * duplicate risk). Either way the original failure then stands. 0, or -1
 * when it could not start. The dispatcher also calls find before RunJob for
 * a delivery that may be a repeat (retry/repeat.h), since_ms then from the
 * message's publish time: found means no RunJob; has_class with class
 * credentials (no token; the Run API's runner waits for one instead) holds
 * the delivery at no attempt; CANCELLED leaves it unsent.
 */
typedef struct jr_runner {
	int (*run)(void *ctx, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg);
	int (*follow)(void *ctx, const jr_runreq *req, const jr_runresult *started, jr_run_cb cb,
		      void *arg);
	int (*find)(void *ctx, const jr_runreq *req, int64_t since_ms, jr_run_cb cb, void *arg);
	void *ctx;
} jr_runner;

#endif
