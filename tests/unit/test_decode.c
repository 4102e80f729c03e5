/*
 * test_decode.c — the decoders against the CloudEvents conformance vectors:
 * format-tests (valid/invalid events and batches), the main/yaml cases (read
 * with libyaml, sent in binary and structured mode), the HTTP protocol binding
 * feature (read from the Gherkin file), the sdk-java v1/v03 vectors and its
 * JSON content types; plus the limits. Google and Pub/Sub inputs are in
 * test_decode_gcp.c.
 */
#include <yaml.h>

#include "dtest.h"
#include "utf8.h"

#define FT "cloudevents-conformance/format-tests/format/json/"
#define SDK "cloudevents-sdk-java/formats/json-jackson/src/test/resources/"

/* instant_ms: an RFC 3339 time as milliseconds since the epoch (for equality). */
static long long instant_ms(const char *s)
{
	int y, mo, d, h, mi, sec;
	if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return -1;
	y -= mo <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long long days = era * 146097 + doe - 719468;
	long long ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL;
	const char *p = s + 19;
	if (*p == '.') {
		int scale = 100;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ms += scale ? (*p - '0') * scale : 0;
	}
	if (*p == '+' || *p == '-') {
		int oh = atoi(p + 1), om = atoi(p + 4);
		long long off = (oh * 60 + om) * 60000LL;
		ms += *p == '+' ? -off : off;
	}
	return ms;
}

static void check_no_optional(const jr_event *ev)
{
	CU_ASSERT_PTR_NULL(ev->subject);
	CU_ASSERT_PTR_NULL(ev->datacontenttype);
	CU_ASSERT_PTR_NULL(ev->dataschema);
}

static void check_ext_types(const jr_event *ev)
{
	CU_ASSERT_EQUAL(ev->n_ext, 7);
	const jr_json *i = event_ext(ev, "extinteger"), *b = event_ext(ev, "extboolean");
	CU_ASSERT_TRUE(i && i->type == JR_JSON_NUMBER && strcmp(i->s, "10") == 0);
	CU_ASSERT_TRUE(b && b->type == JR_JSON_TRUE);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "extstring"), "text"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "exturi"), "https://cloudevents.io"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "exturiref"), "//authority/path"));
	CU_ASSERT_EQUAL(instant_ms(ext_str(ev, "exttimestamp")), instant_ms("2023-03-31T15:12:00Z"));
	jr_arena a;
	arena_init(&a);
	char *bytes;
	const char *b64 = ext_str(ev, "extbinary");
	CU_ASSERT_TRUE(b64 && base64_decode(&a, b64, strlen(b64), &bytes) == 2 &&
		       bytes[0] == 77 && bytes[1] == 97);
	arena_free(&a);
}

/* check_sample: ev equals the golden sample event of format/README.md. */
static void check_sample(const jr_event *ev, const char *sample, const char *id)
{
	CU_ASSERT_TRUE(str_is(ev->specversion, "1.0"));
	CU_ASSERT_TRUE(str_is(ev->type, "io.cloudevents.test"));
	CU_ASSERT_TRUE(str_is(ev->id, id));
	int relative = strcmp(sample, "minimalWithRelativeSource") == 0;
	CU_ASSERT_TRUE(str_is(ev->source, relative ? "#fragment" : "https://cloudevents.io"));
	long long t = instant_ms("2018-04-05T17:31:00Z");
	if (strcmp(sample, "allCore") == 0) {
		CU_ASSERT_TRUE(str_is(ev->datacontenttype, "text/plain"));
		CU_ASSERT_TRUE(str_is(ev->dataschema, "https://cloudevents.io/dataschema"));
		CU_ASSERT_TRUE(str_is(ev->subject, "tests"));
		CU_ASSERT_EQUAL(instant_ms(ev->time), t);
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_NONE);
	} else if (strcmp(sample, "simpleTextData") == 0) {
		CU_ASSERT_TRUE(str_is(ev->datacontenttype, "text/plain"));
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_TEXT);
		CU_ASSERT_TRUE(ev->data_len == 11 && memcmp(ev->data, "Simple text", 11) == 0);
	} else if (strcmp(sample, "allExtensionTypes") == 0) {
		check_no_optional(ev);
		check_ext_types(ev);
	} else {
		check_no_optional(ev);
		CU_ASSERT_EQUAL(ev->n_ext, 0);
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_NONE);
		if (strcmp(sample, "minimalWithTime") == 0)
			CU_ASSERT_EQUAL(instant_ms(ev->time), t)
		else
			CU_ASSERT_PTR_NULL(ev->time);
	}
}

/* tests_of: the "tests" array of a format-tests file, parsed into a. */
static const jr_json *tests_of(jr_arena *a, const char *rel)
{
	size_t len;
	char *s = td_read(rel, &len);
	const jr_json *root = s ? jsonparse(a, s, len, 64, NULL, 0) : NULL;
	free(s);
	const jr_json *t = json_get(root, "tests");
	CU_ASSERT_TRUE_FATAL(t && t->type == JR_JSON_ARRAY && t->n > 0);
	return t;
}

