#include <stdlib.h>
#include <string.h>

#include "config_load.h"
#include "cu.h"
#include "errclass.h"

/* load: loads yaml into c; returns the error text (caller frees) and sets *n to the count. */
static char *load(jr_config *c, const char *yaml, int *n)
{
	jr_buf errs;
	buf_init(&errs, 0);
	*n = config_load_string(c, "t.yaml", yaml, strlen(yaml), &errs);
	return buf_take(&errs);
}

/* expect_errors: yaml gives exactly the error text want. */
static void expect_errors(const char *yaml, const char *want)
{
	jr_config c;
	int n;
	char *got = load(&c, yaml, &n);
	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\nyaml:\n%s\ngot:\n%swant:\n%s", yaml, got, want);
	int lines = 0;
	for (const char *p = want; *p; p++)
		lines += *p == '\n';
	CU_ASSERT_EQUAL(n, lines);
	free(got);
	config_free(&c);
}

static void expect_ok(jr_config *c, const char *yaml)
{
	int n;
	char *got = load(c, yaml, &n);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_STRING_EQUAL(got, "");
	if (n)
		fprintf(stderr, "\nunexpected errors:\n%s", got);
	free(got);
}

static const jr_route *find_route(const jr_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_routes; i++)
		if (c->routes[i].name && !strcmp(c->routes[i].name, name))
			return &c->routes[i];
	return NULL;
}

static void test_defaults(void)
{
	jr_config c;
	unsetenv("GOOGLE_CLOUD_PROJECT");
	expect_ok(&c, "");
	CU_ASSERT_PTR_NULL(c.project);
	CU_ASSERT_STRING_EQUAL(c.path, "t.yaml");
	CU_ASSERT_EQUAL(c.flow_max_messages, 1000);
	CU_ASSERT_EQUAL(c.flow_max_bytes, 100 << 20);
	CU_ASSERT_EQUAL(c.concurrency, 64);
	CU_ASSERT_EQUAL(c.unrouted, JR_UNROUTED_DROP);
	CU_ASSERT_EQUAL(c.breaker.window, 20);
	CU_ASSERT_EQUAL(c.breaker.min_calls, 5);
	CU_ASSERT_EQUAL(c.breaker.half_open_calls, 1);
	CU_ASSERT_DOUBLE_EQUAL(c.breaker.failure_rate, 0.5, 1e-9);
	CU_ASSERT_EQUAL(c.breaker.open_for_ms, 30000);
	CU_ASSERT_EQUAL(c.breaker.max_open_for_ms, 600000);
	CU_ASSERT_EQUAL(c.dedup_ttl_ms, 600000);
	CU_ASSERT_EQUAL(c.dedup_max_entries, 100000);
	CU_ASSERT_EQUAL(c.shutdown_grace_ms, 8000);
	CU_ASSERT_EQUAL(c.call_timeout_ms, 30000);
	CU_ASSERT_EQUAL(c.read_retry.initial_backoff_ms, 1000);
	CU_ASSERT_EQUAL(c.read_retry.max_backoff_ms, 30000);
	CU_ASSERT_EQUAL(c.read_retry.max_attempts, 10);
	CU_ASSERT_EQUAL(c.read_retry.lookup_attempts, 4);
	CU_ASSERT_EQUAL(c.read_retry.lookup_pages, 50);
	CU_ASSERT_EQUAL(c.repeat.mode, JR_REPEAT_ON_REDELIVERY);
	CU_ASSERT_EQUAL(c.repeat.min_age_ms, 10000);
	CU_ASSERT_EQUAL(c.repeat.lookback_ms, 3600000);
	CU_ASSERT_EQUAL(c.limits.event_bytes, 10u << 20);
	CU_ASSERT_EQUAL(c.limits.json_depth, 64);
	CU_ASSERT_EQUAL(c.limits.attributes, 100);
	CU_ASSERT_EQUAL(c.limits.header_bytes, 64u << 10);
	CU_ASSERT_EQUAL(c.limits.batch_events, 1000);
	CU_ASSERT_EQUAL(c.limits.inflight_bytes, 64u << 20);
	CU_ASSERT_EQUAL(c.limits.idle_timeout_ms, 5000);
	jr_policies d;
	policies_default(&d);
	CU_ASSERT_EQUAL(memcmp(&d, &c.policies, sizeof d), 0);
	CU_ASSERT_EQUAL(c.n_routes, 0);
	config_free(&c);
	/* a document of only comments is empty too */
	expect_ok(&c, "# nothing here\n");
	config_free(&c);
}

