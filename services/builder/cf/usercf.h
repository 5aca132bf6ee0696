/* cascade-build usercf: user-to-user collaborative filtering (SPEC §5). Two
 * users are similar when they interacted with the same items, and a shared
 * hot item says less than a shared niche one:
 *     sim(u,v) = Σ_{i ∈ I_u∩I_v} 1/ln(1 + n_i) / sqrt(|I_u|·|I_v|),
 * n_i = users who interacted with i over the whole log, I_u = u's most recent
 * items (capped). The users of each item are sampled (seeded) down to a cap, so
 * a very popular item costs at most cap candidates per user who has it. The
 * top-k similar users of each user are published (cf_publish.h) under family
 * "usercf": {ns}:usercf@{gen}:{user_id} as a UserNeighbourList. */
#ifndef CASCADE_BUILDER_USERCF_H
#define CASCADE_BUILDER_USERCF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_lists.h"
#include "dataset.h"

struct cascade_usercf_opts {
    size_t max_users_per_item; /* users of an item considered, default 100 (0 = all) */
    size_t max_items_per_user; /* most recent items per user, default 200 (0 = all) */
    size_t top_k;              /* similar users kept per user, default 50, at most 100 */
    uint64_t seed;             /* of the user samples, default 1 */
    int threads;               /* worker threads, default 2 */
    struct cascade_behaviour_weights weights; /* which events count as interactions (> 0) */
    bool quiet;
};

void cascade_usercf_defaults(struct cascade_usercf_opts *o);

/* Compute the lists: one row per user of ds, neighbours are user indices,
 * best first (ties: lower user index first). The same seed gives the same
 * lists for any thread count. Returns 0 or a negative code with err; on
 * success the caller frees *res with cascade_cf_lists_free. */
int cascade_usercf_compute(const cascade_dataset *ds, const struct cascade_usercf_opts *o,
                           struct cascade_cf_lists *res, char *err, size_t errlen);

#endif
