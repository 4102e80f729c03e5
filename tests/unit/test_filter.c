/*
 * test_filter.c — a route's filters: (dispatch/filter.h) through the config
 * loader and route_match: each dialect, nesting, missing attributes, CESQL
 * errors (no match, counted), the normalised form check-config prints.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "config_load.h"
#include "cu.h"
#include "metrics.h"
#include "route.h"
#include "testev.h"

/* load_route: a config whose one route "f" has the lines extra (indented) and the filters: block. */
static jr_config *load_route(const char *extra, const char *filters)
{
	char *yaml = jr_asprintf("project: p\nregion: r\nroutes:\n  - name: f\n    job: j\n%s"
				 "    filters:\n%s", extra, filters);
	jr_config *c = jr_calloc(1, sizeof *c);
	jr_buf errs;
	buf_init(&errs, 0);
	int n = config_load_string(c, "t.yaml", yaml, strlen(yaml), &errs);
	if (n)
		fprintf(stderr, "unexpected config errors:\n%s\n%s", yaml, errs.data);
	CU_ASSERT_EQUAL_FATAL(n, 0);
	CU_ASSERT_EQUAL_FATAL(c->n_routes, 1);
	buf_free(&errs);
	free(yaml);
	return c;
}

static void unload(jr_config *c)
{
	config_free(c);
	free(c);
}

/* load_filters: a config whose one route "f" has the given match: (or none) and filters: block. */
static jr_config *load_filters(const char *match, const char *filters)
{
	char *extra = match ? jr_asprintf("    match: %s\n", match) : NULL;
	jr_config *c = load_route(extra ? extra : "", filters);
	free(extra);
	return c;
}

/* ev_csv: a storage-like event with a subject, and string, number and boolean extensions. */
static jr_event *ev_csv(void)
{
	jr_event *ev = tev_new("e-1", "//storage.googleapis.com/buckets/in", "object.finalized");
	ev->subject = "objects/a/data.csv";
	tev_ext(ev, "bucket", tev_str(ev, "in"));
	tev_ext(ev, "size", tev_num(ev, "1024"));
	tev_ext(ev, "public", tev_lit(ev, JR_JSON_FALSE));
	return ev;
}

/* matches: route_match of a config made of filters (and match) on ev. */
static int matches(const char *match, const char *filters, jr_event *ev)
{
	jr_config *c = load_filters(match, filters);
	int m = route_match(&c->routes[0], ev);
	unload(c);
	return m;
}

static void test_attribute_dialects(void)
{
	jr_event *ev = ev_csv();
	CU_ASSERT_TRUE(matches(NULL, "      - exact: { type: object.finalized }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - exact: { type: object.Finalized }\n", ev));
	CU_ASSERT_TRUE(matches(NULL, "      - exact: { bucket: in, size: '1024', public: 'false' }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - exact: { bucket: in, size: '1025' }\n", ev));
	CU_ASSERT_TRUE(matches(NULL, "      - prefix: { source: //storage.googleapis.com/ }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - prefix: { source: //storage.googleapis.com/x }\n", ev));
	CU_ASSERT_TRUE(matches(NULL, "      - suffix: { subject: .csv, bucket: n }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - suffix: { subject: .CSV }\n", ev));
	/* an empty list is no filter at all */
	CU_ASSERT_TRUE(matches(NULL, "      []\n", ev));
	event_free(ev);
}

/* test_missing: an attribute the event lacks fails exact, prefix and suffix; not inverts that. */
static void test_missing(void)
{
	jr_event *ev = tev_new("e-1", "/s", "t");
	CU_ASSERT_FALSE(matches(NULL, "      - exact: { subject: x }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - prefix: { myext: x }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - suffix: { dataschema: x }\n", ev));
	CU_ASSERT_TRUE(matches(NULL, "      - not: { exact: { subject: x } }\n", ev));
	event_free(ev);
}

static void test_nesting(void)
{
	jr_event *ev = ev_csv();
	const char *nested = "      - all:\n"
			     "          - prefix: { type: object. }\n"
			     "          - any:\n"
			     "              - suffix: { subject: .json }\n"
			     "              - all:\n"
			     "                  - suffix: { subject: .csv }\n"
			     "                  - not: { exact: { bucket: out } }\n"
			     "      - not:\n"
			     "          any:\n"
			     "            - exact: { public: 'true' }\n"
			     "            - exact: { size: '0' }\n";
	CU_ASSERT_TRUE(matches(NULL, nested, ev));
	tev_ext(ev, "public", tev_lit(ev, JR_JSON_TRUE));
	ev->n_ext--; /* swap: the last extension added becomes the only public */
	ev->ext[2] = ev->ext[3];
	CU_ASSERT_FALSE(matches(NULL, nested, ev));
	ev->ext[2].value = tev_lit(ev, JR_JSON_FALSE);
	ev->subject = "objects/a/data.xml";
	CU_ASSERT_FALSE(matches(NULL, nested, ev));
	CU_ASSERT_TRUE(matches(NULL, "      - any: [ { exact: { type: a } }, { exact: { type: object.finalized } } ]\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - any: [ { exact: { type: a } }, { exact: { type: b } } ]\n", ev));
	event_free(ev);
}

