/*
 * main.c — the jobrelay command line: global flags, then one subcommand.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_version.h>
#include <yaml.h>

#include "config_load.h"
#include "daemon.h"
#include "gcreds.h"
#include "jobctl.h"
#include "log.h"
#include "pull.h"
#include "redrive.h"
#include "replay.h"
#include "route.h"
#include "serve.h"
#include "version.h"

typedef struct globals {
	const char *config;
	int dry_run;
	int log_format;
	int log_level;
} globals;

static void usage(FILE *f)
{
	fputs("usage: jobrelay [--config FILE] [--log-format json|text] [--log-level LEVEL] COMMAND ...\n"
	      "\n"
	      "commands:\n"
	      "  replay [--dry-run] [--format F] [--route NAME] [--no-retry] PATH...\n"
	      "                  dispatch events from files, folders or - (stdin)\n"
	      "  redrive (--subscription SUB | --file PATH) [--dry-run] [--class C] ...\n"
	      "                  re-dispatch dead letters (jobrelay redrive --help)\n"
	      "  serve [--dry-run] [--port N] [--bind ADDR] [--max-connections N] [--request-timeout D]\n"
	      "                  HTTP server for Pub/Sub push and Eventarc on $PORT (default 8080)\n"
	      "  pull [--port N] [--bind ADDR]\n"
	      "                  StreamingPull worker on the configured subscription;\n"
	      "                  GET /healthz, /readyz, /metrics on --port, else $PORT when set\n"
	      "  jobs list|run, executions list|get|cancel|wait\n"
	      "                  manual job control (jobrelay jobs --help, docs/jobs.md)\n"
	      "  check-config    validate the config and print the resolved routes\n"
	      "  version         version, git commit and library versions\n"
	      "\n"
	      "The config is --config FILE, else $JOBRELAY_CONFIG, else ./jobrelay.yaml.\n"
	      "Exit codes: 0 success, 1 some events failed or were dead-lettered,\n"
	      "2 usage or config error, 3 a required service could not be reached.\n",
	      f);
}

static int cmd_version(void)
{
	printf("jobrelay %s (commit %s)\n", JR_VERSION, JR_GIT_COMMIT);
	printf("  grpc %s\n", grpc_version_string());
	printf("  protobuf-c %s\n", protobuf_c_version());
	printf("  yajl %d.%d.%d\n", YAJL_MAJOR, YAJL_MINOR, YAJL_MICRO);
	printf("  libyaml %s\n", yaml_get_version_string());
	printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("  libmicrohttpd %s\n", MHD_get_version());
	printf("  %s\n", curl_version());
	return 0;
}

static const char *config_path(const globals *g)
{
	if (g->config)
		return g->config;
	const char *e = getenv("JOBRELAY_CONFIG");
	return e && *e ? e : "./jobrelay.yaml";
}

/* load_config: 0, or 2 after printing every error on stderr. */
static int load_config(const globals *g, jr_config *c)
{
	jr_buf errs;
	buf_init(&errs, 1 << 20);
	int n = config_load_file(c, config_path(g), &errs);
	if (n) {
		fputs(errs.data ? errs.data : "", stderr);
		fprintf(stderr, "jobrelay: %d error%s in %s\n", n, n == 1 ? "" : "s", config_path(g));
	}
	buf_free(&errs);
	return n ? 2 : 0;
}

static void print_cond(const jr_cond *cd)
{
	static const char *const where[] = {"", "attributes.", "data", "payload"};
	printf("      %s%s:", where[cd->where], cd->key);
	if (cd->m.exact)
		printf(" exact \"%s\"", cd->m.exact);
	if (cd->m.prefix)
		printf(" prefix \"%s\"", cd->m.prefix);
	if (cd->m.suffix)
		printf(" suffix \"%s\"", cd->m.suffix);
	for (size_t i = 0; i < cd->m.n_any_of; i++)
		printf("%s\"%s\"", i ? ", " : " any_of ", cd->m.any_of[i]);
	printf("\n");
}

