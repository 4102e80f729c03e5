/*
 * pull.h — `jobrelay pull`: the StreamingPull worker on the configured
 * subscription (docs/pull.md).
 */
#ifndef JR_PULL_H
#define JR_PULL_H

#include "config.h"

typedef struct jr_pull_opts {
	const char *pubsub_endpoint; /* NULL: $PUBSUB_EMULATOR_HOST, else pubsub.googleapis.com:443 */
	const char *run_endpoint;    /* NULL: $JOBRELAY_RUN_ENDPOINT, else run.googleapis.com:443 */
	int http_port;               /* < 0: $PORT when set, else no HTTP server; 0: any free port */
	const char *bind;            /* IPv4 address of the HTTP server; NULL: 0.0.0.0 */
} jr_pull_opts;

/*
 * pull_run: pulls cfg->subscription and dispatches every message until
 * SIGTERM or SIGINT, then drains (in-flight deliveries get shutdown_grace,
 * the rest are nacked, acks are flushed) and returns the exit code (docs/pull.md):
 * 0 after a drain; 2 without a subscription, or with a dead-letter file or
 * port that cannot be opened; 3 when Pub/Sub or the Run API cannot be
 * reached at start-up, or the subscription cannot be pulled (NOT_FOUND,
 * PERMISSION_DENIED, ...). signals_block must have run before grpc_init, and
 * grpc_init before this call. Logs go where log_setup sent them.
 */
int pull_run(const jr_config *cfg, const jr_pull_opts *o);

#endif
