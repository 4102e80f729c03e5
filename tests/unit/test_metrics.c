/* Prometheus text output of the metrics registry: families, escaping, process_* and build info. */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cu.h"
#include "metrics.h"
#include "version.h"

/*
 * exposition_ok: 1 when text is well-formed Prometheus text (0.0.4) as far as
 * jobrelay writes it: every line ends in a newline; HELP and TYPE at most once a
 * family, TYPE before its samples; every sample's family (histogram suffixes
 * stripped) has a TYPE; names and label names valid; label values use only the
 * escapes \\ \" \n; values are numbers. On failure, the line is printed.
 */
static int valid_name(const char *p, size_t n, int colon)
{
	if (!n || isdigit((unsigned char)p[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || (colon && p[i] == ':')))
			return 0;
	return 1;
}

#define MAX_FAMS 128
typedef struct fams {
	char name[MAX_FAMS][128];
	char type[MAX_FAMS][16];
	int help[MAX_FAMS];
	int n;
} fams;

static int fam_find(fams *f, const char *name, size_t n)
{
	for (int i = 0; i < f->n; i++)
		if (strlen(f->name[i]) == n && memcmp(f->name[i], name, n) == 0)
			return i;
	return -1;
}

static int fam_add(fams *f, const char *name, size_t n)
{
	int i = fam_find(f, name, n);
	if (i >= 0 || f->n == MAX_FAMS || n >= sizeof f->name[0])
		return i;
	memcpy(f->name[f->n], name, n);
	f->name[f->n][n] = '\0';
	f->type[f->n][0] = '\0';
	f->help[f->n] = 0;
	return f->n++;
}

static int bad(const char *line, const char *why)
{
	const char *e = strchr(line, '\n');
	fprintf(stderr, "exposition: %s: %.*s\n", why, (int)(e ? e - line : (long)strlen(line)), line);
	return 0;
}

static int sample_ok(fams *f, const char *line, const char *end)
{
	const char *p = line;
	while (p < end && *p != '{' && *p != ' ')
		p++;
	size_t n = (size_t)(p - line);
	if (!valid_name(line, n, 1))
		return bad(line, "sample name");
	int i = fam_find(f, line, n);
	if (i < 0 || !f->type[i][0]) { /* a histogram's _bucket, _sum, _count */
		static const char *const sfx[] = { "_bucket", "_sum", "_count" };
		for (size_t k = 0; k < 3 && i < 0; k++) {
			size_t sl = strlen(sfx[k]);
			if (n > sl && memcmp(line + n - sl, sfx[k], sl) == 0) {
				i = fam_find(f, line, n - sl);
				if (i >= 0 && strcmp(f->type[i], "histogram") != 0)
					i = -1;
			}
		}
	}
	if (i < 0 || !f->type[i][0])
		return bad(line, "sample without a # TYPE of its family before it");
	if (p < end && *p == '{') {
		p++;
		for (;;) {
			const char *k = p;
			while (p < end && *p != '=')
				p++;
			if (!valid_name(k, (size_t)(p - k), 0) || p + 1 >= end || p[1] != '"')
				return bad(line, "label name");
			p += 2;
			while (p < end && *p != '"') {
				if (*p == '\\') {
					if (p + 1 >= end || !strchr("\\\"n", p[1]))
						return bad(line, "escape in a label value");
					p++;
				} else if (*p == '\n') {
					return bad(line, "newline in a label value");
				}
				p++;
			}
			if (p >= end)
				return bad(line, "unterminated label value");
			p++;
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			if (p < end && *p == '}') {
				p++;
				break;
			}
			return bad(line, "label list");
		}
	}
	if (p >= end || *p != ' ')
		return bad(line, "no value");
	p++;
	char num[64];
	size_t vl = (size_t)(end - p);
	if (!vl || vl >= sizeof num)
		return bad(line, "value");
	memcpy(num, p, vl);
	num[vl] = '\0';
	char *e;
	(void)strtod(num, &e);
	if (*e || e == num)
		return bad(line, "value is not a number");
	return 1;
}

static int exposition_ok(const char *text)
{
	fams *f = calloc(1, sizeof *f);
	int ok = 1;
	for (const char *line = text; ok && *line;) {
		const char *end = strchr(line, '\n');
		if (!end) {
			ok = bad(line, "no newline at the end");
			break;
		}
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			const char *nm = line + 7, *sp = memchr(nm, ' ', (size_t)(end - nm));
			if (!sp || !valid_name(nm, (size_t)(sp - nm), 1)) {
				ok = bad(line, "family name");
				break;
			}
			int i = fam_add(f, nm, (size_t)(sp - nm));
			if (i < 0) {
				ok = bad(line, "too many families");
				break;
			}
			if (line[2] == 'H') {
				for (const char *q = sp + 1; q < end; q++)
					if (*q == '\\' && (q + 1 >= end || (q[1] != '\\' && q[1] != 'n')))
						ok = bad(line, "escape in HELP");
					else if (*q == '\\')
						q++;
				if (f->help[i]++)
					ok = bad(line, "a second # HELP");
			} else {
				size_t tl = (size_t)(end - sp - 1);
				if (f->type[i][0])
					ok = bad(line, "a second # TYPE");
				else if (tl >= sizeof f->type[i] || !(
					 (tl == 7 && !memcmp(sp + 1, "counter", 7)) ||
					 (tl == 5 && !memcmp(sp + 1, "gauge", 5)) ||
					 (tl == 9 && !memcmp(sp + 1, "histogram", 9))))
					ok = bad(line, "type");
				else
					memcpy(f->type[i], sp + 1, tl);
			}
		} else if (line[0] != '#') {
			ok = sample_ok(f, line, end);
		}
		line = end + 1;
	}
	free(f);
	return ok;
}

