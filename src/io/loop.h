/*
 * loop.h — jobrelay's event loop: one gRPC completion queue plus timers.
 *
 * Everything asynchronous (RunJob calls, later StreamingPull) posts jr_tag
 * pointers as completion-queue tags; loop_run_once waits on the queue until
 * the next timer is due, runs due timers, and dispatches completed tags.
 * Single-threaded: all callbacks run on the thread calling loop_run_once.
 */
#ifndef JR_LOOP_H
#define JR_LOOP_H

#include <stdint.h>

#include <grpc/grpc.h>

#include "timers.h"

typedef struct jr_loop jr_loop;

/* A completion-queue tag: fn(arg, ok) runs when the operation batch completes. */
typedef struct jr_tag {
	void (*fn)(void *arg, int ok);
	void *arg;
} jr_tag;

/* loop_new: a loop with its own completion queue. grpc_init must have been called. */
jr_loop *loop_new(void);
/* loop_free: shuts down and drains the queue (pending tags still run with ok=0), frees timers. */
void loop_free(jr_loop *l);
/* loop_cq: the completion queue to start calls on. */
grpc_completion_queue *loop_cq(jr_loop *l);
/* loop_now_ms: monotonic milliseconds. */
int64_t loop_now_ms(void);

/* loop_timers: the loop's timers (timers.h); they run from loop_run_once. */
jr_timers *loop_timers(jr_loop *l);
/* loop_timer_add: runs fn(arg) once after delay_ms; returns an id (never 0). */
jr_timer_id loop_timer_add(jr_loop *l, int64_t delay_ms, void (*fn)(void *arg), void *arg);
/* loop_timer_cancel: a timer not yet run is dropped; unknown ids are ignored. */
void loop_timer_cancel(jr_loop *l, jr_timer_id id);
/* loop_timers_pending: number of timers not yet run. */
int loop_timers_pending(const jr_loop *l);

/*
 * loop_post: runs fn(arg) on the loop's thread, soon, from loop_run_once.
 * The one call that is safe from any thread (an HTTP server thread, a signal
 * thread); posts run in the order made. Posts still queued at loop_free are
 * dropped without running.
 */
void loop_post(jr_loop *l, void (*fn)(void *arg), void *arg);

/*
 * loop_run_once: waits at most max_wait_ms (-1: until the next timer or
 * completion) and runs what became ready. Returns the number of callbacks
 * run.
 */
int loop_run_once(jr_loop *l, int64_t max_wait_ms);

#endif