static void print_route(const jr_config *c, const jr_route *r)
{
	char *job = route_job_display(c, r);
	printf("route %s\n  job: %s\n", r->name, job);
	free(job);
	printf("  match:%s\n", r->n_conds ? "" : r->n_filters ? " (filters only)" : " every event");
	for (size_t i = 0; i < r->n_conds; i++)
		print_cond(&r->conds[i]);
	if (r->n_filters) {
		jr_buf f;
		buf_init(&f, 0);
		filter_write(&f, r->filters, r->n_filters);
		printf("  filters: %s\n", f.data);
		buf_free(&f);
	}
	for (size_t i = 0; i < r->n_env; i++)
		printf("  env %s = %s\n", r->env[i].name, tmpl_source(r->env[i].value));
	for (size_t i = 0; i < r->n_args; i++)
		printf("  arg %s\n", tmpl_source(r->args[i]));
	if (r->task_count)
		printf("  task_count: %d\n", r->task_count);
	if (r->timeout_ms)
		printf("  timeout: %lldms\n", (long long)r->timeout_ms);
	printf("  ack: %s\n", r->ack == JR_ACK_ON_COMPLETION ? "on_completion" : "on_dispatch");
	if (r->payload.mode != JR_PAYLOAD_NONE)
		printf("  payload: %s\n", r->payload.mode == JR_PAYLOAD_JSON ? "json" : "auto");
}

/*
 * print_policies: the effective failure policy of route r (docs/policies.md):
 * each class's action (retry with attempts and backoff), whether it trips
 * the job's breaker, and the route's rate limit.
 */
static void print_policies(const jr_route *r)
{
	char a[24], b[24];
	printf("  policies:\n");
	for (int k = 0; k < JR_ERR__COUNT; k++) {
		const jr_policy *p = &r->policies.cls[k];
		printf("    %-16s %s", errclass_name((jr_errclass)k), action_name(p->action));
		if (k == JR_ERR_CREDENTIALS)
			printf(" (no token: held, no attempt counted, never dead-lettered)");
		else if (p->action == JR_ACT_RETRY)
			printf(", max_attempts %d, backoff %s -> %s (full jitter)", p->max_attempts,
			       format_duration_ms(p->initial_ms, a, sizeof a),
			       format_duration_ms(p->max_ms, b, sizeof b));
		printf("%s\n", errclass_trips_breaker((jr_errclass)k) ? "; trips breaker" : "");
	}
	if (r->rate_per_second > 0)
		printf("  rate_limit: %g/s, burst %d; halved on RESOURCE_EXHAUSTED (AIMD)\n",
		       r->rate_per_second, r->rate_burst);
	else
		printf("  rate_limit: none; after RESOURCE_EXHAUSTED, half the observed rate (AIMD)\n");
}

/* print_global_policies: the breaker and dedup settings every route shares. */
static void print_global_policies(const jr_config *c)
{
	const jr_breaker_conf *k = &c->breaker;
	char a[24], b[24];
	printf("circuit_breaker (one per job): window %d, min_calls %d, failure_rate %g, "
	       "open_for %s, max_open_for %s, half_open_calls %d\n",
	       k->window, k->min_calls, k->failure_rate,
	       format_duration_ms(k->open_for_ms, a, sizeof a),
	       format_duration_ms(k->max_open_for_ms, b, sizeof b), k->half_open_calls);
	if (c->dedup_ttl_ms > 0)
		printf("dedup (per instance): ttl %s, max_entries %lld\n",
		       format_duration_ms(c->dedup_ttl_ms, a, sizeof a), (long long)c->dedup_max_entries);
	else
		printf("dedup: off (ttl 0)\n");
	const jr_read_retry *rr = &c->read_retry;
	printf("read_retry (reads after RunJob, never a second RunJob): backoff %s -> %s, "
	       "max_attempts %d, lookup_attempts %d, lookup_pages %d\n",
	       format_duration_ms(rr->initial_backoff_ms, a, sizeof a),
	       format_duration_ms(rr->max_backoff_ms, b, sizeof b), rr->max_attempts,
	       rr->lookup_attempts, rr->lookup_pages);
	const jr_repeat_conf *rp = &c->repeat;
	if (rp->mode == JR_REPEAT_ON_REDELIVERY)
		printf("repeat_check: on_redelivery (a Pub/Sub delivery with delivery_attempt > 1, "
		       "published %s or more ago, or after an unanswered RunJob of its key: one "
		       "ListExecutions lookup per route before RunJob)\n",
		       format_duration_ms(rp->min_age_ms, a, sizeof a));
	else if (rp->mode == JR_REPEAT_ALWAYS)
		printf("repeat_check: always (one ListExecutions lookup per route before every "
		       "RunJob; lookback %s without a publish time)\n",
		       format_duration_ms(rp->lookback_ms, a, sizeof a));
	else
		printf("repeat_check: never (no lookup before RunJob)\n");
}

