/* A bounded, thread-safe, in-process cache of decoded sorted-set lists (item
 * ids and scores, best first) keyed by a string — in Recall, the full name of
 * a generation-immutable Redis key, so an entry never goes stale: a new
 * generation is a new key, and old generations age out by LRU eviction. */
#ifndef CASCADE_LIST_CACHE_H
#define CASCADE_LIST_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

typedef struct cascade_list_cache cascade_list_cache;

/* A cached list, read-only while held (between get and release). Either the
 * whole list (complete) or its first count entries. */
struct cascade_list_cache_list {
    const uint64_t *ids;
    const double *scores;
    size_t count;
    bool complete;
};

/* Optional metric series the cache updates (any may be NULL). */
struct cascade_list_cache_metrics {
    cascade_metric *hits, *misses, *evictions; /* counters */
    cascade_metric *entries, *bytes;           /* gauges */
};

/* Counters since creation, for tests and diagnostics. */
struct cascade_list_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes;
};

/* A cache holding at most max_entries lists and max_bytes bytes (entries,
 * keys and arrays counted; both >= 1). metrics may be NULL; its series are
 * borrowed and must outlive the cache. NULL on bad bounds or out of memory.
 * Every function below is safe to call from any number of threads. */
cascade_list_cache *cascade_list_cache_create(size_t max_entries, size_t max_bytes,
                                              const struct cascade_list_cache_metrics *metrics);

/* Free the cache and every entry; no list may still be held. NULL is a no-op. */
void cascade_list_cache_destroy(cascade_list_cache *c);

/* The list cached under key when it holds at least the first `want` entries
 * (or is complete); it becomes the most recently used and stays valid, even
 * if evicted meanwhile, until cascade_list_cache_release. NULL on a miss.
 * Counts a hit or a miss. */
const struct cascade_list_cache_list *cascade_list_cache_get(cascade_list_cache *c, const char *key,
                                                             size_t want);

/* Give back a list from cascade_list_cache_get (NULL is a no-op). */
void cascade_list_cache_release(cascade_list_cache *c, const struct cascade_list_cache_list *l);

/* Store a copy of ids/scores[0..count) under key (complete: the whole list,
 * not a prefix), evicting the least recently used lists to stay within the
 * bounds. An existing entry for key is replaced only by a longer one (or by
 * a complete one when it was a prefix). Returns
 * 0, CASCADE_ETOOBIG when the list alone exceeds max_bytes (not stored) or
 * CASCADE_ENOMEM. */
int cascade_list_cache_put(cascade_list_cache *c, const char *key, const uint64_t *ids,
                           const double *scores, size_t count, bool complete);

/* Drop every list (held ones stay valid until released). For a store whose
 * keys were reused for other contents, e.g. a Redis wiped and rebuilt. */
void cascade_list_cache_clear(cascade_list_cache *c);

/* Current counters into out. */
void cascade_list_cache_stats(cascade_list_cache *c, struct cascade_list_cache_stats *out);

#endif