static void test_format_valid_events(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *tests = tests_of(&a, FT "valid-events.json");
	size_t pass = 0;
	for (size_t i = 0; i < tests->n; i++) {
		const jr_json *t = tests->items[i], *e = json_get(t, "event");
		char *text = compact(e);
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(got_doc(&g, text), 1);
		CU_ASSERT_EQUAL(g.n_err, 0);
		if (g.n_ev == 1) {
			check_sample(g.ev[0], json_get_str(t, "sampleId"), json_get_str(e, "id"));
			pass++;
		} else {
			fprintf(stderr, "%s: %s\n", json_get_str(t, "id"), g.err[0]);
		}
		got_free(&g);
		free(text);
	}
	CU_ASSERT_EQUAL(pass, 10);
	CU_ASSERT_EQUAL(tests->n, 10);
	arena_free(&a);
}

/* The reasons asserted for some invalid vectors (all must be rejected). */
static const struct {
	const char *id, *part;
} invalid_reasons[] = {
	{ "invalidNoSpecVersion", "missing specversion" },
	{ "invalidNoId", "missing required attribute id" },
	{ "invalidNoType", "missing required attribute type" },
	{ "invalidNoSource", "missing required attribute source" },
	{ "invalidTimeGarbage", "\"lunchtime\" is not an RFC 3339 timestamp" },
	{ "invalidTimeToMinute", "RFC 3339" },
	{ "invalidTimeOffsetOutOfRange", "RFC 3339" },
	{ "invalidTimeOffsetHourOnly", "RFC 3339" },
	{ "invalidEmptyId", "attribute id is empty" },
	{ "invalidEmptySpecVersion", "unknown specversion \"\"" },
	{ "invalidUnknownSpecVersion", "unknown specversion \"0.9\"" },
	{ "invalidNonRfc2046DataContentType", "\"xyz\" is not a media type" },
	{ "invalidEmptyDataContentType", "datacontenttype is empty" },
	{ "invalidEmptyDataSchema", "dataschema is empty" },
	{ "invalidEmptySubject", "subject is empty" },
	{ "invalidNumericId", "attribute id must be a string" },
	{ "invalidObjectId", "attribute id must be a string" },
	{ "invalidCapitalizedExtension", "invalid extension name \"MyExtension\"" },
	{ "invalidPunctuatedExtension", "invalid extension name \"my.extension\"" },
	{ "invalidBothDataAndDataBase64", "both data and data_base64" },
};

static const char *reason_for(const char *id)
{
	for (size_t i = 0; i < sizeof invalid_reasons / sizeof invalid_reasons[0]; i++)
		if (strcmp(invalid_reasons[i].id, id) == 0)
			return invalid_reasons[i].part;
	return NULL;
}

static void test_format_invalid_events(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *tests = tests_of(&a, FT "invalid-events.json");
	size_t rejected = 0, reasons = 0;
	for (size_t i = 0; i < tests->n; i++) {
		const jr_json *t = tests->items[i];
		char *text = compact(json_get(t, "event"));
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(got_doc(&g, text), 1);
		CU_ASSERT_EQUAL(g.n_ev, 0);
		if (g.n_err == 1) {
			rejected++;
			const char *part = reason_for(json_get_str(t, "id"));
			if (part) {
				CU_ASSERT_TRUE(has(g.err[0], part));
				reasons++;
			}
		} else {
			fprintf(stderr, "accepted: %s\n", json_get_str(t, "id"));
		}
		got_free(&g);
		free(text);
	}
	CU_ASSERT_EQUAL(tests->n, 25);
	CU_ASSERT_EQUAL(rejected, 25);
	CU_ASSERT_EQUAL(reasons, sizeof invalid_reasons / sizeof invalid_reasons[0]);
	arena_free(&a);
}

static const char *sample_of_element(const char *batch_sample, size_t i)
{
	if (strcmp(batch_sample, "minimalAndAllCore") == 0 && i == 1)
		return "allCore";
	if (strcmp(batch_sample, "minimalAndAllExtensionTypes") == 0 && i == 1)
		return "allExtensionTypes";
	return "minimal";
}

/* valid_batch: one valid batch through decode_json_doc and HTTP batch mode. */
static void valid_batch(const jr_json *t, int http)
{
	const jr_json *batch = json_get(t, "batch");
	char *text = compact(batch);
	got g;
	got_init(&g);
	jr_header h[] = { { "Content-Type", "application/cloudevents-batch+json; charset=utf-8" } };
	int calls = http ? decode_http(&g.dc, h, 1, "/", text, strlen(text)) : got_doc(&g, text);
	CU_ASSERT_EQUAL((size_t)calls, batch->n);
	CU_ASSERT_EQUAL(g.n_err, 0);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, batch->n);
	for (size_t i = 0; i < g.n_ev; i++)
		check_sample(g.ev[i], sample_of_element(json_get_str(t, "sampleId"), i),
			     json_get_str(batch->items[i], "id"));
	got_free(&g);
	free(text);
}

static void test_format_valid_batches(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *tests = tests_of(&a, FT "valid-batches.json");
	CU_ASSERT_EQUAL(tests->n, 5);
	for (size_t i = 0; i < tests->n; i++) {
		valid_batch(tests->items[i], 0);
		valid_batch(tests->items[i], 1);
	}
	arena_free(&a);
}

