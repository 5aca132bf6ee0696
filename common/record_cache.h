/* A short-lived, fixed-size, thread-safe cache of decoded records keyed by a
 * 64-bit key: direct-mapped (a key's slot is its hash; a colliding key
 * replaces it), each slot holding the key, when it was read, whether the
 * record existed, and value_size bytes of record. For records that only the
 * offline builder rewrites (items, user profiles), so that a few seconds of
 * staleness are harmless, or whose changes are announced (drop_many,
 * drop_all: key_tracker.h). Typed users: item_cache.h, the Recall profiles. */
#ifndef CASCADE_RECORD_CACHE_H
#define CASCADE_RECORD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cascade_record_cache cascade_record_cache;

/* slots (rounded up to a power of two) of value_size bytes, kept ttl_ms.
 * NULL when out of memory or when slots, value_size or ttl_ms is 0. */
cascade_record_cache *cascade_record_cache_create(size_t slots, size_t value_size, int64_t ttl_ms);

/* NULL is a no-op. */
void cascade_record_cache_destroy(cascade_record_cache *c);

/* For each keys[i] (i < n): a fresh entry is copied to values + i·value_size
 * with found[i] set; the positions of the others go to miss. Key 0 always
 * misses. One lock for the batch. Returns the number of misses. */
size_t cascade_record_cache_get_many(cascade_record_cache *c, const uint64_t *keys, size_t n,
                                     void *values, bool *found, size_t *miss, int64_t now_ms);

/* get_many for a value stored as two parts, the first head_size bytes
 * (<= value_size) and the rest: a fresh entry's head goes to values +
 * i·head_size, its rest to rest + i·(value_size − head_size) (rest NULL: not
 * copied). One copy of the batch under one lock, so the two parts of an entry
 * are always of the same put. */
size_t cascade_record_cache_get_many_parts(cascade_record_cache *c, const uint64_t *keys, size_t n,
                                           size_t head_size, void *values, void *rest, bool *found,
                                           size_t *miss, int64_t now_ms);

/* Store, for k < n, keys[idx[k]] with values + k·value_size and found[k],
 * read at now_ms (key 0 is skipped). read_epoch is cascade_record_cache_epoch
 * taken before the records were read: a key dropped since (drop_many, or a
 * drop_all) is not stored, as its record may predate the change that dropped
 * it. One lock for the batch. */
void cascade_record_cache_put_many(cascade_record_cache *c, const uint64_t *keys, const size_t *idx,
                                   size_t n, const void *values, const bool *found, int64_t now_ms,
                                   uint64_t read_epoch);

/* put_many for a value stored as two parts (get_many_parts): entry k's
 * head is values + k·head_size, its rest, like its key, at the request's
 * position: rest + idx[k]·(value_size − head_size) (rest NULL: stored zeroed). */
void cascade_record_cache_put_many_parts(cascade_record_cache *c, const uint64_t *keys,
                                         const size_t *idx, size_t n, size_t head_size,
                                         const void *values, const void *rest, const bool *found,
                                         int64_t now_ms, uint64_t read_epoch);

/* The cache's drop epoch now: take it before reading records to put. */
uint64_t cascade_record_cache_epoch(cascade_record_cache *c);

/* Forget keys[0..n) (their records changed) and refuse puts of them read
 * before this call. One lock for the batch. */
void cascade_record_cache_drop_many(cascade_record_cache *c, const uint64_t *keys, size_t n);

/* Forget every key and refuse every put read before this call. */
void cascade_record_cache_drop_all(cascade_record_cache *c);

/* Serve entries for ttl_ms from now on (entries already stored included);
 * ttl_ms <= 0 is ignored. Thread-safe. */
void cascade_record_cache_set_ttl(cascade_record_cache *c, int64_t ttl_ms);

#endif
