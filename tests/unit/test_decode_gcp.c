/*
 * test_decode_gcp.c — the decoders against Google's inputs: google-cloudevents
 * examples, eventarc-samples captures and logs, functions-framework push
 * bodies and conformance cases; Pub/Sub messages by the three rules of docs/decoding.md,
 * unwrapped push, dead-letter records, binary-mode details.
 */
#include "dtest.h"

#define GCE "google-cloudevents/"
#define GCF "functions-framework-dotnet/src/Google.Cloud.Functions.Framework.Tests/GcfEvents/"
#define FFC "functions-framework-conformance/events/generate/data/"
#define EA "eventarc-samples/"
#define MP "google.cloud.pubsub.topic.v1.messagePublished"

static const jr_header made_up[] = {
	{ "ce-specversion", "1.0" },
	{ "ce-id", "made-up-1" },
	{ "ce-source", "//example.googleapis.com/projects/p" },
	{ "ce-type", "google.cloud.test.v1.example" },
	{ "Content-Type", "application/json; charset=utf-8" },
};

static void test_gce_binary_examples(void)
{
	static const char *files[] = {
		"audit/LogEntryData-bigqueryjobcompleted", "audit/LogEntryData-pubsubCreateTopic",
		"cloudbuild/BuildEventData-simple", "cloudbuild/BuildEventData-complex",
		"firestore/DocumentEventData-simple", "firestore/DocumentEventData-complex",
		"pubsub/MessagePublishedData-simple", "pubsub/MessagePublishedData-complex",
		"scheduler/SchedulerJobData-simple", "storage/StorageObjectData-simple",
		"storage/StorageObjectData-complex",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char rel[256];
		size_t len;
		snprintf(rel, sizeof rel, GCE "examples/binary/%s.json", files[i]);
		char *body = td_read(rel, &len);
		if (!body)
			continue;
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(decode_http(&g.dc, made_up, 5, "/", body, len), 1);
		CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
		jr_event *ev = g.ev[0];
		CU_ASSERT_TRUE(str_is(ev->id, "made-up-1"));
		CU_ASSERT_TRUE(str_is(ev->datacontenttype, "application/json; charset=utf-8"));
		CU_ASSERT_PTR_NULL(ev->message); /* ce-* headers win over the push shape */
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_JSON);
		CU_ASSERT_TRUE(same_json(ev->data_json, body, len));
		CU_ASSERT_STRING_EQUAL(ev->origin, "test");
		got_free(&g);
		free(body);
	}
	got g;
	got_init(&g);
	size_t len;
	char *body = td_read(GCE "examples/binary/pubsub/MessagePublishedData-complex.json", &len);
	CU_ASSERT_EQUAL(decode_http(&g.dc, made_up, 5, "/", body, len), 1);
	CU_ASSERT_TRUE(str_is(ptr_str(g.ev[0], "/message/orderingKey"), "ordering-key"));
	got_free(&g);
	free(body);
}

static jr_event *doc_file(got *g, const char *rel)
{
	size_t len;
	char *s = td_read(rel, &len);
	got_init(g);
	if (s)
		CU_ASSERT_EQUAL(decode_json_doc(&g->dc, s, len), 1);
	free(s);
	return g->n_ev ? g->ev[0] : NULL;
}

