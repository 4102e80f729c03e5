#include "config.h"

#include <stdlib.h>
#include <string.h>

void config_defaults(jr_config *c)
{
	memset(c, 0, sizeof *c);
	c->flow_max_messages = 1000;
	c->flow_max_bytes = 100 << 20;
	c->flow_ack_deadline_ms = 60000;
	c->flow_max_extension_ms = 3600000;
	c->concurrency = 64;
	c->unrouted = JR_UNROUTED_DROP;
	policies_default(&c->policies);
	c->breaker = (jr_breaker_conf){
		.window = 20,
		.min_calls = 5,
		.half_open_calls = 1,
		.failure_rate = 0.5,
		.open_for_ms = 30000,
		.max_open_for_ms = 600000,
	};
	c->dedup_ttl_ms = 600000;
	c->dedup_max_entries = 100000;
	c->shutdown_grace_ms = 8000;
	c->call_timeout_ms = 30000;
	c->serve_max_queue_wait_ms = 5000;
	c->read_retry = (jr_read_retry){
		.initial_backoff_ms = 1000,
		.max_backoff_ms = 30000,
		.max_attempts = 10,
		.lookup_attempts = 4,
		.lookup_pages = 50,
	};
	c->repeat = repeat_conf_default();
	c->limits = (jr_limits){
		.event_bytes = 10u << 20,
		.json_depth = 64,
		.attributes = 100,
		.header_bytes = 64u << 10,
		.batch_events = 1000,
		.inflight_bytes = 64u << 20,
		.idle_timeout_ms = 5000,
	};
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void route_free(jr_route *r)
{
	free(r->name);
	for (size_t i = 0; i < r->n_conds; i++) {
		jr_cond *k = &r->conds[i];
		free(k->key);
		free((char *)k->m.exact);
		free((char *)k->m.prefix);
		free((char *)k->m.suffix);
		strv_free(k->m.any_of, k->m.n_any_of);
		free(k->m.any_of_lens);
		json_ptr_free(k->ptr);
	}
	free(r->conds);
	filter_free(r->filters, r->n_filters);
	tmpl_free(r->job);
	free(r->project);
	free(r->region);
	free(r->container);
	for (size_t i = 0; i < r->n_env; i++) {
		free(r->env[i].name);
		tmpl_free(r->env[i].value);
	}
	free(r->env);
	for (size_t i = 0; i < r->n_args; i++)
		tmpl_free(r->args[i]);
	free(r->args);
}

void config_free(jr_config *c)
{
	free(c->path);
	free(c->project);
	free(c->region);
	free(c->subscription);
	free(c->topic);
	free(c->dead_letter_topic);
	free(c->dead_letter_file);
	strv_free(c->auth_audiences, c->n_auth_audiences);
	strv_free(c->auth_allowed_emails, c->n_auth_allowed_emails);
	free(c->auth_jwks_file);
	free(c->auth_jwks_url);
	for (size_t i = 0; i < c->n_routes; i++)
		route_free(&c->routes[i]);
	free(c->routes);
	memset(c, 0, sizeof *c);
}
