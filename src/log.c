#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "mem.h"

#define LOG_MAX_LABELS 8
#define LOG_LINE_MAX (64 * 1024)

static struct {
	int fd;
	jr_log_format fmt;
	jr_log_level min;
	int n_labels;
	char *labels[LOG_MAX_LABELS][2];
} logger = {2, JR_LOG_TEXT, JR_LOG_INFO, 0, {{0}}};

static _Thread_local char cur_trace[160];

void log_set_trace(const char *trace)
{
	size_t n = trace ? strlen(trace) : 0;
	if (n >= sizeof cur_trace)
		n = 0;
	memcpy(cur_trace, trace ? trace : "", n);
	cur_trace[n] = '\0';
}

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void log_setup(int fd, jr_log_format fmt, jr_log_level min)
{
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

static void add_time(jr_buf *b, int text)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char t[40];
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, text ? "%s.%03ldZ" : "\"%s.%06ldZ\"", t,
		   text ? ts.tv_nsec / 1000000 : ts.tv_nsec / 1000);
}

static void json_line(jr_buf *b, jr_log_level lv, const char *msgid, const char *msg, va_list ap)
{
	buf_adds(b, "{\"severity\":\"");
	buf_adds(b, level_names[lv]);
	buf_adds(b, "\",\"time\":");
	add_time(b, 0);
	buf_adds(b, ",\"msgid\":");
	json_write_string(b, msgid, strlen(msgid));
	buf_adds(b, ",\"message\":");
	json_write_string(b, msg, strlen(msg));
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (!v)
			continue;
		buf_addc(b, ',');
		json_write_string(b, k, strlen(k));
		buf_addc(b, ':');
		json_write_string(b, v, strlen(v));
	}
	if (cur_trace[0]) {
		buf_adds(b, ",\"logging.googleapis.com/trace\":");
		json_write_string(b, cur_trace, strlen(cur_trace));
	}
	if (logger.n_labels) {
		buf_adds(b, ",\"logging.googleapis.com/labels\":{");
		for (int i = 0; i < logger.n_labels; i++) {
			if (i)
				buf_addc(b, ',');
			json_write_string(b, logger.labels[i][0], strlen(logger.labels[i][0]));
			buf_addc(b, ':');
			json_write_string(b, logger.labels[i][1], strlen(logger.labels[i][1]));
		}
		buf_addc(b, '}');
	}
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
		buf_printf(b, " trace=%s", cur_trace);
	buf_addc(b, '\n');
}

void log_kv(jr_log_level lv, const char *msgid, const char *message, ...)
{
	if (lv < logger.min)
		return;
	jr_buf b;
	buf_init(&b, LOG_LINE_MAX);
	va_list ap;
	va_start(ap, message);
	if (logger.fmt == JR_LOG_TEXT)
		text_line(&b, lv, msgid, message, ap);
	else
		json_line(&b, lv, msgid, message, ap);
	va_end(ap);
	if (b.len == 0 || b.data[b.len - 1] != '\n') {
		/* over the line limit: say so rather than write half a line */
		buf_reset(&b);
		buf_printf(&b, "{\"severity\":\"%s\",\"msgid\":\"%s\",\"message\":\"log line too long\"}\n",
			   level_names[lv], msgid);
	}
	size_t off = 0;
	while (off < b.len) {
		ssize_t w = write(logger.fd, b.data + off, b.len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	buf_free(&b);
}
