/*
 * test_cesql.c — the CESQL engine (dispatch/cesql.h): the CloudEvents
 * conformance kit (every YAML file of tests/data/cloudevents-spec/cesql/cesql_tck,
 * case, none skipped) and the engine's own bounds and choices.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cesql.h"
#include "cu.h"
#include "testev.h"

#define TCK_DIR JR_TESTDATA "/cloudevents-spec/cesql/cesql_tck"

/* ---- the conformance kit ---- */

typedef struct tck {
	yaml_document_t doc;
	const char *file;
	int cases;
	int failed;
} tck;

static yaml_node_t *get(tck *t, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&t->doc, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(&t->doc, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int plain(yaml_node_t *n)
{
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* yaml_value: a scalar as a CESQL value: plain true/false (any case), plain integer, else string. */
static cesql_value yaml_value(yaml_node_t *n)
{
	const char *s = scalar(n);
	char *end;
	if (plain(n) && (!strcasecmp(s, "true") || !strcasecmp(s, "false")))
		return (cesql_value){.type = CESQL_BOOLEAN, .b = !strcasecmp(s, "true")};
	long v = strtol(s, &end, 10);
	if (plain(n) && *s && !*end)
		return (cesql_value){.type = CESQL_INTEGER, .i = (int32_t)v};
	return (cesql_value){.type = CESQL_STRING, .s = s, .n = strlen(s)};
}

/* set_attr: a context attribute, or an extension typed as yaml_value says. */
static void set_attr(jr_event *ev, const char *key, yaml_node_t *v)
{
	const char *s = scalar(v);
	int id = event_attr_id(key);
	const char **f[] = {NULL, &ev->specversion, &ev->id, &ev->source, &ev->type,
			    &ev->subject, &ev->time, &ev->datacontenttype, &ev->dataschema};
	if (!s || !strcmp(key, "data"))
		return;
	if (id) {
		*f[id] = arena_strdup(&ev->arena, s);
		return;
	}
	cesql_value x = yaml_value(v);
	if (x.type == CESQL_BOOLEAN)
		tev_ext(ev, key, tev_lit(ev, x.b ? JR_JSON_TRUE : JR_JSON_FALSE));
	else if (x.type == CESQL_INTEGER)
		tev_ext(ev, key, tev_num(ev, s));
	else
		tev_ext(ev, key, tev_str(ev, s));
}

static void set_all(tck *t, jr_event *ev, yaml_node_t *map)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++)
		set_attr(ev, scalar(yaml_document_get_node(&t->doc, p->key)),
			 yaml_document_get_node(&t->doc, p->value));
}

/* case_event: `event` as given, or a valid default event with `eventOverrides` applied. */
static jr_event *case_event(tck *t, yaml_node_t *c)
{
	yaml_node_t *given = get(t, c, "event"), *over = get(t, c, "eventOverrides");
	jr_event *ev;
	if (given) {
		ev = event_new();
		set_all(t, ev, given);
	} else {
		ev = tev_new("tck-id", "/tck/source", "tck.type");
	}
	if (over)
		set_all(t, ev, over);
	return ev;
}

static int same_value(cesql_value a, cesql_value b)
{
	if (a.type != b.type)
		return 0;
	if (a.type == CESQL_BOOLEAN)
		return !a.b == !b.b;
	if (a.type == CESQL_INTEGER)
		return a.i == b.i;
	return a.n == b.n && !memcmp(a.s, b.s, a.n);
}

static void show(const char *label, cesql_value v)
{
	if (v.type == CESQL_BOOLEAN)
		fprintf(stderr, "%s %s", label, v.b ? "true" : "false");
	else if (v.type == CESQL_INTEGER)
		fprintf(stderr, "%s %d", label, (int)v.i);
	else
		fprintf(stderr, "%s '%.*s'", label, (int)v.n, v.s);
}

/* errors_match: none expected and none met, or every error met is of the expected kind. */
static int errors_match(const char *want, const cesql_result *r)
{
	if (!want)
		return r->n_errors == 0;
	if (r->n_errors == 0)
		return 0;
	for (size_t i = 0; i < r->n_errors && i < CESQL_MAX_ERRORS; i++)
		if (strcmp(cesql_errkind_name(r->errors[i].kind), want))
			return 0;
	return 1;
}

static void run_case(tck *t, yaml_node_t *c)
{
	const char *name = scalar(get(t, c, "name")), *text = scalar(get(t, c, "expression"));
	const char *want_err = scalar(get(t, c, "error"));
	yaml_node_t *want = get(t, c, "result");
	cesql_parse_error perr;
	cesql_result r = {0};
	char buf[4096];
	cesql_scratch s = {buf, sizeof buf, 0};
	t->cases++;
	cesql_expr *e = text ? cesql_compile(text, &perr) : NULL;
	if (e) {
		jr_event *ev = case_event(t, c);
		cesql_eval(e, ev, &s, &r);
		event_free(ev);
	} else {
		r.errors[0].kind = CESQL_ERR_PARSE;
		r.n_errors = 1;
		r.value = (cesql_value){.type = CESQL_BOOLEAN};
	}
	int ok = errors_match(want_err, &r) && (!want || same_value(yaml_value(want), r.value));
	if (!ok) {
		t->failed++;
		fprintf(stderr, "TCK %s: %s: `%s`:", t->file, name, text ? text : "");
		if (want)
			show(" want", yaml_value(want));
		show(" got", r.value);
		fprintf(stderr, "; want error %s, got %zu error(s)%s%s%s%s\n",
			want_err ? want_err : "none", r.n_errors, r.n_errors ? ", first " : "",
			r.n_errors ? cesql_errkind_name(r.errors[0].kind) : "",
			e ? "" : ": ", e ? "" : perr.message);
	}
	cesql_free(e);
}

static void run_file(tck *t, const char *path)
{
	size_t len = 0;
	char *text = cu_read_file(path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	CU_ASSERT_FATAL(yaml_parser_load(&p, &t->doc));
	yaml_node_t *tests = get(t, yaml_document_get_root_node(&t->doc), "tests");
	CU_ASSERT_FATAL(tests && tests->type == YAML_SEQUENCE_NODE);
	for (yaml_node_item_t *it = tests->data.sequence.items.start;
	     it < tests->data.sequence.items.top; it++)
		run_case(t, yaml_document_get_node(&t->doc, *it));
	yaml_document_delete(&t->doc);
	yaml_parser_delete(&p);
	free(text);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_yaml(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && !strcmp(d->d_name + n - 5, ".yaml");
}

static void test_tck(void)
{
	struct dirent **names;
	int n = scandir(TCK_DIR, &names, is_yaml, by_name);
	CU_ASSERT_FATAL(n > 0);
	tck t = {0};
	for (int i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", TCK_DIR, names[i]->d_name);
		t.file = names[i]->d_name;
		run_file(&t, path);
		free(names[i]);
	}
	free(names);
	printf("\nCESQL TCK: %d of %d cases pass (%d files)\n", t.cases - t.failed, t.cases, n);
	CU_ASSERT_EQUAL(t.cases, 275); /* the kit as vendored (tests/data/MANIFEST.md) */
	CU_ASSERT_EQUAL(t.failed, 0);
}

/* ---- the engine's own choices and bounds ---- */

/* eval_on: text on ev (a default event when NULL), with a scratch of cap bytes. */
static cesql_result eval_on(const char *text, jr_event *ev, size_t cap)
{
	cesql_parse_error err;
	cesql_expr *e = cesql_compile(text, &err);
	if (!e)
		fprintf(stderr, "compile `%s`: %s at %zu\n", text, err.message, err.position);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	jr_event *own = ev ? NULL : tev_new("i", "/s", "t");
	char buf[4096];
	cesql_scratch s = {buf, cap < sizeof buf ? cap : sizeof buf, 0};
	cesql_result r;
	cesql_eval(e, ev ? ev : own, &s, &r);
	event_free(own);
	cesql_free(e);
	return r;
}

static int eval_bool(const char *text)
{
	cesql_result r = eval_on(text, NULL, 4096);
	CU_ASSERT_EQUAL(r.n_errors, 0);
	CU_ASSERT_EQUAL(r.value.type, CESQL_BOOLEAN);
	return r.value.b;
}

static int eval_str(const char *text, const char *want)
{
	cesql_result r = eval_on(text, NULL, 4096);
	return r.n_errors == 0 && r.value.type == CESQL_STRING && r.value.n == strlen(want) &&
	       !memcmp(r.value.s, want, r.value.n);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *text;
		size_t pos;
		const char *msg;
	} cases[] = {
		{"", 1, "unexpected end"},
		{"a =", 4, "unexpected end"},
		{"(a = 1", 7, "expected ')'"},
		{"'abc", 1, "unterminated string"},
		{"a LIKE b", 8, "LIKE needs a string literal"},
		{"2147483648", 1, "32-bit range"},
		{"a # b", 3, "unexpected character '#'"},
		{"a b", 3, "unexpected 'b' after the expression"},
		{"my_ext = 1", 1, "only letters and digits"},
		{"x IN ()", 7, "unexpected ')'"},
		{"EXISTS 1", 8, "expected an attribute name"},
		{"ABC(", 5, "unexpected end"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cesql_parse_error err;
		CU_ASSERT_PTR_NULL(cesql_compile(cases[i].text, &err));
		if (err.position != cases[i].pos || !strstr(err.message, cases[i].msg))
			fprintf(stderr, "`%s`: %s at %zu\n", cases[i].text, err.message, err.position);
		CU_ASSERT_EQUAL(err.position, cases[i].pos);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.message, cases[i].msg));
	}
}

/* test_bounds: nesting past CESQL_MAX_DEPTH is a parse error; long flat chains are not. */
static void test_bounds(void)
{
	char deep[400] = "", chain[8000] = "";
	for (int i = 0; i < CESQL_MAX_DEPTH + 1; i++)
		strcat(deep, "(");
	strcat(deep, "1");
	for (int i = 0; i < CESQL_MAX_DEPTH + 1; i++)
		strcat(deep, ")");
	cesql_parse_error err;
	CU_ASSERT_PTR_NULL(cesql_compile(deep, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "nests deeper"));
	char nots[1000] = "";
	for (int i = 0; i < 200; i++)
		strcat(nots, "NOT ");
	strcat(nots, "TRUE");
	CU_ASSERT_PTR_NULL(cesql_compile(nots, &err));
	for (int i = 0; i < 500; i++)
		strcat(chain, i ? " OR type = 'x'" : "type = 'x'");
	strcat(chain, " OR type = 't'");
	CU_ASSERT_TRUE(eval_bool(chain));
	char *big = malloc(CESQL_MAX_TEXT + 2);
	memset(big, ' ', CESQL_MAX_TEXT + 1);
	big[CESQL_MAX_TEXT + 1] = '\0';
	big[0] = '1';
	CU_ASSERT_PTR_NULL(cesql_compile(big, &err));
	free(big);
}

/* test_scratch: strings made by functions fail with a generic error when the scratch is full. */
static void test_scratch(void)
{
	cesql_result r = eval_on("CONCAT('abcdef', 'ghij')", NULL, 4);
	CU_ASSERT_EQUAL(r.n_errors, 1);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_GENERIC);
	CU_ASSERT_EQUAL(r.value.type, CESQL_STRING);
	CU_ASSERT_EQUAL(r.value.n, 0);
	r = eval_on("CONCAT('ab', 'cd')", NULL, 4);
	CU_ASSERT_EQUAL(r.n_errors, 0);
	CU_ASSERT_EQUAL(r.value.n, 4);
	r = eval_on("UPPER('abc') = 'ABC'", NULL, 0);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_GENERIC);
	CU_ASSERT_FALSE(r.value.b);
}

