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
		sigpost *p = jr_malloc(sizeof *p);
		p->ctx = ctx;
		p->signo = signo;
		loop_post(ctx->loop, deliver, p);
	}
	return NULL;
}

int signals_start(jr_loop *l, void (*on_signal)(void *arg, int signo), void *arg)
{
	sigctx *ctx = jr_malloc(sizeof *ctx);
	*ctx = (sigctx){l, on_signal, arg};
	pthread_t t;
	if (pthread_create(&t, NULL, signal_thread, ctx) != 0) {
		free(ctx);
		return -1;
	}
	pthread_detach(t);
	return 0;
}
