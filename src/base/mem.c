#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static void oom(size_t n)
{
	fprintf(stderr, "jobrelay: out of memory allocating %zu bytes\n", n);
	abort();
}

void *jr_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *jr_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *jr_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *jr_strndup(const char *s, size_t n)
{
	char *d = jr_malloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *jr_strdup(const char *s)
{
	return jr_strndup(s, strlen(s));
}

char *jr_asprintf(const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	if ((size_t)n < sizeof small)
		return jr_strndup(small, (size_t)n);
	char *s = jr_malloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void buf_init(jr_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void buf_free(jr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_reset(jr_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int buf_grow(jr_buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		return -1;
	size_t need = b->len + extra + 1;
	if (b->max && need - 1 > b->max)
		return -1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = jr_realloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_add(jr_buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

char *buf_space(jr_buf *b, size_t n)
{
	return buf_grow(b, n) < 0 ? NULL : b->data + b->len;
}

void buf_added(jr_buf *b, size_t k)
{
	b->len += k;
	b->data[b->len] = '\0';
}

int buf_adds(jr_buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(jr_buf *b, char c)
{
	if (b->cap - b->len < 2 || (b->max && b->len >= b->max))
		return buf_add(b, &c, 1); /* grows, or says it is full */
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

int buf_addi(jr_buf *b, long long v)
{
	char d[24], *p = d + sizeof d;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	return buf_add(b, p, (size_t)(d + sizeof d - p));
}

int buf_printf(jr_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof small)
		return buf_add(b, small, (size_t)n);
	if (buf_grow(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *buf_take(jr_buf *b)
{
	char *s = b->data ? b->data : jr_strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

/* Arena blocks: a header followed by the payload; big requests get their own block. */
struct jr_arena_block {
	jr_arena_block *next;
	size_t size, off;
	_Alignas(max_align_t) unsigned char mem[];
};

#define ARENA_BLOCK 4096u
#define ARENA_SPARE 16 /* standard blocks kept per thread for reuse */

/*
 * Freed standard-size blocks wait on a short per-thread list for the next
 * arena (an event, a request: one of each per event on the hot path). A
 * block of 4 KiB is a "large" request to glibc malloc, which consolidates
 * its fast bins on each one; reusing blocks keeps that off the hot path.
 * A thread's list is freed when the thread ends (a pthread key destructor).
 */
static _Thread_local struct {
	jr_arena_block *head;
	int n;
} spare;
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_drop(void *unused)
{
	(void)unused;
	while (spare.head) {
		jr_arena_block *b = spare.head;
		spare.head = b->next;
		free(b);
	}
	spare.n = 0;
}

static void spare_key_init(void)
{
	if (pthread_key_create(&spare_key, spare_drop) != 0)
		abort();
}

static void spare_put(jr_arena_block *b)
{
	if (!spare.head) { /* (re)arm this thread's destructor */
		pthread_once(&spare_once, spare_key_init);
		pthread_setspecific(spare_key, &spare);
	}
	b->next = spare.head;
	spare.head = b;
	spare.n++;
}

void arena_init(jr_arena *a)
{
	a->head = NULL;
	a->used = 0;
}

void arena_free(jr_arena *a)
{
	jr_arena_block *b = a->head;
	while (b) {
		jr_arena_block *n = b->next;
		if (b->size == ARENA_BLOCK && spare.n < ARENA_SPARE)
			spare_put(b);
		else
			free(b);
		b = n;
	}
	a->head = NULL;
	a->used = 0;
}

/* arena_block: a new block for a request of n bytes, at the head unless n is big. */
static jr_arena_block *arena_block(jr_arena *a, size_t n)
{
	jr_arena_block *b = a->head, *nb;
	size_t size = n > ARENA_BLOCK / 2 ? n : ARENA_BLOCK;
	if (size == ARENA_BLOCK && spare.head) {
		nb = spare.head;
		spare.head = nb->next;
		spare.n--;
	} else {
		nb = jr_malloc(sizeof *nb + size);
		nb->size = size;
	}
	nb->off = 0;
	if (b && n > ARENA_BLOCK / 2) {
		/* keep the partly used head for small allocations */
		nb->next = b->next;
		b->next = nb;
	} else {
		nb->next = b;
		a->head = nb;
	}
	return nb;
}

/* arena_take: n bytes aligned to al (a power of two), not zeroed. */
static void *arena_take(jr_arena *a, size_t n, size_t al)
{
	jr_arena_block *b = a->head;
	size_t off = b ? (b->off + al - 1) & ~(al - 1) : 0;
	if (!b || off > b->size || b->size - off < n) {
		b = arena_block(a, n);
		off = 0;
	}
	b->off = off + n;
	a->used += n;
	return b->mem + off;
}

void *arena_alloc_raw(jr_arena *a, size_t n)
{
	return arena_take(a, n, _Alignof(max_align_t));
}

void *arena_alloc(jr_arena *a, size_t n)
{
	void *p = arena_take(a, n, _Alignof(max_align_t));
	memset(p, 0, n);
	return p;
}

char *arena_strndup(jr_arena *a, const char *s, size_t n)
{
	char *d = arena_take(a, n + 1, 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *arena_strdup(jr_arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

const char BUF_TOO_LARGE[] = "larger than the limit";

int buf_read_file(jr_buf *b, const char *path, const char **why)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*why = strerror(errno);
		return -1;
	}
	char chunk[8192];
	size_t n;
	*why = NULL;
	while (!*why && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (buf_add(b, chunk, n) < 0)
			*why = BUF_TOO_LARGE;
	if (!*why && ferror(f))
		*why = strerror(errno ? errno : EIO);
	fclose(f);
	return *why ? -1 : 0;
}
