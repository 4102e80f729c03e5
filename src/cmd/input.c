#include "input.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "jsonparse.h"
#include "mem.h"

#define RAW_MAX (64 * 1024)
#define CHUNK (256 * 1024)
#define PEEK (64 * 1024)

typedef struct queued {
	jr_input_item item;
	struct queued *next;
} queued;

struct jr_input {
	char **files;
	size_t n_files, cap_files, next_file;
	jr_input_format fmt;
	const jr_limits *lim;
	const char *topic;
	/* the file being read */
	FILE *f;
	const char *name;
	size_t name_len;
	jr_input_format cur_fmt;
	long line;
	char *buf;
	size_t cap, start, end;
	int eof;
	/* decoded items waiting to be handed out */
	queued *head, *tail;
	char pos[512];
};

int input_parse_format(const char *s)
{
	static const struct {
		const char *name;
		jr_input_format f;
	} names[] = {
		{"auto", JR_IN_AUTO}, {"json", JR_IN_JSON}, {"batch", JR_IN_JSON},
		{"push", JR_IN_JSON}, {"deadletter", JR_IN_JSON}, {"ndjson", JR_IN_NDJSON},
		{"http", JR_IN_HTTP},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].name) == 0)
			return (int)names[i].f;
	return -1;
}

static void add_file(jr_input *in, const char *path)
{
	if (in->n_files == in->cap_files) {
		in->cap_files = in->cap_files ? in->cap_files * 2 : 16;
		in->files = jr_realloc(in->files, in->cap_files * sizeof *in->files);
	}
	in->files[in->n_files++] = jr_strdup(path);
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* add_path: a file as is; a folder's files in name order, recursively. */
static void add_path(jr_input *in, const char *path, int depth)
{
	struct stat st;
	if (strcmp(path, "-") == 0 || stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || depth > 16) {
		add_file(in, path); /* errors surface when it is opened */
		return;
	}
	struct dirent **ents;
	int n = scandir(path, &ents, visible, name_cmp);
	if (n < 0) {
		add_file(in, path);
		return;
	}
	for (int i = 0; i < n; i++) {
		char *p = jr_asprintf("%s/%s", path, ents[i]->d_name);
		add_path(in, p, depth + 1);
		free(p);
		free(ents[i]);
	}
	free(ents);
}

jr_input *input_new(char *const *paths, int n_paths, jr_input_format fmt, const jr_limits *lim,
		    const char *topic)
{
	jr_input *in = jr_calloc(1, sizeof *in);
	in->fmt = fmt;
	in->lim = lim;
	in->topic = topic;
	for (int i = 0; i < n_paths; i++)
		add_path(in, paths[i], 0);
	return in;
}

static void push_item(jr_input *in, jr_event *ev, char *error, const char *raw, size_t raw_len)
{
	queued *q = jr_calloc(1, sizeof *q);
	q->item.ev = ev;
	q->item.error = error;
	if (raw) {
		size_t n = raw_len < RAW_MAX ? raw_len : RAW_MAX;
		q->item.raw = jr_strndup(raw, n);
		q->item.raw_len = n;
	}
	if (in->tail)
		in->tail->next = q;
	else
		in->head = q;
	in->tail = q;
}

typedef struct decode_arg {
	jr_input *in;
	const char *text;
	size_t len;
} decode_arg;

static void on_decoded(void *arg, jr_event *ev, const char *err)
{
	decode_arg *da = arg;
	if (ev)
		push_item(da->in, ev, NULL, NULL, 0);
	else
		push_item(da->in, NULL, jr_asprintf("%s: %s", da->in->pos, err), da->text, da->len);
}

static void close_file(jr_input *in)
{
	if (in->f && in->f != stdin)
		fclose(in->f);
	in->f = NULL;
	in->start = in->end = 0;
	in->eof = 0;
}

/* fill: reads more into buf after compacting; grows buf up to want bytes. 0 at EOF/error. */
static size_t fill(jr_input *in, size_t want)
{
	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->end == in->cap) {
		if (in->cap >= want)
			return 0;
		size_t cap = in->cap ? in->cap * 2 : CHUNK;
		if (cap > want)
			cap = want;
		in->buf = jr_realloc(in->buf, cap);
		in->cap = cap;
	}
	if (in->eof)
		return 0;
	size_t n = fread(in->buf + in->end, 1, in->cap - in->end, in->f);
	if (n == 0)
		in->eof = 1;
	in->end += n;
	return n;
}

/* set_pos: pos = "NAME:LINE", cut to fit as snprintf would (it runs for every line). */
static void set_pos(jr_input *in)
{
	char num[24], *d = num + sizeof num;
	long v = in->line;
	do
		*--d = (char)('0' + v % 10);
	while (v /= 10);
	size_t max = sizeof in->pos - 1;
	size_t n = in->name_len < max ? in->name_len : max;
	memcpy(in->pos, in->name, n);
	if (n < max)
		in->pos[n++] = ':';
	size_t k = (size_t)(num + sizeof num - d);
	if (k > max - n)
		k = max - n;
	memcpy(in->pos + n, d, k);
	in->pos[n + k] = '\0';
}

static void decode_doc(jr_input *in, const char *text, size_t len)
{
	decode_arg da = {in, text, len};
	jr_decode_ctx dc = {in->lim, in->pos, in->topic, on_decoded, &da};
	set_pos(in);
	if (in->cur_fmt == JR_IN_HTTP)
		decode_http_capture(&dc, text, len);
	else
		decode_json_doc(&dc, text, len);
}

