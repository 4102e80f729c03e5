/*
 * check_config.c — what `jobrelay check-config` prints of a loaded config:
 * the resolved routes with their effective failure policies, and the
 * breaker, dedup, read-retry and repeat-check settings every route shares;
 * as text, or as one JSON object (--format json).
 */
#include "check_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_load.h"
#include "errclass.h"
#include "filter.h"
#include "jstring.h"
#include "route.h"
#include "template.h"

/* ---- text ---- */

static void print_cond(const jr_cond *cd)
{
	static const char *const where[] = {"", "attributes.", "data", "payload"};
	printf("      %s%s:", where[cd->where], cd->key);
	if (cd->m.exact)
		printf(" exact \"%s\"", cd->m.exact);
	if (cd->m.prefix)
		printf(" prefix \"%s\"", cd->m.prefix);
	if (cd->m.suffix)
		printf(" suffix \"%s\"", cd->m.suffix);
	for (size_t i = 0; i < cd->m.n_any_of; i++)
		printf("%s\"%s\"", i ? ", " : " any_of ", cd->m.any_of[i]);
	printf("\n");
}

static void print_route(const jr_config *c, const jr_route *r)
{
	char *job = route_job_display(c, r);
	printf("route %s\n  job: %s\n", r->name, job);
	free(job);
	printf("  match:%s\n", r->n_conds ? "" : r->n_filters ? " (filters only)" : " every event");
	for (size_t i = 0; i < r->n_conds; i++)
		print_cond(&r->conds[i]);
	if (r->n_filters) {
		jr_buf f;
		buf_init(&f, 0);
		filter_write(&f, r->filters, r->n_filters);
		printf("  filters: %s\n", f.data);
		buf_free(&f);
	}
	for (size_t i = 0; i < r->n_env; i++)
		printf("  env %s = %s\n", r->env[i].name, tmpl_source(r->env[i].value));
	for (size_t i = 0; i < r->n_args; i++)
		printf("  arg %s\n", tmpl_source(r->args[i]));
	if (r->task_count)
		printf("  task_count: %d\n", r->task_count);
	if (r->timeout_ms)
		printf("  timeout: %lldms\n", (long long)r->timeout_ms);
	printf("  ack: %s\n", r->ack == JR_ACK_ON_COMPLETION ? "on_completion" : "on_dispatch");
	if (r->payload.mode != JR_PAYLOAD_NONE)
		printf("  payload: %s\n", r->payload.mode == JR_PAYLOAD_JSON ? "json" : "auto");
}

/*
 * print_policies: the effective failure policy of route r (docs/policies.md):
 * each class's action (retry with attempts and backoff), whether it trips
 * the job's breaker, and the route's rate limit.
 */
static void print_policies(const jr_route *r)
{
	char a[24], b[24];
	printf("  policies:\n");
	for (int k = 0; k < JR_ERR__COUNT; k++) {
		const jr_policy *p = &r->policies.cls[k];
		printf("    %-16s %s", errclass_name((jr_errclass)k), action_name(p->action));
		if (k == JR_ERR_CREDENTIALS)
			printf(" (no token: held, no attempt counted, never dead-lettered)");
		else if (p->action == JR_ACT_RETRY)
			printf(", max_attempts %d, backoff %s -> %s (full jitter)", p->max_attempts,
			       format_duration_ms(p->initial_ms, a, sizeof a),
			       format_duration_ms(p->max_ms, b, sizeof b));
		printf("%s\n", errclass_trips_breaker((jr_errclass)k) ? "; trips breaker" : "");
	}
	if (r->rate_per_second > 0)
		printf("  rate_limit: %g/s, burst %d; halved on RESOURCE_EXHAUSTED (AIMD)\n",
		       r->rate_per_second, r->rate_burst);
	else
		printf("  rate_limit: none; after RESOURCE_EXHAUSTED, half the observed rate (AIMD)\n");
}

/* print_global_policies: the breaker and dedup settings every route shares. */
static void print_global_policies(const jr_config *c)
{
	const jr_breaker_conf *k = &c->breaker;
	char a[24], b[24];
	printf("circuit_breaker (one per job): window %d, min_calls %d, failure_rate %g, "
	       "open_for %s, max_open_for %s, half_open_calls %d\n",
	       k->window, k->min_calls, k->failure_rate,
	       format_duration_ms(k->open_for_ms, a, sizeof a),
	       format_duration_ms(k->max_open_for_ms, b, sizeof b), k->half_open_calls);
	if (c->dedup_ttl_ms > 0)
		printf("dedup (per instance): ttl %s, max_entries %lld\n",
		       format_duration_ms(c->dedup_ttl_ms, a, sizeof a), (long long)c->dedup_max_entries);
	else
		printf("dedup: off (ttl 0)\n");
	const jr_read_retry *rr = &c->read_retry;
	printf("read_retry (reads after RunJob, never a second RunJob): backoff %s -> %s, "
	       "max_attempts %d, lookup_attempts %d, lookup_pages %d\n",
	       format_duration_ms(rr->initial_backoff_ms, a, sizeof a),
	       format_duration_ms(rr->max_backoff_ms, b, sizeof b), rr->max_attempts,
	       rr->lookup_attempts, rr->lookup_pages);
	const jr_repeat_conf *rp = &c->repeat;
	if (rp->mode == JR_REPEAT_ON_REDELIVERY)
		printf("repeat_check: on_redelivery (a Pub/Sub delivery with delivery_attempt > 1, "
		       "published %s or more ago, or after an unanswered RunJob of its key: one "
		       "ListExecutions lookup per route before RunJob)\n",
		       format_duration_ms(rp->min_age_ms, a, sizeof a));
	else if (rp->mode == JR_REPEAT_ALWAYS)
		printf("repeat_check: always (one ListExecutions lookup per route before every "
		       "RunJob; lookback %s without a publish time)\n",
		       format_duration_ms(rp->lookback_ms, a, sizeof a));
	else
		printf("repeat_check: never (no lookup before RunJob)\n");
}


