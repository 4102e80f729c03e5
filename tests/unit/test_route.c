#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_load.h"
#include "cu.h"
#include "route.h"
#include "testev.h"

/* load: a config from YAML text that must load without errors. */
static jr_config *load(const char *yaml)
{
	jr_config *c = jr_calloc(1, sizeof *c);
	jr_buf errs;
	buf_init(&errs, 0);
	int n = config_load_string(c, "t.yaml", yaml, strlen(yaml), &errs);
	if (n)
		fprintf(stderr, "unexpected config errors:\n%s", errs.data);
	CU_ASSERT_EQUAL(n, 0);
	buf_free(&errs);
	return c;
}

static void unload(jr_config *c)
{
	config_free(c);
	free(c);
}

/* match_yaml: route_match of the only route whose match: is given as flow YAML. */
static int match_yaml(const char *match, jr_event *ev)
{
	char *yaml = jr_asprintf("project: p\nregion: r\nroutes:\n"
				 "  - name: x\n    job: j\n    match: %s\n", match);
	jr_config *c = load(yaml);
	free(yaml);
	CU_ASSERT_EQUAL_FATAL(c->n_routes, 1);
	int m = route_match(&c->routes[0], ev);
	unload(c);
	return m;
}

static jr_event *storage_event(void)
{
	jr_event *ev = tev_new("e1", "//storage.googleapis.com/projects/_/buckets/uploads",
			       "google.cloud.storage.object.v1.finalized");
	ev->subject = "objects/in/a.csv";
	ev->time = "2024-05-01T08:15:42Z";
	tev_ext(ev, "bucket", tev_str(ev, "uploads"));
	tev_ext(ev, "count", tev_num(ev, "12"));
	tev_ext(ev, "flag", tev_lit(ev, JR_JSON_TRUE));
	jr_json *data = tev_obj(ev);
	tev_put(ev, data, "contentType", tev_str(ev, "text/csv"));
	tev_put(ev, data, "name", tev_str(ev, "in/a.csv"));
	tev_put(ev, data, "size", tev_num(ev, "48213"));
	tev_put(ev, data, "public", tev_lit(ev, JR_JSON_FALSE));
	tev_put(ev, data, "gone", tev_lit(ev, JR_JSON_NULL));
	tev_put(ev, data, "a/b", tev_str(ev, "slash"));
	tev_put(ev, data, "m~n", tev_str(ev, "tilde"));
	jr_json *tags = tev_arr(ev);
	tev_push(ev, tags, tev_str(ev, "red"));
	tev_push(ev, tags, tev_put(ev, tev_obj(ev), "k", tev_str(ev, "v")));
	tev_put(ev, data, "tags", tags);
	tev_put(ev, data, "obj", tev_put(ev, tev_obj(ev), "x", tev_num(ev, "1")));
	tev_data_json(ev, data);
	return ev;
}

static void test_match_string_conditions(void)
{
	jr_event *ev = storage_event();
	CU_ASSERT_TRUE(match_yaml("{type: google.cloud.storage.object.v1.finalized}", ev));
	CU_ASSERT_FALSE(match_yaml("{type: google.cloud.storage.object.v1.deleted}", ev));
	CU_ASSERT_FALSE(match_yaml("{type: google.cloud.storage}", ev));
	CU_ASSERT_TRUE(match_yaml("{type: {exact: google.cloud.storage.object.v1.finalized}}", ev));
	CU_ASSERT_TRUE(match_yaml("{source: {prefix: \"//storage.googleapis.com/\"}}", ev));
	CU_ASSERT_FALSE(match_yaml("{source: {prefix: \"//pubsub.googleapis.com/\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{subject: {suffix: .csv}}", ev));
	CU_ASSERT_FALSE(match_yaml("{subject: {suffix: .json}}", ev));
	CU_ASSERT_FALSE(match_yaml("{subject: {suffix: xobjects/in/a.csv}}", ev));
	CU_ASSERT_TRUE(match_yaml("{subject: {prefix: objects/in/a.csv}}", ev));
	CU_ASSERT_TRUE(match_yaml("{id: {any_of: [e0, e1, e2]}}", ev));
	CU_ASSERT_FALSE(match_yaml("{id: {any_of: [e0, e2]}}", ev));
	CU_ASSERT_TRUE(match_yaml("{time: {prefix: \"2024-05\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{specversion: \"1.0\"}", ev));
	event_free(ev);
}

