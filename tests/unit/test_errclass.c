/* The error table, checked row by row against docs/reference.md (error
 * classes) and docs/policies.md (written out here independently of
 * retry/errclass.h). */
#include <stdio.h>
#include <string.h>

#include "cu.h"
#include "errclass.h"
#include "policy.h"

static void test_every_grpc_code(void)
{
	static const struct {
		int code;
		const char *name;
		const char *cls;
	} rows[] = {
		{1, "CANCELLED", "network"},
		{2, "UNKNOWN", "unknown"},
		{3, "INVALID_ARGUMENT", "invalid_event"},
		{4, "DEADLINE_EXCEEDED", "timeout"},
		{5, "NOT_FOUND", "invalid_request"},
		{6, "ALREADY_EXISTS", "invalid_request"},
		{7, "PERMISSION_DENIED", "permission"},
		{8, "RESOURCE_EXHAUSTED", "resource"},
		{9, "FAILED_PRECONDITION", "invalid_request"},
		{10, "ABORTED", "network"},
		{11, "OUT_OF_RANGE", "invalid_event"},
		{12, "UNIMPLEMENTED", "invalid_request"},
		{13, "INTERNAL", "network"},
		{14, "UNAVAILABLE", "network"},
		{15, "DATA_LOSS", "unknown"},
		{16, "UNAUTHENTICATED", "permission"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		CU_ASSERT_STRING_EQUAL(grpc_code_name(rows[i].code), rows[i].name);
		CU_ASSERT_STRING_EQUAL(errclass_name(errclass_from_grpc(rows[i].code)), rows[i].cls);
	}
	CU_ASSERT_EQUAL(errclass_from_grpc(17), JR_ERR_UNKNOWN);
	CU_ASSERT_EQUAL(errclass_from_grpc(-1), JR_ERR_UNKNOWN);
	CU_ASSERT_STRING_EQUAL(grpc_code_name(99), "UNKNOWN");
}

/* Which RunJob answers trip the job's breaker: an answer about one event's
 * arguments does not, an answer about the job or the deployment does. */
static void test_trips_by_code(void)
{
	static const struct {
		int code;
		int trips;
	} rows[] = {
		{3, 0},	 /* INVALID_ARGUMENT: an env value, an arg, a rendered job name */
		{11, 0}, /* OUT_OF_RANGE */
		{5, 1},	 /* NOT_FOUND: the job is missing */
		{6, 1},	 /* ALREADY_EXISTS */
		{7, 1},	 /* PERMISSION_DENIED */
		{9, 1},	 /* FAILED_PRECONDITION: the job's state */
		{12, 1}, /* UNIMPLEMENTED */
		{16, 1}, /* UNAUTHENTICATED */
		{14, 1}, /* UNAVAILABLE */
		{8, 0},	 /* RESOURCE_EXHAUSTED: the rate limiter's business */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int got = errclass_trips_breaker(errclass_from_grpc(rows[i].code));
		CU_ASSERT_EQUAL(got, rows[i].trips);
		if (got != rows[i].trips)
			fprintf(stderr, "\n%s: trips %d\n", grpc_code_name(rows[i].code), got);
	}
}

static void test_class_rows(void)
{
	static const struct {
		const char *cls;
		jr_action act;
		int attempts;
		int64_t ini, max;
		int trips;
	} rows[] = {
		{"invalid_event", JR_ACT_DEAD_LETTER, 1, 0, 0, 0},
		{"invalid_request", JR_ACT_DEAD_LETTER, 1, 0, 0, 1},
		{"permission", JR_ACT_RETRY, 10, 30000, 600000, 1},
		{"resource", JR_ACT_RETRY, 20, 5000, 600000, 0},
		{"timeout", JR_ACT_RETRY, 5, 2000, 300000, 1},
		{"network", JR_ACT_RETRY, 8, 1000, 300000, 1},
		{"application", JR_ACT_DEAD_LETTER, 1, 0, 0, 0},
		{"unknown", JR_ACT_RETRY, 3, 1000, 60000, 1},
		/* no token: held until one can be had, never an attempt or a dead letter */
		{"credentials", JR_ACT_HOLD, 0, 500, 10000, 0},
	};
	jr_policies ps;
	policies_default(&ps);
	CU_ASSERT_EQUAL(JR_ERR__COUNT, sizeof rows / sizeof rows[0]);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int c = errclass_parse(rows[i].cls);
		CU_ASSERT_FATAL(c >= 0);
		CU_ASSERT_STRING_EQUAL(errclass_name((jr_errclass)c), rows[i].cls);
		CU_ASSERT_EQUAL(ps.cls[c].action, rows[i].act);
		CU_ASSERT_EQUAL(ps.cls[c].max_attempts, rows[i].attempts);
		CU_ASSERT_EQUAL(ps.cls[c].initial_ms, rows[i].ini);
		CU_ASSERT_EQUAL(ps.cls[c].max_ms, rows[i].max);
		CU_ASSERT_EQUAL(errclass_trips_breaker((jr_errclass)c), rows[i].trips);
	}
	CU_ASSERT_EQUAL(errclass_parse("nope"), -1);
	CU_ASSERT_STRING_EQUAL(errclass_name((jr_errclass)99), "?");
}

static void test_actions(void)
{
	CU_ASSERT_EQUAL(action_parse("retry"), JR_ACT_RETRY);
	CU_ASSERT_EQUAL(action_parse("dead_letter"), JR_ACT_DEAD_LETTER);
	CU_ASSERT_EQUAL(action_parse("drop"), JR_ACT_DROP);
	CU_ASSERT_EQUAL(action_parse("retry "), -1);
	CU_ASSERT_EQUAL(action_parse("hold"), -1); /* named, not configurable */
	CU_ASSERT_STRING_EQUAL(action_name(JR_ACT_HOLD), "hold");
	CU_ASSERT_STRING_EQUAL(action_name(JR_ACT_DEAD_LETTER), "dead_letter");
}

int main(void)
{
	static const cu_test tests[] = {
		{"every gRPC code maps to its class", test_every_grpc_code},
		{"class defaults per the table", test_class_rows},
		{"which answers trip the breaker", test_trips_by_code},
		{"action names", test_actions},
		{NULL, NULL},
	};
	return cu_run("errclass", tests);
}