static void test_gce_structured_examples(void)
{
	got g;
	jr_event *ev = doc_file(&g, GCE "examples/structured/pubsub/MessagePublishedData.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ev->id, "3103425958877813"));
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ev->source, "//pubsub.googleapis.com/projects/test-project/topics/my-topic"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/data"), "dGVzdCBtZXNzYWdlIDM="));
	CU_ASSERT_PTR_NULL(ev->message);
	got_free(&g);

	ev = doc_file(&g, GCE "examples/structured/storage/StorageObjectDataWorkflows.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "bucket"), "sample-bucket"));
	CU_ASSERT_TRUE(str_is(ev->subject, "objects/MyFile"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/name"), "MyFile"));
	got_free(&g);

	/* camelCase extension names break the CloudEvents naming rule: rejected */
	ev = doc_file(&g, GCE "examples/structured/audit/LogEntryData-bigqueryjobcompleted.json");
	CU_ASSERT_PTR_NULL(ev);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "invalid extension name \"methodName\""));
	got_free(&g);
}

static jr_event *capture_file(got *g, const char *rel)
{
	size_t len;
	char *s = td_read(rel, &len);
	got_init(g);
	if (s)
		CU_ASSERT_EQUAL(decode_http_capture(&g->dc, s, len), 1);
	free(s);
	if (g->n_err)
		fprintf(stderr, "%s: %s\n", rel, g->err[0]);
	return g->n_ev ? g->ev[0] : NULL;
}

static void test_eventarc_captures(void)
{
	static const struct {
		const char *file, *id, *type, *ext, *ext_value, *ptr, *ptr_value;
	} cases[] = {
		{ "advanced-bus-order-created", "806df26f-8988-4bb7-9aa8-3f28a062ae95",
		  "order.created", "sourceservicecolor", "#EF6C00", "/method", "tools/call" },
		{ "advanced-bus-order-paid", "6eff9622-4f26-45e0-808b-678c984d33e7", "order.paid",
		  "xgooglemessageuid", "578aeff8-31de-40c1-8543-be4d2442e0c9", "/jsonrpc", "2.0" },
		{ "advanced-bus-fulfillment-plan-created-internal",
		  "dd3d0841-eba6-4607-85aa-a69941a7967d", "fulfillment.plan.created", "has_internal",
		  "true", "/params/message/role", "user" },
		{ "advanced-bus-fulfillment-plan-created-third-party",
		  "dd3d0841-eba6-4607-85aa-a69941a7967d", "fulfillment.plan.created",
		  "has_third_party", "true", "/carrier_request/reference_id", "ORD-5596E6" },
		{ "bigquery-jobs-notifier-test", "123-abc", "curl.demo", NULL, NULL,
		  "/protoPayload/serviceName", "bigquery.googleapis.com" },
		{ "gce-vm-labeler-test", "123-abc", "curl.demo", NULL, NULL,
		  "/protoPayload/methodName", "beta.compute.instances.insert" },
		{ "image-v2-filter-test", "123-abc", "google.cloud.audit.log.v1.written", NULL, NULL,
		  "/protoPayload/resourceName",
		  "projects/_/buckets/workflows-atamel-images-input/objects/atamel.jpg" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char rel[256];
		snprintf(rel, sizeof rel, EA "transcribed/%s.transcribed.http", cases[i].file);
		got g;
		jr_event *ev = capture_file(&g, rel);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
		CU_ASSERT_TRUE(str_is(ev->id, cases[i].id));
		CU_ASSERT_TRUE(str_is(ev->type, cases[i].type));
		CU_ASSERT_TRUE(str_is(ev->datacontenttype, "application/json"));
		CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_JSON);
		if (cases[i].ext)
			CU_ASSERT_TRUE(str_is(ext_str(ev, cases[i].ext), cases[i].ext_value));
		CU_ASSERT_TRUE(str_is(ptr_str(ev, cases[i].ptr), cases[i].ptr_value));
		got_free(&g);
	}
}

static void test_eventarc_event_data(void)
{
	static const char *files[] = { EA "bigquery-jobs-notifier/run/event_data.json",
				       EA "gce-vm-labeler/run/event_data.json" };
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		char *body = td_read(files[i], &len);
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(decode_http(&g.dc, made_up, 5, "/", body, len), 1);
		CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
		CU_ASSERT_TRUE(same_json(g.ev[0]->data_json, body, len));
		CU_ASSERT_PTR_NOT_NULL(ptr_str(g.ev[0], "/protoPayload/methodName"));
		got_free(&g);
		free(body);
	}
}

/* The "event" of a transcribed receiver log line, decoded as a structured event. */
static jr_event *gke_event(got *g, const char *name)
{
	char rel[256];
	size_t len;
	snprintf(rel, sizeof rel, EA "transcribed/gke-%s-received-event.transcribed.json", name);
	char *s = td_read(rel, &len);
	got_init(g);
	jr_arena a;
	arena_init(&a);
	const jr_json *root = s ? jsonparse(&a, s, len, 64, NULL, 0) : NULL;
	char *ev = compact(json_get(root, "event"));
	CU_ASSERT_EQUAL(decode_json_doc(&g->dc, ev, strlen(ev)), 1);
	free(ev);
	free(s);
	arena_free(&a);
	return g->n_ev ? g->ev[0] : NULL;
}

static void test_eventarc_gke_events(void)
{
	got g;
	jr_event *ev = gke_event(&g, "pubsub");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ev->id, "6031025573654834"));
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/data"), "SGVsbG8gV29ybGQ="));
	got_free(&g);
	ev = gke_event(&g, "storage");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ev->type, "google.cloud.storage.object.v1.finalized"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "bucket"), "eventarc-gcs-atamel-eventarc-gke"));
	got_free(&g);
	ev = gke_event(&g, "auditlog-storage");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ext_str(ev, "methodname"), "storage.objects.create"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "servicename"), "storage.googleapis.com"));
	got_free(&g);
}

static void check_raw_pubsub(const jr_event *ev, const char *source)
{
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ev->id, "4102184774039362"));
	CU_ASSERT_TRUE(str_is(ev->time, "2022-02-15T11:28:32.942Z"));
	CU_ASSERT_TRUE(str_is(ev->source, source));
	CU_ASSERT_TRUE(str_is(ev->datacontenttype, "application/json"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/data"), "VGV4dCBtZXNzYWdl"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/attributes/attr1"), "value1"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/messageId"), "4102184774039362"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/message_id"), "4102184774039362"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/publish_time"), "2022-02-15T11:28:32.942Z"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/orderingKey"), "orderxyz"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/subscription"),
			      "projects/sample-project/subscriptions/sample-subscription"));
	const jr_message *m = ev->message;
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_TRUE(m->data_len == 12 && memcmp(m->data, "Text message", 12) == 0);
	CU_ASSERT_TRUE(str_is(m->ordering_key, "orderxyz"));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "attr1"), "value1"));
}

static void test_dotnet_push_bodies(void)
{
	got g;
	jr_event *ev = doc_file(&g, GCF "raw_pubsub.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	check_raw_pubsub(ev, "//pubsub.googleapis.com/projects/sample-project/subscriptions/"
			     "sample-subscription");
	got_free(&g);

	size_t len;
	char *body = td_read(GCF "raw_pubsub.json", &len);
	got_init(&g);
	g.dc.topic = "projects/cfg/topics/from-config";
	jr_header h[] = { { "Content-Type", "application/json" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 1, "/projects/abc/topics/bcd", body, len), 1);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 1, "/not/a/matching/path", body, len), 1);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 1, NULL, body, len), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 3);
	check_raw_pubsub(g.ev[0], "//pubsub.googleapis.com/projects/abc/topics/bcd");
	check_raw_pubsub(g.ev[1], "//pubsub.googleapis.com/projects/cfg/topics/from-config");
	check_raw_pubsub(g.ev[2], "//pubsub.googleapis.com/projects/cfg/topics/from-config");
	got_free(&g);
	free(body);

	ev = doc_file(&g, GCF "emulator_pubsub.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(str_is(ev->id, "1"));
	CU_ASSERT_PTR_NULL(ev->time);
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ev->source, "//pubsub.googleapis.com/projects/emulator-project/"
					  "subscriptions/test-subscription"));
	CU_ASSERT_PTR_NULL(ptr_str(ev, "/message/publishTime"));
	CU_ASSERT_TRUE(str_is(ev->message->subscription,
			      "projects/emulator-project/subscriptions/test-subscription"));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "attr1"), "attr-value1"));
	got_free(&g);
}

