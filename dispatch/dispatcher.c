/*
 * dispatcher.c — a delivery is one event on its way through its routes.
 *
 * submit makes a task of every matching route, and each task is rendered
 * into its RunJob request and sent through the runner when a call slot is
 * free (it waits in a queue, unrendered, while `concurrency` calls are in
 * flight: a waiting task costs its small struct, not a request).
 * A task ends dispatched, dropped, to be retried, or dead-lettered; when the
 * last task of a delivery ends, the delivery's outcome goes to the source.
 * Dead-letter writes may complete later (a Pub/Sub sink); a task waits for
 * its sink before it counts as ended, so DONE always means durable.
 *
 * A task owns its key (route_key_hash) from submit until it ends: a second
 * delivery of the same event and route meanwhile (a redelivery whose first
 * delivery is still queued, sent or followed) parks its task on the owner
 * and sends nothing (one a key; a further one is held at once). When the
 * owner ends, the parked task is a duplicate when the owner started the job;
 * otherwise it is held for WAITER_RETRY_MS, so it never skips a retry's delay
 * or is answered before the owner's dead letter is durable.
 */
#include "dispatcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "breaker.h"
#include "deadletter.h"
#include "dedup.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "repeat.h"
#include "route.h"
#include "smap.h"
#include "trace.h"

#define BREAKERS_MAX 1024 /* jobs with a breaker; the least recently used idle one goes past it */
#define HOLDS_TTL_MS 3600000 /* how long the holds of an event are remembered */
#define HOLDS_MAX 100000      /* events whose holds are remembered; the oldest go first */
#define CREDS_HOLD_MIN_MS 1000 /* an event held for want of a token waits at least this long */
#define WAITER_RETRY_MS 1000   /* a delivery of an event in flight elsewhere is tried again after this */
#define LATENCY_WEIGHT 8      /* a RunJob latency enters the moving average with weight 1/8 */
#define UNSURE_TTL_MS 3600000 /* how long a key whose RunJob went unanswered is suspected */
#define UNSURE_MAX 100000     /* keys so remembered; the oldest go first */

typedef struct delivery delivery;
typedef struct job_breaker job_breaker;

/* A task's phase changes only through task_set_phase. */
typedef enum task_phase {
	TASK_CALL,      /* RunJob sent (or about to be) */
	TASK_FIND,      /* an ambiguous failure: runner.find looks for its execution */
	TASK_FOLLOW,    /* ack: on_completion: runner.follow waits for the execution */
	TASK_LOOKUP,    /* a suspected repeat: runner.find looks for its execution before RunJob */
	TASK__PHASES,
} task_phase;

static const char *const phase_names[] = {"CALL", "FIND", "FOLLOW", "LOOKUP"};
_Static_assert(sizeof phase_names / sizeof phase_names[0] == TASK__PHASES,
	       "phase_names names every task_phase");

typedef struct task {
	smap_ent own;      /* in d->keys while it owns its key (h: the key, key: "") */
	delivery *dv;
	size_t ri;
	jr_runreq req;
	task_phase phase;  /* TASK_CALL when made (calloc); then only task_set_phase */
	int64_t sent_ms;   /* wall clock when RunJob was sent */
	int64_t look_ms;   /* wall clock when its lookup before RunJob began */
	uint64_t key;      /* route_key_hash: the dedup key */
	job_breaker *brk;          /* the job's breaker while the call counts for it */
	uint32_t ticket;
	char *execution;   /* TASK_FOLLOW: the execution RunJob started (NULL if unnamed) */
	/* TASK_FIND: the failure that stands when no execution is found */
	int fail_code;
	int64_t fail_hint_ms;
	char *fail_msg;
	int looked;        /* the lookup before RunJob was made, or is not wanted */
	int owns;          /* in d->keys */
	int started;       /* its job started (dispatched, or unconfirmed) */
	int final;         /* unconfirmed: its dead letter may not be durable yet */
	struct task *waiter; /* the one task of the same key parked on it, or NULL */
	struct task *next; /* in the ready queue or a route's rate queue */
} task;

struct delivery {
	jr_dispatcher *d;
	jr_event *ev;
	uint64_t ev_key;      /* route_key_hash(source, id, NULL): its holds' key */
	int attempt;
	int64_t publish_ms;   /* ev->message's publish time (Unix ms), -1 when unknown */
	int msg_attempt;      /* its delivery_attempt less our holds of it (>= 1); 0: unreported */
	jr_outcome_cb cb;
	void *arg;
	int pending;          /* tasks (and sink writes) not yet ended */
	int retried;          /* routes to try again after a failure (not a hold) */
	jr_outcome out;
	unsigned char *retry; /* n_routes */
};

/* The circuit breaker of one job, in a hash chain and the LRU list. */
struct job_breaker {
	smap_ent h;           /* key: name */
	jr_link age; /* in d->brk_age, least recently used first */
	int refs;             /* calls whose result it waits for: not evicted while > 0 */
	jr_errclass last_cls; /* the last breaker-tripping failure */
	jr_breaker b;
	char name[];
};

/* A route's rate limiter and the tasks waiting for its tokens. */
typedef struct route_rate {
	jr_dispatcher *d;
	jr_ratelimit rl;
	task *head, *tail;
	int timer_on;
	jr_timer_id timer;
} route_rate;

/* The metric families the dispatcher updates (docs/operations.md, metrics). */
static struct {
	jr_metric *outcomes, *errors, *latency, *in_flight, *dl_writes, *unrouted;
	jr_metric *brk_state, *brk_trans, *rl_waits, *rl_decr, *rl_rate;
	jr_metric *repeat;
} m;

