/*
 * Trace contexts out of traceparent and X-Cloud-Trace-Context values, and the
 * child traceparent (src/base/trace.h).
 */
#include <string.h>

#include "cu.h"
#include "trace.h"

#define ID "4bf92f3577b34da6a3ce929d0e0e4736"

/* The trace id alone of each form, through the parsers. */
static int tp_id(const char *v, char out[33])
{
	jr_trace t;
	if (trace_parse_traceparent(v, &t) < 0)
		return -1;
	memcpy(out, t.id, 33);
	return 0;
}

static int xc_id(const char *v, char out[33])
{
	jr_trace t;
	if (trace_parse_cloud_context(v, &t) < 0)
		return -1;
	memcpy(out, t.id, 33);
	return 0;
}

static int any_id(const char *v, char out[33])
{
	jr_trace t;
	if (trace_parse(v, &t) < 0)
		return -1;
	memcpy(out, t.id, 33);
	return 0;
}

static void test_traceparent(void)
{
	char out[33];
	CU_ASSERT_EQUAL(tp_id("00-" ID "-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(tp_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID); /* lower-cased */
	CU_ASSERT_EQUAL(tp_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01", out), -1);
	CU_ASSERT_EQUAL(tp_id("00-" ID "-00f067aa0ba902b7", out), -1); /* short */
	CU_ASSERT_EQUAL(tp_id("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", out), -1);
	CU_ASSERT_EQUAL(tp_id(ID "/1;o=1", out), -1); /* the other form */
	CU_ASSERT_EQUAL(tp_id(NULL, out), -1);
}

static void test_cloud_context(void)
{
	char out[33];
	CU_ASSERT_EQUAL(xc_id(ID "/123;o=1", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(xc_id(ID, out), 0);
	CU_ASSERT_EQUAL(xc_id(ID "x", out), -1);
	CU_ASSERT_EQUAL(xc_id("4bf92f35", out), -1);
	CU_ASSERT_EQUAL(xc_id(NULL, out), -1);
}

static void test_either(void)
{
	char out[33];
	CU_ASSERT_EQUAL(any_id("00-" ID "-00f067aa0ba902b7-01", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(any_id(ID "/9", out), 0);
	CU_ASSERT_STRING_EQUAL(out, ID);
	CU_ASSERT_EQUAL(any_id("not a trace", out), -1);
}

#define SPAN "00f067aa0ba902b7"

static void test_parse_traceparent(void)
{
	jr_trace t;
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent("00-" ID "-" SPAN "-01", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.id, ID);
	CU_ASSERT_STRING_EQUAL(t.span, SPAN);
	CU_ASSERT_EQUAL(t.flags, 1);
	CU_ASSERT_EQUAL(trace_sampled(&t), 1);
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent("00-" ID "-00F067AA0BA902B7-02", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.span, SPAN); /* lower-cased */
	CU_ASSERT_EQUAL(t.flags, 2);
	CU_ASSERT_EQUAL(trace_sampled(&t), 0);
	/* a later version may carry more after a '-' */
	CU_ASSERT_EQUAL(trace_parse_traceparent("01-" ID "-" SPAN "-00-more", &t), 0);
	CU_ASSERT_EQUAL(trace_parse_traceparent("01-" ID "-" SPAN "-00", &t), 0);
	static const char *const bad[] = {
		"00-" ID "-" SPAN "-01-more",       /* version 00 is 55 characters */
		"01-" ID "-" SPAN "-00more",        /* more, but not after a '-' */
		"ff-" ID "-" SPAN "-01",            /* version ff is invalid */
		"0g-" ID "-" SPAN "-01",
		"00-" ID "-0000000000000000-01",    /* zero parent */
		"00-" ID "-" SPAN "-0x",
		"00-" ID "_" SPAN "-01",
		"00-" ID "-" SPAN "_01",
		"00-" ID "-00f067aa0ba902b-01",     /* short span */
		"00-" ID "-" SPAN "-1",
		"",
		ID "/1;o=1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(trace_parse_traceparent(bad[i], &t), -1);
}

static void test_parse_cloud_context(void)
{
	jr_trace t;
	/* the span is decimal: 67667974448284343 is 0xf067aa0ba902b7 */
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID "/67667974448284343;o=1", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.id, ID);
	CU_ASSERT_STRING_EQUAL(t.span, SPAN);
	CU_ASSERT_EQUAL(trace_sampled(&t), 1);
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID "/18446744073709551615;o=0", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.span, "ffffffffffffffff");
	CU_ASSERT_EQUAL(trace_sampled(&t), 0);
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID "/1", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.span, "0000000000000001");
	CU_ASSERT_EQUAL(trace_sampled(&t), 0);
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID ";o=1", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.span, ""); /* no span */
	CU_ASSERT_EQUAL(trace_sampled(&t), 1);
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID "/0", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.span, ""); /* 0 is no span */
	static const char *const bad[] = {
		ID "/18446744073709551616",   /* past 64 bits */
		ID "/123456789012345678901",  /* 21 digits */
		ID "/abc",
		ID "/",
		ID "/12;o=",
		ID "/12;o=1x",
		ID "/12 ",
		"00000000000000000000000000000000/1",
		"4bf92f35",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(trace_parse_cloud_context(bad[i], &t), -1);
	CU_ASSERT_EQUAL(trace_parse_cloud_context(NULL, &t), -1);
	CU_ASSERT_EQUAL(trace_parse(ID "/12;o=1", &t), 0);
	CU_ASSERT_EQUAL(trace_parse("00-" ID "-" SPAN "-01", &t), 0);
	CU_ASSERT_EQUAL(trace_parse("00-" ID "-" SPAN, &t), -1);
}

/* The dispatch span: 16 hex, not 0, not the parent; one per trace and key. */
static void test_dispatch_span(void)
{
	jr_trace t;
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent("00-" ID "-" SPAN "-01", &t), 0);
	char a[17], b[17], c[17];
	trace_dispatch_span(&t, 42, a);
	trace_dispatch_span(&t, 42, b);
	trace_dispatch_span(&t, 43, c);
	CU_ASSERT_EQUAL(strlen(a), 16);
	CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 16);
	CU_ASSERT_NOT_EQUAL(strspn(a, "0"), 16);
	CU_ASSERT_STRING_NOT_EQUAL(a, SPAN);
	CU_ASSERT_STRING_EQUAL(a, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, c);

	char tp[TRACE_PARENT_LEN + 1];
	trace_child(&t, a, tp);
	jr_trace ch;
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent(tp, &ch), 0);
	CU_ASSERT_EQUAL(strncmp(tp, "00-", 3), 0);
	CU_ASSERT_STRING_EQUAL(ch.id, ID);
	CU_ASSERT_STRING_EQUAL(ch.span, a);
	CU_ASSERT_EQUAL(ch.flags, 1);
	/* the flags pass on as they came; an X-Cloud-Trace-Context's o=1 becomes 01 */
	CU_ASSERT_EQUAL_FATAL(trace_parse_traceparent("00-" ID "-" SPAN "-00", &t), 0);
	trace_child(&t, a, tp);
	CU_ASSERT_STRING_EQUAL(tp + 53, "00");
	CU_ASSERT_EQUAL_FATAL(trace_parse_cloud_context(ID "/5;o=1", &t), 0);
	trace_dispatch_span(&t, 42, a);
	trace_child(&t, a, tp);
	CU_ASSERT_EQUAL(trace_parse_traceparent(tp, &ch), 0);
	CU_ASSERT_STRING_EQUAL(tp + 53, "01");
}

int main(void)
{
	static const cu_test tests[] = {
		{"traceparent", test_traceparent},
		{"X-Cloud-Trace-Context", test_cloud_context},
		{"either form", test_either},
		{"parse traceparent", test_parse_traceparent},
		{"parse X-Cloud-Trace-Context", test_parse_cloud_context},
		{"dispatch span and child traceparent", test_dispatch_span},
		{NULL, NULL},
	};
	return cu_run("trace", tests);
}
