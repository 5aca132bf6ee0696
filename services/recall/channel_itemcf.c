/* Recall channel "itemcf": the user's last-n interactions × the top-k ItemCF
 * neighbours of each ({ns}:i2i:itemcf:{id}); score(item) = Σ interest · sim,
 * items the user already interacted with excluded. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "error.h"
#include "idmap.h"
#include "recall_internal.h"
#include "store.h"

struct scored_item {
    uint64_t id;
    double score;
};

/* Descending score; ties by ascending id so results are deterministic. */
static int scored_item_cmp(const void *pa, const void *pb)
{
    const struct scored_item *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Sort the map's entries and copy the best `quota` into out. */
static int itemcf_top(const cascade_idmap *scores, size_t quota, cascade_arena *arena,
                      struct cascade_recall_hits *out)
{
    struct scored_item *all = cascade_arena_calloc(arena, scores->count + 1, sizeof *all);
    if (!all)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t s = 0; s < scores->cap; s++)
        if (scores->slots[s].used)
            all[n++] = (struct scored_item){scores->slots[s].key, scores->slots[s].score};
    qsort(all, n, sizeof *all, scored_item_cmp);
    size_t keep = n < quota ? n : quota;
    out->ids = cascade_arena_calloc(arena, keep + 1, sizeof *out->ids);
    out->scores = cascade_arena_calloc(arena, keep + 1, sizeof *out->scores);
    if (!out->ids || !out->scores)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < keep; i++) {
        out->ids[i] = all[i].id;
        out->scores[i] = (float)all[i].score;
    }
    out->count = keep;
    return 0;
}

int cascade_recall_itemcf_score(const uint64_t *src_ids, const float *src_weights, size_t n_src,
                                const cascade_v1_NeighbourList *lists, const bool *found, size_t k,
                                size_t quota, cascade_arena *arena, struct cascade_recall_hits *out)
{
    cascade_idmap seen, scores;
    out->ids = NULL;
    out->scores = NULL;
    out->count = 0;
    if (cascade_idmap_init(&seen, arena, n_src) != 0 ||
        cascade_idmap_init(&scores, arena, n_src * (k < 64 ? k : 64)) != 0)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_src; i++)
        if (!cascade_idmap_upsert(&seen, src_ids[i], NULL))
            return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_src; i++) {
        if (!found[i] || !(src_weights[i] > 0))
            continue;
        const cascade_v1_NeighbourList *l = &lists[i];
        size_t n = l->neighbours_count < k ? l->neighbours_count : k;
        for (size_t j = 0; j < n; j++) {
            uint64_t id = l->neighbours[j].item_id;
            if (cascade_idmap_find(&seen, id))
                continue;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&scores, id, NULL);
            if (!e)
                return CASCADE_ENOMEM;
            e->score += (double)src_weights[i] * (double)l->neighbours[j].score;
        }
    }
    return itemcf_top(&scores, quota, arena, out);
}

/* Collapse the last-n list into distinct items with summed interest weights
 * (a stored weight of 0 means "unset" and counts as a click, weight 1). */
static int itemcf_sources(const cascade_v1_Interaction *lastn, size_t n, cascade_arena *arena,
                          uint64_t *ids, float *weights, size_t *n_src)
{
    cascade_idmap pos;
    if (cascade_idmap_init(&pos, arena, n) != 0)
        return CASCADE_ENOMEM;
    *n_src = 0;
    for (size_t i = 0; i < n; i++) {
        bool created;
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&pos, lastn[i].item_id, &created);
        if (!e)
            return CASCADE_ENOMEM;
        if (created) {
            e->index = (uint32_t)*n_src;
            ids[*n_src] = lastn[i].item_id;
            weights[*n_src] = 0;
            (*n_src)++;
        }
        weights[e->index] += lastn[i].weight == 0 ? 1.0f : lastn[i].weight;
    }
    return 0;
}

int cascade_recall__itemcf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out)
{
    const cascade_recall *r = a->recall;
    size_t last_n = r->itemcf_last_n, n = 0, n_src = 0;
    cascade_v1_NeighbourList *lists = NULL;
    bool *found = NULL;
    int rc;
    out->count = 0;
    cascade_v1_Interaction *lastn = cascade_arena_calloc(a->arena, last_n, sizeof *lastn);
    uint64_t *ids = cascade_arena_calloc(a->arena, last_n, sizeof *ids);
    float *weights = cascade_arena_calloc(a->arena, last_n, sizeof *weights);
    if (!lastn || !ids || !weights)
        goto nomem;
    rc = cascade_store_get_lastn(a->redis, r->ns, a->user_id, last_n, lastn, &n);
    if (rc != 0)
        return cascade_recall__store_error(a->redis, rc, "itemcf: last-n", a->err, a->errlen);
    if (n == 0)
        return 0; /* no history: nothing to expand, not an error */
    if (itemcf_sources(lastn, n, a->arena, ids, weights, &n_src) != 0)
        goto nomem;

    lists = cascade_arena_calloc(a->arena, n_src, sizeof *lists);
    found = cascade_arena_calloc(a->arena, n_src, sizeof *found);
    if (!lists || !found)
        goto nomem;
    rc = cascade_store_get_neighbours(a->redis, r->ns, "itemcf", ids, n_src, lists, found);
    if (rc != 0)
        return cascade_recall__store_error(a->redis, rc, "itemcf: neighbours", a->err, a->errlen);
    if (cascade_now_ms() >= a->deadline_ms) {
        snprintf(a->err, a->errlen, "itemcf: deadline exceeded after reading neighbour lists");
        return CASCADE_ETIMEDOUT;
    }
    if (cascade_recall_itemcf_score(ids, weights, n_src, lists, found, r->itemcf_neighbours,
                                    a->quota, a->arena, out) != 0)
        goto nomem;
    return 0;
nomem:
    snprintf(a->err, a->errlen, "itemcf: out of request memory");
    return CASCADE_ENOMEM;
}
