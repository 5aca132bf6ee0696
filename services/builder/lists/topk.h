/* Top-k selection for the builders' ranked lists (hot items, an author's
 * similar authors, ...): the k best of n scored entries, best first, ties
 * broken by the lower id so results do not depend on input order. */
#ifndef CASCADE_BUILDER_TOPK_H
#define CASCADE_BUILDER_TOPK_H

#include <stddef.h>
#include <stdint.h>

struct cascade_scored {
    double score;
    uint64_t id;  /* public id, the tie-breaker */
    uint32_t idx; /* caller's index (item, author, ...), carried along */
};

/* Reorder v[0..n) so that its first min(n, k) entries are the best ones,
 * best first (higher score, then lower id). Returns min(n, k). O(n log k). */
size_t cascade_topk_select(struct cascade_scored *v, size_t n, size_t k);

#endif