static void test_match_combined(void)
{
	jr_event *ev = storage_event();
	/* every part of one condition must hold */
	CU_ASSERT_TRUE(match_yaml("{subject: {prefix: objects/, suffix: .csv, any_of: "
				  "[objects/in/a.csv, x]}}", ev));
	CU_ASSERT_FALSE(match_yaml("{subject: {prefix: objects/, suffix: .json}}", ev));
	CU_ASSERT_FALSE(match_yaml("{subject: {prefix: objects/, any_of: [x, y]}}", ev));
	/* and every condition of a route */
	CU_ASSERT_TRUE(match_yaml("{type: google.cloud.storage.object.v1.finalized, "
				  "source: {suffix: /uploads}, subject: {suffix: .csv}, "
				  "extensions: {bucket: uploads}, data: {/contentType: text/csv}}",
				  ev));
	CU_ASSERT_FALSE(match_yaml("{type: google.cloud.storage.object.v1.finalized, "
				   "source: {suffix: /uploads}, subject: {suffix: .txt}}",
				   ev));
	event_free(ev);
}

static void test_match_empty_matches_all(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	CU_ASSERT_TRUE(match_yaml("{}", ev));
	jr_config *c = load("project: p\nregion: r\nroutes: [{name: x, job: j}]\n");
	CU_ASSERT_EQUAL(c->routes[0].n_conds, 0);
	CU_ASSERT_TRUE(route_match(&c->routes[0], ev));
	unload(c);
	event_free(ev);
}

static void test_match_missing_never_matches(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	CU_ASSERT_FALSE(match_yaml("{subject: {prefix: \"\"}}", ev));
	CU_ASSERT_FALSE(match_yaml("{dataschema: {suffix: \"\"}}", ev));
	CU_ASSERT_FALSE(match_yaml("{extensions: {bucket: {prefix: \"\"}}}", ev));
	CU_ASSERT_FALSE(match_yaml("{attributes: {env: {prefix: \"\"}}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {\"\": {prefix: \"\"}}}", ev));
	ev->subject = "";
	CU_ASSERT_TRUE(match_yaml("{subject: {prefix: \"\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{subject: \"\"}", ev));
	event_free(ev);
}

static void test_match_extensions(void)
{
	jr_event *ev = storage_event();
	CU_ASSERT_TRUE(match_yaml("{extensions: {bucket: uploads}}", ev));
	CU_ASSERT_FALSE(match_yaml("{extensions: {bucket: downloads}}", ev));
	CU_ASSERT_TRUE(match_yaml("{extensions: {count: \"12\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{extensions: {count: 12}}", ev));
	CU_ASSERT_TRUE(match_yaml("{extensions: {flag: \"true\"}}", ev));
	CU_ASSERT_FALSE(match_yaml("{extensions: {other: x}}", ev));
	CU_ASSERT_TRUE(match_yaml("{extensions: {bucket: {prefix: up, suffix: ads}}}", ev));
	event_free(ev);
}

