#include "grpcx.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "gcreds.h"
#include "version.h"

int grpcx_env_true(const char *name)
{
	const char *v = getenv(name);
	return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

int grpcx_is_loopback(const char *host)
{
	unsigned char a[16];
	if (!strcmp(host, "localhost") || !strcmp(host, "localhost."))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char lo6[16] = { [15] = 1 };
		static const unsigned char v4map[12] = { [10] = 0xff, [11] = 0xff };
		return !memcmp(a, lo6, 16) || (!memcmp(a, v4map, 12) && a[12] == 127);
	}
	return 0;
}

int grpcx_split_endpoint(const char *what, const char *ep, char *host, size_t hostcap, char *err,
			 size_t errlen)
{
	const char *h = ep, *hend, *colon;
	if (strlen(ep) > GRPCX_MAX_ENDPOINT) {
		snprintf(err, errlen, "%s too long (%zu bytes)", what, strlen(ep));
		return -1;
	}
	if (ep[0] == '[') {
		h = ep + 1;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':') {
			snprintf(err, errlen, "%s '%s': expected [ipv6]:port", what, ep);
			return -1;
		}
		colon = hend + 1;
	} else {
		colon = strrchr(ep, ':');
		if (!colon || memchr(ep, ':', (size_t)(colon - ep))) {
			snprintf(err, errlen, "%s '%s': expected host:port (IPv6 as [addr]:port)", what, ep);
			return -1;
		}
		hend = colon;
	}
	size_t hl = (size_t)(hend - h);
	const char *port = colon + 1;
	size_t pl = strspn(port, "0123456789");
	long pv = pl >= 1 && pl <= 5 && port[pl] == '\0' ? strtol(port, NULL, 10) : 0;
	if (hl == 0 || hl >= hostcap || pv < 1 || pv > 65535) {
		snprintf(err, errlen, "%s '%s': expected host:port with a port 1-65535", what, ep);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	return 0;
}

/*
 * absl_deadlock_detection_off: Debian's Abseil is built with its debug
 * checks, so every absl::Mutex lock and unlock in gRPC core also updates a
 * lock-order graph (absl's deadlock detection: GraphCycles in the profile,
 * about 2% of the pull benchmark's CPU). It is a diagnostic that aborts on a
 * lock-order inversion, not a behaviour jobrelay relies on; release builds
 * of Abseil have it off. absl::SetMutexDeadlockDetectionMode(kIgnore) turns it
 * off; it is C++, so it is looked up by its mangled name (Debian's inline
 * namespace debian3, then none) and skipped when absent.
 */
static void absl_deadlock_detection_off(void)
{
	static const char *const names[] = {
		"_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
		"_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		void (*set_mode)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, names[i]);
		if (set_mode) {
			set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
			return;
		}
	}
}

grpc_channel *grpcx_channel_new(const grpcx_channel_opts *o, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (!grpcx_env_true("JOBRELAY_ABSL_DEADLOCK_CHECKS"))
		pthread_once(&once, absl_deadlock_detection_off);
	grpc_channel_credentials *cr;
	if (o->insecure) {
		cr = grpc_insecure_credentials_create();
	} else {
		/* TLS, with jobrelay's own Application Default Credentials on every call */
		char why[600];
		jr_gcreds *g = gcreds_default(why, sizeof why);
		if (!g) {
			snprintf(err, errlen, "%s %s: %s", o->what, o->endpoint, why);
			return NULL;
		}
		grpc_channel_credentials *tls = grpc_ssl_credentials_create(NULL, NULL, NULL, NULL);
		grpc_call_credentials *cc = gcreds_call_credentials(g);
		cr = grpc_composite_channel_credentials_create(tls, cc, NULL);
		grpc_channel_credentials_release(tls);
		grpc_call_credentials_release(cc);
	}
	int keepalive = o->keepalive_ms > 0 ? o->keepalive_ms : 5 * 60 * 1000;
	grpc_arg args[] = {
		{ GRPC_ARG_STRING, GRPC_ARG_PRIMARY_USER_AGENT_STRING, { .string = "jobrelay/" JR_VERSION } },
		{ GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, { .integer = o->max_receive } },
		/* pings only while calls are in flight, at most every 30 s (Pub/Sub) or 5 min:
		 * Google's front ends accept one every 30 s without a GOAWAY too_many_pings.
		 * An unanswered ping closes the connection after the timeout; gRPC also sets
		 * TCP_USER_TIMEOUT to it, so unacknowledged bytes do too. gRPC sends at most
		 * 2 pings between two writes of data (max_pings_without_data): the
		 * StreamingPull keepalive request writes some every interval. */
		{ GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, { .integer = keepalive } },
		{ GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
		  { .integer = keepalive < 20 * 1000 ? keepalive : 20 * 1000 } },
		{ GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, { .integer = 0 } },
		/* jobrelay retries per error class itself; no hidden transparent retries. */
		{ GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_RETRIES, { .integer = 0 } },
		/* no bandwidth-delay probing pings, no channelz counters */
		{ GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_BDP_PROBE, { .integer = 0 } },
		{ GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, { .integer = 0 } },
	};
	grpc_channel_args ca = { sizeof args / sizeof args[0], args };
	grpc_channel *ch = grpc_channel_create(o->endpoint, cr, &ca);
	grpc_channel_credentials_release(cr);
	if (!ch)
		snprintf(err, errlen, "%s %s: cannot create channel", o->what, o->endpoint);
	return ch;
}

