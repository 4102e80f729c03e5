/* The Run API's limits checked before sending (dispatch/runlimits.h): each at
 * the limit passes and one over fails with a message naming the field, its
 * size and the limit; per event in route_render, and at config load for what
 * is known without an event. */
#include <stdlib.h>
#include <string.h>

#include "config_load.h"
#include "cu.h"
#include "route.h"
#include "runlimits.h"
#include "testev.h"

/* filled: a new string of n copies of c. */
static char *filled(size_t n, char c)
{
	char *s = jr_malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* check: runlimits_check of q; the error text (caller frees) or NULL when it passed. */
static char *check(const jr_runreq *q)
{
	char *err = NULL;
	int rc = runlimits_check(q, &err);
	CU_ASSERT_EQUAL(rc, err ? -1 : 0);
	return err;
}

static void test_env_value(void)
{
	char *at = filled(JR_RUN_ENV_VALUE_MAX, 'A'), *over = filled(JR_RUN_ENV_VALUE_MAX + 1, 'A');
	jr_kv env[2] = {{"SMALL", "x"}, {"PAYLOAD_B64", at}};
	jr_runreq q = {.name = "n", .env = env, .n_env = 2};
	CU_ASSERT_PTR_NULL(check(&q));
	env[1].value = over;
	char *err = check(&q);
	CU_ASSERT_STRING_EQUAL(err, "env PAYLOAD_B64 is 32769 bytes; Cloud Run allows at most "
				    "32768 bytes in an env value");
	free(err);
	free(at);
	free(over);
}

static void test_counts(void)
{
	jr_kv *env = jr_calloc(JR_RUN_ENV_COUNT_MAX + 1, sizeof *env);
	char **args = jr_calloc(JR_RUN_ARGS_COUNT_MAX + 1, sizeof *args);
	for (size_t i = 0; i <= JR_RUN_ENV_COUNT_MAX; i++)
		env[i] = (jr_kv){"V", ""};
	for (size_t i = 0; i <= JR_RUN_ARGS_COUNT_MAX; i++)
		args[i] = "a";
	jr_runreq q = {.name = "n", .env = env, .n_env = JR_RUN_ENV_COUNT_MAX, .args = args,
		       .n_args = JR_RUN_ARGS_COUNT_MAX, .has_args = 1};
	CU_ASSERT_PTR_NULL(check(&q));
	q.n_env++;
	char *err = check(&q);
	CU_ASSERT_STRING_EQUAL(err, "1001 env variables; Cloud Run allows at most 1000 in a container");
	free(err);
	q.n_env--;
	q.n_args++;
	err = check(&q);
	CU_ASSERT_STRING_EQUAL(err, "1001 args; Cloud Run allows at most 1000 in a container");
	free(err);
	free(env);
	free(args);
}

static void test_task_count_and_timeout(void)
{
	jr_runreq q = {.name = "n", .task_count = 10000, .timeout_ms = 168LL * 3600 * 1000};
	CU_ASSERT_PTR_NULL(check(&q));
	q.task_count = 10001;
	char *err = check(&q);
	CU_ASSERT_STRING_EQUAL(err, "task_count 10001; Cloud Run allows 1 to 10000");
	free(err);
	q.task_count = 0; /* not set */
	q.timeout_ms++;
	err = check(&q);
	CU_ASSERT_STRING_EQUAL(err, "timeout 604800001ms; Cloud Run allows at most 168h");
	free(err);
}

static jr_config *load(const char *yaml)
{
	jr_config *c = jr_calloc(1, sizeof *c);
	jr_buf errs;
	buf_init(&errs, 0);
	int n = config_load_string(c, "t.yaml", yaml, strlen(yaml), &errs);
	if (n)
		fprintf(stderr, "unexpected config errors:\n%s", errs.data);
	CU_ASSERT_EQUAL_FATAL(n, 0);
	buf_free(&errs);
	return c;
}

static const char *const payload_yaml = "project: p\nregion: r\nroutes:\n"
					"  - name: pubsub\n    job: j\n    overrides:\n"
					"      env: { PAYLOAD_B64: \"{{data.message.data}}\" }\n";

/* payload_event: an Eventarc messagePublished event whose message data is n bytes. */
static jr_event *payload_event(size_t n, const char *subject)
{
	jr_event *ev = tev_new("e1", "//pubsub.googleapis.com/projects/p/topics/t",
			       "google.cloud.pubsub.topic.v1.messagePublished");
	if (subject)
		ev->subject = arena_strdup(&ev->arena, subject);
	char *b64 = filled(n, 'Q');
	jr_json *msg = tev_put(ev, tev_obj(ev), "data", tev_str(ev, b64));
	tev_data_json(ev, tev_put(ev, tev_obj(ev), "message", msg));
	free(b64);
	return ev;
}

/* render: route_render of the only route for ev; the error (caller frees) or NULL. */
static char *render(const jr_config *c, jr_event *ev)
{
	jr_runreq q;
	char *err = NULL;
	int rc = route_render(c, &c->routes[0], ev, &q, &err);
	CU_ASSERT_EQUAL(rc, err ? -1 : 0);
	runreq_free(&q);
	event_free(ev);
	return err;
}

static void test_render(void)
{
	jr_config *c = load(payload_yaml);
	CU_ASSERT_PTR_NULL(render(c, payload_event(JR_RUN_ENV_VALUE_MAX, NULL)));
	char *err = render(c, payload_event(JR_RUN_ENV_VALUE_MAX + 1, NULL));
	CU_ASSERT_STRING_EQUAL(err, "env PAYLOAD_B64 is 32769 bytes; Cloud Run allows at most "
				    "32768 bytes in an env value");
	free(err);
	/* jobrelay's own variables are checked too: the subject comes from the event */
	char *subject = filled(JR_RUN_ENV_VALUE_MAX + 1, 's');
	err = render(c, payload_event(10, subject));
	CU_ASSERT_STRING_EQUAL(err, "env CE_SUBJECT is 32769 bytes; Cloud Run allows at most "
				    "32768 bytes in an env value");
	free(err);
	free(subject);
	config_free(c);
	free(c);
}

/* config_errors: the loader's error text for yaml (caller frees). */
static char *config_errors(const char *yaml)
{
	jr_config c;
	jr_buf errs;
	buf_init(&errs, 0);
	config_load_string(&c, "t.yaml", yaml, strlen(yaml), &errs);
	config_free(&c);
	return errs.data ? buf_take(&errs) : jr_strdup("");
}

/* route_yaml: a config with one route whose overrides are given as YAML text. */
static char *route_yaml(const char *overrides)
{
	return jr_asprintf("project: p\nregion: r\nroutes:\n  - name: x\n    job: j\n"
			   "    overrides:\n%s", overrides);
}

/* expect_config: the route's overrides give exactly the error text want ("" for none). */
static void expect_config(const char *overrides, const char *want)
{
	char *yaml = route_yaml(overrides);
	char *got = config_errors(yaml);
	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\ngot:  %swant: %s\n", got, want);
	free(got);
	free(yaml);
}

/* env_lines: n env entries V0..V(n-1), in block style, each value v. */
static char *env_lines(size_t n, const char *v)
{
	jr_buf b;
	buf_init(&b, 0);
	buf_printf(&b, "      env:\n");
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "        V%zu: \"%s\"\n", i, v);
	return buf_take(&b);
}

