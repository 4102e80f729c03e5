/*
 * commands.c — jobrelay's command table (cli.h): every command, its flags,
 * its help text, and the small function that runs it. The parser, --help,
 * the man page and the shell completions are all read off this table.
 *
 * To add a command: write its flags (a jr_cli_opt array ending with a zero
 * entry; ids of your own, > 0), a run function taking the parsed call, and
 * one entry in cmds[] below; a group's commands follow its entry.
 */
#include "commands.h"

#include <curl/curl.h>
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

#include "check_config.h"
#include "config_load.h"
#include "daemon.h"
#include "gcreds.h"
#include "jobctl.h"
#include "jstring.h"
#include "log.h"
#include "pull.h"
#include "redrive.h"
#include "replay.h"
#include "serve.h"
#include "version.h"

/* ---- what the commands share ---- */

static const char *config_path(const jr_cli_globals *g)
{
	if (g->config)
		return g->config;
	const char *e = getenv("JOBRELAY_CONFIG");
	return e && *e ? e : "./jobrelay.yaml";
}

#define ENV_CONFIG_NAME "$JOBRELAY_JOB"

/*
 * env_config: the config of a deploy without a file (docs/configuration.md, "Without a
 * file"), used when no --config was given, the file config_path names does not exist and
 * $JOBRELAY_JOB is set: one route, "default", every event to $JOBRELAY_JOB with the event's
 * data in the execution's env as CE_DATA (its id, type, source... are there anyway); $JOBRELAY_SUBSCRIPTION and
 * $JOBRELAY_DEAD_LETTER_TOPIC when set. The values are written as JSON strings, so the
 * loader checks them as it checks a file's. Returns 0 (no such config), 1 with *text set
 * (caller frees), or -1 after printing why.
 */
#define ENV_VALUE_MAX 4096
static int env_config(const jr_cli_globals *g, char **text)
{
	static const char *const names[] = {"JOBRELAY_JOB", "JOBRELAY_SUBSCRIPTION",
					    "JOBRELAY_DEAD_LETTER_TOPIC"};
	const char *v[3];
	*text = NULL;
	if (g->config || !getenv("JOBRELAY_JOB") || !*getenv("JOBRELAY_JOB") ||
	    access(config_path(g), F_OK) == 0)
		return 0;
	for (int i = 0; i < 3; i++) {
		v[i] = getenv(names[i]);
		if (v[i] && strlen(v[i]) > ENV_VALUE_MAX) {
			fprintf(stderr, "jobrelay: $%s is longer than %d bytes\n", names[i], ENV_VALUE_MAX);
			return -1;
		}
	}
	jr_buf b;
	buf_init(&b, 0);
	int rc = buf_addlit(&b, "{\"routes\": [{\"name\": \"default\", \"job\": ");
	rc |= jstr_write_text(&b, v[0], strlen(v[0]));
	rc |= buf_addlit(&b, ", \"overrides\": {\"env\": {\"CE_DATA\": \"{{data?}}\"}}}]");
	if (v[1] && *v[1])
		rc |= buf_addlit(&b, ", \"subscription\": ") | jstr_write_text(&b, v[1], strlen(v[1]));
	if (v[2] && *v[2])
		rc |= buf_addlit(&b, ", \"dead_letter\": {\"topic\": ") |
		      jstr_write_text(&b, v[2], strlen(v[2])) | buf_addc(&b, '}');
	rc |= buf_addlit(&b, "}\n");
	if (rc) {
		buf_free(&b);
		fprintf(stderr, "jobrelay: out of memory\n");
		return -1;
	}
	*text = b.data;
	return 1;
}

/* config_name: where the config comes from, for messages. */
static const char *config_name(const jr_cli_globals *g)
{
	const char *job = getenv("JOBRELAY_JOB");
	if (!g->config && job && *job && access(config_path(g), F_OK) != 0)
		return ENV_CONFIG_NAME;
	return config_path(g);
}

