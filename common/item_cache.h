/* An in-process cache of item records for the stages that read hundreds of
 * them per request (PreRank, Rank): a record read from Redis is served from
 * memory for ttl_ms, a miss costs the same one MGET as before. With tracking
 * (cascade_item_cache_track), Redis announces every write to an item record
 * (cascade-build load, PutItems) and the cache drops it, so records are kept
 * for tracked_ttl_ms instead; whenever tracking is down the cache is emptied
 * and falls back to ttl_ms. Direct-mapped (an id's slot is its hash; a
 * colliding id replaces it), so memory is fixed at creation; thread-safe. */
#ifndef CASCADE_ITEM_CACHE_H
#define CASCADE_ITEM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"
#include "key_tracker.h"
#include "redis.h"

typedef struct cascade_item_cache cascade_item_cache;

/* What a stage derives from an item record alone, kept beside the record so
 * it is computed once when the record enters the cache rather than on every
 * request (the learned rankers' item features: rank_features.h
 * cascade_rank_item_derive). fn fills size bytes at out from rec (a zeroed
 * record with item_id set when the item is absent); it must be a pure
 * function of rec, and the stage must still check that what it derived from
 * matches the record it scores (the online counters change the statistics
 * after the cache). */
struct cascade_item_derive {
    size_t size;
    void (*fn)(const cascade_v1_ItemRecord *rec, void *out);
};

/* A cache of `slots` records (rounded up to a power of two) kept for
 * ttl_ms. NULL when out of memory; slots == 0 or ttl_ms <= 0 gives NULL too
 * (no cache: callers pass NULL through to cascade_item_cache_get). */
cascade_item_cache *cascade_item_cache_create(size_t slots, int64_t ttl_ms);

/* The same, keeping derive's data (derive borrowed, static; NULL: none, as
 * cascade_item_cache_create) beside each record: cascade_item_cache_lookup
 * then copies it out with the record, and cascade_item_cache_store computes
 * it for the records read from Redis. */
cascade_item_cache *cascade_item_cache_create_derived(size_t slots, int64_t ttl_ms,
                                                      const struct cascade_item_derive *derive);

/* NULL is a no-op. */
void cascade_item_cache_destroy(cascade_item_cache *c);

/* Count hits and misses in the registry m (NULL: no metrics) as
 * cascade_<stage>_item_cache_hits_total / _misses_total (item records), and
 * the tracking as _invalidations_total, _tracking_lost_total and the gauge
 * cascade_<stage>_item_cache_tracking. c may be NULL (nothing to count).
 * Call once, before serving and before cascade_item_cache_track. */
struct cascade_metrics;
void cascade_item_cache_set_metrics(cascade_item_cache *c, struct cascade_metrics *m,
                                    const char *stage);

/* Keep the cache exact by Redis change tracking (key_tracker.h) of the
 * item records of namespace ns on the server opts names (copied): records
 * are then kept tracked_ttl_ms (> 0) while tracking is on, ttl_ms while it
 * is off (at start, and after a lost connection until it is back; the cache
 * is emptied at each change). stage labels the log lines. Call at most once,
 * after cascade_item_cache_set_metrics. Returns 0, or CASCADE_EINVAL /
 * CASCADE_ENOMEM with err (the tracking thread cannot start). */
int cascade_item_cache_track(cascade_item_cache *c, const struct cascade_redis_opts *opts,
                             const char *ns, const char *stage, int64_t tracked_ttl_ms, char *err,
                             size_t errlen);

/* The cache's tracker (NULL: not tracked), e.g. to wait for a change to be
 * seen in a test. Borrowed. */
cascade_key_tracker *cascade_item_cache_tracker(cascade_item_cache *c);

/* The cache a stage's config asks for (with derive's data beside each
 * record; NULL: none): <stage>.item_cache.ttl_ms (default 0
 * = no cache; config/cascade.json sets 2000), <stage>.item_cache.slots
 * (default 65536), <stage>.item_cache.tracking (default false; true in
 * config/cascade.json: track the records of namespace ns on redis's server,
 * see cascade_item_cache_track; redis NULL: no tracking) and
 * <stage>.item_cache.tracked_ttl_ms (default 600000), its metrics registered
 * in m (may be NULL). *out is NULL when off. Returns 0, a config error with
 * err, or CASCADE_ENOMEM. */
struct cascade_config;
struct cascade_metrics;
int cascade_item_cache_from_config(const struct cascade_config *cfg, const char *stage,
                                   cascade_redis_pool *redis, const char *ns,
                                   const struct cascade_item_derive *derive,
                                   struct cascade_metrics *m, cascade_item_cache **out, char *err,
                                   size_t errlen);

/* cascade_store_get_items through the cache (c may be NULL: straight to
 * Redis): records fresher than ttl_ms, found or not, come from memory; the
 * others from one MGET, then cached. Returns what cascade_store_get_items
 * returns; on an error nothing is cached. *hits (may be NULL) receives the
 * number served from memory. */
int cascade_item_cache_get(cascade_item_cache *c, cascade_redis *r, const char *ns,
                           const uint64_t *ids, size_t n, cascade_v1_ItemRecord *recs, bool *found,
                           size_t *hits);

/* The two halves of cascade_item_cache_get, for a caller that reads the
 * misses in a pipeline of its own (common/stage_reads.c). lookup copies the
 * fresh records of ids[0..n) into recs/found and writes the positions of
 * the others to miss (room for n), counting hits and misses, and *epoch the
 * cache's drop epoch for the store; c NULL: every position misses. Returns
 * the number of misses. store caches, for k < n_miss, the record got[k]
 * (found or not) of ids[miss[k]], read at now_ms after the lookup that gave
 * epoch, except the records whose change was announced since (they may be
 * older than the change); c NULL: nothing. Thread-safe (one lock per batch).
 * derived (may be NULL: not wanted) has room for n of
 * cascade_item_cache_derived_size(c) bytes: lookup copies each hit's derived
 * data there, store computes the misses' (derived + miss[k]·size) and caches
 * it with their records. */
size_t cascade_item_cache_lookup(cascade_item_cache *c, const uint64_t *ids, size_t n,
                                 cascade_v1_ItemRecord *recs, void *derived, bool *found,
                                 size_t *miss, int64_t now_ms, uint64_t *epoch);
void cascade_item_cache_store(cascade_item_cache *c, const uint64_t *ids, const size_t *miss,
                              size_t n_miss, const cascade_v1_ItemRecord *got,
                              const bool *got_found, void *derived, int64_t now_ms, uint64_t epoch);

/* Bytes of derived data per record (0: c is NULL or keeps none). */
size_t cascade_item_cache_derived_size(const cascade_item_cache *c);

#endif
