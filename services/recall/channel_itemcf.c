/* Recall channels "itemcf" and "swing" (one function, the family decides the
 * index): the user's last-n interactions × the top-k neighbours of each
 * ({ns}:{family}@{gen}:{item_id}, NeighbourList); score(item) =
 * Σ interest · sim, the user's own last-n items excluded. Two round trips
 * after the (cached) generation: LRANGE of the last-n, pipelined GETs of the
 * neighbour lists. */
#include <inttypes.h>
#include <stdio.h>

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

/* Pipelined GETs of the sources' neighbour lists (first k entries each). */
static int read_lists(const struct cascade_recall__channel_args *a, int64_t gen,
                      const struct cascade_recall_hits *src, struct cascade_recall_hits *lists)
{
    const char **keys = cascade_arena_alloc(a->arena, (src->count + 1) * sizeof *keys);
    if (!keys)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    for (size_t i = 0; i < src->count; i++) {
        char suffix[24];
        snprintf(suffix, sizeof suffix, "%" PRIu64, src->ids[i]);
        if (!(keys[i] = cascade_recall__key(a, gen, suffix))) {
            cascade_recall__pipe_end(&p);
            return cascade_recall__nomem(a);
        }
        cascade_recall__pipe_get(&p, keys[i]);
    }
    for (size_t i = 0; i < src->count; i++)
        cascade_recall__read_neighbours(&p, a->arena, keys[i], a->cfg->neighbours, &lists[i]);
    int rc = cascade_recall__pipe_end(&p);
    return rc ? cascade_recall__fail(a, rc, "neighbours", p.msg) : 0;
}

int cascade_recall__itemcf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall_hits src;
    char key[CASCADE_KEY_MAX];
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc; /* never built: nothing to expand, not an error */

    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    cascade_key_user_lastn(key, a->recall->ns, a->user_id);
    cascade_recall__pipe_lrange(&p, key, 0, (long long)a->cfg->last_n - 1);
    cascade_recall__read_interactions(&p, a->arena, key, &src);
    if ((rc = cascade_recall__pipe_end(&p)) != 0)
        return cascade_recall__fail(a, rc, "last-n", p.msg);
    if (src.count == 0)
        return 0; /* no history */
    if (distinct_sources(a->arena, &src) != 0)
        return cascade_recall__nomem(a);

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
