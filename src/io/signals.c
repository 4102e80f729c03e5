#include "signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "mem.h"

typedef struct sigctx {
	jr_loop *loop;
	void (*on_signal)(void *arg, int signo);
	void *arg;
} sigctx;

typedef struct sigpost {
	sigctx *ctx;
	int signo;
} sigpost;

/* The loop signals go to; NULL once signals_stop ran (the loop may be freed). */
static pthread_mutex_t target_mu = PTHREAD_MUTEX_INITIALIZER;
static sigctx *target;

static void blocked_set(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGINT);
}

void signals_block(void)
{
	sigset_t s;
	blocked_set(&s);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void deliver(void *arg)
{
	sigpost *p = arg;
	p->ctx->on_signal(p->ctx->arg, p->signo);
	free(p);
}

static void *signal_thread(void *arg)
{
	sigctx *ctx = arg;
	sigset_t s;
	blocked_set(&s);
	for (;;) {
		int signo;
		if (sigwait(&s, &signo) != 0)
			continue;
		pthread_mutex_lock(&target_mu);
		if (target == ctx) {
			sigpost *p = jr_malloc(sizeof *p);
			p->ctx = ctx;
			p->signo = signo;
			loop_post(ctx->loop, deliver, p);
		}
		pthread_mutex_unlock(&target_mu);
	}
	return NULL;
}

int signals_start(jr_loop *l, void (*on_signal)(void *arg, int signo), void *arg)
{
	sigctx *ctx = jr_malloc(sizeof *ctx);
	*ctx = (sigctx){l, on_signal, arg};
	pthread_t t;
	pthread_mutex_lock(&target_mu);
	target = ctx;
	pthread_mutex_unlock(&target_mu);
	if (pthread_create(&t, NULL, signal_thread, ctx) != 0) {
		signals_stop();
		free(ctx);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

void signals_stop(void)
{
	pthread_mutex_lock(&target_mu);
	target = NULL;
	pthread_mutex_unlock(&target_mu);
}