static void test_format_invalid_batches(void)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *tests = tests_of(&a, FT "invalid-batches.json");
	CU_ASSERT_EQUAL_FATAL(tests->n, 3);
	static const struct {
		const char *id;
		size_t ok, bad;
		const char *part;
	} want[] = {
		{ "invalidBatchMixedSpecVersions", 1, 1, "batch element 1: unknown specversion \"0.9\"" },
		{ "invalidBatchContainingInvalidCloudEvent", 0, 1,
		  "batch element 0: missing required attribute id" },
		{ "invalidBatchContainingNonObject", 1, 1, "batch element 0: not a JSON object" },
	};
	for (size_t i = 0; i < tests->n; i++) {
		const jr_json *t = tests->items[i];
		CU_ASSERT_STRING_EQUAL(json_get_str(t, "id"), want[i].id);
		char *text = compact(json_get(t, "batch"));
		got g;
		got_init(&g);
		got_doc(&g, text);
		CU_ASSERT_EQUAL(g.n_ev, want[i].ok);
		CU_ASSERT_EQUAL_FATAL(g.n_err, want[i].bad);
		CU_ASSERT_TRUE(has(g.err[0], want[i].part));
		got_free(&g);
		free(text);
	}
	arena_free(&a);
}

/* yaml_node: a libyaml node as a jr_json tree (scalars are strings). */
static jr_json *yaml_node(jr_arena *a, yaml_document_t *d, yaml_node_t *n)
{
	if (n->type == YAML_SCALAR_NODE)
		return json_new_string(a, (const char *)n->data.scalar.value, n->data.scalar.length);
	if (n->type == YAML_SEQUENCE_NODE) {
		jr_json *arr = json_new(a, JR_JSON_ARRAY);
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			json_arr_add(a, arr, yaml_node(a, d, yaml_document_get_node(d, *i)));
		return arr;
	}
	jr_json *obj = json_new(a, JR_JSON_OBJECT);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		json_obj_add(a, obj, arena_strndup(a, (const char *)k->data.scalar.value,
						   k->data.scalar.length),
			     k->data.scalar.length, yaml_node(a, d, yaml_document_get_node(d, p->value)));
	}
	return obj;
}

/* yaml_docs: every document of a YAML file. */
static size_t yaml_docs(jr_arena *a, const char *rel, jr_json **out, size_t max)
{
	size_t len, n = 0;
	char *s = td_read(rel, &len);
	if (!s)
		return 0;
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)s, len);
	for (;;) {
		yaml_document_t d;
		if (!yaml_parser_load(&p, &d))
			break;
		yaml_node_t *root = yaml_document_get_root_node(&d);
		if (root && n < max)
			out[n++] = yaml_node(a, &d, root);
		yaml_document_delete(&d);
		if (!root)
			break;
	}
	yaml_parser_delete(&p);
	free(s);
	return n;
}

static int yaml_json_data(const char *ct)
{
	return !ct || strstr(ct, "json") != NULL;
}

/* check_yaml_event: ev carries the attributes, extensions and data of doc. */
static void check_yaml_event(jr_event *ev, const jr_json *doc)
{
	const jr_json *attrs = json_get(doc, "ContextAttributes");
	const jr_json *exts = json_get(attrs, "Extensions"), *data = json_get(doc, "Data");
	CU_ASSERT_TRUE(str_is(ev->specversion, "1.0"));
	for (size_t i = 0; i < attrs->n; i++) {
		if (attrs->items[i]->type != JR_JSON_STRING || !strcmp(attrs->keys[i], "specversion"))
			continue;
		CU_ASSERT_TRUE(str_is(event_attr(ev, attrs->keys[i]), attrs->items[i]->s));
	}
	for (size_t i = 0; exts && i < exts->n; i++)
		CU_ASSERT_TRUE(str_is(ext_str(ev, exts->keys[i]), exts->items[i]->s));
	CU_ASSERT_EQUAL(ev->n_ext, exts ? exts->n : 0);
	if (yaml_json_data(json_get_str(attrs, "datacontenttype"))) {
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_JSON);
		CU_ASSERT_TRUE(same_json(ev->data_json, data->s, data->n));
	} else {
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_TEXT);
		CU_ASSERT_TRUE(ev->data_len == data->n && memcmp(ev->data, data->s, data->n) == 0);
	}
}

static size_t yaml_headers(const jr_json *doc, jr_header *h, char names[][64])
{
	const jr_json *attrs = json_get(doc, "ContextAttributes");
	const jr_json *exts = json_get(attrs, "Extensions");
	const jr_json *tr = json_get(doc, "TransportExtensions");
	size_t n = 0;
	for (size_t i = 0; i < attrs->n; i++) {
		if (attrs->items[i]->type != JR_JSON_STRING)
			continue;
		int ct = strcmp(attrs->keys[i], "datacontenttype") == 0;
		snprintf(names[n], 64, ct ? "Content-Type" : "ce-%s", attrs->keys[i]);
		h[n].name = names[n];
		h[n++].value = attrs->items[i]->s;
	}
	for (size_t i = 0; exts && i < exts->n; i++) {
		snprintf(names[n], 64, "ce-%s", exts->keys[i]);
		h[n].name = names[n];
		h[n++].value = exts->items[i]->s;
	}
	for (size_t i = 0; tr && i < tr->n; i++) {
		h[n].name = tr->keys[i];
		h[n++].value = tr->items[i]->s;
	}
	return n;
}