static void test_dotnet_inline_cases(void)
{
	size_t len;
	char *s = td_read("functions-framework-dotnet/transcribed/gcf-converter-inline-cases.transcribed.json",
			  &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	jr_arena a;
	arena_init(&a);
	const jr_json *tests = json_get(jsonparse(&a, s, len, 16, NULL, 0), "tests");
	CU_ASSERT_TRUE_FATAL(tests && tests->n == 13);
	size_t checked = 0;
	for (size_t i = 0; i < tests->n; i++) {
		const jr_json *t = tests->items[i];
		const char *id = json_get_str(t, "id"), *body = json_get_str(t, "body");
		int legacy = strstr(body, "\"context\"") && !strstr(body, "\"message\"");
		if (legacy) { /* legacy GCF background events are not an input form */
			got g;
			got_init(&g);
			got_doc(&g, body);
			CU_ASSERT_TRUE(g.n_ev == 0 && g.n_err == 1);
			got_free(&g);
			continue;
		}
		int valid = json_get(t, "valid")->type == JR_JSON_TRUE;
		got g;
		got_init(&g);
		CU_ASSERT_EQUAL(got_doc(&g, body), 1);
		CU_ASSERT_EQUAL(g.n_ev, valid ? 1 : 0);
		if (valid && g.n_ev)
			CU_ASSERT_TRUE(str_is(g.ev[0]->id, json_get_str(json_get(t, "expect"), "id")));
		if (!valid && g.n_err)
			fprintf(stderr, "  %s: %s\n", id, g.err[0]);
		checked++;
		got_free(&g);
	}
	CU_ASSERT_EQUAL(checked, 6);
	arena_free(&a);
	free(s);
}

/* push_from_legacy: the push body Pub/Sub would send for a FF conformance legacy input. */
static char *push_from_legacy(jr_arena *a, const jr_json *legacy)
{
	const jr_json *data = json_get(legacy, "data"), *ctx = json_get(legacy, "context");
	const char *id = ctx ? json_get_str(ctx, "eventId") : json_get_str(legacy, "eventId");
	const char *ts = ctx ? json_get_str(ctx, "timestamp") : json_get_str(legacy, "timestamp");
	jr_json *m = json_new(a, JR_JSON_OBJECT);
	for (size_t i = 0; i < data->n; i++)
		if (strcmp(data->keys[i], "@type") != 0)
			json_obj_add(a, m, data->keys[i], data->key_lens[i], data->items[i]);
	json_obj_add(a, m, "messageId", 9, json_new_string(a, id, strlen(id)));
	json_obj_add(a, m, "publishTime", 11, json_new_string(a, ts, strlen(ts)));
	jr_json *root = json_new(a, JR_JSON_OBJECT);
	json_obj_add(a, root, "message", 7, m);
	const char *sub = "projects/sample-project/subscriptions/sample-subscription";
	json_obj_add(a, root, "subscription", 12, json_new_string(a, sub, strlen(sub)));
	return compact(root);
}

static void ff_case(const char *name)
{
	char rel[256];
	size_t len;
	jr_arena a;
	arena_init(&a);
	snprintf(rel, sizeof rel, FFC "%s-cloudevent-input.json", name);
	got g;
	jr_event *in = doc_file(&g, rel);
	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	CU_ASSERT_TRUE(str_is(in->type, MP));
	got_free(&g);

	snprintf(rel, sizeof rel, FFC "%s-cloudevent-output.json", name);
	char *s = td_read(rel, &len);
	const jr_json *want = jsonparse(&a, s, len, 64, NULL, 0);
	free(s);
	snprintf(rel, sizeof rel, FFC "%s-legacy-input.json", name);
	s = td_read(rel, &len);
	char *push = push_from_legacy(&a, jsonparse(&a, s, len, 64, NULL, 0));
	free(s);
	got_init(&g);
	g.dc.topic = "projects/sample-project/topics/gcf-test";
	CU_ASSERT_EQUAL(got_doc(&g, push), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	static const char *const same[] = { "id", "source", "type", "time", "datacontenttype" };
	for (size_t i = 0; i < 5; i++)
		CU_ASSERT_TRUE(str_is(event_attr(ev, same[i]), json_get_str(want, same[i])));
	const jr_json *wm = json_get(json_get(want, "data"), "message");
	static const char *const fields[] = { "/data", "/messageId", "/publishTime", "/attributes" };
	for (size_t i = 0; i < 4; i++) {
		char p[64];
		snprintf(p, sizeof p, "/message%s", fields[i]);
		const jr_json *w = json_pointer(wm, fields[i]), *v = json_pointer(ev->data_json, p);
		char *wt = w ? compact(w) : NULL;
		CU_ASSERT_TRUE((!w && !v) || (w && v && same_json(v, wt, strlen(wt))));
		free(wt);
	}
	/* where Eventarc and the Functions Framework differ, we follow Eventarc */
	CU_ASSERT_PTR_NOT_NULL(json_pointer(wm, "/@type"));
	CU_ASSERT_PTR_NULL(json_pointer(ev->data_json, "/message/@type"));
	CU_ASSERT_PTR_NULL(json_pointer(json_get(want, "data"), "/subscription"));
	CU_ASSERT_PTR_NOT_NULL(ptr_str(ev, "/subscription"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/message_id"), ev->id));
	got_free(&g);
	free(push);
	arena_free(&a);
}

static void test_ff_conformance_pubsub(void)
{
	ff_case("pubsub_text");
	ff_case("pubsub_binary");
	ff_case("legacy_pubsub");
}

/* msg_event: an event holding a Pub/Sub message, as the pull adapter fills it. */
static jr_event *msg_event(const jr_kv *attrs, size_t n, const char *data)
{
	jr_event *ev = event_new();
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	m->id = "m-1";
	m->publish_time = "2024-01-02T03:04:05.678Z";
	m->subscription = "projects/p/subscriptions/s";
	m->attrs = arena_alloc(&ev->arena, (n + 1) * sizeof *m->attrs);
	if (n)
		memcpy(m->attrs, attrs, n * sizeof *attrs);
	m->n_attrs = n;
	m->data = arena_strdup(&ev->arena, data);
	m->data_len = strlen(data);
	ev->message = m;
	return ev;
}

static void test_message_rule1_binary(void)
{
	jr_kv attrs[] = { { "ce-specversion", "1.0" }, { "ce-id", "e-1" }, { "ce-source", "/src" },
			  { "ce-type", "com.example.t" }, { "ce-time", "2020-03-10T03:56:24Z" },
			  { "ce-myext", "v" }, { "content-type", "application/json; charset=utf-8" },
			  { "env", "prod" } };
	jr_event *ev = msg_event(attrs, 8, "{\"k\":[1,2]}");
	char err[256];
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, NULL, err, sizeof err), 0);
	CU_ASSERT_TRUE(str_is(ev->id, "e-1"));
	CU_ASSERT_TRUE(str_is(ev->type, "com.example.t"));
	CU_ASSERT_TRUE(str_is(ev->datacontenttype, "application/json; charset=utf-8"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "myext"), "v"));
	CU_ASSERT_EQUAL(ev->n_ext, 1);
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_JSON);
	CU_ASSERT_TRUE(same_json(ev->data_json, "{\"k\":[1,2]}", 11));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "env"), "prod"));
	event_free(ev);

	jr_kv bad[] = { { "ce-specversion", "1.0" }, { "ce-id", "e-1" }, { "ce-type", "t" } };
	ev = msg_event(bad, 3, "x");
	CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "missing required attribute source"));
	event_free(ev);
}