static void metrics_init(void)
{
	static const double lat[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
	m.outcomes = metric_register("jobrelay_dispatch_total", JR_METRIC_COUNTER,
				     "Route deliveries by route and outcome.", NULL, 0);
	m.errors = metric_register("jobrelay_errors_total", JR_METRIC_COUNTER,
				   "Failed RunJob attempts and render errors by route and error class.",
				   NULL, 0);
	m.latency = metric_register("jobrelay_runjob_latency_seconds", JR_METRIC_HISTOGRAM,
				    "RunJob call latency by route.", lat, (int)(sizeof lat / sizeof lat[0]));
	m.in_flight = metric_register("jobrelay_runjob_in_flight", JR_METRIC_GAUGE,
				      "RunJob calls in flight.", NULL, 0);
	m.dl_writes = metric_register("jobrelay_dead_letter_writes_total", JR_METRIC_COUNTER,
				      "Dead-letter writes by sink and result.", NULL, 0);
	m.unrouted = metric_register("jobrelay_events_unrouted_total", JR_METRIC_COUNTER,
				     "Events that no route matched.", NULL, 0);
	m.brk_state = metric_register("jobrelay_breaker_state", JR_METRIC_GAUGE,
				      "Circuit breaker state by job: 0 closed, 1 half-open, 2 open.",
				      NULL, 0);
	m.brk_trans = metric_register("jobrelay_breaker_transitions_total", JR_METRIC_COUNTER,
				      "Circuit breaker state changes by job and new state.", NULL, 0);
	m.rl_waits = metric_register("jobrelay_rate_limit_waits_total", JR_METRIC_COUNTER,
				     "RunJob calls that waited for a rate-limit token, by route.",
				     NULL, 0);
	m.rl_decr = metric_register("jobrelay_rate_limit_decreases_total", JR_METRIC_COUNTER,
				    "Route rates halved after RESOURCE_EXHAUSTED, by route.", NULL, 0);
	m.rl_rate = metric_register("jobrelay_rate_limit_rate", JR_METRIC_GAUGE,
				    "The rate in force after the last decrease, calls/s by route.",
				    NULL, 0);
	m.repeat = metric_register("jobrelay_repeat_lookups_total", JR_METRIC_COUNTER,
				   "Lookups of a suspected repeat's execution before RunJob, by route "
				   "and result.",
				   NULL, 0);
}

static void count(jr_metric *fam, const char *k1, const char *v1, const char *k2, const char *v2)
{
	char l[256];
	metrics_labels(l, sizeof l, k1, v1, k2, v2, NULL);
	metric_add(fam, l, 1);
}

struct jr_dispatcher {
	const jr_config *cfg;
	jr_timers *tm;
	jr_runner runner;
	jr_sink *sink;
	FILE *out;
	jr_dispatch_opts o;
	int open, in_flight;
	int looking;   /* lookups before RunJob in flight: each holds a call slot */
	int following; /* tasks whose execution runner.follow is waiting for */
	task *ready_head, *ready_tail;
	int queued;           /* tasks in the ready queue */
	smap keys;            /* tasks that own their key (in flight in the wide sense) */
	double latency_ms;    /* moving average of RunJob latency; lat_seen = 0: none yet */
	int lat_seen;
	jr_route_stats *rs;
	route_rate *rr;       /* n_routes */
	int rate_waiting;     /* tasks in the route queues */
	jr_dedup *dedup;
	jr_dedup *holds;      /* held deliveries per event (source, id): not attempts */
	/* per route key: when (wall ms) its last lookup before RunJob that found nothing began */
	jr_dedup *looked;
	jr_dedup *unsure;     /* route keys whose RunJob went unanswered and no lookup settled */
	smap brk;             /* job_breaker by job name */
	jr_link brk_age;
	int stopped;          /* dispatcher_stop: nothing more is sent */
	long unrouted, unrouted_dl, unrouted_failed;
	uint64_t rng;
	jr_buf line;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

jr_dispatcher *dispatcher_new(const jr_config *cfg, jr_timers *tm, jr_runner runner, jr_sink *sink,
			      FILE *out, const jr_dispatch_opts *o)
{
	jr_dispatcher *d = jr_calloc(1, sizeof *d);
	list_init(&d->brk_age);
	d->cfg = cfg;
	d->tm = tm;
	d->runner = runner;
	d->sink = sink;
	d->out = out;
	if (o)
		d->o = *o;
	if (d->o.call_timeout_ms <= 0)
		d->o.call_timeout_ms = cfg->call_timeout_ms;
	d->rs = jr_calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *d->rs);
	d->rr = jr_calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *d->rr);
	for (size_t i = 0; i < cfg->n_routes; i++) {
		d->rr[i].d = d;
		ratelimit_init(&d->rr[i].rl, cfg->routes[i].rate_per_second,
			       cfg->routes[i].rate_burst, timers_now(tm));
	}
	d->dedup = dedup_new(cfg->dedup_ttl_ms, (size_t)cfg->dedup_max_entries);
	d->holds = dedup_new(HOLDS_TTL_MS, HOLDS_MAX);
	d->looked = dedup_new(HOLDS_TTL_MS, HOLDS_MAX);
	d->unsure = dedup_new(UNSURE_TTL_MS, UNSURE_MAX);
	d->rng = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
	buf_init(&d->line, 0);
	metrics_init();
	return d;
}

void dispatcher_free(jr_dispatcher *d)
{
	if (!d)
		return;
	free(d->rs);
	for (size_t i = 0; i < d->cfg->n_routes; i++)
		if (d->rr[i].timer_on)
			timers_cancel(d->tm, d->rr[i].timer);
	free(d->rr);
	dedup_free(d->dedup);
	dedup_free(d->holds);
	dedup_free(d->looked);
	dedup_free(d->unsure);
	for (jr_link *l = d->brk_age.next, *next; l != &d->brk_age; l = next) {
		next = l->next;
		job_breaker *b = list_item(l, job_breaker, age);
		breaker_free(&b->b);
		free(b);
	}
	smap_free(&d->brk);
	smap_free(&d->keys);
	buf_free(&d->line);
	free(d);
}

int dispatcher_open(const jr_dispatcher *d)
{
	return d->open;
}

int dispatcher_following(const jr_dispatcher *d)
{
	return d->following;
}

int dispatcher_in_flight(const jr_dispatcher *d)
{
	return d->in_flight;
}

int dispatcher_queued(const jr_dispatcher *d)
{
	return d->queued;
}

int64_t dispatcher_latency_ms(const jr_dispatcher *d)
{
	return d->lat_seen ? (int64_t)(d->latency_ms + 0.5) : -1;
}

const jr_route_stats *dispatcher_route_stats(const jr_dispatcher *d)
{
	return d->rs;
}

long dispatcher_unrouted(const jr_dispatcher *d, long *dead_lettered, long *failed)
{
	if (dead_lettered)
		*dead_lettered = d->unrouted_dl;
	if (failed)
		*failed = d->unrouted_failed;
	return d->unrouted;
}

/* ---- traces: the lines about an event carry its Cloud Trace ---- */

/*
 * trace_set: the lines logged from here on name ev's trace (ev->trace: a
 * traceparent "VV-TRACEID-SPANID-FF" or an X-Cloud-Trace-Context
 * "TRACEID/SPAN;o=1") as "projects/P/traces/TRACEID", with its sampled flag;
 * their span is the dispatch span of the route delivery whose dedup key is
 * *key (trace_dispatch_span: the parent of the execution's TRACEPARENT,
 * route.c), or with key NULL (the event's own lines) the incoming parent
 * span. None when ev is NULL, has no valid trace, or no project is set.
 * Each entry point that calls it ends with trace_use(d, NULL).
 */
static void trace_set(const jr_dispatcher *d, const jr_event *ev, const uint64_t *key)
{
	char trace[160] = "", span[17] = "";
	jr_trace t;
	if (!ev || !d->cfg->project || trace_parse(ev->trace, &t) < 0) {
		log_set_trace(NULL, NULL, 0);
		return;
	}
	snprintf(trace, sizeof trace, "projects/%s/traces/%s", d->cfg->project, t.id);
	if (key)
		trace_dispatch_span(&t, *key, span);
	else
		memcpy(span, t.span, sizeof span);
	log_set_trace(trace, span, trace_sampled(&t));
}

/* trace_use: the lines of ev itself (NULL: none). */
static void trace_use(const jr_dispatcher *d, const jr_event *ev)
{
	trace_set(d, ev, NULL);
}

/* trace_task: the lines of t's route delivery, with its dispatch span. */
static void trace_task(const task *t)
{
	trace_set(t->dv->d, t->dv->ev, &t->key);
}

/* ---- dead letters ---- */

/* What the log lines of a dead letter name. */
typedef struct dl_note {
	const char *route, *event_id, *origin, *code, *message;
	jr_errclass cls;
} dl_note;

/*
 * A write that the sink confirms later: who waits for it (a delivery, or the
 * caller of dispatcher_dead_letter_raw), and copies of what its log lines
 * and `out` need, since the record is gone by then.
 */
