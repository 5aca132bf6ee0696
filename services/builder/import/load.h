/* cascade-build load: put what serving reads into Redis — item records with
 * statistics, user records with behaviour counters and category affinities,
 * last-n interaction lists, consumed sets and followed-author sets — all
 * through pipelined writes. The derived lists (hot, new, geo, city, authors)
 * are built by lists.h and authors.h. The keys are listed in
 * docs/redis-keys.md (built by common/store.h). */
#ifndef CASCADE_BUILDER_LOAD_H
#define CASCADE_BUILDER_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "redis.h"

struct cascade_load_opts {
    const char *ns;                 /* key namespace, default "cascade" */
    size_t lastn;                   /* last-n list length per user, default 1000 */
    double affinity_half_life_days; /* decay of category affinities, default 30 */
    int64_t as_of;                  /* "now" for decays, Unix s; 0 = last event time */
    struct cascade_behaviour_weights weights;
    size_t pipeline;    /* commands per round trip, default 2000 */
    bool flush;         /* delete {ns}:* keys first */
    const char *source; /* recorded in {ns}:meta (e.g. the data dir); may be NULL */
    /* The snapshot the data's partitions were read to (snapshot.h): every
     * item record gets its counters at the snapshot as online_base (zeros
     * with flush, which deletes the counters). NULL: records without one. */
    const struct cascade_snapshot *snapshot;
    bool quiet;
};

struct cascade_load_summary {
    size_t items, users, lastn_lists, consumed_sets, deleted;
    size_t follow_sets, follows; /* users following someone, (user, author) pairs */
    size_t live_kept;            /* live last-n entries newer than the log kept at the head */
    size_t commands;
    int64_t as_of;
    double affinity_half_life_days; /* the one used (set or derived, timescale.h) */
    double seconds;
};

void cascade_load_defaults(struct cascade_load_opts *o);

/* Load ds into Redis through r. Live state the log does not hold yet is
 * merged, not overwritten: a user's last-n entries with time_s after both
 * this load's as_of and the previous load's ({ns}:meta as_of) stay at the
 * head of the rebuilt last-n, their items in consumed, and the authors of
 * their follow entries in follows. Returns 0 or a negative code with err
 * ("redis 127.0.0.1:6379: connection refused (loading items)"). */
int cascade_load_run(const cascade_dataset *ds, cascade_redis *r, const struct cascade_load_opts *o,
                     struct cascade_load_summary *sum, char *err, size_t errlen);

#endif
