/*
 * test_log.c — log lines as written to a file: JSON fields and the time
 * format, and batches (log_batch_begin/end): INFO lines held until the end,
 * a WARNING line writing what is held first, whole lines at every write,
 * batches on loop_run_once's callbacks.
 */
#include "cu.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "json.h"
#include "jsonparse.h"
#include "log.h"
#include "loop.h"

static int fd = -1;

/* open_log: a fresh temporary file as the log, JSON, from DEBUG up. */
static void open_log(void)
{
	char path[] = "/tmp/jr-test-log.XXXXXX";
	if (fd >= 0)
		close(fd);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	log_setup(fd, JR_LOG_JSON, JR_LOG_DEBUG);
}

static size_t log_size(void)
{
	struct stat st;
	CU_ASSERT_FATAL(fstat(fd, &st) == 0);
	return (size_t)st.st_size;
}

/* log_text: what was written so far (caller frees). */
static char *log_text(void)
{
	size_t n = log_size();
	char *s = malloc(n + 1);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_FATAL(pread(fd, s, n, 0) == (ssize_t)n);
	s[n] = '\0';
	return s;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* lines_now: lines written so far. */
static int lines_now(void)
{
	char *s = log_text();
	int n = count_lines(s);
	free(s);
	return n;
}

static void test_json_line(void)
{
	open_log();
	log_kv(JR_LOG_INFO, "T-ONE", "hello \"you\"", "k", "v", "skip", NULL, "n", "1", NULL);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"severity\":\"INFO\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-ONE\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"message\":\"hello \\\"you\\\"\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, ",\"k\":\"v\",\"n\":\"1\"}"));
	CU_ASSERT_PTR_NULL(strstr(s, "skip"));
	/* "time":"YYYY-MM-DDTHH:MM:SS.uuuuuuZ" */
	const char *t = strstr(s, "\"time\":\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	t += 8;
	CU_ASSERT_EQUAL(strchr(t, '"') - t, 27);
	CU_ASSERT_EQUAL(t[4], '-');
	CU_ASSERT_EQUAL(t[10], 'T');
	CU_ASSERT_EQUAL(t[19], '.');
	CU_ASSERT_EQUAL(t[26], 'Z');
	for (int i = 20; i < 26; i++)
		CU_ASSERT_TRUE(t[i] >= '0' && t[i] <= '9');
	free(s);
}

/* parses: every line of s is one JSON object (jsonparse: strict UTF-8). */
static int all_lines_parse(const char *s)
{
	int ok = 1;
	jr_arena a;
	arena_init(&a);
	for (const char *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		char why[256] = "";
		const jr_json *v = jsonparse(&a, s, (size_t)(nl - s), 8, why, sizeof why);
		if (!v || v->type != JR_JSON_OBJECT) {
			fprintf(stderr, "not a JSON line (%s): %.120s\n", why, s);
			ok = 0;
		}
	}
	arena_free(&a);
	return ok;
}

/* A value over 64 KiB, and bytes that are not UTF-8: the line stays valid JSON. */
static void test_long_and_bad_values(void)
{
	open_log();
	size_t n = 70 * 1024;
	char *big = malloc(n + 1);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, 'x', n);
	memcpy(big + 16 * 1024 - 1, "\xE2\x82\xAC", 3); /* a character across the cut */
	big[n] = '\0';
	log_kv(JR_LOG_INFO, "T-BIG", "big", "event_id", big, "after", "kept", NULL);
	log_kv(JR_LOG_INFO, "T-BAD", "bad \xff", "event_id", "dl-\xff", "source", "/s\xC0\x80", NULL);
	char *many[8];
	for (int i = 0; i < 8; i++)
		many[i] = big + i * 1024; /* 8 values of about 16 KiB: the line would pass 64 KiB */
	log_kv(JR_LOG_INFO, "T-MANY", "many", "a", many[0], "b", many[1], "c", many[2], "d", many[3],
	       "e", many[4], "f", many[5], NULL);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 3);
	CU_ASSERT_TRUE(all_lines_parse(s));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "...(cut, 71680 bytes)\",\"after\":\"kept\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"event_id\":\"dl-\xEF\xBF\xBD\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-MANY\""));
	CU_ASSERT_PTR_NULL(strstr(s, "\"event_id\":,"));
	free(s);
	free(big);
}