typedef struct dl_wait {
	jr_dispatcher *d;
	delivery *dv;            /* NULL for a raw record */
	long *ok_count, *fail_count;
	jr_raw_cb cb;            /* raw records: the caller's callback (may be NULL) */
	void *arg;
	int ok;                  /* raw records answered at once: the result to hand back */
	dl_note note;
	char *text;              /* the note's strings */
	char *line;              /* the record as a JSON line, for out; NULL without out */
} dl_wait;

static void delivery_step(delivery *dv);

static dl_note note_of(const jr_dlrecord *r)
{
	return (dl_note){r->route, r->ev ? r->ev->id : NULL, r->origin, r->code, r->message, r->cls};
}

/* note_keep: w's note becomes a copy of r's. */
static void note_keep(dl_wait *w, const jr_dlrecord *r)
{
	dl_note n = note_of(r);
	const char *src[5] = {n.route, n.event_id, n.origin, n.code, n.message};
	const char **dst[5] = {&w->note.route, &w->note.event_id, &w->note.origin, &w->note.code,
			       &w->note.message};
	size_t len[5], total = 0;
	for (int i = 0; i < 5; i++)
		total += (len[i] = src[i] ? strlen(src[i]) + 1 : 0);
	char *at = w->text = jr_malloc(total ? total : 1);
	for (int i = 0; i < 5; i++) {
		*dst[i] = src[i] ? memcpy(at, src[i], len[i]) : NULL;
		at += len[i];
	}
	w->note.cls = r->cls;
}

/* record_line: r as one JSON line in d->line (for out). */
static void record_line(jr_dispatcher *d, const jr_dlrecord *r)
{
	buf_reset(&d->line);
	deadletter_write_json(&d->line, r);
	buf_addc(&d->line, '\n');
}

/* dl_end: logs and counts the end of a write; a failed one's record (line) goes to out. */
static void dl_end(jr_dispatcher *d, const dl_note *n, int ok, const char *line, size_t len,
		   const char *why)
{
	if (!d->sink || !d->sink->counted)
		count(m.dl_writes, "sink", d->sink ? d->sink->name : "none", "result",
		      ok ? "ok" : "failed");
	if (ok) {
		log_kv(JR_LOG_WARNING, "DEADLETTER-OK", "event dead-lettered", "route", n->route,
		       "event_id", n->event_id, "origin", n->origin, "class", errclass_name(n->cls),
		       "code", n->code, "error", n->message, NULL);
		return;
	}
	/* a record that no sink took goes to out, so nothing is lost silently */
	log_kv(JR_LOG_ERROR, "DEADLETTER-FAILED", "event could not be dead-lettered; printed",
	       "route", n->route, "event_id", n->event_id, "origin", n->origin, "class",
	       errclass_name(n->cls), "code", n->code, "error", n->message, "sink_error", why, NULL);
	if (d->out && line) {
		fwrite(line, 1, len, d->out);
		fflush(d->out);
	}
}

static void dl_wait_free(dl_wait *w)
{
	free(w->text);
	free(w->line);
	free(w);
}

/* raw_answer: a raw record's result goes to its caller, from the loop. */
static void raw_answer(void *arg)
{
	dl_wait *w = arg;
	w->d->open--;
	if (w->cb)
		w->cb(w->arg, w->ok);
	dl_wait_free(w);
}

static void on_sink_done(void *arg, int ok, const char *err)
{
	dl_wait *w = arg;
	jr_dispatcher *d = w->d;
	delivery *dv = w->dv;
	if (dv && w->note.route) {
		uint64_t key = route_key_hash(dv->ev->source, dv->ev->id, w->note.route);
		trace_set(d, dv->ev, &key); /* a route delivery's dead letter */
	} else if (dv) {
		trace_use(d, dv->ev);
	}
	dl_end(d, &w->note, ok, w->line, w->line ? strlen(w->line) : 0, err);
	if (!dv) {
		w->ok = ok;
		raw_answer(w);
		return;
	}
	(*(ok ? w->ok_count : w->fail_count))++;
	if (ok)
		dv->out.dead_lettered++;
	else
		dv->out.failed++;
	dl_wait_free(w);
	dv->pending--;
	delivery_step(dv);
	trace_use(d, NULL);
}

/*
 * dl_start: hands r to the sink with w as the callback's argument. 1 when the
 * sink answers later (on_sink_done ends w then); else 0 (durable) or -1
 * (failed), logged and counted, and w is still the caller's.
 */
static int dl_start(jr_dispatcher *d, const jr_dlrecord *r, dl_wait *w)
{
	char err[256] = "no dead-letter sink configured";
	int rc = d->sink ? d->sink->write(d->sink, r, on_sink_done, w, err, sizeof err) : -1;
	if (rc != 1 && rc != 0)
		rc = -1;
	if (rc == 1) {
		note_keep(w, r);
		if (d->out) {
			record_line(d, r);
			w->line = jr_strndup(d->line.data, d->line.len);
		}
		return 1;
	}
	dl_note n = note_of(r);
	if (rc < 0 && d->out)
		record_line(d, r);
	dl_end(d, &n, rc == 0, d->line.data, rc < 0 && d->out ? d->line.len : 0, err);
	return rc;
}

/*
 * dead_letter: writes r for delivery dv. Counts into *ok_count or
 * *fail_count now, or (for a sink that answers later) when it answers; the
 * delivery waits for it.
 */
static void dead_letter(delivery *dv, const jr_dlrecord *r, long *ok_count, long *fail_count)
{
	dl_wait *w = jr_calloc(1, sizeof *w);
	*w = (dl_wait){.d = dv->d, .dv = dv, .ok_count = ok_count, .fail_count = fail_count};
	int rc = dl_start(dv->d, r, w);
	if (rc == 1) {
		dv->pending++;
		return;
	}
	free(w);
	if (rc == 0) {
		(*ok_count)++;
		dv->out.dead_lettered++;
	} else {
		(*fail_count)++;
		dv->out.failed++;
	}
}

void dispatcher_dead_letter_raw(jr_dispatcher *d, const char *raw, size_t raw_len,
				const jr_message *msg, const char *origin, const char *error,
				jr_raw_cb cb, void *arg)
{
	jr_dlrecord r = {
		.raw = raw ? raw : "", .raw_len = raw ? raw_len : 0, .msg = msg, .origin = origin,
		.cls = JR_ERR_INVALID_EVENT, .code = "INVALID_EVENT", .message = error,
		.failed_at_ms = wall_ms(),
	};
	dl_wait *w = jr_calloc(1, sizeof *w);
	*w = (dl_wait){.d = d, .cb = cb, .arg = arg};
	d->open++;
	int rc = dl_start(d, &r, w);
	if (rc == 1)
		return;
	if (!cb) {
		d->open--;
		free(w);
		return;
	}
	w->ok = rc == 0;
	timers_add(d->tm, 0, raw_answer, w);
}

/* ---- circuit breakers: one per job name, created when first called ---- */

/* brk_evict: past BREAKERS_MAX the least recently used breaker no call waits on goes. */
static void brk_evict(jr_dispatcher *d)
{
	jr_link *l = d->brk_age.next;
	while (l != &d->brk_age && list_item(l, job_breaker, age)->refs > 0)
		l = l->next;
	if (l == &d->brk_age)
		return;
	job_breaker *b = list_item(l, job_breaker, age);
	smap_del(&d->brk, &b->h);
	list_remove(&b->age);
	breaker_free(&b->b);
	free(b);
}

