/* Recall channel "new": items created within the builder's window, newest
 * first, with a guaranteed exploration share for little-shown items. The
 * pool is the explore_pool·E least-shown items with at most max_impressions
 * impressions ({ns}:new@{gen}:impressions, item → impressions, fewest first)
 * and their creation times (ZMSCORE {ns}:new@{gen}); each user explores the
 * E = ceil(explore_share · quota) of them that come first in a per-user hash
 * order, so different users try different young items. The newest items of
 * {ns}:new@{gen} (item → created_at) fill the quota; the result is ordered
 * newest first with a recency score. Pool and newest list are generation
 * data, kept in the stage's list cache: a warm request needs no Redis. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"
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

/* The exploration pool (see the top of the file) into pool, fewest
 * impressions first, scores = created_at. Two round trips. */
static int pool_read(const struct cascade_recall__channel_args *a, int64_t gen, size_t size,
                     struct cascade_recall__zlist *pool)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    const char *key = cascade_recall__key(a, gen, NULL);
    const char *imp_key = cascade_recall__key(a, gen, "impressions");
    if (!key || !imp_key)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    queue_least_shown(a, &p, imp_key, size);
    read_ids(a, &p, imp_key, &ids, &n);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0)
        return cascade_recall__fail(a, rc, "little-shown items", p.msg);
    double *created = cascade_arena_alloc(a->arena, (n + 1) * sizeof *created);
    pool->ids = cascade_arena_alloc(a->arena, (n + 1) * sizeof *pool->ids);
    pool->scores = cascade_arena_alloc(a->arena, (n + 1) * sizeof *pool->scores);
    pool->count = 0;
    if (!created || !pool->ids || !pool->scores)
        return cascade_recall__nomem(a);
    if (n && (rc = read_created(a, key, ids, n, created)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (isnan(created[i]))
            continue; /* impressions of an item that left the window */
        pool->ids[pool->count] = ids[i];
        pool->scores[pool->count++] = created[i];
    }
    return 0;
}

/* A pool entry and its place in this user's order. */
struct ranked_entry {
    uint64_t key;
    size_t index;
};

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked_entry *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The first `share` pool items in the order of hash(user ‖ item): a stable
 * per-user permutation, into explore (arena). */
static int explore_pick(const struct cascade_recall__channel_args *a,
                        const struct cascade_recall__zlist *pool, size_t share,
                        struct cascade_recall__zlist *explore)
{
    struct ranked_entry *r = cascade_arena_alloc(a->arena, (pool->count + 1) * sizeof *r);
    size_t n = share < pool->count ? share : pool->count;
    explore->ids = cascade_arena_alloc(a->arena, (n + 1) * sizeof *explore->ids);
    explore->scores = cascade_arena_alloc(a->arena, (n + 1) * sizeof *explore->scores);
    if (!r || !explore->ids || !explore->scores)
        return cascade_recall__nomem(a);
    uint64_t seed = cascade_hash_str(a->user_id, 0x6e6577u);
    for (size_t i = 0; i < pool->count; i++)
        r[i] = (struct ranked_entry){cascade_hash64(&pool->ids[i], sizeof pool->ids[i], seed), i};
    qsort(r, pool->count, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n; i++) {
        explore->ids[i] = pool->ids[r[i].index];
        explore->scores[i] = pool->scores[r[i].index];
    }
    explore->count = n;
    return 0;
}

/* The user's exploration items first, then the newest others, at most
 * quota, into picked (scores = created_at). */
static int new_select(const struct cascade_recall__channel_args *a,
                      const struct cascade_recall__zlist *explore,
                      const struct cascade_recall__zlist *newest,
                      struct cascade_recall__zlist *picked)
{
    size_t cap = explore->count + newest->count;
    cascade_idmap chosen;
    picked->ids = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *picked->ids);
    picked->scores = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *picked->scores);
    picked->count = 0;
    if (!picked->ids || !picked->scores || cascade_idmap_init(&chosen, a->arena, cap) != 0)
        return cascade_recall__nomem(a);
    const struct cascade_recall__zlist *parts[2] = {explore, newest};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < parts[k]->count && picked->count < a->quota; i++) {
            bool fresh;
            if (!cascade_idmap_upsert(&chosen, parts[k]->ids[i], &fresh))
                return cascade_recall__nomem(a);
            if (fresh) {
                picked->ids[picked->count] = parts[k]->ids[i];
                picked->scores[picked->count++] = parts[k]->scores[i];
            }
        }
    return 0;
}

/* The exploration pool of generation gen, from the list cache or Redis. */
static int pool_get(const struct cascade_recall__channel_args *a, int64_t gen, size_t size,
                    struct cascade_recall__zlist *pool)
{
    const char *key = cascade_recall__key(a, gen, NULL);
    char *cache_key = cascade_arena_alloc(a->arena, CASCADE_KEY_MAX + 64);
    bool hit;
    if (!key || !cache_key)
        return cascade_recall__nomem(a);
    /* Derived from the generation's two sorted sets (both written by the
     * builder alone) and these parameters only, so it is cached whole. */
    snprintf(cache_key, CASCADE_KEY_MAX + 64, "%s#pool:%zu:%u", key, size, a->cfg->max_impressions);
    int rc = cascade_recall__list_lookup(a, cache_key, 0, pool, &hit);
    if (rc != 0 || hit)
        return rc;
    if ((rc = pool_read(a, gen, size, pool)) != 0)
        return rc;
    cascade_recall__list_store(a, cache_key, pool, true);
    return 0;
}

int cascade_recall__new(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall__zlist newest, pool = {0}, explore = {0}, picked;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    size_t share = (size_t)ceil(a->cfg->explore_share * (double)a->quota);
    share = share < a->quota ? share : a->quota;
    const char *key = cascade_recall__key(a, gen, NULL);
    if (!key)
        return cascade_recall__nomem(a);
    if ((rc = cascade_recall__zset_top(a, key, a->quota, "new items", &newest)) != 0)
        return rc;
    /* The pool stays within what the list cache keeps, so a warm request
     * reads nothing (never below the share itself). */
    size_t pool_size = share * a->cfg->explore_pool;
    if (a->recall->lists && pool_size > a->recall->list_max_len)
        pool_size = share > a->recall->list_max_len ? share : a->recall->list_max_len;
    if (share > 0 && ((rc = pool_get(a, gen, pool_size, &pool)) != 0 ||
                      (rc = explore_pick(a, &pool, share, &explore)) != 0))
        return rc;
    if ((rc = new_select(a, &explore, &newest, &picked)) != 0)
        return rc;
    if (cascade_recall__newest(&picked, 1, a->quota, a->cfg->half_life_s, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}
