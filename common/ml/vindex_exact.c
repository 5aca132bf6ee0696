/* Exact top-k search: the flat item array is scored block by block against
 * blocks of queries with sgemm (sgemv for a single query), and each query
 * keeps its best k in a heap living in its own output row. */
#include <stdlib.h>

#include <cblas.h>

#include "error.h"
#include "vindex_internal.h"

#define EXACT_ROW_BLOCK 1024 /* items scored per BLAS call */
#define EXACT_QUERY_BLOCK 64 /* queries scored per BLAS call */

/* Scores of queries q[0..nq) (nq ≤ EXACT_QUERY_BLOCK) against rows v[0..nrows)
 * into out (nq × nrows). */
static void score_block(const float *q, size_t nq, const float *v, size_t nrows, size_t dim,
                        float *out)
{
    if (nq == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nrows, (int)dim, 1.0f, v, (int)dim, q, 1,
                    0.0f, out, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nrows, (int)dim, 1.0f, q,
                (int)dim, v, (int)dim, 0.0f, out, (int)nrows);
}

/* Offer items [r0, r0 + nrows) to every query's heap. */
static void scan_rows(const cascade_vindex *ix, const float *q, size_t nq, size_t r0, size_t nrows,
                      struct cascade_vindex__topk *heaps, float *scratch)
{
    const float *v = ix->vectors + r0 * ix->dim;
    for (size_t q0 = 0; q0 < nq; q0 += EXACT_QUERY_BLOCK) {
        size_t qb = nq - q0 < EXACT_QUERY_BLOCK ? nq - q0 : EXACT_QUERY_BLOCK;
        score_block(q + q0 * ix->dim, qb, v, nrows, ix->dim, scratch);
        for (size_t i = 0; i < qb; i++)
            cascade_vindex__topk_push(&heaps[q0 + i], scratch + i * nrows, ix->ids + r0, nrows);
    }
}

int cascade_vindex_search_exact(const cascade_vindex *ix, const float *queries, size_t nq,
                                size_t dim, size_t k, uint64_t *ids, float *scores, char *err,
                                size_t errlen)
{
    int rc = cascade_vindex__check_search(ix, queries, nq, dim, k, ids, scores, err, errlen);
    if (rc != 0 || nq == 0)
        return rc;
    float *owned = NULL;
    const float *q = cascade_vindex__prepare_queries(ix, queries, nq, &owned);
    struct cascade_vindex__topk *heaps = malloc(sizeof(*heaps) * nq);
    float *scratch = malloc(sizeof(float) * EXACT_QUERY_BLOCK * EXACT_ROW_BLOCK);
    if (!q || !heaps || !scratch) {
        cascade_vindex__err(err, errlen, "vindex exact search: out of memory for %zu queries", nq);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nq; i++)
        cascade_vindex__topk_init(&heaps[i], scores + i * k, ids + i * k, k);
    for (size_t r0 = 0; r0 < ix->n; r0 += EXACT_ROW_BLOCK) {
        size_t nrows = ix->n - r0 < EXACT_ROW_BLOCK ? ix->n - r0 : EXACT_ROW_BLOCK;
        scan_rows(ix, q, nq, r0, nrows, heaps, scratch);
    }
    for (size_t i = 0; i < nq; i++)
        cascade_vindex__topk_finish(&heaps[i]);
out:
    free(scratch);
    free(heaps);
    free(owned);
    return rc;
}