static job_breaker *breaker_of(jr_dispatcher *d, const char *job)
{
	uint64_t h = smap_hash(job);
	job_breaker *b = (job_breaker *)smap_find(&d->brk, job, h);
	if (b) {
		list_remove(&b->age);
		list_append(&d->brk_age, &b->age);
		return b;
	}
	if (d->brk.n >= BREAKERS_MAX)
		brk_evict(d);
	size_t n = strlen(job);
	b = jr_calloc(1, sizeof *b + n + 1);
	memcpy(b->name, job, n + 1);
	b->h.h = h;
	b->h.key = b->name;
	breaker_init(&b->b, &d->cfg->breaker);
	smap_add(&d->brk, &b->h);
	list_append(&d->brk_age, &b->age);
	return b;
}

/* breaker_changed: the one log line and the metrics of a state change. */
static void breaker_changed(const job_breaker *b)
{
	static const char *const ids[] = {"BREAKER-CLOSED", "BREAKER-HALF-OPEN", "BREAKER-OPEN"};
	static const char *const texts[] = {
		"circuit breaker closed: calls go through",
		"circuit breaker half-open: probing",
		"circuit breaker open: calls held",
	};
	jr_breaker_state s = b->b.state;
	char rate[16], open_for[24], l[320];
	snprintf(rate, sizeof rate, "%.2f", b->b.opened_rate);
	snprintf(open_for, sizeof open_for, "%lldms", (long long)b->b.open_for_ms);
	log_kv(s == JR_BREAKER_OPEN ? JR_LOG_WARNING : JR_LOG_INFO, ids[s], texts[s], "job",
	       b->name, "failure_rate", rate, "open_for", open_for, "class",
	       s == JR_BREAKER_OPEN ? errclass_name(b->last_cls) : NULL, NULL);
	metrics_labels(l, sizeof l, "job", b->name, NULL);
	metric_set(m.brk_state, l, (double)s);
	count(m.brk_trans, "job", b->name, "state", breaker_state_name(s));
}

/* task_breaker_release: t's call never reached the job; it counts neither way for its breaker. */
static void task_breaker_release(task *t)
{
	job_breaker *b = t->brk;
	if (!b)
		return;
	t->brk = NULL;
	b->refs--;
	breaker_release(&b->b, t->ticket);
}

/* task_breaker_result: t's call ended; its result counts for its job's breaker. */
static void task_breaker_result(task *t, jr_errclass cls, int ok)
{
	job_breaker *b = t->brk;
	if (!b)
		return;
	t->brk = NULL;
	b->refs--;
	int failed = !ok && errclass_trips_breaker(cls);
	if (failed)
		b->last_cls = cls;
	if (breaker_record(&b->b, timers_now(t->dv->d->tm), t->ticket, failed))
		breaker_changed(b);
}

/* ---- tasks ---- */

/* task_set_phase: the one place a task's phase changes (logged at debug level). */
static void task_set_phase(task *t, task_phase next)
{
	if (log_enabled(JR_LOG_DEBUG))
		log_kv(JR_LOG_DEBUG, "TASK-PHASE", "task phase changed", "route",
		       t->dv->d->cfg->routes[t->ri].name, "event_id", t->dv->ev->id, "from",
		       phase_names[t->phase], "to", phase_names[next], NULL);
	t->phase = next;
}

static void finish_cb(void *arg)
{
	delivery *dv = arg;
	jr_dispatcher *d = dv->d;
	jr_outcome *o = &dv->out;
	if (o->failed)
		o->kind = JR_OUTCOME_FAILED;
	else if (o->retry)
		o->kind = JR_OUTCOME_RETRY;
	else
		o->kind = JR_OUTCOME_DONE;
	o->hold = o->kind == JR_OUTCOME_RETRY && !dv->retried;
	o->attempt = dv->attempt;
	if (o->hold)
		dedup_bump(d->holds, dv->ev_key, timers_now(d->tm));
	else if (o->kind == JR_OUTCOME_DONE)
		dedup_forget(d->holds, dv->ev_key);
	d->open--;
	dv->cb(dv->arg, dv->ev, o);
	free(dv->retry);
	free(dv);
}

/* delivery_step: when nothing is pending, the outcome goes out from the loop. */
static void delivery_step(delivery *dv)
{
	if (dv->pending == 0)
		timers_add(dv->d->tm, 0, finish_cb, dv);
}

static void task_release(jr_dispatcher *d, task *t);

static void task_end(task *t)
{
	delivery *dv = t->dv;
	if (t->owns)
		task_release(dv->d, t);
	runreq_free(&t->req);
	free(t->fail_msg);
	free(t->execution);
	free(t);
	dv->pending--;
	delivery_step(dv);
}

/* mark_retry: route ri of dv is to be tried again after delay_ms. */
static void mark_retry(delivery *dv, size_t ri, int64_t delay_ms, jr_errclass cls)
{
	if (!dv->out.retry) {
		dv->retry = jr_calloc(dv->d->cfg->n_routes, 1);
		dv->out.retry = dv->retry;
	}
	dv->retry[ri] = 1;
	if (delay_ms >= dv->out.delay_ms) {
		dv->out.delay_ms = delay_ms;
		dv->out.cls = cls;
	}
}

static void task_failed(task *t, jr_errclass cls, const char *code, const char *msg,
			int64_t hint_ms)
{
	delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	task_breaker_result(t, cls, 0);
	jr_decision dec = policy_decide(&r->policies, cls, dv->attempt, hint_ms, d->o.no_retry,
					rng_next(&d->rng));
	count(m.errors, "route", r->name, "class", errclass_name(cls));
	count(m.outcomes, "route", r->name, "outcome",
	      dec.action == JR_ACT_RETRY ? "retry" : dec.action == JR_ACT_DROP ? "dropped" : "dead_letter");
	char att[16];
	snprintf(att, sizeof att, "%d", dv->attempt);
	if (dec.action == JR_ACT_RETRY) {
		char delay[32];
		snprintf(delay, sizeof delay, "%lldms", (long long)dec.delay_ms);
		log_kv(JR_LOG_WARNING, "DISPATCH-RETRY", "RunJob failed; to be retried", "route",
		       r->name, "event_id", dv->ev->id, "job", t->req.name, "class",
		       errclass_name(cls), "code", code, "error", msg, "attempt", att, "delay", delay,
		       NULL);
		d->rs[t->ri].retried++;
		dv->retried++;
		mark_retry(dv, t->ri, dec.delay_ms, cls);
	} else if (dec.action == JR_ACT_DROP) {
		log_kv(JR_LOG_WARNING, "DISPATCH-DROP", "RunJob failed; dropped by policy", "route",
		       r->name, "event_id", dv->ev->id, "class", errclass_name(cls), "code", code,
		       "error", msg, NULL);
		d->rs[t->ri].dropped++;
		dv->out.dropped++;
	} else {
		jr_dlrecord rec = {
			.ev = dv->ev, .origin = dv->ev->origin, .route = r->name,
			.attempts = dv->attempt, .cls = cls, .code = code, .message = msg,
			.failed_at_ms = wall_ms(),
		};
		if (!dv->out.failed && !dv->out.retry)
			dv->out.cls = cls;
		dead_letter(dv, &rec, &d->rs[t->ri].dead_lettered, &d->rs[t->ri].failed);
	}
	task_end(t);
}

static void drain_ready(jr_dispatcher *d);

/*
 * task_hold: t is not sent now and costs no attempt: its job's breaker is
 * open (cls: the class that opened it), or no access token could be had
 * (credentials). The route is tried again after wait_ms; with --no-retry it
 * is dead-lettered, as a retry would be.
 */
