/*
 * runjob.c — RunJob over gRPC core, one batch per call.
 *
 * A call is one allocation (run_call, with the routing header value at its
 * end) plus what gRPC allocates: the request is packed straight into a
 * grpc slice, and one batch carries all six ops, so a call costs a single
 * completion. Responses are decoded with protobuf-c into a per-completion
 * arena (one block for typical responses), freed after the callback; the
 * Execution inside the Operation's metadata is only walked for its name and
 * log_uri (a full decode of it cost more than the rest of the call's code).
 *
 * Routing: RunJob's google.api.routing annotation in job.proto binds
 * {location} from field "name" (path template projects/STAR/locations/
 * {location=STAR}/STARSTAR), so x-goog-request-params is "location=<region>",
 * as Google's client libraries send it. A name that does not fit the template falls back to the
 * http annotation's implicit routing, "name=<url-encoded name>".
 *
 * In-flight calls sit on a list so runjob_free can cancel them and pump the
 * loop until each callback has run (with CANCELLED).
 */

#include "runjob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "log.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "gcreds.h"
#include "grpcx.h"
#include "list.h"
#include "mem.h"
#include "pct.h"

#define RUN_DEFAULT_ENDPOINT "run.googleapis.com:443"
#define RUN_METHOD "/google.cloud.run.v2.Jobs/RunJob"
#define RUN_MAX_RECV (4 * 1024 * 1024)     /* response message bytes */
#define RUN_MAX_STATUS_BIN (64 * 1024)     /* grpc-status-details-bin bytes */
#define RUN_MAX_MESSAGE RUNJOB_MAX_MESSAGE /* status text handed to the caller */
#define RUN_MAX_NAME 4096                  /* job name bytes */

struct run_call;

struct jr_runjob {
	jr_loop *loop;
	grpc_channel *ch;
	void *method; /* registered call handle */
	jr_link calls; /* in flight */
	int in_flight;
	int closing;
	void *companion; /* runjob_attach */
	void (*companion_close)(void *obj);
	char target[300];
};

typedef struct run_call {
	jr_tag tag;
	jr_runjob *c;
	jr_link link;
	jr_run_cb cb;
	void *arg;
	int64_t start_ms;
	grpcx_unary u;
	char params[]; /* x-goog-request-params value */
} run_call;

jr_runjob *runjob_new(jr_loop *l, const char *endpoint, char *err, size_t errlen)
{
	if (!endpoint || !*endpoint)
		endpoint = getenv("JOBRELAY_RUN_ENDPOINT");
	if (!endpoint || !*endpoint)
		endpoint = RUN_DEFAULT_ENDPOINT;
	char host[256];
	if (grpcx_split_endpoint("run endpoint", endpoint, host, sizeof host, err, errlen) < 0)
		return NULL;
	int insecure = grpcx_is_loopback(host) || grpcx_env_true("JOBRELAY_RUN_INSECURE");
	grpcx_channel_opts co = { .what = "run endpoint", .endpoint = endpoint, .insecure = insecure,
				  .max_receive = RUNJOB_CHANNEL_MAX_RECV }; /* keepalive: every 5 min */
	grpc_channel *ch = grpcx_channel_new(&co, err, errlen);
	if (!ch)
		return NULL;
	jr_runjob *c = jr_calloc(1, sizeof *c);
	list_init(&c->calls);
	c->loop = l;
	c->ch = ch;
	c->method = grpc_channel_register_call(ch, RUN_METHOD, NULL, NULL);
	snprintf(c->target, sizeof c->target, "%s (%s)", endpoint, insecure ? "plaintext" : "tls");
	return c;
}

const char *runjob_target(const jr_runjob *c)
{
	return c->target;
}

int runjob_in_flight(const jr_runjob *c)
{
	return c->in_flight;
}

grpc_channel *runjob_channel(jr_runjob *c)
{
	return c->ch;
}

jr_loop *runjob_loop(jr_runjob *c)
{
	return c->loop;
}

int runjob_closing(const jr_runjob *c)
{
	return c->closing;
}

void runjob_attach(jr_runjob *c, void *obj, void (*close)(void *obj))
{
	c->companion = obj;
	c->companion_close = close;
}

void *runjob_attached(jr_runjob *c)
{
	return c->companion;
}

/* ---- request ---- */