/* yaml_structured: the YAML event as a structured-mode JSON text. */
static char *yaml_structured(jr_arena *a, const jr_json *doc)
{
	const jr_json *attrs = json_get(doc, "ContextAttributes");
	const jr_json *exts = json_get(attrs, "Extensions"), *data = json_get(doc, "Data");
	jr_json *o = json_new(a, JR_JSON_OBJECT);
	for (size_t i = 0; i < attrs->n; i++)
		if (attrs->items[i]->type == JR_JSON_STRING)
			json_obj_add(a, o, attrs->keys[i], attrs->key_lens[i], attrs->items[i]);
	for (size_t i = 0; exts && i < exts->n; i++)
		json_obj_add(a, o, exts->keys[i], exts->key_lens[i], exts->items[i]);
	jr_json *d = (jr_json *)data;
	if (yaml_json_data(json_get_str(attrs, "datacontenttype")))
		d = jsonparse(a, data->s, data->n, 64, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	json_obj_add(a, o, "data", 4, d);
	return compact(o);
}

static void yaml_file(const char *rel, size_t expect_docs)
{
	jr_arena a;
	arena_init(&a);
	jr_json *docs[16];
	size_t n = yaml_docs(&a, rel, docs, 16);
	CU_ASSERT_EQUAL(n, expect_docs);
	for (size_t i = 0; i < n; i++) {
		jr_header h[32];
		char names[32][64];
		const jr_json *data = json_get(docs[i], "Data");
		got g;
		got_init(&g);
		size_t nh = yaml_headers(docs[i], h, names);
		CU_ASSERT_EQUAL(decode_http(&g.dc, h, nh, "/", data->s, data->n), 1);
		CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
		check_yaml_event(g.ev[0], docs[i]);
		char *body = yaml_structured(&a, docs[i]);
		jr_header sh[] = { { "content-type", "application/cloudevents+json; charset=UTF-8" } };
		CU_ASSERT_EQUAL(decode_http(&g.dc, sh, 1, "/", body, strlen(body)), 1);
		CU_ASSERT_EQUAL_FATAL(g.n_ev, 2);
		check_yaml_event(g.ev[1], docs[i]);
		free(body);
		got_free(&g);
	}
	arena_free(&a);
}

static void test_yaml_v1(void)
{
	yaml_file("cloudevents-conformance/main/yaml/v1.yaml", 2);
	yaml_file("cloudevents-conformance/main/yaml/v1.0/v1_minimum.yaml", 6);
}

static void test_yaml_v03(void)
{
	yaml_file("cloudevents-conformance/main/yaml/v03.yaml", 1);
	yaml_file("cloudevents-conformance/main/yaml/v0.3/v03_minimum.yaml", 6);
}

/* A scenario of the Gherkin feature: request text, expected attributes and data. */
typedef struct scenario {
	jr_buf request, data;
	char keys[16][128], values[16][128];
	size_t n_attrs;
	char examples[8][128];
	size_t n_examples;
} scenario;

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int is_fence(const char *l)
{
	l += strspn(l, " \t");
	if (strncmp(l, "\"\"\"", 3) != 0)
		return 0;
	l += 3;
	return l[strspn(l, " \t\r")] == '\0';
}

/* doc_string: lines up to the closing """, less the indentation of the opening one. */
static char **doc_string(char **line, jr_buf *out)
{
	size_t indent = strspn(*line, " ");
	for (line++; *line && !is_fence(*line); line++) {
		size_t k = strspn(*line, " ");
		buf_adds(out, *line + (k < indent ? k : indent));
		buf_addc(out, '\n');
	}
	return line;
}

static void table_row(char *line, char *a, char *b, size_t na, size_t nb)
{
	char *p1 = strchr(line, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
	char *p3 = p2 ? strchr(p2 + 1, '|') : NULL;
	*a = *b = '\0';
	if (!p2)
		return;
	*p2 = '\0';
	snprintf(a, na, "%s", trim(p1 + 1));
	if (p3) {
		*p3 = '\0';
		snprintf(b, nb, "%s", trim(p2 + 1));
	}
}

static char *subst(const char *s, const char *value)
{
	const char *p = strstr(s, "<contentType>");
	if (!p)
		return jr_strdup(s);
	return jr_asprintf("%.*s%s%s", (int)(p - s), s, value, p + 13);
}

static void run_scenario(const scenario *sc)
{
	CU_ASSERT_TRUE(sc->n_examples > 0 && sc->n_attrs == 6);
	for (size_t e = 0; e < sc->n_examples; e++) {
		char *req = subst(sc->request.data, sc->examples[e]);
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(decode_http_capture(&g.dc, req, strlen(req)), 1);
		CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
		for (size_t i = 0; i < sc->n_attrs; i++) {
			char *want = subst(sc->values[i], sc->examples[e]);
			CU_ASSERT_TRUE(str_is(event_attr(g.ev[0], sc->keys[i]), want));
			free(want);
		}
		CU_ASSERT_EQUAL(g.ev[0]->data_kind, JR_DATA_JSON);
		CU_ASSERT_TRUE(same_json(g.ev[0]->data_json, sc->data.data, sc->data.len));
		got_free(&g);
		free(req);
	}
}

static size_t read_scenarios(char **lines, scenario *sc, size_t max)
{
	size_t n = 0;
	int in_examples = 0, header_seen = 0;
	for (char **l = lines; *l; l++) {
		char *t = trim(*l);
		scenario *s = n ? &sc[n - 1] : NULL;
		if (strncmp(t, "Scenario Outline:", 17) == 0 && n < max) {
			memset(&sc[n], 0, sizeof sc[n]);
			buf_init(&sc[n].request, 0);
			buf_init(&sc[n].data, 0);
			n++;
			in_examples = header_seen = 0;
		} else if (s && is_fence(t)) {
			l = doc_string(l, s->request.len ? &s->data : &s->request);
		} else if (s && strcmp(t, "Examples:") == 0) {
			in_examples = 1;
		} else if (s && t[0] == '|') {
			char a[128], b[128];
			table_row(t, a, b, sizeof a, sizeof b);
			if (!in_examples && strcmp(a, "key") != 0 && s->n_attrs < 16) {
				snprintf(s->keys[s->n_attrs], 128, "%s", a);
				snprintf(s->values[s->n_attrs++], 128, "%s", b);
			} else if (in_examples && header_seen++ && s->n_examples < 8) {
				snprintf(s->examples[s->n_examples++], 128, "%s", a);
			}
		}
	}
	return n;
}

static void test_http_binding_feature(void)
{
	size_t len;
	char *text = td_read("cloudevents-conformance/main/features/http-protocol-binding.feature",
			     &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	char *lines[256];
	size_t nl = 0;
	for (char *l = text; l && nl < 255; nl++) {
		lines[nl] = l;
		l = strchr(l, '\n');
		if (l)
			*l++ = '\0';
	}
	lines[nl] = NULL;
	scenario sc[4];
	size_t n = read_scenarios(lines, sc, 4);
	CU_ASSERT_EQUAL(n, 2);
	size_t cases = 0;
	for (size_t i = 0; i < n; i++) {
		run_scenario(&sc[i]);
		cases += sc[i].n_examples;
		buf_free(&sc[i].request);
		buf_free(&sc[i].data);
	}
	CU_ASSERT_EQUAL(cases, 4);
	free(text);
}

/* sdk: decodes one sdk-java vector file; returns the event or NULL (error in g). */
static jr_event *sdk(got *g, const char *ver, const char *name)
{
	char rel[256];
	size_t len;
	snprintf(rel, sizeof rel, SDK "%s/%s.json", ver, name);
	char *s = td_read(rel, &len);
	got_init(g);
	if (s)
		CU_ASSERT_EQUAL(decode_json_doc(&g->dc, s, len), 1);
	free(s);
	return g->n_ev ? g->ev[0] : NULL;
}

static void sdk_common(const jr_event *ev, int full)
{
	CU_ASSERT_TRUE(str_is(ev->specversion, "1.0"));
	CU_ASSERT_TRUE(str_is(ev->id, "1"));
	CU_ASSERT_TRUE(str_is(ev->type, "mock.test"));
	CU_ASSERT_TRUE(str_is(ev->source, "http://localhost/source"));
	if (full) {
		CU_ASSERT_TRUE(str_is(ev->subject, "sub"));
		CU_ASSERT_EQUAL(instant_ms(ev->time), instant_ms("2018-04-26T12:48:09Z"));
	}
}

static void sdk_text(const char *ver, const char *name, const char *ct, const char *text)
{
	got g;
	jr_event *ev = sdk(&g, ver, name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	sdk_common(ev, 1);
	CU_ASSERT_TRUE(str_is(ev->datacontenttype, ct));
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_TEXT);
	CU_ASSERT_TRUE(ev->data_len == strlen(text) && memcmp(ev->data, text, ev->data_len) == 0);
	got_free(&g);
}

static void sdk_json(const char *ver, const char *name, int exts)
{
	got g;
	jr_event *ev = sdk(&g, ver, name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	sdk_common(ev, 1);
	CU_ASSERT_TRUE(str_is(ev->dataschema, "http://localhost/schema"));
	CU_ASSERT_TRUE(str_is(ev->datacontenttype, "application/json"));
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_JSON);
	CU_ASSERT_TRUE(same_json(ev->data_json, "{}", 2));
	CU_ASSERT_EQUAL(ev->n_ext, exts ? 3 : 0);
	if (exts) {
		CU_ASSERT_TRUE(str_is(event_attr(ev, "astring"), "aaa"));
		CU_ASSERT_TRUE(str_is(event_attr(ev, "aboolean"), "true"));
		CU_ASSERT_TRUE(str_is(event_attr(ev, "anumber"), "10"));
		CU_ASSERT_EQUAL(event_ext(ev, "anumber")->type, JR_JSON_NUMBER);
	}
	got_free(&g);
}

static void sdk_rejected(const char *ver, const char *name, const char *part)
{
	got g;
	CU_ASSERT_PTR_NULL(sdk(&g, ver, name));
	CU_ASSERT_EQUAL_FATAL(g.n_err, 1);
	CU_ASSERT_TRUE(has(g.err[0], part));
	got_free(&g);
}

static void sdk_shared(const char *ver)
{
	got g;
	jr_event *ev = sdk(&g, ver, "min");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	sdk_common(ev, 0);
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_NONE);
	got_free(&g);
	ev = sdk(&g, ver, "min_subject_null");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_PTR_NULL(ev->subject);
	got_free(&g);
	sdk_json(ver, "json_data", 0);
	sdk_json(ver, "json_data_with_ext", 1);
	sdk_json(ver, "base64_json_data", 0);
	sdk_json(ver, "base64_json_data_with_ext", 1);
	sdk_text(ver, "text_data", "text/plain", "Hello World Lorena!");
	sdk_text(ver, "base64_text_data", "text/plain", "Hello World Lorena!");
	sdk_text(ver, "xml_data", "application/xml", "<stuff></stuff>");
	sdk_text(ver, "base64_xml_data", "application/xml", "<stuff></stuff>");
	sdk_rejected(ver, "json_data_with_ext_upper_case", "invalid extension name \"aString\"");
	sdk_rejected(ver, "fail_numeric_decimal", "42.42 is not a 32-bit integer");
	sdk_rejected(ver, "fail_numeric_long", "4247483647 is not a 32-bit integer");
	ev = sdk(&g, ver, "json_data_with_ext_invalid"); /* '_' is our one leniency */
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "a_invalid_name"), "invalidName"));
	CU_ASSERT_EQUAL(ev->n_ext, 4);
	got_free(&g);
}

