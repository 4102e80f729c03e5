/*
 * metrics.c — the metrics registry and its Prometheus text exposition (format 0.0.4):
 * jobrelay's families, the standard process_* families read from /proc/self at scrape
 * time, and jobrelay_build_info. HELP text and label values are escaped as the format
 * says (HELP: backslash and newline; label values: also the double quote).
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "version.h"

#define MAX_BUCKETS 16

typedef struct series {
	char *labels;
	double value;                    /* counter/gauge; histogram: sum */
	unsigned long count;             /* histogram */
	unsigned long buckets[MAX_BUCKETS];
	struct series *next;
} series;

struct jr_metric {
	char *name, *help;
	jr_metric_type type;
	double bounds[MAX_BUCKETS];
	int n_bounds;
	series *head;
	jr_metric *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static jr_metric *families;

jr_metric *metric_register(const char *name, jr_metric_type type, const char *help,
			   const double *buckets, int n_buckets)
{
	pthread_mutex_lock(&mu);
	jr_metric *m = families;
	while (m && strcmp(m->name, name) != 0)
		m = m->next;
	if (!m) {
		m = jr_calloc(1, sizeof *m);
		m->name = jr_strdup(name);
		m->help = jr_strdup(help);
		m->type = type;
		if (n_buckets > MAX_BUCKETS)
			n_buckets = MAX_BUCKETS;
		for (int i = 0; i < n_buckets; i++)
			m->bounds[i] = buckets[i];
		m->n_bounds = n_buckets;
		/* append, so families print in registration order */
		jr_metric **pp = &families;
		while (*pp)
			pp = &(*pp)->next;
		*pp = m;
	}
	pthread_mutex_unlock(&mu);
	return m;
}

/* find: the series for labels, created at zero; the caller holds mu. */
static series *find(jr_metric *m, const char *labels)
{
	if (!labels)
		labels = "";
	series *s = m->head;
	for (; s; s = s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	s = jr_calloc(1, sizeof *s);
	s->labels = jr_strdup(labels);
	series **pp = &m->head;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	return s;
}

void metric_add(jr_metric *m, const char *labels, double v)
{
	pthread_mutex_lock(&mu);
	find(m, labels)->value += v;
	pthread_mutex_unlock(&mu);
}

void metric_set(jr_metric *m, const char *labels, double v)
{
	pthread_mutex_lock(&mu);
	find(m, labels)->value = v;
	pthread_mutex_unlock(&mu);
}

void metric_observe(jr_metric *m, const char *labels, double v)
{
	pthread_mutex_lock(&mu);
	series *s = find(m, labels);
	s->value += v;
	s->count++;
	for (int i = 0; i < m->n_bounds; i++)
		if (v <= m->bounds[i])
			s->buckets[i]++;
	pthread_mutex_unlock(&mu);
}

double metric_get(jr_metric *m, const char *labels)
{
	pthread_mutex_lock(&mu);
	double v = 0;
	for (series *s = m->head; s; s = s->next)
		if (strcmp(s->labels, labels ? labels : "") == 0)
			v = s->value;
	pthread_mutex_unlock(&mu);
	return v;
}

static const char *type_name(jr_metric_type t)
{
	return t == JR_METRIC_COUNTER ? "counter" : t == JR_METRIC_GAUGE ? "gauge" : "histogram";
}

/* write_name: name{labels[,extra]} */
static void write_name(jr_buf *out, const char *name, const char *suffix, const char *labels,
		       const char *extra)
{
	buf_adds(out, name);
	buf_adds(out, suffix);
	int has = labels && *labels;
	if (!has && !extra)
		return;
	buf_addc(out, '{');
	if (has)
		buf_adds(out, labels);
	if (extra) {
		if (has)
			buf_addc(out, ',');
		buf_adds(out, extra);
	}
	buf_addc(out, '}');
}

static void write_value(jr_buf *out, double v)
{
	if (isinf(v))
		buf_adds(out, v > 0 ? " +Inf\n" : " -Inf\n");
	else if (v == floor(v) && fabs(v) < 1e15)
		buf_printf(out, " %.0f\n", v);
	else
		buf_printf(out, " %.15g\n", v); /* 15 digits: a start time keeps its fraction */
}

static void write_histogram(jr_buf *out, const jr_metric *m, const series *s)
{
	char le[48];
	for (int i = 0; i < m->n_bounds; i++) {
		snprintf(le, sizeof le, "le=\"%g\"", m->bounds[i]);
		write_name(out, m->name, "_bucket", s->labels, le);
		write_value(out, (double)s->buckets[i]);
	}
	write_name(out, m->name, "_bucket", s->labels, "le=\"+Inf\"");
	write_value(out, (double)s->count);
	write_name(out, m->name, "_sum", s->labels, NULL);
	write_value(out, s->value);
	write_name(out, m->name, "_count", s->labels, NULL);
	write_value(out, (double)s->count);
}

/* write_header: # HELP (backslash and newline escaped) and # TYPE of one family. */
static void write_header(jr_buf *out, const char *name, const char *help, jr_metric_type type)
{
	buf_printf(out, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			buf_adds(out, "\\\\");
		else if (*p == '\n')
			buf_adds(out, "\\n");
		else
			buf_addc(out, *p);
	}
	buf_printf(out, "\n# TYPE %s %s\n", name, type_name(type));
}

void metrics_write(jr_buf *out)
{
	pthread_mutex_lock(&mu);
	for (const jr_metric *m = families; m; m = m->next) {
		write_header(out, m->name, m->help, m->type);
		for (const series *s = m->head; s; s = s->next) {
			if (m->type == JR_METRIC_HISTOGRAM) {
				write_histogram(out, m, s);
			} else {
				write_name(out, m->name, "", s->labels, NULL);
				write_value(out, s->value);
			}
		}
	}
	pthread_mutex_unlock(&mu);
}

void metrics_reset(void)
{
	pthread_mutex_lock(&mu);
	while (families) {
		jr_metric *m = families;
		families = m->next;
		while (m->head) {
			series *s = m->head;
			m->head = s->next;
			free(s->labels);
			free(s);
		}
		free(m->name);
		free(m->help);
		free(m);
	}
	pthread_mutex_unlock(&mu);
}

/* utf8_len: the length of the UTF-8 sequence lead byte c starts (1 for anything else). */
static size_t utf8_len(unsigned char c)
{
	return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
}

/*
 * A pair that does not fit whole is cut: its value at a character boundary, and a
 * key that does not fit drops the pair; either way the text stays well formed.
 */
void metrics_labels(char *out, size_t cap, ...)
{
	va_list ap;
	size_t n = 0;
	const char *k;
	if (!cap)
		return;
	out[0] = '\0';
	va_start(ap, cap);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (!v)
			v = "";
		size_t start = n;
		int w = snprintf(out + n, cap - n, "%s%s=\"", n ? "," : "", k);
		if (w < 0 || (size_t)w + 2 > cap - n) { /* the key, the closing quote and NUL */
			out[start] = '\0';
			break;
		}
		n += (size_t)w;
		while (*v) {
			/* one character: an escape, or a whole UTF-8 sequence */
			int esc = *v == '\\' || *v == '"' || *v == '\n';
			size_t len = esc ? 2 : utf8_len((unsigned char)*v);
			if (n + len + 2 > cap)
				break;
			if (esc) {
				out[n++] = '\\';
				out[n++] = *v == '\n' ? 'n' : *v;
				v++;
				continue;
			}
			/* the lead byte, then continuation bytes only: a quote, backslash or
			 * newline inside a broken sequence is escaped on the next turn */
			size_t i = 1;
			out[n] = v[0];
			for (; i < len && ((unsigned char)v[i] & 0xC0) == 0x80; i++)
				out[n + i] = v[i];
			n += i;
			v += i;
		}
		out[n++] = '"';
		out[n] = '\0';
	}
	va_end(ap);
}

/* ---- process_* (read at scrape time) and jobrelay_build_info ---- */

void metrics_build_info(const char *grpc_version)
{
	char l[256];
	metrics_labels(l, sizeof l, "version", JR_VERSION, "commit", JR_GIT_COMMIT, "grpc",
		       grpc_version ? grpc_version : "", NULL);
	jr_metric *m = metric_register("jobrelay_build_info", JR_METRIC_GAUGE,
				       "jobrelay's version, git commit and gRPC core version; "
				       "always 1.",
				       NULL, 0);
	pthread_mutex_lock(&mu);
	while (m->head) { /* one series: a second call replaces the first */
		series *x = m->head;
		m->head = x->next;
		free(x->labels);
		free(x);
	}
	find(m, l)->value = 1;
	pthread_mutex_unlock(&mu);
}

int metrics_parse_stat(const char *text, jr_proc_stat *out)
{
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
	const char *p = strrchr(text, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long f[25] = { 0 };
	for (int field = 3; field <= 24; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 3) { /* state: one letter */
			while (*p && *p != ' ')
				p++;
			continue;
		}
		char *end;
		f[field] = strtoull(p, &end, 10);
		if (end == p || (*end && *end != ' ' && *end != '\n'))
			return -1;
		p = end;
	}
	out->utime_ticks = f[14];
	out->stime_ticks = f[15];
	out->start_ticks = f[22];
	out->vsize_bytes = f[23];
	out->rss_pages = f[24];
	return 0;
}

/* read_small: path's first cap-1 bytes, NUL-terminated; the length, or -1. */
static long read_small(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		return -1;
	buf[n] = '\0';
	return (long)n;
}

/* boot_time: /proc/stat's btime (seconds since the epoch), read once; 0 when unknown. */
static unsigned long long btime;
static pthread_once_t btime_once = PTHREAD_ONCE_INIT;

static void read_btime(void)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f) {
		/* hidden (systemd's ProcSubset=pid): the wall clock less the time since boot */
		struct timespec rt, bt;
		if (clock_gettime(CLOCK_REALTIME, &rt) == 0 && clock_gettime(CLOCK_BOOTTIME, &bt) == 0 &&
		    rt.tv_sec > bt.tv_sec)
			btime = (unsigned long long)(rt.tv_sec - bt.tv_sec);
		return;
	}
	char line[256];
	int at_start = 1; /* a line longer than the buffer comes in pieces */
	while (fgets(line, sizeof line, f)) {
		if (at_start && strncmp(line, "btime ", 6) == 0) {
			btime = strtoull(line + 6, NULL, 10);
			break;
		}
		at_start = strchr(line, '\n') != NULL;
	}
	fclose(f);
}

