/* The interaction matrix shared by the collaborative-filtering builders
 * (ItemCF, Swing, UserCF): each user's most recent items with their interest
 * weights (user -> items, CSR), its transpose (item -> users, CSR), how many
 * users showed interest in each item over the whole log, and optionally a
 * seeded sample of each item's users that bounds the cost of popular items.
 * Built once, read-only afterwards: safe to share between threads. */
#ifndef CASCADE_BUILDER_CF_INDEX_H
#define CASCADE_BUILDER_CF_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

struct cascade_cf_index_opts {
    const struct cascade_behaviour_weights *weights; /* borrowed; which events are interest */
    size_t max_items_per_user; /* keep each user's most recent items; 0 = all */
    size_t max_users_per_item; /* sample size per item; 0 = no sample index */
    uint64_t seed;             /* of the per-item samples */
};

struct cascade_cf_index {
    size_t n_users, n_items, entries;
    /* user -> items: the items of user u are uitem[uoff[u] .. uoff[u+1]),
     * newest first, with interest weights uw[] (summed distinct behaviours). */
    size_t *uoff;
    uint32_t *uitem;
    float *uw;
    /* item -> users over the same (capped) entries: users of item i are
     * iuser[ioff[i] .. ioff[i+1]), ascending, with weights iw[]. */
    size_t *ioff;
    uint32_t *iuser;
    float *iw;
    /* Users with interest in item i over the whole log (before the per-user cap). */
    uint32_t *item_popularity;
    /* Sample of at most max_users_per_item users of each item, ascending:
     * suser[soff[i] .. soff[i+1]); NULL when max_users_per_item is 0. The
     * sample of an item depends only on the seed, its id and its users, so it
     * is the same on every run and for every thread count. */
    size_t *soff;
    uint32_t *suser;
};

/* Build the index from ds's events (interest = positive weight). Returns 0 or
 * CASCADE_ENOMEM. Free with cascade_cf_index_free (also after a failure). */
int cascade_cf_index_build(const cascade_dataset *ds, const struct cascade_cf_index_opts *o,
                           struct cascade_cf_index *out);
void cascade_cf_index_free(struct cascade_cf_index *x);

/* Number of (capped) items of user u / users of item i / sampled users of item i. */
static inline size_t cascade_cf_user_len(const struct cascade_cf_index *x, size_t u)
{
    return x->uoff[u + 1] - x->uoff[u];
}
static inline size_t cascade_cf_item_len(const struct cascade_cf_index *x, size_t i)
{
    return x->ioff[i + 1] - x->ioff[i];
}
static inline size_t cascade_cf_sample_len(const struct cascade_cf_index *x, size_t i)
{
    return x->soff[i + 1] - x->soff[i];
}

#endif
