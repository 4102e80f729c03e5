/* Prometheus text output of the metrics registry. */
#include <string.h>

#include "cu.h"
#include "metrics.h"

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
}

int main(void)
{
	static const cu_test tests[] = {
		{"counter, gauge and histogram text", test_counter_gauge_histogram},
		{"label escaping and bounds", test_label_escaping},
		{NULL, NULL},
	};
	return cu_run("metrics", tests);
}