static void test_sdk_java_v1(void)
{
	sdk_shared("v1");
	got g;
	jr_event *ev = sdk(&g, "v1", "binary_attr");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "binary"), "4P8ARKo="));
	got_free(&g);
	ev = sdk(&g, "v1", "numeric_ext");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(event_attr(ev, "integer"), "42"));
	CU_ASSERT_EQUAL(event_ext(ev, "integer")->type, JR_JSON_NUMBER);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "decimal"), "42.42"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "float"), "4.2"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "long"), "4200"));
	got_free(&g);
	ev = sdk(&g, "v1", "json_data_with_fractional_time");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ev->time, "2018-04-26T14:48:09.1234Z"));
	got_free(&g);
}

static void test_sdk_java_v03(void)
{
	sdk_shared("v03");
	got g;
	jr_event *ev = sdk(&g, "v03", "base64_json_data");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(ev->data_len == 2 && memcmp(ev->data, "{}", 2) == 0);
	CU_ASSERT_PTR_NULL(event_ext(ev, "datacontentencoding"));
	CU_ASSERT_PTR_NULL(event_ext(ev, "schemaurl"));
	got_free(&g);
}

static void test_json_content_types(void)
{
	size_t len;
	char *s = td_read("cloudevents-sdk-java/transcribed/json-content-types.transcribed.json", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	jr_arena a;
	arena_init(&a);
	const jr_json *root = jsonparse(&a, s, len, 16, NULL, 0);
	const jr_json *yes = json_get(root, "dataIsJsonContentType_true");
	const jr_json *no = json_get(root, "dataIsJsonContentType_false");
	CU_ASSERT_TRUE_FATAL(yes && no && yes->n == 14 && no->n == 6);
	for (int want = 0; want < 2; want++) {
		const jr_json *list = want ? yes : no;
		for (size_t i = 0; i < list->n; i++) {
			got g;
			got_init(&g);
			jr_header h[] = { { "ce-specversion", "1.0" }, { "ce-id", "1" },
					  { "ce-source", "/s" }, { "ce-type", "t" },
					  { "Content-Type", list->items[i]->s } };
			CU_ASSERT_EQUAL(decode_http(&g.dc, h, 5, NULL, "{\"a\":1}", 7), 1);
			CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
			CU_ASSERT_EQUAL(g.ev[0]->data_kind == JR_DATA_JSON, want);
			if (want)
				CU_ASSERT_TRUE(same_json(g.ev[0]->data_json, "{\"a\":1}", 7));
			CU_ASSERT_TRUE(str_is(g.ev[0]->datacontenttype, list->items[i]->s));
			got_free(&g);
		}
	}
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(got_doc(&g, json_get_str(root, "deserialize_must_fail_invalid_specversion")), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_err, 1);
	CU_ASSERT_TRUE(has(g.err[0], "unknown specversion \"9000.1\""));
	/* a missing datacontenttype also counts as JSON */
	CU_ASSERT_EQUAL(got_doc(&g, "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
				    "\"type\":\"t\",\"data\":{\"a\":[1]}}"), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_EQUAL(g.ev[0]->data_kind, JR_DATA_JSON);
	CU_ASSERT_TRUE(same_json(g.ev[0]->data_json, "{\"a\":[1]}", 9));
	got_free(&g);
	arena_free(&a);
	free(s);
}

static void test_rfc3339(void)
{
	static const char *good[] = { "2018-04-05T17:31:00Z", "2018-04-05t17:31:00z",
				      "2016-12-31T23:59:60Z", "2020-02-29T00:00:00.1+23:59",
				      "2018-04-05T17:31:00.000000000-01:00" };
	static const char *bad[] = { "2018-04-05 17:31:00Z", "2018-04-05T17:31Z",
				     "2019-02-29T00:00:00Z", "2018-13-01T00:00:00Z",
				     "2018-04-05T24:00:00Z", "2018-04-05T17:31:00.Z",
				     "2018-04-05T17:31:00+0100", "2018-04-05T17:31:00Z ",
				     "2018-04-31T00:00:00Z", "18-04-05T17:31:00Z" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		jr_event ev = { .specversion = "1.0", .id = "1", .source = "s", .type = "t",
				.time = good[i] };
		char err[128];
		CU_ASSERT_EQUAL(decode_validate(&ev, err, sizeof err), 0);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		jr_event ev = { .specversion = "1.0", .id = "1", .source = "s", .type = "t",
				.time = bad[i] };
		char err[128];
		CU_ASSERT_EQUAL(decode_validate(&ev, err, sizeof err), -1);
		CU_ASSERT_TRUE(has(err, "RFC 3339"));
	}
}

static char *big_event(size_t data_bytes)
{
	char *s = malloc(data_bytes + 200);
	int n = sprintf(s, "{\"specversion\":\"1.0\",\"id\":\"big\",\"source\":\"/s\",\"type\":\"t\","
			   "\"datacontenttype\":\"text/plain\",\"data\":\"");
	memset(s + n, 'x', data_bytes);
	strcpy(s + n + data_bytes, "\"}");
	return s;
}

static void test_limits(void)
{
	got g;
	got_init(&g);
	g.lim.event_bytes = 1000;
	char *big = big_event(2000), *ok = big_event(100);
	CU_ASSERT_EQUAL(got_doc(&g, big), 1);
	CU_ASSERT_EQUAL(got_doc(&g, ok), 1);
	CU_ASSERT_EQUAL(g.n_ev, 1);
	CU_ASSERT_EQUAL_FATAL(g.n_err, 1);
	CU_ASSERT_TRUE(has(g.err[0], "over the limit of 1000 bytes"));
	got_free(&g);
	jr_header h[] = { { "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" },
			  { "ce-type", "t" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 4, "/", big, strlen(big)), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "body of"));
	got_free(&g);
	free(big);
	free(ok);

	got_init(&g);
	g.lim.json_depth = 8;
	CU_ASSERT_EQUAL(got_doc(&g, "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
				    "\"data\":[[[[[[[[[]]]]]]]]]}"), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "nesting deeper than 8"));
	CU_ASSERT_EQUAL(got_doc(&g, "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\","
				    "\"data\":[[[[[[]]]]]]}"), 1);
	CU_ASSERT_EQUAL(g.n_ev, 1);
	got_free(&g);

	got_init(&g);
	g.lim.attributes = 6;
	const char *batch = "[{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
			    "\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},"
			    "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\","
			    "\"a\":\"1\",\"b\":\"2\"}]";
	CU_ASSERT_EQUAL(got_doc(&g, batch), 2);
	CU_ASSERT_EQUAL_FATAL(g.n_err, 1);
	CU_ASSERT_TRUE(has(g.err[0], "batch element 0: more than 6 attributes"));
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_STRING_EQUAL(g.ev[0]->id, "2");
	got_free(&g);

	got_init(&g);
	g.lim.header_bytes = 50;
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 4, "/", "", 0), 1);
	CU_ASSERT_TRUE(g.n_err == 0 && g.n_ev == 1);
	jr_header many[] = { { "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" },
			     { "ce-type", "t" }, { "x-padding", "0123456789" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, many, 5, "/", "", 0), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "headers of"));
	got_free(&g);
}

