/*
 * runexec.c — unary Run API v2 calls (ListJobs, ListExecutions,
 * GetExecution, CancelExecution) on the Run API client's channel.
 *
 * A call is one allocation: the request is packed with protobuf-c's generic
 * pack into a grpc slice, and one batch of six ops carries it, as in
 * runjob.c. The answer is unpacked into a per-completion arena with the
 * generic unpack, converted into jr_job / jr_execution in the same arena,
 * handed to the callback, and freed after it. The message size is bounded
 * by RUNEXEC_MAX_RECV (grpcx_message_slice); so are the counts of what it
 * holds.
 */
#include "runexec.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/time.h>

#include "google/cloud/run/v2/execution.pb-c.h"
#include "google/cloud/run/v2/job.pb-c.h"
#include "google/longrunning/operations.pb-c.h"
#include "grpcx.h"
#include "list.h"
#include "mem.h"
#include "pct.h"

#define ADMIN_MAX_MESSAGE 1024
#define ADMIN_MAX_NAME 4096

enum { M_LIST_JOBS, M_LIST_EXECS, M_GET_EXEC, M_CANCEL_EXEC, M_COUNT };

static const char *const method_path[M_COUNT] = {
	"/google.cloud.run.v2.Jobs/ListJobs",
	"/google.cloud.run.v2.Executions/ListExecutions",
	"/google.cloud.run.v2.Executions/GetExecution",
	"/google.cloud.run.v2.Executions/CancelExecution",
};

typedef struct admin_call admin_call;

struct jr_runexec {
	jr_runjob *api;
	jr_loop *loop;
	void *method[M_COUNT];
	jr_link calls; /* in flight */
	int in_flight;
	int closing;
};

struct admin_call {
	jr_tag tag;
	jr_runexec *a;
	jr_link link;
	int method;
	grpcx_unary u;
	jr_admin_cb cb;
	void *arg;
	char params[]; /* x-goog-request-params value */
};

jr_runexec *runexec_new(jr_runjob *api)
{
	jr_runexec *a = jr_calloc(1, sizeof *a);
	list_init(&a->calls);
	a->api = api;
	a->loop = runjob_loop(api);
	for (int i = 0; i < M_COUNT; i++)
		a->method[i] = grpc_channel_register_call(runjob_channel(api), method_path[i], NULL,
							  NULL);
	return a;
}

void runexec_free(jr_runexec *a)
{
	if (!a)
		return;
	a->closing = 1;
	for (jr_link *l = a->calls.next; l != &a->calls; l = l->next)
		grpc_call_cancel(list_item(l, admin_call, link)->u.call, NULL);
	while (a->in_flight > 0)
		loop_run_once(a->loop, -1);
	free(a);
}

/* ---- states ---- */

static const char *const state_names[] = {
	"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT",
};

const char *runexec_state_name(jr_exec_state s)
{
	return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "UNKNOWN";
}

int runexec_state_done(jr_exec_state s)
{
	return s >= JR_EXEC_SUCCEEDED;
}

