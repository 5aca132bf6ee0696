/* New-item exploration: how many slots, where they go, which candidates may
 * fill them (the channel's candidates, then the ranker's choice among them),
 * and the insertion into the final list. */
#include "explore.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "merge.h"

size_t cascade_explore_slots(size_t count, double share)
{
    if (!(share > 0.0) || count == 0)
        return 0;
    double want = floor((double)count * share + 0.5);
    size_t slots = want >= (double)count ? count : (size_t)want;
    if (slots == 0 && count >= 5)
        slots = 1;
    return slots;
}

size_t cascade_explore_position(size_t j, size_t slots, size_t count, double position)
{
    if (slots == 0 || count == 0)
        return 0;
    double p = position > 0.0 ? (position < 1.0 ? position : 1.0) : 0.0;
    double at = (double)count * (p + (1.0 - p) * (double)j / (double)slots);
    size_t pos = (size_t)floor(at + 1e-9); /* 10 × 0.8 must give 8, not 7.999… */
    return pos < count ? pos : count - 1;
}

struct ranked_ref {
    Cascade__V1__Candidate *cand;
    uint32_t rank;
    size_t order;
};

static int ranked_ref_cmp(const void *pa, const void *pb)
{
    const struct ranked_ref *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

int cascade_explore_pool(Cascade__V1__Candidate *const *c, size_t n, const char *channel,
                         size_t max, cascade_arena *arena, Cascade__V1__Candidate ***out,
                         size_t *n_out)
{
    struct ranked_ref *refs = cascade_arena_calloc(arena, n + 1, sizeof *refs);
    Cascade__V1__Candidate **pool = cascade_arena_calloc(arena, n + 1, sizeof *pool);
    size_t m = 0;
    *out = NULL;
    *n_out = 0;
    if (refs == NULL || pool == NULL)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__ChannelHit *hit = c[i] ? cascade_merge_find_hit(c[i], channel) : NULL;
        if (hit)
            refs[m++] = (struct ranked_ref){c[i], hit->rank, i};
    }
    qsort(refs, m, sizeof *refs, ranked_ref_cmp);
    if (max > 0 && m > max)
        m = max;
    for (size_t i = 0; i < m; i++)
        pool[i] = refs[i].cand;
    *out = pool;
    *n_out = m;
    return 0;
}

int cascade_explore_by_rank(Cascade__V1__Candidate *const *pool, size_t n_pool,
                            Cascade__V1__Candidate *const *ranked, size_t n_ranked,
                            double max_rank_share, cascade_arena *arena,
                            Cascade__V1__Candidate ***out, size_t *n_out, uint32_t **pos_out)
{
    Cascade__V1__Candidate **picks = cascade_arena_calloc(arena, n_pool + 1, sizeof *picks);
    uint32_t *pos = cascade_arena_calloc(arena, n_pool + 1, sizeof *pos);
    double share = max_rank_share < 1.0 ? max_rank_share : 1.0;
    size_t limit = share > 0.0 ? (size_t)ceil(share * (double)n_ranked) : 0;
    size_t m = 0;
    *out = NULL;
    *n_out = 0;
    if (pos_out)
        *pos_out = NULL;
    if (picks == NULL || pos == NULL)
        return CASCADE_ENOMEM;
    if (limit > n_ranked)
        limit = n_ranked;
    /* The ranked prefix in order, each entry looked up in the (small) pool,
     * so the result is best first by construction and holds no duplicate. */
    for (size_t r = 0; r < limit && m < n_pool; r++) {
        if (ranked[r] == NULL)
            continue;
        for (size_t i = 0; i < n_pool; i++)
            if (pool[i] && pool[i]->item_id == ranked[r]->item_id) {
                picks[m] = ranked[r];
                pos[m++] = (uint32_t)r;
                break;
            }
    }
    *out = picks;
    *n_out = m;
    if (pos_out)
        *pos_out = pos;
    return 0;
}

/* Entries of ranked[0..n) that are pool items. */
static size_t count_pool_items(Cascade__V1__Candidate *const *ranked, size_t n,
                               Cascade__V1__Candidate *const *pool, size_t n_pool)
{
    size_t k = 0;
    for (size_t i = 0; i < n_pool; i++)
        if (pool[i] && cascade_slots_has_item(ranked, n, pool[i]->item_id))
            k++;
    return k;
}

size_t cascade_explore_fill(Cascade__V1__Candidate *const *ranked, size_t n_ranked, size_t count,
                            size_t reserved, const uint32_t *positions, size_t n_pos,
                            Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                            struct cascade_slot *fills)
{
    size_t need = 0, stay = 0, next = 0, k = 0;
    /* The fewest insertions after which the list holds n_pos exploration
     * items: each one pushes a ranked item off the end of a full list, and
     * that item may be one the re-ranker chose from the channel (need =
     * n_pos always satisfies the test). */
    for (; need <= n_pos; need++) {
        size_t room = count > reserved + need ? count - reserved - need : 0;
        stay = room < n_ranked ? room : n_ranked;
        size_t have = channel ? cascade_merge_count_channel(ranked, stay, channel)
                              : count_pool_items(ranked, stay, pool, n_pool);
        if (have + need >= n_pos)
            break;
    }
    for (; k < need; k++) {
        while (next < n_pool &&
               (pool[next] == NULL || cascade_slots_has_item(ranked, stay, pool[next]->item_id)))
            next++;
        if (next == n_pool)
            break;
        fills[k] =
            (struct cascade_slot){.position = positions[k],
                                  .cand = pool[next++],
                                  .reason = CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION,
                                  .source = "exploration"};
    }
    return k;
}