/* routing_value: writes the x-goog-request-params value for job name into out (cap >= routing_cap). */
static size_t routing_value(const char *name, char *out)
{
	const char *v = name, *key = "name=";
	size_t vl = strlen(name);
	/* projects/[^/]+/locations/([^/]+)/.* */
	if (!strncmp(name, "projects/", 9)) {
		const char *p = name + 9, *s = strchr(p, '/');
		if (s && s > p && !strncmp(s, "/locations/", 11)) {
			const char *loc = s + 11, *e = strchr(loc, '/');
			if (e && e > loc) {
				v = loc;
				vl = (size_t)(e - loc);
				key = "location=";
			}
		}
	}
	size_t n = strlen(key);
	memcpy(out, key, n);
	return n + pct_encode(v, vl, out + n);
}

static size_t routing_cap(const char *name)
{
	return 10 + 3 * strlen(name);
}

int runjob_routing_header(const char *job_name, jr_buf *out)
{
	char small[512];
	size_t cap = routing_cap(job_name);
	char *tmp = cap <= sizeof small ? small : jr_malloc(cap);
	size_t n = routing_value(job_name, tmp);
	int rc = buf_add(out, tmp, n);
	if (tmp != small)
		free(tmp);
	return rc;
}

/*
 * The RunJobRequest is written by hand (it was protobuf-c's pack: 9,500
 * instructions a call, now about 1,000), in field-number order with
 * proto3's rules, so the bytes are the ones protobuf-c's generated packer
 * writes (tests/unit/test_runjob_encode.c compares the two):
 *   RunJobRequest { name = 1; overrides = 4 }
 *   Overrides { repeated ContainerOverride container_overrides = 1;
 *               int32 task_count = 2; Duration timeout = 4 }
 *   ContainerOverride { name = 1; repeated args = 2; repeated EnvVar env = 3;
 *                       bool clear_args = 4 }
 *   EnvVar { name = 1; oneof values { value = 2 } }  (value written even when "")
 *   Duration { int64 seconds = 1; int32 nanos = 2 }
 * Empty strings and zero numbers are left out; set messages are written even
 * when empty; the oneof value is written when set, even "".
 */
