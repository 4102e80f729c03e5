/*
 * runjob_bench — drives runjob against a RunJob server (the runfake on
 * loopback) and reports CPU per call of this process (gRPC core, kernel and
 * jobrelay's code together, from getrusage).
 *
 *   runjob_bench ENDPOINT JOB_NAME N CONCURRENCY [--cancel] [--timeout-ms T]
 *
 * One warm-up call opens the connection first. With N <= 10 every result is
 * printed. --cancel starts CONCURRENCY calls and frees the client at once:
 * each callback must report CANCELLED. Exit 0 when every call returned OK
 * (or, with --cancel, CANCELLED), else 1; 2 for usage.
 *
 * Built by bench/CMakeLists.txt (JR_BENCH); bench/run.sh runs it against the
 * Run API fake, next to replay (docs/benchmarks.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <grpc/grpc.h>

#include "runjob.h"

typedef struct bench {
	jr_runjob *api;
	jr_runreq req;
	int64_t timeout_ms;
	int total, started, done, ok, verbose, stopping;
	int codes[17];
} bench;

static void on_done(void *arg, const jr_runresult *r);

static void start_one(bench *b)
{
	if (b->stopping || b->started >= b->total)
		return;
	b->started++;
	if (runjob_run(b->api, &b->req, b->timeout_ms, on_done, b) < 0) {
		fprintf(stderr, "runjob_bench: runjob_run failed\n");
		exit(1);
	}
}

static void on_done(void *arg, const jr_runresult *r)
{
	bench *b = arg;
	b->done++;
	b->ok += r->code == 0;
	b->codes[r->code >= 0 && r->code < 17 ? r->code : 2]++;
	if (b->verbose)
		printf("code=%d message=\"%s\" operation=%s execution=%s log_uri=%s "
		       "retry_delay_ms=%lld latency_ms=%lld\n",
		       r->code, r->message, r->operation ? r->operation : "-",
		       r->execution ? r->execution : "-", r->log_uri ? r->log_uri : "-",
		       (long long)r->retry_delay_ms, (long long)r->latency_ms);
	start_one(b);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: runjob_bench ENDPOINT JOB_NAME N CONCURRENCY [--cancel] [--timeout-ms T]\n");
		return 2;
	}
	int cancel = 0;
	bench b = { .timeout_ms = 10000 };
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--cancel"))
			cancel = 1;
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			b.timeout_ms = atoll(argv[++i]);
		else
			return fprintf(stderr, "runjob_bench: unknown argument %s\n", argv[i]), 2;
	}
	static jr_kv env[] = {
		{ "INPUT", "gs://uploads/data.csv" },
		{ "CE_ID", "evt-1" },
		{ "CE_SOURCE", "//storage.googleapis.com/projects/_/buckets/uploads" },
		{ "CE_TYPE", "google.cloud.storage.object.v1.finalized" },
		{ "JOBRELAY_ROUTE", "csv" },
		{ "JOBRELAY_KEY", "0123456789abcdef" },
	};
	static char *args[] = { "--input", "data.csv" };
	b.req = (jr_runreq){ .name = argv[2], .env = env, .n_env = 6, .args = args, .n_args = 2,
			     .has_args = 1, .task_count = 1, .timeout_ms = 600000 };
	int n = atoi(argv[3]), conc = atoi(argv[4]);
	if (n < 1 || conc < 1)
		return fprintf(stderr, "runjob_bench: N and CONCURRENCY must be >= 1\n"), 2;

	grpc_init();
	jr_loop *l = loop_new();
	char err[256];
	b.api = runjob_new(l, argv[1], err, sizeof err);
	if (!b.api) {
		fprintf(stderr, "runjob_bench: %s\n", err);
		return 1;
	}
	printf("target: %s\n", runjob_target(b.api));
	if (!cancel) {
		b.total = 1;
		start_one(&b);
		while (b.done < 1)
			loop_run_once(l, -1);
		if (b.ok != 1)
			fprintf(stderr, "runjob_bench: warm-up call failed\n");
	}
	b = (bench){ .api = b.api, .req = b.req, .timeout_ms = b.timeout_ms, .total = n,
		     .verbose = n <= 10 };
	double c0 = cpu_seconds();
	int64_t t0 = loop_now_ms();
	for (int i = 0; i < conc; i++)
		start_one(&b);
	if (cancel) {
		b.stopping = 1;
		printf("freeing the client with %d calls in flight\n", runjob_in_flight(b.api));
		runjob_free(b.api);
		b.api = NULL;
	}
	while (b.done < b.started)
		loop_run_once(l, -1);
	double cpu = cpu_seconds() - c0;
	printf("calls=%d ok=%d", b.done, b.ok);
	for (int i = 1; i < 17; i++)
		if (b.codes[i])
			printf(" code%d=%d", i, b.codes[i]);
	printf(" wall_ms=%lld cpu_us_per_call=%.1f\n", (long long)(loop_now_ms() - t0),
	       b.done ? cpu * 1e6 / b.done : 0.0);
	int good = cancel ? b.codes[1] == b.done : b.ok == b.done;
	runjob_free(b.api);
	loop_free(l);
	grpc_shutdown();
	return good ? 0 : 1;
}
