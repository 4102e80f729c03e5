/*
 * route.h — matching events against routes and rendering RunJob requests.
 */
#ifndef JR_ROUTE_H
#define JR_ROUTE_H

#include <stdint.h>

#include "config.h"
#include "event.h"

/*
 * route_prepare: works out once what route_match would otherwise work out for
 * every event (which context attribute a condition reads, the lengths of the
 * strings it compares with, data pointers split into tokens). route_match needs it: the config loader calls
 * it for each route it reads. What it allocates, config_free releases.
 */
void route_prepare(jr_route *r);
/* route_match: 1 when every condition of r holds for ev (an empty match always holds). */
int route_match(const jr_route *r, jr_event *ev);

/*
 * route_payload: the body of ev's Pub/Sub message as route r reads it
 * (r->payload): for an event of type google.cloud.pubsub.topic.v1.
 * messagePublished with message data, the parsed JSON, or with payload: auto
 * a string node of the text when it is not JSON. NULL when r reads no payload
 * or the event carries none; NULL with *err (static or in ev's arena) when the
 * body is not what the route asks for. The body is decoded on the first call
 * for an event, into its arena, and kept there (ev->payload*), so routes and
 * filters share one decoding. The hook for code that reads the payload
 * outside templates and match: (filters).
 */
const jr_json *route_payload(const jr_route *r, jr_event *ev, const char **err);

/* A rendered google.cloud.run.v2.RunJobRequest, independent of protobuf. */
typedef struct jr_runreq {
	char *name;            /* projects/P/locations/L/jobs/J */
	char *container;       /* container_overrides[0].name, or NULL */
	jr_kv *env;            /* route env first, then CE_* and JOBRELAY_* */
	size_t n_env;
	char **args;
	size_t n_args;
	int has_args;          /* 1: send args (possibly empty, clear_args) */
	int task_count;        /* 0: not set */
	int64_t timeout_ms;    /* 0: not set */
	char *key;             /* the dedup key, also in env as JOBRELAY_KEY */
	jr_arena arena;        /* owns every string above */
} jr_runreq;

/*
 * route_render: fills req for ev on route r with config defaults c. Returns
 * 0; or -1 with *err (a new string, caller frees) naming the missing template
 * name, an unresolvable job name (no project or region), or the field over one
 * of the Run API's limits (runlimits_check). req must be freed with
 * runreq_free in both cases.
 */
int route_render(const jr_config *c, const jr_route *r, jr_event *ev, jr_runreq *req,
		 char **err);
/*
 * route_job_check: for a route whose job is literal (no {{...}}), checks at
 * config load what route_render would check per event: a full name is
 * projects/P/locations/L/jobs/J, a job id is valid and a project and region
 * resolve (route, then config). 0, or -1 with *err (a new string, caller
 * frees). A templated job is checked when rendered.
 */
int route_job_check(const jr_config *c, const jr_route *r, char **err);
/* runreq_free: releases what req owns. */
void runreq_free(jr_runreq *req);
/* runreq_job_name: full job name for a route's job template text with defaults (no event): for check-config. New string. */
char *route_job_display(const jr_config *c, const jr_route *r);
/* route_key: the dedup key of (source, id, route) as 16 hex digits into out[17]. */
void route_key(const char *source, const char *id, const char *route, char out[17]);
/* route_key_hash: the same key as a number (FNV-1a 64 of source \0 id \0 route). */
uint64_t route_key_hash(const char *source, const char *id, const char *route);
/* runreq_write_json: the request in the proto3 JSON mapping (the "request" of the --dry-run line). */
int runreq_write_json(jr_buf *out, const jr_runreq *req);

#endif