static size_t vsize(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* bytes of a length-delimited field of n bytes (field numbers < 16: one tag byte) */
static size_t ld_size(size_t n)
{
	return 1 + vsize(n) + n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_ld(uint8_t *p, unsigned field, size_t n)
{
	*p++ = (uint8_t)(field << 3 | 2);
	return put_varint(p, n);
}

static uint8_t *put_str(uint8_t *p, unsigned field, const char *s, size_t n)
{
	p = put_ld(p, field, n);
	memcpy(p, s, n);
	return p + n;
}

typedef struct req_sizes {
	size_t env, co, dur, ov, total; /* env: all EnvVar fields; the rest: message bodies */
	int has_co, has_ov;
} req_sizes;

static size_t env_body(const jr_kv *kv)
{
	size_t kn = strlen(kv->key), vn = kv->value ? strlen(kv->value) : 0;
	return (kn ? ld_size(kn) : 0) + ld_size(vn);
}

static void req_measure(const jr_runreq *req, req_sizes *z)
{
	memset(z, 0, sizeof *z);
	z->has_co = req->n_env > 0 || req->container || req->has_args;
	if (z->has_co) {
		if (req->container && *req->container)
			z->co += ld_size(strlen(req->container));
		if (req->has_args) {
			for (size_t i = 0; i < req->n_args; i++)
				z->co += ld_size(strlen(req->args[i]));
			if (req->n_args == 0)
				z->co += 2; /* clear_args = true */
		}
		for (size_t i = 0; i < req->n_env; i++)
			z->env += ld_size(env_body(&req->env[i]));
		z->co += z->env;
		z->ov += ld_size(z->co);
	}
	if (req->task_count > 0)
		z->ov += 1 + vsize((uint64_t)req->task_count);
	if (req->timeout_ms > 0) {
		int64_t s = req->timeout_ms / 1000, ns = req->timeout_ms % 1000 * 1000000;
		z->dur = (s ? 1 + vsize((uint64_t)s) : 0) + (ns ? 1 + vsize((uint64_t)ns) : 0);
		z->ov += ld_size(z->dur);
	}
	z->has_ov = z->has_co || req->task_count > 0 || req->timeout_ms > 0;
	size_t nl = req->name ? strlen(req->name) : 0;
	z->total = (nl ? ld_size(nl) : 0) + (z->has_ov ? ld_size(z->ov) : 0);
}

static void req_write(const jr_runreq *req, const req_sizes *z, uint8_t *p)
{
	size_t nl = req->name ? strlen(req->name) : 0;
	if (nl)
		p = put_str(p, 1, req->name, nl);
	if (!z->has_ov)
		return;
	p = put_ld(p, 4, z->ov);
	if (z->has_co) {
		p = put_ld(p, 1, z->co);
		if (req->container && *req->container)
			p = put_str(p, 1, req->container, strlen(req->container));
		if (req->has_args)
			for (size_t i = 0; i < req->n_args; i++)
				p = put_str(p, 2, req->args[i], strlen(req->args[i]));
		for (size_t i = 0; i < req->n_env; i++) {
			const jr_kv *kv = &req->env[i];
			size_t kn = strlen(kv->key), vn = kv->value ? strlen(kv->value) : 0;
			p = put_ld(p, 3, (kn ? ld_size(kn) : 0) + ld_size(vn));
			if (kn)
				p = put_str(p, 1, kv->key, kn);
			p = put_str(p, 2, kv->value ? kv->value : "", vn);
		}
		if (req->has_args && req->n_args == 0) {
			*p++ = 4 << 3;
			*p++ = 1;
		}
	}
	if (req->task_count > 0) {
		*p++ = 2 << 3;
		p = put_varint(p, (uint64_t)req->task_count);
	}
	if (req->timeout_ms > 0) {
		int64_t s = req->timeout_ms / 1000, ns = req->timeout_ms % 1000 * 1000000;
		p = put_ld(p, 4, z->dur);
		if (s) {
			*p++ = 1 << 3;
			p = put_varint(p, (uint64_t)s);
		}
		if (ns) {
			*p++ = 2 << 3;
			p = put_varint(p, (uint64_t)ns);
		}
	}
}

/*
 * pack_req: serialises req; with out != NULL appends to it (0, or -1 past
 * its max), else returns a new grpc byte buffer in *bb.
 */
static int pack_req(const jr_runreq *req, jr_buf *out, grpc_byte_buffer **bb)
{
	req_sizes z;
	req_measure(req, &z);
	if (out) {
		uint8_t small[1024], *tmp = z.total <= sizeof small ? small : jr_malloc(z.total);
		req_write(req, &z, tmp);
		int rc = buf_add(out, tmp, z.total);
		if (tmp != small)
			free(tmp);
		return rc;
	}
	grpc_slice s = grpc_slice_malloc(z.total);
	req_write(req, &z, GRPC_SLICE_START_PTR(s));
	*bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return 0;
}

int runjob_encode(const jr_runreq *req, jr_buf *out)
{
	return pack_req(req, out, NULL);
}

/* ---- call ---- */

static void call_done(void *arg, int ok);

static void call_unlist(jr_runjob *c, run_call *k)
{
	list_remove(&k->link);
	c->in_flight--;
}

int runjob_run(jr_runjob *c, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
{
	if (c->closing || !req->name || strlen(req->name) > RUN_MAX_NAME)
		return -1;
	run_call *k = jr_malloc(sizeof *k + routing_cap(req->name));
	memset(k, 0, sizeof *k);
	k->tag.fn = call_done;
	k->tag.arg = k;
	k->c = c;
	k->cb = cb;
	k->arg = arg;
	k->start_ms = loop_now_ms();
	size_t plen = routing_value(req->name, k->params);
	grpc_byte_buffer *bb;
	pack_req(req, NULL, &bb);
	if (grpcx_unary_start(&k->u, c->ch, c->method, loop_cq(c->loop), timeout_ms, k->params, plen,
			      bb, &k->tag) < 0) {
		free(k);
		return -1;
	}
	list_append(&c->calls, &k->link);
	c->in_flight++;
	return 0;
}

/* ---- response ---- */

/* type_is: the unpacked Any's type URL names type. */
static int type_is(const Google__Protobuf__Any *any, const char *type)
{
	return any && any->type_url && grpcx_type_url_is(any->type_url, strlen(any->type_url), type);
}

static void copy_text(char *out, const void *s, size_t n)
{
	grpcx_copy_text(out, RUN_MAX_MESSAGE, s, n);
}

/*
 * read_execution: Execution.name (1) and Execution.log_uri (26) from the
 * packed Execution, without decoding the rest of it (conditions, template,
 * ...): a walk over the top-level fields. A malformed Execution yields
 * neither.
 */
static void read_execution(const uint8_t *p, size_t len, jr_arena *a, jr_runresult *res)
{
	const uint8_t *end = p + len;
	grpcx_pb_field f, name = { 0 }, uri = { 0 };
	int rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.wt == 2 && f.num == 1)
			name = f;
		else if (f.wt == 2 && f.num == 26)
			uri = f;
	}
	if (rc < 0)
		return;
	if (name.len)
		res->execution = arena_strndup(a, (const char *)name.data, name.len);
	if (uri.len)
		res->log_uri = arena_strndup(a, (const char *)uri.data, uri.len);
}

/* any_is: a packed google.protobuf.Any whose type_url (1) names type (after the last '/'); its value (2) in *val. */
static int any_is(const grpcx_pb_field *any, const char *type, grpcx_pb_field *val)
{
	const uint8_t *p = any->data, *end = any->data + any->len;
	grpcx_pb_field f, url = { 0 };
	int rc;
	memset(val, 0, sizeof *val);
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		if (f.wt == 2 && f.num == 1)
			url = f;
		else if (f.wt == 2 && f.num == 2)
			*val = f;
	}
	return rc == 0 && url.data && grpcx_type_url_is((const char *)url.data, url.len, type);
}

