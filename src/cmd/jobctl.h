/*
 * jobctl.h — the manual job-control commands: `jobs list`,
 * `jobs run`, `executions list|get|cancel|wait`. docs/jobs.md describes them.
 */
#ifndef JR_JOBCTL_H
#define JR_JOBCTL_H

#include "cli.h"
#include "config.h"
#include "mem.h"
#include "runexec.h"

/* The ids of the commands' flags in the command table (commands.c). */
enum {
	JOBCTL_PROJECT = 1,
	JOBCTL_REGION,
	JOBCTL_LABEL,
	JOBCTL_FORMAT,
	JOBCTL_ENV,
	JOBCTL_UPDATE_ENV,
	JOBCTL_ARGS,
	JOBCTL_TASKS,
	JOBCTL_TIMEOUT,
	JOBCTL_WAIT,
	JOBCTL_ASYNC,
	JOBCTL_LIMIT,
	JOBCTL_JOB
};

/*
 * jobctl_run: runs the parsed `jobs ...` or `executions ...` call (its
 * command is one of the table's jobs and executions commands; the number
 * of arguments is checked). cfg (may be NULL) gives default projects and
 * regions: its own and its routes'. Returns the exit code: 0; 1 a call
 * failed or the execution did not succeed; 2 usage; 3 the Run API could not
 * be reached.
 */
int jobctl_run(const jr_config *cfg, const jr_cli_call *call);

/* The output pieces, for tests: one JSON object (no newline) per job / execution. */
int jobctl_job_json(jr_buf *out, const jr_job *j);
int jobctl_exec_json(jr_buf *out, const jr_execution *e);
/* jobctl_time: Unix ms as RFC 3339 UTC with milliseconds into out[32]; "" for 0. */
void jobctl_time(int64_t ms, char out[32]);
/*
 * jobctl_exec_name: the full name of an execution given as a full name or
 * as its id (JOB-ab12c, the job being the id without its last "-..."),
 * with project and region. New string, or NULL when it cannot be made.
 */
char *jobctl_exec_name(const char *arg, const char *project, const char *region);

#endif