static void test_example_file(void)
{
	jr_config c;
	jr_buf errs;
	buf_init(&errs, 0);
	int n = config_load_file(&c, JR_SOURCE_DIR "/examples/jobrelay.yaml", &errs);
	CU_ASSERT_EQUAL(n, 0);
	if (n)
		fprintf(stderr, "\n%s", errs.data);
	buf_free(&errs);
	CU_ASSERT_STRING_EQUAL(c.path, JR_SOURCE_DIR "/examples/jobrelay.yaml");
	CU_ASSERT_STRING_EQUAL(c.project, "demo-project");
	CU_ASSERT_STRING_EQUAL(c.region, "europe-west2");
	CU_ASSERT_STRING_EQUAL(c.dead_letter_file, "jobrelay-dead.ndjson");
	CU_ASSERT_EQUAL(c.concurrency, 16);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_NETWORK].max_attempts, 6);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_NETWORK].initial_ms, 500);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_NETWORK].max_ms, 60000);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_RESOURCE].max_attempts, 10);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_RESOURCE].initial_ms, 5000);
	CU_ASSERT_EQUAL_FATAL(c.n_routes, 4);

	const jr_route *r = find_route(&c, "csv-uploads");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->n_conds, 4);
	CU_ASSERT_EQUAL(r->conds[0].where, JR_COND_ATTR);
	CU_ASSERT_STRING_EQUAL(r->conds[0].key, "type");
	CU_ASSERT_STRING_EQUAL(r->conds[0].m.exact, "google.cloud.storage.object.v1.finalized");
	CU_ASSERT_STRING_EQUAL(r->conds[1].m.prefix,
			       "//storage.googleapis.com/projects/_/buckets/demo-uploads");
	CU_ASSERT_STRING_EQUAL(r->conds[2].m.suffix, ".csv");
	CU_ASSERT_EQUAL(r->conds[3].where, JR_COND_DATA);
	CU_ASSERT_STRING_EQUAL(r->conds[3].key, "/contentType");
	CU_ASSERT_EQUAL(r->n_env, 3);
	CU_ASSERT_STRING_EQUAL(r->env[0].name, "INPUT");
	CU_ASSERT_STRING_EQUAL(tmpl_source(r->env[0].value), "gs://{{data.bucket}}/{{data.name}}");
	CU_ASSERT_EQUAL(r->n_args, 4);
	CU_ASSERT_TRUE(r->has_args);
	CU_ASSERT_EQUAL(r->task_count, 1);
	CU_ASSERT_EQUAL(r->timeout_ms, 600000);
	CU_ASSERT_EQUAL(r->policies.cls[JR_ERR_PERMISSION].action, JR_ACT_DEAD_LETTER);
	CU_ASSERT_EQUAL(r->policies.cls[JR_ERR_NETWORK].max_attempts, 6);
	CU_ASSERT_DOUBLE_EQUAL(r->rate_per_second, 0, 1e-9);
	CU_ASSERT_EQUAL(r->ack, JR_ACK_ON_DISPATCH);

	r = find_route(&c, "orders");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->ack, JR_ACK_ON_DISPATCH);
	CU_ASSERT_EQUAL(r->conds[2].where, JR_COND_DATA);
	CU_ASSERT_EQUAL(r->conds[2].m.n_any_of, 2);
	CU_ASSERT_FALSE(r->has_args);

	r = find_route(&c, "bigquery-audit");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->conds[1].where, JR_COND_ATTR);
	CU_ASSERT_STRING_EQUAL(r->conds[1].key, "servicename");
	CU_ASSERT_TRUE(r->has_args);
	CU_ASSERT_EQUAL(r->n_args, 0);

	r = find_route(&c, "invoices");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->region, "europe-west1");
	CU_ASSERT_PTR_NULL(r->project);
	CU_ASSERT_STRING_EQUAL(r->container, "renderer");
	CU_ASSERT_EQUAL(r->timeout_ms, 90000);
	config_free(&c);
}

/* A configuration that uses every part of the schema (docs/configuration.md). */
static const char *const spec_example =
	"project: acme-prod            # default project of jobs (else $GOOGLE_CLOUD_PROJECT)\n"
	"region: europe-west2          # default region of jobs\n"
	"subscription: projects/acme-prod/subscriptions/jobrelay   # for `pull`\n"
	"topic: projects/acme-prod/topics/events   # optional\n"
	"flow_control: { max_messages: 1000, max_bytes: 100MiB }   # for `pull`\n"
	"concurrency: 64               # RunJob calls in flight at most\n"
	"unrouted: drop                # drop | dead_letter\n"
	"dead_letter:\n"
	"  topic: projects/acme-prod/topics/jobrelay-dead    # Pub/Sub topic, and/or\n"
	"  file: /var/lib/jobrelay/dead.ndjson               # local NDJSON file\n"
	"policies:                     # per error class (section 5)\n"
	"  network: { action: retry, max_attempts: 8, initial_backoff: 1s, max_backoff: 5m }\n"
	"circuit_breaker: { window: 20, min_calls: 5, failure_rate: 0.5, open_for: 30s, "
	"max_open_for: 10m, half_open_calls: 1 }\n"
	"dedup: { ttl: 10m, max_entries: 100000 }\n"
	"auth:                         # for `serve` (section 6)\n"
	"  audience: https://jobrelay-abc-ew.a.run.app/\n"
	"  allowed_emails: [ eventarc-trigger@acme-prod.iam.gserviceaccount.com ]\n"
	"routes:\n"
	"  - name: csv-uploads\n"
	"    match:\n"
	"      type: google.cloud.storage.object.v1.finalized\n"
	"      source: { prefix: \"//storage.googleapis.com/projects/_/buckets/uploads\" }\n"
	"      subject: { suffix: \".csv\" }\n"
	"      extensions: { bucket: uploads }\n"
	"      attributes: { env: prod }             # Pub/Sub message attributes\n"
	"      data: { \"/contentType\": \"text/csv\" }  # RFC 6901 JSON Pointer\n"
	"    job: ingest-csv                         # job id, or projects/P/locations/L/jobs/J\n"
	"    project: acme-batch                     # optional; else the default\n"
	"    region: us-central1                     # optional; else the default\n"
	"    overrides:\n"
	"      env: { INPUT: \"gs://{{data.bucket}}/{{data.name}}\" }\n"
	"      args: [ \"--input\", \"{{data.name}}\" ]\n"
	"      task_count: 1\n"
	"      timeout: 10m\n"
	"    policies: { permission: { action: dead_letter } }\n"
	"    rate_limit: { per_second: 5, burst: 20 }\n";

