/*
 * test_jobctl.c — the pure pieces of job control: an execution's state from
 * its Completed condition and counts, env lookup, the JSON records the
 * commands print, times, and execution names from ids.
 */
#include "cu.h"

#include <string.h>

#include "google/cloud/run/v2/condition.pb-c.h"
#include "jobctl.h"
#include "runexec.h"

enum {
	RECONCILING = GOOGLE__CLOUD__RUN__V2__CONDITION__STATE__CONDITION_RECONCILING,
	FAILED = GOOGLE__CLOUD__RUN__V2__CONDITION__STATE__CONDITION_FAILED,
	SUCCEEDED = GOOGLE__CLOUD__RUN__V2__CONDITION__STATE__CONDITION_SUCCEEDED,
};

static void test_state(void)
{
	jr_execution e = {0};
	CU_ASSERT_EQUAL(runexec_exec_state(-1, NULL, NULL, &e), JR_EXEC_PENDING);
	e.start_ms = 1;
	CU_ASSERT_EQUAL(runexec_exec_state(RECONCILING, NULL, "running", &e), JR_EXEC_RUNNING);
	CU_ASSERT_EQUAL(runexec_exec_state(SUCCEEDED, NULL, NULL, &e), JR_EXEC_SUCCEEDED);
	e.failed = 1;
	CU_ASSERT_EQUAL(runexec_exec_state(FAILED, "NON_ZERO_EXIT_CODE", "exit 3", &e), JR_EXEC_FAILED);
	CU_ASSERT_EQUAL(runexec_exec_state(FAILED, NULL, "Task x-0 timed out after 600s", &e),
			JR_EXEC_TIMED_OUT);
	CU_ASSERT_EQUAL(runexec_exec_state(FAILED, NULL, "the configured TIMEOUT was reached", &e),
			JR_EXEC_TIMED_OUT);
	CU_ASSERT_EQUAL(runexec_exec_state(FAILED, "CANCELLED", "cancelled", &e), JR_EXEC_CANCELLED);
	e.failed = 0;
	e.cancelled = 2;
	CU_ASSERT_EQUAL(runexec_exec_state(FAILED, NULL, "stopped", &e), JR_EXEC_CANCELLED);
	/* no Completed condition: the counts and completion time decide */
	e.completion_ms = 5;
	CU_ASSERT_EQUAL(runexec_exec_state(-1, NULL, NULL, &e), JR_EXEC_CANCELLED);
	e.cancelled = 0;
	CU_ASSERT_EQUAL(runexec_exec_state(-1, NULL, NULL, &e), JR_EXEC_SUCCEEDED);
	e.failed = 1;
	CU_ASSERT_EQUAL(runexec_exec_state(-1, NULL, NULL, &e), JR_EXEC_FAILED);
	CU_ASSERT_STRING_EQUAL(runexec_state_name(JR_EXEC_TIMED_OUT), "TIMED_OUT");
	CU_ASSERT_FALSE(runexec_state_done(JR_EXEC_RUNNING));
	CU_ASSERT_TRUE(runexec_state_done(JR_EXEC_CANCELLED));
}

static void test_env(void)
{
	jr_kv env[] = {{"A", "1"}, {"JOBRELAY_KEY", "old"}, {"SECRET", NULL}, {"JOBRELAY_KEY", "k2"}};
	jr_execution e = {.env = env, .n_env = 4};
	CU_ASSERT_STRING_EQUAL(runexec_env_get(&e, "JOBRELAY_KEY"), "k2");
	CU_ASSERT_PTR_NULL(runexec_env_get(&e, "SECRET"));
	CU_ASSERT_PTR_NULL(runexec_env_get(&e, "B"));
}

static void test_time(void)
{
	char t[32];
	jobctl_time(0, t);
	CU_ASSERT_STRING_EQUAL(t, "");
	jobctl_time(1795000000123LL, t);
	CU_ASSERT_STRING_EQUAL(t, "2026-11-18T11:06:40.123Z");
}