static void test_match_message_attributes(void)
{
	jr_event *ev = tev_new("1", "s", "t");
	CU_ASSERT_FALSE(match_yaml("{attributes: {env: prod}}", ev));
	jr_message *m = tev_message(ev, "m1", NULL, NULL);
	tev_msg_attr(ev, m, "env", "prod");
	tev_msg_attr(ev, m, "team", "data-eng");
	CU_ASSERT_TRUE(match_yaml("{attributes: {env: prod}}", ev));
	CU_ASSERT_TRUE(match_yaml("{attributes: {env: prod, team: {prefix: data-}}}", ev));
	CU_ASSERT_FALSE(match_yaml("{attributes: {env: staging}}", ev));
	CU_ASSERT_FALSE(match_yaml("{attributes: {region: eu}}", ev));
	/* message attributes and extensions are separate namespaces */
	CU_ASSERT_FALSE(match_yaml("{extensions: {env: prod}}", ev));
	event_free(ev);
}

static void test_match_data_pointer(void)
{
	jr_event *ev = storage_event();
	CU_ASSERT_TRUE(match_yaml("{data: {/contentType: text/csv}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/contentType: text/plain}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/size: \"48213\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/size: {prefix: \"48\"}}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/public: \"false\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/gone: \"null\"}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/a~1b: slash}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/m~0n: tilde}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/a/b: slash}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/tags/0: red}}", ev));
	CU_ASSERT_TRUE(match_yaml("{data: {/tags/1/k: v}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/tags/2: red}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/tags/00: red}}", ev));
	/* objects and arrays have no text to compare: never a match */
	CU_ASSERT_FALSE(match_yaml("{data: {/obj: {prefix: \"\"}}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/tags: {prefix: \"\"}}}", ev));
	CU_ASSERT_FALSE(match_yaml("{data: {/nope: x}}", ev));
	event_free(ev);

	/* data that is not JSON never matches a data condition */
	ev = tev_new("1", "s", "t");
	tev_data(ev, JR_DATA_TEXT, "{\"a\":\"b\"}", 9);
	CU_ASSERT_FALSE(match_yaml("{data: {/a: b}}", ev));
	tev_data_json(ev, tev_str(ev, "whole"));
	CU_ASSERT_TRUE(match_yaml("{data: {\"\": whole}}", ev));
	event_free(ev);
}

/* ---- rendering ---- */

static const char *env_of(const jr_runreq *q, const char *name)
{
	for (size_t i = 0; i < q->n_env; i++)
		if (!strcmp(q->env[i].key, name))
			return q->env[i].value;
	return NULL;
}

static char *env_names(const jr_runreq *q)
{
	jr_buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < q->n_env; i++)
		buf_printf(&b, "%s%s", i ? "," : "", q->env[i].key);
	return buf_take(&b);
}

static char *request_json(const jr_runreq *q)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(runreq_write_json(&b, q), 0);
	return buf_take(&b);
}

static const char *const render_yaml =
	"project: demo\n"
	"region: europe-west2\n"
	"routes:\n"
	"  - name: csv\n"
	"    job: ingest-csv\n"
	"    overrides:\n"
	"      env: { INPUT: \"gs://{{bucket}}/{{data.name}}\", SIZE: \"{{data.size}}\" }\n"
	"      args: [ --input, \"{{data.name}}\" ]\n"
	"      task_count: 1\n"
	"      timeout: 10m\n"
	"  - name: other-project\n"
	"    job: reports\n"
	"    project: acme-batch\n"
	"    region: us-central1\n"
	"    overrides: { container: worker, args: [], timeout: 1500ms }\n"
	"  - name: full\n"
	"    job: projects/p9/locations/asia-east1/jobs/j9\n"
	"    overrides: { timeout: 1ms }\n"
	"  - name: templated\n"
	"    job: \"{{data.job}}\"\n"
	"  - name: missing\n"
	"    job: j\n"
	"    overrides:\n"
	"      env: { A: x, INPUT: \"{{data.nope}}\" }\n"
	"  - name: missing-arg\n"
	"    job: j\n"
	"    overrides: { args: [ ok, \"{{data.nope}}\" ] }\n"
	"  - name: missing-job\n"
	"    job: \"{{data.nope}}-x\"\n";

