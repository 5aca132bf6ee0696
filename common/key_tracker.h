/* Redis client-side-caching invalidation for one key prefix: a background
 * thread keeps two connections, one SUBSCRIBEd to __redis__:invalidate and
 * one that turned on CLIENT TRACKING ... REDIRECT <subscriber> BCAST PREFIX
 * <prefix> (RESP2), so every write to a key under the prefix, by anyone, is
 * announced to the owner's callbacks. While either connection is down the
 * owner is told tracking is off (it must stop trusting what it cached), and
 * the thread reconnects with backoff. A cascade_key_tracker is thread-safe;
 * its callbacks run on the tracker's thread. */
#ifndef CASCADE_KEY_TRACKER_H
#define CASCADE_KEY_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"

typedef struct cascade_key_tracker cascade_key_tracker;

/* What the owner is told. All three are required; ctx is passed back. */
struct cascade_key_tracker_events {
    void *ctx;
    /* These n keys (whole names, not NUL-terminated: lens) were written or
     * deleted. */
    void (*keys)(void *ctx, const char *const *keys, const size_t *lens, size_t n);
    /* Every key may have changed (FLUSHDB, FLUSHALL). */
    void (*flush)(void *ctx);
    /* Tracking is now on (every later change will be announced) or off
     * (changes may go unannounced until it is on again). Starts off. */
    void (*tracking)(void *ctx, bool on);
};

/* Start tracking keys starting with prefix on the server opts names (its
 * AUTH, timeouts, Unix socket; opts is copied). name labels the log lines
 * ("rank item cache"). The first connection is made on the thread: a server
 * that is down at start is retried like a lost one. Returns NULL with err
 * when out of memory or the thread cannot start. Stop with
 * cascade_key_tracker_stop. */
cascade_key_tracker *cascade_key_tracker_start(const struct cascade_redis_opts *opts,
                                               const char *prefix, const char *name,
                                               const struct cascade_key_tracker_events *events,
                                               char *err, size_t errlen);

/* Stop the thread (it finishes the callback it is in) and free everything.
 * NULL is a no-op. */
void cascade_key_tracker_stop(cascade_key_tracker *t);

/* Whether tracking is on now. */
bool cascade_key_tracker_on(cascade_key_tracker *t);

/* What the tracker has done so far. */
struct cascade_key_tracker_counts {
    uint64_t sessions; /* times tracking was turned on */
    uint64_t messages; /* invalidation messages handled (a flush counts as one) */
};
struct cascade_key_tracker_counts cascade_key_tracker_counts(cascade_key_tracker *t);

/* Wait, at most timeout_ms, until tracking is `on` and both counts reached
 * at_least's (e.g. the counts from before a change, messages plus one, to
 * wait until the change has been seen; NULL: the state alone). Returns
 * whether that happened: for tests and tools that must know, without
 * sleeping. */
bool cascade_key_tracker_wait(cascade_key_tracker *t, bool on,
                              const struct cascade_key_tracker_counts *at_least, int timeout_ms);

#endif