/* sample: the value of the sample line `name VALUE` in text, or NAN when there is none. */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static void test_counter_gauge_histogram(void)
{
	metrics_reset();
	jr_metric *c = metric_register("jobrelay_events_total", JR_METRIC_COUNTER, "Events.", NULL, 0);
	jr_metric *g = metric_register("jobrelay_in_flight", JR_METRIC_GAUGE, "In flight.", NULL, 0);
	static const double b[] = {0.01, 0.1, 1};
	jr_metric *h = metric_register("jobrelay_latency_seconds", JR_METRIC_HISTOGRAM, "Latency.", b, 3);
	CU_ASSERT_PTR_EQUAL(metric_register("jobrelay_events_total", JR_METRIC_COUNTER, "x", NULL, 0), c);
	char l[128];
	metrics_labels(l, sizeof l, "route", "csv", "outcome", "dispatched", NULL);
	CU_ASSERT_STRING_EQUAL(l, "route=\"csv\",outcome=\"dispatched\"");
	metric_add(c, l, 1);
	metric_add(c, l, 2);
	metric_set(g, NULL, 5);
	metric_observe(h, "route=\"csv\"", 0.05);
	metric_observe(h, "route=\"csv\"", 2);
	CU_ASSERT_DOUBLE_EQUAL(metric_get(c, l), 3, 1e-9);
	jr_buf out;
	buf_init(&out, 0);
	metrics_write(&out);
	const char *want =
		"# HELP jobrelay_events_total Events.\n"
		"# TYPE jobrelay_events_total counter\n"
		"jobrelay_events_total{route=\"csv\",outcome=\"dispatched\"} 3\n"
		"# HELP jobrelay_in_flight In flight.\n"
		"# TYPE jobrelay_in_flight gauge\n"
		"jobrelay_in_flight 5\n"
		"# HELP jobrelay_latency_seconds Latency.\n"
		"# TYPE jobrelay_latency_seconds histogram\n"
		"jobrelay_latency_seconds_bucket{route=\"csv\",le=\"0.01\"} 0\n"
		"jobrelay_latency_seconds_bucket{route=\"csv\",le=\"0.1\"} 1\n"
		"jobrelay_latency_seconds_bucket{route=\"csv\",le=\"1\"} 1\n"
		"jobrelay_latency_seconds_bucket{route=\"csv\",le=\"+Inf\"} 2\n"
		"jobrelay_latency_seconds_sum{route=\"csv\"} 2.05\n"
		"jobrelay_latency_seconds_count{route=\"csv\"} 2\n";
	CU_ASSERT_STRING_EQUAL(out.data, want);
	CU_ASSERT(exposition_ok(out.data));
	CU_ASSERT(!exposition_ok("jobrelay_untyped 1\n"));                 /* the checker checks */
	CU_ASSERT(!exposition_ok("# TYPE m gauge\nm{k=\"a\\q\"} 1\n"));    /* bad escape */
	CU_ASSERT(!exposition_ok("# TYPE m gauge\nm{k=\"a} 1\n"));           /* unterminated */
	CU_ASSERT(!exposition_ok("# HELP m a\\b\n# TYPE m gauge\n"));        /* bad HELP escape */
	CU_ASSERT(!exposition_ok("# TYPE m gauge\n# TYPE m gauge\n"));       /* TYPE twice */
	buf_free(&out);
	metrics_reset();
}

