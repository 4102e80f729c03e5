/*
 * test_runjob.c — the RunJob client without a server: endpoint parsing, and
 * calls to loopback sockets that refuse or never answer (deadline, cancel on
 * runjob_free). Only 127.0.0.1 is ever contacted; RunJob answers from a real
 * server are covered by the integration tests against tests/peers/runfake.
 */
#include "cu.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "runjob.h"

#define JOB "projects/acme/locations/us-central1/jobs/ingest"

static char *args0[] = { "--x" };
static jr_kv env0[] = { { "A", "1" } };
static jr_runreq req0 = {
	.name = JOB, .env = env0, .n_env = 1, .args = args0, .n_args = 1, .has_args = 1,
};

typedef struct result {
	int calls;
	int code;
	int64_t retry_delay_ms;
	int64_t latency_ms;
	char message[256];
	int run_again_rc; /* what runjob_run returned from inside the callback */
} result;

static jr_runjob *g_api;

static void on_done(void *arg, const jr_runresult *r)
{
	result *res = arg;
	res->calls++;
	res->code = r->code;
	res->retry_delay_ms = r->retry_delay_ms;
	res->latency_ms = r->latency_ms;
	snprintf(res->message, sizeof res->message, "%s", r->message);
	res->run_again_rc = g_api ? runjob_run(g_api, &req0, 1000, on_done, arg) : 99;
}

/* listener: a 127.0.0.1 socket on a free port; listening (never accepting) or closed. */
static int listener(int listening, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	*port = ntohs(sa.sin_port);
	if (listening) {
		CU_ASSERT_FATAL(listen(fd, 16) == 0);
		return fd;
	}
	close(fd);
	return -1;
}

static jr_runjob *client_for_port(jr_loop *l, int port)
{
	char ep[64], err[256] = "";
	snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
	jr_runjob *c = runjob_new(l, ep, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(c);
	return c;
}

static void run_until_calls(jr_loop *l, const int *calls, int n)
{
	int64_t end = loop_now_ms() + 10000;
	while (*calls < n && loop_now_ms() < end)
		loop_run_once(l, end - loop_now_ms());
}

static void expect_invalid(jr_loop *l, const char *ep)
{
	char err[256] = "";
	jr_runjob *c = runjob_new(l, ep, err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_TRUE(err[0] != '\0');
	if (c)
		runjob_free(c);
}

static void expect_target(jr_loop *l, const char *ep, const char *want)
{
	char err[256] = "";
	jr_runjob *c = runjob_new(l, ep, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(runjob_target(c), want);
	CU_ASSERT_EQUAL(runjob_in_flight(c), 0);
	runjob_free(c);
}

static void test_endpoints(void)
{
	jr_loop *l = loop_new();
	const char *bad[] = { "nohost", "host:", ":80", "host:0", "host:65536", "host:12a",
			      "::1:80", "[::1]", "[::1]80", "[]:80", "host:123456" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(l, bad[i]);
	expect_target(l, "127.0.0.1:1", "127.0.0.1:1 (plaintext)");
	expect_target(l, "127.9.8.7:65535", "127.9.8.7:65535 (plaintext)");
	expect_target(l, "localhost:50051", "localhost:50051 (plaintext)");
	expect_target(l, "[::1]:50051", "[::1]:50051 (plaintext)");
	expect_target(l, "[::ffff:127.0.0.1]:8", "[::ffff:127.0.0.1]:8 (plaintext)");
	setenv("JOBRELAY_RUN_ENDPOINT", "127.0.0.1:7", 1);
	expect_target(l, NULL, "127.0.0.1:7 (plaintext)");
	unsetenv("JOBRELAY_RUN_ENDPOINT");
	loop_free(l);
}

/* A refused connection: UNAVAILABLE, delivered by the loop, never by runjob_run. */
static void test_refused(void)
{
	jr_loop *l = loop_new();
	int port;
	listener(0, &port);
	jr_runjob *c = client_for_port(l, port);
	result res = { 0 };
	g_api = NULL;
	CU_ASSERT_EQUAL(runjob_run(c, &req0, 5000, on_done, &res), 0);
	CU_ASSERT_EQUAL(res.calls, 0);
	CU_ASSERT_EQUAL(runjob_in_flight(c), 1);
	run_until_calls(l, &res.calls, 1);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.code, GRPC_STATUS_UNAVAILABLE);
	CU_ASSERT_EQUAL(res.retry_delay_ms, -1);
	CU_ASSERT_TRUE(res.message[0] != '\0');
	CU_ASSERT_EQUAL(runjob_in_flight(c), 0);
	runjob_free(c);
	loop_free(l);
}

/* A server that never answers: DEADLINE_EXCEEDED after the call's timeout. */
static void test_deadline(void)
{
	jr_loop *l = loop_new();
	int port;
	int fd = listener(1, &port);
	jr_runjob *c = client_for_port(l, port);
	result res = { 0 };
	g_api = NULL;
	int64_t t0 = loop_now_ms();
	CU_ASSERT_EQUAL(runjob_run(c, &req0, 200, on_done, &res), 0);
	run_until_calls(l, &res.calls, 1);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_TRUE(loop_now_ms() - t0 >= 190);
	CU_ASSERT_TRUE(res.latency_ms >= 190);
	runjob_free(c);
	loop_free(l);
	close(fd);
}

/* runjob_free cancels calls in flight; each callback runs once, with CANCELLED, inside it. */
static void test_free_cancels(void)
{
	jr_loop *l = loop_new();
	int port;
	int fd = listener(1, &port);
	jr_runjob *c = client_for_port(l, port);
	result res[3] = { { 0 } };
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(runjob_run(c, &req0, 60000, on_done, &res[i]), 0);
	CU_ASSERT_EQUAL(runjob_in_flight(c), 3);
	loop_run_once(l, 20); /* let them get going */
	g_api = c;            /* callbacks try to start another call: refused while freeing */
	runjob_free(c);
	g_api = NULL;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(res[i].calls, 1);
		CU_ASSERT_EQUAL(res[i].code, GRPC_STATUS_CANCELLED);
		CU_ASSERT_EQUAL(res[i].run_again_rc, -1);
	}
	loop_free(l);
	close(fd);
}

/* A call that cannot start returns -1 and never calls back. */
static void test_start_failure(void)
{
	jr_loop *l = loop_new();
	jr_runjob *c = client_for_port(l, 1);
	static char longname[5000];
	memset(longname, 'a', sizeof longname - 1);
	jr_runreq req = { .name = longname };
	jr_runreq noname = { .name = NULL };
	result res = { 0 };
	CU_ASSERT_EQUAL(runjob_run(c, &req, 1000, on_done, &res), -1);
	CU_ASSERT_EQUAL(runjob_run(c, &noname, 1000, on_done, &res), -1);
	CU_ASSERT_EQUAL(runjob_in_flight(c), 0);
	loop_run_once(l, 0);
	CU_ASSERT_EQUAL(res.calls, 0);
	runjob_free(c);
	loop_free(l);
}

static const cu_test tests[] = {
	{ "endpoints", test_endpoints },
	{ "refused", test_refused },
	{ "deadline", test_deadline },
	{ "free_cancels", test_free_cancels },
	{ "start_failure", test_start_failure },
	{ NULL, NULL },
};

int main(void)
{
	/* Nothing here may look for credentials: every endpoint is loopback. */
	unsetenv("JOBRELAY_RUN_ENDPOINT");
	unsetenv("JOBRELAY_RUN_INSECURE");
	grpc_init();
	int rc = cu_run("runjob", tests);
	grpc_shutdown();
	return rc;
}