/* one_error: exactly one callback, an error containing want. */
static void one_error(got *g, const char *want, const char *what)
{
	if (g->n_ev != 0 || g->n_err != 1 || !has(g->err[0], want))
		fprintf(stderr, "%s: %zu events, %zu errors (%s); wanted an error with \"%s\"\n", what,
			g->n_ev, g->n_err, g->n_err ? g->err[0] : "", want);
	CU_ASSERT_EQUAL(g->n_ev, 0);
	CU_ASSERT_TRUE(g->n_err == 1 && has(g->err[0], want));
}

static void bad_doc(const char *doc, size_t len, const char *want)
{
	got g;
	got_init(&g);
	decode_json_doc(&g.dc, doc, len);
	one_error(&g, want, doc);
	got_free(&g);
}

#define BAD_DOC(lit, want) bad_doc(lit, sizeof lit - 1, want)
#define CE_HEAD "{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\","

static void bad_binary(const char *name, const char *value, const char *want)
{
	got g;
	got_init(&g);
	jr_header h[] = { { "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" },
			  { "ce-type", "t" }, { name, value } };
	size_t n = 5;
	for (size_t i = 0; i < 4; i++)
		if (strcmp(h[i].name, name) == 0) {
			h[i].value = value;
			n = 4;
		}
	decode_http(&g.dc, h, n, "/", "", 0);
	one_error(&g, want, value);
	got_free(&g);
}

