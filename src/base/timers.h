/*
 * timers.h — one-shot timers over a clock: the loop's timers (loop.h), and a
 * stepped clock's in tests.
 *
 * A jr_timers is owned by whoever made it (timers_new / timers_free); it is
 * not thread-safe: one thread adds, cancels and runs. Callbacks run only
 * from timers_run_due, never from inside timers_add or timers_cancel.
 */
#ifndef JR_TIMERS_H
#define JR_TIMERS_H

#include <stdint.h>

typedef struct jr_timers jr_timers;
typedef uint64_t jr_timer_id;

/* timers_monotonic_ms: CLOCK_MONOTONIC in milliseconds. */
int64_t timers_monotonic_ms(void);

/*
 * timers_new: an empty set on clock(ctx) (milliseconds, never going back);
 * clock NULL is timers_monotonic_ms.
 */
jr_timers *timers_new(int64_t (*clock)(void *ctx), void *ctx);
/* timers_free: frees the set; timers not yet run are dropped unrun. NULL is a no-op. */
void timers_free(jr_timers *t);
/* timers_now: the set's clock, now. */
int64_t timers_now(const jr_timers *t);

/* timers_add: runs fn(arg) once, at the first timers_run_due after delay_ms; an id (never 0). */
jr_timer_id timers_add(jr_timers *t, int64_t delay_ms, void (*fn)(void *arg), void *arg);
/* timers_cancel: a timer not yet run is dropped; unknown and stale ids are ignored. */
void timers_cancel(jr_timers *t, jr_timer_id id);
/* timers_pending: timers not yet run. */
int timers_pending(const jr_timers *t);
/* timers_next_due: the clock time the earliest timer is due at; INT64_MAX when none. */
int64_t timers_next_due(const jr_timers *t);
/*
 * timers_run_due: runs, in (due, order added) order, the timers due by now
 * that existed when it was called (one added by a callback waits for the next
 * call, even with delay 0). Returns how many ran.
 */
int timers_run_due(jr_timers *t);

#endif