static void task_hold(task *t, const char *job, jr_errclass cls, int64_t wait_ms)
{
	delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	int creds = cls == JR_ERR_CREDENTIALS;
	if (d->o.no_retry) {
		count(m.outcomes, "route", r->name, "outcome", "dead_letter");
		jr_dlrecord rec = {
			.ev = dv->ev, .origin = dv->ev->origin, .route = r->name,
			.attempts = dv->attempt, .cls = cls, .code = creds ? "CREDENTIALS" : "BREAKER_OPEN",
			.message = creds ? "no access token could be had (--no-retry)"
					 : "the job's circuit breaker is open (--no-retry)",
			.failed_at_ms = wall_ms(),
		};
		dead_letter(dv, &rec, &d->rs[t->ri].dead_lettered, &d->rs[t->ri].failed);
		task_end(t);
		return;
	}
	if (wait_ms <= 0) /* half-open, probes out: about as long as a probe may take */
		wait_ms = d->o.call_timeout_ms < d->cfg->breaker.open_for_ms ? d->o.call_timeout_ms
									  : d->cfg->breaker.open_for_ms;
	char delay[32];
	snprintf(delay, sizeof delay, "%lldms", (long long)wait_ms);
	count(m.outcomes, "route", r->name, "outcome", "held");
	log_kv(JR_LOG_INFO, "DISPATCH-HELD",
	       creds ? "no access token; event held" : "circuit breaker open; event held", "route",
	       r->name, "event_id", dv->ev->id, "job", job, "class", creds ? "credentials" : NULL,
	       "delay", delay, NULL);
	d->rs[t->ri].held++;
	dv->out.held++;
	mark_retry(dv, t->ri, wait_ms, cls);
	task_end(t);
}

/*
 * task_duplicate: t's key already succeeded within dedup.ttl, or (in_flight)
 * the delivery t waited for started the job: done, no RunJob.
 */
static void task_duplicate(task *t, int in_flight)
{
	delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	count(m.outcomes, "route", r->name, "outcome", "duplicate");
	log_kv(JR_LOG_INFO, "DISPATCH-DUPLICATE",
	       in_flight ? "started by another delivery of the event; skipped"
			 : "already dispatched within dedup.ttl; skipped",
	       "route", r->name, "event_id", dv->ev->id, "source", dv->ev->source, NULL);
	d->rs[t->ri].duplicates++;
	dv->out.duplicates++;
	task_end(t);
}

static void task_dispatched(task *t, const jr_runresult *res)
{
	jr_dispatcher *d = t->dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	task_breaker_result(t, JR_ERR_UNKNOWN, 1);
	dedup_add(d->dedup, t->key, timers_now(d->tm));
	t->started = 1;
	count(m.outcomes, "route", r->name, "outcome", "dispatched");
	dedup_forget(d->unsure, t->key);
	char att[16];
	snprintf(att, sizeof att, "%d", t->dv->attempt);
	int found = t->phase == TASK_LOOKUP;
	log_kv(JR_LOG_INFO, found ? "DISPATCH-FOUND" : "DISPATCH-OK",
	       t->phase == TASK_FOLLOW ? "execution finished"
	       : found ? "the delivery repeats one that started the job: execution found, no RunJob"
	       : res->recovered	       ? "execution found after an ambiguous failure"
				       : "execution started",
	       "route", r->name, "event_id", t->dv->ev->id, "job", t->req.name, "execution",
	       res->execution, "log_uri", res->log_uri, "attempt", att, NULL);
	d->rs[t->ri].dispatched++;
	t->dv->out.dispatched++;
	task_end(t);
}

/*
 * task_unconfirmed: t's RunJob returned OK (ack: on_completion) but its
 * execution could not be read to its end (code, why). The job started, so
 * the route is done and never sent again: it counts for dedup, and is
 * dead-lettered as EXECUTION_UNCONFIRMED, whatever the class's policy.
 */
static void task_unconfirmed(task *t, int code, const char *why)
{
	delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	jr_errclass cls = errclass_from_grpc(code);
	const char *exec = t->execution ? t->execution : "(unnamed)";
	task_breaker_result(t, JR_ERR_UNKNOWN, 1); /* RunJob itself succeeded */
	dedup_add(d->dedup, t->key, timers_now(d->tm));
	t->started = 1;
	t->final = 1;
	count(m.outcomes, "route", r->name, "outcome", "unconfirmed");
	char att[16], msg[1400];
	snprintf(att, sizeof att, "%d", dv->attempt);
	snprintf(msg, sizeof msg, "execution %s started; its end could not be read (%s): %.1000s",
		 exec, grpc_code_name(code), why ? why : "");
	log_kv(JR_LOG_WARNING, "DISPATCH-UNCONFIRMED",
	       "execution started but its end could not be read; not run again", "route", r->name,
	       "event_id", dv->ev->id, "job", t->req.name, "execution", exec, "code",
	       grpc_code_name(code), "error", why, "attempt", att, NULL);
	jr_dlrecord rec = {
		.ev = dv->ev, .origin = dv->ev->origin, .route = r->name, .attempts = dv->attempt,
		.cls = cls, .code = "EXECUTION_UNCONFIRMED", .message = msg,
		.failed_at_ms = wall_ms(),
	};
	if (!dv->out.failed && !dv->out.retry)
		dv->out.cls = cls;
	dead_letter(dv, &rec, &d->rs[t->ri].dead_lettered, &d->rs[t->ri].failed);
	task_end(t);
}

static void on_run_done(void *arg, const jr_runresult *res);

/* ---- rate limits: a token per call, waiting in the route's queue ---- */

static void rate_decrease(jr_dispatcher *d, size_t ri, int64_t retry_after_ms)
{
	route_rate *rr = &d->rr[ri];
	const jr_route *r = &d->cfg->routes[ri];
	int64_t now = timers_now(d->tm);
	if (!ratelimit_decrease(&rr->rl, now, retry_after_ms))
		return;
	char rate[24], l[160];
	double v = ratelimit_rate(&rr->rl, now);
	snprintf(rate, sizeof rate, "%.3f", v);
	log_kv(JR_LOG_WARNING, "RATELIMIT-DECREASE",
	       "RunJob answered RESOURCE_EXHAUSTED; the route's rate is halved", "route", r->name,
	       "rate_per_second", rate, NULL);
	metrics_labels(l, sizeof l, "route", r->name, NULL);
	metric_add(m.rl_decr, l, 1);
	metric_set(m.rl_rate, l, v);
}

static void rate_timer(void *arg);

static void rate_arm(jr_dispatcher *d, size_t ri, int64_t wait_ms)
{
	route_rate *rr = &d->rr[ri];
	if (rr->timer_on)
		return;
	rr->timer_on = 1;
	rr->timer = timers_add(d->tm, wait_ms, rate_timer, rr);
}

/* rate_take: 1 when t may be sent now (a token taken); else t waits in its route's queue. */
static int rate_take(jr_dispatcher *d, task *t)
{
	route_rate *rr = &d->rr[t->ri];
	int64_t wait = rr->head ? 1 : ratelimit_acquire(&rr->rl, timers_now(d->tm));
	if (wait == 0)
		return 1;
	t->next = NULL;
	if (rr->tail)
		rr->tail->next = t;
	else
		rr->head = t;
	rr->tail = t;
	d->rate_waiting++;
	char l[160];
	metrics_labels(l, sizeof l, "route", d->cfg->routes[t->ri].name, NULL);
	metric_add(m.rl_waits, l, 1);
	if (!rr->head->next)
		rate_arm(d, t->ri, wait);
	return 0;
}