/* Ids that differ only after a NUL, control characters, invalid UTF-8: invalid, in every form. */
static void test_attribute_validity(void)
{
	/* structured: \u0000 in the id, in an extension; control characters; raw bad UTF-8 */
	BAD_DOC(CE_HEAD "\"id\":\"nul\\u0000one\"}", "attribute id holds a NUL byte at byte 3");
	BAD_DOC(CE_HEAD "\"id\":\"nul\\u0000two\"}", "attribute id holds a NUL byte at byte 3");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"ext\":\"a\\u0000b\"}", "attribute ext holds a NUL byte");
	BAD_DOC(CE_HEAD "\"id\":\"x\\u0001\"}", "attribute id holds a control character at byte 1");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"subject\":\"\\u001b[31m\"}", "attribute subject holds a control");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"t\":\"\\u0085\"}", "attribute t holds a control character");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"t\":\"\x7f\"}", "attribute t holds a control character");
	BAD_DOC(CE_HEAD "\"id\":\"dl-\xff\"}", "invalid bytes in UTF8 string"); /* yajl's own check */
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"t\":\"\xC0\xAF\"}", "invalid UTF-8");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"data\":\"\xED\xA0\x80\"}", "invalid UTF-8");
	BAD_DOC(CE_HEAD "\"id\":\"x\",\"data\":\"\\ud800\"}", "unpaired surrogate");
	/* binary mode over HTTP: percent-decoded header values */
	bad_binary("ce-id", "nul%00one", "attribute id holds a NUL byte at byte 3");
	bad_binary("ce-id", "nul%00two", "attribute id holds a NUL byte at byte 3");
	bad_binary("ce-id", "dl-\xff", "attribute id holds invalid UTF-8 at byte 3");
	bad_binary("ce-source", "/s%FF", "attribute source holds invalid UTF-8 at byte 2");
	bad_binary("ce-t", "t\xfe", "attribute t holds invalid UTF-8 at byte 1");
	bad_binary("ce-t", "a%01b", "attribute t holds a control character at byte 1");
	bad_binary("ce-t", "%E0%80%AF", "attribute t holds invalid UTF-8");
	/* Pub/Sub push bodies: ce- attributes, message ids, plain attributes */
	BAD_DOC("{\"message\":{\"messageId\":\"1\",\"attributes\":{\"ce-specversion\":\"1.0\","
		"\"ce-id\":\"nul\\u0000one\",\"ce-source\":\"/s\",\"ce-type\":\"t\"}}}",
		"message attribute ce-id holds a NUL byte");
	BAD_DOC("{\"message\":{\"messageId\":\"m\\u0000x\"},\"subscription\":\"projects/p/subscriptions/s\"}",
		"holds a NUL byte");
	BAD_DOC("{\"message\":{\"messageId\":\"1\",\"attributes\":{\"ce-specversion\":\"1.0\","
		"\"ce-id\":\"x\\u0002\",\"ce-source\":\"/s\",\"ce-type\":\"t\"}}}",
		"attribute id holds a control character");
	/* the data of an event may hold a NUL: it is JSON data, not an attribute */
	got g;
	got_init(&g);
	const char ok[] = CE_HEAD "\"id\":\"x\",\"data\":\"a\\u0000b\"}";
	decode_json_doc(&g.dc, ok, sizeof ok - 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_EQUAL(g.ev[0]->data_json->n, 3);
	got_free(&g);
}