static void test_exec_json(void)
{
	jr_kv env[] = {{"K", "v\"q"}, {"S", NULL}};
	jr_execution e = {
		.name = "projects/p/locations/l/jobs/j/executions/j-abcde", .job = "j",
		.state = JR_EXEC_FAILED, .task_count = 2, .failed = 2, .create_ms = 1795000000000LL,
		.log_uri = "https://x", .reason = "exit 3", .exec_reason = "NON_ZERO_EXIT_CODE",
		.env = env, .n_env = 2,
	};
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(jobctl_exec_json(&b, &e), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		"{\"name\":\"projects/p/locations/l/jobs/j/executions/j-abcde\",\"job\":\"j\","
		"\"state\":\"FAILED\",\"taskCount\":2,\"running\":0,\"succeeded\":0,\"failed\":2,"
		"\"cancelled\":0,\"retried\":0,\"createTime\":\"2026-11-18T11:06:40.000Z\","
		"\"startTime\":null,\"completionTime\":null,\"logUri\":\"https://x\","
		"\"reason\":\"exit 3\",\"executionReason\":\"NON_ZERO_EXIT_CODE\","
		"\"env\":{\"K\":\"v\\\"q\",\"S\":null}}");
	buf_free(&b);
}

static void test_job_json(void)
{
	jr_kv labels[] = {{"team", "a"}};
	jr_job j = {.name = "projects/p1/locations/us-east1/jobs/ok", .labels = labels, .n_labels = 1,
		    .execution_count = 3, .last_execution = "projects/p1/locations/us-east1/jobs/ok/executions/ok-1",
		    .last_state = "RUNNING", .last_create_ms = 1795000000000LL};
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(jobctl_job_json(&b, &j), 0);
	CU_ASSERT_STRING_EQUAL(b.data,
		"{\"name\":\"projects/p1/locations/us-east1/jobs/ok\",\"project\":\"p1\","
		"\"region\":\"us-east1\",\"job\":\"ok\",\"labels\":{\"team\":\"a\"},\"executionCount\":3,"
		"\"lastExecution\":{\"name\":\"projects/p1/locations/us-east1/jobs/ok/executions/ok-1\","
		"\"state\":\"RUNNING\",\"createTime\":\"2026-11-18T11:06:40.000Z\"}}");
	buf_reset(&b);
	jr_job none = {.name = "projects/p/locations/l/jobs/x"};
	jobctl_job_json(&b, &none);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\"labels\":{},\"executionCount\":0,\"lastExecution\":null}"));
	buf_free(&b);
}

static void test_exec_name(void)
{
	char *n = jobctl_exec_name("my-job-x1y2z", "p", "l");
	CU_ASSERT_STRING_EQUAL(n, "projects/p/locations/l/jobs/my-job/executions/my-job-x1y2z");
	free(n);
	n = jobctl_exec_name("projects/a/locations/b/jobs/c/executions/c-1", NULL, NULL);
	CU_ASSERT_STRING_EQUAL(n, "projects/a/locations/b/jobs/c/executions/c-1");
	free(n);
	CU_ASSERT_PTR_NULL(jobctl_exec_name("projects/a/locations/b/jobs/c", "p", "l"));
	CU_ASSERT_PTR_NULL(jobctl_exec_name("nodash", "p", "l"));
	CU_ASSERT_PTR_NULL(jobctl_exec_name("job-abc", NULL, "l"));
	CU_ASSERT_PTR_NULL(jobctl_exec_name("a/b-c", "p", "l"));
	CU_ASSERT_PTR_NULL(jobctl_exec_name("trailing-", "p", "l"));
}

int main(void)
{
	static const cu_test tests[] = {
		{"state", test_state}, {"env", test_env}, {"time", test_time},
		{"exec_json", test_exec_json}, {"job_json", test_job_json},
		{"exec_name", test_exec_name}, {NULL, NULL},
	};
	return cu_run("jobctl", tests);
}