static void test_label_escaping(void)
{
	char l[64];
	metrics_labels(l, sizeof l, "k", "a\"b\\c\nd", NULL);
	CU_ASSERT_STRING_EQUAL(l, "k=\"a\\\"b\\\\c\\nd\"");
	metrics_labels(l, 12, "key", "a-long-value", NULL);
	CU_ASSERT(strlen(l) < 12);
	/* a broken UTF-8 sequence does not carry a quote, backslash or newline past the escaping */
	metrics_labels(l, sizeof l, "k", "\xc3\"}\xe2\\\n", NULL);
	CU_ASSERT_STRING_EQUAL(l, "k=\"\xc3\\\"}\xe2\\\\\\n\"");
}

static void test_help_escaping(void)
{
	metrics_reset();
	metric_register("jobrelay_x_total", JR_METRIC_COUNTER, "a \\ b\nc \"d\"", NULL, 0);
	jr_buf out;
	buf_init(&out, 0);
	metrics_write(&out);
	/* HELP escapes backslash and newline only; a double quote stays as it is */
	CU_ASSERT_STRING_EQUAL(out.data, "# HELP jobrelay_x_total a \\\\ b\\nc \"d\"\n"
					 "# TYPE jobrelay_x_total counter\n");
	CU_ASSERT(exposition_ok(out.data));
	buf_free(&out);
	metrics_reset();
}

static void test_value_digits(void)
{
	metrics_reset();
	jr_metric *g = metric_register("jobrelay_t", JR_METRIC_GAUGE, "T.", NULL, 0);
	metric_set(g, "k=\"a\"", 1700000005.37); /* a start time: its fraction kept */
	metric_set(g, "k=\"b\"", 0.1 + 0.2);
	metric_set(g, "k=\"c\"", INFINITY);
	jr_buf out;
	buf_init(&out, 0);
	metrics_write(&out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "jobrelay_t{k=\"a\"} 1700000005.37\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "jobrelay_t{k=\"b\"} 0.3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "jobrelay_t{k=\"c\"} +Inf\n"));
	CU_ASSERT(exposition_ok(out.data));
	buf_free(&out);
	metrics_reset();
}

static void test_label_cuts(void)
{
	char l[32];
	/* every cap: what is written is a well-formed list of whole pairs */
	for (size_t cap = 1; cap <= sizeof l; cap++) {
		metrics_labels(l, cap, "route", "a\"b\\c\nd\xc3\xa9" "e", "x", "yz", NULL);
		CU_ASSERT(strlen(l) < cap);
		char line[96];
		snprintf(line, sizeof line, "# TYPE m gauge\nm{%s} 1\n", l);
		if (l[0])
			CU_ASSERT(exposition_ok(line));
		size_t q = 0;
		for (const char *p = l; *p; p++)
			if (*p == '\\')
				p++;
			else if (*p == '"')
				q++;
		CU_ASSERT_EQUAL(q % 2, 0); /* every value closed */
		/* never half of the two-byte e-acute, never half of an escape */
		const char *e = strstr(l, "\xc3");
		if (e)
			CU_ASSERT_EQUAL((unsigned char)e[1], 0xa9);
		CU_ASSERT(strlen(l) == 0 || l[strlen(l) - 1] == '"');
	}
	metrics_labels(l, sizeof l, "route", "a\"b\\c\nd\xc3\xa9" "e", NULL);
	CU_ASSERT_STRING_EQUAL(l, "route=\"a\\\"b\\\\c\\nd\xc3\xa9" "e\"");
	metrics_labels(l, 10, "route", "abcdef", NULL); /* route="ab" + NUL is 11: cut to "a" */
	CU_ASSERT_STRING_EQUAL(l, "route=\"a\"");
	metrics_labels(l, 8, "route", "abc", NULL); /* no room for a value: no pair */
	CU_ASSERT_STRING_EQUAL(l, "");
	metrics_labels(l, sizeof l, "a", "1", "a_very_long_label_name_x", "2", NULL);
	CU_ASSERT_STRING_EQUAL(l, "a=\"1\"");
}

static void test_build_info(void)
{
	metrics_reset();
	metrics_build_info("1.51.1");
	metrics_build_info("9.9 \"odd\\\n"); /* replaces the first; its value escaped */
	jr_buf out;
	buf_init(&out, 0);
	metrics_write(&out);
	char want[512];
	snprintf(want, sizeof want,
		 "jobrelay_build_info{version=\"%s\",commit=\"%s\",grpc=\"9.9 \\\"odd\\\\\\n\"} 1\n",
		 JR_VERSION, JR_GIT_COMMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, want));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "# TYPE jobrelay_build_info gauge\n"));
	CU_ASSERT_PTR_NULL(strstr(out.data, "1.51.1"));
	CU_ASSERT(exposition_ok(out.data));
	buf_free(&out);
	metrics_reset();
}

