/* Recall channel "new": items created within the builder's window, newest
 * first, with a guaranteed exploration share for little-shown items. One
 * pipeline reads the newest quota items of {ns}:new@{gen} (item →
 * created_at) and the E = ceil(explore_share · quota) least-shown items with
 * at most max_impressions impressions from {ns}:new@{gen}:impressions (item →
 * impressions, fewest first); a second round trip (only when some of those
 * are not among the newest) reads their creation times with ZMSCORE. The
 * exploration items come first, the newest others fill the quota, and the
 * result is ordered newest first with a recency score. The pick is kept in
 * the stage's list cache, so later requests of the generation need no Redis. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "recall_internal.h"
#include "store.h"

/* Queue ZRANGEBYSCORE imp_key -inf max LIMIT 0 count (ids only). */
static void queue_least_shown(const struct cascade_recall__channel_args *a,
                              struct cascade_recall__pipe *p, const char *imp_key, size_t count)
{
    char max[24], n[24];
    snprintf(max, sizeof max, "%u", a->cfg->max_impressions);
    snprintf(n, sizeof n, "%zu", count);
    cascade_recall__pipe_cmd(
        p, 7, (const char *[]){"ZRANGEBYSCORE", imp_key, "-inf", max, "LIMIT", "0", n});
}

/* Read the ZRANGEBYSCORE reply (ids) into ids/n. */
static void read_ids(const struct cascade_recall__channel_args *a, struct cascade_recall__pipe *p,
                     const char *key, uint64_t **ids, size_t *n)
{
    *n = 0;
    redisReply *rep = cascade_recall__pipe_reply(p);
    if (!rep)
        return;
    if (rep->type != REDIS_REPLY_ARRAY) {
        cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a sorted set of items", key);
    } else if (!(*ids = cascade_arena_alloc(a->arena, (rep->elements + 1) * sizeof **ids))) {
        cascade_recall__pipe_fail(p, CASCADE_ENOMEM, "out of request memory");
    } else {
        for (size_t i = 0; i < rep->elements && p->rc == 0; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING ||
                cascade_recall__parse_id(e->str, e->len, &(*ids)[i]) != 0)
                cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: member %zu is not an item id",
                                          key, i);
        }
        *n = p->rc == 0 ? rep->elements : 0;
    }
    freeReplyObject(rep);
}

/* ZMSCORE key ids[0..n) into created[] (NaN for an item no longer listed).
 * One round trip. */
static int read_created(const struct cascade_recall__channel_args *a, const char *key,
                        const uint64_t *ids, size_t n, double *created)
{
    const char **argv = cascade_arena_alloc(a->arena, (n + 2) * sizeof *argv);
    size_t *lens = cascade_arena_alloc(a->arena, (n + 2) * sizeof *lens);
    char *digits = cascade_arena_alloc(a->arena, n * 21 + 1);
    if (!argv || !lens || !digits)
        return cascade_recall__nomem(a);
    argv[0] = "ZMSCORE";
    lens[0] = 7;
    argv[1] = key;
    lens[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        argv[i + 2] = digits + i * 21;
        lens[i + 2] = (size_t)snprintf(digits + i * 21, 21, "%" PRIu64, ids[i]);
    }
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    cascade_recall__pipe_argv(&p, (int)n + 2, argv, lens);
    redisReply *rep = cascade_recall__pipe_reply(&p);
    if (rep && (rep->type != REDIS_REPLY_ARRAY || rep->elements != n))
        cascade_recall__pipe_fail(&p, CASCADE_EFORMAT, "ZMSCORE %s: unexpected reply", key);
    for (size_t i = 0; rep && p.rc == 0 && i < n; i++) {
        const redisReply *e = rep->element[i];
        created[i] =
            e->type == REDIS_REPLY_STRING ? cascade_recall__parse_score(e->str, e->len) : NAN;
    }
    freeReplyObject(rep);
    int rc = cascade_recall__pipe_end(&p);
    return rc ? cascade_recall__fail(a, rc, "creation times", p.msg) : 0;
}

/* The exploration items (with creation times from the newest list or
 * ZMSCORE), then the newest others, into picked (scores = created_at). */
