/*
 * grpcx.h — what jobrelay's gRPC clients (Run API, Pub/Sub) share: endpoint
 * parsing, channels with jobrelay's arguments and credentials, the
 * x-goog-api-client value, percent-encoding for x-goog-request-params, and
 * bounded reads of received messages.
 */
#ifndef JR_GRPCX_H
#define JR_GRPCX_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

#include "loop.h"
#include "mem.h"

/* grpcx_env_true: the environment variable is 1, true or yes. */
int grpcx_env_true(const char *name);
/* grpcx_is_loopback: host (without brackets) is localhost, 127.0.0.0/8 or ::1 (also v4-mapped). */
int grpcx_is_loopback(const char *host);
#define GRPCX_MAX_ENDPOINT 260 /* bytes of a host:port endpoint */
/*
 * grpcx_split_endpoint: "host:port" or "[v6]:port" (at most GRPCX_MAX_ENDPOINT
 * bytes) into host (no brackets, NUL-terminated, at most hostcap-1 bytes). 0,
 * or -1 with err naming `what` ("run endpoint") and ep.
 */
int grpcx_split_endpoint(const char *what, const char *ep, char *host, size_t hostcap, char *err,
			 size_t errlen);

typedef struct grpcx_channel_opts {
	const char *what;     /* "run endpoint", "pubsub endpoint": names the endpoint in errors */
	const char *endpoint; /* host:port, already checked with grpcx_split_endpoint */
	int insecure;         /* plaintext, and no credential lookup at all */
	int max_receive;      /* largest message accepted from the server, bytes */
	int keepalive_ms;     /* HTTP/2 ping after this long without a ping, while calls are open;
			       * the connection is closed when it is not answered within
			       * min(20 s, keepalive_ms). 0: 5 min */
} grpcx_channel_opts;

/*
 * grpcx_channel_new: a channel to o->endpoint: plaintext with insecure
 * credentials, or TLS with jobrelay's Application Default Credentials on
 * every call (src/google/gcreds.h; a credentials file that cannot be used fails
 * here, naming it). jobrelay's user agent, keepalive pings only while calls
 * are open (o->keepalive_ms), no transparent retries, no BDP probes.
 * The first call also turns off Abseil's mutex deadlock detection (a debug
 * check Debian's Abseil has on; JOBRELAY_ABSL_DEADLOCK_CHECKS=1 keeps it).
 * NULL with err filled when credentials or the channel cannot be made. The
 * caller destroys the channel (grpc_channel_destroy).
 */
grpc_channel *grpcx_channel_new(const grpcx_channel_opts *o, char *err, size_t errlen);

#define GRPCX_PUBSUB_KEEPALIVE_MS 30000 /* Google's Pub/Sub clients' interval */
/*
 * grpcx_pubsub_keepalive_ms: the keepalive interval of Pub/Sub channels and
 * StreamingPull streams: GRPCX_PUBSUB_KEEPALIVE_MS, or
 * JOBRELAY_PUBSUB_KEEPALIVE_MS when set (1000..300000; meant for tests).
 * -1 with err filled when that variable is malformed or out of range.
 */
int grpcx_pubsub_keepalive_ms(char *err, size_t errlen);

/*
 * grpcx_pubsub_channel: a channel to Pub/Sub, chosen as every Pub/Sub client
 * of jobrelay chooses it: endpoint when given, else PUBSUB_EMULATOR_HOST
 * (plaintext, no credential lookup, Google's convention), else
 * pubsub.googleapis.com:443 with TLS and Application Default Credentials;
 * HTTP/2 keepalive every grpcx_pubsub_keepalive_ms. target (tcap bytes) gets
 * "host:port (plaintext|tls)" for logs. NULL with err filled.
 */
grpc_channel *grpcx_pubsub_channel(const char *endpoint, int max_receive, char *target,
				   size_t tcap, char *err, size_t errlen);

/*
 * grpcx_unary: one whole unary call on a completion queue, its six ops in
 * one batch, so the call costs a single completion: RunJob, the other Run
 * API calls, and the dead-letter topic's Publish and GetTopic.
 */
typedef struct grpcx_unary {
	grpc_call *call;
	grpc_metadata md[2];
	grpc_metadata_array recv_md, trailing_md;
	grpc_byte_buffer *send_buf, *recv_buf;
	grpc_status_code status;
	grpc_slice details;
} grpcx_unary;

/*
 * grpcx_unary_start: starts method (a handle from grpc_channel_register_call)
 * on ch with request bb (taken over, also on failure), the headers
 * x-goog-request-params = params[0..plen) (params must outlive the call) and
 * x-goog-api-client, and a deadline timeout_ms from now (<= 0: none). tag
 * completes once on cq; then read u->status, u->details, u->recv_buf and call
 * grpcx_unary_end. 0, or -1 when the call could not start (nothing to end).
 */
int grpcx_unary_start(grpcx_unary *u, grpc_channel *ch, void *method, grpc_completion_queue *cq,
		      int64_t timeout_ms, const char *params, size_t plen, grpc_byte_buffer *bb,
		      void *tag);
/* grpcx_unary_end: releases the call and what it received. */
void grpcx_unary_end(grpcx_unary *u);

/*
 * grpcx_wait_ready: connects ch and waits, driving loop l, until the channel
 * is ready (0) or timeout_ms passed (-1). For start-up checks (exit code 3).
 */
int grpcx_wait_ready(grpc_channel *ch, jr_loop *l, int64_t timeout_ms);

/* grpcx_api_client: the x-goog-api-client value, "gl-c/<C std> grpc/<v> jobrelay/<v>" (static). */
const char *grpcx_api_client(void);

/*
 * grpcx_message_slice: the received message bb as one slice (a new ref, or a
 * copy when it came in pieces or compressed) when it is at most max bytes.
 * 0 (unref *out after), or -1.
 */
int grpcx_message_slice(grpc_byte_buffer *bb, size_t max, grpc_slice *out);

/* grpcx_copy_text: at most max bytes of s[0..n) into out (max+1 bytes), cut on a UTF-8 boundary. */
void grpcx_copy_text(char *out, size_t max, const void *s, size_t n);

/* One field of a packed message: its number, wire type and value (varint) or bytes (length-delimited). */
typedef struct grpcx_pb_field {
	uint64_t num;
	unsigned wt;
	uint64_t v;
	const uint8_t *data;
	size_t len;
} grpcx_pb_field;

/*
 * grpcx_pb_next: reads the protobuf field at *p (< end) into f, checking
 * every length: 1, 0 at the end, -1 when malformed (truncated, a varint over
 * 64 bits, a length past end, groups, a field number outside 1 .. 2^29-1). For the messages
 * read by hand (Operation, StreamingPullResponse): unknown fields skip over.
 */
int grpcx_pb_next(const uint8_t **p, const uint8_t *end, grpcx_pb_field *f);

/* grpcx_type_url_is: the Any type URL u[0..n) names type (the part after the last '/'). */
int grpcx_type_url_is(const char *u, size_t n, const char *type);

/* grpcx_arena_pb: a protobuf-c allocator taking from arena a (freed with the arena, not by unpack's free). */
ProtobufCAllocator grpcx_arena_pb(jr_arena *a);

#endif
