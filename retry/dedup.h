/*
 * dedup.h — the keys that succeeded recently (docs/policies.md, dedup).
 *
 * A key is route_key_hash(source, id, route): the 64-bit value behind
 * JOBRELAY_KEY. dedup_add records that the key's route succeeded;
 * dedup_seen says whether it did within `ttl`. At most max_entries keys are
 * kept: past that the oldest is forgotten (the event would run again; never
 * the reverse). Every operation is O(1) (amortised): a chained hash over an
 * array of entries linked oldest-first; expired entries leave from the old
 * end as the table is used. Entries are 40 bytes; the arrays grow with use,
 * up to max_entries.
 *
 * Each key also carries a small counter (dedup_bump / dedup_value): the
 * dispatcher keeps a second table of this kind to count the holds of each
 * event (deliveries that cost no attempt); and a mark (dedup_mark /
 * dedup_marked), a value of the caller's: a third table keeps when each key's
 * last lookup that found nothing began.
 *
 * Per process: instances do not share it, and a restart forgets it.
 * Pure: the caller passes the time (monotonic ms).
 */
#ifndef JR_DEDUP_H
#define JR_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct jr_dedup jr_dedup;

/* dedup_new: a table keeping keys for ttl_ms (0: none is kept), at most max_entries (>= 1). */
jr_dedup *dedup_new(int64_t ttl_ms, size_t max_entries);
/* dedup_free: frees d (NULL is fine). */
void dedup_free(jr_dedup *d);
/* dedup_seen: 1 when key was added less than ttl ago. */
int dedup_seen(jr_dedup *d, uint64_t key, int64_t now_ms);
/* dedup_add: key succeeded now (a key already there is renewed). */
void dedup_add(jr_dedup *d, uint64_t key, int64_t now_ms);
/* dedup_bump: adds 1 to key's counter (a new key starts at 0), renews the key; the new count. */
unsigned dedup_bump(jr_dedup *d, uint64_t key, int64_t now_ms);
/* dedup_value: key's counter, 0 when the key is not there (or older than ttl). */
unsigned dedup_value(jr_dedup *d, uint64_t key, int64_t now_ms);
/* dedup_mark: keeps mark (>= 0) with key, renewing the key (added when absent). */
void dedup_mark(jr_dedup *d, uint64_t key, int64_t now_ms, int64_t mark);
/* dedup_marked: key's mark; -1 when the key is not there (or older than ttl) or was never marked. */
int64_t dedup_marked(jr_dedup *d, uint64_t key, int64_t now_ms);
/* dedup_forget: key is no longer kept (nothing happens when it is not there). */
void dedup_forget(jr_dedup *d, uint64_t key);
/* dedup_count: keys held now (expired ones may still count until the next call). */
size_t dedup_count(const jr_dedup *d);
/* dedup_evicted: keys forgotten before their ttl because the table was full. */
uint64_t dedup_evicted(const jr_dedup *d);

#endif