/* test_match_and_filters: match: and filters: must both hold. */
static void test_match_and_filters(void)
{
	jr_event *ev = ev_csv();
	const char *f = "      - suffix: { subject: .csv }\n";
	CU_ASSERT_TRUE(matches("{ type: object.finalized }", f, ev));
	CU_ASSERT_FALSE(matches("{ type: other }", f, ev));
	CU_ASSERT_FALSE(matches("{ type: object.finalized }", "      - suffix: { subject: .xml }\n", ev));
	event_free(ev);
}

static void test_sql(void)
{
	jr_event *ev = ev_csv();
	CU_ASSERT_TRUE(matches(NULL, "      - sql: \"size > 1000 AND subject LIKE 'objects/%.csv'\"\n", ev));
	CU_ASSERT_TRUE(matches(NULL, "      - cesql: \"NOT public AND bucket IN ('in', 'other')\"\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - sql: \"size > 2000\"\n", ev));
	/* a result that is not a Boolean never passes */
	CU_ASSERT_FALSE(matches(NULL, "      - sql: \"'true'\"\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - sql: \"1\"\n", ev));
	event_free(ev);
}

static double filter_errors(const char *labels)
{
	jr_metric *m = metric_register("jobrelay_filter_errors_total", JR_METRIC_COUNTER, "", NULL, 0);
	return metric_get(m, labels);
}

/* test_sql_errors: a CESQL error makes the route not match, even under not or any; it is counted. */
static void test_sql_errors(void)
{
	jr_event *ev = ev_csv();
	const char *miss = "route=\"f\",error=\"missingAttribute\"";
	const char *math = "route=\"f\",error=\"math\"";
	double m0 = filter_errors(miss), d0 = filter_errors(math);
	CU_ASSERT_FALSE(matches(NULL, "      - sql: \"nosuch = 'x'\"\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - not: { sql: \"nosuch = 'x'\" }\n", ev));
	CU_ASSERT_FALSE(matches(NULL, "      - any: [ { sql: \"size / 0 = 1\" }, { exact: { bucket: in } } ]\n", ev));
	CU_ASSERT_EQUAL(filter_errors(miss), m0 + 2);
	CU_ASSERT_EQUAL(filter_errors(math), d0 + 1);
	/* any stops at its first pass: a later erroring expression is not evaluated */
	CU_ASSERT_TRUE(matches(NULL, "      - any: [ { exact: { bucket: in } }, { sql: \"size / 0 = 1\" } ]\n", ev));
	/* a failing filter before it ends the list, too */
	CU_ASSERT_FALSE(matches(NULL, "      - exact: { bucket: out }\n      - sql: \"size / 0 = 1\"\n", ev));
	CU_ASSERT_EQUAL(filter_errors(math), d0 + 1);
	event_free(ev);
}

/* test_scratch_full: strings past the scratch are an error (no match), never a crash. */
static void test_scratch_full(void)
{
	jr_event *ev = ev_csv();
	char big[CESQL_SCRATCH_DEFAULT + 10];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	tev_ext(ev, "big", tev_str(ev, big));
	const char *g = "route=\"f\",error=\"generic\"";
	double g0 = filter_errors(g);
	CU_ASSERT_FALSE(matches(NULL, "      - sql: \"LENGTH(UPPER(big)) > 0\"\n", ev));
	CU_ASSERT_EQUAL(filter_errors(g), g0 + 1);
	CU_ASSERT_TRUE(matches(NULL, "      - sql: \"LENGTH(big) > 8192 AND big LIKE 'x%x'\"\n", ev));
	event_free(ev);
}

