/*
 * test_runjob_encode.c — the RunJobRequest bytes runjob sends, read back
 * with protobuf-c's generated decoder, and the x-goog-request-params value;
 * RunJob answers (Operations packed by protobuf-c) read back by runjob.
 */
#include "cu.h"

#include <stdlib.h>
#include <string.h>

#include "google/cloud/run/v2/job.pb-c.h"
#include "google/cloud/run/v2/execution.pb-c.h"
#include "google/longrunning/operations.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "runjob.h"

typedef Google__Cloud__Run__V2__RunJobRequest RunJobRequest;

static RunJobRequest *encode_decode(const jr_runreq *req)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL_FATAL(runjob_encode(req, &b), 0);
	RunJobRequest *r = google__cloud__run__v2__run_job_request__unpack(
		NULL, b.len, (const uint8_t *)b.data);
	buf_free(&b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	return r;
}

static void test_full(void)
{
	jr_kv env[] = { { "INPUT", "gs://uploads/a b.csv" }, { "EMPTY", "" }, { "CE_ID", "id-1" } };
	char *args[] = { "--input", "a b.csv" };
	jr_runreq req = {
		.name = "projects/acme/locations/us-central1/jobs/ingest",
		.container = "main",
		.env = env,
		.n_env = 3,
		.args = args,
		.n_args = 2,
		.has_args = 1,
		.task_count = 3,
		.timeout_ms = 600500,
	};
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_STRING_EQUAL(r->name, "projects/acme/locations/us-central1/jobs/ingest");
	CU_ASSERT_FALSE(r->validate_only);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides);
	CU_ASSERT_EQUAL(r->overrides->task_count, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides->timeout);
	CU_ASSERT_EQUAL(r->overrides->timeout->seconds, 600);
	CU_ASSERT_EQUAL(r->overrides->timeout->nanos, 500000000);
	CU_ASSERT_EQUAL_FATAL(r->overrides->n_container_overrides, 1);
	Google__Cloud__Run__V2__RunJobRequest__Overrides__ContainerOverride *co =
		r->overrides->container_overrides[0];
	CU_ASSERT_STRING_EQUAL(co->name, "main");
	CU_ASSERT_FALSE(co->clear_args);
	CU_ASSERT_EQUAL_FATAL(co->n_args, 2);
	CU_ASSERT_STRING_EQUAL(co->args[0], "--input");
	CU_ASSERT_STRING_EQUAL(co->args[1], "a b.csv");
	CU_ASSERT_EQUAL_FATAL(co->n_env, 3);
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_STRING_EQUAL(co->env[i]->name, env[i].key);
		CU_ASSERT_EQUAL(co->env[i]->values_case, GOOGLE__CLOUD__RUN__V2__ENV_VAR__VALUES_VALUE);
		CU_ASSERT_STRING_EQUAL(co->env[i]->value, env[i].value);
	}
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

static void test_clear_args(void)
{
	jr_kv env[] = { { "A", "1" } };
	jr_runreq req = { .name = "projects/p/locations/l/jobs/j", .env = env, .n_env = 1, .has_args = 1 };
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides);
	CU_ASSERT_EQUAL_FATAL(r->overrides->n_container_overrides, 1);
	CU_ASSERT_TRUE(r->overrides->container_overrides[0]->clear_args);
	CU_ASSERT_EQUAL(r->overrides->container_overrides[0]->n_args, 0);
	CU_ASSERT_STRING_EQUAL(r->overrides->container_overrides[0]->name, "");
	CU_ASSERT_EQUAL(r->overrides->task_count, 0);
	CU_ASSERT_PTR_NULL(r->overrides->timeout);
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

static void test_no_args(void)
{
	jr_kv env[] = { { "A", "1" } };
	jr_runreq req = { .name = "projects/p/locations/l/jobs/j", .env = env, .n_env = 1 };
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides);
	CU_ASSERT_FALSE(r->overrides->container_overrides[0]->clear_args);
	CU_ASSERT_EQUAL(r->overrides->container_overrides[0]->n_args, 0);
	CU_ASSERT_EQUAL(r->overrides->container_overrides[0]->n_env, 1);
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