static void test_spec_example(void)
{
	jr_config c;
	expect_ok(&c, spec_example);
	CU_ASSERT_STRING_EQUAL(c.project, "acme-prod");
	CU_ASSERT_STRING_EQUAL(c.subscription, "projects/acme-prod/subscriptions/jobrelay");
	CU_ASSERT_STRING_EQUAL(c.topic, "projects/acme-prod/topics/events");
	CU_ASSERT_EQUAL(c.flow_max_bytes, 100 << 20);
	CU_ASSERT_STRING_EQUAL(c.dead_letter_topic, "projects/acme-prod/topics/jobrelay-dead");
	CU_ASSERT_STRING_EQUAL(c.dead_letter_file, "/var/lib/jobrelay/dead.ndjson");
	CU_ASSERT_EQUAL_FATAL(c.n_auth_audiences, 1);
	CU_ASSERT_STRING_EQUAL(c.auth_audiences[0], "https://jobrelay-abc-ew.a.run.app/");
	CU_ASSERT_EQUAL(c.auth_mode, JR_AUTH_VERIFY);
	CU_ASSERT_EQUAL_FATAL(c.n_auth_allowed_emails, 1);
	CU_ASSERT_STRING_EQUAL(c.auth_allowed_emails[0],
			       "eventarc-trigger@acme-prod.iam.gserviceaccount.com");
	CU_ASSERT_EQUAL_FATAL(c.n_routes, 1);
	const jr_route *r = &c.routes[0];
	CU_ASSERT_EQUAL(r->line, 19);
	CU_ASSERT_EQUAL_FATAL(r->n_conds, 6);
	CU_ASSERT_EQUAL(r->conds[3].where, JR_COND_ATTR);
	CU_ASSERT_STRING_EQUAL(r->conds[3].key, "bucket");
	CU_ASSERT_EQUAL(r->conds[4].where, JR_COND_MSG_ATTR);
	CU_ASSERT_STRING_EQUAL(r->conds[4].key, "env");
	CU_ASSERT_STRING_EQUAL(r->conds[4].m.exact, "prod");
	CU_ASSERT_EQUAL(r->conds[5].where, JR_COND_DATA);
	CU_ASSERT_STRING_EQUAL(r->project, "acme-batch");
	CU_ASSERT_STRING_EQUAL(r->region, "us-central1");
	config_free(&c);
}

static void test_json_config(void)
{
	jr_config c;
	expect_ok(&c, "{\n\t\"project\": \"p\",\n\t\"region\": \"r\",\n\t\"routes\": [\n"
		      "\t\t{\"name\": \"x\", \"job\": \"j\", \"match\": {\"type\": \"t\"},\n"
		      "\t\t \"overrides\": {\"task_count\": 3, \"args\": [\"a\"]}}\n\t]\n}\n");
	CU_ASSERT_EQUAL_FATAL(c.n_routes, 1);
	CU_ASSERT_EQUAL(c.routes[0].task_count, 3);
	CU_ASSERT_EQUAL(c.routes[0].line, 5);
	config_free(&c);
}

static void test_all_keys(void)
{
	jr_config c;
	expect_ok(&c, "project: p\n"
		      "region: r\n"
		      "limits: { event_bytes: 1MiB, json_depth: 32, attributes: 50, header_bytes: 8KiB,\n"
		      "  batch_events: 10, inflight_bytes: 16MiB, idle_timeout: 2s }\n"
		      "shutdown_grace: 5s\n"
		      "call_timeout: 1m30s\n"
		      "read_retry: { initial_backoff: 50ms, max_backoff: 2s, max_attempts: 3, "
		      "lookup_attempts: 2, lookup_pages: 7 }\n"
		      "repeat_check: { mode: always, min_age: 30s, lookback: 2h }\n"
		      "unrouted: dead_letter\n"
		      "dead_letter: { topic: projects/p/topics/dead }\n"
		      "auth: { audience: a, allowed_emails: [x@y, z@w], jwks_file: /etc/jwks.json }\n"
		      "routes:\n"
		      "  - name: r1\n"
		      "    job: j\n"
		      "    ack: on_completion\n"
		      "    rate_limit: { per_second: 2.5 }\n"
		      "    overrides: { container: app, env: { EMPTY: \"\", N: 1 } }\n");
	CU_ASSERT_EQUAL(c.limits.event_bytes, 1u << 20);
	CU_ASSERT_EQUAL(c.limits.json_depth, 32);
	CU_ASSERT_EQUAL(c.limits.attributes, 50);
	CU_ASSERT_EQUAL(c.limits.header_bytes, 8192);
	CU_ASSERT_EQUAL(c.limits.batch_events, 10);
	CU_ASSERT_EQUAL(c.limits.inflight_bytes, 16u << 20);
	CU_ASSERT_EQUAL(c.limits.idle_timeout_ms, 2000);
	CU_ASSERT_EQUAL(c.shutdown_grace_ms, 5000);
	CU_ASSERT_EQUAL(c.call_timeout_ms, 90000);
	CU_ASSERT_EQUAL(c.read_retry.initial_backoff_ms, 50);
	CU_ASSERT_EQUAL(c.read_retry.max_backoff_ms, 2000);
	CU_ASSERT_EQUAL(c.read_retry.max_attempts, 3);
	CU_ASSERT_EQUAL(c.read_retry.lookup_attempts, 2);
	CU_ASSERT_EQUAL(c.read_retry.lookup_pages, 7);
	CU_ASSERT_EQUAL(c.repeat.mode, JR_REPEAT_ALWAYS);
	CU_ASSERT_EQUAL(c.repeat.min_age_ms, 30000);
	CU_ASSERT_EQUAL(c.repeat.lookback_ms, 7200000);
	CU_ASSERT_EQUAL(c.unrouted, JR_UNROUTED_DEAD_LETTER);
	CU_ASSERT_STRING_EQUAL(c.auth_jwks_file, "/etc/jwks.json");
	CU_ASSERT_PTR_NULL(c.auth_jwks_url);
	CU_ASSERT_EQUAL(c.n_auth_allowed_emails, 2);
	CU_ASSERT_EQUAL_FATAL(c.n_routes, 1);
	CU_ASSERT_EQUAL(c.routes[0].ack, JR_ACK_ON_COMPLETION);
	CU_ASSERT_DOUBLE_EQUAL(c.routes[0].rate_per_second, 2.5, 1e-9);
	CU_ASSERT_EQUAL(c.routes[0].rate_burst, 3); /* default: ceil(per_second) */
	CU_ASSERT_STRING_EQUAL(c.routes[0].container, "app");
	CU_ASSERT_EQUAL(c.routes[0].n_env, 2);
	CU_ASSERT_STRING_EQUAL(tmpl_source(c.routes[0].env[0].value), "");
	CU_ASSERT_STRING_EQUAL(tmpl_source(c.routes[0].env[1].value), "1");
	config_free(&c);
}

