/*
 * runapi.c — RunJob over gRPC core, one batch per call.
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
 * In-flight calls sit on a list so runapi_free can cancel them and pump the
 * loop until each callback has run (with CANCELLED).
 */

#include "runapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "log.h"
#include "google/cloud/run/v2/job.pb-c.h"
#include "google/longrunning/operations.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpcx.h"
#include "mem.h"

#define RUN_DEFAULT_ENDPOINT "run.googleapis.com:443"
#define RUN_METHOD "/google.cloud.run.v2.Jobs/RunJob"
#define RUN_MAX_RECV (4 * 1024 * 1024)     /* response message bytes */
#define RUN_MAX_STATUS_BIN (64 * 1024)     /* grpc-status-details-bin bytes */
#define RUN_MAX_MESSAGE 1024               /* status text handed to the caller */
#define RUN_MAX_NAME 4096                  /* job name bytes */
#define RUN_ENV_ON_STACK 64

struct run_call;

struct jr_runapi {
	jr_loop *loop;
	grpc_channel *ch;
	void *method; /* registered call handle */
	struct run_call *calls;
	int in_flight;
	int closing;
	void *companion; /* runapi_attach */
	void (*companion_close)(void *obj);
	char target[300];
};

typedef struct run_call {
	jr_tag tag;
	jr_runapi *c;
	struct run_call *prev, *next;
	grpc_call *call;
	jr_run_cb cb;
	void *arg;
	int64_t start_ms;
	grpc_metadata send_md[2];
	grpc_metadata_array recv_md;
	grpc_metadata_array trailing_md;
	grpc_byte_buffer *send_buf;
	grpc_byte_buffer *recv_buf;
	grpc_status_code status;
	grpc_slice details;
	char params[]; /* x-goog-request-params value */
} run_call;

jr_runapi *runapi_new(jr_loop *l, const char *endpoint, char *err, size_t errlen)
{
	if (!endpoint || !*endpoint)
		endpoint = getenv("JOBRELAY_RUN_ENDPOINT");
	if (!endpoint || !*endpoint)
		endpoint = RUN_DEFAULT_ENDPOINT;
	char host[256];
	if (strlen(endpoint) > 260) {
		snprintf(err, errlen, "run endpoint too long (%zu bytes)", strlen(endpoint));
		return NULL;
	}
	if (grpcx_split_endpoint("run endpoint", endpoint, host, sizeof host, err, errlen) < 0)
		return NULL;
	int insecure = grpcx_is_loopback(host) || grpcx_env_true("JOBRELAY_RUN_INSECURE");
	grpcx_channel_opts co = { "run endpoint", endpoint, insecure, RUN_MAX_RECV };
	grpc_channel *ch = grpcx_channel_new(&co, err, errlen);
	if (!ch)
		return NULL;
	jr_runapi *c = jr_calloc(1, sizeof *c);
	c->loop = l;
	c->ch = ch;
	c->method = grpc_channel_register_call(ch, RUN_METHOD, NULL, NULL);
	snprintf(c->target, sizeof c->target, "%s (%s)", endpoint, insecure ? "plaintext" : "tls");
	return c;
}

const char *runapi_target(const jr_runapi *c)
{
	return c->target;
}

int runapi_in_flight(const jr_runapi *c)
{
	return c->in_flight;
}

grpc_channel *runapi_channel(jr_runapi *c)
{
	return c->ch;
}

jr_loop *runapi_loop(jr_runapi *c)
{
	return c->loop;
}

int runapi_closing(const jr_runapi *c)
{
	return c->closing;
}

void runapi_attach(jr_runapi *c, void *obj, void (*close)(void *obj))
{
	c->companion = obj;
	c->companion_close = close;
}

void *runapi_attached(jr_runapi *c)
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
	return n + grpcx_urlencode(v, vl, out + n);
}

static size_t routing_cap(const char *name)
{
	return 10 + 3 * strlen(name);
}

int runapi_routing_header(const char *job_name, jr_buf *out)
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

