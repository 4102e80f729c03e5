/*
 * redrive.h — `jobrelay redrive`: re-dispatch dead letters from the
 * dead-letter subscription or a dead-letter file (docs/dead-letter.md,
 * "Redriving dead letters").
 *
 * redrive_main owns the command line (its options and --help), loads the
 * config and runs redrive_run, which owns the rest: the Pub/Sub session (a
 * unary Pull at a time, leases kept by ModifyAckDeadline until each record
 * is acked or released), the Run API client and the dispatcher. A record is
 * acked only once every route it is re-dispatched to returned dispatched (or
 * a duplicate of a dispatch); nothing is dead-lettered again.
 */
#ifndef JR_REDRIVE_H
#define JR_REDRIVE_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define REDRIVE_MAX_CLASSES 16

typedef struct jr_redrive_opts {
	const char *subscription; /* --subscription projects/P/subscriptions/S, or NULL */
	const char *file;         /* --file PATH (NDJSON of the file sink), or NULL */
	int dry_run;
	const char *route;        /* --route: the record's route, or NULL */
	unsigned classes;         /* --class: bit (1 << jr_errclass) per class; 0: any */
	int64_t since_ms;         /* --since: failed at or after (Unix ms); 0: no bound */
	int64_t until_ms;         /* --until: failed at or before (Unix ms); 0: no bound */
	long limit;               /* --limit: records selected at most; 0: no limit */
	int64_t wait_ms;          /* --wait: stop once Pull returned nothing this long */
	int batch;                /* --batch: max_messages of one Pull (1..1000) */
	int include_unconfirmed;  /* --include-unconfirmed: EXECUTION_UNCONFIRMED records too */
	const char *run_endpoint; /* NULL: environment / default */
	FILE *out;                /* dry-run lines; records of the file source that failed again */
	FILE *summary;            /* the summary at the end */
} jr_redrive_opts;

/* redrive_run: the whole redrive; returns the exit code (0, 1, 3: docs/dead-letter.md). */
int redrive_run(const jr_config *cfg, const jr_redrive_opts *o);

/*
 * redrive_main: `jobrelay redrive ARGS`: argv[0] is "redrive". Parses the
 * options (--help prints the usage, exit 0), loads the config at
 * config_path (global --dry-run in dry_run) and runs redrive_run between
 * grpc_init and grpc_shutdown. Returns the exit code (2: usage or config).
 */
int redrive_main(const char *config_path, int dry_run, int argc, char **argv);

#endif
