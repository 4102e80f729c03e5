/* Trace ids out of traceparent and X-Cloud-Trace-Context values (src/base/trace.h). */
#include <string.h>

#include "cu.h"
#include "trace.h"

#define ID "4bf92f3577b34da6a3ce929d0e0e4736"

static void test_traceparent(void)
{
	char out[33];
	CU_ASSERT_EQUAL(trace_from_traceparent("00-" ID "-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(trace_from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID); /* lower-cased */
	CU_ASSERT_EQUAL(trace_from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", out), -1);
	CU_ASSERT_EQUAL(trace_from_traceparent("00-" ID "-00f067aa0ba902b7", out), -1); /* short */
	CU_ASSERT_EQUAL(trace_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", out), -1);
	CU_ASSERT_EQUAL(trace_from_traceparent(ID "/1;o=1", out), -1); /* the other form */
	CU_ASSERT_EQUAL(trace_from_traceparent(NULL, out), -1);
}

static void test_cloud_context(void)
{
	char out[33];
	CU_ASSERT_EQUAL(trace_from_cloud_context(ID "/123;o=1", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(trace_from_cloud_context(ID, out), 0);
	CU_ASSERT_EQUAL(trace_from_cloud_context(ID "x", out), -1);
	CU_ASSERT_EQUAL(trace_from_cloud_context("4bf92f35", out), -1);
	CU_ASSERT_EQUAL(trace_from_cloud_context(NULL, out), -1);
}

static void test_either(void)
{
	char out[33];
	CU_ASSERT_EQUAL(trace_id_of("00-" ID "-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(trace_id_of(ID "/9", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(trace_id_of("not a trace", out), -1);
}

int main(void)
{
	static const cu_test tests[] = {
		{"traceparent", test_traceparent},
		{"X-Cloud-Trace-Context", test_cloud_context},
		{"either form", test_either},
		{NULL, NULL},
	};
	return cu_run("trace", tests);
}