static void test_config(void)
{
	char *at = filled(JR_RUN_ENV_VALUE_MAX, 'A'), *over = filled(JR_RUN_ENV_VALUE_MAX + 1, 'A');
	char *o = env_lines(1, at);
	expect_config(o, "");
	free(o);
	o = env_lines(1, over);
	expect_config(o, "t.yaml:8: route 'x': overrides.env.V0: the value is 32769 bytes; Cloud "
			 "Run allows at most 32768 bytes in an env value\n");
	free(o);
	/* a template may render shorter than its text: only a literal is checked at load */
	char *tmpl = jr_asprintf("      env: { P: \"{{data.x}}%s\" }\n", at);
	expect_config(tmpl, "");
	free(tmpl);

	/* an env name (an explicit YAML key: a plain one stops at 1024 characters): at the
	 * limit loads, one over is refused */
	char *name = filled(JR_RUN_ENV_NAME_MAX, 'N');
	tmpl = jr_asprintf("      env:\n        ? %s\n        : v\n", name);
	expect_config(tmpl, "");
	free(tmpl);
	tmpl = jr_asprintf("      env:\n        ? %sN\n        : v\n", name);
	char *yaml = route_yaml(tmpl), *got = config_errors(yaml);
	CU_ASSERT_PTR_NOT_NULL(strstr(got, ": the name is 32769 bytes; Cloud Run allows at most 32768\n"));
	free(got);
	free(yaml);
	free(tmpl);
	free(name);

	o = env_lines(JR_RUN_ENV_COUNT_MAX - JR_RUN_AUTO_ENV_MAX, "v");
	expect_config(o, "");
	free(o);
	o = env_lines(JR_RUN_ENV_COUNT_MAX - JR_RUN_AUTO_ENV_MAX + 1, "v");
	expect_config(o, "t.yaml:8: route 'x': overrides.env: 994 variables and jobrelay's 7 are "
			 "more than the 1000 Cloud Run allows in a container\n");
	free(o);

	jr_buf b;
	buf_init(&b, 0);
	buf_printf(&b, "      args: [a");
	for (int i = 1; i < JR_RUN_ARGS_COUNT_MAX; i++)
		buf_printf(&b, ", a");
	buf_printf(&b, "]\n");
	expect_config(b.data, "");
	b.len -= 2;
	buf_printf(&b, ", a]\n");
	expect_config(b.data, "t.yaml:7: route 'x': overrides.args: 1001 args; Cloud Run allows at "
			      "most 1000 in a container\n");
	buf_free(&b);

	expect_config("      task_count: 10000\n", "");
	expect_config("      task_count: 10001\n",
		      "t.yaml:7: route 'x': overrides.task_count: must be from 1 to 10000, got "
		      "'10001'\n");
	expect_config("      timeout: 168h\n", "");
	expect_config("      timeout: 168h1ms\n",
		      "t.yaml:7: route 'x': overrides.timeout: must be at most 168h, got '168h1ms'\n");
	free(at);
	free(over);
}

int main(void)
{
	static const cu_test tests[] = {
		{"env value: at the limit, one byte over", test_env_value},
		{"env and args counts", test_counts},
		{"task_count and timeout", test_task_count_and_timeout},
		{"route_render checks the rendered request", test_render},
		{"config load checks what it knows", test_config},
		{NULL, NULL},
	};
	return cu_run("runlimits", tests);
}
