/*
 * smap.h — a chained hash table of string keys, intrusive: an entry embeds
 * smap_ent (usually first) and sets its key; the table never copies or frees
 * entries. Buckets double as entries are added (a power of two, >= 64).
 */
#ifndef JR_SMAP_H
#define JR_SMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct smap_ent {
	struct smap_ent *hnext;
	uint64_t h;
	const char *key;
} smap_ent;

typedef struct smap {
	smap_ent **b;
	size_t nb, n;
} smap;

/* smap_hash: FNV-1a 64 of the NUL-terminated s. */
uint64_t smap_hash(const char *s);
/* smap_find: the entry of key (hash h), or NULL. */
smap_ent *smap_find(const smap *mp, const char *key, uint64_t h);
/* smap_add: adds e (e->h and e->key set; the key not already present). */
void smap_add(smap *mp, smap_ent *e);
/* smap_del: removes e, which is in mp. */
void smap_del(smap *mp, smap_ent *e);
/* smap_free: frees the buckets (not the entries). */
void smap_free(smap *mp);

#endif