/*
 * runjob_decode_operation: the RunJob answer, a google.longrunning.Operation, walked
 * by hand (protobuf-c's unpack cost 1,900 instructions a call): name (1),
 * metadata (2, an Any holding the Execution), done (3), error (4, a
 * google.rpc.Status: code 1, message 2). Wire types are checked for these
 * fields; anything malformed is INTERNAL, as a failed unpack was.
 */
void runjob_decode_operation(const void *data, size_t len, jr_arena *a, jr_runresult *res,
			     char *msgbuf)
{
	const uint8_t *p = data, *end = p + len;
	grpcx_pb_field f, name = { 0 }, meta = { 0 }, err = { 0 };
	int done = 0, bad = 0, rc;
	while ((rc = grpcx_pb_next(&p, end, &f)) > 0) {
		switch (f.num) {
		case 1:
			bad |= f.wt != 2;
			name = f;
			break;
		case 2:
			bad |= f.wt != 2;
			meta = f;
			break;
		case 3:
			bad |= f.wt != 0;
			done = f.v != 0;
			break;
		case 4:
			bad |= f.wt != 2;
			err = f;
			break;
		case 5: /* response: the oneof's other member */
			bad |= f.wt != 2;
			err.data = NULL;
			break;
		}
	}
	int64_t code = 0;
	grpcx_pb_field emsg = { 0 };
	if (rc == 0 && !bad && err.data) {
		const uint8_t *q = err.data, *qe = err.data + err.len;
		while ((rc = grpcx_pb_next(&q, qe, &f)) > 0) {
			if (f.num == 1) {
				bad |= f.wt != 0;
				code = (int32_t)f.v;
			} else if (f.num == 2) {
				bad |= f.wt != 2;
				emsg = f;
			}
		}
	}
	if (rc < 0 || bad) {
		res->code = GRPC_STATUS_INTERNAL;
		res->message = "RunJob: malformed google.longrunning.Operation in response";
		return;
	}
	res->operation = name.data ? arena_strndup(a, (const char *)name.data, name.len) : "";
	grpcx_pb_field exec;
	if (meta.data && any_is(&meta, "google.cloud.run.v2.Execution", &exec) && exec.data)
		read_execution(exec.data, exec.len, a, res);
	if (done && err.data && code != 0) {
		res->code = (int)code;
		copy_text(msgbuf, emsg.data ? emsg.data : (const uint8_t *)"", emsg.len);
		res->message = msgbuf;
	}
}

static int64_t duration_ms(const Google__Protobuf__Duration *d)
{
	if (!d || d->seconds < 0 || (d->seconds == 0 && d->nanos < 0))
		return 0;
	int64_t s = d->seconds > 1000000000 ? 1000000000 : d->seconds;
	return s * 1000 + (d->nanos > 0 ? d->nanos / 1000000 : 0);
}