static void test_name_only(void)
{
	jr_runreq req = { .name = "projects/p/locations/l/jobs/j" };
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_STRING_EQUAL(r->name, "projects/p/locations/l/jobs/j");
	CU_ASSERT_PTR_NULL(r->overrides);
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

static void test_task_count_only(void)
{
	jr_runreq req = { .name = "projects/p/locations/l/jobs/j", .task_count = 7, .timeout_ms = 999 };
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides);
	CU_ASSERT_EQUAL(r->overrides->n_container_overrides, 0);
	CU_ASSERT_EQUAL(r->overrides->task_count, 7);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->overrides->timeout);
	CU_ASSERT_EQUAL(r->overrides->timeout->seconds, 0);
	CU_ASSERT_EQUAL(r->overrides->timeout->nanos, 999000000);
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

/* More env vars than the encoder keeps on its stack. */
static void test_many_env(void)
{
	enum { N = 300 };
	static jr_kv env[N];
	static char names[N][16], values[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "V%d", i);
		snprintf(values[i], sizeof values[i], "x%d", i * 3);
		env[i].key = names[i];
		env[i].value = values[i];
	}
	jr_runreq req = { .name = "projects/p/locations/l/jobs/j", .env = env, .n_env = N };
	RunJobRequest *r = encode_decode(&req);
	CU_ASSERT_EQUAL_FATAL(r->overrides->container_overrides[0]->n_env, N);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_STRING_EQUAL(r->overrides->container_overrides[0]->env[i]->name, names[i]);
		CU_ASSERT_STRING_EQUAL(r->overrides->container_overrides[0]->env[i]->value, values[i]);
	}
	google__cloud__run__v2__run_job_request__free_unpacked(r, NULL);
}

static void test_buf_max(void)
{
	jr_runreq req = { .name = "projects/p/locations/l/jobs/jjjjjjjjjjjjjjjjjjjj" };
	jr_buf b;
	buf_init(&b, 10);
	CU_ASSERT_EQUAL(runjob_encode(&req, &b), -1);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
}

/*
 * pb_pack: req packed by protobuf-c's generated packer (what runjob used
 * before it wrote the bytes itself): the reference for test_same_bytes.
 */
static size_t pb_pack(const jr_runreq *req, uint8_t **out)
{
	Google__Cloud__Run__V2__RunJobRequest rq = GOOGLE__CLOUD__RUN__V2__RUN_JOB_REQUEST__INIT;
	Google__Cloud__Run__V2__RunJobRequest__Overrides ov =
		GOOGLE__CLOUD__RUN__V2__RUN_JOB_REQUEST__OVERRIDES__INIT;
	Google__Cloud__Run__V2__RunJobRequest__Overrides__ContainerOverride co =
		GOOGLE__CLOUD__RUN__V2__RUN_JOB_REQUEST__OVERRIDES__CONTAINER_OVERRIDE__INIT;
	Google__Cloud__Run__V2__RunJobRequest__Overrides__ContainerOverride *cop[1] = { &co };
	Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
	Google__Cloud__Run__V2__EnvVar ev[8], *evp[8];
	CU_ASSERT_FATAL(req->n_env <= 8);
	rq.name = req->name ? req->name : "";
	for (size_t i = 0; i < req->n_env; i++) {
		google__cloud__run__v2__env_var__init(&ev[i]);
		ev[i].name = (char *)req->env[i].key;
		ev[i].values_case = GOOGLE__CLOUD__RUN__V2__ENV_VAR__VALUES_VALUE;
		ev[i].value = (char *)(req->env[i].value ? req->env[i].value : "");
		evp[i] = &ev[i];
	}
	co.n_env = req->n_env;
	co.env = evp;
	if (req->container)
		co.name = req->container;
	if (req->has_args && req->n_args > 0) {
		co.n_args = req->n_args;
		co.args = req->args;
	} else if (req->has_args) {
		co.clear_args = 1;
	}
	int has_co = req->n_env > 0 || req->container || req->has_args;
	if (has_co) {
		ov.n_container_overrides = 1;
		ov.container_overrides = cop;
	}
	if (req->task_count > 0)
		ov.task_count = req->task_count;
	if (req->timeout_ms > 0) {
		timeout.seconds = req->timeout_ms / 1000;
		timeout.nanos = (int32_t)(req->timeout_ms % 1000) * 1000000;
		ov.timeout = &timeout;
	}
	if (has_co || req->task_count > 0 || req->timeout_ms > 0)
		rq.overrides = &ov;
	size_t n = google__cloud__run__v2__run_job_request__get_packed_size(&rq);
	*out = malloc(n ? n : 1);
	google__cloud__run__v2__run_job_request__pack(&rq, *out);
	return n;
}

