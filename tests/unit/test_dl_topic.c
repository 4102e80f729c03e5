/*
 * test_dltopic.c — the topic sink's message, as pure functions: the
 * attributes (ours, the originals, Pub/Sub's limits, UTF-8 cuts) and the
 * data chosen for each kind of record.
 */
#include <stdio.h>
#include <string.h>

#include "cu.h"
#include "dl_topic.h"
#include "testev.h"

static const char *get(const dl_topic_attrs *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->kv[i].key, key))
			return a->kv[i].value;
	return NULL;
}

static int valid_utf8(const char *s)
{
	/* the strict check, written out apart from the code under test */
	const unsigned char *u = (const unsigned char *)s;
	while (*u) {
		int k = *u < 0x80 ? 1 : (*u & 0xE0) == 0xC0 ? 2 : (*u & 0xF0) == 0xE0 ? 3
		      : (*u & 0xF8) == 0xF0 ? 4 : 0;
		if (!k || (k == 2 && *u < 0xC2))
			return 0;
		for (int i = 1; i < k; i++)
			if ((u[i] & 0xC0) != 0x80)
				return 0;
		u += k;
	}
	return 1;
}

/* A record of a routed event that came from a Pub/Sub message. */
static jr_dlrecord record(jr_event *ev, jr_message *m)
{
	if (m)
		ev->message = m;
	return (jr_dlrecord){
		.ev = ev, .origin = "pull", .route = "csv", .attempts = 3,
		.cls = JR_ERR_INVALID_REQUEST, .code = "NOT_FOUND", .message = "job not found",
		.failed_at_ms = 1795687200123LL, /* 2026-11-26T10:00:00.123Z */
	};
}

static void test_ours_and_originals(void)
{
	jr_event *ev = tev_new("ev-1", "//src", "t");
	jr_kv kv[] = {{"env", "prod"}, {"jobrelay-route", "old"}, {"k", ""}};
	jr_message m = {.id = "m1", .data = "payload", .data_len = 7, .attrs = kv, .n_attrs = 3};
	jr_dlrecord r = record(ev, &m);
	jr_arena a;
	arena_init(&a);
	dl_topic_attrs at;
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-error-class"), "invalid_request");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-error-code"), "NOT_FOUND");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-error-message"), "job not found");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-attempts"), "3");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-route"), "csv"); /* ours replace the original */
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-event-id"), "ev-1");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-event-source"), "//src");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-origin"), "pull");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-failed-at"), "2026-11-26T10:00:00.123Z");
	CU_ASSERT_STRING_EQUAL(get(&at, "env"), "prod");
	CU_ASSERT_STRING_EQUAL(get(&at, "k"), "");
	CU_ASSERT_PTR_NULL(get(&at, "jobrelay-attributes-dropped"));
	CU_ASSERT_PTR_NULL(get(&at, "content-type")); /* the original data: no content-type of ours */
	CU_ASSERT_EQUAL(at.n, 11);
	CU_ASSERT_EQUAL(at.dropped, 0);
	size_t routes = 0;
	for (size_t i = 0; i < at.n; i++)
		routes += !strcmp(at.kv[i].key, "jobrelay-route");
	CU_ASSERT_EQUAL(routes, 1);
	/* data: the original message's */
	jr_buf scratch;
	buf_init(&scratch, 0);
	const char *d;
	size_t n;
	CU_ASSERT_EQUAL(dl_topic_data(&r, &scratch, &d, &n), 0);
	CU_ASSERT_EQUAL(n, 7);
	CU_ASSERT_EQUAL(memcmp(d, "payload", 7), 0);
	buf_free(&scratch);
	arena_free(&a);
	event_free(ev);
}

