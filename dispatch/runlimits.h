/*
 * runlimits.h — the Run API's documented limits on what a RunJob request
 * overrides, in one table, and the check of a rendered request against them.
 *
 * A request over one of these limits is refused by the Run API with
 * INVALID_ARGUMENT; checked here first, it costs only its event (invalid_event)
 * and never reaches the job's breaker. The config loader checks against the
 * same table what it can know without an event. Sources: docs/configuration.md,
 * "Limits checked before sending".
 */
#ifndef JR_RUNLIMITS_H
#define JR_RUNLIMITS_H

#include "route.h"

enum {
	/* bytes in one env value: google.cloud.run.v2.EnvVar.value */
	JR_RUN_ENV_VALUE_MAX = 32768,
	/* characters in one env name: google.cloud.run.v2.EnvVar.name */
	JR_RUN_ENV_NAME_MAX = 32768,
	/* env variables in one container ("Configure environment variables for jobs") */
	JR_RUN_ENV_COUNT_MAX = 1000,
	/* args of one container ("Configure containers for jobs") */
	JR_RUN_ARGS_COUNT_MAX = 1000,
	/* tasks in one execution ("Create jobs") */
	JR_RUN_TASK_COUNT_MAX = 10000,
	/* task timeout, 168 hours ("Set task timeout for jobs") */
	JR_RUN_TIMEOUT_MAX_MS = 168 * 3600 * 1000,
	/* env variables jobrelay adds to every request (CE_*, JOBRELAY_*), at most; TRACEPARENT
	 * is not counted: it is left out of a request at the count limit (route.c) */
	JR_RUN_AUTO_ENV_MAX = 7,
};

/*
 * runlimits_check: 0 when req is within every limit above; else -1 with *err
 * (a new string, caller frees) naming the first field over its limit, its
 * size and the limit, e.g. "env PAYLOAD_B64 is 32769 bytes; Cloud Run allows at
 * most 32768 bytes in an env value".
 */
int runlimits_check(const jr_runreq *req, char **err);

#endif