static void test_message_rule2_structured(void)
{
	const char *ce = "{\"specversion\":\"1.0\",\"id\":\"s-1\",\"source\":\"/s\",\"type\":\"t\","
			 "\"data\":{\"x\":1}}";
	jr_kv ct[] = { { "content-type", "application/cloudevents+json; charset=UTF-8" } };
	jr_event *ev = msg_event(ct, 1, ce);
	char err[256];
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, NULL, err, sizeof err), 0);
	CU_ASSERT_TRUE(str_is(ev->id, "s-1"));
	CU_ASSERT_TRUE(same_json(ev->data_json, "{\"x\":1}", 7));
	CU_ASSERT_PTR_NOT_NULL(ev->message);
	event_free(ev);

	ev = msg_event(NULL, 0, ce); /* no content-type: a JSON object with specversion */
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, NULL, err, sizeof err), 0);
	CU_ASSERT_TRUE(str_is(ev->id, "s-1"));
	event_free(ev);

	jr_kv avro[] = { { "content-type", "application/cloudevents+avro" } };
	ev = msg_event(avro, 1, "....");
	CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "unsupported CloudEvents format"));
	event_free(ev);

	ev = msg_event(ct, 1, "{\"specversion\":\"1.0\",\"id\":\"s-1\"");
	CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "structured message data: invalid JSON"));
	event_free(ev);
}

static void test_message_rule3_published(void)
{
	jr_kv attrs[] = { { "env", "prod" } };
	const char *data = "{\"not\":\"a cloudevent\",\"about\":\"specversion\"}";
	jr_event *ev = msg_event(attrs, 1, data);
	char err[256];
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, "projects/p/topics/t", err, sizeof err), 0);
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ev->source, "//pubsub.googleapis.com/projects/p/topics/t"));
	CU_ASSERT_TRUE(str_is(ev->id, "m-1"));
	CU_ASSERT_TRUE(str_is(ev->time, "2024-01-02T03:04:05.678Z"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/attributes/env"), "prod"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/subscription"), "projects/p/subscriptions/s"));
	jr_arena a;
	arena_init(&a);
	char *raw;
	const char *b64 = ptr_str(ev, "/message/data");
	CU_ASSERT_TRUE(b64 && base64_decode(&a, b64, strlen(b64), &raw) == (long)strlen(data) &&
		       memcmp(raw, data, strlen(data)) == 0);
	arena_free(&a);
	CU_ASSERT_PTR_NULL(json_pointer(ev->data_json, "/message/orderingKey"));
	CU_ASSERT_PTR_NULL(json_pointer(ev->data_json, "/deliveryAttempt"));
	jr_buf out;
	buf_init(&out, 0);
	CU_ASSERT_EQUAL(event_write_structured(&out, ev), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"type\":\"" MP "\""));
	buf_free(&out);
	event_free(ev);

	ev = msg_event(NULL, 0, "");
	((jr_message *)ev->message)->subscription = NULL;
	CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "cannot name the event source"));
	event_free(ev);

	ev = msg_event(NULL, 0, "");
	((jr_message *)ev->message)->publish_time = "yesterday";
	CU_ASSERT_EQUAL(decode_message(ev, NULL, NULL, err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "RFC 3339"));
	event_free(ev);
}