static jr_event *render_event(const char *job)
{
	jr_event *ev = storage_event();
	if (job)
		tev_put(ev, (jr_json *)ev->data_json, "job", tev_str(ev, job));
	return ev;
}

static void test_render_basic(void)
{
	jr_config *c = load(render_yaml);
	jr_event *ev = render_event(NULL);
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(route_render(c, &c->routes[0], ev, &q, &err), 0);
	CU_ASSERT_PTR_NULL(err);
	CU_ASSERT_STRING_EQUAL(q.name, "projects/demo/locations/europe-west2/jobs/ingest-csv");
	CU_ASSERT_PTR_NULL(q.container);
	char key[17];
	route_key(ev->source, ev->id, "csv", key);
	CU_ASSERT_STRING_EQUAL(q.key, key);
	char *names = env_names(&q);
	CU_ASSERT_STRING_EQUAL(names, "INPUT,SIZE,CE_ID,CE_SOURCE,CE_TYPE,CE_SUBJECT,CE_TIME,"
				      "JOBRELAY_ROUTE,JOBRELAY_KEY");
	free(names);
	CU_ASSERT_STRING_EQUAL(env_of(&q, "INPUT"), "gs://uploads/in/a.csv");
	CU_ASSERT_STRING_EQUAL(env_of(&q, "SIZE"), "48213");
	CU_ASSERT_STRING_EQUAL(env_of(&q, "CE_ID"), "e1");
	CU_ASSERT_STRING_EQUAL(env_of(&q, "CE_SUBJECT"), "objects/in/a.csv");
	CU_ASSERT_STRING_EQUAL(env_of(&q, "JOBRELAY_ROUTE"), "csv");
	CU_ASSERT_STRING_EQUAL(env_of(&q, "JOBRELAY_KEY"), key);
	CU_ASSERT_EQUAL(q.n_args, 2);
	CU_ASSERT_TRUE(q.has_args);
	CU_ASSERT_EQUAL(q.task_count, 1);
	CU_ASSERT_EQUAL(q.timeout_ms, 600000);
	event_free(ev);
	unload(c);
	char *json = request_json(&q);
	char *want = jr_asprintf(
		"{\"name\":\"projects/demo/locations/europe-west2/jobs/ingest-csv\","
		"\"overrides\":{\"containerOverrides\":[{\"env\":["
		"{\"name\":\"INPUT\",\"value\":\"gs://uploads/in/a.csv\"},"
		"{\"name\":\"SIZE\",\"value\":\"48213\"},"
		"{\"name\":\"CE_ID\",\"value\":\"e1\"},"
		"{\"name\":\"CE_SOURCE\",\"value\":\"//storage.googleapis.com/projects/_/buckets/uploads\"},"
		"{\"name\":\"CE_TYPE\",\"value\":\"google.cloud.storage.object.v1.finalized\"},"
		"{\"name\":\"CE_SUBJECT\",\"value\":\"objects/in/a.csv\"},"
		"{\"name\":\"CE_TIME\",\"value\":\"2024-05-01T08:15:42Z\"},"
		"{\"name\":\"JOBRELAY_ROUTE\",\"value\":\"csv\"},"
		"{\"name\":\"JOBRELAY_KEY\",\"value\":\"%s\"}],"
		"\"args\":[\"--input\",\"in/a.csv\"]}],"
		"\"taskCount\":1,\"timeout\":\"600s\"}}",
		key);
	CU_ASSERT_STRING_EQUAL(json, want);
	free(json);
	free(want);
	runreq_free(&q);
}