static void test_semantics(void)
{
	/* AND, OR, XOR share one level and group from the right (CESQLParser.g4) */
	CU_ASSERT_TRUE(eval_bool("TRUE OR FALSE AND FALSE"));
	CU_ASSERT_FALSE(eval_bool("FALSE AND FALSE OR TRUE"));
	CU_ASSERT_TRUE(eval_bool("NOT FALSE AND TRUE"));
	CU_ASSERT_TRUE(eval_bool("4 -1 = 3 and 2*3+1 = 7 and -(-3) = 3 and 7 % -3 = 1 and -7 / 2 = -3"));
	CU_ASSERT_TRUE(eval_bool("type Like 't' aNd ExIsTs ID and Source in ('/s')"));
	CU_ASSERT_TRUE(eval_bool("'a''b' = \"a'b\" and LENGTH('\\n') = 2"));
	CU_ASSERT_TRUE(eval_bool("'é_' LIKE '__' AND LENGTH('日本') = 2 AND 'x%y' NOT LIKE 'x\\%z'"));
	CU_ASSERT_TRUE(eval_bool("IS_INT('-12') AND NOT IS_INT('1.5') AND IS_BOOL('False') AND "
				 "IS_STRING('1') AND NOT IS_STRING(1)"));
	CU_ASSERT_TRUE(eval_str("LOWER('ÀÉÎ ΣΑ ДЖ Ab')", "àéî σα дж ab"));
	CU_ASSERT_TRUE(eval_str("UPPER('àéî σας дж ab')", "ÀÉÎ ΣΑΣ ДЖ AB"));
	CU_ASSERT_TRUE(eval_str("TRIM('\t\u3000 a b\u00a0 ')", "a b"));
	CU_ASSERT_TRUE(eval_str("SUBSTRING('日本語テキスト', -3, 2)", "キス"));
	CU_ASSERT_TRUE(eval_str("CONCAT_WS('-', 1, TRUE, 'x')", "1-true-x"));
	cesql_result r = eval_on("2147483647 + 1", NULL, 64);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_MATH);
	CU_ASSERT_EQUAL(r.value.i, 0);
	r = eval_on("-2147483648 / -1", NULL, 64);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_MATH);
	r = eval_on("NOPE(1) OR TRUE", NULL, 64);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_MISSING_FUNCTION);
	CU_ASSERT_STRING_EQUAL(r.errors[0].name, "NOPE");
	CU_ASSERT_FALSE(r.value.b); /* an operand with an error: OR returns its zero value */
	CU_ASSERT_FALSE(eval_on("'1' = STRING(1 / 0)", NULL, 64).value.b);
	r = eval_on("LENGTH(SUBSTRING('abc', 9))", NULL, 64);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_FUNCTION_EVALUATION);
	CU_ASSERT_EQUAL(r.value.type, CESQL_INTEGER);
	cesql_parse_error err;
	cesql_expr *e = cesql_compile("upper('a') = 'A' or nope(1) or substring('a', 1, 2, 3) = ''", &err);
	CU_ASSERT_STRING_EQUAL(cesql_unknown_function(e), "NOPE");
	cesql_free(e);
	e = cesql_compile("left('abc', 1) = 'a'", &err);
	CU_ASSERT_PTR_NULL(cesql_unknown_function(e));
	cesql_free(e);
}

