/*
 * log.c — structured log lines, one write(2) each, or a batch of whole
 * lines per write(2) inside log_batch_begin/end.
 *
 * Cost per line (the pull benchmark writes one INFO line per message): the
 * line is formatted into a per-thread buffer kept between lines (no
 * allocation); the "YYYY-MM-DDTHH:MM:SS" part of the time is formatted once
 * a second per thread (gmtime_r+strftime), the fraction by hand. Outside a
 * batch each line is one write(2). Inside one (the loop's callbacks), DEBUG
 * and INFO lines are copied into a per-thread buffer of PIPE_BUF bytes and
 * written when it fills or the batch ends; WARNING and ERROR lines flush it
 * and go out at once, so the lines that explain a failure are never held.
 * Rejected: one buffer for the process (a lock per line, and lines of other
 * threads held back), and a writer thread (a crash would lose more).
 */
#include "log.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jstring.h"
#include "mem.h"
#include "utf8.h"

#define LOG_MAX_LABELS 8
#define LOG_LINE_MAX (64 * 1024)
#define LOG_VALUE_MAX (16 * 1024) /* a longer value is cut (JSON lines) */

static struct {
	int fd;
	jr_log_format fmt;
	jr_log_level min;
	int n_labels;
	char *labels[LOG_MAX_LABELS][2];
} logger = {2, JR_LOG_TEXT, JR_LOG_INFO, 0, {{0}}};

static _Thread_local char cur_trace[160];
static _Thread_local char cur_span[17];
static _Thread_local int cur_sampled;

/* A thread's buffers; freed by a thread-exit destructor (main's at exit). */
#define LOG_BATCH PIPE_BUF
#define LOG_KEEP (16 * 1024) /* a line buffer grown past this is freed after its line */
static _Thread_local struct {
	int depth;      /* log_batch_begin nesting */
	size_t len;     /* bytes of whole lines in data */
	char *data;     /* LOG_BATCH bytes, allocated at the thread's first batch */
	int armed;      /* the destructor is registered for this thread */
	jr_buf line;    /* the line being formatted */
	time_t sec;     /* the second whose text is in sec_txt */
	size_t sec_len;
	char sec_txt[32];
} tl;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void write_all(const char *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(logger.fd, p + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static void batch_flush(void)
{
	if (tl.len)
		write_all(tl.data, tl.len);
	tl.len = 0;
}

static void tl_drop(void *unused)
{
	(void)unused;
	batch_flush();
	free(tl.data);
	tl.data = NULL;
	tl.depth = 0;
	buf_free(&tl.line);
	tl.armed = 0;
}

static void tl_key_init(void)
{
	if (pthread_key_create(&tl_key, tl_drop) != 0)
		abort();
	atexit(batch_flush); /* the lines of the thread calling exit() */
}

static void tl_arm(void)
{
	if (tl.armed)
		return;
	pthread_once(&tl_once, tl_key_init);
	pthread_setspecific(tl_key, &tl);
	tl.armed = 1;
}

void log_batch_begin(void)
{
	if (!tl.data) {
		tl_arm();
		tl.data = jr_malloc(LOG_BATCH);
	}
	tl.depth++;
}

void log_batch_end(void)
{
	if (tl.depth > 0)
		tl.depth--;
	batch_flush();
}

/* emit: one whole line, batched or written now. */
static void emit(jr_log_level lv, const char *p, size_t n)
{
	if (tl.depth > 0 && lv < JR_LOG_WARNING && n <= LOG_BATCH) {
		if (tl.len + n > LOG_BATCH)
			batch_flush();
		memcpy(tl.data + tl.len, p, n);
		tl.len += n;
		return;
	}
	batch_flush();
	write_all(p, n);
}

/* keep: s copied into dst[cap], or "" when s is NULL or does not fit. */
static void keep(char *dst, size_t cap, const char *s)
{
	size_t n = s ? strnlen(s, cap) : 0;
	if (n >= cap)
		n = 0;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
}

void log_set_trace(const char *trace, const char *span_id, int sampled)
{
	keep(cur_trace, sizeof cur_trace, trace);
	keep(cur_span, sizeof cur_span, cur_trace[0] ? span_id : NULL);
	cur_sampled = cur_trace[0] && sampled;
}

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void log_setup(int fd, jr_log_format fmt, jr_log_level min)
{
	batch_flush();
	logger.fd = fd;
	if (fmt == JR_LOG_AUTO)
		fmt = isatty(fd) ? JR_LOG_TEXT : JR_LOG_JSON;
	logger.fmt = fmt;
	logger.min = min;
}

int log_parse_level(const char *s)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return JR_LOG_WARNING;
	return -1;
}

int log_parse_format(const char *s)
{
	if (strcmp(s, "json") == 0)
		return JR_LOG_JSON;
	if (strcmp(s, "text") == 0)
		return JR_LOG_TEXT;
	if (strcmp(s, "auto") == 0)
		return JR_LOG_AUTO;
	return -1;
}

int log_enabled(jr_log_level lv)
{
	return lv >= logger.min;
}

void log_label(const char *key, const char *value)
{
	for (int i = 0; i < logger.n_labels; i++)
		if (strcmp(logger.labels[i][0], key) == 0) {
			free(logger.labels[i][1]);
			logger.labels[i][1] = jr_strdup(value);
			return;
		}
	if (logger.n_labels == LOG_MAX_LABELS)
		return;
	logger.labels[logger.n_labels][0] = jr_strdup(key);
	logger.labels[logger.n_labels][1] = jr_strdup(value);
	logger.n_labels++;
}

void log_time_text(int64_t unix_ms, char out[32])
{
	time_t s = (time_t)(unix_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(unix_ms % 1000));
}

/* add_time: "2026-11-26T07:40:01.123Z" (text) or "\"...01.123456Z\"" (JSON). */
static void add_time(jr_buf *b, int text)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != tl.sec || tl.sec_len == 0) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		tl.sec_len = strftime(tl.sec_txt, sizeof tl.sec_txt, "%Y-%m-%dT%H:%M:%S", &tm);
		tl.sec = ts.tv_sec;
	}
	int digits = text ? 3 : 6;
	long v = text ? ts.tv_nsec / 1000000 : ts.tv_nsec / 1000;
	char frac[10];
	frac[0] = '.';
	for (int i = digits; i >= 1; i--, v /= 10)
		frac[i] = (char)('0' + v % 10);
	frac[digits + 1] = 'Z';
	frac[digits + 2] = '"';
	if (!text)
		buf_addc(b, '"');
	buf_add(b, tl.sec_txt, tl.sec_len);
	buf_add(b, frac, (size_t)digits + (text ? 2 : 3));
}

