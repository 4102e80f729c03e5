/*
 * loop.c — one gRPC completion queue plus a min-heap of timers.
 *
 * Timers live in a slot table; the heap holds slot indexes ordered by
 * (due, seq), so timers due at the same millisecond run in the order they
 * were added. A timer id is (generation << 32 | slot + 1): cancelling looks
 * up the slot in O(1), checks the generation (a stale id is ignored) and
 * removes the heap entry in O(log n). Freed slots go on a free list, so a
 * loop that keeps a steady number of timers stops allocating.
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
#include <time.h>

#include "log.h"
#include "mem.h"

/* Completions dispatched per loop_run_once before timers get their turn. */
#define LOOP_MAX_EVENTS 256

typedef struct timer_slot {
	int64_t due;
	uint64_t seq;
	void (*fn)(void *arg);
	void *arg;
	uint32_t gen;
	uint32_t heap_pos; /* index in heap when active; next free slot when not */
	int active;
} timer_slot;

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
	timer_slot *slots;
	uint32_t n_slots;
	uint32_t free_head; /* UINT32_MAX: none */
	uint32_t *heap;     /* slot indexes */
	uint32_t n_heap;
	uint64_t next_seq;
};

#define NO_SLOT UINT32_MAX

int64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

jr_loop *loop_new(void)
{
	jr_loop *l = jr_calloc(1, sizeof *l);
	l->cq = grpc_completion_queue_create_for_next(NULL);
	pthread_mutex_init(&l->mu, NULL);
	l->free_head = NO_SLOT;
	l->next_seq = 1;
	return l;
}

grpc_completion_queue *loop_cq(jr_loop *l)
{
	return l->cq;
}

int loop_timers_pending(const jr_loop *l)
{
	return (int)l->n_heap;
}

/* heap ordering: earlier due first, then lower seq. */
static int slot_before(const jr_loop *l, uint32_t a, uint32_t b)
{
	const timer_slot *x = &l->slots[a], *y = &l->slots[b];
	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void heap_place(jr_loop *l, uint32_t pos, uint32_t slot)
{
	l->heap[pos] = slot;
	l->slots[slot].heap_pos = pos;
}

static void sift_up(jr_loop *l, uint32_t pos)
{
	uint32_t slot = l->heap[pos];
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (!slot_before(l, slot, l->heap[parent]))
			break;
		heap_place(l, pos, l->heap[parent]);
		pos = parent;
	}
	heap_place(l, pos, slot);
}

static void sift_down(jr_loop *l, uint32_t pos)
{
	uint32_t slot = l->heap[pos];
	for (;;) {
		uint32_t child = 2 * pos + 1;
		if (child >= l->n_heap)
			break;
		if (child + 1 < l->n_heap && slot_before(l, l->heap[child + 1], l->heap[child]))
			child++;
		if (!slot_before(l, l->heap[child], slot))
			break;
		heap_place(l, pos, l->heap[child]);
		pos = child;
	}
	heap_place(l, pos, slot);
}

/* heap_remove: takes the entry at pos out of the heap and frees its slot. */
static void heap_remove(jr_loop *l, uint32_t pos)
{
	uint32_t slot = l->heap[pos];
	uint32_t last = l->heap[--l->n_heap];
	if (pos < l->n_heap) {
		heap_place(l, pos, last);
		if (pos > 0 && slot_before(l, last, l->heap[(pos - 1) / 2]))
			sift_up(l, pos);
		else
			sift_down(l, pos);
	}
	timer_slot *s = &l->slots[slot];
	s->active = 0;
	s->fn = NULL;
	s->arg = NULL;
	s->gen++;
	s->heap_pos = l->free_head;
	l->free_head = slot;
}

static uint32_t slot_get(jr_loop *l)
{
	if (l->free_head != NO_SLOT) {
		uint32_t i = l->free_head;
		l->free_head = l->slots[i].heap_pos;
		return i;
	}
	if (l->n_slots == NO_SLOT - 1)
		abort(); /* four billion timers: a leak, not a workload */
	uint32_t cap = l->n_slots ? l->n_slots * 2 : 16;
	if (cap >= NO_SLOT)
		cap = NO_SLOT - 1;
	l->slots = jr_realloc(l->slots, (size_t)cap * sizeof *l->slots);
	l->heap = jr_realloc(l->heap, (size_t)cap * sizeof *l->heap);
	for (uint32_t i = l->n_slots; i < cap; i++) {
		l->slots[i] = (timer_slot){ .gen = 1, .heap_pos = i + 1 < cap ? i + 1 : NO_SLOT };
	}
	l->free_head = l->n_slots + 1 < cap ? l->n_slots + 1 : NO_SLOT;
	uint32_t i = l->n_slots;
	l->n_slots = cap;
	return i;
}

jr_timer_id loop_timer_add(jr_loop *l, int64_t delay_ms, void (*fn)(void *arg), void *arg)
{
	if (delay_ms < 0)
		delay_ms = 0;
	int64_t now = loop_now_ms();
	uint32_t i = slot_get(l);
	timer_slot *s = &l->slots[i];
	s->due = delay_ms > INT64_MAX - now ? INT64_MAX : now + delay_ms;
	s->seq = l->next_seq++;
	s->fn = fn;
	s->arg = arg;
	s->active = 1;
	l->heap[l->n_heap] = i;
	sift_up(l, l->n_heap++);
	return ((jr_timer_id)s->gen << 32) | (i + 1u);
}

void loop_timer_cancel(jr_loop *l, jr_timer_id id)
{
	uint32_t low = (uint32_t)(id & 0xffffffffu);
	if (low == 0 || low > l->n_slots)
		return;
	timer_slot *s = &l->slots[low - 1];
	if (!s->active || s->gen != (uint32_t)(id >> 32))
		return;
	heap_remove(l, s->heap_pos);
}

/* run_timers: runs timers due by now that existed before this pass. */
static int run_timers(jr_loop *l)
{
	int64_t now = loop_now_ms();
	uint64_t seq_limit = l->next_seq;
	int n = 0;
	while (l->n_heap > 0) {
		timer_slot *s = &l->slots[l->heap[0]];
		if (s->due > now || s->seq >= seq_limit)
			break;
		void (*fn)(void *) = s->fn;
		void *arg = s->arg;
		heap_remove(l, 0);
		fn(arg);
		n++;
	}
	return n;
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
		if (l->n_heap > 0 && l->slots[l->heap[0]].due < until)
			until = l->slots[l->heap[0]].due;
		gpr_timespec deadline = until == INT64_MAX ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
							    : deadline_in(until - now);
		grpc_event ev = grpc_completion_queue_next(l->cq, deadline, NULL);
		log_batch_begin(); /* this turn's INFO lines go out together, before the next wait */
		int n = dispatch(l, ev);
		n += run_timers(l);
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
	free(l->slots);
	free(l->heap);
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
