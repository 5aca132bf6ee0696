/* Recall channels "itemcf", "swing" and "ease" (one code path, the family
 * decides the index): the user's last-n interactions × the top-k neighbours
 * of each ({ns}:{family}@{gen}:{item_id}, NeighbourList); score(item) =
 * Σ interest · sim, the user's own last-n items excluded. For ease every
 * interest is 1: EASE's model is Σ_{j ∈ history} B[j][i] over binary X. Two round trips
 * after the (cached) generation: LRANGE of the last-n, pipelined GETs of the
 * neighbour lists the list cache does not hold (they are generation data). */
#include "clock.h"
#include "decimal.h"
#include "error.h"
#include "recall_internal.h"
#include "store.h"

/* Collapse the last-n list in place into distinct items with summed interest
 * weights, first-seen (newest) order kept. */
static int distinct_sources(cascade_arena *arena, struct cascade_recall_hits *h)
{
    cascade_idmap pos;
    if (cascade_idmap_init(&pos, arena, h->count) != 0)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++) {
        bool created;
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&pos, h->ids[i], &created);
        if (!e)
            return CASCADE_ENOMEM;
        if (created) {
            e->index = (uint32_t)n;
            h->ids[n] = h->ids[i];
            h->scores[n] = h->scores[i];
            n++;
        } else {
            h->scores[e->index] += h->scores[i];
        }
    }
    h->count = n;
    return 0;
}

/* Neighbour list <-> the list cache's form (double scores), arena copies. */
static int hits_from_zlist(cascade_arena *arena, const struct cascade_recall__zlist *z,
                           struct cascade_recall_hits *h)
{
    h->ids = z->ids;
    h->scores = cascade_arena_alloc(arena, (z->count + 1) * sizeof *h->scores);
    if (!h->scores)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < z->count; i++)
        h->scores[i] = (float)z->scores[i];
    h->count = z->count;
    return 0;
}

static void store_list(const struct cascade_recall__channel_args *a, const char *key,
                       const struct cascade_recall_hits *h)
{
    struct cascade_recall__zlist z = {
        .ids = h->ids,
        .scores = cascade_arena_alloc(a->arena, (h->count + 1) * sizeof *z.scores),
        .count = h->count};
    if (!z.scores)
        return; /* best effort */
    for (size_t i = 0; i < h->count; i++)
        z.scores[i] = h->scores[i];
    /* Shorter than asked: the whole list. */
    cascade_recall__list_store(a, key, &z, h->count < a->cfg->neighbours);
}

/* The sources' neighbour lists (first k entries each): from the list cache
 * (generation keys never change), the misses by pipelined GETs, then cached. */
static int read_lists(const struct cascade_recall__channel_args *a, int64_t gen,
                      const struct cascade_recall_hits *src, struct cascade_recall_hits *lists)
{
    const char **keys = cascade_arena_alloc(a->arena, (src->count + 1) * sizeof *keys);
    size_t *miss = cascade_arena_alloc(a->arena, (src->count + 1) * sizeof *miss), n_miss = 0;
    if (!keys || !miss)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    for (size_t i = 0; i < src->count; i++) {
        char suffix[CASCADE_DECIMAL_U64_MAX];
        struct cascade_recall__zlist z;
        bool hit;
        cascade_decimal_u64(suffix, src->ids[i]);
        int rc = (keys[i] = cascade_recall__key(a, gen, suffix)) ? 0 : CASCADE_ENOMEM;
        if (rc == 0)
            rc = cascade_recall__list_lookup(a, keys[i], a->cfg->neighbours, &z, &hit);
        if (rc == 0 && hit)
            rc = hits_from_zlist(a->arena, &z, &lists[i]);
        if (rc != 0) {
            cascade_recall__pipe_end(&p);
            return cascade_recall__nomem(a);
        }
        if (!hit) {
            cascade_recall__pipe_get(&p, keys[i]);
            miss[n_miss++] = i;
        }
    }
    for (size_t j = 0; j < n_miss; j++)
        cascade_recall__read_neighbours(&p, a->arena, keys[miss[j]], a->cfg->neighbours,
                                        &lists[miss[j]]);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0)
        return cascade_recall__fail(a, rc, "neighbours", p.msg);
    for (size_t j = 0; j < n_miss; j++)
        store_list(a, keys[miss[j]], &lists[miss[j]]);
    return 0;
}

/* One neighbour list the prefetch asked for: the channel it is for (its
 * args, for the depth and the cache) and its key. */
struct neighbours_wanted {
    const struct cascade_recall__channel_args *a;
    const char *key;
};

/* Queue the GETs of the neighbour lists channel a (itemcf, swing or ease)
 * would read and the list cache lacks, noting them in want. Sources and
 * generation as the channel takes them (the last-n from the request's
 * prefetch); anything that fails is left to the channel's own read. */