static void test_render_auto_env_without_subject_time(void)
{
	jr_config *c = load(render_yaml);
	jr_event *ev = tev_new("id\"1", "src", "typ");
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(route_render(c, &c->routes[1], ev, &q, &err), 0);
	char *names = env_names(&q);
	CU_ASSERT_STRING_EQUAL(names, "CE_ID,CE_SOURCE,CE_TYPE,JOBRELAY_ROUTE,JOBRELAY_KEY");
	free(names);
	CU_ASSERT_STRING_EQUAL(q.name, "projects/acme-batch/locations/us-central1/jobs/reports");
	/* the request owns its strings: it outlives the event and the config */
	event_free(ev);
	unload(c);
	char *json = request_json(&q);
	char *want = jr_asprintf(
		"{\"name\":\"projects/acme-batch/locations/us-central1/jobs/reports\","
		"\"overrides\":{\"containerOverrides\":[{\"name\":\"worker\",\"env\":["
		"{\"name\":\"CE_ID\",\"value\":\"id\\\"1\"},"
		"{\"name\":\"CE_SOURCE\",\"value\":\"src\"},"
		"{\"name\":\"CE_TYPE\",\"value\":\"typ\"},"
		"{\"name\":\"JOBRELAY_ROUTE\",\"value\":\"other-project\"},"
		"{\"name\":\"JOBRELAY_KEY\",\"value\":\"%s\"}],"
		"\"clearArgs\":true}],\"timeout\":\"1.5s\"}}",
		q.key);
	CU_ASSERT_STRING_EQUAL(json, want);
	free(json);
	free(want);
	runreq_free(&q);
}