/* load_config: 0, or 2 after printing every error on stderr. */
static int load_config(const jr_cli_globals *g, jr_config *c)
{
	jr_buf errs;
	buf_init(&errs, 1 << 20);
	char *text;
	int from_env = env_config(g, &text);
	if (from_env < 0) {
		config_defaults(c);
		buf_free(&errs);
		return 2;
	}
	if (from_env)
		log_kv(JR_LOG_INFO, "CONFIG-FROM-ENV",
		       "no config file: one route, every event to $JOBRELAY_JOB", "file", config_path(g),
		       "job", getenv("JOBRELAY_JOB"), NULL);
	int n = from_env ? config_load_string(c, ENV_CONFIG_NAME, text, strlen(text), &errs)
			 : config_load_file(c, config_path(g), &errs);
	free(text);
	if (n) {
		fputs(errs.data ? errs.data : "", stderr);
		fprintf(stderr, "jobrelay: %d error%s in %s\n", n, n == 1 ? "" : "s", config_name(g));
	}
	buf_free(&errs);
	return n ? 2 : 0;
}

/* config_route: the route named name in c, or NULL. */
static const jr_route *config_route(const jr_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_routes; i++)
		if (strcmp(c->routes[i].name, name) == 0)
			return &c->routes[i];
	return NULL;
}

/* ---- version ---- */

