/*
 * filter.h — a route's `filters:`: the filter dialects of the CloudEvents
 * Subscriptions API (tests/data/cloudevents-spec/subscriptions/spec.md,
 * 3.2.4.1), as Knative Eventing's Trigger `filters` also use them.
 *
 * exact, prefix and suffix compare attributes (context attributes or
 * extensions, by name) with strings, case-sensitively; an attribute the
 * event lacks fails the filter. all, any and not combine nested filters. sql
 * is a CESQL expression (cesql.h): it passes only when it yields Boolean true
 * without any error. On a route with payload:, extensions also come from the
 * decoded body (event_ext_view: payloadkind for {"kind": ...}).
 *
 * Each filter owns its attributes, nested filters and compiled expression;
 * filter_free releases an array of them. filter_eval allocates nothing.
 */
#ifndef JR_FILTER_H
#define JR_FILTER_H

#include <stddef.h>

#include "cesql.h"
#include "event.h"

#define JR_FILTER_MAX_DEPTH 16 /* nesting of all/any/not, checked at config load */

typedef enum jr_filter_kind {
	JR_FILTER_EXACT,
	JR_FILTER_PREFIX,
	JR_FILTER_SUFFIX,
	JR_FILTER_ALL,
	JR_FILTER_ANY,
	JR_FILTER_NOT,
	JR_FILTER_SQL,
} jr_filter_kind;

typedef struct jr_filter_attr {
	char *name;
	char *value;
	size_t value_len;
	int attr;            /* event_attr_id(name); 0 for an extension */
} jr_filter_attr;

typedef struct jr_filter jr_filter;
struct jr_filter {
	jr_filter_kind kind;
	jr_filter_attr *attrs;  /* EXACT, PREFIX, SUFFIX: every one must hold */
	size_t n_attrs;
	jr_filter *kids;        /* ALL, ANY: the list; NOT: one */
	size_t n_kids;
	cesql_expr *sql;        /* SQL */
};

/* What filter_eval found. */
typedef enum jr_filter_outcome {
	JR_FILTER_ERROR = -1,   /* a CESQL expression met an error: res says which */
	JR_FILTER_FAIL = 0,
	JR_FILTER_PASS = 1,
} jr_filter_outcome;

/*
 * filter_eval: the filters f[0..n) ANDed, left to right, each stopping as
 * soon as its outcome is known (all at the first failure, any at the first
 * pass). A CESQL error is an outcome of its own that no not or any turns into
 * a pass: the first one ends the evaluation, with its result in *res. s is
 * the scratch for CESQL strings. payload, when not NULL, is the body of a
 * route with payload: (route_payload): extensions are then read through
 * event_ext_view, which adds `payload` and `payloadNAME` from it.
 */
jr_filter_outcome filter_eval(const jr_filter *f, size_t n, const jr_event *ev,
			      const jr_json *payload, cesql_scratch *s, cesql_result *res);
/* filter_attr_set: a's name and value (copied) and its attribute number. */
void filter_attr_set(jr_filter_attr *a, const char *name, const char *value);
/* filter_free: releases what f[0..n) own, and f itself; NULL is a no-op. */
void filter_free(jr_filter *f, size_t n);
/* filter_kind_name: "exact", "prefix", "suffix", "all", "any", "not", "sql". */
const char *filter_kind_name(jr_filter_kind k);
/*
 * filter_write: f[0..n) in a normalised form, the list as all(...) when it
 * holds more than one: all(exact(type="x"), not(prefix(source="/a")), sql("...")).
 * -1 when out's max is reached.
 */
int filter_write(jr_buf *out, const jr_filter *f, size_t n);

#endif