static void test_policy_inheritance(void)
{
	jr_config c;
	/* the routes come first in the file: they still start from the global overrides */
	expect_ok(&c, "project: p\nregion: r\n"
		      "routes:\n"
		      "  - name: a\n"
		      "    job: j\n"
		      "    policies:\n"
		      "      network: { max_attempts: 2 }\n"
		      "      invalid_event: { action: drop }\n"
		      "  - name: b\n"
		      "    job: j\n"
		      "policies:\n"
		      "  network: { initial_backoff: 250ms, max_backoff: 10s, max_attempts: 4 }\n"
		      "  permission: { action: dead_letter }\n");
	const jr_policy *g = &c.policies.cls[JR_ERR_NETWORK];
	CU_ASSERT_EQUAL(g->action, JR_ACT_RETRY);
	CU_ASSERT_EQUAL(g->max_attempts, 4);
	CU_ASSERT_EQUAL(g->initial_ms, 250);
	CU_ASSERT_EQUAL(g->max_ms, 10000);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_PERMISSION].action, JR_ACT_DEAD_LETTER);
	CU_ASSERT_EQUAL(c.policies.cls[JR_ERR_PERMISSION].max_attempts, 10);

	const jr_policy *a = &c.routes[0].policies.cls[JR_ERR_NETWORK];
	CU_ASSERT_EQUAL(a->max_attempts, 2);
	CU_ASSERT_EQUAL(a->initial_ms, 250);
	CU_ASSERT_EQUAL(a->max_ms, 10000);
	CU_ASSERT_EQUAL(c.routes[0].policies.cls[JR_ERR_INVALID_EVENT].action, JR_ACT_DROP);
	CU_ASSERT_EQUAL(c.routes[0].policies.cls[JR_ERR_PERMISSION].action, JR_ACT_DEAD_LETTER);
	CU_ASSERT_EQUAL(memcmp(&c.routes[1].policies, &c.policies, sizeof c.policies), 0);
	config_free(&c);
}

static void test_project_fallback(void)
{
	jr_config c;
	setenv("GOOGLE_CLOUD_PROJECT", "env-project", 1);
	expect_ok(&c, "region: r\nroutes: [{name: a, job: j}]\n");
	CU_ASSERT_STRING_EQUAL(c.project, "env-project");
	config_free(&c);
	expect_ok(&c, "project: file-project\n");
	CU_ASSERT_STRING_EQUAL(c.project, "file-project");
	config_free(&c);
	unsetenv("GOOGLE_CLOUD_PROJECT");
	expect_errors("region: r\nroutes:\n  - name: a\n    job: j\n",
		      "t.yaml:4: route 'a': job: no project for job 'j': set project in the route "
		      "or the config, or $GOOGLE_CLOUD_PROJECT\n");
	expect_errors("project: p\nroutes:\n  - name: a\n    job: j\n",
		      "t.yaml:4: route 'a': job: no region for job 'j': set region in the route "
		      "or the config\n");
	/* the route's own project and region, a full name or a template need no default */
	expect_errors("routes:\n"
		      "  - { name: a, job: j, project: p, region: r }\n"
		      "  - { name: b, job: projects/p/locations/r/jobs/j }\n"
		      "  - { name: c, job: \"{{data.job}}\" }\n",
		      "");
}

static void test_unknown_keys(void)
{
	expect_errors("project: p\nfoo: 1\n", "t.yaml:2: unknown key 'foo'\n");
	expect_errors("project: p\nrepeat_check:\n  mode: sometimes\n",
		      "t.yaml:3: repeat_check.mode: expected never, on_redelivery or always, got "
		      "'sometimes'\n");
	expect_errors("repeat_check: { min_age: 10x }\n",
		      "t.yaml:1: repeat_check.min_age: invalid duration '10x' (use 500ms, 10s, 5m, 1h)\n");
	expect_errors("limits: { event_bytes: 8MiB, inflight_bytes: 4MiB }\n",
		      "t.yaml:1: limits: inflight_bytes is smaller than event_bytes\n");
	expect_errors("flow_control:\n  max_msgs: 3\n",
		      "t.yaml:2: unknown key 'flow_control.max_msgs'\n");
	expect_errors("project: p\n"
		      "region: r\n"
		      "routes:\n"
		      "  - name: x\n"
		      "    job: j\n"
		      "    foo: 1\n"
		      "    overrides:\n"
		      "      timeout: 1s\n"
		      "      bar: 2\n"
		      "    match:\n"
		      "      typo: t\n"
		      "      source: { prefix: a, contains: b }\n"
		      "    policies: { network: { retries: 3 } }\n"
		      "    rate_limit: { per_second: 1, per_minute: 3 }\n",
		      "t.yaml:6: unknown key 'foo' in route 'x'\n"
		      "t.yaml:9: unknown key 'overrides.bar' in route 'x'\n"
		      "t.yaml:11: unknown key 'match.typo' in route 'x'\n"
		      "t.yaml:12: unknown key 'match.source.contains' in route 'x'\n"
		      "t.yaml:13: unknown key 'policies.network.retries' in route 'x'\n"
		      "t.yaml:14: unknown key 'rate_limit.per_minute' in route 'x'\n");
	expect_errors("circuit_breaker: {window: 5, min_calls: 2, open: 1s}\n"
		      "auth: {audience: a, allowed_emails: [b], issuer: c}\n",
		      "t.yaml:1: unknown key 'circuit_breaker.open'\n"
		      "t.yaml:2: unknown key 'auth.issuer'\n");
}

