/*
 * config.h — the configuration model of docs/configuration.md, as loaded.
 *
 * src/cmd/config_load.c reads YAML into it; dispatch/ and retry/ only read it. A
 * jr_config owns everything reachable from it; config_free releases it.
 */
#ifndef JR_CONFIG_H
#define JR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "filter.h"
#include "policy.h"
#include "repeat.h"
#include "template.h"

/* A string condition; every part that is set must hold. */
typedef struct jr_strmatch {
	const char *exact;    /* NULL: not set */
	const char *prefix;
	const char *suffix;
	char **any_of;        /* NULL: not set */
	size_t n_any_of;
	/* lengths of the above, set by route_prepare */
	size_t exact_len, prefix_len, suffix_len;
	size_t *any_of_lens;
} jr_strmatch;

typedef enum jr_cond_where {
	JR_COND_ATTR,       /* a context attribute or extension named key (match: type/source/subject/id/... or extensions:) */
	JR_COND_MSG_ATTR,   /* a Pub/Sub message attribute (match.attributes) */
	JR_COND_DATA,       /* a JSON Pointer into the event data (match.data) */
	JR_COND_PAYLOAD,    /* a JSON Pointer into the decoded message body (match.payload) */
} jr_cond_where;

typedef struct jr_cond {
	jr_cond_where where;
	char *key;
	jr_strmatch m;
	int attr;   /* JR_COND_ATTR: event_attr_id(key), or -1 for an extension (route_prepare) */
	jr_json_ptr *ptr; /* JR_COND_DATA: key compiled (route_prepare) */
} jr_cond;

typedef struct jr_env_tmpl {
	char *name;
	jr_tmpl *value;
} jr_env_tmpl;

/*
 * payload: how a route reads the body of a plain Pub/Sub message (events of
 * type google.cloud.pubsub.topic.v1.messagePublished): not at all, as JSON
 * (a body that does not parse is an invalid event), or auto (JSON when it
 * parses, else the text as a string). dispatch/ cannot reach the JSON parser
 * (src/decode/jsonparse.h), so the loader hands it over with its depth limit.
 */
typedef enum jr_payload_mode {
	JR_PAYLOAD_NONE = 0,
	JR_PAYLOAD_JSON,
	JR_PAYLOAD_AUTO,
} jr_payload_mode;

typedef jr_json *(*jr_json_parse_fn)(jr_arena *a, const char *text, size_t len, int max_depth,
				     char *err, size_t errlen);

typedef struct jr_payload_conf {
	jr_payload_mode mode;
	jr_json_parse_fn parse; /* jsonparse; set by the loader when mode is not NONE */
	int max_depth;          /* limits.json_depth */
} jr_payload_conf;

typedef enum jr_ack_mode {
	JR_ACK_ON_DISPATCH = 0,
	JR_ACK_ON_COMPLETION,
} jr_ack_mode;

typedef struct jr_route {
	char *name;
	jr_cond *conds;
	size_t n_conds;
	jr_filter *filters;    /* filters: (Subscriptions API dialects), ANDed with conds */
	size_t n_filters;
	jr_tmpl *job;          /* job id or full name, may hold {{...}} */
	char *project;         /* NULL: config default */
	char *region;          /* NULL: config default */
	char *container;       /* overrides.container_name, NULL if unset */
	jr_env_tmpl *env;
	size_t n_env;
	jr_tmpl **args;
	size_t n_args;
	int has_args;          /* args: [] clears the job's args; absent keeps them */
	int task_count;        /* 0: not set */
	int64_t timeout_ms;    /* 0: not set */
	jr_policies policies;  /* global policies with the route's overrides applied */
	jr_ack_mode ack;
	double rate_per_second; /* 0: no limit */
	int rate_burst;
	int line;               /* line of the route in the config file */
	jr_payload_conf payload; /* payload: (route_payload) */
} jr_route;

typedef enum jr_unrouted {
	JR_UNROUTED_DROP = 0,
	JR_UNROUTED_DEAD_LETTER,
} jr_unrouted;

/* auth.mode: where the push token's signature is checked (docs/auth.md) */
typedef enum jr_auth_mode {
	JR_AUTH_VERIFY = 0,       /* jobrelay verifies it against the JWKS (default) */
	JR_AUTH_CLOUD_RUN_IAM,    /* Cloud Run's IAM check did; only the claims are checked */
} jr_auth_mode;

typedef struct jr_limits {
	size_t event_bytes;     /* default 10 MiB */
	int json_depth;         /* default 64 */
	int attributes;         /* default 100 */
	size_t header_bytes;    /* default 64 KiB */
	int batch_events;       /* events in one batch request; default 1000 */
	size_t inflight_bytes;  /* serve: request bodies and decoded events held at once; default 64 MiB */
	int64_t idle_timeout_ms; /* serve: a kept-alive connection's wait for its next request; default 5 s */
} jr_limits;

/*
 * Reads of an execution after its RunJob returned (docs/jobs.md): a failed
 * GetExecution or ListExecutions is retried as a read, never as a RunJob.
 */
typedef struct jr_read_retry {
	int64_t initial_backoff_ms; /* first retry of a failed read, default 1 s */
	int64_t max_backoff_ms;     /* the backoff doubles up to this, default 30 s */
	int max_attempts;           /* follow: failed reads in a row before "unconfirmed", default 10 */
	int lookup_attempts;        /* ambiguous RunJob: ListExecutions lookups at most, default 4 */
	int lookup_pages;           /* ListExecutions pages (of 100) one lookup reads at most, default 50 */
} jr_read_retry;

typedef struct jr_config {
	char *path;               /* file it was loaded from */
	char *project;            /* NULL: $GOOGLE_CLOUD_PROJECT at load, else unset */
	char *region;
	char *subscription;
	char *topic;
	int flow_max_messages;    /* default 1000 */
	int64_t flow_max_bytes;   /* default 100 MiB */
	int64_t flow_ack_deadline_ms;  /* pull: each lease, default 60 s (10 s..600 s) */
	int64_t flow_max_extension_ms; /* pull: leases end after this long, default 60 min */
	int concurrency;          /* default 64 */
	jr_unrouted unrouted;
	char *dead_letter_topic;
	char *dead_letter_file;
	jr_policies policies;
	jr_breaker_conf breaker;
	int64_t dedup_ttl_ms;
	int64_t dedup_max_entries;
	int64_t shutdown_grace_ms; /* default 8 s */
	int64_t call_timeout_ms;   /* RunJob deadline, default 30 s */
	int64_t serve_max_queue_wait_ms; /* serve: longest expected wait for a call slot, default 5 s */
	jr_read_retry read_retry;
	jr_repeat_conf repeat;    /* repeat_check: look before RunJob for a suspected repeat */
	jr_limits limits;
	/* auth (serve) */
	jr_auth_mode auth_mode;
	char **auth_audiences;    /* auth.audience: one string or a list */
	size_t n_auth_audiences;
	char **auth_allowed_emails;
	size_t n_auth_allowed_emails;
	char *auth_jwks_file;
	char *auth_jwks_url;
	jr_route *routes;
	size_t n_routes;
} jr_config;

/* config_defaults: fills c with the defaults of docs/configuration.md (no routes). */
void config_defaults(jr_config *c);
/* config_free: releases everything c owns (not c itself). */
void config_free(jr_config *c);

#endif