/* A RunJobRequest as protobuf-c structs pointing into req; env arrays are the caller's. */
typedef struct pb_req {
	Google__Cloud__Run__V2__RunJobRequest rq;
	Google__Cloud__Run__V2__RunJobRequest__Overrides ov;
	Google__Cloud__Run__V2__RunJobRequest__Overrides__ContainerOverride co;
	Google__Cloud__Run__V2__RunJobRequest__Overrides__ContainerOverride *cop[1];
	Google__Protobuf__Duration timeout;
} pb_req;

static void pb_build(pb_req *p, const jr_runreq *req, Google__Cloud__Run__V2__EnvVar *ev,
		     Google__Cloud__Run__V2__EnvVar **evp)
{
	google__cloud__run__v2__run_job_request__init(&p->rq);
	google__cloud__run__v2__run_job_request__overrides__init(&p->ov);
	google__cloud__run__v2__run_job_request__overrides__container_override__init(&p->co);
	google__protobuf__duration__init(&p->timeout);
	p->rq.name = req->name ? req->name : "";
	for (size_t i = 0; i < req->n_env; i++) {
		google__cloud__run__v2__env_var__init(&ev[i]);
		ev[i].name = (char *)req->env[i].key;
		ev[i].values_case = GOOGLE__CLOUD__RUN__V2__ENV_VAR__VALUES_VALUE;
		ev[i].value = (char *)(req->env[i].value ? req->env[i].value : "");
		evp[i] = &ev[i];
	}
	p->co.n_env = req->n_env;
	p->co.env = evp;
	if (req->container)
		p->co.name = req->container;
	if (req->has_args && req->n_args > 0) {
		p->co.n_args = req->n_args;
		p->co.args = req->args;
	} else if (req->has_args) {
		p->co.clear_args = 1;
	}
	int has_co = req->n_env > 0 || req->container || req->has_args;
	if (has_co) {
		p->cop[0] = &p->co;
		p->ov.n_container_overrides = 1;
		p->ov.container_overrides = p->cop;
	}
	if (req->task_count > 0)
		p->ov.task_count = req->task_count;
	if (req->timeout_ms > 0) {
		p->timeout.seconds = req->timeout_ms / 1000;
		p->timeout.nanos = (int32_t)(req->timeout_ms % 1000) * 1000000;
		p->ov.timeout = &p->timeout;
	}
	if (has_co || req->task_count > 0 || req->timeout_ms > 0)
		p->rq.overrides = &p->ov;
}

/*
 * pack_req: serialises req; with out != NULL appends to it (0, or -1 past
 * its max), else returns a new grpc byte buffer in *bb.
 */
static int pack_req(const jr_runreq *req, jr_buf *out, grpc_byte_buffer **bb)
{
	Google__Cloud__Run__V2__EnvVar ev_s[RUN_ENV_ON_STACK], *ev = ev_s;
	Google__Cloud__Run__V2__EnvVar *evp_s[RUN_ENV_ON_STACK], **evp = evp_s;
	if (req->n_env > RUN_ENV_ON_STACK) {
		ev = jr_malloc(req->n_env * sizeof *ev);
		evp = jr_malloc(req->n_env * sizeof *evp);
	}
	pb_req p;
	pb_build(&p, req, ev, evp);
	size_t n = google__cloud__run__v2__run_job_request__get_packed_size(&p.rq);
	int rc = 0;
	if (out) {
		uint8_t *tmp = jr_malloc(n);
		google__cloud__run__v2__run_job_request__pack(&p.rq, tmp);
		rc = buf_add(out, tmp, n);
		free(tmp);
	} else {
		grpc_slice s = grpc_slice_malloc(n);
		google__cloud__run__v2__run_job_request__pack(&p.rq, GRPC_SLICE_START_PTR(s));
		*bb = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
	}
	if (ev != ev_s) {
		free(ev);
		free(evp);
	}
	return rc;
}

int runapi_encode(const jr_runreq *req, jr_buf *out)
{
	return pack_req(req, out, NULL);
}

/* ---- call ---- */

static void call_done(void *arg, int ok);