static void test_auth_section(void)
{
	jr_config c;
	/* audience: one string (default mode verify), or a list; mode cloud_run_iam needs no JWKS */
	expect_ok(&c, "auth: { audience: https://a.example/, allowed_emails: [x@y] }\n");
	CU_ASSERT_EQUAL(c.auth_mode, JR_AUTH_VERIFY);
	CU_ASSERT_EQUAL_FATAL(c.n_auth_audiences, 1);
	CU_ASSERT_STRING_EQUAL(c.auth_audiences[0], "https://a.example/");
	config_free(&c);
	expect_ok(&c, "auth:\n"
		      "  mode: cloud_run_iam\n"
		      "  audience: [ https://a.example/, https://b.example/ ]\n"
		      "  allowed_emails: [x@y]\n");
	CU_ASSERT_EQUAL(c.auth_mode, JR_AUTH_CLOUD_RUN_IAM);
	CU_ASSERT_EQUAL_FATAL(c.n_auth_audiences, 2);
	CU_ASSERT_STRING_EQUAL(c.auth_audiences[0], "https://a.example/");
	CU_ASSERT_STRING_EQUAL(c.auth_audiences[1], "https://b.example/");
	CU_ASSERT_PTR_NULL(c.auth_jwks_url);
	config_free(&c);
	expect_ok(&c, "auth: { mode: verify, audience: [a], allowed_emails: [x@y], jwks_file: f }\n");
	CU_ASSERT_EQUAL(c.auth_mode, JR_AUTH_VERIFY);
	CU_ASSERT_EQUAL(c.n_auth_audiences, 1);
	config_free(&c);

	expect_errors("auth: { mode: relaxed, audience: a, allowed_emails: [b] }\n",
		      "t.yaml:1: auth.mode: expected verify or cloud_run_iam, got 'relaxed'\n");
	expect_errors("auth: { audience: [], allowed_emails: [b] }\n",
		      "t.yaml:1: auth.audience: must not be an empty list\n"
		      "t.yaml:1: auth: audience is required\n");
	expect_errors("auth: { audience: [a, \"\"], allowed_emails: [b] }\n",
		      "t.yaml:1: auth.audience[1]: must not be empty\n");
	expect_errors("auth: { audience: \"\", allowed_emails: [b] }\n",
		      "t.yaml:1: auth.audience: must not be empty\n"
		      "t.yaml:1: auth: audience is required\n");
	expect_errors("auth: { audience: { a: b }, allowed_emails: [b] }\n",
		      "t.yaml:1: auth.audience: expected a single value, got a mapping\n"
		      "t.yaml:1: auth: audience is required\n");
	expect_errors("auth:\n  mode: cloud_run_iam\n  audience: a\n  allowed_emails: [b]\n"
		      "  jwks_url: https://x/\n",
		      "t.yaml:2: auth: jwks_url and jwks_file are not used with mode cloud_run_iam "
		      "(Cloud Run checks the signature)\n");
	expect_errors("auth: { mode: cloud_run_iam, audience: a, allowed_emails: [b], jwks_file: f }\n",
		      "t.yaml:1: auth: jwks_url and jwks_file are not used with mode cloud_run_iam "
		      "(Cloud Run checks the signature)\n");
}

static void test_bad_values(void)
{
	expect_errors("dedup: { ttl: 10x }\n",
		      "t.yaml:1: dedup.ttl: invalid duration '10x' (use 500ms, 10s, 5m, 1h)\n");
	expect_errors("shutdown_grace: -1s\ncall_timeout: 0s\n",
		      "t.yaml:1: shutdown_grace: invalid duration '-1s' (use 500ms, 10s, 5m, 1h)\n"
		      "t.yaml:2: call_timeout: must be at least 1ms, got '0s'\n");
	expect_errors("flow_control: { max_bytes: 10MB5 }\n",
		      "t.yaml:1: flow_control.max_bytes: invalid size '10MB5' (use 512, 64KiB, "
		      "10MiB, 1GiB)\n");
	expect_errors("limits:\n  event_bytes: 12 MiB\n  header_bytes: 10\n",
		      "t.yaml:2: limits.event_bytes: invalid size '12 MiB' (use 512, 64KiB, 10MiB, "
		      "1GiB)\n"
		      "t.yaml:3: limits.header_bytes: must be from 1024 to 1073741824, got '10'\n");
	expect_errors("concurrency: abc\n", "t.yaml:1: concurrency: expected an integer, got 'abc'\n");
	expect_errors("concurrency: 0\n",
		      "t.yaml:1: concurrency: must be from 1 to 100000, got '0'\n");
	expect_errors("concurrency: [1]\n",
		      "t.yaml:1: concurrency: expected a single value, got a list\n");
	expect_errors("project: ~\n", "t.yaml:1: project: missing value\n");
	expect_errors("project: \"\"\n", "t.yaml:1: project: must not be empty\n");
	expect_errors("project: a b\n",
		      "t.yaml:1: project: may hold only letters, digits, '-', '_', '.' and ':', "
		      "got 'a b'\n");
	expect_errors("project: a\nproject: b\n", "t.yaml:2: project: duplicate key\n");
	expect_errors("subscription: foo\ntopic: projects/p/topics/\n",
		      "t.yaml:1: subscription: expected projects/PROJECT/subscriptions/SUBSCRIPTION, "
		      "got 'foo'\n"
		      "t.yaml:2: topic: expected projects/PROJECT/topics/TOPIC, got "
		      "'projects/p/topics/'\n");
	expect_errors("unrouted: maybe\n",
		      "t.yaml:1: unrouted: expected drop or dead_letter, got 'maybe'\n");
	expect_errors("unrouted: dead_letter\n",
		      "t.yaml:1: unrouted: dead_letter needs dead_letter.topic or dead_letter.file\n");
	expect_errors("circuit_breaker: { failure_rate: 1.5, min_calls: 30 }\n",
		      "t.yaml:1: circuit_breaker.failure_rate: expected a number above 0 and at most "
		      "1, got '1.5'\n"
		      "t.yaml:1: circuit_breaker: min_calls 30 is greater than window 20\n");
	expect_errors("circuit_breaker: { open_for: 1h }\n",
		      "t.yaml:1: circuit_breaker: max_open_for is shorter than open_for\n");
	expect_errors("read_retry: { initial_backoff: 1m, max_attempts: 0 }\n",
		      "t.yaml:1: read_retry.max_attempts: must be from 1 to 1000, got '0'\n"
		      "t.yaml:1: read_retry: max_backoff is shorter than initial_backoff\n");
	expect_errors("auth: { jwks_url: ftp://x, jwks_file: f }\n",
		      "t.yaml:1: auth.jwks_url: expected an http:// or https:// URL, got 'ftp://x'\n"
		      "t.yaml:1: auth: audience is required\n"
		      "t.yaml:1: auth: allowed_emails is required (no token passes without it)\n");
	expect_errors("auth: { audience: a, allowed_emails: [], jwks_url: https://x, jwks_file: f }\n",
		      "t.yaml:1: auth.allowed_emails: must not be an empty list\n"
		      "t.yaml:1: auth: allowed_emails is required (no token passes without it)\n"
		      "t.yaml:1: auth: give jwks_url or jwks_file, not both\n");
	expect_errors("- a\n", "t.yaml:1: the configuration must be a mapping, got a list\n");
	expect_errors("routes: {}\n", "t.yaml:1: routes: expected a list of routes, got a mapping\n");
	expect_errors("a: [\n", "t.yaml:2: YAML syntax error: did not find expected node content "
				"while parsing a flow node\n");
	expect_errors("project: p\n---\nregion: r\n", "t.yaml:3: more than one YAML document\n");
}

