/* The two-tower item vectors ReRank's similarity terms use: the item index
 * cascade-build train-two-tower publishes (<dir>/two-tower.latest names a
 * version; <dir>/<version>.items.safetensors holds its vectors), looked up by
 * item id, reloaded when two-tower.latest changes. Loading them in the stage
 * keeps the RPC small: candidates need not carry 64 floats each. */
#ifndef CASCADE_RERANK_ITEM_VECTORS_H
#define CASCADE_RERANK_ITEM_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_rerank_vectors cascade_rerank_vectors;

/* Serve the vectors of dir (copied), checking two-tower.latest at most every
 * reload_ms (0 = every request). Loads the current version now; a missing or
 * bad index is logged and retried at the next check. NULL when out of
 * memory. Thread-safe once created. */
cascade_rerank_vectors *cascade_rerank_vectors_create(const char *dir, int64_t reload_ms);

/* NULL is a no-op. No hold may be outstanding. */
void cascade_rerank_vectors_destroy(cascade_rerank_vectors *v);

/* Take a hold on the current version (reloading it first when due) and
 * return it; NULL when none is loaded (then nothing is held). Release with
 * cascade_rerank_vectors_release on the same thread; lookups stay valid
 * until then. v may be NULL. */
const struct cascade_rerank_vecset *cascade_rerank_vectors_acquire(cascade_rerank_vectors *v);
void cascade_rerank_vectors_release(cascade_rerank_vectors *v,
                                    const struct cascade_rerank_vecset *set);

/* The vector of item id (unit length: the index's cosine metric), with its
 * width in *dim; NULL when the version has no such item. Borrowed from set. */
const float *cascade_rerank_vectors_find(const struct cascade_rerank_vecset *set, uint64_t id,
                                         size_t *dim);

/* The loaded version's name and size ("" and 0 for NULL). */
const char *cascade_rerank_vectors_version(const struct cascade_rerank_vecset *set);
size_t cascade_rerank_vectors_count(const struct cascade_rerank_vecset *set);

#endif