/* rate_pop: a waiting task whose route has a token now (taken), or NULL. */
static task *rate_pop(jr_dispatcher *d)
{
	if (!d->rate_waiting)
		return NULL;
	int64_t now = timers_now(d->tm);
	for (size_t i = 0; i < d->cfg->n_routes; i++) {
		route_rate *rr = &d->rr[i];
		if (!rr->head)
			continue;
		int64_t wait = ratelimit_acquire(&rr->rl, now);
		if (wait > 0) {
			rate_arm(d, i, wait);
			continue;
		}
		task *t = rr->head;
		rr->head = t->next;
		if (!rr->head)
			rr->tail = NULL;
		d->rate_waiting--;
		return t;
	}
	return NULL;
}

/* task_failed_res: t failed as res says: its class when the runner gave one, else from the gRPC code. */
static void task_failed_res(task *t, const jr_runresult *res)
{
	task_failed(t, res->has_class ? res->cls : errclass_from_grpc(res->code),
		    res->has_class && res->code_name ? res->code_name : grpc_code_name(res->code),
		    res->message, res->retry_delay_ms);
}

/*
 * find_failed: the lookup of t's execution could not be made (code, why):
 * the original failure's policy decides, and a retry may run the job twice.
 */
static void find_failed(task *t, int code, const char *why)
{
	jr_dispatcher *d = t->dv->d;
	dedup_add(d->unsure, t->key, timers_now(d->tm)); /* its next delivery looks again first */
	log_kv(JR_LOG_WARNING, "LOOKUP-FAILED",
	       "the execution of an ambiguous RunJob could not be looked up; a retry may start a "
	       "duplicate execution",
	       "route", t->dv->d->cfg->routes[t->ri].name, "event_id", t->dv->ev->id, "job",
	       t->req.name, "code", grpc_code_name(t->fail_code), "lookup_code",
	       grpc_code_name(code), "lookup_error", why, "duplicate_risk", "yes", NULL);
}

/*
 * on_find_done: runner.find answered; a found execution means dispatched.
 * Found nothing (NOT_FOUND) or the lookup failed: the original failure stands.
 */
static void on_find_done(void *arg, const jr_runresult *res)
{
	task *t = arg;
	jr_dispatcher *d = t->dv->d;
	trace_task(t);
	if (res->code == 0) {
		task_dispatched(t, res);
	} else {
		if (res->code != JR_GRPC_NOT_FOUND)
			find_failed(t, res->code, res->message);
		task_failed(t, errclass_from_grpc(t->fail_code), grpc_code_name(t->fail_code),
			    t->fail_msg ? t->fail_msg : "", t->fail_hint_ms);
	}
	trace_use(d, NULL);
}

/*
 * on_follow_done: the followed execution ended (or following it failed). A
 * failed read never sends RunJob again: only the end of the execution, or
 * CANCELLED at shutdown, goes to the class policy.
 */
static void on_follow_done(void *arg, const jr_runresult *res)
{
	task *t = arg;
	jr_dispatcher *d = t->dv->d;
	d->following--;
	trace_task(t);
	if (res->code == 0 && !res->has_class)
		task_dispatched(t, res);
	else if (!res->has_class && res->code != JR_GRPC_CANCELLED)
		task_unconfirmed(t, res->code, res->message);
	else
		task_failed_res(t, res);
	trace_use(d, NULL);
}

/*
 * task_started: t's execution exists (res names it: RunJob started it, or the
 * lookup before RunJob found it): followed when its route acks on
 * completion and the runner can follow, else dispatched.
 */
static void task_started(task *t, const jr_runresult *res)
{
	jr_dispatcher *d = t->dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	if (r->ack != JR_ACK_ON_COMPLETION || !d->runner.follow) {
		task_dispatched(t, res);
		return;
	}
	log_kv(JR_LOG_INFO, t->phase == TASK_LOOKUP ? "DISPATCH-FOUND" : "DISPATCH-STARTED",
	       t->phase == TASK_LOOKUP ? "execution found before RunJob; following it"
				       : "execution started; following it",
	       "route", r->name, "event_id", t->dv->ev->id, "job", t->req.name, "execution",
	       res->execution, "log_uri", res->log_uri, NULL);
	task_set_phase(t, TASK_FOLLOW);
	t->execution = res->execution ? jr_strdup(res->execution) : NULL;
	if (d->runner.follow(d->runner.ctx, &t->req, res, on_follow_done, t) == 0) {
		d->following++;
		if (d->o.on_follow)
			d->o.on_follow(d->o.on_follow_arg);
	} else {
		task_unconfirmed(t, JR_GRPC_UNAVAILABLE, "could not follow the execution");
	}
}

static int ambiguous(int code)
{
	return code == JR_GRPC_DEADLINE_EXCEEDED || code == JR_GRPC_UNAVAILABLE;
}

static void on_run_done(void *arg, const jr_runresult *res)
{
	task *t = arg;
	jr_dispatcher *d = t->dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	trace_task(t);
	d->in_flight--;
	metric_set(m.in_flight, NULL, d->in_flight);
	char l[160];
	metrics_labels(l, sizeof l, "route", r->name, NULL);
	metric_observe(m.latency, l, (double)res->latency_ms / 1000.0);
	if (d->lat_seen)
		d->latency_ms += ((double)res->latency_ms - d->latency_ms) / LATENCY_WEIGHT;
	else
		d->latency_ms = (double)res->latency_ms;
	d->lat_seen = 1;
	if (res->code == JR_GRPC_RESOURCE_EXHAUSTED && !res->has_class)
		rate_decrease(d, t->ri, res->retry_delay_ms);
	if (res->code == 0) {
		task_started(t, res);
	} else if (res->has_class && res->cls == JR_ERR_CREDENTIALS) {
		/* the call never reached the API: no execution, no attempt, nothing for the breaker */
		task_breaker_release(t);
		count(m.errors, "route", r->name, "class", "credentials");
		task_hold(t, t->req.name, JR_ERR_CREDENTIALS,
			  res->retry_delay_ms > CREDS_HOLD_MIN_MS ? res->retry_delay_ms : CREDS_HOLD_MIN_MS);
	} else if (ambiguous(res->code) && !res->has_class && d->runner.find) {
		task_set_phase(t, TASK_FIND);
		t->fail_code = res->code;
		t->fail_hint_ms = res->retry_delay_ms;
		t->fail_msg = jr_strdup(res->message ? res->message : "");
		if (d->runner.find(d->runner.ctx, &t->req, t->sent_ms, on_find_done, t) < 0) {
			find_failed(t, JR_GRPC_UNAVAILABLE, "could not start the lookup");
			task_failed(t, errclass_from_grpc(res->code), grpc_code_name(res->code),
				    t->fail_msg, t->fail_hint_ms);
		}
	} else {
		task_failed_res(t, res);
	}
	drain_ready(d);
	trace_use(d, NULL);
}

/* task_render: t's request; -1 when it cannot be rendered (the task has then ended). */
static int task_render(task *t)
{
	delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	char *err = NULL;
	if (route_render(d->cfg, r, dv->ev, &t->req, &err) == 0)
		return 0;
	log_kv(JR_LOG_ERROR, "ROUTE-RENDER-FAILED", "cannot render the request", "route", r->name,
	       "event_id", dv->ev->id, "origin", dv->ev->origin, "error", err, NULL);
	task_failed(t, JR_ERR_INVALID_EVENT, "INVALID_EVENT", err, -1);
	free(err);
	return -1;
}

