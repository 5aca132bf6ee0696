/* Rank stage: the online counters' change since the nightly build, added to
 * the item records' statistics before the features are computed
 * (docs/closed-loop.md, "Online deltas"). One pipelined HMGET of
 * {ns}:ictr:{id} per request for its candidates; a record without
 * online_base (no snapshot paired with its stats) or without a counter key
 * keeps its stats. A Redis failure keeps every record's stats, is counted
 * and logged, and never fails the request. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "rank_internal.h"
#include "store.h"

/* HMGET the counter fields of the records that carry a base. */
static int send_reads(const cascade_rank *r, cascade_redis *redis,
                      const cascade_v1_ItemRecord *items, const bool *found, size_t n, size_t *sent)
{
    char key[CASCADE_KEY_MAX];
    const char *argv[2 + CASCADE_ITEM_COUNTER_FIELDS];
    size_t argvlen[2 + CASCADE_ITEM_COUNTER_FIELDS];
    argv[0] = "HMGET";
    argvlen[0] = 5;
    for (size_t f = 0; f < CASCADE_ITEM_COUNTER_FIELDS; f++) {
        argv[2 + f] = cascade_store_item_counter_field(f);
        argvlen[2 + f] = strlen(argv[2 + f]);
    }
    *sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (!found[i] || !items[i].has_online_base)
            continue;
        argv[1] = cascade_key_item_counters(key, r->ns, items[i].item_id);
        argvlen[1] = strlen(argv[1]);
        int rc = cascade_redis_append_argv(redis, 2 + CASCADE_ITEM_COUNTER_FIELDS, argv, argvlen);
        if (rc != 0)
            return rc;
        (*sent)++;
    }
    return 0;
}

int cascade_rank__online_add(const cascade_rank *r, cascade_redis *redis,
                             cascade_v1_ItemRecord *items, const bool *found, size_t n,
                             cascade_arena *arena)
{
    char why[256] = "";
    size_t sent = 0, got = 0;
    cascade_v1_ItemStats *now = cascade_arena_calloc(arena, n + 1, sizeof *now);
    bool *ok = cascade_arena_calloc(arena, n + 1, sizeof *ok);
    if (now == NULL || ok == NULL)
        return CASCADE_ENOMEM;
    int rc = send_reads(r, redis, items, found, n, &sent);
    if (rc != 0)
        snprintf(why, sizeof why, "%s", cascade_redis_error(redis));
    /* Every sent command's reply is read, even after a failure, so the
     * connection is left in step; nothing is added unless all arrived. */
    for (size_t i = 0; i < n && got < sent; i++) {
        if (!found[i] || !items[i].has_online_base)
            continue;
        redisReply *rep = NULL;
        int rc2 = cascade_redis_get_reply(redis, &rep);
        got++;
        if (rc2 == 0)
            rc2 = cascade_store_item_counters_parse(rep, &now[i]);
        if (rc == 0 && rc2 != 0) {
            rc = rc2;
            snprintf(why, sizeof why, "%s", cascade_redis_error(redis)); /* before the next */
        }
        ok[i] = rc2 == 0;
        freeReplyObject(rep);
    }
    if (rc != 0) {
        cascade_metric_inc(r->online_failures);
        CASCADE_WARN(NULL, "rank: online counters unread (%s); scoring with the nightly statistics",
                     why[0] ? why : cascade_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            cascade_store_item_counters_add_delta(&items[i].stats, &now[i], &items[i].online_base);
    cascade_metric_inc(r->online_reads);
    return 0;
}