static void test_message_limits(void)
{
	jr_kv attrs[] = { { "a", "1" }, { "b", "2" }, { "c", "3" } };
	jr_limits lim = { .event_bytes = 8, .json_depth = 4, .attributes = 2, .header_bytes = 1024 };
	char err[256];
	jr_event *ev = msg_event(attrs, 3, "");
	CU_ASSERT_EQUAL(decode_message(ev, &lim, "projects/p/topics/t", err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "more than 2 message attributes"));
	event_free(ev);
	ev = msg_event(attrs, 1, "0123456789");
	CU_ASSERT_EQUAL(decode_message(ev, &lim, "projects/p/topics/t", err, sizeof err), -1);
	CU_ASSERT_TRUE(has(err, "over the limit of 8 bytes"));
	event_free(ev);
	ev = event_new();
	CU_ASSERT_EQUAL(decode_message(ev, &lim, NULL, err, sizeof err), -1);
	event_free(ev);
}

static void test_push_wrapped_variants(void)
{
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(got_doc(&g, "{\"message\":{\"message_id\":\"7\",\"publish_time\":"
				    "\"2021-02-05T04:06:14.109Z\",\"ordering_key\":\"ok\","
				    "\"data\":\"AQIDBA==\"},\"subscription\":\"projects/x/subscriptions/y\","
				    "\"deliveryAttempt\":3}"), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	CU_ASSERT_TRUE(str_is(ev->id, "7"));
	CU_ASSERT_TRUE(str_is(ev->time, "2021-02-05T04:06:14.109Z"));
	CU_ASSERT_EQUAL(ev->message->delivery_attempt, 3);
	CU_ASSERT_TRUE(ev->message->data_len == 4 && memcmp(ev->message->data, "\1\2\3\4", 4) == 0);
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/data"), "AQIDBA=="));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/orderingKey"), "ok"));
	const jr_json *da = json_pointer(ev->data_json, "/deliveryAttempt");
	CU_ASSERT_TRUE(da && da->type == JR_JSON_NUMBER && strcmp(da->s, "3") == 0);
	got_free(&g);

	/* push body whose message is a binary-mode CloudEvent (rule 1) */
	CU_ASSERT_EQUAL(got_doc(&g, "{\"message\":{\"messageId\":\"8\",\"attributes\":{"
				    "\"ce-specversion\":\"1.0\",\"ce-id\":\"ce-8\",\"ce-source\":\"/s\","
				    "\"ce-type\":\"t\",\"content-type\":\"text/plain\"},"
				    "\"data\":\"aGVsbG8=\"}}"), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	ev = g.ev[0];
	CU_ASSERT_TRUE(str_is(ev->id, "ce-8"));
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_TEXT);
	CU_ASSERT_TRUE(ev->data_len == 5 && memcmp(ev->data, "hello", 5) == 0);
	CU_ASSERT_TRUE(str_is(ev->message->id, "8"));
	got_free(&g);

	static const struct {
		const char *body, *part;
	} bad[] = {
		{ "{\"message\":{\"messageId\":\"1\",\"data\":\"%%%\"},\"subscription\":\"s\"}",
		  "not a base64 string" },
		{ "{\"message\":{\"messageId\":\"1\",\"attributes\":{\"a\":1}},\"subscription\":\"s\"}",
		  "message attribute a is not a string" },
		{ "{\"message\":{\"messageId\":\"1\",\"attributes\":[]},\"subscription\":\"s\"}",
		  "attributes must be a JSON object" },
		{ "{\"message\":{\"messageId\":\"1\"},\"subscription\":7}", "subscription must be a string" },
		{ "{\"message\":{},\"subscription\":\"s\"}", "no messageId" },
		{ "{\"hello\":1}", "missing specversion" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(got_doc(&g, bad[i].body), 1);
		CU_ASSERT_TRUE(g.n_err == i + 1 && has(g.err[i], bad[i].part));
	}
	CU_ASSERT_EQUAL(g.n_ev, 0);
	got_free(&g);
}

static void test_push_unwrapped(void)
{
	jr_header h[] = {
		{ "Content-Type", "application/json" },
		{ "User-Agent", "CloudPubSub-Google" },
		{ "Host", "subscription-project.uc.r.appspot.com" },
		{ "X-Goog-Pubsub-Subscription-Name", "\"projects/user-project/subscriptions/mysub\"" },
		{ "X-Goog-Pubsub-Message-Id", "\"2980306434424225\"" },
		{ "X-Goog-Pubsub-Publish-Time", "\"2024-02-19T22:05:43.749Z\"" },
		{ "X-Goog-Pubsub-Ordering-Key", "\"some-key\"" },
		{ "Env", "prod" },
	};
	const char *body = "{\"status\": \"Hello there\"}";
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 8, "/", body, strlen(body)), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	CU_ASSERT_TRUE(str_is(ev->type, MP));
	CU_ASSERT_TRUE(str_is(ev->id, "2980306434424225"));
	CU_ASSERT_TRUE(str_is(ev->time, "2024-02-19T22:05:43.749Z"));
	CU_ASSERT_TRUE(str_is(ev->source, "//pubsub.googleapis.com/projects/user-project/subscriptions/mysub"));
	CU_ASSERT_TRUE(str_is(ev->message->ordering_key, "some-key"));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "env"), "prod"));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "content-type"), "application/json"));
	CU_ASSERT_PTR_NULL(event_msg_attr(ev, "host"));
	CU_ASSERT_PTR_NULL(event_msg_attr(ev, "user-agent"));
	CU_ASSERT_TRUE(ev->message->data_len == strlen(body));
	got_free(&g);

	jr_header ce[] = {
		{ "X-Goog-Pubsub-Message-Id", "5" }, { "ce-specversion", "1.0" }, { "ce-id", "c5" },
		{ "ce-source", "/s" }, { "ce-type", "t" }, { "content-type", "text/plain" },
	};
	CU_ASSERT_EQUAL(decode_http(&g.dc, ce, 6, "/", "hi", 2), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_TRUE(str_is(g.ev[0]->id, "c5"));
	CU_ASSERT_TRUE(str_is(g.ev[0]->message->id, "5"));
	CU_ASSERT_EQUAL(g.ev[0]->data_kind, JR_DATA_TEXT);
	got_free(&g);
}

