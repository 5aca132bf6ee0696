/* New-item exploration: how many slots, where they go, which candidates may
 * fill them, and the insertion into the final list. */
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

size_t cascade_explore_position(size_t j, size_t slots, size_t count)
{
    if (slots == 0)
        return 0;
    size_t pos = (size_t)(((double)j + 0.5) * (double)count / (double)slots);
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
                         cascade_arena *arena, Cascade__V1__Candidate ***out, size_t *n_out)
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
    for (size_t i = 0; i < m; i++)
        pool[i] = refs[i].cand;
    *out = pool;
    *n_out = m;
    return 0;
}

static bool in_list(Cascade__V1__Candidate *const *list, size_t n, uint64_t item_id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && list[i]->item_id == item_id)
            return true;
    return false;
}

/* Insert cand at pos (<= *n, < count), shifting the rest down; the last item
 * falls off when the list is full. */
static void insert_at(Cascade__V1__Candidate **list, size_t *n, size_t count, size_t pos,
                      Cascade__V1__Candidate *cand)
{
    size_t moved = (*n < count ? *n : count - 1) - pos;
    memmove(&list[pos + 1], &list[pos], moved * sizeof *list);
    list[pos] = cand;
    if (*n < count)
        (*n)++;
}

void cascade_explore_insert(Cascade__V1__Candidate **list, size_t *n, size_t count,
                            Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                            double share, size_t *inserted)
{
    size_t slots = cascade_explore_slots(count, share);
    size_t next = 0;
    *inserted = 0;
    /* Recount after every insertion: an exploration item the re-ranker chose
     * may have been pushed off the end of a full list. */
    for (size_t k = 0; k < slots && cascade_merge_count_channel(list, *n, channel) < slots; k++) {
        while (next < n_pool && (pool[next] == NULL || in_list(list, *n, pool[next]->item_id)))
            next++;
        if (next == n_pool)
            break;
        size_t pos = cascade_explore_position(k, slots, count);
        insert_at(list, n, count, pos < *n ? pos : *n, pool[next++]);
        (*inserted)++;
    }
}