/*
 * add_value: v as a JSON string, cut on a character boundary after
 * LOG_VALUE_MAX bytes (the cut says how long v was); bytes that are not UTF-8
 * are written as U+FFFD, so the line stays valid JSON whatever v holds.
 */
static int add_value(jr_buf *b, const char *v)
{
	size_t n = strlen(v);
	if (n <= LOG_VALUE_MAX)
		return jstr_write_text(b, v, n);
	size_t start = b->len, k = utf8_cut(v, n, LOG_VALUE_MAX);
	if (jstr_write_text(b, v, k) < 0)
		return -1;
	b->len--; /* reopen the string for the note */
	if (buf_printf(b, "...(cut, %zu bytes)\"", n) < 0) {
		b->len = start;
		return -1;
	}
	return 0;
}

/* add_member: ,"k":"v", or nothing at all when it does not fit in the line. */
static void add_member(jr_buf *b, const char *k, const char *v)
{
	size_t start = b->len;
	if (buf_addc(b, ',') < 0 || jstr_write_text(b, k, strlen(k)) < 0 || buf_addc(b, ':') < 0 ||
	    add_value(b, v) < 0)
		b->len = start;
}

/* add_trace: the thread's trace, span and sampled flag (log_set_trace), when it has a trace. */
static void add_trace(jr_buf *b)
{
	if (!cur_trace[0])
		return;
	add_member(b, "logging.googleapis.com/trace", cur_trace);
	if (cur_span[0])
		add_member(b, "logging.googleapis.com/spanId", cur_span);
	size_t start = b->len;
	if (buf_adds(b, cur_sampled ? ",\"logging.googleapis.com/trace_sampled\":true"
				   : ",\"logging.googleapis.com/trace_sampled\":false") < 0)
		b->len = start;
}

static void json_line(jr_buf *b, jr_log_level lv, const char *msgid, const char *msg, va_list ap)
{
	b->max = LOG_LINE_MAX - 2; /* room for the closing "}\n" is kept */
	buf_adds(b, "{\"severity\":\"");
	buf_adds(b, level_names[lv]);
	buf_adds(b, "\",\"time\":");
	add_time(b, 0);
	add_member(b, "msgid", msgid);
	add_member(b, "message", msg);
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (v)
			add_member(b, k, v);
	}
	add_trace(b);
	if (logger.n_labels) {
		size_t start = b->len;
		int bad = buf_adds(b, ",\"logging.googleapis.com/labels\":{") < 0;
		for (int i = 0; i < logger.n_labels; i++) {
			if (i)
				bad |= buf_addc(b, ',') < 0;
			bad |= jstr_write_text(b, logger.labels[i][0], strlen(logger.labels[i][0])) < 0;
			bad |= buf_addc(b, ':') < 0;
			bad |= jstr_write_text(b, logger.labels[i][1], strlen(logger.labels[i][1])) < 0;
		}
		if (bad || buf_addc(b, '}') < 0)
			b->len = start;
	}
	b->max = LOG_LINE_MAX;
	buf_adds(b, "}\n");
}

static void text_line(jr_buf *b, jr_log_level lv, const char *msgid, const char *msg, va_list ap)
{
	add_time(b, 1);
	buf_printf(b, " %-7s %s %s", level_names[lv], msgid, msg);
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (!v)
			continue;
		int quote = strpbrk(v, " \t\"=") != NULL || *v == '\0';
		buf_printf(b, quote ? " %s=\"%s\"" : " %s=%s", k, v);
	}
	if (cur_trace[0])
		buf_printf(b, " trace=%s%s%s sampled=%s", cur_trace, cur_span[0] ? " span=" : "",
			   cur_span, cur_sampled ? "true" : "false");
	buf_addc(b, '\n');
}

void log_kv(jr_log_level lv, const char *msgid, const char *message, ...)
{
	if (lv < logger.min)
		return;
	jr_buf *b = &tl.line;
	if (!b->data)
		tl_arm();
	b->max = LOG_LINE_MAX;
	buf_reset(b);
	va_list ap;
	va_start(ap, message);
	if (logger.fmt == JR_LOG_TEXT)
		text_line(b, lv, msgid, message, ap);
	else
		json_line(b, lv, msgid, message, ap);
	va_end(ap);
	if (b->len == 0 || b->data[b->len - 1] != '\n') {
		/* over the line limit: say so rather than write half a line */
		buf_reset(b);
		buf_printf(b, "{\"severity\":\"%s\",\"msgid\":\"%s\",\"message\":\"log line too long\"}\n",
			   level_names[lv], msgid);
	}
	emit(lv, b->data, b->len);
	if (b->cap > LOG_KEEP)
		buf_free(b);
}
