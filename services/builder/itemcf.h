/* cascade-build itemcf: item-to-item collaborative filtering (SPEC §5).
 * Interest w_ui of user u in item i is the sum of the weights of the distinct
 * behaviours u showed on i (click 1, like 2, collect 3, share 3, follow 4);
 * similarity is the cosine of the items' user vectors,
 *     sim(i,j) = Σ_u w_ui·w_uj / (||w_i||·||w_j||),
 * accumulated sparsely through the user->items lists (no item×item matrix),
 * with each user's history capped to the most recent items. The top-k
 * neighbours of each item go to {ns}:i2i:itemcf:{id} as a NeighbourList. */
#ifndef CASCADE_BUILDER_ITEMCF_H
#define CASCADE_BUILDER_ITEMCF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "redis.h"

struct cascade_itemcf_opts {
    size_t max_items_per_user; /* most recent items per user, default 200 (0 = all) */
    size_t top_k;              /* neighbours kept per item, default 100, at most 200 */
    int threads;               /* worker threads, default 2 */
    struct cascade_behaviour_weights weights;
    bool quiet;
};

/* Neighbours of item index i: nbr[i*k .. i*k+count[i]) (item indices) with
 * their similarities in score[], best first (ties: lower item id first). */
struct cascade_itemcf_result {
    size_t n_items, k;
    uint32_t *count;
    uint32_t *nbr;
    float *score;
    size_t pairs; /* co-occurring (i, j) pairs scored */
    double seconds;
};

void cascade_itemcf_defaults(struct cascade_itemcf_opts *o);

/* Compute the neighbour lists. Returns 0 or a negative code with err. */
int cascade_itemcf_compute(const cascade_dataset *ds, const struct cascade_itemcf_opts *o,
                           struct cascade_itemcf_result *res, char *err, size_t errlen);
void cascade_itemcf_result_free(struct cascade_itemcf_result *res);

/* Write the lists to Redis (SET {ns}:i2i:itemcf:{id}; items without
 * neighbours get their key deleted). *written counts the lists stored. */
int cascade_itemcf_store(const cascade_dataset *ds, const struct cascade_itemcf_result *res,
                         cascade_redis *r, const char *ns, size_t pipeline, bool quiet,
                         size_t *written, char *err, size_t errlen);

#endif
