/*
 * mem.h — allocation wrappers and a bounded growable buffer.
 *
 * Allocation failure aborts the process (jobrelay is a daemon its platform
 * restarts), so callers never check for NULL from these functions and error
 * paths only deal with failures that come from outside.
 */
#ifndef JR_MEM_H
#define JR_MEM_H

#include <stddef.h>
#include <stdarg.h>

/* jr_malloc, jr_calloc, jr_realloc: as the libc calls; abort on failure. */
void *jr_malloc(size_t n);
void *jr_calloc(size_t nmemb, size_t size);
void *jr_realloc(void *p, size_t n);
/* jr_strdup / jr_strndup: copy of s (first n bytes), NUL-terminated; caller frees. */
char *jr_strdup(const char *s);
char *jr_strndup(const char *s, size_t n);
/* jr_asprintf: formatted string in a new allocation; caller frees. */
char *jr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * jr_buf: a byte buffer with a hard maximum size (curl's dynbuf idea).
 * The content is always NUL-terminated (the NUL is not counted in len).
 * A zeroed jr_buf with max == 0 is unbounded.
 */
typedef struct jr_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: no limit */
} jr_buf;

/* buf_init: empty buffer that refuses to grow past max bytes (0: no limit). */
void buf_init(jr_buf *b, size_t max);
/* buf_free: releases the memory; the buffer is empty and reusable after. */
void buf_free(jr_buf *b);
/* buf_reset: len = 0, memory kept. */
void buf_reset(jr_buf *b);
/* buf_add: append n bytes; returns 0, or -1 (buffer unchanged) past max. */
int buf_add(jr_buf *b, const void *p, size_t n);
/* buf_adds: append a C string. */
int buf_adds(jr_buf *b, const char *s);
/* buf_addlit: append a string literal, its length known at compile time. */
#define buf_addlit(b, lit) buf_add((b), "" lit, sizeof(lit) - 1)
/*
 * buf_space / buf_added: for writers that know how much they will write at
 * most. buf_space makes room for n more bytes and returns where they go, or
 * NULL (b unchanged) when that would pass max; write at most n bytes there,
 * then buf_added(b, k) makes the first k of them content.
 */
char *buf_space(jr_buf *b, size_t n);
void buf_added(jr_buf *b, size_t k);
/* buf_addc: append one byte. */
int buf_addc(jr_buf *b, char c);
/* buf_addi: append the decimal text of v. */
int buf_addi(jr_buf *b, long long v);
/* buf_printf: append formatted text; -1 past max. */
int buf_printf(jr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * buf_read_file: appends the whole file at path to b. 0, or -1 with *why
 * (static text): the system's reason ("No such file or directory"), or
 * BUF_TOO_LARGE (that very pointer) when it would pass b's max.
 */
extern const char BUF_TOO_LARGE[];
int buf_read_file(jr_buf *b, const char *path, const char **why);
/* buf_take: hands the NUL-terminated content to the caller (never NULL) and empties b. */
char *buf_take(jr_buf *b);

/*
 * jr_arena: a bump allocator. Everything allocated from it is freed at once
 * by arena_free. Used for one event and everything decoded from it.
 */
typedef struct jr_arena_block jr_arena_block;
typedef struct jr_arena {
	jr_arena_block *head;
	size_t used; /* bytes handed out, for limits and metrics */
} jr_arena;

/* arena_init: an empty arena. */
void arena_init(jr_arena *a);
/* arena_free: frees every allocation made from a; a is empty and reusable. */
void arena_free(jr_arena *a);
/* arena_alloc: n zeroed bytes aligned for any type, valid until arena_free. */
void *arena_alloc(jr_arena *a, size_t n);
/* arena_alloc_raw: as arena_alloc, but not zeroed (for callers that write what they read). */
void *arena_alloc_raw(jr_arena *a, size_t n);
/* arena_strndup / arena_strdup: NUL-terminated copies in the arena. */
char *arena_strndup(jr_arena *a, const char *s, size_t n);
char *arena_strdup(jr_arena *a, const char *s);

#endif
