/* Replay inputs: format detection, NDJSON streaming with bounded lines,
 * folders, unreadable paths, and the dead-letter record format. */
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cu.h"
#include "dl_file.h"
#include "decode.h"
#include "jsonparse.h"
#include "input.h"
#include "testev.h"
#include "utf8.h"

static char dir[] = "/tmp/jr-test-input.XXXXXX";

static void put(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

typedef struct got {
	int n_ev, n_err;
	char ids[16][32];
	char errs[8][256];
} got;

static void drain(const char *path, jr_input_format fmt, const jr_limits *lim, got *g)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, path);
	char *paths[] = {p};
	jr_input *in = input_new(paths, 1, fmt, lim, NULL);
	jr_input_item it;
	memset(g, 0, sizeof *g);
	while (input_next(in, &it)) {
		if (it.ev) {
			if (g->n_ev < 16)
				snprintf(g->ids[g->n_ev], 32, "%s", it.ev->id);
			g->n_ev++;
			event_free(it.ev);
		} else {
			if (g->n_err < 8)
				snprintf(g->errs[g->n_err], 256, "%s", it.error);
			g->n_err++;
			free(it.error);
			free(it.raw);
		}
	}
	input_free(in);
}

#define EV(id) "{\"specversion\":\"1.0\",\"id\":\"" id "\",\"source\":\"s\",\"type\":\"t\"}"

static jr_limits limits(void)
{
	jr_config c;
	config_defaults(&c);
	jr_limits l = c.limits;
	config_free(&c);
	return l;
}

static void test_ndjson_detected_and_streamed(void)
{
	jr_limits l = limits();
	got g;
	put("a.json", EV("1") "\n\n" EV("2") "\n" EV("3"));
	drain("a.json", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 3);
	CU_ASSERT_EQUAL(g.n_err, 0);
	CU_ASSERT_STRING_EQUAL(g.ids[2], "3");
}

static void test_pretty_json_is_one_document(void)
{
	jr_limits l = limits();
	got g;
	put("b.json", "{\n  \"specversion\": \"1.0\",\n  \"id\": \"p\",\n  \"source\": \"s\",\n  \"type\": \"t\"\n}\n");
	drain("b.json", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 1);
	CU_ASSERT_STRING_EQUAL(g.ids[0], "p");
	put("c.json", "[" EV("x") ",\n" EV("y") "]\n");
	drain("c.json", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 2);
}

static void test_long_line_costs_only_itself(void)
{
	jr_limits l = limits();
	l.event_bytes = 200;
	char big[1024];
	memset(big, 'a', sizeof big);
	big[sizeof big - 1] = '\0';
	char text[2048];
	snprintf(text, sizeof text, "%s\n{\"id\":\"%s\"}\n%s\n", EV("1"), big, EV("3"));
	put("long.ndjson", text);
	got g;
	drain("long.ndjson", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 2);
	CU_ASSERT_EQUAL(g.n_err, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.errs[0], "long.ndjson:2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.errs[0], "event size limit"));
	CU_ASSERT_STRING_EQUAL(g.ids[1], "3");
}

static void test_bad_line_named(void)
{
	jr_limits l = limits();
	put("bad.ndjson", EV("1") "\n{\"specversion\":\n" EV("3") "\n");
	got g;
	drain("bad.ndjson", JR_IN_NDJSON, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 2);
	CU_ASSERT_EQUAL(g.n_err, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.errs[0], "bad.ndjson:2: "));
}

static void test_missing_file_and_folder_order(void)
{
	jr_limits l = limits();
	got g;
	drain("nope.json", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 0);
	CU_ASSERT_EQUAL(g.n_err, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.errs[0], "nope.json"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g.errs[0], "No such file"));

	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	mkdir(sub, 0700);
	put("sub/2.json", EV("second"));
	put("sub/1.json", EV("first"));
	put("sub/.hidden.json", EV("hidden"));
	drain("sub", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 2);
	CU_ASSERT_STRING_EQUAL(g.ids[0], "first");
	CU_ASSERT_STRING_EQUAL(g.ids[1], "second");
}