static void test_dead_letter_records(void)
{
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(got_doc(&g, "{\"failed_at\":\"2024-01-01T00:00:00Z\",\"origin\":\"http\","
				    "\"route\":\"r\",\"attempts\":3,\"error\":{\"class\":\"network\","
				    "\"code\":\"UNAVAILABLE\",\"message\":\"x\"},\"event\":{"
				    "\"specversion\":\"1.0\",\"id\":\"d-1\",\"source\":\"/s\",\"type\":\"t\","
				    "\"data\":{\"a\":1}}}"), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_TRUE(str_is(g.ev[0]->id, "d-1"));
	CU_ASSERT_PTR_NULL(g.ev[0]->message);
	got_free(&g);

	/* with the Pub/Sub message: re-decoded from it; topic from the event's source */
	jr_kv kv[] = { { "env", "prod" } };
	jr_message m = { .id = "m-9", .publish_time = "2024-01-02T03:04:05Z", .data = "hi",
			 .data_len = 2, .attrs = kv, .n_attrs = 1 };
	jr_buf rec;
	buf_init(&rec, 0);
	buf_adds(&rec, "{\"failed_at\":\"2024-01-01T00:00:00Z\",\"route\":\"r\",\"event\":{"
		       "\"specversion\":\"1.0\",\"id\":\"m-9\",\"source\":\"//pubsub.googleapis.com/"
		       "projects/p/topics/t\",\"type\":\"" MP "\",\"data\":{\"subscription\":"
		       "\"projects/p/subscriptions/s\"}},\"message\":");
	event_write_message(&rec, &m);
	buf_addc(&rec, '}');
	CU_ASSERT_EQUAL(decode_json_doc(&g.dc, rec.data, rec.len), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	CU_ASSERT_TRUE(str_is(ev->id, "m-9"));
	CU_ASSERT_TRUE(str_is(ev->source, "//pubsub.googleapis.com/projects/p/topics/t"));
	CU_ASSERT_TRUE(str_is(ev->message->subscription, "projects/p/subscriptions/s"));
	CU_ASSERT_TRUE(str_is(event_msg_attr(ev, "env"), "prod"));
	CU_ASSERT_TRUE(str_is(ptr_str(ev, "/message/data"), "aGk="));
	got_free(&g);
	buf_free(&rec);

	CU_ASSERT_EQUAL(got_doc(&g, "{\"failed_at\":\"x\",\"route\":\"r\"}"), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "no event and no message"));
	got_free(&g);
}

/* ev->trace: the first valid of traceparent and X-Cloud-Trace-Context, as the HTTP server picks it. */
static void test_http_trace_pick(void)
{
	const char *xc = "0123456789abcdef0123456789abcdef/1;o=1";
	jr_header h[] = {
		{ "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" }, { "ce-type", "t" },
		{ "traceparent", "00-zz000000000000000000000000000000-00f067aa0ba902b7-01" },
		{ "x-cloud-trace-context", xc },
	};
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 6, NULL, "x", 1), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_TRUE(str_is(g.ev[0]->trace, xc)); /* the invalid traceparent is passed over */
	got_free(&g);

	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	h[4].value = tp;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 6, NULL, "x", 1), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_TRUE(str_is(g.ev[0]->trace, tp)); /* a valid traceparent comes first */
	got_free(&g);
}

#define TP_CE "00-11111111111111111111111111111111-1111111111111111-01"
#define TP_HTTP "00-22222222222222222222222222222222-2222222222222222-00"
#define TP_GOOG "00-33333333333333333333333333333333-3333333333333333-01"
#define TP_BAD "00-33333333333333333333333333333333-0000000000000000-01" /* zero parent */

/* A push body of one message with attributes attrs (a JSON object's members). */
static char *push_body(const char *attrs)
{
	return jr_asprintf("{\"message\":{\"data\":\"aGk=\",\"messageId\":\"m1\","
			   "\"publishTime\":\"2024-02-19T22:05:43.749Z\",\"attributes\":{%s}},"
			   "\"subscription\":\"projects/p/subscriptions/s\"}", attrs);
}

/* trace_of_push: ev->trace of the event of a push body with attrs, under the headers h (n). */
static int trace_of_push(const char *attrs, const jr_header *h, size_t n, const char *want)
{
	char *body = push_body(attrs);
	got g;
	got_init(&g);
	int ok = decode_http(&g.dc, h, n, "/", body, strlen(body)) == 1 && g.n_ev == 1 &&
		 (want ? str_is(g.ev[0]->trace, want) : g.ev[0]->trace == NULL);
	got_free(&g);
	free(body);
	return ok;
}

/*
 * ev->trace, the first valid of: the event's traceparent extension, the HTTP
 * traceparent (else X-Cloud-Trace-Context), the message's
 * googclient_traceparent; a malformed one is passed over, never an error.
 */