/* says_timeout: the message tells of a timeout ("timed out", "timeout", "deadline exceeded"). */
static int says_timeout(const char *m)
{
	static const char *const words[] = {"timed out", "timeout", "time out", "deadline exceeded"};
	if (!m)
		return 0;
	char low[256];
	size_t n = 0;
	for (; m[n] && n < sizeof low - 1; n++)
		low[n] = (char)tolower((unsigned char)m[n]);
	low[n] = 0;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

jr_exec_state runexec_exec_state(int cond_state, const char *exec_reason, const char *message,
				  const jr_execution *c)
{
	int cancelled = exec_reason && !strcmp(exec_reason, "CANCELLED");
	switch (cond_state) {
	case GOOGLE__CLOUD__RUN__V2__CONDITION__STATE__CONDITION_SUCCEEDED:
		return JR_EXEC_SUCCEEDED;
	case GOOGLE__CLOUD__RUN__V2__CONDITION__STATE__CONDITION_FAILED:
		if (cancelled || (c->cancelled > 0 && c->failed == 0))
			return JR_EXEC_CANCELLED;
		return says_timeout(message) ? JR_EXEC_TIMED_OUT : JR_EXEC_FAILED;
	default:
		break;
	}
	if (c->completion_ms > 0) {
		if (c->failed > 0)
			return says_timeout(message) ? JR_EXEC_TIMED_OUT : JR_EXEC_FAILED;
		return c->cancelled > 0 ? JR_EXEC_CANCELLED : JR_EXEC_SUCCEEDED;
	}
	return c->start_ms > 0 || c->running > 0 ? JR_EXEC_RUNNING : JR_EXEC_PENDING;
}

const char *runexec_env_get(const jr_execution *e, const char *name)
{
	const char *v = NULL;
	for (size_t i = 0; i < e->n_env; i++)
		if (e->env[i].key && !strcmp(e->env[i].key, name))
			v = e->env[i].value;
	return v;
}

/* ---- decoding ---- */

static int64_t ts_ms(const Google__Protobuf__Timestamp *t)
{
	if (!t || t->seconds <= 0)
		return 0;
	return t->seconds * 1000 + (t->nanos > 0 ? t->nanos / 1000000 : 0);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static void read_exec(const Google__Cloud__Run__V2__Execution *x, jr_arena *ar, jr_execution *e)
{
	memset(e, 0, sizeof *e);
	e->name = x->name ? x->name : "";
	e->job = nonempty(x->job);
	e->task_count = x->task_count;
	e->running = x->running_count;
	e->succeeded = x->succeeded_count;
	e->failed = x->failed_count;
	e->cancelled = x->cancelled_count;
	e->retried = x->retried_count;
	e->create_ms = ts_ms(x->create_time);
	e->start_ms = ts_ms(x->start_time);
	e->completion_ms = ts_ms(x->completion_time);
	e->log_uri = nonempty(x->log_uri);
	int cond_state = -1;
	const char *msg = NULL;
	for (size_t i = 0; i < x->n_conditions; i++) {
		const Google__Cloud__Run__V2__Condition *cd = x->conditions[i];
		if (!cd->type || strcmp(cd->type, "Completed") != 0)
			continue;
		cond_state = (int)cd->state;
		msg = nonempty(cd->message);
		if (cd->reasons_case == GOOGLE__CLOUD__RUN__V2__CONDITION__REASONS_EXECUTION_REASON) {
			const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
				&google__cloud__run__v2__condition__execution_reason__descriptor,
				(int)cd->execution_reason);
			if (v && cd->execution_reason != 0)
				e->exec_reason = v->name;
		}
	}
	e->state = runexec_exec_state(cond_state, e->exec_reason, msg, e);
	if (e->state != JR_EXEC_SUCCEEDED && runexec_state_done(e->state))
		e->reason = msg;
	const Google__Cloud__Run__V2__TaskTemplate *t = x->template_;
	size_t n = 0;
	for (size_t i = 0; t && i < t->n_containers; i++)
		n += t->containers[i]->n_env;
	if (!n)
		return;
	jr_kv *env = arena_alloc(ar, n * sizeof *env);
	for (size_t i = 0; i < t->n_containers; i++)
		for (size_t j = 0; j < t->containers[i]->n_env; j++) {
			const Google__Cloud__Run__V2__EnvVar *v = t->containers[i]->env[j];
			env[e->n_env].key = v->name;
			env[e->n_env].value =
				v->values_case == GOOGLE__CLOUD__RUN__V2__ENV_VAR__VALUES_VALUE ? v->value
												: NULL;
			e->n_env++;
		}
	e->env = env;
}

static const char *const completion_names[] = {
	NULL, "SUCCEEDED", "FAILED", "RUNNING", "PENDING", "CANCELLED",
};

static void read_job(const Google__Cloud__Run__V2__Job *x, jr_arena *ar, jr_job *j)
{
	memset(j, 0, sizeof *j);
	j->name = x->name ? x->name : "";
	j->execution_count = x->execution_count;
	if (x->n_labels) {
		jr_kv *l = arena_alloc(ar, x->n_labels * sizeof *l);
		for (size_t i = 0; i < x->n_labels; i++) {
			l[i].key = x->labels[i]->key ? x->labels[i]->key : "";
			l[i].value = x->labels[i]->value ? x->labels[i]->value : "";
		}
		j->labels = l;
		j->n_labels = x->n_labels;
	}
	const Google__Cloud__Run__V2__ExecutionReference *r = x->latest_created_execution;
	if (r && nonempty(r->name)) {
		j->last_execution = r->name;
		unsigned cs = (unsigned)r->completion_status;
		j->last_state = cs < sizeof completion_names / sizeof completion_names[0]
					? completion_names[cs]
					: NULL;
		j->last_create_ms = ts_ms(r->create_time);
	}
}

/* one_exec: x as res's only execution. */
static void one_exec(const Google__Cloud__Run__V2__Execution *x, jr_arena *ar, jr_adminres *res)
{
	jr_execution *e = arena_alloc(ar, sizeof *e);
	read_exec(x, ar, e);
	res->execs = e;
	res->n_execs = 1;
}

/* decode: the answer of method m into res (in arena ar); -1 when it does not parse. */
static int decode(int m, const grpc_slice *msg, jr_arena *ar, jr_adminres *res)
{
	ProtobufCAllocator al = grpcx_arena_pb(ar);
	size_t len = GRPC_SLICE_LENGTH(*msg);
	const uint8_t *p = GRPC_SLICE_START_PTR(*msg);
	switch (m) {
	case M_LIST_JOBS: {
		Google__Cloud__Run__V2__ListJobsResponse *r =
			google__cloud__run__v2__list_jobs_response__unpack(&al, len, p);
		if (!r)
			return -1;
		jr_job *jobs = r->n_jobs ? arena_alloc(ar, r->n_jobs * sizeof *jobs) : NULL;
		for (size_t i = 0; i < r->n_jobs; i++)
			read_job(r->jobs[i], ar, &jobs[i]);
		res->jobs = jobs;
		res->n_jobs = r->n_jobs;
		res->next_page_token = r->next_page_token ? r->next_page_token : "";
		return 0;
	}
	case M_LIST_EXECS: {
		Google__Cloud__Run__V2__ListExecutionsResponse *r =
			google__cloud__run__v2__list_executions_response__unpack(&al, len, p);
		if (!r)
			return -1;
		jr_execution *ex = r->n_executions ? arena_alloc(ar, r->n_executions * sizeof *ex) : NULL;
		for (size_t i = 0; i < r->n_executions; i++)
			read_exec(r->executions[i], ar, &ex[i]);
		res->execs = ex;
		res->n_execs = r->n_executions;
		res->next_page_token = r->next_page_token ? r->next_page_token : "";
		return 0;
	}
	case M_GET_EXEC: {
		Google__Cloud__Run__V2__Execution *x =
			google__cloud__run__v2__execution__unpack(&al, len, p);
		if (!x)
			return -1;
		one_exec(x, ar, res);
		return 0;
	}
	default: { /* M_CANCEL_EXEC: an Operation whose metadata is the Execution */
		Google__Longrunning__Operation *op =
			google__longrunning__operation__unpack(&al, len, p);
		if (!op)
			return -1;
		const Google__Protobuf__Any *md = op->metadata;
		if (md && md->type_url &&
		    grpcx_type_url_is(md->type_url, strlen(md->type_url), "google.cloud.run.v2.Execution")) {
			Google__Cloud__Run__V2__Execution *x = google__cloud__run__v2__execution__unpack(
				&al, md->value.len, md->value.data);
			if (!x)
				return -1;
			one_exec(x, ar, res);
		}
		return 0;
	}
	}
}

/* ---- calls ---- */

static void call_done(void *arg, int ok)
{
	admin_call *k = arg;
	jr_runexec *a = k->a;
	list_remove(&k->link);
	a->in_flight--;

	char msgbuf[ADMIN_MAX_MESSAGE + 1];
	jr_arena ar;
	arena_init(&ar);
	jr_adminres res = {.code = (int)k->u.status, .message = "", .next_page_token = ""};
	if (res.code != GRPC_STATUS_OK) {
		grpcx_copy_text(msgbuf, ADMIN_MAX_MESSAGE, GRPC_SLICE_START_PTR(k->u.details),
				GRPC_SLICE_LENGTH(k->u.details));
		res.message = msgbuf;
	} else if (!ok) {
		res.code = GRPC_STATUS_UNKNOWN;
		res.message = "call batch failed";
	} else {
		grpc_slice msg;
		if (!k->u.recv_buf || grpcx_message_slice(k->u.recv_buf, RUNEXEC_MAX_RECV, &msg) < 0) {
			res.code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			res.message = "answer missing or over 4 MiB";
		} else {
			if (decode(k->method, &msg, &ar, &res) < 0) {
				res.code = GRPC_STATUS_INTERNAL;
				res.message = "malformed answer";
			}
			grpc_slice_unref(msg);
		}
	}
	k->cb(k->arg, &res);

	arena_free(&ar);
	grpcx_unary_end(&k->u);
	free(k);
}

/*
 * start: sends msg on method m with x-goog-request-params key=value
 * (value url-encoded; for "location", the L of projects/P/locations/L...).
 */
static int start(jr_runexec *a, int m, const ProtobufCMessage *msg, const char *key,
		 const char *value, int64_t timeout_ms, jr_admin_cb cb, void *arg)
{
	if (a->closing || runjob_closing(a->api) || !value || strlen(value) > ADMIN_MAX_NAME)
		return -1;
	const char *v = value;
	size_t vl = strlen(value);
	if (!strcmp(key, "location")) {
		const char *loc = strstr(value, "/locations/");
		if (!loc)
			return -1;
		v = loc + 11;
		const char *e = strchr(v, '/');
		vl = e ? (size_t)(e - v) : strlen(v);
	}
	size_t kl = strlen(key);
	admin_call *k = jr_calloc(1, sizeof *k + kl + 2 + 3 * vl + 1);
	memcpy(k->params, key, kl);
	k->params[kl] = '=';
	size_t plen = kl + 1 + pct_encode(v, vl, k->params + kl + 1);
	k->tag.fn = call_done;
	k->tag.arg = k;
	k->a = a;
	k->method = m;
	k->cb = cb;
	k->arg = arg;
	size_t n = protobuf_c_message_get_packed_size(msg);
	grpc_slice sl = grpc_slice_malloc(n);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	if (grpcx_unary_start(&k->u, runjob_channel(a->api), a->method[m], loop_cq(a->loop),
			      timeout_ms, k->params, plen, bb, &k->tag) < 0) {
		free(k);
		return -1;
	}
	list_append(&a->calls, &k->link);
	a->in_flight++;
	return 0;
}

int runexec_list_jobs(jr_runexec *a, const char *parent, int page_size, const char *page_token,
		       int64_t timeout_ms, jr_admin_cb cb, void *arg)
{
	Google__Cloud__Run__V2__ListJobsRequest rq = GOOGLE__CLOUD__RUN__V2__LIST_JOBS_REQUEST__INIT;
	rq.parent = (char *)parent;
	rq.page_size = page_size > 0 ? page_size : 0;
	if (page_token && *page_token)
		rq.page_token = (char *)page_token;
	return start(a, M_LIST_JOBS, &rq.base, "location", parent, timeout_ms, cb, arg);
}

int runexec_list_executions(jr_runexec *a, const char *job, int page_size,
			     const char *page_token, int64_t timeout_ms, jr_admin_cb cb, void *arg)
{
	Google__Cloud__Run__V2__ListExecutionsRequest rq =
		GOOGLE__CLOUD__RUN__V2__LIST_EXECUTIONS_REQUEST__INIT;
	rq.parent = (char *)job;
	rq.page_size = page_size > 0 ? page_size : 0;
	if (page_token && *page_token)
		rq.page_token = (char *)page_token;
	return start(a, M_LIST_EXECS, &rq.base, "parent", job, timeout_ms, cb, arg);
}

int runexec_get_execution(jr_runexec *a, const char *name, int64_t timeout_ms, jr_admin_cb cb,
			   void *arg)
{
	Google__Cloud__Run__V2__GetExecutionRequest rq =
		GOOGLE__CLOUD__RUN__V2__GET_EXECUTION_REQUEST__INIT;
	rq.name = (char *)name;
	return start(a, M_GET_EXEC, &rq.base, "name", name, timeout_ms, cb, arg);
}

int runexec_cancel_execution(jr_runexec *a, const char *name, int64_t timeout_ms, jr_admin_cb cb,
			      void *arg)
{
	Google__Cloud__Run__V2__CancelExecutionRequest rq =
		GOOGLE__CLOUD__RUN__V2__CANCEL_EXECUTION_REQUEST__INIT;
	rq.name = (char *)name;
	return start(a, M_CANCEL_EXEC, &rq.base, "name", name, timeout_ms, cb, arg);
}
