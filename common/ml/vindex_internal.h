/* Internals of the vector index shared by its source files (common/ml/vindex*.c):
 * the index layout, the bounded top-k heap and small vector helpers. Not part
 * of the public API; symbols use the cascade_vindex__ prefix. */
#ifndef CASCADE_VINDEX_INTERNAL_H
#define CASCADE_VINDEX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vindex.h"

/* Inverted list l holds items offsets[l] .. offsets[l+1]-1: their vectors are
 * rows of `vectors` and their ids entries of `ids`, so the lists laid end to
 * end are also the flat array the exact scan reads. */
struct cascade_vindex {
    size_t dim, n, nlist, nprobe;
    enum cascade_vindex_metric metric;
    float *centroids;  /* nlist × dim */
    float *vectors;    /* n × dim */
    uint64_t *ids;     /* n */
    uint64_t *offsets; /* nlist + 1 */
    size_t max_list;   /* longest list, for scratch sizing */
    char *version;
};

/* A bounded min-heap keeping the k best (score, id) pairs seen; the root is
 * the worst kept. Better means a higher score, then a lower id. */
struct cascade_vindex__topk {
    float *scores;
    uint64_t *ids;
    size_t k, len;
};

/* Reset an empty heap over caller storage of k slots. */
void cascade_vindex__topk_init(struct cascade_vindex__topk *h, float *scores, uint64_t *ids,
                               size_t k);

/* Offer n scores with their ids (score[i] belongs to ids[i]). */
void cascade_vindex__topk_push(struct cascade_vindex__topk *h, const float *scores,
                               const uint64_t *ids, size_t n);

/* Sort the kept pairs best first into the heap's own storage and pad the
 * slots past len with CASCADE_VINDEX_NO_ID / -INFINITY. The heap is spent. */
void cascade_vindex__topk_finish(struct cascade_vindex__topk *h);

/* printf into err (no-op when err is NULL or errlen is 0). */
void cascade_vindex__err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Index of the first non-finite value in x[0..n), or n when all are finite. */
size_t cascade_vindex__first_nonfinite(const float *x, size_t n);

/* Scale v[0..dim) to unit L2 norm; false (v untouched) when its norm is 0. */
bool cascade_vindex__normalise(float *v, size_t dim);

/* Check the common search arguments; 0 or CASCADE_EINVAL with a message. */
int cascade_vindex__check_search(const cascade_vindex *ix, const float *queries, size_t nq,
                                 size_t dim, size_t k, const uint64_t *ids, const float *scores,
                                 char *err, size_t errlen);

/* The queries ready to score: a normalised copy under the cosine metric (into
 * *owned, which the caller frees), the input itself otherwise. NULL when out
 * of memory; a zero query stays zero. */
const float *cascade_vindex__prepare_queries(const cascade_vindex *ix, const float *queries,
                                             size_t nq, float **owned);

#endif