static void test_text_time(void)
{
	open_log();
	log_setup(fd, JR_LOG_TEXT, JR_LOG_DEBUG);
	log_kv(JR_LOG_WARNING, "T-TXT", "m", "k", "a b", NULL);
	char *s = log_text();
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ WARNING T-TXT m k=\"a b\"" */
	CU_ASSERT_EQUAL(s[19], '.');
	CU_ASSERT_EQUAL(s[23], 'Z');
	CU_ASSERT_PTR_NOT_NULL(strstr(s, " WARNING T-TXT m k=\"a b\"\n"));
	free(s);
}

/*
 * log_set_trace: the three Cloud Logging fields on each line until cleared,
 * trace_sampled a JSON boolean; no span, no spanId; NULL clears all three;
 * a trace too long to keep is dropped rather than cut.
 */
static void test_trace_fields(void)
{
	open_log();
	const char *tr = "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736";
	log_set_trace(tr, "00f067aa0ba902b7", 1);
	log_kv(JR_LOG_INFO, "T-TR1", "m", "k", "v", NULL);
	log_set_trace(tr, NULL, 0);
	log_kv(JR_LOG_INFO, "T-TR2", "m", NULL);
	log_set_trace(NULL, "00f067aa0ba902b7", 1);
	log_kv(JR_LOG_INFO, "T-TR3", "m", NULL);
	char longer[200];
	memset(longer, 'x', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	log_set_trace(longer, "00f067aa0ba902b7", 1);
	log_kv(JR_LOG_INFO, "T-TR4", "m", NULL);
	log_set_trace(NULL, NULL, 0);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 4);
	CU_ASSERT_TRUE(all_lines_parse(s));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-TR1\",\"message\":\"m\",\"k\":\"v\","
				       "\"logging.googleapis.com/trace\":\"projects/p/traces/"
				       "4bf92f3577b34da6a3ce929d0e0e4736\","
				       "\"logging.googleapis.com/spanId\":\"00f067aa0ba902b7\","
				       "\"logging.googleapis.com/trace_sampled\":true}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-TR2\",\"message\":\"m\","
				       "\"logging.googleapis.com/trace\":\"projects/p/traces/"
				       "4bf92f3577b34da6a3ce929d0e0e4736\","
				       "\"logging.googleapis.com/trace_sampled\":false}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-TR3\",\"message\":\"m\"}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"msgid\":\"T-TR4\",\"message\":\"m\"}"));
	free(s);

	open_log();
	log_setup(fd, JR_LOG_TEXT, JR_LOG_DEBUG);
	log_set_trace(tr, "00f067aa0ba902b7", 1);
	log_kv(JR_LOG_INFO, "T-TXT", "m", NULL);
	log_set_trace(NULL, NULL, 0);
	s = log_text();
	CU_ASSERT_PTR_NOT_NULL(strstr(s, " T-TXT m trace=" "projects/p/traces/"
				       "4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 "
				       "sampled=true\n"));
	free(s);
}

static void test_batch_holds_info(void)
{
	open_log();
	log_batch_begin();
	log_kv(JR_LOG_INFO, "T-A", "a", NULL);
	log_kv(JR_LOG_DEBUG, "T-B", "b", NULL);
	CU_ASSERT_EQUAL(log_size(), 0);
	log_batch_begin(); /* nested */
	log_kv(JR_LOG_INFO, "T-C", "c", NULL);
	log_batch_end();   /* an inner end writes too */
	CU_ASSERT_EQUAL(lines_now(), 3);
	log_kv(JR_LOG_INFO, "T-D", "d", NULL);
	size_t held = log_size();
	log_batch_end();
	CU_ASSERT_TRUE(log_size() > held);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 4);
	char *a = strstr(s, "T-A"), *b = strstr(s, "T-B"), *c = strstr(s, "T-C"), *d = strstr(s, "T-D");
	CU_ASSERT_TRUE(a && b && c && d && a < b && b < c && c < d);
	free(s);
	/* outside a batch: written at once */
	log_kv(JR_LOG_INFO, "T-E", "e", NULL);
	CU_ASSERT_EQUAL(lines_now(), 5);
}