/* find_nl: the next newline in the unread part of the buffer, or NULL. */
static char *find_nl(jr_input *in)
{
	if (in->start == in->end)
		return NULL;
	return memchr(in->buf + in->start, '\n', in->end - in->start);
}

static int is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

/* next_line: decodes the next non-blank NDJSON line; 0 at end of file. */
static int next_line(jr_input *in)
{
	size_t max = in->lim->event_bytes + 1;
	for (;;) {
		char *nl = find_nl(in);
		if (!nl && !in->eof && fill(in, max) > 0)
			continue;
		if (!nl && !in->eof) {
			/* line longer than the limit: reject it and skip to its end */
			in->line++;
			set_pos(in);
			push_item(in, NULL,
				  jr_asprintf("%s: line longer than the event size limit (%zu bytes)",
					      in->pos, in->lim->event_bytes),
				  NULL, 0);
			for (;;) {
				in->start = in->end;
				if (fill(in, max) == 0 && in->eof)
					return 1;
				nl = find_nl(in);
				if (nl) {
					in->start = (size_t)(nl - in->buf) + 1;
					return 1;
				}
			}
		}
		if (!nl && in->start == in->end)
			return 0;
		size_t stop = nl ? (size_t)(nl - in->buf) : in->end;
		const char *line = in->buf + in->start;
		size_t len = stop - in->start;
		in->start = nl ? stop + 1 : in->end;
		in->line++;
		if (is_blank(line, len))
			continue;
		decode_doc(in, line, len);
		return 1;
	}
}

/* looks_ndjson: the first non-blank line is a whole JSON value and more follows. */
static int looks_ndjson(jr_input *in)
{
	const char *p = in->buf + in->start, *end = in->buf + in->end;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
	if (!nl || is_blank(nl, (size_t)(end - nl)))
		return 0;
	jr_arena a;
	char err[128];
	arena_init(&a);
	int ok = jsonparse(&a, p, (size_t)(nl - p), in->lim->json_depth, err, sizeof err) != NULL;
	arena_free(&a);
	return ok;
}

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* open_next: opens the next file and decides its format; 0 when none is left. */
static int open_next(jr_input *in)
{
	while (in->next_file < in->n_files) {
		in->name = in->files[in->next_file++];
		in->name_len = strlen(in->name);
		in->line = 0;
		if (strcmp(in->name, "-") == 0) {
			in->f = stdin;
		} else if (!(in->f = fopen(in->name, "rb"))) {
			snprintf(in->pos, sizeof in->pos, "%s", in->name);
			push_item(in, NULL, jr_asprintf("%s: %s", in->name, strerror(errno)), NULL, 0);
			return 1;
		}
		in->cur_fmt = in->fmt;
		if (in->cur_fmt == JR_IN_AUTO) {
			if (has_suffix(in->name, ".http"))
				in->cur_fmt = JR_IN_HTTP;
			else if (has_suffix(in->name, ".ndjson") || has_suffix(in->name, ".jsonl"))
				in->cur_fmt = JR_IN_NDJSON;
		}
		if (in->cur_fmt == JR_IN_AUTO) {
			while (in->end < PEEK && fill(in, CHUNK) > 0)
				;
			in->cur_fmt = looks_ndjson(in) ? JR_IN_NDJSON : JR_IN_JSON;
		}
		return 1;
	}
	return 0;
}

/* read_whole: the rest of the file as one document. */
static void read_whole(jr_input *in)
{
	while (fill(in, INPUT_DOC_MAX + 1) > 0)
		;
	in->line = 1;
	if (!in->eof) {
		set_pos(in);
		push_item(in, NULL,
			  jr_asprintf("%s: file larger than %zu bytes; split it into NDJSON", in->name,
				      INPUT_DOC_MAX),
			  NULL, 0);
	} else if (is_blank(in->buf + in->start, in->end - in->start)) {
		set_pos(in);
		push_item(in, NULL, jr_asprintf("%s: empty input", in->name), NULL, 0);
	} else {
		decode_doc(in, in->buf + in->start, in->end - in->start);
	}
	close_file(in);
}

int input_next(jr_input *in, jr_input_item *item)
{
	while (!in->head) {
		if (!in->f && !open_next(in))
			return 0;
		if (!in->f)
			continue; /* open failed: its error is queued */
		if (in->cur_fmt == JR_IN_NDJSON) {
			if (!next_line(in))
				close_file(in);
		} else {
			read_whole(in);
		}
	}
	queued *q = in->head;
	in->head = q->next;
	if (!in->head)
		in->tail = NULL;
	*item = q->item;
	if (item->ev && !item->ev->origin)
		item->ev->origin = arena_strdup(&item->ev->arena, in->pos);
	free(q);
	return 1;
}

const char *input_position(const jr_input *in)
{
	return in->pos;
}

void input_free(jr_input *in)
{
	if (!in)
		return;
	close_file(in);
	while (in->head) {
		queued *q = in->head;
		in->head = q->next;
		event_free(q->item.ev);
		free(q->item.error);
		free(q->item.raw);
		free(q);
	}
	for (size_t i = 0; i < in->n_files; i++)
		free(in->files[i]);
	free(in->files);
	free(in->buf);
	free(in);
}