static void test_parse_stat(void)
{
	jr_proc_stat st;
	/* a comm with spaces and parentheses; fields 14, 15, 22, 23, 24 */
	const char *line = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
			   "250 75 0 0 20 0 9 0 123456 987654321 4321 18446744073709551615 1 1 0\n";
	CU_ASSERT_EQUAL(metrics_parse_stat(line, &st), 0);
	CU_ASSERT_EQUAL(st.utime_ticks, 250);
	CU_ASSERT_EQUAL(st.stime_ticks, 75);
	CU_ASSERT_EQUAL(st.start_ticks, 123456);
	CU_ASSERT_EQUAL(st.vsize_bytes, 987654321ULL);
	CU_ASSERT_EQUAL(st.rss_pages, 4321);
	CU_ASSERT_EQUAL(metrics_parse_stat("4242 (a) S 1 2 3", &st), -1);      /* cut short */
	CU_ASSERT_EQUAL(metrics_parse_stat("4242 a S 1 2 3 4 5 6", &st), -1);  /* no comm */
	CU_ASSERT_EQUAL(metrics_parse_stat("4242 (a) S 1 x 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
					   "19 20 21 22", &st), -1);
}

static double scrape(const char *name)
{
	jr_buf out;
	buf_init(&out, 0);
	metrics_write_process(&out);
	double v = sample(out.data, name);
	buf_free(&out);
	return v;
}

static void test_process_metrics(void)
{
	metrics_reset();
	metrics_build_info("1.0");
	jr_buf all;
	buf_init(&all, 0);
	metrics_write(&all);
	metrics_write_process(&all);
	CU_ASSERT(exposition_ok(all.data));
	static const char *const want[] = {
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE process_resident_memory_bytes gauge\n",
		"# TYPE process_virtual_memory_bytes gauge\n",
		"# TYPE process_start_time_seconds gauge\n",
		"# TYPE process_open_fds gauge\n",
		"# TYPE process_max_fds gauge\n",
		"# HELP process_cpu_seconds_total ",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CU_ASSERT_PTR_NOT_NULL(strstr(all.data, want[i]));
	buf_free(&all);

	/* the values are this process's */
	double cpu0 = scrape("process_cpu_seconds_total");
	volatile unsigned long spin = 0;
	clock_t c0 = clock();
	while (clock() - c0 < CLOCKS_PER_SEC / 20) /* 50 ms of CPU */
		spin++;
	double cpu1 = scrape("process_cpu_seconds_total");
	CU_ASSERT(cpu0 >= 0);
	CU_ASSERT(cpu1 >= cpu0 + 0.03);
	double rss = scrape("process_resident_memory_bytes");
	double vsz = scrape("process_virtual_memory_bytes");
	CU_ASSERT(rss > 100 * 1024);
	CU_ASSERT(vsz >= rss);
	/* touching 8 MiB more raises the resident size by about as much */
	size_t big = 8u << 20;
	volatile char *p = malloc(big); /* volatile: the writes are not optimised away */
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < big; i += 4096)
		p[i] = 1;
	double rss2 = scrape("process_resident_memory_bytes");
	/* the kernel's counter is approximate (per-CPU batches): most of it shows */
	CU_ASSERT(rss2 >= rss + 6.0 * 1024 * 1024);
	free((void *)p);
	double start = scrape("process_start_time_seconds");
	double now = (double)time(NULL);
	CU_ASSERT(start <= now + 1);
	CU_ASSERT(start >= now - 120); /* the test started moments ago (ctest TIMEOUT 120) */

	/* open_fds counts what this process holds, the scrape's own directory fd aside */
	double fds0 = scrape("process_open_fds");
	int fd[3];
	for (int i = 0; i < 3; i++)
		fd[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	double fds1 = scrape("process_open_fds");
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	CU_ASSERT(fds0 >= 3);
	CU_ASSERT_DOUBLE_EQUAL(fds1, fds0 + 3, 0.5);
	struct rlimit rl;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &rl), 0);
	CU_ASSERT_DOUBLE_EQUAL(scrape("process_max_fds"), (double)rl.rlim_cur, 0.5);
	metrics_reset();
}

int main(void)
{
	static const cu_test tests[] = {
		{"counter, gauge and histogram text", test_counter_gauge_histogram},
		{"label escaping and bounds", test_label_escaping},
		{"HELP escaping", test_help_escaping},
		{"label lists cut whole", test_label_cuts},
		{"values keep 15 digits", test_value_digits},
		{"jobrelay_build_info", test_build_info},
		{"/proc/self/stat fields", test_parse_stat},
		{"process_* metrics", test_process_metrics},
		{NULL, NULL},
	};
	return cu_run("metrics", tests);
}
