/*
 * runapi.h — the Cloud Run Admin API v2 client (gRPC core + protobuf-c).
 *
 * RunJob calls are asynchronous on the loop's completion queue: runapi_run
 * starts a call and returns at once; its callback runs exactly once from
 * loop_run_once when the call ends (never from inside runapi_run). The
 * number of calls in flight is the caller's to bound.
 *
 * Endpoint: JOBRELAY_RUN_ENDPOINT=host:port (plaintext when the host is a
 * loopback address or JOBRELAY_RUN_INSECURE=1, and then no credential lookup
 * at all), else run.googleapis.com:443 with TLS and Application Default
 * Credentials (gcreds.h).
 */
#ifndef JR_RUNAPI_H
#define JR_RUNAPI_H

#include <stdint.h>

#include "errclass.h"
#include "loop.h"
#include "route.h"

typedef struct jr_runapi jr_runapi;

typedef struct jr_runresult {
	int code;                /* gRPC status code; 0 = OK */
	const char *message;     /* status details text, "" when none */
	const char *operation;   /* OK: the Operation's name */
	const char *execution;   /* OK: Execution name from Operation.metadata, or NULL */
	const char *log_uri;     /* OK: Execution.log_uri, or NULL */
	int64_t retry_delay_ms;  /* google.rpc.RetryInfo from the status details, -1 when absent */
	int64_t latency_ms;
	/*
	 * Set by runners that do more than one RunJob call (src/ runner
	 * wrappers): has_class = 1 means cls, not code, is the error class
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
 * runapi_new: a client on loop l. endpoint NULL means the environment
 * decides (above). Returns NULL with err filled when the endpoint is invalid
 * or credentials cannot be created.
 */
jr_runapi *runapi_new(jr_loop *l, const char *endpoint, char *err, size_t errlen);
/*
 * runapi_free: cancels calls in flight, runs the loop until each callback has
 * run (with CANCELLED), and frees the client. Call it before loop_free.
 */
void runapi_free(jr_runapi *c);
/* runapi_target: "host:port (plaintext)" or "run.googleapis.com:443 (tls)", for logs. */
const char *runapi_target(const jr_runapi *c);
/*
 * runapi_run: starts RunJob(req) with a deadline of timeout_ms (<= 0: none)
 * and the x-goog-request-params header that RunJob's google.api.routing
 * annotation asks for: "location=<region>" (runapi_routing_header). Returns 0
 * (cb will run exactly once), or -1 when the call could not be started (cb
 * will not run), e.g. after runapi_free began or for a name over 4 KiB.
 */
int runapi_run(jr_runapi *c, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg);
/*
 * runapi_wait_ready: connects the channel and waits, driving the loop, until
 * it is ready (0) or timeout_ms passed (-1). For the start-up check that
 * decides exit code 3; calls made before it returns are not affected.
 */
int runapi_wait_ready(jr_runapi *c, int64_t timeout_ms);
/*
 * The largest answer accepted on the Run API channel: a ListExecutions page
 * of 100 executions whose overrides carry large env values (up to 32 KiB
 * each) passes 4 MiB. RunJob's own answer is read up to 4 MiB.
 */
#define RUNAPI_CHANNEL_MAX_RECV (32 * 1024 * 1024)

/* How long a command waits for the Run API at start-up, at most. */
#define RUNAPI_STARTUP_WAIT_MS 10000

/*
 * runapi_startup_check: runapi_wait_ready for min(call_timeout_ms,
 * RUNAPI_STARTUP_WAIT_MS), logged as RUNAPI-READY or RUNAPI-UNREACHABLE.
 * 0, or -1: the command exits 3 (docs/reference.md, exit codes).
 */
int runapi_startup_check(jr_runapi *c, int64_t call_timeout_ms);
/* runapi_in_flight: calls started whose callback has not yet run. */
int runapi_in_flight(const jr_runapi *c);

/*
 * runapi_channel / runapi_loop: the client's channel and loop, for clients of
 * the other Run API services on the same connection (src/runadmin.c).
 * runapi_closing: runapi_free has begun; start nothing new.
 */
grpc_channel *runapi_channel(jr_runapi *c);
jr_loop *runapi_loop(jr_runapi *c);
int runapi_closing(const jr_runapi *c);
/*
 * runapi_attach: gives c one companion object (src/runflow.c: executions
 * being followed), closed by close(obj) first thing in runapi_free, while
 * the channel and loop still work; close must end every callback it owes.
 * runapi_attached: that object, or NULL.
 */
void runapi_attach(jr_runapi *c, void *obj, void (*close)(void *obj));
void *runapi_attached(jr_runapi *c);

/*
 * runapi_encode: appends req serialised as a google.cloud.run.v2.RunJobRequest
 * (the bytes runapi_run sends) to out. Returns 0, or -1 past out's max. For
 * tests and tools; needs no client.
 */
int runapi_encode(const jr_runreq *req, jr_buf *out);
/*
 * runapi_routing_header: appends the x-goog-request-params value for
 * job_name to out: "location=<url-encoded L>" for projects/P/locations/L/...,
 * else "name=<url-encoded job_name>". Returns 0, or -1 past out's max.
 */
int runapi_routing_header(const char *job_name, jr_buf *out);

/*
 * runapi_decode_operation: reads a RunJob answer (a packed
 * google.longrunning.Operation) into res: operation, execution and log_uri
 * (strings in arena a); a finished Operation with an error sets code and
 * message (text in msgbuf, RUNAPI_MAX_MESSAGE+1 bytes); malformed bytes give
 * INTERNAL. Used by the client; exposed for tests.
 */
#define RUNAPI_MAX_MESSAGE 1024
void runapi_decode_operation(const void *data, size_t len, jr_arena *a, jr_runresult *res,
			     char *msgbuf);

#endif
