/*
 * dispatcher.h — one delivery of one event through its routes.
 *
 * The dispatcher is what pull, serve and replay share: it matches an event
 * against the routes, renders each match into a RunJob request, sends it
 * through a runner (the Run API client, or a stand-in), classifies failures
 * by the error table and decides per the route's class policy, and writes
 * dead-letter records to the sink. The source hands it an event and gets
 * exactly one outcome callback, from the loop, when every route of this
 * delivery has finished: the source then acks, answers or retries as its own
 * table in docs/reference.md (outcomes) says. RunJob calls in flight are bounded by
 * `concurrency`; calls past it wait in a queue, and are rendered only when
 * they leave it (a render error then ends that route as it would at submit).
 *
 * Policies (docs/policies.md): a route whose key already succeeded within
 * dedup.ttl is a duplicate (done, no RunJob); a route with a rate limit (or
 * one that RunJob answered RESOURCE_EXHAUSTED) takes a token before each
 * call and waits in its route's queue for one, without holding a call slot;
 * a call to a job whose circuit breaker is open is not sent but held (the
 * RETRY outcome with hold set). A route delivery whose key (source, id,
 * route) another delivery has in flight (queued, sent, looked up or
 * followed) sends nothing and waits for it: a duplicate when that one
 * started the job, else it goes on as if just submitted.
 *
 * Repeats (repeat_check, retry/repeat.h, docs/operations.md "Exactly-once
 * job starts"): a route delivery that may repeat one that already started
 * its job (a Pub/Sub redelivery; every delivery in mode always) is looked
 * up first (runner.find, from the message's publish time less a minute):
 * found means dispatched with no RunJob (DISPATCH-FOUND), not found means
 * RunJob, a failed lookup RunJob anyway (LOOKUP-FAILED, duplicate_risk=yes),
 * no token a hold. The lookup owns the key and holds a call slot, as a call
 * does; a fresh delivery is not looked up.
 *
 * Logs: every line the dispatcher writes about an event names its Cloud
 * Trace ("projects/P/traces/T", from ev->trace: a traceparent or
 * X-Cloud-Trace-Context value, with cfg->project) and its sampled flag,
 * whether it is written from inside dispatcher_submit or from a runner's,
 * sink's or timer's callback; an event without one names none. The span of
 * a route delivery's lines is its dispatch span (trace_dispatch_span of the
 * route key: the parent span of the execution's TRACEPARENT, route.c); the
 * event's own lines name the incoming span. Each of its entry points clears
 * the calling thread's trace (log_set_trace) before it returns.
 */
#ifndef JR_DISPATCHER_H
#define JR_DISPATCHER_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "deadletter.h"
#include "event.h"
#include "runner.h"
#include "timers.h"

typedef enum jr_outcome_kind {
	JR_OUTCOME_DONE,   /* every route dispatched, dropped, or dead-lettered (sink confirmed); or unrouted */
	JR_OUTCOME_RETRY,  /* some routes are to be tried again after delay_ms (see retry[]) */
	JR_OUTCOME_FAILED, /* a dead-letter record could not be made durable: keep the event */
} jr_outcome_kind;

typedef struct jr_outcome {
	jr_outcome_kind kind;
	/*
	 * RETRY with hold = 1: every route to try again was held because its
	 * job's circuit breaker is open (docs/policies.md): no RunJob was sent for
	 * them, and the delivery costs no attempt (the dispatcher counts it, and
	 * subtracts the held deliveries of an event from the attempt its next
	 * submit gives). delay_ms is then the breaker's remaining open time (or
	 * how long a half-open probe may take).
	 */
	int hold;
	int attempt;             /* the delivery's attempt: the submitted one less earlier holds */
	int64_t delay_ms;        /* RETRY: the longest delay the failed or held routes ask for */
	jr_errclass cls;         /* RETRY/FAILED: the class behind it (RESOURCE: answer 429) */
	const unsigned char *retry; /* RETRY: retry[i] = 1 for each route i to try again (n_routes) */
	int dispatched, dead_lettered, dropped, failed;
	int held;                /* routes held by an open breaker (marked in retry[]) */
	int duplicates;          /* routes that already succeeded within dedup.ttl: no RunJob, done */
	int matched;             /* routes that matched (0: unrouted) */
} jr_outcome;

/* The outcome callback; ev is still owned by the source. o lives until the callback returns. */
typedef void (*jr_outcome_cb)(void *arg, jr_event *ev, const jr_outcome *o);