static int new_select(const struct cascade_recall__channel_args *a, const char *key,
                      const struct cascade_recall__zlist *newest, const uint64_t *explore,
                      size_t n_explore, struct cascade_recall__zlist *picked)
{
    size_t cap = newest->count + n_explore;
    cascade_idmap in_newest, chosen;
    uint64_t *missing = cascade_arena_alloc(a->arena, (n_explore + 1) * sizeof *missing);
    double *created = cascade_arena_alloc(a->arena, (n_explore + 1) * sizeof *created);
    picked->ids = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *picked->ids);
    picked->scores = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *picked->scores);
    picked->count = 0;
    if (!missing || !created || !picked->ids || !picked->scores ||
        cascade_idmap_init(&in_newest, a->arena, newest->count) != 0 ||
        cascade_idmap_init(&chosen, a->arena, cap) != 0)
        return cascade_recall__nomem(a);
    for (size_t i = 0; i < newest->count; i++) {
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&in_newest, newest->ids[i], NULL);
        if (!e)
            return cascade_recall__nomem(a);
        e->score = newest->scores[i];
    }
    size_t n_missing = 0;
    for (size_t i = 0; i < n_explore; i++)
        if (!cascade_idmap_find(&in_newest, explore[i]))
            missing[n_missing++] = explore[i];
    int rc = n_missing ? read_created(a, key, missing, n_missing, created) : 0;
    if (rc != 0)
        return rc;
    for (size_t i = 0, m = 0; i < n_explore; i++) {
        struct cascade_idmap_entry *e = cascade_idmap_find(&in_newest, explore[i]);
        double t = e ? e->score : created[m++];
        if (isnan(t))
            continue; /* impressions of an item that left the window */
        if (!cascade_idmap_upsert(&chosen, explore[i], NULL))
            return cascade_recall__nomem(a);
        picked->ids[picked->count] = explore[i];
        picked->scores[picked->count++] = t;
    }
    for (size_t i = 0; i < newest->count && picked->count < a->quota; i++) {
        bool fresh;
        if (!cascade_idmap_upsert(&chosen, newest->ids[i], &fresh))
            return cascade_recall__nomem(a);
        if (fresh) {
            picked->ids[picked->count] = newest->ids[i];
            picked->scores[picked->count++] = newest->scores[i];
        }
    }
    return 0;
}

/* Read the newest and the least-shown items and pick (see the top of the
 * file) into picked. One or two round trips. */
static int new_read(const struct cascade_recall__channel_args *a, int64_t gen, size_t share,
                    struct cascade_recall__zlist *picked)
{
    struct cascade_recall__zlist newest;
    uint64_t *explore = NULL;
    size_t n_explore = 0;
    const char *key = cascade_recall__key(a, gen, NULL);
    const char *imp_key = cascade_recall__key(a, gen, "impressions");
    if (!key || !imp_key)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    cascade_recall__pipe_zrevrange(&p, key, a->quota);
    if (share > 0)
        queue_least_shown(a, &p, imp_key, share);
    cascade_recall__read_zset(&p, a->arena, key, &newest);
    if (share > 0)
        read_ids(a, &p, imp_key, &explore, &n_explore);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0)
        return cascade_recall__fail(a, rc, "new items", p.msg);
    return new_select(a, key, &newest, explore, n_explore, picked);
}

int cascade_recall__new(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall__zlist picked;
    bool hit;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    size_t share = (size_t)ceil(a->cfg->explore_share * (double)a->quota);
    share = share < a->quota ? share : a->quota;
    /* The pick depends only on the generation's two sorted sets (both written
     * by the builder alone) and these parameters, so it is cached whole. */
    const char *key = cascade_recall__key(a, gen, NULL);
    char *cache_key = cascade_arena_alloc(a->arena, CASCADE_KEY_MAX + 64);
    if (!key || !cache_key)
        return cascade_recall__nomem(a);
    snprintf(cache_key, CASCADE_KEY_MAX + 64, "%s#pick:%zu:%zu:%u", key, a->quota, share,
             a->cfg->max_impressions);
    if ((rc = cascade_recall__list_lookup(a, cache_key, 0, &picked, &hit)) != 0)
        return rc;
    if (!hit) {
        if ((rc = new_read(a, gen, share, &picked)) != 0)
            return rc;
        cascade_recall__list_store(a, cache_key, &picked, true);
    }
    if (cascade_recall__newest(&picked, 1, a->quota, a->cfg->half_life_s, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}