/* test_knative_trigger: a Knative Trigger's spec.filters block, keys and values unchanged. */
static void test_knative_trigger(void)
{
	const char *trigger = "      - any:\n"
			      "          - exact:\n"
			      "              type: com.github.push\n"
			      "          - exact:\n"
			      "              type: com.github.pull.create\n"
			      "      - not:\n"
			      "          prefix:\n"
			      "            source: https://github.com/knative/eventing/archive\n"
			      "      - cesql: \"source LIKE '%knative%' AND subject != 'ignore'\"\n";
	jr_event *ev = tev_new("1", "https://github.com/knative/eventing", "com.github.push");
	ev->subject = "main";
	CU_ASSERT_TRUE(matches(NULL, trigger, ev));
	ev->type = "com.github.issue";
	CU_ASSERT_FALSE(matches(NULL, trigger, ev));
	ev->type = "com.github.pull.create";
	ev->source = "https://github.com/knative/eventing/archive/x";
	CU_ASSERT_FALSE(matches(NULL, trigger, ev));
	ev->source = "https://github.com/knative/serving";
	CU_ASSERT_TRUE(matches(NULL, trigger, ev));
	ev->subject = "ignore";
	CU_ASSERT_FALSE(matches(NULL, trigger, ev));
	event_free(ev);
}

static void expect_form(const char *filters, const char *want)
{
	jr_config *c = load_filters(NULL, filters);
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(filter_write(&b, c->routes[0].filters, c->routes[0].n_filters), 0);
	CU_ASSERT_STRING_EQUAL(b.data, want);
	if (strcmp(b.data, want))
		fprintf(stderr, "\ngot  %s\nwant %s\n", b.data, want);
	buf_free(&b);
	unload(c);
}

static void test_normalised_form(void)
{
	expect_form("      - exact: { type: x }\n", "exact(type=\"x\")");
	expect_form("      - exact: { type: x }\n"
		    "      - not: { prefix: { source: /a } }\n"
		    "      - cesql: \"type = 'x' AND \\\"y\\\" = 'y'\"\n",
		    "all(exact(type=\"x\"), not(prefix(source=\"/a\")), sql(\"type = 'x' AND \\\"y\\\" = 'y'\"))");
	expect_form("      - any: [ { suffix: { subject: .csv, myext: \"\\t\" } }, { all: [ { sql: 'TRUE' } ] } ]\n",
		    "any(suffix(subject=\".csv\", myext=\"\\t\"), all(sql(\"TRUE\")))");
}

/* ---- the payload as extensions (event_ext_view) ---- */

/* mp_event: a messagePublished event whose message data is body (base64), as rule 3 decodes it. */
static jr_event *mp_event(const char *body)
{
	jr_event *ev = tev_new("m-1", "//pubsub.googleapis.com/projects/p/topics/orders",
			       "google.cloud.pubsub.topic.v1.messagePublished");
	jr_buf b;
	buf_init(&b, 0);
	base64_encode(&b, body, strlen(body));
	jr_json *m = tev_put(ev, tev_obj(ev), "data", tev_str(ev, b.data ? b.data : ""));
	tev_data_json(ev, tev_put(ev, tev_obj(ev), "message", m));
	buf_free(&b);
	return ev;
}

/* route_with: route_match of route "f" with the lines extra and filters on ev. */
static int route_with(const char *extra, const char *filters, jr_event *ev)
{
	jr_config *c = load_route(extra, filters);
	int m = route_match(&c->routes[0], ev);
	unload(c);
	return m;
}

/* pmatch: route "f" with payload: mode and filters, on a new event whose body is body. */
static int pmatch(const char *mode, const char *filters, const char *body)
{
	char *extra = jr_asprintf("    payload: %s\n", mode);
	jr_event *ev = mp_event(body);
	int m = route_with(extra, filters, ev);
	event_free(ev);
	free(extra);
	return m;
}

static const char order[] = "{\"orderId\": \"O-1\", \"kind\": \"refund\", \"Total_EUR\": 120, "
			    "\"rate\": 1.5, \"big\": 99999999999, \"gift\": true, \"note\": null, "
			    "\"items\": [1], \"obj\": {\"a\": 1}}";

