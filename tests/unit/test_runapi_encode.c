/*
 * test_runapi_encode.c — the RunJobRequest bytes runapi sends, read back
 * with protobuf-c's generated decoder, and the x-goog-request-params value.
 */
#include "cu.h"

#include <string.h>

#include "google/cloud/run/v2/job.pb-c.h"
#include "runapi.h"

typedef Google__Cloud__Run__V2__RunJobRequest RunJobRequest;

static RunJobRequest *encode_decode(const jr_runreq *req)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL_FATAL(runapi_encode(req, &b), 0);
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
	CU_ASSERT_EQUAL(runapi_encode(&req, &b), -1);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
}

static void check_routing(const char *name, const char *want)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(runapi_routing_header(name, &b), 0);
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
	{ "routing", test_routing },
	{ NULL, NULL },
};

int main(void)
{
	return cu_run("runapi_encode", tests);
}