int grpcx_pubsub_keepalive_ms(char *err, size_t errlen)
{
	const char *v = getenv("JOBRELAY_PUBSUB_KEEPALIVE_MS");
	if (!v || !*v)
		return GRPCX_PUBSUB_KEEPALIVE_MS;
	char *end;
	long ms = strtol(v, &end, 10);
	if (*end || ms < 1000 || ms > 300000) {
		snprintf(err, errlen, "JOBRELAY_PUBSUB_KEEPALIVE_MS '%.40s': expected milliseconds, "
				      "1000-300000", v);
		return -1;
	}
	return (int)ms;
}

grpc_channel *grpcx_pubsub_channel(const char *endpoint, int max_receive, char *target,
				   size_t tcap, char *err, size_t errlen)
{
	int insecure = 1; /* the emulator: plaintext, whatever the host */
	if (!endpoint || !*endpoint)
		endpoint = getenv("PUBSUB_EMULATOR_HOST");
	if (!endpoint || !*endpoint) {
		endpoint = "pubsub.googleapis.com:443";
		insecure = 0;
	}
	char host[256];
	if (grpcx_split_endpoint("pubsub endpoint", endpoint, host, sizeof host, err, errlen) < 0)
		return NULL;
	int keepalive = grpcx_pubsub_keepalive_ms(err, errlen);
	if (keepalive < 0)
		return NULL;
	grpcx_channel_opts co = { "pubsub endpoint", endpoint, insecure, max_receive, keepalive };
	grpc_channel *ch = grpcx_channel_new(&co, err, errlen);
	if (ch)
		snprintf(target, tcap, "%s (%s)", endpoint, insecure ? "plaintext" : "tls");
	return ch;
}

/*
 * unary_ops: u's six ops as one batch: send the initial metadata, the message
 * and close; receive the initial metadata, the message and the status.
 */
