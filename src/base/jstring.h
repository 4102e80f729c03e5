/*
 * jstring.h — JSON strings: the one writer of quoted, escaped JSON string text,
 * shared by the JSON model (dispatch/json.h), the log and the dead-letter
 * records. Nothing here allocates but out's own growth.
 */
#ifndef JR_JSTRING_H
#define JR_JSTRING_H

#include <stddef.h>

#include "mem.h"

/*
 * jstr_write: appends s (n bytes) as a quoted, escaped JSON string.
 * The bytes are copied as they are: the output is valid UTF-8 only when s
 * is (every decoded string is; see jstr_write_text for any other).
 */
int jstr_write(jr_buf *out, const char *s, size_t n);
/*
 * jstr_write_text: as jstr_write, but each byte that starts no valid
 * UTF-8 sequence (utf8.h) is written as U+FFFD, so the output is
 * always valid JSON and UTF-8. For text about the input (error messages, log
 * values), never for data that must come back as it was. -1 past out's max
 * (out unchanged).
 */
int jstr_write_text(jr_buf *out, const char *s, size_t n);

#endif
