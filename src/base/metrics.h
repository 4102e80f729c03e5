/*
 * metrics.h — Prometheus metrics (docs/reference.md, metrics; docs/operations.md).
 *
 * A process-wide registry of metric families, each with series keyed by
 * their label text ("route=\"csv\",outcome=\"dispatched\""). Updates come
 * from the loop thread; metrics_write may run on the HTTP server's thread: a
 * mutex guards the registry. Series are few (routes × outcomes), so a series
 * is found by a short linear scan.
 */
#ifndef JR_METRICS_H
#define JR_METRICS_H

#include "mem.h"

typedef struct jr_metric jr_metric;

typedef enum jr_metric_type {
	JR_METRIC_COUNTER,
	JR_METRIC_GAUGE,
	JR_METRIC_HISTOGRAM,
} jr_metric_type;

/*
 * metric_register: the family `name` (created on first call, returned after).
 * Histograms use the given upper bounds (seconds; copied; +Inf is implied).
 */
jr_metric *metric_register(const char *name, jr_metric_type type, const char *help,
			   const double *buckets, int n_buckets);

/* metric_add: counter += v (gauge too). labels may be "" or NULL. */
void metric_add(jr_metric *m, const char *labels, double v);
/* metric_set: gauge = v. */
void metric_set(jr_metric *m, const char *labels, double v);
/* metric_observe: one histogram observation. */
void metric_observe(jr_metric *m, const char *labels, double v);
/* metric_get: the current value of a counter or gauge series (0 when absent); for tests. */
double metric_get(jr_metric *m, const char *labels);

/* metrics_write: every family in the Prometheus text format 0.0.4. */
void metrics_write(jr_buf *out);
/* metrics_reset: drops every family (tests). */
void metrics_reset(void);

/*
 * metrics_labels: writes `key="value"` pairs into out (NUL-terminated, cut at
 * cap) from NULL-terminated key/value string pairs, escaping values (backslash,
 * double quote, newline). What does not fit is cut so the text stays well formed:
 * a value at a character boundary, a pair whose key does not fit left out.
 */
void metrics_labels(char *out, size_t cap, ...);

/*
 * metrics_build_info: sets jobrelay_build_info{version,commit,grpc} to 1 (the
 * version and commit of version.h; grpc_version from the caller, as this layer
 * does not know gRPC). A second call replaces the series.
 */
void metrics_build_info(const char *grpc_version);

/*
 * metrics_write_process: the standard process_* families (cpu_seconds_total,
 * resident_memory_bytes, virtual_memory_bytes, start_time_seconds, open_fds,
 * max_fds), read from /proc/self and getrlimit now. A family whose source cannot
 * be read is left out. Not in the registry: call it after metrics_write.
 */
void metrics_write_process(jr_buf *out);

/* /proc/self/stat, the fields metrics_write_process uses. */
typedef struct jr_proc_stat {
	unsigned long long utime_ticks, stime_ticks; /* fields 14, 15 */
	unsigned long long start_ticks;              /* 22: after boot */
	unsigned long long vsize_bytes;              /* 23 */
	unsigned long long rss_pages;                /* 24 */
} jr_proc_stat;

/* metrics_parse_stat: 0 with out filled from one /proc/PID/stat line, or -1 (for tests). */
int metrics_parse_stat(const char *text, jr_proc_stat *out);

#endif
