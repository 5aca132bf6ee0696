/* The Redis reads a scoring stage (PreRank, Rank) makes for one request, as
 * one pipeline (one round trip): the user record, the user's online base
 * and events (common/user_online.h), the item records the item cache lacks
 * (MGET per 256), and the online counters' totals (HMGET {ns}:ictr:totals)
 * of the cached records with an online_base and of every miss — whether a
 * missed record has a base only its reply says, so its total is asked
 * with it and left unused when it has none (docs/load.md "Sixth round
 * (l)"; before, a second round trip after the records). These reads need
 * no other's answer, so all are queued first and every reply is read
 * afterwards, whatever an earlier one said: the pooled connection stays
 * in step. With a counters cache (<stage>.online_counters_cache.ttl_ms),
 * totals read less than that
 * long ago are taken from memory and only the others are asked. */
#ifndef CASCADE_STAGE_READS_H
#define CASCADE_STAGE_READS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/records.pb.h"
#include "config.h"
#include "item_cache.h"
#include "metrics.h"
#include "record_cache.h"
#include "redis.h"

/* One request's reads: the caller fills the inputs and the output arrays. */
struct cascade_stage_reads {
    /* in (borrowed for the call) */
    const char *ns;
    const char *user_id;  /* NULL: no user record is read */
    bool online_user;     /* continue the user record with the user's events */
    bool online_counters; /* add the online counters' change to the item stats */
    const uint64_t *ids;  /* the candidates' item ids, n of them */
    size_t n;
    cascade_item_cache *cache; /* NULL: every record from Redis */
    /* The online counters' totals (cascade_v1_ItemStats by item id) read
     * less than its ttl ago; NULL: every request reads them all. */
    cascade_record_cache *counters_cache;
    int64_t now_s; /* the time the user's features are decayed to */
    /* out */
    cascade_v1_UserRecord *user;  /* caller's; zeroed with user_id set when unknown */
    bool user_found;              /* or: without a record, continued from the new users' base */
    cascade_v1_ItemRecord *items; /* caller's, n of them; zeroed when absent */
    bool *found;                  /* caller's, n of them */
    /* Caller's room for n entries of what the cache derives from each record
     * (cascade_item_cache_derived_size(cache) bytes each), filled for every
     * candidate from the nightly record, before the online counters' change;
     * NULL, or a cache that derives nothing: not written. */
    void *derived;
    /* The degraded parts, never a failure of the call: what
     * cascade_user_online_apply returned (CASCADE_ENOTFOUND when not asked or
     * the user has no base), and 0 or the reason the counters' change was
     * not added (its text in cascade_redis_error when it was the last). */
    int user_online_rc;
    int counters_rc;
    /* Candidates whose totals came from counters_cache / were asked of Redis. */
    size_t counters_cached, counters_asked;
};

/* Run q's reads as one pipeline on r (one round trip). Returns 0, or a negative code with the
 * reason in cascade_redis_error(r) when the user record or an item record
 * could not be read (Redis failed, CASCADE_EFORMAT: not a valid record),
 * or CASCADE_ENOMEM. A failed online-user or counters read leaves the
 * nightly data and sets user_online_rc / counters_rc (the caller counts and
 * logs them: cascade_user_online_report). Item records read from Redis are
 * cached in q->cache. Scratch from arena; thread-safe as r (one connection
 * per thread). */
int cascade_stage_reads_run(cascade_redis *r, cascade_arena *arena, struct cascade_stage_reads *q);

/* A scoring stage's online parts (PreRank, Rank), the same for both: the
 * config keys <stage>.online_counters and <stage>.online_user (default
 * true), the counters cascade_<stage>_online_{counter,user}_{reads,failures}_total
 * (docs/metrics.md), and what a request's degraded parts count and log. */
struct cascade_stage_online {
    const char *stage; /* "prerank", "rank": key prefix, metric names, log lines */
    bool counters;     /* add the online counters' change to the item statistics */
    bool user;         /* continue the user record with the user's events */
    /* <stage>.online_counters_cache: NULL when off (ttl_ms 0, the default) */
    cascade_record_cache *counters_cache;
    cascade_metric *counter_reads, *counter_failures; /* NULL = no registry */
    cascade_metric *user_reads, *user_failures;
    cascade_metric *cache_hits, *cache_misses; /* only with a counters cache */
};

/* Read the stage's keys (stage: a static string) from cfg into *o:
 * <stage>.online_counters, <stage>.online_user and the counters cache,
 * <stage>.online_counters_cache.ttl_ms (default 0 = off: every request
 * reads every candidate's totals; config/cascade.json sets 1000) and
 * <stage>.online_counters_cache.slots (default 131072). 0, a negative code
 * with the reason in err, or CASCADE_ENOMEM; release with
 * cascade_stage_online_release. */
int cascade_stage_online_config(struct cascade_stage_online *o, const char *stage,
                                const cascade_config *cfg, char *err, size_t errlen);
/* Free what cascade_stage_online_config made (o itself is the caller's). */
void cascade_stage_online_release(struct cascade_stage_online *o);

/* Register o's counters in m (NULL: none): reads and failures of each online
 * part, and with a counters cache its hits and misses
 * (cascade_<stage>_online_counter_cache_{hits,misses}_total); title names
 * the stage in their help ("PreRank", "Rank"). Call once, at create. */
void cascade_stage_online_metrics(struct cascade_stage_online *o, cascade_metrics *m,
                                  const char *title);

/* After cascade_stage_reads_run returned 0 for q (run with o's switches):
 * count each online part read or failed, and log a failure (rate-limited);
 * the failed part has left the nightly data. Returns 0, or CASCADE_ENOMEM. */
int cascade_stage_online_report(const struct cascade_stage_online *o, cascade_redis *r,
                                const struct cascade_stage_reads *q);

#endif