static void test_batch_warning_flushes(void)
{
	open_log();
	log_batch_begin();
	log_kv(JR_LOG_INFO, "T-A", "a", NULL);
	log_kv(JR_LOG_WARNING, "T-W", "w", NULL);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 2);
	CU_ASSERT_TRUE(strstr(s, "T-A") < strstr(s, "T-W"));
	free(s);
	log_kv(JR_LOG_INFO, "T-B", "b", NULL);
	CU_ASSERT_EQUAL(lines_now(), 2);
	log_batch_end();
	CU_ASSERT_EQUAL(lines_now(), 3);
}

/* A batch bigger than its buffer: every write ends on a line, none is lost. */
static void test_batch_overflow(void)
{
	open_log();
	char big[600];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_batch_begin();
	int seen_partial = 0;
	for (int i = 0; i < 40; i++) {
		log_kv(JR_LOG_INFO, "T-BIG", big, NULL);
		char *s = log_text();
		if (s[0] && s[strlen(s) - 1] != '\n')
			seen_partial = 1;
		free(s);
	}
	CU_ASSERT_TRUE(log_size() > 0); /* the 4 KiB buffer filled */
	log_batch_end();
	CU_ASSERT_FALSE(seen_partial);
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 40);
	free(s);
	/* a line longer than the buffer goes out whole, after what is held */
	char huge[6000];
	memset(huge, 'y', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	log_batch_begin();
	log_kv(JR_LOG_INFO, "T-SMALL", "s", NULL);
	log_kv(JR_LOG_INFO, "T-HUGE", huge, NULL);
	s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 42);
	CU_ASSERT_TRUE(strstr(s, "T-SMALL") < strstr(s, "T-HUGE"));
	free(s);
	log_batch_end();
}

static void say(void *arg)
{
	log_kv(JR_LOG_INFO, "T-LOOP", arg, NULL);
}

struct seen {
	size_t during;
};

static void measure(void *arg)
{
	((struct seen *)arg)->during = log_size();
}

/* loop_run_once: lines of one turn's callbacks are written when the turn ends. */
static void test_loop_batches(void)
{
	open_log();
	grpc_init();
	jr_loop *l = loop_new();
	struct seen sn = {0};
	loop_timer_add(l, 0, say, "one");
	loop_timer_add(l, 0, say, "two");
	loop_timer_add(l, 0, measure, &sn);
	int ran = 0;
	int64_t end = loop_now_ms() + 5000;
	while (ran < 3 && loop_now_ms() < end)
		ran += loop_run_once(l, 1000);
	CU_ASSERT_EQUAL(ran, 3);
	CU_ASSERT_EQUAL(sn.during, 0); /* held during the turn */
	char *s = log_text();
	CU_ASSERT_EQUAL(count_lines(s), 2);
	free(s);
	loop_free(l);
	grpc_shutdown();
}

static const cu_test tests[] = {
	{"long_and_bad_values", test_long_and_bad_values},
	{"json_line", test_json_line},
	{"text_time", test_text_time},
	{"trace_fields", test_trace_fields},
	{"batch_holds_info", test_batch_holds_info},
	{"batch_warning_flushes", test_batch_warning_flushes},
	{"batch_overflow", test_batch_overflow},
	{"loop_batches", test_loop_batches},
	{NULL, NULL},
};

int main(void)
{
	int rc = cu_run("log", tests);
	if (fd >= 0)
		close(fd);
	return rc;
}