static void test_payload_attribute_dialects(void)
{
	CU_ASSERT_TRUE(pmatch("json", "      - exact: { payloadkind: refund }\n", order));
	CU_ASSERT_FALSE(pmatch("json", "      - exact: { payloadkind: sale }\n", order));
	CU_ASSERT_TRUE(pmatch("json", "      - prefix: { payloadorderid: O- }\n", order));
	CU_ASSERT_TRUE(pmatch("auto", "      - suffix: { payloadtotaleur: '20' }\n", order));
	CU_ASSERT_TRUE(pmatch("json", "      - exact: { payloadgift: 'true', payloadrate: '1.5' }\n", order));
	/* null, arrays and objects are no attribute */
	CU_ASSERT_FALSE(pmatch("json", "      - exact: { payloadnote: 'null' }\n", order));
	CU_ASSERT_FALSE(pmatch("json", "      - exact: { payloaditems: '[1]' }\n", order));
	CU_ASSERT_FALSE(pmatch("json", "      - prefix: { payloadobj: '{' }\n", order));
	/* the whole body is `payload` only when it is a scalar */
	CU_ASSERT_FALSE(pmatch("json", "      - prefix: { payload: '{' }\n", order));
	/* names: lower-cased, only [a-z0-9] kept; the first member of a name wins */
	CU_ASSERT_TRUE(pmatch("json", "      - exact: { payloadorderid: a }\n",
			      "{\"Order-Id\": \"a\", \"order_id\": \"b\"}"));
	CU_ASSERT_FALSE(pmatch("json", "      - exact: { payloadorderid: b }\n",
			       "{\"Order-Id\": \"a\", \"order_id\": \"b\"}"));
	/* a member whose value is not a scalar does not hide a later one of the same name */
	CU_ASSERT_TRUE(pmatch("json", "      - exact: { payloadk: v }\n", "{\"k\": {}, \"K\": \"v\"}"));
}

static void test_payload_cesql(void)
{
	CU_ASSERT_TRUE(pmatch("json", "      - sql: \"payloadkind = 'refund'\"\n", order));
	CU_ASSERT_FALSE(pmatch("json", "      - sql: \"payloadkind = 'sale'\"\n", order));
	/* types: an integer in range is an Integer, true a Boolean, others the number's text */
	CU_ASSERT_TRUE(pmatch("json", "      - sql: \"payloadtotaleur + 1 = 121 AND payloadgift\"\n", order));
	CU_ASSERT_TRUE(pmatch("json", "      - sql: \"payloadbig = '99999999999' AND payloadrate = '1.5'\"\n",
			      order));
	CU_ASSERT_TRUE(pmatch("json", "      - sql: \"EXISTS payloadorderid AND NOT EXISTS payloadnote "
				      "AND NOT EXISTS payloaditems AND NOT EXISTS payload\"\n", order));
	/* a member the body lacks is a missing attribute: no match */
	CU_ASSERT_FALSE(pmatch("json", "      - not: { sql: \"payloadnosuch = 'x'\" }\n", order));
	/* a scalar body is `payload`: text under auto, a JSON number */
	CU_ASSERT_TRUE(pmatch("auto", "      - sql: \"payload LIKE 'kind=%'\"\n", "kind=refund"));
	CU_ASSERT_TRUE(pmatch("auto", "      - exact: { payload: kind=refund }\n", "kind=refund"));
	CU_ASSERT_TRUE(pmatch("json", "      - sql: \"payload * 2 = 84\"\n", "42"));
}

/* test_payload_scope: only on a route with payload:, only from a body that decodes; real extensions win. */
static void test_payload_scope(void)
{
	const char *f = "      - exact: { payloadkind: refund }\n";
	jr_event *ev = mp_event(order);
	CU_ASSERT_FALSE(route_with("", f, ev));
	CU_ASSERT_TRUE(route_with("    payload: json\n", f, ev));
	tev_ext(ev, "payloadkind", tev_str(ev, "sale"));
	CU_ASSERT_FALSE(route_with("    payload: json\n", f, ev));
	CU_ASSERT_TRUE(route_with("    payload: json\n", "      - exact: { payloadkind: sale }\n", ev));
	event_free(ev);
	/* a body that does not parse under json: the filters see no payload (render reports it) */
	CU_ASSERT_TRUE(pmatch("json", "      - not: { exact: { payload: kind=refund } }\n", "kind=refund"));
	CU_ASSERT_FALSE(pmatch("json", "      - exact: { payload: kind=refund }\n", "kind=refund"));
	/* an event of another type has no payload */
	ev = tev_new("e-1", "/s", "other");
	CU_ASSERT_FALSE(route_with("    payload: auto\n", "      - sql: \"EXISTS payload\"\n", ev));
	event_free(ev);
}

int main(void)
{
	static const cu_test tests[] = {
		{"exact, prefix, suffix", test_attribute_dialects},
		{"missing attributes", test_missing},
		{"all, any, not nested", test_nesting},
		{"match: and filters: both hold", test_match_and_filters},
		{"sql and cesql", test_sql},
		{"CESQL errors: no match, counted", test_sql_errors},
		{"CESQL scratch exhausted", test_scratch_full},
		{"Knative Trigger filters", test_knative_trigger},
		{"normalised form", test_normalised_form},
		{"payload attributes: exact, prefix, suffix", test_payload_attribute_dialects},
		{"payload attributes in CESQL", test_payload_cesql},
		{"payload attributes: scope", test_payload_scope},
		{NULL, NULL},
	};
	return cu_run("filter", tests);
}