/* task_call: t (rendered, holding a call slot's turn and its route's token) goes to RunJob. */
static void task_call(task *t)
{
	jr_dispatcher *d = t->dv->d;
	int64_t now = timers_now(d->tm);
	jr_ratelimit *rl = &d->rr[t->ri].rl;
	job_breaker *b = breaker_of(d, t->req.name);
	jr_breaker_pass pass = breaker_allow(&b->b, now);
	if (pass.changed)
		breaker_changed(b);
	if (!pass.allowed) {
		ratelimit_refund(rl);
		task_hold(t, b->name, b->last_cls, pass.wait_ms);
		return;
	}
	t->brk = b;
	t->ticket = pass.ticket;
	b->refs++;
	d->in_flight++;
	metric_set(m.in_flight, NULL, d->in_flight);
	t->sent_ms = wall_ms();
	if (d->runner.run(d->runner.ctx, &t->req, d->o.call_timeout_ms, on_run_done, t) < 0) {
		d->in_flight--;
		metric_set(m.in_flight, NULL, d->in_flight);
		task_failed(t, JR_ERR_NETWORK, "UNAVAILABLE", "could not start the RunJob call", -1);
	}
}

/*
 * task_suspect: why t may repeat a delivery that started its job
 * (retry/repeat.h); JR_REPEAT_NOT when it may not, or when the runner cannot
 * look (--dry-run has no find).
 */
static jr_repeat_why task_suspect(const task *t)
{
	const delivery *dv = t->dv;
	jr_dispatcher *d = dv->d;
	if (!d->runner.find)
		return JR_REPEAT_NOT;
	const jr_message *msg = dv->ev->message;
	jr_repeat_in in = {
		.has_message = msg != NULL,
		.delivery_attempt = msg ? dv->msg_attempt : 0, /* holds started nothing */
		.publish_ms = d->o.replay ? -1 : dv->publish_ms, /* a record's age is no redelivery */
		.seen = dedup_seen(d->unsure, t->key, timers_now(d->tm)),
	};
	return repeat_suspect(&d->cfg->repeat, &in, wall_ms());
}

static void task_unsent(task *t);

/*
 * lookup_end: the lookup before t's RunJob answered res. Found: the route is
 * dispatched (or its execution followed), no RunJob. No token: held, no
 * attempt. Shutting down: unsent. Not found: RunJob. Failed (after the
 * runner's own retries): RunJob anyway, with the duplicate risk logged: at
 * worst a second execution, never a lost event.
 */
static void lookup_end(task *t, const jr_runresult *res)
{
	jr_dispatcher *d = t->dv->d;
	const jr_route *r = &d->cfg->routes[t->ri];
	jr_ratelimit *rl = &d->rr[t->ri].rl;
	if (res->code == 0) {
		ratelimit_refund(rl);
		count(m.repeat, "route", r->name, "result", "found");
		task_started(t, res);
		return;
	}
	if (res->has_class && res->cls == JR_ERR_CREDENTIALS) {
		ratelimit_refund(rl);
		count(m.errors, "route", r->name, "class", "credentials");
		task_hold(t, t->req.name, JR_ERR_CREDENTIALS,
			  res->retry_delay_ms > CREDS_HOLD_MIN_MS ? res->retry_delay_ms : CREDS_HOLD_MIN_MS);
		return;
	}
	if (d->stopped || (res->code == JR_GRPC_CANCELLED && !res->has_class)) {
		ratelimit_refund(rl);
		task_unsent(t);
		return;
	}
	int nf = res->code == JR_GRPC_NOT_FOUND;
	count(m.repeat, "route", r->name, "result", nf ? "not_found" : "failed");
	if (nf) /* nothing of this key began before look_ms: the next lookup starts there */
		dedup_mark(d->looked, t->key, timers_now(d->tm), t->look_ms);
	if (!nf)
		log_kv(JR_LOG_WARNING, "LOOKUP-FAILED",
		       "the execution of a suspected repeat could not be looked up; RunJob anyway, "
		       "which may start a duplicate execution",
		       "route", r->name, "event_id", t->dv->ev->id, "job", t->req.name,
		       "lookup_code", grpc_code_name(res->code), "lookup_error", res->message,
		       "duplicate_risk", "yes", NULL);
	task_set_phase(t, TASK_CALL);
	task_call(t);
}

static void on_lookup_done(void *arg, const jr_runresult *res)
{
	task *t = arg;
	jr_dispatcher *d = t->dv->d;
	trace_task(t);
	d->looking--;
	lookup_end(t, res);
	drain_ready(d);
	trace_use(d, NULL);
}

/* task_lookup: t, a suspected repeat (why), looks for its execution before RunJob; it keeps its call slot meanwhile. */
static void task_lookup(task *t, jr_repeat_why why)
{
	jr_dispatcher *d = t->dv->d;
	t->look_ms = wall_ms();
	int64_t since = repeat_since_ms(&d->cfg->repeat, t->dv->publish_ms, t->look_ms);
	/*
	 * An earlier lookup of this key found nothing created before it began, and it
	 * started where this one would (or where one before it found nothing): this
	 * one needs to look only from there on (the runner adds its clock-skew margin).
	 */
	int64_t prior = dedup_marked(d->looked, t->key, timers_now(d->tm));
	if (prior > since)
		since = prior;
	log_kv(JR_LOG_INFO, "DISPATCH-LOOKUP",
	       "the delivery may repeat one that started the job; looking for its execution",
	       "route", d->cfg->routes[t->ri].name, "event_id", t->dv->ev->id, "job", t->req.name,
	       "why", repeat_why_name(why), NULL);
	task_set_phase(t, TASK_LOOKUP);
	d->looking++;
	if (d->runner.find(d->runner.ctx, &t->req, since, on_lookup_done, t) == 0)
		return;
	d->looking--;
	jr_runresult r = {.code = JR_GRPC_UNAVAILABLE, .message = "could not start the lookup",
			  .retry_delay_ms = -1};
	lookup_end(t, &r);
}

static void task_send(task *t)
{
	jr_dispatcher *d = t->dv->d;
	trace_task(t); /* drain_ready sends the tasks of any event */
	/* the route's token was taken for this call: it goes back when no call is made */
	jr_ratelimit *rl = &d->rr[t->ri].rl;
	if (dedup_seen(d->dedup, t->key, timers_now(d->tm))) {
		ratelimit_refund(rl);
		task_duplicate(t, 0); /* another delivery of the event succeeded meanwhile */
		return;
	}
	if (task_render(t) < 0) {
		ratelimit_refund(rl);
		return;
	}
	jr_repeat_why why = task_suspect(t);
	if (why != JR_REPEAT_NOT)
		task_lookup(t, why);
	else
		task_call(t);
}

/* slot_free: RunJob calls and lookups before RunJob in flight are fewer than concurrency. */
static int slot_free(const jr_dispatcher *d)
{
	return d->in_flight + d->looking < d->cfg->concurrency;
}

/* drain_ready: fills free call slots: tasks whose route token came first, then the queue. */
static void drain_ready(jr_dispatcher *d)
{
	while (slot_free(d)) {
		task *t = rate_pop(d);
		if (!t) {
			t = d->ready_head;
			if (!t)
				break;
			d->ready_head = t->next;
			if (!d->ready_head)
				d->ready_tail = NULL;
			d->queued--;
			if (!rate_take(d, t))
				continue;
		}
		task_send(t);
	}
}