/* open_fds: the entries of /proc/self/fd but the one reading it; -1 when unreadable. */
static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (atoi(e->d_name) != self)
			n++;
	}
	closedir(d);
	return n;
}

static void write_one(jr_buf *out, const char *name, jr_metric_type type, const char *help,
		      double v)
{
	write_header(out, name, help, type);
	buf_adds(out, name);
	write_value(out, v);
}

void metrics_write_process(jr_buf *out)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char text[1024];
	jr_proc_stat st;
	if (tck > 0 && page > 0 && read_small("/proc/self/stat", text, sizeof text) > 0 &&
	    metrics_parse_stat(text, &st) == 0) {
		write_one(out, "process_cpu_seconds_total", JR_METRIC_COUNTER,
			  "Total user and system CPU time spent in seconds.",
			  (double)(st.utime_ticks + st.stime_ticks) / (double)tck);
		write_one(out, "process_resident_memory_bytes", JR_METRIC_GAUGE,
			  "Resident memory size in bytes.", (double)st.rss_pages * (double)page);
		write_one(out, "process_virtual_memory_bytes", JR_METRIC_GAUGE,
			  "Virtual memory size in bytes.", (double)st.vsize_bytes);
		pthread_once(&btime_once, read_btime);
		if (btime)
			write_one(out, "process_start_time_seconds", JR_METRIC_GAUGE,
				  "Start time of the process since unix epoch in seconds.",
				  (double)btime + (double)st.start_ticks / (double)tck);
	}
	long fds = open_fds();
	if (fds >= 0)
		write_one(out, "process_open_fds", JR_METRIC_GAUGE, "Number of open file descriptors.",
			  (double)fds);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		write_one(out, "process_max_fds", JR_METRIC_GAUGE,
			  "Maximum number of open file descriptors.", (double)rl.rlim_cur);
}