static void test_render_job_names(void)
{
	jr_config *c = load(render_yaml);
	jr_event *ev = render_event("projects/x/locations/y/jobs/z");
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[2], ev, &q, &err), 0);
	CU_ASSERT_STRING_EQUAL(q.name, "projects/p9/locations/asia-east1/jobs/j9");
	char *json = request_json(&q);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"timeout\":\"0.001s\"}}"));
	CU_ASSERT_PTR_NULL(strstr(json, "args"));
	CU_ASSERT_PTR_NULL(strstr(json, "taskCount"));
	free(json);
	runreq_free(&q);

	CU_ASSERT_EQUAL(route_render(c, &c->routes[3], ev, &q, &err), 0);
	CU_ASSERT_STRING_EQUAL(q.name, "projects/x/locations/y/jobs/z");
	runreq_free(&q);
	event_free(ev);

	ev = render_event("plain-job");
	CU_ASSERT_EQUAL(route_render(c, &c->routes[3], ev, &q, &err), 0);
	CU_ASSERT_STRING_EQUAL(q.name, "projects/demo/locations/europe-west2/jobs/plain-job");
	runreq_free(&q);
	event_free(ev);

	static const char *const bad[][2] = {
		{"projects/x/locations/y/jobs/",
		 "job name 'projects/x/locations/y/jobs/' is not projects/PROJECT/locations/REGION/jobs/JOB"},
		{"projects/x/jobs/z",
		 "job name 'projects/x/jobs/z' is not projects/PROJECT/locations/REGION/jobs/JOB"},
		{"projects/x/locations/y/jobs/z/more",
		 "job name 'projects/x/locations/y/jobs/z/more' is not projects/PROJECT/locations/REGION/jobs/JOB"},
		{"two words", "job 'two words' is not a valid job id"},
		{"", "job '' is not a valid job id"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ev = render_event(bad[i][0]);
		CU_ASSERT_EQUAL(route_render(c, &c->routes[3], ev, &q, &err), -1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(err);
		CU_ASSERT_STRING_EQUAL(err, bad[i][1]);
		free(err);
		runreq_free(&q);
		event_free(ev);
	}
	unload(c);
}

static void test_render_no_project_or_region(void)
{
	unsetenv("GOOGLE_CLOUD_PROJECT");
	jr_config *c = load("routes:\n"
			    "  - { name: a, job: \"{{data.job}}\" }\n"
			    "  - { name: b, job: \"{{data.job}}\", project: p }\n");
	jr_event *ev = render_event("j");
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[0], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "no project for job 'j': set project in the route or the "
				    "config, or $GOOGLE_CLOUD_PROJECT");
	free(err);
	runreq_free(&q);
	CU_ASSERT_EQUAL(route_render(c, &c->routes[1], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "no region for job 'j': set region in the route or the config");
	free(err);
	runreq_free(&q);
	event_free(ev);
	unload(c);
}

static void test_render_missing_fields(void)
{
	jr_config *c = load(render_yaml);
	jr_event *ev = render_event(NULL);
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[4], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "template {{data.nope}} in env INPUT: no such field");
	free(err);
	runreq_free(&q);
	CU_ASSERT_EQUAL(route_render(c, &c->routes[5], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "template {{data.nope}} in args[1]: no such field");
	free(err);
	runreq_free(&q);
	CU_ASSERT_EQUAL(route_render(c, &c->routes[6], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "template {{data.nope}} in job: no such field");
	free(err);
	runreq_free(&q);
	CU_ASSERT_EQUAL(route_render(c, &c->routes[3], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "template {{data.job}} in job: no such field");
	free(err);
	runreq_free(&q);
	event_free(ev);
	unload(c);
}

static void test_timeout_formats(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{600000, "\"timeout\":\"600s\""}, {1500, "\"timeout\":\"1.5s\""},
		{1, "\"timeout\":\"0.001s\""},    {1020, "\"timeout\":\"1.02s\""},
		{999, "\"timeout\":\"0.999s\""},  {86400000, "\"timeout\":\"86400s\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		jr_runreq q = {.name = "n", .timeout_ms = cases[i].ms};
		char *json = request_json(&q);
		CU_ASSERT_PTR_NOT_NULL(strstr(json, cases[i].want));
		free(json);
	}
}

static void test_route_key(void)
{
	char a[17], b[17];
	route_key("src", "id-1", "route", a);
	CU_ASSERT_EQUAL(strlen(a), 16);
	CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 16);
	/* stable: FNV-1a 64 of "src\0id-1\0route" */
	CU_ASSERT_STRING_EQUAL(a, "d29671ec72a076ed");
	route_key("src", "id-1", "route", b);
	CU_ASSERT_STRING_EQUAL(a, b);
	route_key("src", "id-2", "route", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	route_key("src2", "id-1", "route", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	route_key("src", "id-1", "route2", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* the separators keep shifted boundaries apart */
	route_key("ab", "c", "r", a);
	route_key("a", "bc", "r", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	route_key("s", "ir", "", a);
	route_key("s", "i", "r", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

static void test_job_display(void)
{
	jr_config *c = load(render_yaml);
	char *s = route_job_display(c, &c->routes[0]);
	CU_ASSERT_STRING_EQUAL(s, "projects/demo/locations/europe-west2/jobs/ingest-csv");
	free(s);
	s = route_job_display(c, &c->routes[1]);
	CU_ASSERT_STRING_EQUAL(s, "projects/acme-batch/locations/us-central1/jobs/reports");
	free(s);
	s = route_job_display(c, &c->routes[2]);
	CU_ASSERT_STRING_EQUAL(s, "projects/p9/locations/asia-east1/jobs/j9");
	free(s);
	s = route_job_display(c, &c->routes[3]);
	CU_ASSERT_STRING_EQUAL(s, "projects/demo/locations/europe-west2/jobs/{{data.job}}");
	free(s);
	s = route_job_display(c, &c->routes[6]);
	CU_ASSERT_STRING_EQUAL(s, "projects/demo/locations/europe-west2/jobs/{{data.nope}}-x");
	free(s);
	unload(c);
}

/* ---- payload: a plain Pub/Sub message's body ---- */

/* mp_event: a messagePublished event as rule 3 decodes it, the body in data.message.data. */
static jr_event *mp_event(const char *body)
{
	jr_event *ev = tev_new("m-1", "//pubsub.googleapis.com/projects/p/topics/orders",
			       "google.cloud.pubsub.topic.v1.messagePublished");
	jr_buf b;
	buf_init(&b, 0);
	base64_encode(&b, body, strlen(body));
	jr_json *m = tev_put(ev, tev_obj(ev), "data", tev_str(ev, b.data ? b.data : ""));
	tev_put(ev, m, "messageId", tev_str(ev, "m-1"));
	tev_data_json(ev, tev_put(ev, tev_obj(ev), "message", m));
	buf_free(&b);
	return ev;
}

static const char payload_yaml[] =
	"project: p\nregion: r\nroutes:\n"
	"  - name: refunds\n"
	"    job: refund-job\n"
	"    payload: json\n"
	"    match: { type: google.cloud.pubsub.topic.v1.messagePublished, "
	"payload: { /kind: refund } }\n"
	"    overrides:\n"
	"      env: { ORDER: \"{{ payload.orderId }}\", KIND: \"{{ payload.kind | upper }}\" }\n"
	"  - name: all-json\n"
	"    job: audit\n"
	"    payload: json\n"
	"    overrides: { env: { BODY: \"{{ payload | toJson }}\", N: \"{{ payload.n? }}\" } }\n"
	"  - name: text\n"
	"    job: text\n"
	"    payload: auto\n"
	"    overrides: { env: { BODY: \"{{ payload }}\", KIND: \"{{ payload.kind? }}\" } }\n"
	"  - name: plain\n"
	"    job: plain\n"
	"    match: { type: google.cloud.pubsub.topic.v1.messagePublished }\n";

static char *render_env(const jr_config *c, size_t ri, jr_event *ev, const char *name)
{
	jr_runreq q;
	char *err = NULL;
	char *v = NULL;
	if (route_render(c, &c->routes[ri], ev, &q, &err) == 0)
		v = jr_strdup(env_of(&q, name) ? env_of(&q, name) : "<unset>");
	else
		v = err ? jr_asprintf("<error:%s>", err) : jr_strdup("<error>");
	free(err);
	runreq_free(&q);
	return v;
}

#define CHECK_ENV(c, ri, ev, name, want)                     \
	do {                                                 \
		char *v_ = render_env(c, ri, ev, name);      \
		CU_ASSERT_STRING_EQUAL(v_, want);            \
		if (strcmp(v_, want))                        \
			fprintf(stderr, "\ngot %s\n", v_);   \
		free(v_);                                    \
	} while (0)

static void test_payload_json(void)
{
	jr_config *c = load(payload_yaml);
	jr_event *ev = mp_event("{\"orderId\": \"O-1\", \"kind\": \"refund\"}");
	CU_ASSERT_TRUE(route_match(&c->routes[3], ev));
	CU_ASSERT_FALSE(ev->payload_done); /* no route that reads it has looked yet */
	CU_ASSERT_TRUE(route_match(&c->routes[0], ev));
	CU_ASSERT_TRUE(ev->payload_done);
	const jr_json *first = ev->payload;
	CHECK_ENV(c, 0, ev, "ORDER", "O-1");
	CHECK_ENV(c, 0, ev, "KIND", "REFUND");
	CHECK_ENV(c, 1, ev, "BODY", "{\"orderId\":\"O-1\",\"kind\":\"refund\"}");
	CHECK_ENV(c, 1, ev, "N", "");
	CHECK_ENV(c, 2, ev, "KIND", "refund");
	CU_ASSERT_PTR_EQUAL(ev->payload, first); /* decoded once for every route */
	const char *err = "x";
	CU_ASSERT_PTR_EQUAL(route_payload(&c->routes[1], ev, &err), first);
	CU_ASSERT_PTR_NULL(err);
	CU_ASSERT_PTR_NULL(route_payload(&c->routes[3], ev, &err)); /* plain reads no payload */
	event_free(ev);

	ev = mp_event("{\"orderId\": \"O-2\", \"kind\": \"sale\"}");
	CU_ASSERT_FALSE(route_match(&c->routes[0], ev));
	CU_ASSERT_TRUE(route_match(&c->routes[1], ev));
	event_free(ev);
	unload(c);
}

/* A body that is not JSON: invalid for payload: json routes (render names why), text for auto. */
static void test_payload_not_json(void)
{
	jr_config *c = load(payload_yaml);
	jr_event *ev = mp_event("kind=refund");
	/* the type holds and the payload cannot be read: the route takes the event to refuse it */
	CU_ASSERT_TRUE(route_match(&c->routes[0], ev));
	CHECK_ENV(c, 0, ev, "ORDER", "<error:payload: invalid JSON at byte 1: invalid char in json "
				     "text. (the route reads it as json)>");
	CHECK_ENV(c, 2, ev, "BODY", "kind=refund");
	CHECK_ENV(c, 2, ev, "KIND", "");
	const char *err = NULL;
	CU_ASSERT_PTR_NULL(route_payload(&c->routes[1], ev, &err));
	CU_ASSERT_PTR_NOT_NULL(err);
	event_free(ev);

	ev = mp_event("\xff\xfe binary");
	CHECK_ENV(c, 2, ev, "BODY", "<error:payload: the message data is neither JSON nor UTF-8 "
				    "text (the route reads it as auto)>");
	event_free(ev);
	unload(c);
}

/* Events that are not plain messages, or have no body, have no payload: nothing to refuse. */
static void test_payload_absent(void)
{
	jr_config *c = load(payload_yaml);
	jr_event *ev = storage_event();
	CU_ASSERT_FALSE(route_match(&c->routes[0], ev));
	CU_ASSERT_TRUE(route_match(&c->routes[1], ev));
	CHECK_ENV(c, 1, ev, "BODY", "<error:template {{payload}} in env BODY: no such field>");
	event_free(ev);
	ev = mp_event("");
	CU_ASSERT_FALSE(route_match(&c->routes[0], ev));
	CHECK_ENV(c, 2, ev, "KIND", "<error:template {{payload}} in env BODY: no such field>");
	event_free(ev);
	unload(c);
}

/* A function that fails on the event's value is that event's render error, with its column. */
static void test_render_function_error(void)
{
	jr_config *c = load("project: p\nregion: r\nroutes:\n"
			    "  - name: x\n    job: j\n"
			    "    overrides: { args: [ok, \"-{{ data.name | b64dec }}\"] }\n");
	jr_event *ev = storage_event();
	jr_runreq q;
	char *err = NULL;
	CU_ASSERT_EQUAL(route_render(c, &c->routes[0], ev, &q, &err), -1);
	CU_ASSERT_STRING_EQUAL(err, "template {{data.name}} in args[1] at column 17: b64dec: the "
				    "value is not base64");
	free(err);
	runreq_free(&q);
	event_free(ev);
	unload(c);
}

int main(void)
{
	static const cu_test tests[] = {
		{"match: exact, prefix, suffix, any_of", test_match_string_conditions},
		{"match: combined", test_match_combined},
		{"match: empty matches all", test_match_empty_matches_all},
		{"match: missing never matches", test_match_missing_never_matches},
		{"match: extensions", test_match_extensions},
		{"match: message attributes", test_match_message_attributes},
		{"match: data JSON pointer", test_match_data_pointer},
		{"render: basic request and JSON", test_render_basic},
		{"render: auto env without subject/time", test_render_auto_env_without_subject_time},
		{"render: job names", test_render_job_names},
		{"render: no project or region", test_render_no_project_or_region},
		{"render: missing fields", test_render_missing_fields},
		{"render: timeout formats", test_timeout_formats},
		{"route_key", test_route_key},
		{"route_job_display", test_job_display},
		{"payload: json, match and render", test_payload_json},
		{"payload: a body that is not JSON", test_payload_not_json},
		{"payload: absent", test_payload_absent},
		{"render: a function error", test_render_function_error},
		{NULL, NULL},
	};
	return cu_run("route", tests);
}