static int cmd_check_config(const globals *g)
{
	jr_config c;
	int rc = load_config(g, &c);
	if (rc == 0) {
		printf("config %s: %zu route%s\n", config_path(g), c.n_routes, c.n_routes == 1 ? "" : "s");
		print_global_policies(&c);
		for (size_t i = 0; i < c.n_routes; i++) {
			print_route(&c, &c.routes[i]);
			print_policies(&c.routes[i]);
		}
	}
	config_free(&c);
	return rc;
}

/*
 * cmd_jobctl: jobs and executions. The config is optional here (it gives
 * default projects and regions): read when named (--config,
 * $JOBRELAY_CONFIG) or when ./jobrelay.yaml exists.
 */
static int cmd_jobctl(const globals *g, int argc, char **argv)
{
	jr_config c;
	int have = g->config || (getenv("JOBRELAY_CONFIG") && *getenv("JOBRELAY_CONFIG")) ||
		   access(config_path(g), F_OK) == 0;
	if (have && load_config(g, &c) != 0) {
		config_free(&c);
		return 2;
	}
	grpc_init();
	int rc = jobctl_main(have ? &c : NULL, argc, argv);
	gcreds_shutdown();
	grpc_shutdown();
	if (have)
		config_free(&c);
	return rc;
}

static int cmd_replay(const globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'}, {"format", required_argument, NULL, 'f'},
		{"route", required_argument, NULL, 'r'}, {"no-retry", no_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	jr_replay_opts o = {.dry_run = g->dry_run, .out = stdout};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+nf:r:xh", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': o.dry_run = 1; break;
		case 'f': {
			int f = input_parse_format(optarg);
			if (f < 0) {
				fprintf(stderr, "jobrelay replay: unknown --format '%s' (auto, json, batch, push, deadletter, ndjson, http)\n", optarg);
				return 2;
			}
			o.format = (jr_input_format)f;
			break;
		}
		case 'r': o.route = optarg; break;
		case 'x': o.no_retry = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "jobrelay replay: no PATH given (use - for stdin)\n");
		return 2;
	}
	o.paths = argv + optind;
	o.n_paths = argc - optind;
	o.progress = isatty(STDERR_FILENO);
	o.summary = o.dry_run ? stderr : stdout;
	jr_config c;
	int rc = load_config(g, &c);
	if (rc == 0 && o.route) {
		size_t i = 0;
		while (i < c.n_routes && strcmp(c.routes[i].name, o.route) != 0)
			i++;
		if (i == c.n_routes) {
			fprintf(stderr, "jobrelay replay: no route named '%s' in %s\n", o.route, config_path(g));
			rc = 2;
		}
	}
	if (rc == 0) {
		static char outbuf[1 << 16];
		setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
		if (!o.dry_run)
			grpc_init();
		rc = replay_run(&c, &o);
		if (!o.dry_run) {
			gcreds_shutdown();
			grpc_shutdown();
		}
	}
	config_free(&c);
	return rc;
}