static void test_http_capture(void)
{
	jr_limits l = limits();
	put("e.http", "POST / HTTP/1.1\nce-specversion: 1.0\nce-id: h1\nce-source: s\nce-type: t\n"
		      "Content-Type: application/json\n\n{\"a\":1}\n");
	got g;
	drain("e.http", JR_IN_AUTO, &l, &g);
	CU_ASSERT_EQUAL(g.n_ev, 1);
	CU_ASSERT_STRING_EQUAL(g.ids[0], "h1");
}

static void test_deadletter_record(void)
{
	jr_event *ev = tev_new("e1", "//src", "t.x");
	char msg[1100];
	/* 1023 ASCII bytes then a 2-byte character: the cut must not split it */
	memset(msg, 'm', 1023);
	strcpy(msg + 1023, "\xc3\xa9tail");
	jr_dlrecord r = {
		.ev = ev, .origin = "f.ndjson:3", .route = "r1", .attempts = 4,
		.cls = JR_ERR_NETWORK, .code = "UNAVAILABLE", .message = msg,
		.failed_at_ms = 1764151200123,
	};
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(deadletter_write_json(&b, &r), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "{\"failed_at\":\"2025-11-26T10:00:00.123Z\",\"origin\":\"f.ndjson:3\",\"route\":\"r1\",\"attempts\":4,\"error\":{\"class\":\"network\",\"code\":\"UNAVAILABLE\",\"message\":\"mmm"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "mmm\"},\"event\":{"));
	CU_ASSERT_PTR_NULL(strstr(b.data, "tail"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\"id\":\"e1\""));
	buf_free(&b);
	event_free(ev);
}

typedef struct replayed {
	int events, errors;
	char err[320];
	char id[64];
} replayed;

static void replay_cb(void *arg, jr_event *ev, const char *err)
{
	replayed *r = arg;
	if (ev) {
		r->events++;
		snprintf(r->id, sizeof r->id, "%s", ev->id);
		event_free(ev);
	} else {
		r->errors++;
		snprintf(r->err, sizeof r->err, "%s", err);
	}
}

/* record_back: r as a record line: valid UTF-8, and read back by the decoder replay uses. */
static replayed record_back(const jr_dlrecord *r, const char *want_field)
{
	jr_buf b;
	buf_init(&b, 0);
	CU_ASSERT_EQUAL(deadletter_write_json(&b, r), 0);
	CU_ASSERT_TRUE(utf8_valid(b.data, b.len));
	if (want_field && !strstr(b.data, want_field)) {
		fprintf(stderr, "no %s in %.*s\n", want_field, (int)b.len, b.data);
		CU_FAIL("field missing");
	}
	jr_arena a;
	arena_init(&a);
	char why[256] = "";
	CU_ASSERT_PTR_NOT_NULL(jsonparse(&a, b.data, b.len, 64, why, sizeof why));
	arena_free(&a);
	replayed back = { 0 };
	jr_decode_ctx dc = { .origin = "dead.ndjson:1", .cb = replay_cb, .arg = &back };
	CU_ASSERT_EQUAL(decode_json_doc(&dc, b.data, b.len), 1);
	buf_free(&b);
	return back;
}

