/* The snapshot cascade-build load takes before it reads the event log, so
 * that an item record's statistics plus the online counters' change since
 * the snapshot count every event exactly once while the stream consumer
 * keeps running (docs/closed-loop.md, "Online deltas"). One Lua script reads,
 * atomically with respect to the consumer's apply script, the committed
 * length of every day partition ({ns}:loop:partitions), the user events'
 * sequence number ({ns}:loop:user_seq) and the counters of
 * every item ({ns}:ictr:totals, rebuilt from the per-item hashes
 * {ns}:ictr:{id} first when it is not yet marked complete). The build then reads each partition
 * only up to its committed length: an event the counters held at the snapshot was written to its
 * partition before it was counted (the consumer appends before its script commits), so it is in the
 * records; an event counted after it is in no record, only in the change. A snapshot is plain data:
 * read-only sharing between threads is fine. */
#ifndef CASCADE_BUILDER_SNAPSHOT_H
#define CASCADE_BUILDER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"
#include "dataset.h"
#include "redis.h"

struct cascade_snapshot_item {
    uint64_t item_id;
    cascade_v1_ItemStats counters; /* its {ns}:ictr:totals value at the snapshot */
};

typedef struct cascade_snapshot {
    /* The committed partition lengths. The consumer commits a partition's
     * starting length before its first write, so a partition it is writing
     * is listed. consumer is false when no consumer has written partitions
     * for the namespace ({ns}:loop:partitions absent or empty): then the
     * partitions, if any, are not the consumer's and are read whole. */
    struct cascade_ds_partition_limit *dates;
    size_t n_dates;
    bool consumer;
    /* The data directory's partitions were listed before the script (data_dir
     * given): every date is in dates, those without a committed length
     * (n_uncommitted of them: their commits were lost, e.g. Redis came back
     * empty or load --flush) with the size they had at the listing, and a
     * partition not in dates is read not at all. */
    bool listed;
    size_t n_uncommitted;
    struct cascade_snapshot_item *items; /* sorted by item_id */
    size_t n_items;
    /* {ns}:loop:user_seq at the snapshot (0: none): the user events the
     * consumer numbered up to it are in the partitions read, the later ones
     * only in {ns}:uev:{uid} (UserRecord.online_base.seq). */
    uint64_t user_seq;
} cascade_snapshot;

/* Take the snapshot of namespace ns through r into *out (caller frees with
 * cascade_snapshot_free). data_dir: the data directory whose day partitions
 * the build reads, listed with their sizes before the script (NULL: not
 * listed; a partition without a committed length is then read not at all
 * when a consumer committed any). Returns 0, or a negative code with
 * "snapshot: <reason>" (or the partition directory's error) in err (out
 * left empty). */
int cascade_snapshot_take(cascade_redis *r, const char *ns, const char *data_dir,
                          cascade_snapshot *out, char *err, size_t errlen);

/* The limits to read the partitions with (cascade_dataset_read_until): into
 * *lim, borrowing s; returns lim, or NULL when the partitions were not
 * listed and no consumer writes them (read every partition whole). */
const struct cascade_ds_partition_limits *
cascade_snapshot_limits(const cascade_snapshot *s, struct cascade_ds_partition_limits *lim);

/* The counters of item_id at the snapshot, or NULL when it had none (all 0). */
const cascade_v1_ItemStats *cascade_snapshot_counters(const cascade_snapshot *s, uint64_t item_id);

/* NULL-safe; leaves *s empty. */
void cascade_snapshot_free(cascade_snapshot *s);

#endif