typedef struct jr_dispatch_opts {
	int no_retry;            /* every retry decision becomes a dead letter */
	const char *only_route;  /* consider only this route, or NULL */
	int64_t call_timeout_ms; /* 0: cfg->call_timeout_ms */
	/* on_follow (may be NULL): a task began waiting for its execution (ack: on_completion) */
	void (*on_follow)(void *arg);
	void *on_follow_arg;
	/*
	 * replay: events are replayed records: a message's publish time says
	 * nothing of a redelivery, so repeat_check's min_age is not applied
	 * (delivery_attempt still is).
	 */
	int replay;
} jr_dispatch_opts;

typedef struct jr_dispatcher jr_dispatcher;

/*
 * dispatcher_new: a dispatcher for cfg whose timers (retries, rate-limit
 * waits, the outcome callbacks) run on tm: the loop's (loop_timers), or a
 * stepped clock's in tests; every callback runs from there or from the
 * runner's and sink's own. runner sends RunJob; sink (may be NULL) takes dead
 * letters; out (may be NULL) gets the record of any event whose dead letter
 * could not be written, so it is never lost silently. cfg, tm, the runner's
 * context and sink must outlive the dispatcher.
 */
jr_dispatcher *dispatcher_new(const jr_config *cfg, jr_timers *tm, jr_runner runner, jr_sink *sink,
			      FILE *out, const jr_dispatch_opts *o);
/* dispatcher_free: frees it; call only when dispatcher_open() is 0. */
void dispatcher_free(jr_dispatcher *d);

/*
 * dispatcher_submit: starts delivery `attempt` (1 for the first; Pub/Sub's
 * delivery_attempt when known: deliveries so far, holds included — the
 * dispatcher subtracts the deliveries of ev, by source and id, that it held
 * within the last hour) of ev through the routes that match, or only
 * those with only[i] != 0 when only is given (n_routes bytes, copied). cb runs
 * exactly once, from the loop, never from inside this call. ev must stay
 * valid until then.
 */
void dispatcher_submit(jr_dispatcher *d, jr_event *ev, int attempt, const unsigned char *only,
		       jr_outcome_cb cb, void *arg);

/*
 * dispatcher_shed: a delivery of ev that its source turned away unsubmitted
 * (serve's load shedding). Like a hold it costs no attempt: it counts in the
 * table of holds that dispatcher_submit subtracts. ev is only read.
 */
void dispatcher_shed(jr_dispatcher *d, const jr_event *ev);

/* jr_raw_cb: the end of a raw dead letter; ok = 1 when every sink confirmed it. */
typedef void (*jr_raw_cb)(void *arg, int ok);

/*
 * dispatcher_dead_letter_raw: the record of input that never decoded
 * (invalid_event): raw, and msg when it was a Pub/Sub message (may be NULL).
 * Everything is copied or written before this returns. cb (may be NULL) runs
 * exactly once, from the loop, never from inside this call: ok = 1 when the
 * sink confirmed the record (a topic: when Publish returned), 0 when it
 * failed or there is no sink (then the record went to out). Until then
 * dispatcher_open counts it.
 */
void dispatcher_dead_letter_raw(jr_dispatcher *d, const char *raw, size_t raw_len,
				const jr_message *msg, const char *origin, const char *error,
				jr_raw_cb cb, void *arg);

/*
 * dispatcher_stop: for shutdown: every task not yet sent (waiting for a call
 * slot or a rate-limit token), and any submitted later, ends unsent: its
 * route is marked to try again (RETRY, hold set when nothing else failed).
 * Calls in flight are not touched.
 */
void dispatcher_stop(jr_dispatcher *d);

/* dispatcher_open: deliveries submitted whose outcome callback has not yet run. */
int dispatcher_open(const jr_dispatcher *d);
/*
 * dispatcher_following: route deliveries (tasks) whose execution is being
 * followed (ack: on_completion): they hold no call slot, only memory.
 */
int dispatcher_following(const jr_dispatcher *d);
/* dispatcher_in_flight: RunJob calls sent and not yet answered. */
int dispatcher_in_flight(const jr_dispatcher *d);
/*
 * dispatcher_queued: route deliveries (tasks) waiting for a call slot; not
 * those waiting for a rate-limit token or for another delivery of their key.
 */
int dispatcher_queued(const jr_dispatcher *d);
/*
 * dispatcher_latency_ms: the moving average (weight 1/8 for each answer) of
 * how long RunJob calls took, in ms; -1 before the first answer.
 */
int64_t dispatcher_latency_ms(const jr_dispatcher *d);

/* Per-route counters since dispatcher_new (index = route index). */
typedef struct jr_route_stats {
	long dispatched, failed, dead_lettered, dropped, retried;
	long held, duplicates;
} jr_route_stats;

const jr_route_stats *dispatcher_route_stats(const jr_dispatcher *d);
/* dispatcher_unrouted: events no route matched (dead_lettered: of those, records written). */
long dispatcher_unrouted(const jr_dispatcher *d, long *dead_lettered, long *failed);

#endif