/* Records of input that is not UTF-8 (raw bytes, error texts quoting them) stay readable. */
static void test_deadletter_readable(void)
{
	jr_dlrecord r = { .origin = "http", .attempts = 0, .cls = JR_ERR_INVALID_EVENT,
			  .code = "INVALID_EVENT", .failed_at_ms = 1764151200123 };
	/* raw bytes that are not UTF-8: carried as base64, refused again by name */
	const char bin[] = "\xff\xfe{\"a\":1}";
	r.raw = bin;
	r.raw_len = sizeof bin - 1;
	r.message = "invalid JSON at byte 0: \xff\xfe";
	replayed g = record_back(&r, "\"raw_base64\":\"//57ImEiOjF9\"");
	CU_ASSERT_EQUAL(g.errors, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.err, "dead-letter record of undecodable input: invalid"));
	/* a structured event whose id is not UTF-8 */
	const char bad_id[] = "{\"specversion\":\"1.0\",\"id\":\"dl-\xff\",\"source\":\"/s\",\"type\":\"t\"}";
	r.raw = bad_id;
	r.raw_len = sizeof bad_id - 1;
	r.message = "attribute id holds invalid UTF-8 at byte 3: \"dl-\xff\"";
	r.origin = "f\xfe.ndjson:1";
	g = record_back(&r, "\"raw_base64\"");
	CU_ASSERT_EQUAL(g.errors, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.err, "UTF8"));
	/* raw text that decodes now (say it was over a limit then): replayed as an event */
	const char good[] = "{\"specversion\":\"1.0\",\"id\":\"again\",\"source\":\"/s\",\"type\":\"t\"}";
	r.raw = good;
	r.raw_len = sizeof good - 1;
	r.origin = "pull";
	g = record_back(&r, "\"raw\":\"{");
	CU_ASSERT_EQUAL(g.events, 1);
	CU_ASSERT_STRING_EQUAL(g.id, "again");
	/* a pulled message whose attribute held a NUL (UTF8_NUL_TEXT), as pull writes it */
	const char pushed[] = "{\"message\":{\"data\":\"\",\"attributes\":{\"ce-specversion\":\"1.0\","
			      "\"ce-id\":\"nul\xC0\x80one\",\"ce-source\":\"/s\",\"ce-type\":\"t\"},"
			      "\"messageId\":\"7\"},\"subscription\":\"projects/p/subscriptions/s\"}";
	r.raw = pushed;
	r.raw_len = sizeof pushed - 1;
	g = record_back(&r, "\"raw_base64\"");
	CU_ASSERT_EQUAL(g.errors, 1);
	CU_ASSERT_EQUAL(g.events, 0);
}

static void sink_cb(void *arg, int ok, const char *err)
{
	(void)arg;
	(void)ok;
	(void)err;
	CU_FAIL("the file sink answers at once");
}

/* A write past the file size limit (EFBIG, as ENOSPC would) is cut back; the next write is whole. */
static void test_deadletter_file_failed_write(void)
{
	char path[300], err[256] = "";
	snprintf(path, sizeof path, "%s/dead.ndjson", dir);
	jr_sink *s = dl_file_open(path, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	jr_event *ev = tev_new("small", "//s", "t");
	jr_dlrecord r = { .ev = ev, .origin = "t", .code = "NOT_FOUND", .message = "m",
			  .cls = JR_ERR_INVALID_REQUEST };
	CU_ASSERT_EQUAL(s->write(s, &r, sink_cb, NULL, err, sizeof err), 0);
	struct stat st;
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	off_t one = st.st_size;
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)one + 3 * (rlim_t)one / 2; /* room for a small record, not a big one */
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
	static char big[8192];
	memset(big, 'b', sizeof big - 1);
	jr_event *bev = tev_new("big", "//s", "t");
	tev_data(bev, JR_DATA_TEXT, big, sizeof big - 1);
	r.ev = bev;
	CU_ASSERT_EQUAL(s->write(s, &r, sink_cb, NULL, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "File too large"));
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_size, one); /* cut back: no partial line */
	r.ev = ev;
	CU_ASSERT_EQUAL(s->write(s, &r, sink_cb, NULL, err, sizeof err), 0);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	s->close(s);
	FILE *f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		n++;
		CU_ASSERT_EQUAL(strncmp(line, "{\"failed_at\"", 12), 0);
		CU_ASSERT_EQUAL(line[strlen(line) - 1], '\n');
	}
	fclose(f);
	CU_ASSERT_EQUAL(n, 2);
	event_free(ev);
	event_free(bev);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 2;
	static const cu_test tests[] = {
		{"NDJSON detected and streamed", test_ndjson_detected_and_streamed},
		{"pretty JSON and arrays are one document", test_pretty_json_is_one_document},
		{"an over-long line costs only itself", test_long_line_costs_only_itself},
		{"a bad line is named by file and line", test_bad_line_named},
		{"missing files named; folders in name order", test_missing_file_and_folder_order},
		{".http captures", test_http_capture},
		{"dead-letter record format", test_deadletter_record},
		{"dead-letter records of bad input read back", test_deadletter_readable},
		{"a failed dead-letter write is cut back", test_deadletter_file_failed_write},
		{NULL, NULL},
	};
	int rc = cu_run("input", tests);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
