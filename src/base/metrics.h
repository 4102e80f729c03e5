/*
 * metrics.h — Prometheus metrics (docs/reference.md, metrics).
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
 * cap) from NULL-terminated key/value string pairs, escaping values.
 */
void metrics_labels(char *out, size_t cap, ...);

#endif
