/* Selection helpers of the Recall channels: the best `quota` of an
 * accumulator map, a newest-first merge of creation-time lists with a recency
 * score, and the CF scorer (Σ interest · similarity) that ItemCF and Swing
 * share. All scratch memory comes from the request arena. */
#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "recall_internal.h"

struct ranked {
    uint64_t id;
    double key; /* larger first */
};

/* Descending key; ties by ascending id so results are deterministic. */
static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int alloc_hits(cascade_arena *arena, size_t n, struct cascade_recall_hits *out)
{
    out->count = 0;
    out->ids = cascade_arena_alloc(arena, (n + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(arena, (n + 1) * sizeof *out->scores);
    return out->ids && out->scores ? 0 : CASCADE_ENOMEM;
}

int cascade_recall__top_scores(const cascade_idmap *m, size_t quota, cascade_arena *arena,
                               struct cascade_recall_hits *out)
{
    struct ranked *all = cascade_arena_alloc(arena, (m->count + 1) * sizeof *all);
    if (!all)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t s = 0; s < m->cap; s++)
        if (m->slots[s].used)
            all[n++] = (struct ranked){m->slots[s].key, m->slots[s].score};
    qsort(all, n, sizeof *all, ranked_cmp);
    size_t keep = n < quota ? n : quota;
    if (alloc_hits(arena, keep, out) != 0)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < keep; i++) {
        out->ids[i] = all[i].id;
        out->scores[i] = (float)all[i].key;
    }
    out->count = keep;
    return 0;
}

int cascade_recall__newest(const struct cascade_recall__zlist *lists, size_t n_lists, size_t quota,
                           double half_life_s, cascade_arena *arena,
                           struct cascade_recall_hits *out)
{
    size_t total = 0;
    for (size_t l = 0; l < n_lists; l++)
        total += lists[l].count;
    struct ranked *all = cascade_arena_alloc(arena, (total + 1) * sizeof *all);
    cascade_idmap seen;
    if (!all || cascade_idmap_init(&seen, arena, quota < total ? quota : total) != 0)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t l = 0; l < n_lists; l++)
        for (size_t i = 0; i < lists[l].count; i++)
            all[n++] = (struct ranked){lists[l].ids[i], lists[l].scores[i]};
    qsort(all, n, sizeof *all, ranked_cmp);
    if (alloc_hits(arena, quota < n ? quota : n, out) != 0)
        return CASCADE_ENOMEM;
    double newest = n ? all[0].key : 0;
    for (size_t i = 0; i < n && out->count < quota; i++) {
        bool created;
        if (!cascade_idmap_upsert(&seen, all[i].id, &created))
            return CASCADE_ENOMEM;
        if (!created)
            continue;
        out->ids[out->count] = all[i].id;
        out->scores[out->count] =
            half_life_s > 0 ? (float)exp2(-(newest - all[i].key) / half_life_s) : 1.0f;
        out->count++;
    }
    return 0;
}

int cascade_recall_itemcf_score(const uint64_t *src_ids, const float *src_weights, size_t n_src,
                                const struct cascade_recall_hits *lists, size_t k, size_t quota,
                                cascade_arena *arena, struct cascade_recall_hits *out)
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
        if (!(src_weights[i] > 0))
            continue;
        const struct cascade_recall_hits *l = &lists[i];
        size_t n = l->count < k ? l->count : k;
        for (size_t j = 0; j < n; j++) {
            uint64_t id = l->ids[j];
            if (cascade_idmap_find(&seen, id))
                continue;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&scores, id, NULL);
            if (!e)
                return CASCADE_ENOMEM;
            e->score += (double)src_weights[i] * (double)l->scores[j];
        }
    }
    return cascade_recall__top_scores(&scores, quota, arena, out);
}
