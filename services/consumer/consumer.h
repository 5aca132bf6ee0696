/* The stream consumer (cascade-consumer): reads {ns}:events (Feedback) and
 * {ns}:serves (the orchestrator's serve records) with a Redis consumer group,
 * turns them into online counters (items: per-behaviour totals and
 * time-decayed counts; users: behaviour totals, interactions, decayed
 * category affinities) and daily event partitions, then XACKs. Entries a
 * dead consumer left pending are re-claimed (XAUTOCLAIM), so delivery is
 * at-least-once; every update is applied exactly once per entry id (a mark
 * per entry set in the same Lua script as the counters). The design, keys
 * and flags are in docs/closed-loop.md.
 *
 * A cascade_consumer is one consumer of the group; use it from one thread
 * at a time (the service runs one loop thread). Several processes (or
 * handles with different names) may consume the same group concurrently;
 * only partitions require a single writer per data directory. */
#ifndef CASCADE_CONSUMER_H
#define CASCADE_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "redis.h"

typedef struct cascade_consumer cascade_consumer;

#define CASCADE_CONSUMER_NAME_MAX 64

struct cascade_consumer_opts {
    const char *ns;        /* key namespace ("cascade") */
    const char *group;     /* consumer group, "cascade-consumer" */
    const char *name;      /* this consumer's name in the group (unique per process) */
    uint32_t batch;        /* entries per read and per stream (COUNT), 1..10000 */
    int64_t claim_idle_ms; /* re-claim entries pending longer than this (XAUTOCLAIM) */
    double half_life_s;    /* half-life of the decayed counters and affinities */
    int64_t mark_ttl_s;    /* how long an applied mark is kept (>= the longest redelivery) */
    const char *data_dir;  /* partitions go to data_dir/events/; NULL or "" = off */
    /* The per-user event list {ns}:uev:{uid} (docs/closed-loop.md, "User-side
     * online features"): entries kept per user and their TTL. */
    uint32_t user_events_cap;
    int64_t user_events_ttl_s;
};

/* Read consumer.{group,batch,claim_idle_ms,half_life_s,mark_ttl_s,
 * user_events_cap,user_events_ttl_s,data_dir} from cfg (NULL = defaults:
 * cascade-consumer, 200, 30000, 86400, 604800, 2000, 259200, off) into out; ns and name are left
 * for the caller. Strings point into cfg. Returns 0 or CASCADE_EINVAL with "consumer.batch: ..." in
 * err. */
int cascade_consumer_config(const cascade_config *cfg, struct cascade_consumer_opts *out, char *err,
                            size_t errlen);

/* Create a consumer (options copied) and register its metrics in m (may be
 * NULL; docs/metrics.md). Returns NULL with the problem in err. */
cascade_consumer *cascade_consumer_create(const struct cascade_consumer_opts *o, cascade_metrics *m,
                                          char *err, size_t errlen);
/* NULL-safe. */
void cascade_consumer_destroy(cascade_consumer *c);

/* Create the group on both streams (XGROUP CREATE ... 0 MKSTREAM; an
 * existing group is fine): a new group reads each stream from its start.
 * Returns 0 or a negative code with the message in cascade_redis_error(r). */
int cascade_consumer_ensure_groups(cascade_consumer *c, cascade_redis *r);

/* What one fetch delivered (owned by the consumer, valid until the next
 * fetch or destroy). */
struct cascade_consumer_fetched {
    size_t events;  /* {ns}:events entries */
    size_t serves;  /* {ns}:serves entries */
    size_t claimed; /* of them, re-claimed from another consumer */
};

/* Fetch the next batch: first entries other consumers left pending for
 * claim_idle_ms or more (XAUTOCLAIM, so this consumer now owns them), and
 * when there are none, new entries (XREADGROUP >, blocking up to block_ms
 * when both streams are idle; 0 = no wait). Returns 0 (the batch may be
 * empty) or a negative code. */
int cascade_consumer_fetch(cascade_consumer *c, cascade_redis *r, int block_ms,
                           struct cascade_consumer_fetched *out);

/* Apply the fetched batch: append the new Feedback events and, as
 * `impression` lines, the items of the new serve records to the day
 * partitions (when on; fsynced; client-reported impressions to their own
 * partitions, docs/closed-loop.md), then in one Lua script mark each entry and
 * apply the counter updates of the entries not marked before. *applied gets
 * the entries applied now, *duplicates those already applied (a redelivery).
 * Entries that cannot be parsed are counted as errors and skipped (still
 * acknowledged). Returns 0 or a negative code (nothing acknowledged then:
 * the batch is delivered again). */
int cascade_consumer_apply(cascade_consumer *c, cascade_redis *r, size_t *applied,
                           size_t *duplicates);

/* XACK the fetched batch. Returns 0 or a negative code. */
int cascade_consumer_ack(cascade_consumer *c, cascade_redis *r);

/* fetch + apply + ack, and refresh the lag gauges. *applied (may be NULL)
 * gets the entries applied. Returns 0 or a negative code (counted in
 * cascade_consumer_errors_total). */
int cascade_consumer_step(cascade_consumer *c, cascade_redis *r, int block_ms, size_t *applied);

/* The decayed value of a counter stored as (v at time t_s), at now_s:
 * v · 2^(−(now_s − t_s) / half_life_s) (v when now_s <= t_s). */
double cascade_consumer_decay(double v, double t_s, double now_s, double half_life_s);

#endif
