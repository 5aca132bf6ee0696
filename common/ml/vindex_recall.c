/* How good an index's approximate search is on given queries: the IVF answer
 * at some nprobe next to the exact scan's, as recall@k (what
 * cascade-build train-two-tower reports for its exported item vectors). */
#include <stdlib.h>

#include "error.h"
#include "vindex_internal.h"

int cascade_vindex_recall_vs_exact(const cascade_vindex *ix, const float *queries, size_t nq,
                                   size_t dim, size_t k, size_t nprobe, double *recall, char *err,
                                   size_t errlen)
{
    if (!recall || nq == 0) {
        cascade_vindex__err(err, errlen, "vindex recall: expected at least one query and a result");
        return CASCADE_EINVAL;
    }
    if (ix && k > ix->n)
        k = ix->n;
    uint64_t *approx = malloc(sizeof(uint64_t) * nq * (k ? k : 1));
    uint64_t *exact = malloc(sizeof(uint64_t) * nq * (k ? k : 1));
    float *scores = malloc(sizeof(float) * nq * (k ? k : 1));
    int rc = CASCADE_ENOMEM;
    if (!approx || !exact || !scores) {
        cascade_vindex__err(err, errlen, "vindex recall: out of memory");
        goto out;
    }
    if ((rc = cascade_vindex_search(ix, queries, nq, dim, k, nprobe, approx, scores, err,
                                    errlen)) != 0 ||
        (rc = cascade_vindex_search_exact(ix, queries, nq, dim, k, exact, scores, err, errlen)) !=
            0)
        goto out;
    *recall = cascade_vindex_recall(approx, exact, nq, k);
    if (*recall < 0) {
        cascade_vindex__err(err, errlen, "vindex recall: out of memory");
        rc = CASCADE_ENOMEM;
    }
out:
    free(approx);
    free(exact);
    free(scores);
    return rc;
}
