/*
 * input.h — replay inputs: files, folders and "-" (stdin), one event at a time.
 *
 * The format is detected per file (or forced): `.http` captures; NDJSON
 * (`.ndjson`/`.jsonl`, or a file whose first line is a whole JSON value
 * followed by more lines), read line by line so memory does not grow with the
 * file; anything else is one JSON document (a structured event, a batch, a
 * push body, a dead-letter record). Folders are walked in name order.
 */
#ifndef JR_INPUT_H
#define JR_INPUT_H

#include "config.h"
#include "event.h"

typedef enum jr_input_format {
	JR_IN_AUTO,
	JR_IN_JSON,   /* one document per file: structured, batch, push or dead-letter */
	JR_IN_NDJSON, /* one document per line */
	JR_IN_HTTP,   /* an HTTP request capture */
} jr_input_format;

/* input_parse_format: "auto", "json", "batch", "push", "deadletter" (all JR_IN_JSON), "ndjson", "http"; -1 when unknown. */
int input_parse_format(const char *s);

typedef struct jr_input jr_input;

/* Largest whole-document file read at once (NDJSON lines are bounded by limits.event_bytes). */
#define INPUT_DOC_MAX ((size_t)256 << 20)

/* input_new: reads paths in order; lim and topic as for decoding. Nothing is opened yet. */
jr_input *input_new(char *const *paths, int n_paths, jr_input_format fmt, const jr_limits *lim,
		    const char *topic);
/* input_free: closes what is open and frees queued events. */
void input_free(jr_input *in);

typedef struct jr_input_item {
	jr_event *ev;         /* the event (caller owns it), or NULL for a rejected input */
	char *error;          /* when ev is NULL: "FILE:LINE: reason" (caller frees) */
	char *raw;            /* when ev is NULL: the offending text, at most 64 KiB, or NULL (caller frees) */
	size_t raw_len;
} jr_input_item;

/* input_next: 1 with the next item, 0 when every path is done. */
int input_next(jr_input *in, jr_input_item *item);
/* input_position: "FILE:LINE" of the last item returned (valid until the next call). */
const char *input_position(const jr_input *in);

#endif
