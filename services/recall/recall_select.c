/* Selection helpers of the Recall channels: the best `quota` of an
 * accumulator map, a newest-first merge of creation-time lists with a recency
 * score, and the CF scorer (Σ interest · similarity) that ItemCF and Swing
 * share. All scratch memory comes from the request arena. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "recall_internal.h"

struct ranked {
    uint64_t id;
    double key; /* larger first */
};

/* The order of the channels' lists: larger key first, ties by smaller id, a
 * NaN key (a corrupt score) after every number. A total order over distinct
 * ids, so any correct selection and sort of them give one result. */
static inline bool ranked_before(const struct ranked *a, const struct ranked *b)
{
    if (a->key > b->key)
        return true;
    if (a->key < b->key)
        return false;
    if (a->key == b->key)
        return a->id < b->id;
    bool an = isnan(a->key), bn = isnan(b->key); /* one of them is NaN, or both */
    return an != bn ? bn : a->id < b->id;
}

static inline void ranked_swap(struct ranked *a, struct ranked *b)
{
    struct ranked t = *a;
    *a = *b;
    *b = t;
}

/* Reorder r[0..n) (distinct ids) so that r[0..k) hold its k first under
 * ranked_before, in any order: quickselect, median-of-three pivots. */
static void ranked_select(struct ranked *r, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* the boundary k lies in [lo, hi) */
    while (hi - lo > 1 && k > lo && k < hi) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (ranked_before(&r[mid], &r[lo]))
            ranked_swap(&r[mid], &r[lo]);
        if (ranked_before(&r[last], &r[lo]))
            ranked_swap(&r[last], &r[lo]);
        if (ranked_before(&r[last], &r[mid]))
            ranked_swap(&r[last], &r[mid]);
        ranked_swap(&r[mid], &r[last]); /* the median as pivot, at the end */
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (ranked_before(&r[i], &r[last]))
                ranked_swap(&r[i], &r[store++]);
        ranked_swap(&r[store], &r[last]); /* the pivot in its final place */
        if (store == k)
            return;
        if (store < k)
            lo = store + 1;
        else
            hi = store;
    }
}

/* Sort r[0..n) by ranked_before with tmp (room for n): insertion-sorted runs
 * of 16, then bottom-up merges. */
static void ranked_sort(struct ranked *r, struct ranked *tmp, size_t n)
{
    enum { RUN = 16 };
    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = lo + RUN < n ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            struct ranked x = r[i];
            size_t j = i;
            for (; j > lo && ranked_before(&x, &r[j - 1]); j--)
                r[j] = r[j - 1];
            r[j] = x;
        }
    }
    struct ranked *src = r, *dst = tmp;
    for (size_t width = RUN; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                dst[o++] = ranked_before(&src[b], &src[a]) ? src[b++] : src[a++];
            while (a < mid)
                dst[o++] = src[a++];
            while (b < hi)
                dst[o++] = src[b++];
        }
        struct ranked *t = src;
        src = dst;
        dst = t;
    }
    if (src != r)
        memcpy(r, src, n * sizeof *r);
}

/* The best min(n, k) of r[0..n) (distinct ids), sorted, at its front: only
 * those are sorted (a channel keeps a few hundred of thousands). Returns how
 * many, or -1 when the arena has no room for the sort's scratch. */
static ptrdiff_t ranked_best(struct ranked *r, size_t n, size_t k, cascade_arena *arena)
{
    size_t keep = n < k ? n : k;
    struct ranked *tmp = keep > 1 ? cascade_arena_alloc(arena, keep * sizeof *tmp) : NULL;
    if (keep > 1 && !tmp)
        return -1;
    if (keep < n)
        ranked_select(r, n, keep);
    ranked_sort(r, tmp, keep);
    return (ptrdiff_t)keep;
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
    ptrdiff_t keep = ranked_best(all, n, quota, arena);
    if (keep < 0 || alloc_hits(arena, (size_t)keep, out) != 0)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < (size_t)keep; i++) {
        out->ids[i] = all[i].id;
        out->scores[i] = (float)all[i].key;
    }
    out->count = (size_t)keep;
    return 0;
}

int cascade_recall__newest(const struct cascade_recall__zlist *lists, size_t n_lists, size_t quota,
                           double half_life_s, cascade_arena *arena,
                           struct cascade_recall_hits *out)
{
    size_t total = 0;
    for (size_t l = 0; l < n_lists; l++)
        total += lists[l].count;
    /* An item listed twice counts once, at its newest time (where the first
     * of its entries in the merged order would be). */
    struct ranked *all = cascade_arena_alloc(arena, (total + 1) * sizeof *all);
    cascade_idmap seen;
    if (!all || cascade_idmap_init(&seen, arena, total) != 0)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t l = 0; l < n_lists; l++)
        for (size_t i = 0; i < lists[l].count; i++) {
            struct ranked e = {lists[l].ids[i], lists[l].scores[i]};
            bool created;
            struct cascade_idmap_entry *slot = cascade_idmap_upsert(&seen, e.id, &created);
            if (!slot)
                return CASCADE_ENOMEM;
            if (created) {
                slot->index = (uint32_t)n;
                all[n++] = e;
            } else if (ranked_before(&e, &all[slot->index])) {
                all[slot->index] = e;
            }
        }
    ptrdiff_t keep = ranked_best(all, n, quota, arena);
    if (keep < 0 || alloc_hits(arena, (size_t)keep, out) != 0)
        return CASCADE_ENOMEM;
    double newest = keep > 0 ? all[0].key : 0;
    for (size_t i = 0; i < (size_t)keep; i++) {
        out->ids[i] = all[i].id;
        out->scores[i] = half_life_s > 0 ? (float)exp2(-(newest - all[i].key) / half_life_s) : 1.0f;
    }
    out->count = (size_t)keep;
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
