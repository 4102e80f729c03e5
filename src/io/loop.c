/*
 * loop.c — one gRPC completion queue plus a set of timers (timers.h) on the
 * monotonic clock.
 *
 * loop_run_once waits on the completion queue until the earlier of the next
 * timer and max_wait_ms, dispatches every completion already queued (up to
 * a bound, so timers are not starved), then runs the timers that are due.
 * A timer added by a timer callback never runs in the same pass, even with
 * delay 0, so a callback that re-arms itself cannot spin the loop. The
 * callbacks of a pass run inside log_batch_begin/end: their INFO lines are
 * written together when the pass ends, before the loop waits again.
 */

#include "loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

/* Completions dispatched per loop_run_once before timers get their turn. */
#define LOOP_MAX_EVENTS 256

/* A function posted from another thread, run on the loop's thread. */
typedef struct posted {
	void (*fn)(void *arg);
	void *arg;
	struct posted *next;
} posted;

/*
 * The wake-up: a call on a lame channel fails at once and so puts a
 * completion on the queue, which is the one thing that ends a wait in
 * grpc_completion_queue_next (gRPC core has no public alarm). At most one
 * is in flight; posts made meanwhile ride on it.
 */
typedef struct wake_call {
	jr_tag tag;
	grpc_call *call;
	grpc_metadata_array trailing;
	grpc_status_code status;
	grpc_slice details;
} wake_call;

struct jr_loop {
	grpc_completion_queue *cq;
	pthread_mutex_t mu;     /* guards the posted list and wake_pending */
	posted *post_head, *post_tail;
	int wake_pending;
	grpc_channel *lame;
	wake_call wake;
	jr_timers *timers;
};

int64_t loop_now_ms(void)
{
	return timers_monotonic_ms();
}

jr_loop *loop_new(void)
{
	jr_loop *l = jr_calloc(1, sizeof *l);
	l->cq = grpc_completion_queue_create_for_next(NULL);
	pthread_mutex_init(&l->mu, NULL);
	l->timers = timers_new(NULL, NULL);
	return l;
}

grpc_completion_queue *loop_cq(jr_loop *l)
{
	return l->cq;
}

int loop_timers_pending(const jr_loop *l)
{
	return timers_pending(l->timers);
}

jr_timers *loop_timers(jr_loop *l)
{
	return l->timers;
}

jr_timer_id loop_timer_add(jr_loop *l, int64_t delay_ms, void (*fn)(void *arg), void *arg)
{
	return timers_add(l->timers, delay_ms, fn, arg);
}

void loop_timer_cancel(jr_loop *l, jr_timer_id id)
{
	timers_cancel(l->timers, id);
}

static gpr_timespec deadline_in(int64_t ms)
{
	if (ms <= 0)
		return gpr_inf_past(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* dispatch: runs the completion in ev, then drains what is already queued. */
static int dispatch(jr_loop *l, grpc_event ev)
{
	int n = 0;
	while (ev.type == GRPC_OP_COMPLETE) {
		jr_tag *tag = ev.tag;
		tag->fn(tag->arg, ev.success);
		if (++n >= LOOP_MAX_EVENTS)
			break;
		ev = grpc_completion_queue_next(l->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
	}
	return n;
}

int loop_run_once(jr_loop *l, int64_t max_wait_ms)
{
	int64_t start = loop_now_ms();
	int64_t end = max_wait_ms < 0 || max_wait_ms > INT64_MAX - start ? INT64_MAX
									 : start + max_wait_ms;
	for (;;) {
		int64_t now = loop_now_ms();
		int64_t until = end;
		if (timers_next_due(l->timers) < until)
			until = timers_next_due(l->timers);
		gpr_timespec deadline = until == INT64_MAX ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
							    : deadline_in(until - now);
		grpc_event ev = grpc_completion_queue_next(l->cq, deadline, NULL);
		log_batch_begin(); /* this turn's INFO lines go out together, before the next wait */
		int n = dispatch(l, ev);
		n += timers_run_due(l->timers);
		log_batch_end();
		/* A wake-up a hair before the timer's millisecond ran nothing: wait again. */
		if (n > 0 || ev.type == GRPC_QUEUE_SHUTDOWN || loop_now_ms() >= end)
			return n;
	}
}

void loop_free(jr_loop *l)
{
	if (!l)
		return;
	grpc_completion_queue_shutdown(l->cq);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE) {
			jr_tag *tag = ev.tag;
			tag->fn(tag->arg, 0);
		}
	}
	grpc_completion_queue_destroy(l->cq);
	while (l->post_head) {
		posted *p = l->post_head;
		l->post_head = p->next;
		free(p);
	}
	if (l->lame)
		grpc_channel_destroy(l->lame);
	pthread_mutex_destroy(&l->mu);
	timers_free(l->timers);
	free(l);
}

static void wake_done(void *arg, int ok)
{
	jr_loop *l = arg;
	wake_call *w = &l->wake;
	grpc_metadata_array_destroy(&w->trailing);
	grpc_slice_unref(w->details);
	grpc_call_unref(w->call);
	w->call = NULL;
	pthread_mutex_lock(&l->mu);
	posted *p = l->post_head;
	l->post_head = l->post_tail = NULL;
	l->wake_pending = 0;
	pthread_mutex_unlock(&l->mu);
	while (p) {
		posted *next = p->next;
		if (ok)
			p->fn(p->arg);
		free(p);
		p = next;
	}
}

/* wake_start: the caller holds mu and has set wake_pending. */
static void wake_start(jr_loop *l)
{
	wake_call *w = &l->wake;
	if (!l->lame)
		l->lame = grpc_lame_client_channel_create(NULL, GRPC_STATUS_UNAVAILABLE, "loop wake-up");
	memset(w, 0, sizeof *w);
	w->tag.fn = wake_done;
	w->tag.arg = l;
	grpc_metadata_array_init(&w->trailing);
	w->call = grpc_channel_create_call(l->lame, NULL, GRPC_PROPAGATE_DEFAULTS, l->cq,
					   grpc_slice_from_static_string("/jobrelay.Loop/Wake"), NULL,
					   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[1].data.recv_status_on_client.trailing_metadata = &w->trailing;
	ops[1].data.recv_status_on_client.status = &w->status;
	ops[1].data.recv_status_on_client.status_details = &w->details;
	grpc_call_start_batch(w->call, ops, 2, &w->tag, NULL);
}

void loop_post(jr_loop *l, void (*fn)(void *arg), void *arg)
{
	posted *p = jr_malloc(sizeof *p);
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->post_tail)
		l->post_tail->next = p;
	else
		l->post_head = p;
	l->post_tail = p;
	if (!l->wake_pending) {
		l->wake_pending = 1;
		wake_start(l);
	}
	pthread_mutex_unlock(&l->mu);
}