static void test_unrouted_and_raw(void)
{
	/* no route (unrouted): no jobrelay-route attribute; HTTP event: structured JSON data */
	jr_event *ev = tev_new("ev-2", "//http", "com.example");
	jr_dlrecord r = record(ev, NULL);
	r.route = NULL;
	r.origin = "http";
	jr_arena a;
	arena_init(&a);
	dl_topic_attrs at;
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_PTR_NULL(get(&at, "jobrelay-route"));
	CU_ASSERT_STRING_EQUAL(get(&at, "content-type"), "application/cloudevents+json; charset=UTF-8");
	CU_ASSERT_EQUAL(at.n, 9);
	jr_buf scratch;
	buf_init(&scratch, 0);
	const char *d;
	size_t n;
	CU_ASSERT_EQUAL(dl_topic_data(&r, &scratch, &d, &n), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "\"id\":\"ev-2\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "\"specversion\":\"1.0\""));
	CU_ASSERT_EQUAL(n, strlen(d));

	/* undecodable input: raw bytes as data, no event attributes */
	jr_dlrecord raw = {.raw = "not\0json", .raw_len = 8, .origin = "in.ndjson:4",
			   .cls = JR_ERR_INVALID_EVENT, .code = "INVALID_EVENT",
			   .message = "bad JSON", .attempts = 0, .failed_at_ms = 0};
	dl_topic_attributes(&raw, &a, &at);
	CU_ASSERT_PTR_NULL(get(&at, "jobrelay-event-id"));
	CU_ASSERT_PTR_NULL(get(&at, "jobrelay-event-source"));
	CU_ASSERT_PTR_NULL(get(&at, "content-type")); /* raw bytes are not a CloudEvent */
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-error-class"), "invalid_event");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-origin"), "in.ndjson:4");
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-failed-at"), "1970-01-01T00:00:00.000Z");
	CU_ASSERT_EQUAL(dl_topic_data(&raw, &scratch, &d, &n), 0);
	CU_ASSERT_EQUAL(n, 8);
	CU_ASSERT_EQUAL(memcmp(d, "not\0json", 8), 0);

	/* an undecodable Pub/Sub message: its own data and attributes */
	jr_kv kv[] = {{"a", "b"}};
	jr_message m = {.data = "\xff\xfe", .data_len = 2, .attrs = kv, .n_attrs = 1};
	raw.msg = &m;
	dl_topic_attributes(&raw, &a, &at);
	CU_ASSERT_STRING_EQUAL(get(&at, "a"), "b");
	CU_ASSERT_EQUAL(dl_topic_data(&raw, &scratch, &d, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(memcmp(d, "\xff\xfe", 2), 0);
	buf_free(&scratch);
	arena_free(&a);
	event_free(ev);
}

static void test_message_cut_at_utf8_boundary(void)
{
	/* 1023 ASCII bytes, then "é" (2 bytes): 1025 bytes; the cut must not split "é" */
	char msg[1200];
	memset(msg, 'x', 1023);
	memcpy(msg + 1023, "\xc3\xa9tail", 7);
	jr_event *ev = tev_new("ev-3", "//s", "t");
	jr_dlrecord r = record(ev, NULL);
	r.message = msg;
	jr_arena a;
	arena_init(&a);
	dl_topic_attrs at;
	dl_topic_attributes(&r, &a, &at);
	const char *v = get(&at, "jobrelay-error-message");
	CU_ASSERT_EQUAL(strlen(v), 1023);
	CU_ASSERT_TRUE(valid_utf8(v));
	/* exactly 1024 bytes ending in a whole character is kept whole */
	memset(msg, 'x', 1022);
	memcpy(msg + 1022, "\xc3\xa9", 3);
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_EQUAL(strlen(get(&at, "jobrelay-error-message")), 1024);
	/* a 4-byte character across the limit */
	memset(msg, 'x', 1021);
	memcpy(msg + 1021, "\xf0\x9f\x98\x80", 5);
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_EQUAL(strlen(get(&at, "jobrelay-error-message")), 1021);
	arena_free(&a);
	event_free(ev);
}

static void test_invalid_utf8_replaced(void)
{
	jr_arena a;
	arena_init(&a);
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "a\xff" "b", 3, 1024), "a?b");
	/* overlong, surrogate, past U+10FFFF, truncated sequence */
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "\xc0\xaf", 2, 1024), "??");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "\xed\xa0\x80", 3, 1024), "???");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "\xf4\x90\x80\x80", 4, 1024), "????");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "z\xe2\x82", 3, 1024), "z??");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "\xe2\x82\xac", 3, 1024), "\xe2\x82\xac");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "\xe2\x82\xac", 3, 2), "");
	CU_ASSERT_STRING_EQUAL(dl_topic_utf8(&a, "ab", 2, 0), "");
	arena_free(&a);
}

