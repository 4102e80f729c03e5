/* smap.c — the string-keyed intrusive hash table of smap.h. */
#include "smap.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

uint64_t smap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

smap_ent *smap_find(const smap *mp, const char *key, uint64_t h)
{
	if (!mp->nb)
		return NULL;
	for (smap_ent *e = mp->b[h & (mp->nb - 1)]; e; e = e->hnext)
		if (e->h == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

void smap_add(smap *mp, smap_ent *e)
{
	if (mp->n >= mp->nb) {
		size_t nb = mp->nb ? mp->nb * 2 : 64;
		smap_ent **b = jr_calloc(nb, sizeof *b);
		for (size_t i = 0; i < mp->nb; i++) {
			for (smap_ent *x = mp->b[i], *next; x; x = next) {
				next = x->hnext;
				x->hnext = b[x->h & (nb - 1)];
				b[x->h & (nb - 1)] = x;
			}
		}
		free(mp->b);
		mp->b = b;
		mp->nb = nb;
	}
	smap_ent **slot = &mp->b[e->h & (mp->nb - 1)];
	e->hnext = *slot;
	*slot = e;
	mp->n++;
}

void smap_del(smap *mp, smap_ent *e)
{
	for (smap_ent **pp = &mp->b[e->h & (mp->nb - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			mp->n--;
			return;
		}
	}
}

void smap_free(smap *mp)
{
	free(mp->b);
	mp->b = NULL;
	mp->nb = mp->n = 0;
}