static void queue_missing_lists(const struct cascade_recall__channel_args *a,
                                struct cascade_recall__pipe *p, struct neighbours_wanted *want,
                                size_t *n_want, size_t cap)
{
    int64_t gen;
    struct cascade_recall_hits src;
    if (cascade_recall__generation(a, &gen) != 0 || gen == 0 ||
        cascade_recall__user_lastn(a, a->cfg->last_n, &src) != 0 ||
        distinct_sources(a->arena, &src) != 0)
        return;
    for (size_t i = 0; i < src.count && *n_want < cap; i++) {
        char suffix[CASCADE_DECIMAL_U64_MAX];
        struct cascade_recall__zlist z;
        bool hit = false;
        cascade_decimal_u64(suffix, src.ids[i]);
        const char *key = cascade_recall__key(a, gen, suffix);
        if (!key || cascade_recall__list_lookup(a, key, a->cfg->neighbours, &z, &hit) != 0)
            return;
        if (!hit) {
            cascade_recall__pipe_get(p, key);
            want[(*n_want)++] = (struct neighbours_wanted){a, key};
        }
    }
}

void cascade_recall__neighbours_prefetch(const struct cascade_recall__channel_args *base,
                                         const int *idx, const int64_t *deadline_ms, size_t n)
{
    struct cascade_recall__channel_args *args;
    size_t n_chan = 0, cap = 0;
    int64_t deadline = INT64_MAX;
    if (base->recall->lists == NULL)
        return; /* nowhere to leave the lists for the channels */
    if (!(args = cascade_arena_alloc(base->arena, (n + 1) * sizeof *args)))
        return;
    for (size_t c = 0; c < n; c++) {
        if (idx[c] < 0 || (cascade_recall__channels[idx[c]].fn != cascade_recall__itemcf &&
                           cascade_recall__channels[idx[c]].fn != cascade_recall__ease))
            continue;
        args[n_chan] = *base;
        args[n_chan].name = cascade_recall__channels[idx[c]].name;
        args[n_chan].cfg = &base->recall->cfg[idx[c]];
        args[n_chan].family = cascade_recall__channels[idx[c]].family;
        args[n_chan].deadline_ms = deadline_ms[c];
        cap += args[n_chan].cfg->last_n;
        if (deadline_ms[c] < deadline)
            deadline = deadline_ms[c];
        n_chan++;
    }
    /* One channel alone reads its lists in one round trip anyway. */
    if (n_chan < 2 || cascade_now_ms() >= deadline)
        return;
    char err[256];
    struct neighbours_wanted *want = cascade_arena_alloc(base->arena, (cap + 1) * sizeof *want);
    if (!want)
        return;
    size_t n_want = 0;
    struct cascade_recall__pipe p;
    cascade_redis_set_deadline(base->redis, deadline);
    cascade_recall__pipe_init(&p, base->redis);
    for (size_t c = 0; c < n_chan; c++) {
        args[c].err = err; /* a failure here is the channel's to report when it runs */
        args[c].errlen = sizeof err;
        queue_missing_lists(&args[c], &p, want, &n_want, cap);
    }
    for (size_t j = 0; j < n_want; j++) {
        struct cascade_recall_hits list;
        if (cascade_recall__read_neighbours(&p, base->arena, want[j].key,
                                            want[j].a->cfg->neighbours, &list) == 0 &&
            p.rc == 0)
            store_list(want[j].a, want[j].key, &list);
    }
    cascade_recall__pipe_end(&p);
}

/* The shared expansion; binary sets every source's weight to 1. */
static int expand_neighbours(const struct cascade_recall__channel_args *a, bool binary,
                             struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall_hits src;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc; /* never built: nothing to expand, not an error */

    if ((rc = cascade_recall__user_lastn(a, a->cfg->last_n, &src)) != 0)
        return rc;
    if (src.count == 0)
        return 0; /* no history */
    if (distinct_sources(a->arena, &src) != 0)
        return cascade_recall__nomem(a);
    for (size_t i = 0; binary && i < src.count; i++)
        src.scores[i] = 1.0f;

    struct cascade_recall_hits *lists = cascade_arena_calloc(a->arena, src.count, sizeof *lists);
    if (!lists)
        return cascade_recall__nomem(a);
    if ((rc = read_lists(a, gen, &src, lists)) != 0)
        return rc;
    if ((rc = cascade_recall__deadline(a, "reading neighbour lists")) != 0)
        return rc;
    if (cascade_recall_itemcf_score(src.ids, src.scores, src.count, lists, a->cfg->neighbours,
                                    a->quota, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}

int cascade_recall__itemcf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out)
{
    return expand_neighbours(a, false, out);
}

int cascade_recall__ease(const struct cascade_recall__channel_args *a,
                         struct cascade_recall_hits *out)
{
    return expand_neighbours(a, true, out);
}
