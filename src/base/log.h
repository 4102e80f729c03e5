/*
 * log.h — structured logs (docs/reference.md, logs).
 *
 * JSON: one Cloud Logging object a line, {"severity","time","message","msgid",
 * "logging.googleapis.com/labels":{...},...fields}. Text: "time LEVEL MSGID
 * message key=value ..." for terminals. Each line is written with a single
 * write(2), so lines from one process never interleave; lines gathered in a
 * batch (log_batch_begin) go out several whole lines to a write(2), at most
 * PIPE_BUF bytes, which a pipe also keeps whole.
 */
#ifndef JR_LOG_H
#define JR_LOG_H

#include <stdint.h>

typedef enum jr_log_level {
	JR_LOG_DEBUG,
	JR_LOG_INFO,
	JR_LOG_WARNING,
	JR_LOG_ERROR,
} jr_log_level;

typedef enum jr_log_format {
	JR_LOG_AUTO,
	JR_LOG_JSON,
	JR_LOG_TEXT,
} jr_log_format;

/* log_setup: where (a file descriptor), which format (AUTO: text on a terminal, else JSON), and the minimum level. */
void log_setup(int fd, jr_log_format fmt, jr_log_level min);
/* log_parse_level / log_parse_format: -1 when unknown. */
int log_parse_level(const char *s);
int log_parse_format(const char *s);
/* log_enabled: 1 when lines of level lv are written. */
int log_enabled(jr_log_level lv);
/* log_label: adds a label to every line (K_SERVICE, K_REVISION...); copies both strings. */
void log_label(const char *key, const char *value);

/*
 * log_set_trace: the Cloud Logging trace of the work the calling thread is
 * doing, written on each of its lines until set again: trace
 * ("projects/P/traces/T") as "logging.googleapis.com/trace", span_id (16 hex
 * digits; NULL or "": none) as "logging.googleapis.com/spanId", sampled
 * (0 or 1) as the boolean "logging.googleapis.com/trace_sampled". NULL or ""
 * trace clears all three. Copied into per-thread buffers (a trace of 160
 * bytes or more, or a span of 17 or more, is dropped); never allocates.
 */
void log_set_trace(const char *trace, const char *span_id, int sampled);

/*
 * log_kv: one line with msgid, a message, and key/value fields given as
 * NULL-terminated pairs of strings: log_kv(INFO, "DISPATCH-OK", "started job",
 * "route", r, "job", j, NULL). A NULL value skips its pair.
 */
void log_kv(jr_log_level lv, const char *msgid, const char *message, ...);

/* log_time_text: Unix ms as RFC 3339 UTC with milliseconds, "2026-11-26T10:00:00.123Z", into out. */
void log_time_text(int64_t unix_ms, char out[32]);

/*
 * log_batch_begin / log_batch_end: between them, the calling thread's DEBUG
 * and INFO lines wait in a per-thread buffer of PIPE_BUF bytes and are
 * written together when it is full, when a WARNING or ERROR line comes (it
 * is written right after them, in order), at exit(), and at every
 * log_batch_end (calls nest; an inner end writes what is held too).
 * loop_run_once brackets the callbacks of each turn with them, so a turn
 * costs one write(2) per 4 KiB of lines instead of one per line. The
 * trade-off: a crash (abort, a fatal signal) loses the DEBUG/INFO lines of
 * the callbacks run in the turn it happens in (at most 4 KiB of them).
 */
void log_batch_begin(void);
void log_batch_end(void);

#endif
