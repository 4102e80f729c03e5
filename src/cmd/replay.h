/*
 * replay.h — `jobrelay replay`: dispatch events from files, folders or stdin.
 */
#ifndef JR_REPLAY_H
#define JR_REPLAY_H

#include <stdio.h>

#include "config.h"
#include "input.h"

typedef struct jr_replay_opts {
	int dry_run;
	int no_retry;
	jr_input_format format;
	const char *route;        /* only this route, or NULL */
	char *const *paths;
	int n_paths;
	const char *run_endpoint; /* NULL: environment / default */
	int progress;             /* 1: a progress line on stderr */
	FILE *out;                /* dry-run lines, and records of events that could not be dead-lettered */
	FILE *summary;            /* the summary at the end */
} jr_replay_opts;

/* replay_run: runs the whole replay; returns the exit code (docs/replay.md). */
int replay_run(const jr_config *cfg, const jr_replay_opts *o);

#endif
