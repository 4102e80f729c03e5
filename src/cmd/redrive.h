/*
 * redrive.h — `jobrelay redrive`: re-dispatch dead letters from the
 * dead-letter subscription or a dead-letter file (docs/dead-letter.md,
 * "Redriving dead letters").
 *
 * The flags and the help are in commands.c's table; redrive_set_opt reads
 * each flag's value into the options, redrive_main runs redrive_run, which
 * owns the rest: the Pub/Sub session (a
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
	const char *out_path;     /* --out FILE (with --file), or NULL */
	FILE *out;                /* dry-run lines; records of the file source that failed again */
	FILE *summary;            /* the summary at the end */
} jr_redrive_opts;

/* redrive_run: the whole redrive; returns the exit code (0, 1, 3: docs/dead-letter.md). */
int redrive_run(const jr_config *cfg, const jr_redrive_opts *o);

/* The flags of `jobrelay redrive` (ids of commands.c's table). */
enum {
	RD_SUBSCRIPTION = 1,
	RD_FILE,
	RD_ROUTE,
	RD_CLASS,
	RD_SINCE,
	RD_UNTIL,
	RD_LIMIT,
	RD_WAIT,
	RD_BATCH,
	RD_OUT,
	RD_INCLUDE_UNCONFIRMED
};

/* redrive_opts_init: the defaults (wait 5s, batch 100, out stdout, summary stderr). */
void redrive_opts_init(jr_redrive_opts *o, int dry_run);
/* redrive_set_opt: flag id's value v (kept, not copied) into o; -1 after saying what is wrong. */
int redrive_set_opt(jr_redrive_opts *o, int id, const char *v);
/* redrive_check_opts: one source, a well-formed subscription, --out with --file, since <= until; -1 after saying why. */
int redrive_check_opts(const jr_redrive_opts *o);
/*
 * redrive_main: opens --out, runs redrive_run between grpc_init and
 * grpc_shutdown. Returns the exit code (0, 1, 2: --out cannot be opened, 3).
 */
int redrive_main(const jr_config *c, jr_redrive_opts *o);

#endif
