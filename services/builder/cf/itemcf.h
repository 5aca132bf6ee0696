/* cascade-build itemcf: item-to-item collaborative filtering (SPEC §5).
 * Interest w_ui of user u in item i is the sum of the weights of the distinct
 * behaviours u showed on i (click 1, like 2, collect 3, share 3, follow 4 by
 * default); similarity is the cosine of the items' user vectors,
 *     sim(i,j) = Σ_u w_ui·w_uj / (||w_i||·||w_j||),
 * accumulated sparsely through the user->items lists (no item×item matrix),
 * with each user's history capped to the most recent items. The top-k
 * neighbours of each item are published (cf_publish.h) under family "itemcf":
 * {ns}:itemcf@{gen}:{item_id} as a NeighbourList. */
#ifndef CASCADE_BUILDER_ITEMCF_H
#define CASCADE_BUILDER_ITEMCF_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_lists.h"
#include "dataset.h"

struct cascade_itemcf_opts {
    size_t max_items_per_user; /* most recent items per user, default 200 (0 = all) */
    size_t top_k;              /* neighbours kept per item, default 100, at most 200 */
    int threads;               /* worker threads, default 2 */
    struct cascade_behaviour_weights weights;
    bool quiet;
};

void cascade_itemcf_defaults(struct cascade_itemcf_opts *o);

/* Compute the neighbour lists: one row per item of ds, neighbours are item
 * indices, best first (ties: lower item id first). Results are identical for
 * any thread count. Returns 0 or a negative code with err; on success the
 * caller frees *res with cascade_cf_lists_free. */
int cascade_itemcf_compute(const cascade_dataset *ds, const struct cascade_itemcf_opts *o,
                           struct cascade_cf_lists *res, char *err, size_t errlen);

#endif
