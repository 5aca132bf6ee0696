/* Rank stage: the online counters' change since the nightly build, added to
 * the item records' statistics before the features are computed
 * (docs/closed-loop.md, "Online deltas"). One HMGET of {ns}:ictr:totals per
 * request for its candidates, in the request's one pipeline
 * (common/stage_reads.h); a record without online_base (no snapshot paired
 * with its stats) or without totals keeps its stats. A Redis failure keeps
 * every record's stats, is counted and logged, and never fails the
 * request. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "rank_internal.h"

void cascade_rank__online_report(const cascade_rank *r, cascade_redis *redis, int rc)
{
    if (rc != 0) {
        cascade_metric_inc(r->online_failures);
        CASCADE_WARN(NULL, "rank: online counters unread (%s); scoring with the nightly statistics",
                     cascade_redis_error(redis)[0] ? cascade_redis_error(redis)
                                                   : cascade_strerror(rc));
        return;
    }
    cascade_metric_inc(r->online_reads);
}
