/*
 * deadletter.h — the dead-letter record format of docs/dead-letter.md and the
 * NDJSON file sink.
 */
#ifndef JR_DEADLETTER_H
#define JR_DEADLETTER_H

#include <stdint.h>

#include "mem.h"
#include "sink.h"

/* DEADLETTER_MESSAGE_MAX: error messages are cut to this many bytes. */
#define DEADLETTER_MESSAGE_MAX 1024


/*
 * deadletter_write_json: appends r as one JSON object (no newline):
 * {"failed_at","origin","route","attempts","error":{"class","code","message"},
 *  "event":{structured CloudEvent},"message":{Pub/Sub message, when there was one}}
 * and "raw" (a string) instead of "event" for input that never decoded, or
 * "raw_base64" when that input is not UTF-8. The result is valid JSON and
 * valid UTF-8 whatever the input: text about it (origin, error message) has
 * each invalid byte written as U+FFFD.
 */
int deadletter_write_json(jr_buf *out, const jr_dlrecord *r);

/*
 * deadletter_file_open: a sink appending one record a line to path (created
 * 0600 when missing). Each record is written with one write(2) and then
 * fdatasync'd before write returns 0. A write that fails (ENOSPC, a short
 * write, a failed fdatasync) cuts the file back to where it ended, so the file
 * always ends on a record boundary; when that cut fails, the next write makes
 * it first or fails. NULL with err filled when path cannot be opened.
 */
jr_sink *deadletter_file_open(const char *path, char *err, size_t errlen);

#endif