/* parse_port: --port N for cmd; -1 after saying what is wrong. */
static int parse_port(const char *cmd, const char *arg, int *out)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*end || !*arg || v < 0 || v > 65535) {
		fprintf(stderr, "jobrelay %s: --port must be 0-65535, not '%s'\n", cmd, arg);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int run_serve(const jr_config *c, const void *o)
{
	return serve_run(c, o);
}

static int run_pull(const jr_config *c, const void *o)
{
	return pull_run(c, o);
}

/*
 * run_daemon: what pull and serve share: logs on stdout (docs/reference.md, logs), the
 * config, then the host's daemon_main (SIGTERM/SIGINT blocked before grpc_init starts threads).
 */
static int run_daemon(const globals *g, int (*run)(const jr_config *, const void *), const void *o)
{
	log_setup(STDOUT_FILENO, (jr_log_format)g->log_format, (jr_log_level)g->log_level);
	jr_config c;
	int rc = load_config(g, &c);
	if (rc == 0)
		rc = daemon_main(run, &c, o);
	config_free(&c);
	return rc;
}

static int cmd_serve(const globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'}, {"port", required_argument, NULL, 'p'},
		{"bind", required_argument, NULL, 'b'}, {"max-connections", required_argument, NULL, 'c'},
		{"request-timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	jr_serve_opts o = {.port = -1, .dry_run = g->dry_run};
	char *end;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+np:b:c:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': o.dry_run = 1; break;
		case 'p':
			if (parse_port("serve", optarg, &o.port) < 0)
				return 2;
			break;
		case 'b': o.bind = optarg; break;
		case 'c':
			o.max_connections = (int)strtol(optarg, &end, 10);
			if (*end || o.max_connections < 1) {
				fprintf(stderr, "jobrelay serve: --max-connections must be a positive number, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			if ((o.request_timeout_ms = parse_duration_ms(optarg)) <= 0) {
				fprintf(stderr, "jobrelay serve: --request-timeout must be a duration (500ms, 30s), not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobrelay serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return run_daemon(g, run_serve, &o);
}

static int cmd_pull(const globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'}, {"bind", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	jr_pull_opts o = {.http_port = -1};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+p:b:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (parse_port("pull", optarg, &o.http_port) < 0)
				return 2;
			break;
		case 'b': o.bind = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobrelay pull: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (g->dry_run) {
		fprintf(stderr, "jobrelay pull: --dry-run is not supported: pulling takes messages from "
				"the subscription (use replay --dry-run on captured events)\n");
		return 2;
	}
	return run_daemon(g, run_pull, &o);
}

/* parse_globals: global flags before the command; returns argv index of the command or -1. */
static int parse_globals(globals *g, int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--dry-run") == 0) {
			g->dry_run = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (!v) {
			fprintf(stderr, "jobrelay: %s needs a value\n", a);
			return -1;
		}
		if (strcmp(a, "--config") == 0) {
			g->config = v;
		} else if (strcmp(a, "--log-format") == 0) {
			if ((g->log_format = log_parse_format(v)) < 0) {
				fprintf(stderr, "jobrelay: --log-format must be json or text, not '%s'\n", v);
				return -1;
			}
		} else if (strcmp(a, "--log-level") == 0) {
			if ((g->log_level = log_parse_level(v)) < 0) {
				fprintf(stderr, "jobrelay: --log-level must be debug, info, warning or error, not '%s'\n", v);
				return -1;
			}
		} else {
			fprintf(stderr, "jobrelay: unknown option %s\n", a);
			return -1;
		}
		i++;
	}
	return i < argc ? i : -1;
}

int main(int argc, char **argv)
{
	globals g = {.log_format = JR_LOG_AUTO, .log_level = JR_LOG_INFO};
	int ci = parse_globals(&g, argc, argv);
	if (ci < 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[ci];
	/* the CLI commands keep stdout for their results; their logs go to stderr */
	log_setup(STDERR_FILENO, (jr_log_format)g.log_format, (jr_log_level)g.log_level);
	if (strcmp(cmd, "version") == 0)
		return cmd_version();
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(&g);
	if (strcmp(cmd, "replay") == 0)
		return cmd_replay(&g, argc - ci, argv + ci);
	if (strcmp(cmd, "redrive") == 0)
		return redrive_main(config_path(&g), g.dry_run, argc - ci, argv + ci);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(&g, argc - ci, argv + ci);
	if (strcmp(cmd, "pull") == 0)
		return cmd_pull(&g, argc - ci, argv + ci);
	if (strcmp(cmd, "jobs") == 0 || strcmp(cmd, "executions") == 0)
		return cmd_jobctl(&g, argc - ci, argv + ci);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "jobrelay: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
