/* Small pieces of the vector index: error text, input checks, query
 * normalisation, the default nlist / nprobe rules and recall@k. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "vindex_internal.h"

void cascade_vindex__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

size_t cascade_vindex__first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return i;
    }
    return n;
}

bool cascade_vindex__normalise(float *v, size_t dim)
{
    double ss = 0;
    for (size_t j = 0; j < dim; j++)
        ss += (double)v[j] * v[j];
    if (ss == 0)
        return false;
    float inv = (float)(1.0 / sqrt(ss));
    for (size_t j = 0; j < dim; j++)
        v[j] *= inv;
    return true;
}

int cascade_vindex__check_search(const cascade_vindex *ix, const float *queries, size_t nq,
                                 size_t dim, size_t k, const uint64_t *ids, const float *scores,
                                 char *err, size_t errlen)
{
    if (!ix || (nq && (!queries || !ids || !scores))) {
        cascade_vindex__err(err, errlen, "vindex search: NULL index, queries or output");
        return CASCADE_EINVAL;
    }
    if (dim != ix->dim) {
        cascade_vindex__err(err, errlen,
                            "vindex search: query dimension %zu does not match the index's %zu",
                            dim, ix->dim);
        return CASCADE_EINVAL;
    }
    if (k == 0 || k > ix->n) {
        cascade_vindex__err(
            err, errlen, "vindex search: k = %zu must be in 1..%zu (the items indexed)", k, ix->n);
        return CASCADE_EINVAL;
    }
    size_t bad = cascade_vindex__first_nonfinite(queries, nq * dim);
    if (bad < nq * dim) {
        cascade_vindex__err(err, errlen, "vindex search: query %zu has a non-finite value at %zu",
                            bad / dim, bad % dim);
        return CASCADE_EINVAL;
    }
    return 0;
}

const float *cascade_vindex__prepare_queries(const cascade_vindex *ix, const float *queries,
                                             size_t nq, float **owned)
{
    *owned = NULL;
    if (ix->metric != CASCADE_VINDEX_COSINE)
        return queries;
    float *copy = malloc(sizeof(float) * (nq * ix->dim > 0 ? nq * ix->dim : 1));
    if (!copy)
        return NULL;
    memcpy(copy, queries, sizeof(float) * nq * ix->dim);
    for (size_t q = 0; q < nq; q++)
        cascade_vindex__normalise(copy + q * ix->dim, ix->dim);
    *owned = copy;
    return copy;
}

size_t cascade_vindex_default_nlist(size_t n)
{
    if (n < 4096)
        return 1; /* scanning a few thousand vectors costs less than probing lists */
    size_t nlist = (size_t)llround(4.0 * sqrt((double)n));
    if (nlist > n / 32)
        nlist = n / 32;
    return nlist;
}

size_t cascade_vindex_default_nprobe(size_t nlist)
{
    /* An eighth of the lists: trained two-tower item vectors searched with
     * user vectors need it for recall@100 >= 0.95 (docs/vindex.md). */
    size_t nprobe = (nlist + 7) / 8;
    if (nprobe < 16)
        nprobe = 16;
    return nprobe < nlist ? nprobe : nlist;
}

size_t cascade_vindex_default_train_sample(size_t n, size_t nlist)
{
    return nlist > n / 64 ? n : 64 * nlist;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double cascade_vindex_recall(const uint64_t *approx, const uint64_t *exact, size_t nq, size_t k)
{
    if (nq == 0 || k == 0)
        return 0;
    uint64_t *sorted = malloc(sizeof(uint64_t) * k);
    if (!sorted)
        return -1;
    size_t hits = 0;
    for (size_t q = 0; q < nq; q++) {
        memcpy(sorted, exact + q * k, sizeof(uint64_t) * k);
        qsort(sorted, k, sizeof(uint64_t), cmp_u64);
        for (size_t i = 0; i < k; i++) {
            uint64_t id = approx[q * k + i];
            if (id != CASCADE_VINDEX_NO_ID && bsearch(&id, sorted, k, sizeof(uint64_t), cmp_u64))
                hits++;
        }
    }
    free(sorted);
    return (double)hits / ((double)nq * (double)k);
}
