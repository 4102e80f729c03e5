/*
 * dl_file.h — the NDJSON file dead-letter sink (docs/dead-letter.md).
 */
#ifndef JR_DL_FILE_H
#define JR_DL_FILE_H

#include <stdint.h>

#include "mem.h"
#include "deadletter.h"


/*
 * dl_file_open: a sink appending one record a line to path (created
 * 0600 when missing). Each record is written with one write(2) and then
 * fdatasync'd before write returns 0. A write that fails (ENOSPC, a short
 * write, a failed fdatasync) cuts the file back to where it ended, so the file
 * always ends on a record boundary; when that cut fails, the next write makes
 * it first or fails. NULL with err filled when path cannot be opened.
 */
jr_sink *dl_file_open(const char *path, char *err, size_t errlen);

#endif
