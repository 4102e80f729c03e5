#include "runlimits.h"

#include <string.h>

int runlimits_check(const jr_runreq *req, char **err)
{
	*err = NULL;
	if (req->n_env > JR_RUN_ENV_COUNT_MAX) {
		*err = jr_asprintf("%zu env variables; Cloud Run allows at most %d in a container",
				   req->n_env, JR_RUN_ENV_COUNT_MAX);
		return -1;
	}
	for (size_t i = 0; i < req->n_env; i++) {
		size_t n = strlen(req->env[i].value);
		if (n > JR_RUN_ENV_VALUE_MAX) {
			*err = jr_asprintf("env %s is %zu bytes; Cloud Run allows at most %d bytes "
					   "in an env value", req->env[i].key, n, JR_RUN_ENV_VALUE_MAX);
			return -1;
		}
	}
	if (req->n_args > JR_RUN_ARGS_COUNT_MAX) {
		*err = jr_asprintf("%zu args; Cloud Run allows at most %d in a container",
				   req->n_args, JR_RUN_ARGS_COUNT_MAX);
		return -1;
	}
	if (req->task_count < 0 || req->task_count > JR_RUN_TASK_COUNT_MAX) {
		*err = jr_asprintf("task_count %d; Cloud Run allows 1 to %d", req->task_count,
				   JR_RUN_TASK_COUNT_MAX);
		return -1;
	}
	if (req->timeout_ms < 0 || req->timeout_ms > JR_RUN_TIMEOUT_MAX_MS) {
		*err = jr_asprintf("timeout %lldms; Cloud Run allows at most 168h",
				   (long long)req->timeout_ms);
		return -1;
	}
	return 0;
}
