#include "dl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"

typedef struct file_sink {
	jr_sink base;
	int fd;
	char *path;
	jr_buf line;
	off_t cut;    /* a failed write could not be cut back to here; -1: none pending */
} file_sink;

/*
 * file_undo: cuts the file back to end (the end of the last whole record), so
 * a failed write leaves no partial line. When even that fails, f->cut keeps
 * end and the next write tries again before it writes.
 */
static void file_undo(file_sink *f, off_t end)
{
	if (ftruncate(f->fd, end) == 0)
		return;
	f->cut = end;
	log_kv(JR_LOG_ERROR, "DEADLETTER-TRUNCATE",
	       "cannot cut a partial record from the dead-letter file; the next write retries",
	       "path", f->path, "error", strerror(errno), NULL);
}

/* file_end: the size of the file, after cutting any partial record left by a failed write. */
static off_t file_end(file_sink *f, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(f->fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", f->path, strerror(errno));
		return -1;
	}
	if (f->cut >= 0 && st.st_size > f->cut) {
		if (ftruncate(f->fd, f->cut) < 0) {
			snprintf(err, errlen, "cannot cut a partial record from %s: %s", f->path,
				 strerror(errno));
			return -1;
		}
		st.st_size = f->cut;
	}
	f->cut = -1;
	return st.st_size;
}

static int file_append(file_sink *f, char *err, size_t errlen);

static int file_write(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		      size_t errlen)
{
	file_sink *f = (file_sink *)s;
	buf_reset(&f->line);
	if (deadletter_write_json(&f->line, r) < 0 || buf_addc(&f->line, '\n') < 0) {
		snprintf(err, errlen, "dead-letter record too large for %s", f->path);
		return -1;
	}
	/* an exclusive lock while the record goes in: a cut-back after a failed write
	 * must never cut another writer's record (a second instance, a replay) */
	while (flock(f->fd, LOCK_EX) < 0 && errno == EINTR)
		;
	int rc = file_append(f, err, errlen);
	flock(f->fd, LOCK_UN);
	return rc;
}

/* file_append: f->line at the end of the file, durable, or nothing of it (the lock held). */
static int file_append(file_sink *f, char *err, size_t errlen)
{
	off_t end = file_end(f, err, errlen);
	if (end < 0)
		return -1;
	size_t off = 0;
	while (off < f->line.len) {
		ssize_t w = write(f->fd, f->line.data + off, f->line.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "writing %s: %s", f->path,
				 w == 0 ? "nothing written" : strerror(errno));
			file_undo(f, end);
			return -1;
		}
		off += (size_t)w;
	}
	if (fdatasync(f->fd) < 0 && errno != EINVAL) {
		snprintf(err, errlen, "flushing %s: %s", f->path, strerror(errno));
		file_undo(f, end); /* not confirmed: the event is held and written again */
		return -1;
	}
	return 0;
}

static void file_close(jr_sink *s)
{
	file_sink *f = (file_sink *)s;
	close(f->fd);
	free(f->path);
	buf_free(&f->line);
	free(f);
}

jr_sink *dl_file_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open dead-letter file %s: %s", path, strerror(errno));
		return NULL;
	}
	file_sink *f = jr_calloc(1, sizeof *f);
	f->base.name = "file";
	f->base.write = file_write;
	f->base.close = file_close;
	f->fd = fd;
	f->path = jr_strdup(path);
	f->cut = -1;
	/* an event is at most 10 MiB by default; its record, escaped, a few times that */
	buf_init(&f->line, 64u << 20);
	return &f->base;
}