/* A pulled message whose attribute held a NUL (the reader writes UTF8_NUL_TEXT): invalid, never cut. */
static void test_pulled_nul(void)
{
	const char *ids[] = { "nul" UTF8_NUL_TEXT "one", "nul" UTF8_NUL_TEXT "two" };
	for (int i = 0; i < 2; i++) {
		jr_event *ev = event_new();
		jr_message *m = arena_alloc(&ev->arena, sizeof *m);
		jr_kv *kv = arena_alloc(&ev->arena, 4 * sizeof *kv);
		kv[0] = (jr_kv){ "ce-specversion", "1.0" };
		kv[1] = (jr_kv){ "ce-id", ids[i] };
		kv[2] = (jr_kv){ "ce-source", "/s" };
		kv[3] = (jr_kv){ "ce-type", "t" };
		m->id = "42";
		m->data = "";
		m->attrs = kv;
		m->n_attrs = 4;
		ev->message = m;
		char err[256] = "";
		CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
		CU_ASSERT_TRUE(has(err, "message attribute ce-id holds a NUL byte at byte 3"));
		event_free(ev);
	}
}

/* batch_of: a batch of n minimal events (caller frees). */
static char *batch_of(size_t n)
{
	jr_buf b;
	buf_init(&b, 0);
	buf_addc(&b, '[');
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s{\"specversion\":\"1.0\",\"id\":\"%zu\",\"source\":\"/s\",\"type\":\"t\"}",
			   i ? "," : "", i);
	buf_addc(&b, ']');
	return buf_take(&b);
}

/* a batch past limits.batch_events is refused whole: one error, no event */
static void test_batch_events(void)
{
	got g;
	got_init(&g);
	g.lim.batch_events = 3;
	char *four = batch_of(4), *three = batch_of(3);
	CU_ASSERT_EQUAL(got_doc(&g, four), 1);
	CU_ASSERT_EQUAL(g.n_ev, 0);
	CU_ASSERT_EQUAL_FATAL(g.n_err, 1);
	CU_ASSERT_TRUE(has(g.err[0], "batch of 4 events is over the limit of 3 events"));
	jr_header h[] = { { "Content-Type", "application/cloudevents-batch+json" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 1, "/", four, strlen(four)), 1);
	CU_ASSERT_EQUAL(g.n_ev, 0);
	CU_ASSERT_EQUAL(g.n_err, 2);
	CU_ASSERT_EQUAL(got_doc(&g, three), 3);
	CU_ASSERT_EQUAL(g.n_ev, 3);
	got_free(&g);
	free(four);
	free(three);

	/* unset (0): the default of 1000 */
	got_init(&g);
	char *k = batch_of(1000), *k1 = batch_of(1001);
	CU_ASSERT_EQUAL(got_doc(&g, k), 1000);
	CU_ASSERT_EQUAL(g.n_err, 0);
	got_free(&g);
	CU_ASSERT_EQUAL(got_doc(&g, k1), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && g.n_ev == 0 && has(g.err[0], "over the limit of 1000 events"));
	got_free(&g);
	free(k);
	free(k1);
}

int main(void)
{
	static const cu_test tests[] = {
		{ "attribute_validity", test_attribute_validity },
		{ "pulled_nul", test_pulled_nul },
		{ "format_valid_events", test_format_valid_events },
		{ "format_invalid_events", test_format_invalid_events },
		{ "format_valid_batches", test_format_valid_batches },
		{ "format_invalid_batches", test_format_invalid_batches },
		{ "yaml_v1", test_yaml_v1 },
		{ "yaml_v03", test_yaml_v03 },
		{ "http_binding_feature", test_http_binding_feature },
		{ "sdk_java_v1", test_sdk_java_v1 },
		{ "sdk_java_v03", test_sdk_java_v03 },
		{ "json_content_types", test_json_content_types },
		{ "rfc3339", test_rfc3339 },
		{ "limits", test_limits },
		{ "batch_events", test_batch_events },
		{ NULL, NULL },
	};
	return cu_run("decode", tests);
}
