/*
 * serve.h — `jobrelay serve`: the HTTP server for Pub/Sub push and Eventarc
 * deliveries, answering as docs/serve.md says.
 */
#ifndef JR_SERVE_H
#define JR_SERVE_H

#include <stdint.h>

#include "config.h"

typedef struct jr_serve_opts {
	int port;                   /* < 0: $PORT, else 8080; 0: any free port */
	const char *bind;           /* IPv4 address; NULL: 0.0.0.0 */
	int dry_run;                /* decode, route and render; RunJob completes at once, unsent */
	const char *run_endpoint;   /* NULL: environment / default */
	int max_connections;        /* 0: 1000 */
	int64_t request_timeout_ms; /* a request must arrive in full within it; 0: 30 s */
} jr_serve_opts;

/*
 * serve_run: serves until SIGTERM or SIGINT, then drains (docs/serve.md) and
 * returns the exit code: 0 after a drain; 2 for a dead-letter file or
 * port that cannot be opened, or an invalid auth section; 3 when the Run API
 * cannot be reached at start-up. signals_block must have run before
 * grpc_init (so every thread blocks SIGTERM and SIGINT), and grpc_init
 * before this call, --dry-run too (the loop is a completion queue). Logs go
 * where log_setup sent them.
 */
int serve_run(const jr_config *cfg, const jr_serve_opts *o);

#endif
