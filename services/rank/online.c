/* Rank stage: the online counters' change since the nightly build, added to
 * the item records' statistics before the features are computed
 * (docs/closed-loop.md, "Online deltas"). One HMGET of {ns}:ictr:totals per
 * request for its candidates (cascade_store_online_deltas_add); a record
 * without online_base (no snapshot paired with its stats) or without totals
 * keeps its stats. A Redis failure keeps every record's stats, is counted
 * and logged, and never fails the request. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "rank_internal.h"
#include "store.h"

int cascade_rank__online_add(const cascade_rank *r, cascade_redis *redis,
                             cascade_v1_ItemRecord *items, const bool *found, size_t n,
                             cascade_arena *arena)
{
    int rc = cascade_store_online_deltas_add(redis, r->ns, items, found, n, arena);
    if (rc == CASCADE_ENOMEM)
        return rc;
    if (rc != 0) {
        cascade_metric_inc(r->online_failures);
        CASCADE_WARN(NULL, "rank: online counters unread (%s); scoring with the nightly statistics",
                     cascade_redis_error(redis)[0] ? cascade_redis_error(redis)
                                                   : cascade_strerror(rc));
        return rc;
    }
    cascade_metric_inc(r->online_reads);
    return 0;
}
