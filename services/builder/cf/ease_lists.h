/* cascade-build ease: the EASE item-item model (common/ml/ease.h) over the
 * binary interaction matrix (user u interacted with item i when any of
 * their events on i has a positive interest weight, the definition
 * cascade-eval and the other CF builders use), published as neighbour lists
 * exactly like ItemCF (cf_publish.h): family "ease",
 * {ns}:ease@{gen}:{item_id} as a NeighbourList of the top `neighbours`
 * positive weights B[j][i] of item j. Items outside the model's item cap
 * (the max_items with the most users) get no list; other channels cover them. */
#ifndef CASCADE_BUILDER_EASE_LISTS_H
#define CASCADE_BUILDER_EASE_LISTS_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_lists.h"
#include "dataset.h"

struct cascade_ease_lists_opts {
    double lambda;     /* L2 weight, default 250 (build.ease.lambda) */
    size_t max_items;  /* item cap, default 12000 (build.ease.max_items) */
    size_t neighbours; /* list length, default 200, at most 200 (build.ease.neighbours) */
    int threads;       /* threads extracting the lists, default 2 */
    struct cascade_behaviour_weights weights; /* which behaviours are interactions (> 0) */
    bool quiet;                               /* no progress lines */
};

void cascade_ease_lists_defaults(struct cascade_ease_lists_opts *o);

/* Build the model on ds and fill *res with one row per item of ds
 * (neighbours are item indices, best first; uncovered items have none).
 * *covered (may be NULL) receives the number of items the model covers.
 * Returns 0 or a negative code with err ("ease: no interactions ...",
 * "ease: out of memory for N covered items (M MB matrix)"); on success the
 * caller frees *res with cascade_cf_lists_free. */
int cascade_ease_lists_compute(const cascade_dataset *ds, const struct cascade_ease_lists_opts *o,
                               struct cascade_cf_lists *res, size_t *covered, char *err,
                               size_t errlen);

#endif
