#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		buf_printf(out, " %.9g\n", v);
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

void metrics_write(jr_buf *out)
{
	pthread_mutex_lock(&mu);
	for (const jr_metric *m = families; m; m = m->next) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
			   type_name(m->type));
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
		int w = snprintf(out + n, cap - n, "%s%s=\"", n ? "," : "", k);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
		for (; *v && n + 3 < cap; v++) {
			if (*v == '\\' || *v == '"') {
				out[n++] = '\\';
				out[n++] = *v;
			} else if (*v == '\n') {
				out[n++] = '\\';
				out[n++] = 'n';
			} else {
				out[n++] = *v;
			}
		}
		if (n + 2 > cap)
			break;
		out[n++] = '"';
		out[n] = '\0';
	}
	va_end(ap);
}