/* runjob's hand-written encoder gives protobuf-c's bytes for every combination below. */
static void test_same_bytes(void)
{
	static char longv[300], longk[140];
	memset(longv, 'v', sizeof longv - 1);
	memset(longk, 'K', sizeof longk - 1);
	jr_kv envs[][3] = {
		{ { "INPUT", "gs://b/o" }, { "EMPTY", "" }, { "NUL", NULL } },
		{ { "", "no name" }, { longk, longv }, { "A", "1" } },
	};
	char *args_sets[][2] = { { "--input", "" }, { longv, "x" } };
	const char *names[] = { "projects/p/locations/l/jobs/j", "", NULL, longv };
	const char *containers[] = { NULL, "", "main" };
	int64_t timeouts[] = { 0, 1, 999, 1000, 600500, 86400000 };
	int tasks[] = { 0, 1, 200, 100000 };
	int checked = 0;
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 3; b++)
			for (size_t e = 0; e < 3; e++)
				for (size_t g = 0; g < 4; g++)
					for (size_t t = 0; t < 6; t++)
						for (size_t k = 0; k < 4; k++) {
							jr_runreq req = {
								.name = (char *)names[a],
								.container = (char *)containers[b],
								.env = e ? envs[e - 1] : NULL,
								.n_env = e ? 3 : 0,
								.args = g >= 2 ? args_sets[g - 2] : NULL,
								.n_args = g >= 2 ? 2 : 0,
								.has_args = g >= 1,
								.task_count = tasks[k],
								.timeout_ms = timeouts[t],
							};
							uint8_t *want;
							size_t n = pb_pack(&req, &want);
							jr_buf got;
							buf_init(&got, 0);
							CU_ASSERT_EQUAL_FATAL(runjob_encode(&req, &got), 0);
							CU_ASSERT_EQUAL(got.len, n);
							CU_ASSERT(got.len == n && !memcmp(got.data, want, n));
							buf_free(&got);
							free(want);
							checked++;
						}
	CU_ASSERT_EQUAL(checked, 4 * 3 * 3 * 4 * 6 * 4);
}

typedef struct op_case {
	const char *name, *exec_name, *log_uri, *type_url;
	int done, code;
	const char *message;
	int response; /* the oneof's response set instead of error */
} op_case;

/* op_pack: an Operation as the Run API sends it, packed by protobuf-c. */
static size_t op_pack(const op_case *c, uint8_t *out, size_t cap)
{
	Google__Cloud__Run__V2__Execution ex = GOOGLE__CLOUD__RUN__V2__EXECUTION__INIT;
	ex.name = (char *)c->exec_name;
	ex.log_uri = (char *)c->log_uri;
	ex.task_count = 3;
	ex.uid = "uid-1";
	uint8_t exb[2048];
	size_t exn = google__cloud__run__v2__execution__pack(&ex, exb);
	Google__Protobuf__Any meta = GOOGLE__PROTOBUF__ANY__INIT, resp = GOOGLE__PROTOBUF__ANY__INIT;
	meta.type_url = (char *)c->type_url;
	meta.value.data = exb;
	meta.value.len = exn;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = c->code;
	st.message = (char *)c->message;
	Google__Longrunning__Operation op = GOOGLE__LONGRUNNING__OPERATION__INIT;
	op.name = (char *)c->name;
	op.metadata = &meta;
	op.done = c->done;
	if (c->response) {
		op.result_case = GOOGLE__LONGRUNNING__OPERATION__RESULT_RESPONSE;
		op.response = &resp;
	} else if (c->message) {
		op.result_case = GOOGLE__LONGRUNNING__OPERATION__RESULT_ERROR;
		op.error = &st;
	}
	size_t n = google__longrunning__operation__get_packed_size(&op);
	CU_ASSERT_FATAL(n <= cap);
	return google__longrunning__operation__pack(&op, out);
}

static void decode(const uint8_t *b, size_t n, jr_runresult *r, jr_arena *a, char *msgbuf)
{
	memset(r, 0, sizeof *r);
	r->message = "";
	runjob_decode_operation(b, n, a, r, msgbuf);
}