static int cmd_version(const jr_cli_call *call)
{
	(void)call;
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

/* ---- check-config ---- */

enum { CC_FORMAT = 1 };

static const jr_cli_opt check_config_opts[] = {
	{"format", 0, "F", CC_FORMAT, "text (default), or json: one object with the routes and policies", "text json"},
	{0},
};

static int cmd_check_config(const jr_cli_call *call)
{
	int json = 0;
	for (size_t i = 0; i < call->n_vals; i++) {
		const char *v = call->vals[i].value;
		if (strcmp(v, "json") && strcmp(v, "text")) {
			fprintf(stderr, "jobrelay check-config: --format must be text or json, not '%s'\n", v);
			return 2;
		}
		json = !strcmp(v, "json");
	}
	jr_config c;
	int rc = load_config(&call->g, &c);
	if (rc == 0 && json) {
		jr_buf out;
		buf_init(&out, 0);
		check_config_json(&c, config_name(&call->g), &out);
		fwrite(out.data, 1, out.len, stdout);
		buf_free(&out);
	} else if (rc == 0) {
		check_config_text(&c, config_name(&call->g));
	}
	config_free(&c);
	return rc;
}

/* ---- redrive ---- */

static const jr_cli_opt redrive_opts[] = {
	{"subscription", 0, "SUB", RD_SUBSCRIPTION, "the dead-letter subscription, projects/P/subscriptions/S", NULL},
	{"file", 0, "PATH", RD_FILE, "a dead-letter file (the file sink's NDJSON) instead", NULL},
	{"route", 0, "NAME", RD_ROUTE, "only records of this route", NULL},
	{"class", 0, "CLASS", RD_CLASS, "only records of these error classes (repeatable, or a comma list)",
	 "invalid_event invalid_request permission resource timeout network application unknown"},
	{"since", 0, "TIME", RD_SINCE, "only records dead-lettered at or after TIME: RFC 3339, or a duration (2h: the last 2 hours)", NULL},
	{"until", 0, "TIME", RD_UNTIL, "only records dead-lettered at or before TIME (the same forms)", NULL},
	{"limit", 0, "N", RD_LIMIT, "select at most N records", NULL},
	{"wait", 0, "D", RD_WAIT, "stop once the subscription returned nothing for D (default 5s)", NULL},
	{"batch", 0, "N", RD_BATCH, "messages per Pull, 1-1000 (default 100)", NULL},
	{"out", 0, "FILE", RD_OUT, "with --file: where the records that fail again go (default stdout)", NULL},
	{"include-unconfirmed", 0, NULL, RD_INCLUDE_UNCONFIRMED, "also records with code EXECUTION_UNCONFIRMED (their job started: look at the execution first)", NULL},
	{0},
};

static int cmd_redrive(const jr_cli_call *call)
{
	jr_redrive_opts o;
	redrive_opts_init(&o, call->g.dry_run);
	for (size_t i = 0; i < call->n_vals; i++)
		if (redrive_set_opt(&o, call->vals[i].opt->id, call->vals[i].value) < 0)
			return 2;
	if (redrive_check_opts(&o) < 0)
		return 2;
	jr_config c;
	int rc = load_config(&call->g, &c);
	if (rc == 0 && o.route && !config_route(&c, o.route)) {
		fprintf(stderr, "jobrelay redrive: no route named '%s' in %s\n", o.route, config_name(&call->g));
		rc = 2;
	}
	if (rc == 0)
		rc = redrive_main(&c, &o);
	config_free(&c);
	return rc;
}

/* ---- replay ---- */

enum { RP_FORMAT = 1, RP_ROUTE, RP_NO_RETRY };

static const jr_cli_opt replay_opts[] = {
	{"format", 'f', "F", RP_FORMAT, "the input form, instead of detecting it per file",
	 "auto json batch push deadletter ndjson http"},
	{"route", 'r', "NAME", RP_ROUTE, "dispatch to this route only", NULL},
	{"no-retry", 'x', NULL, RP_NO_RETRY, "dead-letter at once what would be retried", NULL},
	{0},
};

static int cmd_replay(const jr_cli_call *call)
{
	jr_replay_opts o = {.dry_run = call->g.dry_run, .out = stdout};
	for (size_t i = 0; i < call->n_vals; i++) {
		const char *v = call->vals[i].value;
		switch (call->vals[i].opt->id) {
		case RP_FORMAT: {
			int f = input_parse_format(v);
			if (f < 0) {
				fprintf(stderr, "jobrelay replay: unknown --format '%s' (auto, json, batch, push, deadletter, ndjson, http)\n", v);
				return 2;
			}
			o.format = (jr_input_format)f;
			break;
		}
		case RP_ROUTE: o.route = v; break;
		case RP_NO_RETRY: o.no_retry = 1; break;
		}
	}
	o.paths = call->args;
	o.n_paths = (int)call->n_args;
	o.progress = isatty(STDERR_FILENO);
	o.summary = o.dry_run ? stderr : stdout;
	jr_config c;
	int rc = load_config(&call->g, &c);
	if (rc == 0 && o.route && !config_route(&c, o.route)) {
		fprintf(stderr, "jobrelay replay: no route named '%s' in %s\n", o.route, config_name(&call->g));
		rc = 2;
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

/* ---- serve and pull ---- */

enum { SV_PORT = 1, SV_BIND, SV_MAX_CONNECTIONS, SV_REQUEST_TIMEOUT };

static const jr_cli_opt serve_opts[] = {
	{"port", 'p', "N", SV_PORT, "the port (default $PORT, else 8080; 0: any free port)", NULL},
	{"bind", 'b', "ADDR", SV_BIND, "the address to listen on (default every address)", NULL},
	{"max-connections", 'c', "N", SV_MAX_CONNECTIONS, "connections at most at once", NULL},
	{"request-timeout", 't', "D", SV_REQUEST_TIMEOUT, "a request slower than D is answered 408 (500ms, 30s)", NULL},
	{0},
};

static const jr_cli_opt pull_opts[] = {
	{"port", 'p', "N", SV_PORT, "serve GET /healthz, /readyz, /metrics on N (default $PORT when set)", NULL},
	{"bind", 'b', "ADDR", SV_BIND, "the address of that port", NULL},
	{0},
};

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
static int run_daemon(const jr_cli_globals *g, int (*run)(const jr_config *, const void *), const void *o)
{
	log_setup(STDOUT_FILENO, (jr_log_format)g->log_format, (jr_log_level)g->log_level);
	jr_config c;
	int rc = load_config(g, &c);
	if (rc == 0)
		rc = daemon_main(run, &c, o);
	config_free(&c);
	return rc;
}

static int cmd_serve(const jr_cli_call *call)
{
	jr_serve_opts o = {.port = -1, .dry_run = call->g.dry_run};
	char *end;
	for (size_t i = 0; i < call->n_vals; i++) {
		const char *v = call->vals[i].value;
		switch (call->vals[i].opt->id) {
		case SV_PORT:
			if (parse_port("serve", v, &o.port) < 0)
				return 2;
			break;
		case SV_BIND: o.bind = v; break;
		case SV_MAX_CONNECTIONS:
			o.max_connections = (int)strtol(v, &end, 10);
			if (*end || !*v || o.max_connections < 1) {
				fprintf(stderr, "jobrelay serve: --max-connections must be a positive number, not '%s'\n", v);
				return 2;
			}
			break;
		case SV_REQUEST_TIMEOUT:
			if ((o.request_timeout_ms = parse_duration_ms(v)) <= 0) {
				fprintf(stderr, "jobrelay serve: --request-timeout must be a duration (500ms, 30s), not '%s'\n", v);
				return 2;
			}
			break;
		}
	}
	return run_daemon(&call->g, run_serve, &o);
}

static int cmd_pull(const jr_cli_call *call)
{
	jr_pull_opts o = {.http_port = -1};
	for (size_t i = 0; i < call->n_vals; i++) {
		const char *v = call->vals[i].value;
		if (call->vals[i].opt->id == SV_PORT) {
			if (parse_port("pull", v, &o.http_port) < 0)
				return 2;
		} else {
			o.bind = v;
		}
	}
	return run_daemon(&call->g, run_pull, &o);
}

/* ---- jobs and executions ---- */

/*
 * cmd_jobctl: the config is optional here (it gives default projects and
 * regions): read when named (--config, $JOBRELAY_CONFIG) or when
 * ./jobrelay.yaml exists.
 */
static int cmd_jobctl(const jr_cli_call *call)
{
	const jr_cli_globals *g = &call->g;
	jr_config c;
	int have = g->config || (getenv("JOBRELAY_CONFIG") && *getenv("JOBRELAY_CONFIG")) ||
		   access(config_path(g), F_OK) == 0;
	if (have && load_config(g, &c) != 0) {
		config_free(&c);
		return 2;
	}
	grpc_init();
	int rc = jobctl_run(have ? &c : NULL, call);
	gcreds_shutdown();
	grpc_shutdown();
	if (have)
		config_free(&c);
	return rc;
}

#define O_PROJECTS {"project", 0, "P", JOBCTL_PROJECT, "a project; repeat for several (default: the config's and its routes')", NULL}
#define O_REGIONS {"region", 0, "R", JOBCTL_REGION, "a region; repeat for several (default: the config's and its routes')", NULL}
#define O_PROJECT {"project", 0, "P", JOBCTL_PROJECT, "the project (default: the config's)", NULL}
#define O_REGION {"region", 0, "R", JOBCTL_REGION, "the region (default: the config's)", NULL}
#define O_FORMAT {"format", 0, "F", JOBCTL_FORMAT, "output: table, ndjson (one object a line), json (one array) or yaml", "table ndjson json yaml"}

static const jr_cli_opt jobs_list_opts[] = {
	O_PROJECTS, O_REGIONS,
	{"label", 0, "K=V", JOBCTL_LABEL, "only jobs with this label (repeat: all must match)", NULL},
	{"limit", 0, "N", JOBCTL_LIMIT, "at most N jobs", NULL},
	O_FORMAT,
	{0},
};

static const jr_cli_opt jobs_run_opts[] = {
	O_PROJECT, O_REGION,
	{"env", 0, "K=V", JOBCTL_ENV, "set an environment variable (repeatable; the value may hold commas)", NULL},
	{"update-env-vars", 0, "K=V,...", JOBCTL_UPDATE_ENV, "set environment variables, comma-separated (as gcloud)", NULL},
	{"args", 0, "A,...", JOBCTL_ARGS, "container arguments, comma-separated (as gcloud; repeatable)", NULL},
	{"tasks", 0, "N", JOBCTL_TASKS, "the task count", NULL},
	{"task-timeout", 0, "D", JOBCTL_TIMEOUT, "each task's timeout: 90s, 10m, 1h30m (a bare number is seconds)", NULL},
	{"timeout", 0, "D", JOBCTL_TIMEOUT, "the same as --task-timeout", NULL},
	{"wait", 0, NULL, JOBCTL_WAIT, "wait for the execution to end; exit 1 unless it succeeded", NULL},
	{"async", 0, NULL, JOBCTL_ASYNC, "return once the execution is created (the default)", NULL},
	O_FORMAT,
	{0},
};

static const jr_cli_opt executions_list_opts[] = {
	O_PROJECTS, O_REGIONS,
	{"job", 0, "JOB", JOBCTL_JOB, "the job, instead of the JOB argument (as gcloud)", NULL},
	{"limit", 0, "N", JOBCTL_LIMIT, "at most N executions", NULL},
	O_FORMAT,
	{0},
};

static const jr_cli_opt executions_one_opts[] = {
	O_PROJECT, O_REGION, O_FORMAT, {0},
};

static const jr_cli_opt executions_cancel_opts[] = {
	O_PROJECT, O_REGION,
	{"async", 0, NULL, JOBCTL_ASYNC, "return once the cancel is accepted (the default)", NULL},
	O_FORMAT, {0},
};

static const jr_cli_opt executions_wait_opts[] = {
	O_PROJECT, O_REGION,
	{"timeout", 0, "D", JOBCTL_TIMEOUT, "give up after D (exit 1, \"is still RUNNING\")", NULL},
	O_FORMAT, {0},
};

/* ---- help, completion ---- */

enum { HP_COMMANDS = 1, HP_MAN };

static const jr_cli_opt help_opts[] = {
	{"commands", 0, NULL, HP_COMMANDS, NULL, NULL}, /* hidden: every command, one a line */
	{"man", 0, NULL, HP_MAN, NULL, NULL},           /* hidden: the man page, roff */
	{0},
};

static int cmd_help(const jr_cli_call *call)
{
	for (size_t i = 0; i < call->n_vals; i++) {
		if (call->vals[i].opt->id == HP_COMMANDS)
			cli_list(call->prog, stdout);
		else
			cli_man(call->prog, stdout);
		return 0;
	}
	const jr_cli_cmd *cmd = NULL;
	if (call->n_args) {
		cmd = cli_find(call->prog, NULL, call->args[0]);
		if (cmd && call->n_args > 1)
			cmd = (cmd->flags & JR_CLI_GROUP) ? cli_find(call->prog, cmd->name, call->args[1]) : NULL;
		if (!cmd) {
			fprintf(stderr, "jobrelay help: unknown command '%s%s%s'\n", call->args[0],
				call->n_args > 1 ? " " : "", call->n_args > 1 ? call->args[1] : "");
			return 2;
		}
	}
	cli_help(call->prog, cmd, stdout);
	return 0;
}

static int cmd_completion(const jr_cli_call *call)
{
	if (cli_completion(call->prog, call->args[0], stdout) < 0) {
		fprintf(stderr, "jobrelay completion: no completion for shell '%s' (bash, zsh)\n", call->args[0]);
		return 2;
	}
	return 0;
}

/* ---- the table ---- */

static const jr_cli_cmd cmds[] = {
	{NULL, "replay", NULL, "PATH...", 1, -1, JR_CLI_DRY_RUN,
	 "dispatch events from files, folders or - (stdin)",
	 "Each PATH is a file, a folder (its files, sorted) or - for stdin. The input\n"
	 "form is detected per file: a structured CloudEvent, a batch array, NDJSON,\n"
	 "a Pub/Sub push body, an HTTP capture (.http) or a dead-letter NDJSON file,\n"
	 "whose records re-dispatch their original events.\n"
	 "\n"
	 "  jobrelay replay --dry-run captured/\n"
	 "  jobrelay replay --config prod.yaml /var/lib/jobrelay/dead.ndjson",
	 replay_opts, cmd_replay},
	{NULL, "redrive", NULL, NULL, 0, 0, JR_CLI_DRY_RUN,
	 "re-dispatch dead letters from the dead-letter subscription or a file",
	 "Re-dispatches dead letters through the configured routes, each to its own\n"
	 "route, with the normal policies. A dead letter from the subscription is acked\n"
	 "only once its re-dispatch succeeded; one that fails again stays there (never\n"
	 "dead-lettered again). From a file, the records that fail again go to stdout\n"
	 "(or --out FILE), to be redriven later. --dry-run prints the RunJob requests,\n"
	 "as replay --dry-run does, and acks nothing. Exit codes as replay.\n"
	 "\n"
	 "  jobrelay redrive --subscription projects/p/subscriptions/jobrelay-dead-redrive --dry-run\n"
	 "  jobrelay redrive --file /var/lib/jobrelay/dead.ndjson --class permission --since 2h",
	 redrive_opts, cmd_redrive},
	{NULL, "serve", NULL, NULL, 0, 0, JR_CLI_DRY_RUN,
	 "HTTP server for Pub/Sub push and Eventarc on $PORT (default 8080)",
	 "Answers 204 once each event is dispatched or dead-lettered, 429 or 503 with\n"
	 "Retry-After to have it sent again; GET /healthz, /readyz and /metrics.\n"
	 "SIGTERM drains within shutdown_grace. Logs go to stdout.",
	 serve_opts, cmd_serve},
	{NULL, "pull", NULL, NULL, 0, 0, 0,
	 "StreamingPull worker on the configured subscription",
	 "Acks a message once RunJob returned or its dead letter is written; extends\n"
	 "leases, applies flow control, reconnects, and drains on SIGTERM. Logs go to\n"
	 "stdout. There is no --dry-run: pulling takes messages from the subscription\n"
	 "(use replay --dry-run on captured events).",
	 pull_opts, cmd_pull},
	{NULL, "check-config", NULL, NULL, 0, 0, 0,
	 "validate the config and print the resolved routes and policies",
	 "Every error of the file is reported (exit 2). Otherwise it prints each route\n"
	 "with its effective failure policy per error class and its rate limit, and\n"
	 "the circuit breaker, dedup, read retry and repeat check settings.",
	 check_config_opts, cmd_check_config},
	{NULL, "jobs", NULL, NULL, 0, 0, JR_CLI_GROUP, "list and run Cloud Run jobs",
	 "Projects and regions not given come from the config, when one is named or\n"
	 "./jobrelay.yaml exists: its project and region, then its routes'.",
	 NULL, NULL},
	{"jobs", "list", NULL, NULL, 0, 0, 0, "list the jobs of every project and region given",
	 "Follows every page. --label filters in jobrelay (ListJobs has no filter).",
	 jobs_list_opts, cmd_jobctl},
	{"jobs", "run", "execute", "JOB [-- ARGS...]", 1, -1, 0,
	 "run a job, with overrides",
	 "JOB is a job id or projects/P/locations/L/jobs/J. Prints the execution and\n"
	 "its log URI. Arguments after -- are passed to the container as they are.\n"
	 "\n"
	 "  jobrelay jobs execute ingest --region europe-west2 --update-env-vars INPUT=gs://b/a.csv --wait",
	 jobs_run_opts, cmd_jobctl},
	{NULL, "executions", NULL, NULL, 0, 0, JR_CLI_GROUP, "list, show, cancel and wait for executions",
	 "NAME is projects/P/locations/L/jobs/J/executions/E, or an execution id\n"
	 "(JOB-abc12) with a project and region from the flags or the config.",
	 NULL, NULL},
	{"executions", "list", NULL, "[JOB]", 0, 1, 0, "list a job's executions, newest first",
	 NULL, executions_list_opts, cmd_jobctl},
	{"executions", "get", "describe", "NAME", 1, 1, 0, "show one execution",
	 NULL, executions_one_opts, cmd_jobctl},
	{"executions", "cancel", NULL, "NAME", 1, 1, 0, "cancel a running execution",
	 NULL, executions_cancel_opts, cmd_jobctl},
	{"executions", "wait", NULL, "NAME", 1, 1, 0, "wait for an execution to end; exit 0 only when it succeeded",
	 NULL, executions_wait_opts, cmd_jobctl},
	{NULL, "version", NULL, NULL, 0, 0, 0,
	 "version, git commit and library versions (also: --version)", NULL, NULL, cmd_version},
	{NULL, "help", NULL, "[COMMAND [SUBCOMMAND]]", 0, 2, 0,
	 "this help, or a command's (also: COMMAND --help)", NULL, help_opts, cmd_help},
	{NULL, "completion", NULL, "SHELL", 1, 1, JR_CLI_HIDDEN,
	 "print the bash or zsh completion script", NULL, NULL, cmd_completion},
};

static const jr_cli_opt globals[] = {
	{"config", 0, "FILE", JR_CLI_G_CONFIG, "the config (else $JOBRELAY_CONFIG, else ./jobrelay.yaml)", NULL},
	{"log-format", 0, "F", JR_CLI_G_LOG_FORMAT, "json or text (default: text on a terminal, else json)", "json text"},
	{"log-level", 0, "LEVEL", JR_CLI_G_LOG_LEVEL, "debug, info (default), warning or error", "debug info warning error"},
	{"dry-run", 'n', NULL, JR_CLI_G_DRY_RUN, "decode, route and render; call nothing (replay, redrive, serve)", NULL},
	{"help", 'h', NULL, JR_CLI_G_HELP, "this help", NULL},
	{"version", 0, NULL, JR_CLI_G_VERSION, "the version", NULL},
	{0},
};

static const jr_cli_section sections[] = {
	{"Exit status",
	 "0  success (pull, serve: drained after SIGTERM or SIGINT)\n"
	 "1  some events failed or were dead-lettered; a call failed or an execution did not succeed\n"
	 "2  usage or config error\n"
	 "3  a required service could not be reached at start-up"},
	{"Environment",
	 "JOBRELAY_CONFIG        the config when --config is not given\n"
	 "GOOGLE_CLOUD_PROJECT   the default project when the config has none\n"
	 "PORT                   serve's port; pull's GET endpoints when set\n"
	 "JOBRELAY_RUN_ENDPOINT  host:port of another Run API server\n"
	 "PUBSUB_EMULATOR_HOST   host:port of the Pub/Sub emulator"},
};

/* before_run: the CLI commands keep stdout for their results; their logs go to stderr. */
static void before_run(const jr_cli_call *call)
{
	log_setup(STDERR_FILENO, (jr_log_format)call->g.log_format, (jr_log_level)call->g.log_level);
}

const jr_cli_prog jobrelay_cli = {
	.name = "jobrelay",
	.summary = "turn cloud events into Cloud Run job executions",
	.version = JR_VERSION,
	.cmds = cmds,
	.n_cmds = sizeof cmds / sizeof cmds[0],
	.globals = globals,
	.sections = sections,
	.n_sections = sizeof sections / sizeof sections[0],
	.before_run = before_run,
};
