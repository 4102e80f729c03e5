/*
 * replay.h — `jobrelay replay`: dispatch events from files, folders or stdin.
 */
#ifndef JR_REPLAY_H
#define JR_REPLAY_H

#include <stdio.h>

#include "config.h"
#include "dispatcher.h"
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

/*
 * replay_dry_run_event: what --dry-run does with one event: for each route
 * that matches it (only only_route when not NULL), the RunJob request is
 * rendered and printed on out as one JSON line (docs/replay.md, "Output"),
 * counted in stats[route index] as dispatched, or as failed when it cannot
 * be rendered (logged). line is scratch space. Returns the routes matched.
 * Shared with `redrive --dry-run`, so both print the same lines.
 */
int replay_dry_run_event(const jr_config *cfg, const char *only_route, jr_event *ev, FILE *out,
			 jr_buf *line, jr_route_stats *stats);

#endif
