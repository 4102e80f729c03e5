/*
 * timers.c — a min-heap of one-shot timers over a clock.
 *
 * Timers live in a slot table; the heap holds slot indexes ordered by
 * (due, seq), so timers due at the same millisecond run in the order they
 * were added. A timer id is (generation << 32 | slot + 1): cancelling looks
 * up the slot in O(1), checks the generation (a stale id is ignored) and
 * removes the heap entry in O(log n). Freed slots go on a free list, so a
 * set that keeps a steady number of timers stops allocating.
 */
#include "timers.h"

#include <stdlib.h>
#include <time.h>

#include "mem.h"

typedef struct timer_slot {
	int64_t due;
	uint64_t seq;
	void (*fn)(void *arg);
	void *arg;
	uint32_t gen;
	uint32_t heap_pos; /* index in heap when active; next free slot when not */
	int active;
} timer_slot;

struct jr_timers {
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
	timer_slot *slots;
	uint32_t n_slots;
	uint32_t free_head; /* NO_SLOT: none */
	uint32_t *heap;     /* slot indexes */
	uint32_t n_heap;
	uint64_t next_seq;
};

#define NO_SLOT UINT32_MAX

int64_t timers_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

jr_timers *timers_new(int64_t (*clock)(void *ctx), void *ctx)
{
	jr_timers *t = jr_calloc(1, sizeof *t);
	t->clock = clock;
	t->clock_ctx = ctx;
	t->free_head = NO_SLOT;
	t->next_seq = 1;
	return t;
}

void timers_free(jr_timers *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->heap);
	free(t);
}

int64_t timers_now(const jr_timers *t)
{
	return t->clock ? t->clock(t->clock_ctx) : timers_monotonic_ms();
}

int timers_pending(const jr_timers *t)
{
	return (int)t->n_heap;
}

int64_t timers_next_due(const jr_timers *t)
{
	return t->n_heap > 0 ? t->slots[t->heap[0]].due : INT64_MAX;
}

/* heap ordering: earlier due first, then lower seq. */
static int slot_before(const jr_timers *l, uint32_t a, uint32_t b)
{
	const timer_slot *x = &l->slots[a], *y = &l->slots[b];
	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void heap_place(jr_timers *l, uint32_t pos, uint32_t slot)
{
	l->heap[pos] = slot;
	l->slots[slot].heap_pos = pos;
}

static void sift_up(jr_timers *l, uint32_t pos)
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

static void sift_down(jr_timers *l, uint32_t pos)
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
static void heap_remove(jr_timers *l, uint32_t pos)
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

static uint32_t slot_get(jr_timers *l)
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

jr_timer_id timers_add(jr_timers *l, int64_t delay_ms, void (*fn)(void *arg), void *arg)
{
	if (delay_ms < 0)
		delay_ms = 0;
	int64_t now = timers_now(l);
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

void timers_cancel(jr_timers *l, jr_timer_id id)
{
	uint32_t low = (uint32_t)(id & 0xffffffffu);
	if (low == 0 || low > l->n_slots)
		return;
	timer_slot *s = &l->slots[low - 1];
	if (!s->active || s->gen != (uint32_t)(id >> 32))
		return;
	heap_remove(l, s->heap_pos);
}

int timers_run_due(jr_timers *l)
{
	int64_t now = timers_now(l);
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