static void unary_ops(grpc_op ops[6], grpcx_unary *u)
{
	memset(ops, 0, 6 * sizeof *ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 2;
	ops[0].data.send_initial_metadata.metadata = u->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = u->send_buf;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->recv_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &u->recv_buf;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
	ops[5].data.recv_status_on_client.status = &u->status;
	ops[5].data.recv_status_on_client.status_details = &u->details;
}

int grpcx_unary_start(grpcx_unary *u, grpc_channel *ch, void *method, grpc_completion_queue *cq,
		      int64_t timeout_ms, const char *params, size_t plen, grpc_byte_buffer *bb,
		      void *tag)
{
	memset(u, 0, sizeof *u);
	u->send_buf = bb;
	u->md[0].key = grpc_slice_from_static_string("x-goog-request-params");
	u->md[0].value = grpc_slice_from_static_buffer(params, plen);
	u->md[1].key = grpc_slice_from_static_string("x-goog-api-client");
	u->md[1].value = grpc_slice_from_static_string(grpcx_api_client());
	gpr_timespec deadline = timeout_ms > 0
		? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
		: gpr_inf_future(GPR_CLOCK_MONOTONIC);
	u->call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
						      deadline, NULL);
	if (!u->call) {
		grpc_byte_buffer_destroy(bb);
		return -1;
	}
	grpc_metadata_array_init(&u->recv_md);
	grpc_metadata_array_init(&u->trailing_md);
	grpc_op ops[6];
	unary_ops(ops, u);
	if (grpc_call_start_batch(u->call, ops, 6, tag, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(u->call);
		grpc_byte_buffer_destroy(u->send_buf);
		grpc_metadata_array_destroy(&u->recv_md);
		grpc_metadata_array_destroy(&u->trailing_md);
		return -1;
	}
	return 0;
}

void grpcx_unary_end(grpcx_unary *u)
{
	grpc_slice_unref(u->details);
	grpc_metadata_array_destroy(&u->recv_md);
	grpc_metadata_array_destroy(&u->trailing_md);
	grpc_byte_buffer_destroy(u->send_buf);
	if (u->recv_buf)
		grpc_byte_buffer_destroy(u->recv_buf);
	grpc_call_unref(u->call);
}

typedef struct ready_wait {
	jr_tag tag;
	int done, ok;
} ready_wait;

static void ready_changed(void *arg, int ok)
{
	ready_wait *w = arg;
	w->done = 1;
	w->ok = ok;
}

int grpcx_wait_ready(grpc_channel *ch, jr_loop *l, int64_t timeout_ms)
{
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
	while (st != GRPC_CHANNEL_READY) {
		if (st == GRPC_CHANNEL_SHUTDOWN)
			return -1;
		ready_wait w = {{ready_changed, NULL}, 0, 0};
		w.tag.arg = &w;
		grpc_channel_watch_connectivity_state(ch, st, dl, loop_cq(l), &w.tag);
		while (!w.done)
			loop_run_once(l, -1);
		if (!w.ok)
			return -1; /* the deadline passed first */
		st = grpc_channel_check_connectivity_state(ch, 1);
	}
	return 0;
}

const char *grpcx_api_client(void)
{
	static char v[160];
	if (!v[0])
		snprintf(v, sizeof v, "gl-c/%ld grpc/%s jobrelay/%s", (long)__STDC_VERSION__,
			 grpc_version_string(), JR_VERSION);
	return v;
}

int grpcx_message_slice(grpc_byte_buffer *bb, size_t max, grpc_slice *out)
{
	if (grpc_byte_buffer_length(bb) > max)
		return -1;
	if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
	    bb->data.raw.slice_buffer.count == 1) {
		*out = grpc_slice_ref(bb->data.raw.slice_buffer.slices[0]);
		return 0;
	}
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return -1;
	*out = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	if (GRPC_SLICE_LENGTH(*out) > max) {
		grpc_slice_unref(*out);
		return -1;
	}
	return 0;
}

int grpcx_type_url_is(const char *u, size_t n, const char *type)
{
	const char *s = u + n;
	while (s > u && s[-1] != '/')
		s--;
	size_t tn = strlen(type);
	return (size_t)(u + n - s) == tn && !memcmp(s, type, tn);
}

static void *arena_pb_alloc(void *data, size_t n)
{
	return arena_alloc(data, n);
}

static void arena_pb_free(void *data, void *p)
{
	(void)data; /* arena memory goes all at once */
	(void)p;
}

ProtobufCAllocator grpcx_arena_pb(jr_arena *a)
{
	return (ProtobufCAllocator){arena_pb_alloc, arena_pb_free, a};
}

void grpcx_copy_text(char *out, size_t max, const void *s, size_t n)
{
	if (n > max) {
		n = max;
		while (n > 0 && (((const unsigned char *)s)[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

/* varint: reads a base-128 varint at *p (< end); 0, or -1 when truncated or over 64 bits. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

int grpcx_pb_next(const uint8_t **p, const uint8_t *end, grpcx_pb_field *f)
{
	uint64_t key;
	if (*p >= end)
		return 0;
	if (varint(p, end, &key) < 0 || key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return -1; /* field numbers are 1 .. 2^29-1 */
	f->num = key >> 3;
	f->wt = (unsigned)(key & 7);
	switch (f->wt) {
	case 0:
		return varint(p, end, &f->v) < 0 ? -1 : 1;
	case 1:
	case 5: {
		size_t n = f->wt == 1 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -1;
		*p += n;
		return 1;
	}
	case 2:
		if (varint(p, end, &f->v) < 0 || f->v > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return 1;
	default: /* groups: not in proto3 */
		return -1;
	}
}
