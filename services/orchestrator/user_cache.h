/* The per-user recall cache (缓存召回), write side: items the ranker scored
 * but the re-ranker did not show are kept in the LIST {ns}:user:{uid}:cache,
 * newest first, so a later request can recall them through the Recall
 * service's `cache` channel (the read side). Shown items leave the cache at
 * exposure time; the oldest entries are evicted beyond the capacity.
 * Stateless; one call per request on the calling thread's connection. */
#ifndef CASCADE_ORCH_USER_CACHE_H
#define CASCADE_ORCH_USER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

/* One request's changes to a user's cache. */
struct cascade_user_cache_update {
    const uint64_t *shown; /* items returned to the user: removed */
    size_t n_shown;
    const uint64_t *unshown; /* ranked but not returned, best first: pushed */
    size_t n_unshown;
    uint32_t capacity; /* entries kept (>= 1); the oldest beyond it are evicted */
    int64_t ttl_s;     /* EXPIRE of the list after the update; 0 = none */
};

/* Apply u to {ns}:user:{user_id}:cache in one MULTI/EXEC sent as one
 * pipeline: LREM of every shown item; LREM then LPUSH of every unshown item
 * (so an item is never in the list twice, and one already cached moves to the
 * head), pushed worst first so the best ends up at the head; LTRIM to the
 * capacity; EXPIRE. Nothing is sent when both lists are empty. Returns 0 or a
 * negative code (CASCADE_EUNAVAILABLE, CASCADE_EIO, CASCADE_ENOMEM) with the
 * message in cascade_redis_error(r). */
int cascade_user_cache_update(cascade_redis *r, const char *ns, const char *user_id,
                              const struct cascade_user_cache_update *u);

#endif