void check_config_text(const jr_config *c, const char *path)
{
	printf("config %s: %zu route%s\n", path, c->n_routes, c->n_routes == 1 ? "" : "s");
	print_global_policies(c);
	for (size_t i = 0; i < c->n_routes; i++) {
		print_route(c, &c->routes[i]);
		print_policies(&c->routes[i]);
	}
}

/* ---- json ---- */

static void jstr(jr_buf *b, const char *s)
{
	if (s)
		jstr_write_text(b, s, strlen(s));
	else
		buf_addlit(b, "null");
}

/* jkey: ,"k": (no comma first) */
static void jkey(jr_buf *b, int *first, const char *k)
{
	if (!*first)
		buf_addc(b, ',');
	*first = 0;
	jstr(b, k);
	buf_addc(b, ':');
}

/* jdur: a duration as the config writes it ("30s"), or null for 0 when zero_null. */
static void jdur(jr_buf *b, int *first, const char *k, int64_t ms, int zero_null)
{
	char t[24];
	jkey(b, first, k);
	jstr(b, ms || !zero_null ? format_duration_ms(ms, t, sizeof t) : NULL);
}

static void jint(jr_buf *b, int *first, const char *k, long long v)
{
	jkey(b, first, k);
	buf_addi(b, v);
}

static void json_cond(jr_buf *b, const jr_cond *cd)
{
	static const char *const where[] = {"context", "attributes", "data", "payload"};
	int f = 1;
	buf_addc(b, '{');
	jkey(b, &f, "where");
	jstr(b, where[cd->where]);
	jkey(b, &f, "key");
	jstr(b, cd->key);
	if (cd->m.exact) {
		jkey(b, &f, "exact");
		jstr(b, cd->m.exact);
	}
	if (cd->m.prefix) {
		jkey(b, &f, "prefix");
		jstr(b, cd->m.prefix);
	}
	if (cd->m.suffix) {
		jkey(b, &f, "suffix");
		jstr(b, cd->m.suffix);
	}
	if (cd->m.n_any_of) {
		jkey(b, &f, "any_of");
		for (size_t i = 0; i < cd->m.n_any_of; i++) {
			buf_addc(b, i ? ',' : '[');
			jstr(b, cd->m.any_of[i]);
		}
		buf_addc(b, ']');
	}
	buf_addc(b, '}');
}

static void json_policies(jr_buf *b, const jr_route *r)
{
	int f = 1;
	buf_addc(b, '{');
	for (int k = 0; k < JR_ERR__COUNT; k++) {
		const jr_policy *p = &r->policies.cls[k];
		int g = 1;
		jkey(b, &f, errclass_name((jr_errclass)k));
		buf_addc(b, '{');
		jkey(b, &g, "action");
		jstr(b, k == JR_ERR_CREDENTIALS ? "hold" : action_name(p->action));
		if (k != JR_ERR_CREDENTIALS && p->action == JR_ACT_RETRY) {
			jint(b, &g, "max_attempts", p->max_attempts);
			jdur(b, &g, "initial_backoff", p->initial_ms, 0);
			jdur(b, &g, "max_backoff", p->max_ms, 0);
		}
		jkey(b, &g, "trips_breaker");
		buf_adds(b, errclass_trips_breaker((jr_errclass)k) ? "true" : "false");
		buf_addc(b, '}');
	}
	buf_addc(b, '}');
}

