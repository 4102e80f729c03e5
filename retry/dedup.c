#include "dedup.h"

#include <stdlib.h>

#include "mem.h"

#define NIL UINT32_MAX

typedef struct entry {
	uint64_t key;
	int64_t at_ms;
	uint32_t hnext;       /* bucket chain */
	uint32_t older, newer; /* age list; free entries chain through newer */
	uint32_t count;
	int64_t mark;         /* dedup_mark's value */
} entry;

struct jr_dedup {
	int64_t ttl_ms;
	size_t max;
	entry *e;
	uint32_t cap, used;   /* entries allocated, entries ever handed out */
	uint32_t *bucket;
	uint32_t nbucket;     /* a power of two */
	uint32_t oldest, newest, free_list;
	size_t n;
	uint64_t evicted;
};

jr_dedup *dedup_new(int64_t ttl_ms, size_t max_entries)
{
	jr_dedup *d = jr_calloc(1, sizeof *d);
	d->ttl_ms = ttl_ms;
	d->max = max_entries >= 1 ? max_entries : 1;
	if (d->max > (1u << 30))
		d->max = 1u << 30;
	d->oldest = d->newest = d->free_list = NIL;
	return d;
}

void dedup_free(jr_dedup *d)
{
	if (!d)
		return;
	free(d->e);
	free(d->bucket);
	free(d);
}

size_t dedup_count(const jr_dedup *d)
{
	return d->n;
}

uint64_t dedup_evicted(const jr_dedup *d)
{
	return d->evicted;
}

static uint32_t slot(const jr_dedup *d, uint64_t key)
{
	/* the key is already a hash; mix once more so low bits spread */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (uint32_t)key & (d->nbucket - 1);
}

static uint32_t *find_link(jr_dedup *d, uint64_t key)
{
	if (!d->nbucket)
		return NULL;
	uint32_t *l = &d->bucket[slot(d, key)];
	while (*l != NIL && d->e[*l].key != key)
		l = &d->e[*l].hnext;
	return l;
}

static void age_unlink(jr_dedup *d, uint32_t i)
{
	entry *x = &d->e[i];
	if (x->older != NIL)
		d->e[x->older].newer = x->newer;
	else
		d->oldest = x->newer;
	if (x->newer != NIL)
		d->e[x->newer].older = x->older;
	else
		d->newest = x->older;
}

static void age_push(jr_dedup *d, uint32_t i)
{
	entry *x = &d->e[i];
	x->older = d->newest;
	x->newer = NIL;
	if (d->newest != NIL)
		d->e[d->newest].newer = i;
	else
		d->oldest = i;
	d->newest = i;
}

static void remove_entry(jr_dedup *d, uint32_t i)
{
	uint32_t *l = find_link(d, d->e[i].key);
	*l = d->e[i].hnext;
	age_unlink(d, i);
	d->e[i].newer = d->free_list;
	d->free_list = i;
	d->n--;
}

static void expire(jr_dedup *d, int64_t now_ms)
{
	while (d->oldest != NIL && now_ms - d->e[d->oldest].at_ms >= d->ttl_ms)
		remove_entry(d, d->oldest);
}

static void rehash(jr_dedup *d, uint32_t nb)
{
	free(d->bucket);
	d->bucket = jr_malloc(nb * sizeof *d->bucket);
	d->nbucket = nb;
	for (uint32_t b = 0; b < nb; b++)
		d->bucket[b] = NIL;
	for (uint32_t i = d->oldest; i != NIL; i = d->e[i].newer) {
		uint32_t s = slot(d, d->e[i].key);
		d->e[i].hnext = d->bucket[s];
		d->bucket[s] = i;
	}
}

static uint32_t new_entry(jr_dedup *d)
{
	if (d->free_list != NIL) {
		uint32_t i = d->free_list;
		d->free_list = d->e[i].newer;
		return i;
	}
	if (d->used == d->cap) {
		size_t c = d->cap ? (size_t)d->cap * 2 : 64;
		if (c > d->max)
			c = d->max;
		d->e = jr_realloc(d->e, c * sizeof *d->e);
		d->cap = (uint32_t)c;
	}
	return d->used++;
}

int dedup_seen(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	expire(d, now_ms);
	uint32_t *l = find_link(d, key);
	return l && *l != NIL;
}

/* put: key's entry, renewed (made when absent); NIL when ttl is 0. */
static uint32_t put(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	if (d->ttl_ms <= 0)
		return NIL;
	expire(d, now_ms);
	uint32_t *l = find_link(d, key);
	if (l && *l != NIL) {
		uint32_t i = *l;
		d->e[i].at_ms = now_ms;
		age_unlink(d, i);
		age_push(d, i);
		return i;
	}
	if (d->n >= d->max) {
		remove_entry(d, d->oldest);
		d->evicted++;
	}
	if (d->n + 1 > d->nbucket)
		rehash(d, d->nbucket ? d->nbucket * 2 : 64);
	uint32_t i = new_entry(d);
	d->e[i] = (entry){.key = key, .at_ms = now_ms, .mark = -1};
	uint32_t s = slot(d, key);
	d->e[i].hnext = d->bucket[s];
	d->bucket[s] = i;
	age_push(d, i);
	d->n++;
	return i;
}

void dedup_add(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	put(d, key, now_ms);
}

unsigned dedup_bump(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	uint32_t i = put(d, key, now_ms);
	return i == NIL ? 0 : ++d->e[i].count;
}

unsigned dedup_value(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	expire(d, now_ms);
	uint32_t *l = find_link(d, key);
	return l && *l != NIL ? d->e[*l].count : 0;
}

void dedup_mark(jr_dedup *d, uint64_t key, int64_t now_ms, int64_t mark)
{
	uint32_t i = put(d, key, now_ms);
	if (i != NIL)
		d->e[i].mark = mark;
}

int64_t dedup_marked(jr_dedup *d, uint64_t key, int64_t now_ms)
{
	expire(d, now_ms);
	uint32_t *l = find_link(d, key);
	return l && *l != NIL ? d->e[*l].mark : -1;
}

void dedup_forget(jr_dedup *d, uint64_t key)
{
	uint32_t *l = find_link(d, key);
	if (l && *l != NIL)
		remove_entry(d, *l);
}