static void test_trace_sources(void)
{
	jr_header tp[] = { { "traceparent", TP_HTTP } };
	jr_header bad[] = { { "traceparent", "00-xyz" }, { "x-cloud-trace-context", "abc/1;o=1" } };
	CU_ASSERT_TRUE(trace_of_push("\"googclient_traceparent\":\"" TP_GOOG "\"", NULL, 0, TP_GOOG));
	CU_ASSERT_TRUE(trace_of_push("\"googclient_traceparent\":\"" TP_GOOG "\"", tp, 1, TP_HTTP));
	CU_ASSERT_TRUE(trace_of_push("\"googclient_traceparent\":\"" TP_GOOG "\"", bad, 2, TP_GOOG));
	CU_ASSERT_TRUE(trace_of_push("\"googclient_traceparent\":\"" TP_BAD "\"", NULL, 0, NULL));
	CU_ASSERT_TRUE(trace_of_push("\"googclient_traceparent\":\"" TP_BAD "\"", bad, 2, NULL));
	/* binary mode in the message: its ce-traceparent is the event's extension, first of all */
	CU_ASSERT_TRUE(trace_of_push("\"ce-specversion\":\"1.0\",\"ce-id\":\"1\",\"ce-source\":\"/s\","
				     "\"ce-type\":\"t\",\"ce-traceparent\":\"" TP_CE "\","
				     "\"googclient_traceparent\":\"" TP_GOOG "\"", tp, 1, TP_CE));
	CU_ASSERT_TRUE(trace_of_push("\"ce-specversion\":\"1.0\",\"ce-id\":\"1\",\"ce-source\":\"/s\","
				     "\"ce-type\":\"t\",\"ce-traceparent\":\"bad\","
				     "\"googclient_traceparent\":\"" TP_GOOG "\"", tp, 1, TP_HTTP));

	/* HTTP binary mode: ce-traceparent before the traceparent header */
	jr_header h[] = {
		{ "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" }, { "ce-type", "t" },
		{ "ce-traceparent", TP_CE }, { "traceparent", TP_HTTP },
	};
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 6, NULL, "x", 1), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	CU_ASSERT_TRUE(str_is(g.ev[0]->trace, TP_CE));
	got_free(&g);

	/* a pulled message (decode_message): googclient_traceparent */
	jr_kv attrs[] = { { "googclient_traceparent", TP_GOOG } };
	jr_event *ev = msg_event(attrs, 1, "hello");
	char err[256];
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, "projects/p/topics/t", err, sizeof err), 0);
	CU_ASSERT_TRUE(str_is(ev->trace, TP_GOOG));
	event_free(ev);
	jr_kv worse[] = { { "googclient_traceparent", "00-" } };
	ev = msg_event(worse, 1, "hello");
	CU_ASSERT_EQUAL_FATAL(decode_message(ev, NULL, "projects/p/topics/t", err, sizeof err), 0);
	CU_ASSERT_PTR_NULL(ev->trace);
	event_free(ev);
}

static void test_http_binary_details(void)
{
	jr_header h[] = {
		{ "CE-SpecVersion", "1.0" }, { "ce-id", "a%20b%zz%" }, { "ce-source", "/s%2Fx" },
		{ "ce-type", "t" }, { "Ce-MyExt", "%E2%82%AC" }, { "traceparent", "00-abc-def-01" },
	};
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http(&g.dc, h, 6, NULL, "\x01\x02", 2), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	CU_ASSERT_TRUE(str_is(ev->id, "a b%zz%"));
	CU_ASSERT_TRUE(str_is(ev->source, "/s/x"));
	CU_ASSERT_TRUE(str_is(ext_str(ev, "myext"), "\xE2\x82\xAC"));
	CU_ASSERT_PTR_NULL(ev->trace); /* a malformed traceparent is ignored */
	CU_ASSERT_PTR_NULL(ev->datacontenttype);
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_BINARY);
	CU_ASSERT_EQUAL(ev->data_len, 2);
	got_free(&g);

	jr_header json[] = { { "ce-specversion", "1.0" }, { "ce-id", "1" }, { "ce-source", "/s" },
			     { "ce-type", "t" }, { "content-type", "application/json" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, json, 5, NULL, "{oops", 5), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "data is not valid JSON"));
	CU_ASSERT_EQUAL(decode_http(&g.dc, json, 5, NULL, "", 0), 1);
	CU_ASSERT_TRUE(g.n_ev == 1 && g.ev[0]->data_kind == JR_DATA_NONE);
	jr_header plain_json[] = { { "content-type", "application/json" } };
	const char *sj = "{\"specversion\":\"1.0\",\"id\":\"sj\",\"source\":\"/s\",\"type\":\"t\"}";
	CU_ASSERT_EQUAL(decode_http(&g.dc, plain_json, 1, NULL, sj, strlen(sj)), 1);
	CU_ASSERT_TRUE(g.n_ev == 2 && str_is(g.ev[1]->id, "sj"));
	jr_header none[] = { { "content-type", "text/plain" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, none, 1, NULL, "hello", 5), 1);
	CU_ASSERT_TRUE(g.n_err == 2 && has(g.err[1], "no CloudEvent in the request"));
	jr_header avro[] = { { "content-type", "application/cloudevents+avro" } };
	CU_ASSERT_EQUAL(decode_http(&g.dc, avro, 1, NULL, "x", 1), 1);
	CU_ASSERT_TRUE(g.n_err == 3 && has(g.err[2], "unsupported CloudEvents format"));
	got_free(&g);
}