static void test_operation(void)
{
	const char *exec = "projects/p/locations/l/jobs/j/executions/j-abc12";
	const char *uri = "https://console.cloud.google.com/logs/viewer?project=p";
	op_case ok = { "projects/p/locations/l/operations/op-1", exec, uri,
		       "type.googleapis.com/google.cloud.run.v2.Execution", 0, 0, NULL, 0 };
	uint8_t b[4096];
	char msgbuf[RUNJOB_MAX_MESSAGE + 1];
	jr_runresult r;
	jr_arena a;
	arena_init(&a);

	size_t n = op_pack(&ok, b, sizeof b);
	decode(b, n, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 0);
	CU_ASSERT_STRING_EQUAL(r.operation, ok.name);
	CU_ASSERT_STRING_EQUAL(r.execution, exec);
	CU_ASSERT_STRING_EQUAL(r.log_uri, uri);

	/* another type in the metadata: no execution read from it */
	op_case other = ok;
	other.type_url = "type.googleapis.com/google.cloud.run.v2.Job";
	n = op_pack(&other, b, sizeof b);
	decode(b, n, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 0);
	CU_ASSERT_PTR_NULL(r.execution);

	/* finished with an error: its code and message */
	op_case failed = ok;
	failed.done = 1;
	failed.code = 9;
	failed.message = "job is paused";
	n = op_pack(&failed, b, sizeof b);
	decode(b, n, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 9);
	CU_ASSERT_STRING_EQUAL(r.message, "job is paused");

	/* an error with code 0, an error while not done, a response: all OK */
	op_case zero = failed, notdone = failed, resp = failed;
	zero.code = 0;
	notdone.done = 0;
	resp.response = 1;
	const op_case *oks[] = { &zero, &notdone, &resp };
	for (size_t i = 0; i < 3; i++) {
		n = op_pack(oks[i], b, sizeof b);
		decode(b, n, &r, &a, msgbuf);
		CU_ASSERT_EQUAL(r.code, 0);
		CU_ASSERT_STRING_EQUAL(r.execution, exec);
	}

	/* a negative code (a 10-byte varint) */
	op_case neg = failed;
	neg.code = -5;
	n = op_pack(&neg, b, sizeof b);
	decode(b, n, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, -5);

	/* every truncation of a valid answer is INTERNAL or reads only complete fields */
	n = op_pack(&failed, b, sizeof b);
	for (size_t cut = 0; cut < n; cut++) {
		decode(b, cut, &r, &a, msgbuf);
		CU_ASSERT(r.code == 0 || r.code == 9 || r.code == 13);
		if (r.execution)
			CU_ASSERT_STRING_EQUAL(r.execution, exec);
	}
	/* a known field with the wrong wire type, a group, field number 0 */
	const uint8_t wrong[] = { 0x08, 0x01 }, group[] = { 0x0b }, zero_field[] = { 0x00, 0x00 };
	decode(wrong, sizeof wrong, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 13);
	decode(group, sizeof group, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 13);
	decode(zero_field, sizeof zero_field, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 13);
	/* empty: an Operation with nothing set */
	decode(b, 0, &r, &a, msgbuf);
	CU_ASSERT_EQUAL(r.code, 0);
	CU_ASSERT_STRING_EQUAL(r.operation, "");
	arena_free(&a);
}

static void check_routing(const char *name, const char *want)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(runjob_routing_header(name, &b), 0);
	CU_ASSERT_STRING_EQUAL(b.data, want);
	buf_free(&b);
}

static void test_routing(void)
{
	check_routing("projects/acme/locations/us-central1/jobs/ingest", "location=us-central1");
	check_routing("projects/acme/locations/a b/jobs/x", "location=a%20b");
	check_routing("projects/acme/locations/us-central1", "name=projects%2Facme%2Flocations%2Fus-central1");
	check_routing("projects//locations/l/jobs/j", "name=projects%2F%2Flocations%2Fl%2Fjobs%2Fj");
	check_routing("jobs/x~y.z_w-v", "name=jobs%2Fx~y.z_w-v");
}

static const cu_test tests[] = {
	{ "full", test_full },
	{ "clear_args", test_clear_args },
	{ "no_args", test_no_args },
	{ "name_only", test_name_only },
	{ "task_count_only", test_task_count_only },
	{ "many_env", test_many_env },
	{ "buf_max", test_buf_max },
	{ "same_bytes", test_same_bytes },
	{ "operation", test_operation },
	{ "routing", test_routing },
	{ NULL, NULL },
};

int main(void)
{
	return cu_run("runjob_encode", tests);
}
