/*
 * runexec.h — the Run API v2 calls besides RunJob: list jobs, list, get and
 * cancel executions. Unary calls on the loop's completion queue, over the
 * channel of a Run API client (runjob.h), so they share its connection and
 * credentials. Answers are decoded into the small structs below.
 *
 * Every call either fails at once (-1, cb will not run) or calls cb exactly
 * once from the loop, never from inside the call. The strings and arrays of
 * a result live until cb returns. A response is at most RUNEXEC_MAX_RECV
 * bytes (larger answers end the call with RESOURCE_EXHAUSTED).
 */
#ifndef JR_RUNEXEC_H
#define JR_RUNEXEC_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "runjob.h"

#define RUNEXEC_MAX_RECV RUNJOB_CHANNEL_MAX_RECV

typedef enum jr_exec_state {
	JR_EXEC_PENDING,
	JR_EXEC_RUNNING,
	JR_EXEC_SUCCEEDED,
	JR_EXEC_FAILED,
	JR_EXEC_CANCELLED,
	JR_EXEC_TIMED_OUT,
} jr_exec_state;

/* runexec_state_name: "PENDING", "RUNNING", ... (static). */
const char *runexec_state_name(jr_exec_state s);
/* runexec_state_done: the state is final (succeeded, failed, cancelled, timed out). */
int runexec_state_done(jr_exec_state s);

/* The execution model (source design): what the commands print and runwatch reads. */
typedef struct jr_execution {
	const char *name;        /* projects/P/locations/L/jobs/J/executions/E */
	const char *job;         /* Execution.job: the job id */
	jr_exec_state state;
	int task_count, running, succeeded, failed, cancelled, retried;
	int64_t create_ms, start_ms, completion_ms; /* Unix ms; 0: not set */
	const char *log_uri;     /* NULL when absent */
	const char *reason;      /* the Completed condition's message when it did not succeed, else NULL */
	const char *exec_reason; /* its execution_reason ("NON_ZERO_EXIT_CODE", "CANCELLED"), or NULL */
	const jr_kv *env;        /* env of the template's containers; value NULL for secret refs */
	size_t n_env;
} jr_execution;

typedef struct jr_job {
	const char *name;        /* projects/P/locations/L/jobs/J */
	const jr_kv *labels;
	size_t n_labels;
	int execution_count;
	const char *last_execution; /* latest_created_execution.name, or NULL */
	const char *last_state;     /* its completion status: "RUNNING", "SUCCEEDED", ... or NULL */
	int64_t last_create_ms;
} jr_job;

typedef struct jr_adminres {
	int code;                 /* gRPC status; 0 = OK */
	const char *message;      /* "" when none */
	const jr_job *jobs;       /* ListJobs */
	size_t n_jobs;
	const jr_execution *execs; /* ListExecutions; GetExecution and CancelExecution: one */
	size_t n_execs;
	const char *next_page_token; /* list calls: "" on the last page */
} jr_adminres;

typedef void (*jr_admin_cb)(void *arg, const jr_adminres *res);

typedef struct jr_runexec jr_runexec;

/* runexec_new: a client over api's channel and loop; free it before api. */
jr_runexec *runexec_new(jr_runjob *api);
/* runexec_free: cancels calls in flight, runs the loop until each callback ran (CANCELLED), frees. */
void runexec_free(jr_runexec *a);

/*
 * The calls. timeout_ms <= 0: no deadline. page_token NULL or "" for the
 * first page; page_size <= 0 lets the server choose. Each sends the
 * x-goog-request-params its method's annotation asks for: ListJobs
 * location=L (google.api.routing); the Executions methods, which have no
 * routing annotation, name= or parent= (the http path variables).
 */
int runexec_list_jobs(jr_runexec *a, const char *parent, int page_size, const char *page_token,
		       int64_t timeout_ms, jr_admin_cb cb, void *arg);
int runexec_list_executions(jr_runexec *a, const char *job, int page_size,
			     const char *page_token, int64_t timeout_ms, jr_admin_cb cb, void *arg);
int runexec_get_execution(jr_runexec *a, const char *name, int64_t timeout_ms, jr_admin_cb cb,
			   void *arg);
/* runexec_cancel_execution: the answer's execution is the Operation's metadata, when present. */
int runexec_cancel_execution(jr_runexec *a, const char *name, int64_t timeout_ms, jr_admin_cb cb,
			      void *arg);

/*
 * runexec_exec_state: the state from the Completed condition (cond_state:
 * google.cloud.run.v2.Condition.State number, -1 when there is none), its
 * execution_reason name (or NULL) and message, and the counts, for
 * executions without that condition. A failure whose message says the task
 * timed out is TIMED_OUT: the API has no reason code for it (docs/jobs.md).
 */
jr_exec_state runexec_exec_state(int cond_state, const char *exec_reason, const char *message,
				  const jr_execution *counts);
/* runexec_env_get: the value of env var name in e (the last one when repeated), or NULL. */
const char *runexec_env_get(const jr_execution *e, const char *name);

#endif