static void list_remove(jr_runapi *c, run_call *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	c->in_flight--;
}

int runapi_run(jr_runapi *c, const jr_runreq *req, int64_t timeout_ms, jr_run_cb cb, void *arg)
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
	k->send_md[0].key = grpc_slice_from_static_string("x-goog-request-params");
	k->send_md[0].value = grpc_slice_from_static_buffer(k->params, plen);
	k->send_md[1].key = grpc_slice_from_static_string("x-goog-api-client");
	k->send_md[1].value = grpc_slice_from_static_string(grpcx_api_client());
	grpc_metadata_array_init(&k->recv_md);
	grpc_metadata_array_init(&k->trailing_md);

	gpr_timespec deadline = timeout_ms > 0
		? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
		: gpr_inf_future(GPR_CLOCK_MONOTONIC);
	k->call = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS,
						      loop_cq(c->loop), c->method, deadline, NULL);
	if (!k->call) {
		free(k);
		return -1;
	}
	pack_req(req, NULL, &k->send_buf);

	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 2;
	ops[0].data.send_initial_metadata.metadata = k->send_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = k->send_buf;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &k->recv_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &k->recv_buf;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &k->trailing_md;
	ops[5].data.recv_status_on_client.status = &k->status;
	ops[5].data.recv_status_on_client.status_details = &k->details;
	if (grpc_call_start_batch(k->call, ops, 6, &k->tag, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(k->call);
		grpc_byte_buffer_destroy(k->send_buf);
		grpc_metadata_array_destroy(&k->recv_md);
		grpc_metadata_array_destroy(&k->trailing_md);
		free(k);
		return -1;
	}
	k->next = c->calls;
	if (c->calls)
		c->calls->prev = k;
	c->calls = k;
	c->in_flight++;
	return 0;
}

/* ---- response ---- */

static void *arena_pb_alloc(void *data, size_t n)
{
	return arena_alloc(data, n);
}

static void arena_pb_free(void *data, void *p)
{
	(void)data; /* arena memory goes all at once, after the callback */
	(void)p;
}

/* type_is: the Any's type URL names type (the part after the last '/'). */
static int type_is(const Google__Protobuf__Any *any, const char *type)
{
	if (!any || !any->type_url)
		return 0;
	const char *s = strrchr(any->type_url, '/');
	return !strcmp(s ? s + 1 : any->type_url, type);
}

