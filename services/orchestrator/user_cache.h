/* The per-user recall cache (缓存召回), write side: items the ranker scored
 * but the re-ranker did not show are kept in the LIST {ns}:user:{uid}:cache,
 * newest first, so a later request can recall them through the Recall
 * service's `cache` channel (the read side). Shown items leave the cache at
 * exposure time; the oldest entries are evicted beyond the capacity.
 * Stateless; one call per request on the calling thread's connection. */
#ifndef CASCADE_ORCH_USER_CACHE_H
#define CASCADE_ORCH_USER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "store.h"

/* One request's changes to a user's cache. */
struct cascade_user_cache_update {
    const uint64_t *shown; /* items returned to the user: removed */
    size_t n_shown;
    const uint64_t *unshown; /* ranked but not returned, best first: pushed */
    size_t n_unshown;
    uint32_t capacity; /* entries kept (>= 1); the oldest beyond it are evicted */
    int64_t ttl_s;     /* EXPIRE of the list after the update; 0 = none */
};

/* Apply u to {ns}:user:{user_id}:cache in one script call (EVALSHA, atomic):
 * the state is that of LREM of every shown item; LREM then LPUSH of every
 * unshown item (so an item is never in the list twice, and one already
 * cached moves to the head), pushed worst first so the best ends up at the
 * head; LTRIM to the capacity; EXPIRE — in one command, where those were one
 * command per item, each O(list). Nothing is sent when both lists are empty.
 * `script` keeps the script's sha for the process (borrowed, shared by the
 * threads; CASCADE_STORE_SCRIPT_INIT): the first call loads it (SCRIPT LOAD),
 * and when Redis lost it (restart, SCRIPT FLUSH) one EVAL puts it back.
 * Returns 0 or a negative code (CASCADE_EUNAVAILABLE, CASCADE_EIO: e.g. the
 * key holds another type, nothing written; CASCADE_ENOMEM) with the message
 * in cascade_redis_error(r). */
int cascade_user_cache_update(cascade_redis *r, struct cascade_store_script *script, const char *ns,
                              const char *user_id, const struct cascade_user_cache_update *u);

/* The parts of cascade_user_cache_update, so other writes can share its
 * round trip. Append queues the EVALSHA (*sent counts the commands queued:
 * 0 or 1; nothing is queued when both lists are empty); the first call of a
 * process loads the script with a round trip of its own, so call it before
 * anything else is queued on r. Read reads exactly `sent` replies; when Redis
 * answered NOSCRIPT it returns 0 with *resend true (nothing was written):
 * read the rest of the pipeline, then call resend, which applies u with one
 * EVAL of the script body (a round trip; Redis keeps the script again under
 * the same sha). Each returns 0 or a negative code with the message in
 * cascade_redis_error(r). */
int cascade_user_cache_append(cascade_redis *r, struct cascade_store_script *script, const char *ns,
                              const char *user_id, const struct cascade_user_cache_update *u,
                              size_t *sent);
int cascade_user_cache_read(cascade_redis *r, size_t sent, bool *resend);
int cascade_user_cache_resend(cascade_redis *r, const char *ns, const char *user_id,
                              const struct cascade_user_cache_update *u);

/* Read n pipelined replies, all of them unless the connection drops.
 * Returns 0 or the first failure (an error reply is CASCADE_EIO). Shared with
 * the hard-negative log. */
int cascade_user_list_read(cascade_redis *r, size_t n);

/* Queue LPUSH key ids[n-1] ... ids[0] (n >= 1), so ids[0] ends up at the
 * head; shared with the hard-negative log. Returns 0 or a negative code. */
int cascade_user_list_append_lpush(cascade_redis *r, const char *key, const uint64_t *ids,
                                   size_t n);

#endif