static void test_policy_errors(void)
{
	expect_errors("policies:\n  netwrk: { action: retry }\n",
		      "t.yaml:2: policies.netwrk: unknown error class 'netwrk' (one of "
		      "invalid_event, invalid_request, permission, resource, timeout, network, "
		      "application, unknown)\n");
	expect_errors("policies:\n  credentials: { action: retry }\n",
		      "t.yaml:2: policies.credentials: class 'credentials' has no policy: such "
		      "events are always held until an access token can be had\n");
	expect_errors("policies:\n  network: { action: hold }\n",
		      "t.yaml:2: policies.network.action: unknown action 'hold' (retry, "
		      "dead_letter or drop)\n");
	expect_errors("policies:\n  network: { action: later, initial_backoff: 10m }\n"
		      "  timeout: { max_attempts: 0 }\n",
		      "t.yaml:2: policies.network.action: unknown action 'later' (retry, "
		      "dead_letter or drop)\n"
		      "t.yaml:2: policies.network: initial_backoff 10m is greater than max_backoff 5m\n"
		      "t.yaml:3: policies.timeout.max_attempts: must be from 1 to 1000000, got '0'\n");
	expect_errors("project: p\nregion: r\nroutes:\n  - name: x\n    job: j\n"
		      "    policies: { nope: { action: drop } }\n",
		      "t.yaml:6: route 'x': policies.nope: unknown error class 'nope' (one of "
		      "invalid_event, invalid_request, permission, resource, timeout, network, "
		      "application, unknown)\n");
}

static void test_route_errors(void)
{
	expect_errors("project: p\nregion: r\n"
		      "routes:\n"
		      "  - name: a\n"
		      "    job: j\n"
		      "  - name: a\n"
		      "    job: k\n"
		      "  - job: z\n"
		      "  - name: b\n"
		      "  - name: \"bad name\"\n"
		      "    job: \"\"\n"
		      "  - just-a-string\n",
		      "t.yaml:6: route 'a': duplicate route name (first at line 4)\n"
		      "t.yaml:8: route #3: missing key 'name'\n"
		      "t.yaml:9: route 'b': missing key 'job'\n"
		      "t.yaml:10: route #5: name: a route name may hold only letters, digits, '-', "
		      "'_' and '.', got 'bad name'\n"
		      "t.yaml:11: route #5: job: must not be empty\n"
		      "t.yaml:12: route #6: expected a mapping, got a scalar\n");
	expect_errors("routes:\n  - name: x\n    job: projects/p/jobs/j\n",
		      "t.yaml:3: route 'x': job: job name 'projects/p/jobs/j' is not "
		      "projects/PROJECT/locations/REGION/jobs/JOB\n");
	expect_errors("project: p\nregion: r\nroutes:\n  - name: x\n    job: \"{{data.job\"\n",
		      "t.yaml:5: route 'x': job: unclosed '{{' at column 1\n");
	expect_errors("project: p\nregion: r\nroutes:\n"
		      "  - name: x\n"
		      "    job: j\n"
		      "    ack: later\n"
		      "    rate_limit: { burst: 3 }\n"
		      "    overrides:\n"
		      "      timeout: 10x\n"
		      "      task_count: [1]\n"
		      "      env:\n"
		      "        INPUT: \"gs://{{data.bucket}}/{{data.name\"\n"
		      "        CE_ID: x\n"
		      "        1A: y\n"
		      "        OBJ: { a: 1 }\n"
		      "        OK: \"{{ nope }}\"\n"
		      "        OK: again\n"
		      "      args: [ \"{{data.}}\", [x] ]\n",
		      "t.yaml:6: route 'x': ack: expected on_dispatch or on_completion, got 'later'\n"
		      "t.yaml:7: route 'x': rate_limit: per_second is required\n"
		      "t.yaml:9: route 'x': overrides.timeout: invalid duration '10x' (use 500ms, "
		      "10s, 5m, 1h)\n"
		      "t.yaml:10: route 'x': overrides.task_count: expected a single value, got a "
		      "list\n"
		      "t.yaml:12: route 'x': overrides.env.INPUT: unclosed '{{' at column 22\n"
		      "t.yaml:13: route 'x': overrides.env.CE_ID: CE_ID is set by jobrelay itself\n"
		      "t.yaml:14: route 'x': overrides.env.1A: an env name is letters, digits, '_', "
		      "'-' and '.', not starting with a digit\n"
		      "t.yaml:15: route 'x': overrides.env.OBJ: expected a single value, got a "
		      "mapping\n"
		      "t.yaml:17: route 'x': overrides.env.OK: duplicate key\n"
		      "t.yaml:18: route 'x': overrides.args[0]: bad data path in {{data.}}\n"
		      "t.yaml:18: route 'x': overrides.args[1]: expected a single value, got a list\n");
	expect_errors("project: p\nregion: r\nroutes:\n"
		      "  - name: x\n"
		      "    job: j\n"
		      "    match:\n"
		      "      type: {}\n"
		      "      source: { any_of: [] }\n"
		      "      subject: [a]\n"
		      "      data: { a: b, \"/x~2\": c, \"/ok\": d }\n"
		      "      extensions: { Foo: b, type: x, ok_1: y }\n"
		      "      attributes: { \"\": x }\n",
		      "t.yaml:7: route 'x': match.type: a condition needs exact, prefix, suffix or "
		      "any_of\n"
		      "t.yaml:8: route 'x': match.source.any_of: must not be an empty list\n"
		      "t.yaml:9: route 'x': match.subject: expected a single value, got a list\n"
		      "t.yaml:10: route 'x': match.data.a: 'a' is not a JSON Pointer (\"/a/0/b\", ~0 "
		      "for ~, ~1 for /)\n"
		      "t.yaml:10: route 'x': match.data./x~2: '/x~2' is not a JSON Pointer "
		      "(\"/a/0/b\", ~0 for ~, ~1 for /)\n"
		      "t.yaml:11: route 'x': match.extensions.Foo: an extension name is lower-case "
		      "letters, digits and '_', and not a context attribute\n"
		      "t.yaml:11: route 'x': match.extensions.type: an extension name is lower-case "
		      "letters, digits and '_', and not a context attribute\n"
		      "t.yaml:12: route 'x': match.attributes.: a message attribute name must not be "
		      "empty\n");
}

