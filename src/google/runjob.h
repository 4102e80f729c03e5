/*
 * runjob.h — the Cloud Run Admin API v2 client (gRPC core + protobuf-c).
 *
 * RunJob calls are asynchronous on the loop's completion queue: runjob_run
 * starts a call and returns at once; its callback runs exactly once from
 * loop_run_once when the call ends (never from inside runjob_run). The
 * number of calls in flight is the caller's to bound.
 *
 * Endpoint: JOBRELAY_RUN_ENDPOINT=host:port (plaintext when the host is a
 * loopback address or JOBRELAY_RUN_INSECURE=1, and then no credential lookup
 * at all), else run.googleapis.com:443 with TLS and Application Default
 * Credentials (gcreds.h).
 */
#ifndef JR_RUNJOB_H
#define JR_RUNJOB_H

#include <stdint.h>

#include "loop.h"
#include "runner.h"

typedef struct jr_runjob jr_runjob;

/*
 * runjob_new: a client on loop l. endpoint NULL means the environment
 * decides (above). Returns NULL with err filled when the endpoint is invalid
 * or credentials cannot be created.
 */
jr_runjob *runjob_new(jr_loop *l, const char *endpoint, char *err, size_t errlen);
/*
 * runjob_free: cancels calls in flight, runs the loop until each callback has
 * run (with CANCELLED), and frees the client. Call it before loop_free.
 */
void runjob_free(jr_runjob *c);
/* runjob_target: "host:port (plaintext)" or "run.googleapis.com:443 (tls)", for logs. */
const char *runjob_target(const jr_runjob *c);
/*
 * runjob_run: starts RunJob(req) with a deadline of timeout_ms (<= 0: none)
 * and the x-goog-request-params header that RunJob's google.api.routing
 * annotation asks for: "location=<region>" (runjob_routing_header). Returns 0
 * (cb will run exactly once), or -1 when the call could not be started (cb
 * will not run), e.g. after runjob_free began or for a name over 4 KiB.
 */
int runjob_run(jr_runjob *c, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg);
/*
 * runjob_wait_ready: connects the channel and waits, driving the loop, until
 * it is ready (0) or timeout_ms passed (-1). For the start-up check that
 * decides exit code 3; calls made before it returns are not affected.
 */
int runjob_wait_ready(jr_runjob *c, int64_t timeout_ms);
/*
 * The largest answer accepted on the Run API channel: a ListExecutions page
 * of 100 executions whose overrides carry large env values (up to 32 KiB
 * each) passes 4 MiB. RunJob's own answer is read up to 4 MiB.
 */
#define RUNJOB_CHANNEL_MAX_RECV (32 * 1024 * 1024)

/* How long a command waits for the Run API at start-up, at most. */
#define RUNJOB_STARTUP_WAIT_MS 10000

/*
 * runjob_startup_check: runjob_wait_ready for min(call_timeout_ms,
 * RUNJOB_STARTUP_WAIT_MS), logged as RUNAPI-READY or RUNAPI-UNREACHABLE.
 * 0, or -1: the command exits 3 (docs/reference.md, exit codes).
 */
int runjob_startup_check(jr_runjob *c, int64_t call_timeout_ms);
/* runjob_in_flight: calls started whose callback has not yet run. */
int runjob_in_flight(const jr_runjob *c);

/*
 * runjob_channel / runjob_loop: the client's channel and loop, for clients of
 * the other Run API services on the same connection (src/google/runexec.c).
 * runjob_closing: runjob_free has begun; start nothing new.
 */
grpc_channel *runjob_channel(jr_runjob *c);
jr_loop *runjob_loop(jr_runjob *c);
int runjob_closing(const jr_runjob *c);
/*
 * runjob_attach: gives c one companion object (src/google/runwatch.c: executions
 * being followed), closed by close(obj) first thing in runjob_free, while
 * the channel and loop still work; close must end every callback it owes.
 * runjob_attached: that object, or NULL.
 */
void runjob_attach(jr_runjob *c, void *obj, void (*close)(void *obj));
void *runjob_attached(jr_runjob *c);

/*
 * runjob_encode: appends req serialised as a google.cloud.run.v2.RunJobRequest
 * (the bytes runjob_run sends) to out. Returns 0, or -1 past out's max. For
 * tests and tools; needs no client.
 */
int runjob_encode(const jr_runreq *req, jr_buf *out);
/*
 * runjob_routing_header: appends the x-goog-request-params value for
 * job_name to out: "location=<url-encoded L>" for projects/P/locations/L/...,
 * else "name=<url-encoded job_name>". Returns 0, or -1 past out's max.
 */
int runjob_routing_header(const char *job_name, jr_buf *out);

/*
 * runjob_decode_operation: reads a RunJob answer (a packed
 * google.longrunning.Operation) into res: operation, execution and log_uri
 * (strings in arena a); a finished Operation with an error sets code and
 * message (text in msgbuf, RUNJOB_MAX_MESSAGE+1 bytes); malformed bytes give
 * INTERNAL. Used by the client; exposed for tests.
 */
#define RUNJOB_MAX_MESSAGE 1024
void runjob_decode_operation(const void *data, size_t len, jr_arena *a, jr_runresult *res,
			     char *msgbuf);

#endif