static void json_route(jr_buf *b, const jr_config *c, const jr_route *r)
{
	int f = 1;
	char *job = route_job_display(c, r);
	buf_addc(b, '{');
	jkey(b, &f, "name");
	jstr(b, r->name);
	jkey(b, &f, "job");
	jstr(b, job);
	free(job);
	jkey(b, &f, "match");
	buf_addc(b, '[');
	for (size_t i = 0; i < r->n_conds; i++) {
		if (i)
			buf_addc(b, ',');
		json_cond(b, &r->conds[i]);
	}
	buf_addc(b, ']');
	jkey(b, &f, "filters");
	if (r->n_filters) {
		jr_buf t;
		buf_init(&t, 0);
		filter_write(&t, r->filters, r->n_filters);
		buf_addc(&t, 0);
		jstr(b, t.data);
		buf_free(&t);
	} else {
		buf_addlit(b, "null");
	}
	jkey(b, &f, "env");
	buf_addc(b, '{');
	for (size_t i = 0; i < r->n_env; i++) {
		int g = i == 0;
		jkey(b, &g, r->env[i].name);
		jstr(b, tmpl_source(r->env[i].value));
	}
	buf_addc(b, '}');
	jkey(b, &f, "args");
	buf_addc(b, '[');
	for (size_t i = 0; i < r->n_args; i++) {
		if (i)
			buf_addc(b, ',');
		jstr(b, tmpl_source(r->args[i]));
	}
	buf_addc(b, ']');
	jint(b, &f, "task_count", r->task_count);
	jdur(b, &f, "timeout", r->timeout_ms, 1);
	jkey(b, &f, "ack");
	jstr(b, r->ack == JR_ACK_ON_COMPLETION ? "on_completion" : "on_dispatch");
	jkey(b, &f, "payload");
	jstr(b, r->payload.mode == JR_PAYLOAD_NONE ? NULL : r->payload.mode == JR_PAYLOAD_JSON ? "json" : "auto");
	jkey(b, &f, "policies");
	json_policies(b, r);
	jkey(b, &f, "rate_limit");
	if (r->rate_per_second > 0)
		buf_printf(b, "{\"per_second\":%g,\"burst\":%d}", r->rate_per_second, r->rate_burst);
	else
		buf_addlit(b, "null");
	buf_addc(b, '}');
}

static void json_shared(jr_buf *b, int *f, const jr_config *c)
{
	const jr_breaker_conf *k = &c->breaker;
	int g = 1;
	jkey(b, f, "circuit_breaker");
	buf_addc(b, '{');
	jint(b, &g, "window", k->window);
	jint(b, &g, "min_calls", k->min_calls);
	jkey(b, &g, "failure_rate");
	buf_printf(b, "%g", k->failure_rate);
	jdur(b, &g, "open_for", k->open_for_ms, 0);
	jdur(b, &g, "max_open_for", k->max_open_for_ms, 0);
	jint(b, &g, "half_open_calls", k->half_open_calls);
	buf_addc(b, '}');
	g = 1;
	jkey(b, f, "dedup");
	buf_addc(b, '{');
	jdur(b, &g, "ttl", c->dedup_ttl_ms, 0);
	jint(b, &g, "max_entries", c->dedup_max_entries);
	buf_addc(b, '}');
	const jr_read_retry *rr = &c->read_retry;
	g = 1;
	jkey(b, f, "read_retry");
	buf_addc(b, '{');
	jdur(b, &g, "initial_backoff", rr->initial_backoff_ms, 0);
	jdur(b, &g, "max_backoff", rr->max_backoff_ms, 0);
	jint(b, &g, "max_attempts", rr->max_attempts);
	jint(b, &g, "lookup_attempts", rr->lookup_attempts);
	jint(b, &g, "lookup_pages", rr->lookup_pages);
	buf_addc(b, '}');
	const jr_repeat_conf *rp = &c->repeat;
	g = 1;
	jkey(b, f, "repeat_check");
	buf_addc(b, '{');
	jkey(b, &g, "mode");
	jstr(b, rp->mode == JR_REPEAT_ON_REDELIVERY ? "on_redelivery" : rp->mode == JR_REPEAT_ALWAYS ? "always" : "never");
	jdur(b, &g, "min_age", rp->min_age_ms, 0);
	jdur(b, &g, "lookback", rp->lookback_ms, 0);
	buf_addc(b, '}');
}

void check_config_json(const jr_config *c, const char *path, jr_buf *b)
{
	int f = 1;
	buf_addc(b, '{');
	jkey(b, &f, "config");
	jstr(b, path);
	jkey(b, &f, "project");
	jstr(b, c->project);
	jkey(b, &f, "region");
	jstr(b, c->region);
	jkey(b, &f, "subscription");
	jstr(b, c->subscription);
	jkey(b, &f, "topic");
	jstr(b, c->topic);
	jint(b, &f, "concurrency", c->concurrency);
	jkey(b, &f, "unrouted");
	jstr(b, c->unrouted == JR_UNROUTED_DEAD_LETTER ? "dead_letter" : "drop");
	jkey(b, &f, "dead_letter");
	buf_addc(b, '{');
	int g = 1;
	jkey(b, &g, "topic");
	jstr(b, c->dead_letter_topic);
	jkey(b, &g, "file");
	jstr(b, c->dead_letter_file);
	buf_addc(b, '}');
	json_shared(b, &f, c);
	jkey(b, &f, "routes");
	buf_addc(b, '[');
	for (size_t i = 0; i < c->n_routes; i++) {
		if (i)
			buf_addc(b, ',');
		json_route(b, c, &c->routes[i]);
	}
	buf_addlit(b, "]}\n");
}