/* test_attributes: extension types, missing attributes in IN, and the error cap. */
static void test_attributes(void)
{
	jr_event *ev = tev_new("i", "/s", "t");
	tev_ext(ev, "n", tev_num(ev, "42"));
	tev_ext(ev, "f", tev_num(ev, "1.5"));
	tev_ext(ev, "b", tev_lit(ev, JR_JSON_TRUE));
	cesql_result r = eval_on("n + 1 = 43 AND f = '1.5' AND b AND NOT EXISTS subject", ev, 64);
	CU_ASSERT_EQUAL(r.n_errors, 0);
	CU_ASSERT_TRUE(r.value.b);
	r = eval_on("'x' IN ('y', nope, 'x')", ev, 64);
	CU_ASSERT_EQUAL(r.errors[0].kind, CESQL_ERR_MISSING_ATTRIBUTE);
	CU_ASSERT_STRING_EQUAL(r.errors[0].name, "nope");
	CU_ASSERT_FALSE(r.value.b);
	r = eval_on("CONCAT(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10)", ev, 64);
	CU_ASSERT_EQUAL(r.n_errors, 10);
	CU_ASSERT_EQUAL(r.errors[CESQL_MAX_ERRORS - 1].kind, CESQL_ERR_MISSING_ATTRIBUTE);
	event_free(ev);
}

int main(void)
{
	static const cu_test tests[] = {
		{"conformance kit", test_tck},
		{"parse errors and positions", test_parse_errors},
		{"bounds", test_bounds},
		{"scratch exhaustion", test_scratch},
		{"semantics", test_semantics},
		{"attributes", test_attributes},
		{NULL, NULL},
	};
	return cu_run("cesql", tests);
}