/* read_retry_info: RetryInfo from grpc-status-details-bin, or -1. */
static int64_t read_retry_info(const grpc_metadata_array *md, ProtobufCAllocator *al)
{
	for (size_t i = 0; i < md->count; i++) {
		const grpc_metadata *m = &md->metadata[i];
		if (grpc_slice_str_cmp(m->key, "grpc-status-details-bin") != 0)
			continue;
		if (GRPC_SLICE_LENGTH(m->value) > RUN_MAX_STATUS_BIN)
			return -1;
		Google__Rpc__Status *st = google__rpc__status__unpack(
			al, GRPC_SLICE_LENGTH(m->value), GRPC_SLICE_START_PTR(m->value));
		if (!st)
			return -1;
		for (size_t j = 0; j < st->n_details; j++) {
			if (!type_is(st->details[j], "google.rpc.RetryInfo"))
				continue;
			Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(
				al, st->details[j]->value.len, st->details[j]->value.data);
			if (ri && ri->retry_delay)
				return duration_ms(ri->retry_delay);
		}
		return -1;
	}
	return -1;
}

static void call_done(void *arg, int ok)
{
	run_call *k = arg;
	call_unlist(k->c, k);

	char msgbuf[RUN_MAX_MESSAGE + 1];
	jr_arena arena;
	arena_init(&arena);
	ProtobufCAllocator al = grpcx_arena_pb(&arena);
	jr_runresult res = { .code = (int)k->u.status, .message = "", .retry_delay_ms = -1 };
	if (res.code != GRPC_STATUS_OK) {
		copy_text(msgbuf, GRPC_SLICE_START_PTR(k->u.details), GRPC_SLICE_LENGTH(k->u.details));
		res.message = msgbuf;
	}
	if (!ok && res.code == GRPC_STATUS_OK) {
		res.code = GRPC_STATUS_UNKNOWN;
		res.message = "RunJob: call batch failed";
	} else if (res.code == GRPC_STATUS_OK) {
		grpc_slice msg;
		if (!k->u.recv_buf || grpcx_message_slice(k->u.recv_buf, RUN_MAX_RECV, &msg) < 0) {
			res.code = GRPC_STATUS_INTERNAL;
			res.message = "RunJob: OK status without a readable response";
		} else {
			runjob_decode_operation(GRPC_SLICE_START_PTR(msg), GRPC_SLICE_LENGTH(msg),
						&arena, &res, msgbuf);
			grpc_slice_unref(msg);
		}
	} else {
		res.retry_delay_ms = read_retry_info(&k->u.trailing_md, &al);
		if (res.code == GRPC_STATUS_UNAUTHENTICATED) /* the API refused the token: get another */
			gcreds_token_rejected(gcreds_active());
		if (gcreds_call_error(res.code, res.message)) { /* never reached the API */
			res.has_class = 1;
			res.cls = JR_ERR_CREDENTIALS;
			res.code_name = "CREDENTIALS";
			res.retry_delay_ms = gcreds_retry_in_ms(gcreds_active());
		}
	}
	res.latency_ms = loop_now_ms() - k->start_ms;
	k->cb(k->arg, &res);

	arena_free(&arena);
	grpcx_unary_end(&k->u);
	free(k);
}

void runjob_free(jr_runjob *c)
{
	if (!c)
		return;
	c->closing = 1;
	if (c->companion_close)
		c->companion_close(c->companion);
	for (jr_link *l = c->calls.next; l != &c->calls; l = l->next)
		grpc_call_cancel(list_item(l, run_call, link)->u.call, NULL);
	while (c->in_flight > 0)
		loop_run_once(c->loop, -1);
	grpc_channel_destroy(c->ch);
	free(c);
}

int runjob_wait_ready(jr_runjob *c, int64_t timeout_ms)
{
	return grpcx_wait_ready(c->ch, c->loop, timeout_ms);
}

int runjob_startup_check(jr_runjob *c, int64_t call_timeout_ms)
{
	int64_t wait = call_timeout_ms > 0 && call_timeout_ms < RUNJOB_STARTUP_WAIT_MS
			       ? call_timeout_ms
			       : RUNJOB_STARTUP_WAIT_MS;
	if (gcreds_startup_check(RUNJOB_STARTUP_WAIT_MS) < 0)
		return -1;
	if (runjob_wait_ready(c, wait) < 0) {
		char ms[32];
		snprintf(ms, sizeof ms, "%lldms", (long long)wait);
		log_kv(JR_LOG_ERROR, "RUNAPI-UNREACHABLE", "cannot reach the Run API", "target",
		       runjob_target(c), "waited", ms, NULL);
		return -1;
	}
	log_kv(JR_LOG_INFO, "RUNAPI-READY", "Run API channel ready", "target", runjob_target(c),
	       NULL);
	return 0;
}
