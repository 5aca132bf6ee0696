/* cascade-build swing: Swing item-to-item similarity (SPEC §5). Two items are
 * similar when many pairs of users both interacted with them, and a pair
 * counts for less the more the two users have in common anyway (a small,
 * tight circle says little about the items):
 *     sim(i,j) = Σ_{u<v ∈ U_i∩U_j} w_u·w_v / (α + |I_u ∩ I_v|),
 *     w_u = (|I_u| + α₁)^−β.
 * I_u is the user's most recent items (capped), U_i the item's users, sampled
 * (seeded) down to a cap so a popular item costs at most cap² pairs. The top-k
 * neighbours of each item are published (cf_publish.h) under family "swing":
 * {ns}:swing@{gen}:{item_id} as a NeighbourList. */
#ifndef CASCADE_BUILDER_SWING_H
#define CASCADE_BUILDER_SWING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_lists.h"
#include "dataset.h"

struct cascade_swing_opts {
    double alpha;              /* α, default 1 */
    double alpha1;             /* α₁, default 5 */
    double beta;               /* β, default 0.3 */
    size_t max_users_per_item; /* U_i sample size, default 100, in [2, 2000] */
    size_t max_items_per_user; /* most recent items per user, default 200 (0 = all) */
    size_t top_k;              /* neighbours kept per item, default 100, at most 200 */
    uint64_t seed;             /* of the user samples, default 1 */
    int threads;               /* worker threads, default 2 */
    struct cascade_behaviour_weights weights; /* which events count as interactions (> 0) */
    bool quiet;
};

void cascade_swing_defaults(struct cascade_swing_opts *o);

/* Compute the neighbour lists: one row per item of ds, neighbours are item
 * indices, best first (ties: lower item id first). The same seed gives the
 * same lists for any thread count. Returns 0 or a negative code with err; on
 * success the caller frees *res with cascade_cf_lists_free. */
int cascade_swing_compute(const cascade_dataset *ds, const struct cascade_swing_opts *o,
                          struct cascade_cf_lists *res, char *err, size_t errlen);

#endif
