/* Internals shared by the ReRank stage's source files; not part of the
 * stage's API (symbols use the cascade_rerank__ prefix). */
#ifndef CASCADE_RERANK_INTERNAL_H
#define CASCADE_RERANK_INTERNAL_H

#include <stddef.h>

#include "rerank.h"

/* rel[i] = (x_i − min) / (max − min) of items[i].relevance; all 1 when every
 * score is equal. Non-finite scores count as the minimum. */
void cascade_rerank__normalise(const struct cascade_mmr_item *items, size_t n, double *rel);

#endif