static void test_many_errors_one_pass(void)
{
	jr_config c;
	int n;
	char *got = load(&c, "concurrency: x\nfoo: 1\ndedup: {ttl: y}\nroutes: [{name: a}]\n", &n);
	CU_ASSERT_EQUAL(n, 4);
	free(got);
	config_free(&c);
}

static void test_load_file_errors(void)
{
	jr_config c;
	jr_buf errs;
	buf_init(&errs, 0);
	CU_ASSERT_EQUAL(config_load_file(&c, "/nonexistent/jobrelay.yaml", &errs), 1);
	CU_ASSERT_STRING_EQUAL(errs.data, "/nonexistent/jobrelay.yaml: cannot read: No such file "
					  "or directory\n");
	CU_ASSERT_EQUAL(c.concurrency, 64);
	config_free(&c);
	buf_free(&errs);
}

static void test_parse_duration(void)
{
	static const struct {
		const char *s;
		int64_t ms;
	} cases[] = {
		{"500ms", 500},   {"10s", 10000},     {"5m", 300000},     {"1h", 3600000},
		{"0", 0},         {"0s", 0},          {"30", 30000},      {"1.5", 1500},
		{"1.5s", 1500},   {"0.25s", 250},     {"1h30m", 5400000}, {"2m30s", 150000},
		{"1m500ms", 60500}, {"", -1},         {"s", -1},          {"10x", -1},
		{"-1s", -1},      {"1.s", -1},        {".5s", -1},        {" 1s", -1},
		{"1s ", -1},      {"1h30", -1},       {"1d", -1},         {"10 s", -1},
		{"99999999999999999999s", -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t got = parse_duration_ms(cases[i].s);
		CU_ASSERT_EQUAL(got, cases[i].ms);
		if (got != cases[i].ms)
			fprintf(stderr, "\nparse_duration_ms(\"%s\") = %lld\n", cases[i].s,
				(long long)got);
	}
	CU_ASSERT_EQUAL(parse_duration_ms(NULL), -1);
}

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		int64_t n;
	} cases[] = {
		{"512", 512},           {"512B", 512},         {"64KiB", 65536},
		{"10MiB", 10485760},    {"1GiB", 1073741824},  {"1TiB", 1099511627776LL},
		{"2KB", 2000},          {"2kB", 2000},         {"3MB", 3000000},
		{"1GB", 1000000000},    {"", -1},              {"KiB", -1},
		{"1.5MiB", -1},         {"-1", -1},            {"10 MiB", -1},
		{"10mib", -1},          {"99999999999GiB", -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t got = parse_size(cases[i].s);
		CU_ASSERT_EQUAL(got, cases[i].n);
		if (got != cases[i].n)
			fprintf(stderr, "\nparse_size(\"%s\") = %lld\n", cases[i].s, (long long)got);
	}
}

