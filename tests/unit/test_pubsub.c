/*
 * test_pubsub.c — the StreamingPull session without a server: the routing
 * header, endpoints (PUBSUB_EMULATOR_HOST and its errors), the keepalive
 * interval's variable, and a session that is created and freed without ever
 * being started. Everything that
 * talks to a server is tested against Google's pstest in
 * tests/integration/test_pull*.sh.
 */
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "cu.h"
#include "loop.h"
#include "pubsub.h"

static void on_message(void *arg, const jr_pubsub_msg *m)
{
	(void)arg;
	(void)m;
}

static jr_pubsub *session(jr_loop *l, const char *sub, const char *endpoint, char *err, size_t n)
{
	jr_pubsub_opts o = { .subscription = sub, .endpoint = endpoint, .ack_deadline_s = 60,
			     .on_message = on_message };
	return pubsub_new(l, &o, err, n);
}

static void test_routing_header(void)
{
	char out[256];
	size_t n = pubsub_routing_header("projects/p-1/subscriptions/my_sub.v2~x", out, sizeof out);
	CU_ASSERT_STRING_EQUAL(out, "subscription=projects%2Fp-1%2Fsubscriptions%2Fmy_sub.v2~x");
	CU_ASSERT_EQUAL(n, strlen(out));
	n = pubsub_routing_header("projects/p/subscriptions/a b+c", out, sizeof out);
	CU_ASSERT_STRING_EQUAL(out, "subscription=projects%2Fp%2Fsubscriptions%2Fa%20b%2Bc");
	/* too small for the worst case: nothing written */
	CU_ASSERT_EQUAL(pubsub_routing_header("projects/p/subscriptions/s", out, 20), 0);
}

static void test_endpoints(void)
{
	jr_loop *l = loop_new();
	char err[256];
	const char *sub = "projects/p/subscriptions/s";
	const char *bad[] = { "nohost", "host:", ":80", "host:0", "host:65536", "[::1]" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		jr_pubsub *ps = session(l, sub, bad[i], err, sizeof err);
		CU_ASSERT_PTR_NULL(ps);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "pubsub endpoint"));
		pubsub_free(ps);
	}
	CU_ASSERT_PTR_NULL(session(l, "", "127.0.0.1:1", err, sizeof err));

	/* PUBSUB_EMULATOR_HOST: plaintext whatever the host (Google's convention), nothing looked up */
	setenv("PUBSUB_EMULATOR_HOST", "emulator.internal:8085", 1);
	jr_pubsub *ps = session(l, sub, NULL, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
	CU_ASSERT_STRING_EQUAL(pubsub_target(ps), "emulator.internal:8085 (plaintext)");
	CU_ASSERT_EQUAL(pubsub_state(ps), JR_PUBSUB_IDLE);
	CU_ASSERT_STRING_EQUAL(pubsub_state_name(pubsub_state(ps)), "idle");
	pubsub_free(ps);
	unsetenv("PUBSUB_EMULATOR_HOST");

	ps = session(l, sub, "[::1]:8085", err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
	CU_ASSERT_STRING_EQUAL(pubsub_target(ps), "[::1]:8085 (plaintext)");
	pubsub_free(ps);
	loop_free(l);
}

/* Acks queued on a session that never started stay queued; closing it ends at once. */
static void test_unstarted(void)
{
	jr_loop *l = loop_new();
	char err[256];
	jr_pubsub *ps = session(l, "projects/p/subscriptions/s", "127.0.0.1:1", err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ps);
	pubsub_ack(ps, "ack-1");
	pubsub_modack(ps, "ack-2", 30);
	pubsub_modack(ps, "ack-3", 0);
	pubsub_modack(ps, "ack-4", 9999); /* capped at 600 */
	CU_ASSERT_EQUAL(pubsub_queued(ps), 4);
	pubsub_close(ps);
	CU_ASSERT_EQUAL(pubsub_state(ps), JR_PUBSUB_CLOSED);
	CU_ASSERT_EQUAL(pubsub_stats(ps)->requests, 0);
	pubsub_free(ps);
	loop_free(l);
}

/* JOBRELAY_PUBSUB_KEEPALIVE_MS: milliseconds, 1000-300000; anything else refuses the session. */
static void test_keepalive_env(void)
{
	jr_loop *l = loop_new();
	char err[256];
	const char *sub = "projects/p/subscriptions/s";
	const char *bad[] = { "999", "300001", "30s", "-1", "1000x" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("JOBRELAY_PUBSUB_KEEPALIVE_MS", bad[i], 1);
		err[0] = '\0';
		jr_pubsub *ps = session(l, sub, "127.0.0.1:1", err, sizeof err);
		CU_ASSERT_PTR_NULL(ps);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "JOBRELAY_PUBSUB_KEEPALIVE_MS"));
		pubsub_free(ps);
	}
	const char *good[] = { "1000", "300000", "" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		setenv("JOBRELAY_PUBSUB_KEEPALIVE_MS", good[i], 1);
		jr_pubsub *ps = session(l, sub, "127.0.0.1:1", err, sizeof err);
		CU_ASSERT_PTR_NOT_NULL(ps);
		pubsub_free(ps);
	}
	unsetenv("JOBRELAY_PUBSUB_KEEPALIVE_MS");
	loop_free(l);
}

static const cu_test tests[] = {
	{ "routing header", test_routing_header },
	{ "endpoints", test_endpoints },
	{ "unstarted session", test_unstarted },
	{ "keepalive interval from the environment", test_keepalive_env },
	{ NULL, NULL },
};

int main(void)
{
	/* Nothing here may look for credentials: every endpoint is an emulator's. */
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	grpc_init();
	int rc = cu_run("pubsub", tests);
	grpc_shutdown();
	return rc;
}
