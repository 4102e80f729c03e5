/*
 * signals.h — SIGTERM and SIGINT delivered to the loop as ordinary callbacks.
 *
 * signals_block must run first in main, before grpc_init or any other thread
 * starts, so that every thread inherits the blocked mask and no thread but
 * the signal thread ever receives them. signals_start then starts that
 * thread: it waits with sigwait and posts each signal to the loop.
 */
#ifndef JR_SIGNALS_H
#define JR_SIGNALS_H

#include "loop.h"

/* signals_block: blocks SIGTERM and SIGINT in the calling thread, ignores SIGPIPE. */
void signals_block(void);
/* signals_start: on_signal(arg, signo) runs on the loop's thread for each signal. 0, or -1. */
int signals_start(jr_loop *l, void (*on_signal)(void *arg, int signo), void *arg);

/*
 * signals_stop: signals from now on are ignored (still blocked) instead of
 * posted; call it before the loop is freed.
 */
void signals_stop(void);

#endif