/* test_filter_errors: filters: problems, each with its line, the route and the filter's path. */
static void test_filter_errors(void)
{
	expect_errors("project: p\nregion: r\nroutes:\n  - name: b\n    job: j\n    filters:\n"
		      "      - sql: \"type = 'x' AND (subject\"\n"
		      "      - exact: { type: \"\" }\n"
		      "      - all: []\n"
		      "      - prefix: { Bad_Name: x }\n"
		      "      - cesql: \"nope(1)\"\n"
		      "      - exact: { type: x }\n"
		      "        prefix: { type: x }\n"
		      "      - what: { type: x }\n"
		      "      - not: [ { exact: { type: x } } ]\n"
		      "      - any: [ { sql: \"a LIKE 1\" } ]\n",
		      "t.yaml:7: route 'b': filters[0].sql: expected ')' at position 24\n"
		      "t.yaml:8: route 'b': filters[1].exact.type: must not be empty\n"
		      "t.yaml:9: route 'b': filters[2].all: must not be an empty list\n"
		      "t.yaml:10: route 'b': filters[3].prefix.Bad_Name: an attribute name is lower-case "
		      "letters and digits\n"
		      "t.yaml:11: route 'b': filters[4].cesql: no built-in function NOPE takes these "
		      "arguments\n"
		      "t.yaml:12: route 'b': filters[5]: a filter is a mapping with one key: exact, prefix, "
		      "suffix, all, any, not or sql (or cesql)\n"
		      "t.yaml:14: route 'b': filters[6].what: unknown filter dialect (exact, prefix, "
		      "suffix, all, any, not, sql or cesql)\n"
		      "t.yaml:15: route 'b': filters[7].not: a filter is a mapping with one key: exact, "
		      "prefix, suffix, all, any, not or sql (or cesql)\n"
		      "t.yaml:16: route 'b': filters[8].any[0].sql: LIKE needs a string literal pattern at "
		      "position 8\n");
	expect_errors("routes:\n  - name: b\n    job: projects/p/locations/r/jobs/j\n"
		      "    filters: { exact: { type: x } }\n",
		      "t.yaml:4: route 'b': filters: expected a list of filters\n");
	char deep[2048] = "routes:\n  - name: d\n    job: projects/p/locations/r/jobs/j\n    filters:\n      - ";
	for (int i = 0; i < JR_FILTER_MAX_DEPTH + 1; i++)
		strcat(deep, "not: { ");
	strcat(deep, "exact: { type: x }");
	for (int i = 0; i < JR_FILTER_MAX_DEPTH + 1; i++)
		strcat(deep, " }");
	strcat(deep, "\n");
	jr_config c;
	int n;
	char *got = load(&c, deep, &n);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(got, "filters nest deeper than 16 levels"));
	free(got);
	config_free(&c);
}

/* Template functions are checked at load: the route, the field and the column. */
static void test_template_function_errors(void)
{
	expect_errors("project: p\nregion: r\nroutes:\n"
		      "  - name: x\n"
		      "    job: \"{{ data.job | lowr }}\"\n"
		      "    overrides:\n"
		      "      env: { A: \"v={{ data.a | substring 1 }}\", B: \"{{ id | default }}\" }\n"
		      "      args: [ \"{{ id | split \\\"/\\\" x }}\" ]\n",
		      "t.yaml:5: route 'x': job: unknown function 'lowr' at column 15 (default, "
		      "b64enc, b64dec, toJson, lower, upper, substring, split)\n"
		      "t.yaml:7: route 'x': overrides.env.A: substring takes 2 arguments "
		      "(substring START LENGTH) at column 15\n"
		      "t.yaml:7: route 'x': overrides.env.B: default takes 1 argument "
		      "(default \"TEXT\") at column 9\n"
		      "t.yaml:8: route 'x': overrides.args[0]: expected an integer at column 19\n");
}

static void test_payload_config(void)
{
	jr_config c;
	expect_ok(&c, "project: p\nregion: r\nlimits: { json_depth: 9 }\nroutes:\n"
		      "  - name: a\n    job: j\n    payload: json\n"
		      "    match: { payload: { /kind: refund, /n: { prefix: \"1\" } } }\n"
		      "  - name: b\n    job: j\n    payload: auto\n"
		      "    overrides: { env: { K: \"{{ payload.kind? }}\" } }\n"
		      "  - name: c\n    job: j\n    payload: none\n");
	CU_ASSERT_EQUAL(c.routes[0].payload.mode, JR_PAYLOAD_JSON);
	CU_ASSERT_PTR_NOT_NULL(c.routes[0].payload.parse);
	CU_ASSERT_EQUAL(c.routes[0].payload.max_depth, 9);
	CU_ASSERT_EQUAL(c.routes[0].n_conds, 2);
	CU_ASSERT_EQUAL(c.routes[0].conds[0].where, JR_COND_PAYLOAD);
	CU_ASSERT_EQUAL(c.routes[1].payload.mode, JR_PAYLOAD_AUTO);
	CU_ASSERT_EQUAL(c.routes[2].payload.mode, JR_PAYLOAD_NONE);
	CU_ASSERT_PTR_NULL(c.routes[2].payload.parse);
	config_free(&c);
	expect_errors("project: p\nregion: r\nroutes:\n"
		      "  - name: a\n    job: j\n    payload: yaml\n"
		      "  - name: b\n    job: j\n    match: { payload: { kind: x } }\n"
		      "  - name: c\n    job: j\n    match: { payload: { /kind: x } }\n"
		      "  - name: d\n    job: j\n    overrides: { args: [x, \"{{payload}}\"] }\n",
		      "t.yaml:6: route 'a': payload: expected none, json or auto, got 'yaml'\n"
		      "t.yaml:9: route 'b': match.payload.kind: 'kind' is not a JSON Pointer "
		      "(\"/a/0/b\", ~0 for ~, ~1 for /)\n"
		      "t.yaml:10: route 'c': match.payload reads the payload: the route needs "
		      "payload: json or auto\n"
		      "t.yaml:13: route 'd': overrides.args[1] reads the payload: the route needs "
		      "payload: json or auto\n");
}

int main(void)
{
	static const cu_test tests[] = {
		{"defaults", test_defaults},
		{"examples/jobrelay.yaml", test_example_file},
		{"full example", test_spec_example},
		{"JSON config", test_json_config},
		{"all keys", test_all_keys},
		{"policy inheritance", test_policy_inheritance},
		{"project fallback", test_project_fallback},
		{"unknown keys", test_unknown_keys},
		{"bad values", test_bad_values},
		{"auth: mode, audience as a string or a list", test_auth_section},
		{"policy errors", test_policy_errors},
		{"route errors", test_route_errors},
		{"filters: errors", test_filter_errors},
		{"template function errors", test_template_function_errors},
		{"payload", test_payload_config},
		{"many errors in one pass", test_many_errors_one_pass},
		{"load file errors", test_load_file_errors},
		{"parse_duration_ms", test_parse_duration},
		{"parse_size", test_parse_size},
		{NULL, NULL},
	};
	return cu_run("config", tests);
}