static void rate_timer(void *arg)
{
	route_rate *rr = arg;
	rr->timer_on = 0;
	drain_ready(rr->d);
	trace_use(rr->d, NULL);
}

/* task_unsent: dispatcher_stop ends a task that was never sent: to be tried again, no attempt spent. */
static void task_unsent(task *t)
{
	mark_retry(t->dv, t->ri, 0, JR_ERR_NETWORK);
	task_end(t);
}

void dispatcher_stop(jr_dispatcher *d)
{
	d->stopped = 1;
	while (d->ready_head) {
		task *t = d->ready_head;
		d->ready_head = t->next;
		d->queued--;
		task_unsent(t);
	}
	d->ready_tail = NULL;
	for (size_t i = 0; i < d->cfg->n_routes; i++) {
		route_rate *rr = &d->rr[i];
		while (rr->head) {
			task *t = rr->head;
			rr->head = t->next;
			d->rate_waiting--;
			task_unsent(t);
		}
		rr->tail = NULL;
	}
	trace_use(d, NULL);
}

static void task_submit(jr_dispatcher *d, task *t)
{
	if (d->stopped) {
		task_unsent(t);
		return;
	}
	/* a route waiting for a token holds back only itself: rate_take queues t behind its
	 * own route's waiting tasks */
	if (slot_free(d) && !d->ready_head) {
		if (rate_take(d, t))
			task_send(t);
		return;
	}
	t->next = NULL;
	if (d->ready_tail)
		d->ready_tail->next = t;
	else
		d->ready_head = t;
	d->ready_tail = t;
	d->queued++;
}

/*
 * task_later: t, a delivery of an event whose other delivery is (or was just)
 * in flight, sends nothing now: it is tried again after WAITER_RETRY_MS at no
 * cost of an attempt (a hold), when the other's outcome is settled and
 * durable; dedup then tells whether the job started.
 */
static void task_later(task *t)
{
	mark_retry(t->dv, t->ri, WAITER_RETRY_MS, JR_ERR_NETWORK);
	task_end(t);
}

/*
 * task_park: t waits for owner, which holds the same key, to end (sends
 * nothing meanwhile). One waiter a key: a further delivery is tried later.
 */
static void task_park(task *owner, task *t)
{
	const jr_route *r = &t->dv->d->cfg->routes[t->ri];
	if (owner->waiter) {
		task_later(t);
		return;
	}
	log_kv(JR_LOG_INFO, "DISPATCH-WAIT",
	       "another delivery of the event is in flight; waiting for its outcome", "route",
	       r->name, "event_id", t->dv->ev->id, "source", t->dv->ev->source, NULL);
	owner->waiter = t;
}

/*
 * task_start: t (in no queue) goes on: a duplicate when its key succeeded
 * within dedup.ttl; parked when another task owns its key; else it takes the
 * key and is submitted.
 */
static void task_start(jr_dispatcher *d, task *t)
{
	if (dedup_seen(d->dedup, t->key, timers_now(d->tm))) {
		task_duplicate(t, 0);
		return;
	}
	smap_ent *e = smap_find(&d->keys, "", t->key);
	if (e) {
		task_park((task *)e, t);
		return;
	}
	t->own.h = t->key;
	t->own.key = "";
	smap_add(&d->keys, &t->own);
	t->owns = 1;
	task_submit(d, t);
}

/*
 * task_release: t, which owns its key, ends: the key is free. The task
 * parked on t is a duplicate when t started the job and nothing of its
 * outcome is still to be made durable; otherwise (a retry, a hold, a dead
 * letter, an unconfirmed execution) it is tried later (task_later), never
 * sent at once: a retry keeps its policy's delay, and no delivery is
 * answered before the other's dead letter is written.
 */
static void task_release(jr_dispatcher *d, task *t)
{
	smap_del(&d->keys, &t->own);
	t->owns = 0;
	task *w = t->waiter;
	t->waiter = NULL;
	if (!w)
		return;
	trace_task(w); /* w's lines name its own delivery's trace, then t's again */
	if (t->started && !t->final)
		task_duplicate(w, 1);
	else
		task_later(w);
	trace_task(t);
}

static void start_route(delivery *dv, size_t ri)
{
	task *t = jr_calloc(1, sizeof *t);
	t->dv = dv;
	t->ri = ri;
	t->key = route_key_hash(dv->ev->source, dv->ev->id, dv->d->cfg->routes[ri].name);
	dv->pending++;
	trace_task(t);
	task_start(dv->d, t);
	trace_use(dv->d, dv->ev);
}

static void unrouted(delivery *dv)
{
	jr_dispatcher *d = dv->d;
	jr_event *ev = dv->ev;
	d->unrouted++;
	metric_add(m.unrouted, NULL, 1);
	if (d->cfg->unrouted != JR_UNROUTED_DEAD_LETTER) {
		log_kv(JR_LOG_DEBUG, "EVENT-UNROUTED", "no route matches; dropped", "event_id", ev->id,
		       "type", ev->type, "origin", ev->origin, NULL);
		return;
	}
	jr_dlrecord rec = {
		.ev = ev, .origin = ev->origin, .attempts = dv->attempt, .cls = JR_ERR_INVALID_EVENT,
		.code = "UNROUTED", .message = "no route matches the event", .failed_at_ms = wall_ms(),
	};
	dead_letter(dv, &rec, &d->unrouted_dl, &d->unrouted_failed);
}

void dispatcher_shed(jr_dispatcher *d, const jr_event *ev)
{
	dedup_bump(d->holds, route_key_hash(ev->source, ev->id, NULL), timers_now(d->tm));
}

void dispatcher_submit(jr_dispatcher *d, jr_event *ev, int attempt, const unsigned char *only,
		       jr_outcome_cb cb, void *arg)
{
	delivery *dv = jr_calloc(1, sizeof *dv);
	dv->d = d;
	dv->ev = ev;
	dv->ev_key = route_key_hash(ev->source, ev->id, NULL);
	if (!ev->message || repeat_time_ms(ev->message->publish_time, &dv->publish_ms) < 0)
		dv->publish_ms = -1;
	/* a source's count (Pub/Sub's delivery_attempt) includes the deliveries held */
	int held = (int)dedup_value(d->holds, dv->ev_key, timers_now(d->tm));
	attempt -= held;
	if (ev->message && ev->message->delivery_attempt > 0)
		dv->msg_attempt = ev->message->delivery_attempt - held > 1
					  ? ev->message->delivery_attempt - held : 1;
	dv->attempt = attempt > 0 ? attempt : 1;
	dv->cb = cb;
	dv->arg = arg;
	d->open++;
	trace_use(d, ev);
	/* hold the delivery open while its routes start, so none can finish it early */
	dv->pending = 1;
	for (size_t i = 0; i < d->cfg->n_routes; i++) {
		const jr_route *r = &d->cfg->routes[i];
		if (only && !only[i])
			continue;
		if (d->o.only_route && strcmp(d->o.only_route, r->name) != 0)
			continue;
		if (route_match(r, ev)) {
			dv->out.matched++;
			start_route(dv, i);
		}
	}
	if (!dv->out.matched && !only)
		unrouted(dv);
	dv->pending--;
	delivery_step(dv);
	trace_use(d, NULL);
}
