/* The result table of the collaborative-filtering builders: for every row
 * (an item or a user) its top-k neighbours, best first, as indices with
 * scores. Rows are filled from a candidate array by top-k selection
 * (topk.h: ties go to the lower id, so results never depend on the order
 * candidates were found in). Several threads may fill one table as long as
 * each row has one writer. */
#ifndef CASCADE_BUILDER_CF_LISTS_H
#define CASCADE_BUILDER_CF_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "topk.h"

/* Neighbours of row r: nbr[r*k .. r*k+count[r]) (item or user indices) with
 * their scores in score[], best first. */
struct cascade_cf_lists {
    size_t n, k;
    uint32_t *count;
    uint32_t *nbr;
    float *score;
    size_t pairs;   /* work done: candidate pairs scored */
    double seconds; /* time the computation took (index + scoring) */
};

/* Allocate n empty rows of up to k neighbours. 0 or CASCADE_ENOMEM. */
int cascade_cf_lists_alloc(struct cascade_cf_lists *l, size_t n, size_t k);
/* Free the arrays (safe on a zeroed or already freed table). */
void cascade_cf_lists_free(struct cascade_cf_lists *l);
/* Sum of the list lengths. */
size_t cascade_cf_lists_total(const struct cascade_cf_lists *l);

/* Select the k best of cand[0..n) (reordering it; idx = neighbour index, id =
 * tie-breaker) into row `row`. */
void cascade_cf_lists_set_row(struct cascade_cf_lists *l, size_t row, struct cascade_scored *cand,
                              size_t n);

#endif