static void test_original_keys_and_values(void)
{
	char longkey[300], longval[1500];
	memset(longkey, 'k', 257);
	longkey[257] = '\0';
	memset(longval, 'v', 1400);
	longval[1400] = '\0';
	char key256[257];
	memset(key256, 'q', 256);
	key256[256] = '\0';
	jr_kv kv[] = {
		{"googclient_schemaname", "s"}, /* reserved by Pub/Sub */
		{"", "empty key"},
		{longkey, "x"},                 /* over 256 bytes */
		{"bad\xffkey", "x"},            /* not UTF-8 */
		{key256, "ok"},                 /* exactly 256: kept */
		{"long", longval},              /* value cut to 1024 */
		{"badval", "a\xc3"},            /* value not UTF-8: dropped, never altered */
		{"ce-id", "nul\xc0\x80one"},     /* a NUL byte as the reader carries it: dropped */
	};
	jr_message m = {.data = "", .attrs = kv, .n_attrs = 8};
	jr_event *ev = tev_new("ev-4", "//s", "t");
	jr_dlrecord r = record(ev, &m);
	jr_arena a;
	arena_init(&a);
	dl_topic_attrs at;
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_EQUAL(at.dropped, 6);
	CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-attributes-dropped"), "6");
	CU_ASSERT_PTR_NULL(get(&at, "googclient_schemaname"));
	CU_ASSERT_PTR_NULL(get(&at, longkey));
	CU_ASSERT_STRING_EQUAL(get(&at, key256), "ok");
	CU_ASSERT_EQUAL(strlen(get(&at, "long")), 1024);
	CU_ASSERT_PTR_NULL(get(&at, "badval"));
	CU_ASSERT_PTR_NULL(get(&at, "ce-id"));
	for (size_t i = 0; i < at.n; i++) {
		CU_ASSERT_TRUE(strlen(at.kv[i].key) >= 1 && strlen(at.kv[i].key) <= 256);
		CU_ASSERT_TRUE(strlen(at.kv[i].value) <= 1024);
		CU_ASSERT_TRUE(valid_utf8(at.kv[i].key) && valid_utf8(at.kv[i].value));
	}
	arena_free(&a);
	event_free(ev);
}

/* n original attributes a0..a(n-1) on a routed event (9 of ours) */
static void count_case(size_t n, size_t want_n, size_t want_dropped)
{
	static char keys[200][8];
	jr_kv kv[200];
	for (size_t i = 0; i < n; i++) {
		snprintf(keys[i], sizeof keys[i], "a%zu", i);
		kv[i] = (jr_kv){keys[i], "v"};
	}
	jr_message m = {.data = "", .attrs = kv, .n_attrs = n};
	jr_event *ev = tev_new("ev-5", "//s", "t");
	jr_dlrecord r = record(ev, &m);
	jr_arena a;
	arena_init(&a);
	dl_topic_attrs at;
	dl_topic_attributes(&r, &a, &at);
	CU_ASSERT_EQUAL(at.n, want_n);
	CU_ASSERT_EQUAL(at.dropped, want_dropped);
	CU_ASSERT_TRUE(at.n <= DLTOPIC_MAX_ATTRS);
	/* ours are always there; originals kept in order */
	CU_ASSERT_PTR_NOT_NULL(get(&at, "jobrelay-failed-at"));
	CU_ASSERT_PTR_NOT_NULL(get(&at, "jobrelay-event-id"));
	if (n)
		CU_ASSERT_PTR_NOT_NULL(get(&at, "a0"));
	if (want_dropped) {
		char d[16];
		snprintf(d, sizeof d, "%zu", want_dropped);
		CU_ASSERT_STRING_EQUAL(get(&at, "jobrelay-attributes-dropped"), d);
		CU_ASSERT_PTR_NULL(get(&at, keys[n - 1]));
	} else {
		CU_ASSERT_PTR_NULL(get(&at, "jobrelay-attributes-dropped"));
	}
	arena_free(&a);
	event_free(ev);
}

static void test_attribute_count_limit(void)
{
	count_case(0, 9, 0);
	count_case(91, 100, 0);  /* 9 + 91 = 100: all fit */
	count_case(92, 100, 2);  /* 9 + 90 kept + the count */
	count_case(150, 100, 60);
}

int main(void)
{
	static const cu_test tests[] = {
		{"ours and the originals", test_ours_and_originals},
		{"unrouted and raw records", test_unrouted_and_raw},
		{"error message cut at a UTF-8 boundary", test_message_cut_at_utf8_boundary},
		{"invalid UTF-8 replaced", test_invalid_utf8_replaced},
		{"original keys and values within the limits", test_original_keys_and_values},
		{"at most 100 attributes", test_attribute_count_limit},
		{NULL, NULL},
	};
	return cu_run("dltopic", tests);
}