static void copy_text(char *out, const void *s, size_t n)
{
	grpcx_copy_text(out, RUN_MAX_MESSAGE, s, n);
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

/*
 * read_execution: Execution.name (1) and Execution.log_uri (26) from the
 * packed Execution, without decoding the rest of it (conditions, template,
 * ...): a walk over the top-level fields that checks every length. A
 * malformed Execution yields neither.
 */
static void read_execution(const uint8_t *p, size_t len, jr_arena *a, jr_runresult *res)
{
	const uint8_t *end = p + len, *name = NULL, *uri = NULL;
	size_t name_len = 0, uri_len = 0;
	while (p < end) {
		uint64_t key, v;
		if (varint(&p, end, &key) < 0)
			return;
		switch (key & 7) {
		case 0:
			if (varint(&p, end, &v) < 0)
				return;
			break;
		case 1:
		case 5: {
			size_t n = (key & 7) == 1 ? 8 : 4;
			if ((size_t)(end - p) < n)
				return;
			p += n;
			break;
		}
		case 2:
			if (varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return;
			if (key >> 3 == 1) {
				name = p;
				name_len = (size_t)v;
			} else if (key >> 3 == 26) {
				uri = p;
				uri_len = (size_t)v;
			}
			p += v;
			break;
		default: /* groups: not in proto3 */
			return;
		}
	}
	if (name_len)
		res->execution = arena_strndup(a, (const char *)name, name_len);
	if (uri_len)
		res->log_uri = arena_strndup(a, (const char *)uri, uri_len);
}

static void read_operation(const grpc_slice *msg, ProtobufCAllocator *al, jr_runresult *res,
			   char *msgbuf)
{
	Google__Longrunning__Operation *op = google__longrunning__operation__unpack(
		al, GRPC_SLICE_LENGTH(*msg), GRPC_SLICE_START_PTR(*msg));
	if (!op) {
		res->code = GRPC_STATUS_INTERNAL;
		res->message = "RunJob: malformed google.longrunning.Operation in response";
		return;
	}
	res->operation = op->name ? op->name : "";
	if (type_is(op->metadata, "google.cloud.run.v2.Execution"))
		read_execution(op->metadata->value.data, op->metadata->value.len, al->allocator_data, res);
	if (op->done && op->result_case == GOOGLE__LONGRUNNING__OPERATION__RESULT_ERROR &&
	    op->error && op->error->code != 0) {
		res->code = op->error->code;
		copy_text(msgbuf, op->error->message ? op->error->message : "",
			  op->error->message ? strlen(op->error->message) : 0);
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
	list_remove(k->c, k);

	char msgbuf[RUN_MAX_MESSAGE + 1];
	jr_arena arena;
	arena_init(&arena);
	ProtobufCAllocator al = { arena_pb_alloc, arena_pb_free, &arena };
	jr_runresult res = { .code = (int)k->status, .message = "", .retry_delay_ms = -1 };
	if (res.code != GRPC_STATUS_OK) {
		copy_text(msgbuf, GRPC_SLICE_START_PTR(k->details), GRPC_SLICE_LENGTH(k->details));
		res.message = msgbuf;
	}
	if (!ok && res.code == GRPC_STATUS_OK) {
		res.code = GRPC_STATUS_UNKNOWN;
		res.message = "RunJob: call batch failed";
	} else if (res.code == GRPC_STATUS_OK) {
		grpc_slice msg;
		if (!k->recv_buf || grpcx_message_slice(k->recv_buf, RUN_MAX_RECV, &msg) < 0) {
			res.code = GRPC_STATUS_INTERNAL;
			res.message = "RunJob: OK status without a readable response";
		} else {
			read_operation(&msg, &al, &res, msgbuf);
			grpc_slice_unref(msg);
		}
	} else {
		res.retry_delay_ms = read_retry_info(&k->trailing_md, &al);
	}
	res.latency_ms = loop_now_ms() - k->start_ms;
	k->cb(k->arg, &res);

	arena_free(&arena);
	grpc_slice_unref(k->details);
	grpc_metadata_array_destroy(&k->recv_md);
	grpc_metadata_array_destroy(&k->trailing_md);
	grpc_byte_buffer_destroy(k->send_buf);
	if (k->recv_buf)
		grpc_byte_buffer_destroy(k->recv_buf);
	grpc_call_unref(k->call);
	free(k);
}

void runapi_free(jr_runapi *c)
{
	if (!c)
		return;
	c->closing = 1;
	if (c->companion_close)
		c->companion_close(c->companion);
	for (run_call *k = c->calls; k; k = k->next)
		grpc_call_cancel(k->call, NULL);
	while (c->in_flight > 0)
		loop_run_once(c->loop, -1);
	grpc_channel_destroy(c->ch);
	free(c);
}

int runapi_wait_ready(jr_runapi *c, int64_t timeout_ms)
{
	return grpcx_wait_ready(c->ch, c->loop, timeout_ms);
}

int runapi_startup_check(jr_runapi *c, int64_t call_timeout_ms)
{
	int64_t wait = call_timeout_ms > 0 && call_timeout_ms < RUNAPI_STARTUP_WAIT_MS
			       ? call_timeout_ms
			       : RUNAPI_STARTUP_WAIT_MS;
	if (runapi_wait_ready(c, wait) < 0) {
		char ms[32];
		snprintf(ms, sizeof ms, "%lldms", (long long)wait);
		log_kv(JR_LOG_ERROR, "RUNAPI-UNREACHABLE", "cannot reach the Run API", "target",
		       runapi_target(c), "waited", ms, NULL);
		return -1;
	}
	log_kv(JR_LOG_INFO, "RUNAPI-READY", "Run API channel ready", "target", runapi_target(c),
	       NULL);
	return 0;
}