static void test_capture_forms(void)
{
	const char *crlf = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/cloudevents+json\r\n"
			   "Content-Length: 5\r\n\r\n{\"specversion\":\"1.0\",\"id\":\"c\",\"source\":\"/s\","
			   "\"type\":\"t\"}\r\n";
	got g;
	got_init(&g);
	CU_ASSERT_EQUAL(decode_http_capture(&g.dc, crlf, strlen(crlf)), 1);
	CU_ASSERT_TRUE(g.n_ev == 1 && str_is(g.ev[0]->id, "c"));
	const char *folded = "# a comment\n\nPOST http://h:8080/projects/p/topics/t HTTP/1.1\n"
			     "content-type: application/json\n\n{\"message\":{\"messageId\":\"f\"}}";
	CU_ASSERT_EQUAL(decode_http_capture(&g.dc, folded, strlen(folded)), 1);
	CU_ASSERT_TRUE(g.n_ev == 2 && str_is(g.ev[1]->source, "//pubsub.googleapis.com/projects/p/topics/t"));
	const char *bad = "POST / HTTP/1.1\nno colon here\n\n{}";
	CU_ASSERT_EQUAL(decode_http_capture(&g.dc, bad, strlen(bad)), 1);
	CU_ASSERT_TRUE(g.n_err == 1 && has(g.err[0], "line 2: malformed header"));
	CU_ASSERT_EQUAL(decode_http_capture(&g.dc, "", 0), 1);
	CU_ASSERT_TRUE(g.n_err == 2 && has(g.err[1], "not an HTTP request line"));
	const char *cont = "POST / HTTP/1.1\nce-specversion: 1.0\nce-id: 1\nce-source: /s\n"
			   "ce-type: t\nce-long: a\n  b\n\n";
	CU_ASSERT_EQUAL(decode_http_capture(&g.dc, cont, strlen(cont)), 1);
	CU_ASSERT_TRUE(g.n_ev == 3 && str_is(ext_str(g.ev[2], "long"), "a b"));
	got_free(&g);
}

static void test_structured_details(void)
{
	got g;
	got_init(&g);
	static const struct {
		const char *body, *part;
	} bad[] = {
		{ "{\"specversion\":\"1.0\",\"id\":\"1\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\"}",
		  "duplicate attribute id" },
		{ "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"x\":{}}",
		  "extension x must be a string, integer or boolean" },
		{ "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"data_base64\":\"!\"}",
		  "data_base64 is not valid base64" },
		{ "{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
		  "\"datacontentencoding\":\"gzip\",\"data\":\"x\"}", "unknown datacontentencoding" },
		{ "{\"specversion\":1.0,\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}",
		  "specversion must be a string" },
		{ "[1,", "invalid JSON" },
		{ "{\"specversion\":\"1.0\"} trailing", "trailing data" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(got_doc(&g, bad[i].body), 1);
		CU_ASSERT_TRUE(g.n_err == i + 1 && has(g.err[i], bad[i].part));
	}
	CU_ASSERT_EQUAL(g.n_ev, 0);
	CU_ASSERT_EQUAL(got_doc(&g, "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
				    "\"datacontenttype\":\"image/png\",\"data_base64\":\"iVBO\","
				    "\"traceparent\":\"00-1-2-01\",\"n\":-2147483648,\"m\":null}"), 1);
	CU_ASSERT_EQUAL_FATAL(g.n_ev, 1);
	jr_event *ev = g.ev[0];
	CU_ASSERT_EQUAL(ev->data_kind, JR_DATA_BINARY);
	CU_ASSERT_EQUAL(ev->data_len, 3);
	CU_ASSERT_PTR_NULL(ev->trace); /* a malformed traceparent extension is ignored */
	CU_ASSERT_TRUE(str_is(event_attr(ev, "n"), "-2147483648"));
	CU_ASSERT_PTR_NULL(event_ext(ev, "m"));
	jr_buf out;
	buf_init(&out, 0);
	CU_ASSERT_EQUAL(event_write_structured(&out, ev), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"data_base64\":\"iVBO\""));
	CU_ASSERT_EQUAL(decode_json_doc(&g.dc, out.data, out.len), 1); /* round trip */
	CU_ASSERT_TRUE(g.n_ev == 2 && g.ev[1]->data_len == 3 &&
		       memcmp(g.ev[1]->data, ev->data, 3) == 0);
	buf_free(&out);
	got_free(&g);
}

int main(void)
{
	static const cu_test tests[] = {
		{ "gce_binary_examples", test_gce_binary_examples },
		{ "gce_structured_examples", test_gce_structured_examples },
		{ "eventarc_captures", test_eventarc_captures },
		{ "eventarc_event_data", test_eventarc_event_data },
		{ "eventarc_gke_events", test_eventarc_gke_events },
		{ "dotnet_push_bodies", test_dotnet_push_bodies },
		{ "dotnet_inline_cases", test_dotnet_inline_cases },
		{ "ff_conformance_pubsub", test_ff_conformance_pubsub },
		{ "message_rule1_binary", test_message_rule1_binary },
		{ "message_rule2_structured", test_message_rule2_structured },
		{ "message_rule3_published", test_message_rule3_published },
		{ "message_limits", test_message_limits },
		{ "push_wrapped_variants", test_push_wrapped_variants },
		{ "push_unwrapped", test_push_unwrapped },
		{ "dead_letter_records", test_dead_letter_records },
		{ "http_binary_details", test_http_binary_details },
		{ "http_trace_pick", test_http_trace_pick },
		{ "trace_sources", test_trace_sources },
		{ "capture_forms", test_capture_forms },
		{ "structured_details", test_structured_details },
		{ NULL, NULL },
	};
	return cu_run("decode_gcp", tests);
}
