/* The IVF index: build (k-means over the items, each item filed under its
 * nearest centroid, lists packed contiguously), accessors, and search over
 * blocks of queries: centroids scored with one sgemm, and each probed list
 * scanned once for all the block's queries that chose it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "error.h"
#include "vindex_internal.h"

#define IVF_QUERY_BLOCK 256 /* queries searched together */

/* ---- build ---- */

static int check_build_args(const float *vectors, const uint64_t *ids, size_t n, size_t dim,
                            const struct cascade_vindex_opts *o, char *err, size_t errlen)
{
    if (!vectors || !ids || n == 0 || dim == 0) {
        cascade_vindex__err(err, errlen,
                            "vindex build: need vectors, ids, n ≥ 1 and dim ≥ 1 (n %zu, dim %zu)",
                            n, dim);
        return CASCADE_EINVAL;
    }
    if (o->metric != CASCADE_VINDEX_COSINE && o->metric != CASCADE_VINDEX_IP) {
        cascade_vindex__err(err, errlen, "vindex build: unknown metric %d", (int)o->metric);
        return CASCADE_EINVAL;
    }
    if (o->nlist > n) {
        cascade_vindex__err(err, errlen,
                            "vindex build: nlist = %zu exceeds the %zu items; lower vindex.nlist "
                            "or set it to 0 (automatic)",
                            o->nlist, n);
        return CASCADE_EINVAL;
    }
    size_t bad = cascade_vindex__first_nonfinite(vectors, n * dim);
    if (bad < n * dim) {
        cascade_vindex__err(err, errlen,
                            "vindex build: vector %zu (id %llu) has a non-finite value at %zu",
                            bad / dim, (unsigned long long)ids[bad / dim], bad % dim);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* The item vectors as the index scores them (normalised under cosine). */
static float *copy_vectors(const float *vectors, const uint64_t *ids, size_t n, size_t dim,
                           enum cascade_vindex_metric metric, char *err, size_t errlen)
{
    float *v = malloc(sizeof(float) * n * dim);
    if (!v) {
        cascade_vindex__err(err, errlen, "vindex build: out of memory for %zu × %zu vectors", n,
                            dim);
        return NULL;
    }
    memcpy(v, vectors, sizeof(float) * n * dim);
    for (size_t i = 0; metric == CASCADE_VINDEX_COSINE && i < n; i++) {
        if (!cascade_vindex__normalise(v + i * dim, dim)) {
            cascade_vindex__err(err, errlen,
                                "vindex build: vector %zu (id %llu) is zero and has no cosine", i,
                                (unsigned long long)ids[i]);
            free(v);
            return NULL;
        }
    }
    return v;
}

static int train_centroids(cascade_vindex *ix, const float *v, const struct cascade_vindex_opts *o,
                           char *err, size_t errlen)
{
    struct cascade_vindex_kmeans_opts ko = {
        .iters = o->kmeans_iters,
        .train_sample = o->train_sample ? o->train_sample
                                        : cascade_vindex_default_train_sample(ix->n, ix->nlist),
        .seed = o->seed,
        .spherical = ix->metric == CASCADE_VINDEX_COSINE,
    };
    return cascade_vindex_kmeans(v, ix->n, ix->dim, ix->nlist, &ko, ix->centroids, NULL, err,
                                 errlen);
}

/* File every row of v under its list: a counting sort into ix->vectors and
 * ix->ids, stable in input order within a list. */
static void pack_lists(cascade_vindex *ix, const float *v, const uint64_t *ids,
                       const uint32_t *assign)
{
    memset(ix->offsets, 0, sizeof(uint64_t) * (ix->nlist + 1));
    for (size_t i = 0; i < ix->n; i++)
        ix->offsets[assign[i] + 1]++;
    for (size_t l = 0; l < ix->nlist; l++) {
        size_t len = (size_t)ix->offsets[l + 1];
        ix->max_list = len > ix->max_list ? len : ix->max_list;
        ix->offsets[l + 1] += ix->offsets[l];
    }
    for (size_t i = 0; i < ix->n; i++) {
        size_t at = (size_t)ix->offsets[assign[i]]++;
        memcpy(ix->vectors + at * ix->dim, v + i * ix->dim, sizeof(float) * ix->dim);
        ix->ids[at] = ids[i];
    }
    /* The fill advanced each offset to the next list's start: shift back. */
    memmove(ix->offsets + 1, ix->offsets, sizeof(uint64_t) * ix->nlist);
    ix->offsets[0] = 0;
}

static cascade_vindex *alloc_index(size_t n, size_t dim, size_t nlist)
{
    cascade_vindex *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return NULL;
    ix->n = n;
    ix->dim = dim;
    ix->nlist = nlist;
    ix->centroids = malloc(sizeof(float) * nlist * dim);
    ix->vectors = malloc(sizeof(float) * n * dim);
    ix->ids = malloc(sizeof(uint64_t) * n);
    ix->offsets = malloc(sizeof(uint64_t) * (nlist + 1));
    ix->version = strdup("unsaved");
    if (!ix->centroids || !ix->vectors || !ix->ids || !ix->offsets || !ix->version) {
        cascade_vindex_destroy(ix);
        return NULL;
    }
    return ix;
}

/* Centroids and each row's list: k-means, or a single list for nlist 1. */
static int cluster(cascade_vindex *ix, const float *v, const struct cascade_vindex_opts *o,
                   uint32_t *assign, char *err, size_t errlen)
{
    if (ix->nlist == 1) {
        memset(ix->centroids, 0, sizeof(float) * ix->dim);
        for (size_t i = 0; i < ix->n; i++) {
            for (size_t t = 0; t < ix->dim; t++)
                ix->centroids[t] += v[i * ix->dim + t] / (float)ix->n;
        }
        memset(assign, 0, sizeof(uint32_t) * ix->n);
        return 0;
    }
    int rc = train_centroids(ix, v, o, err, errlen);
    if (rc == 0)
        rc = cascade_vindex_kmeans_assign(v, ix->n, ix->dim, ix->centroids, ix->nlist,
                                          ix->metric == CASCADE_VINDEX_COSINE, assign);
    if (rc == CASCADE_ENOMEM)
        cascade_vindex__err(err, errlen, "vindex build: out of memory assigning %zu items", ix->n);
    return rc;
}

cascade_vindex *cascade_vindex_build(const float *vectors, const uint64_t *ids, size_t n,
                                     size_t dim, const struct cascade_vindex_opts *opts, char *err,
                                     size_t errlen)
{
    struct cascade_vindex_opts o = opts ? *opts : (struct cascade_vindex_opts){0};
    if (check_build_args(vectors, ids, n, dim, &o, err, errlen) != 0)
        return NULL;
    size_t nlist = o.nlist ? o.nlist : cascade_vindex_default_nlist(n);
    uint32_t *assign = malloc(sizeof(uint32_t) * n);
    float *v = copy_vectors(vectors, ids, n, dim, o.metric, err, errlen);
    cascade_vindex *ix = v && assign ? alloc_index(n, dim, nlist) : NULL;
    if (!ix) {
        if (v)
            cascade_vindex__err(err, errlen, "vindex build: out of memory for %zu items", n);
        goto out;
    }
    ix->metric = o.metric;
    ix->nprobe =
        o.nprobe ? (o.nprobe < nlist ? o.nprobe : nlist) : cascade_vindex_default_nprobe(nlist);
    if (cluster(ix, v, &o, assign, err, errlen) != 0) {
        cascade_vindex_destroy(ix);
        ix = NULL;
        goto out;
    }
    pack_lists(ix, v, ids, assign);
out:
    free(v);
    free(assign);
    return ix;
}

void cascade_vindex_destroy(cascade_vindex *ix)
{
    if (!ix)
        return;
    free(ix->centroids);
    free(ix->vectors);
    free(ix->ids);
    free(ix->offsets);
    free(ix->version);
    free(ix);
}

/* ---- accessors ---- */

size_t cascade_vindex_dim(const cascade_vindex *ix)
{
    return ix ? ix->dim : 0;
}

size_t cascade_vindex_size(const cascade_vindex *ix)
{
    return ix ? ix->n : 0;
}

size_t cascade_vindex_nlist(const cascade_vindex *ix)
{
    return ix ? ix->nlist : 0;
}

size_t cascade_vindex_nprobe(const cascade_vindex *ix)
{
    return ix ? ix->nprobe : 0;
}

enum cascade_vindex_metric cascade_vindex_metric(const cascade_vindex *ix)
{
    return ix ? ix->metric : CASCADE_VINDEX_COSINE;
}

size_t cascade_vindex_list_size(const cascade_vindex *ix, size_t list)
{
    if (!ix || list >= ix->nlist)
        return 0;
    return (size_t)(ix->offsets[list + 1] - ix->offsets[list]);
}

const char *cascade_vindex_version(const cascade_vindex *ix)
{
    return ix ? ix->version : "";
}

const float *cascade_vindex_vectors(const cascade_vindex *ix)
{
    return ix ? ix->vectors : NULL;
}

const uint64_t *cascade_vindex_ids(const cascade_vindex *ix)
{
    return ix ? ix->ids : NULL;
}

/* ---- search ---- */

/* Search runs over blocks of queries: one sgemm scores the block against the
 * centroids, each query picks its nprobe lists, and then each list probed by
 * the block is scanned once for all the queries that chose it (one sgemm over
 * the gathered queries, sgemv for a single one). Scratch is per call, so
 * concurrent searches share nothing. */
struct ivf_scratch {
    size_t qb_max, nprobe;
    float *centroid_scores;             /* qb_max × nlist */
    uint64_t *list_ids;                 /* 0 .. nlist-1 */
    float *probe_scores;                /* nprobe */
    uint64_t *probes;                   /* qb_max × nprobe: each query's lists */
    size_t *list_start;                 /* nlist + 1: the block's (query, list) pairs by list */
    uint32_t *list_queries;             /* qb_max × nprobe */
    float *gathered;                    /* qb_max × dim */
    float *item_scores;                 /* qb_max × max_list */
    struct cascade_vindex__topk *heaps; /* qb_max */
};

static void free_scratch(struct ivf_scratch *s)
{
    free(s->centroid_scores);
    free(s->list_ids);
    free(s->probe_scores);
    free(s->probes);
    free(s->list_start);
    free(s->list_queries);
    free(s->gathered);
    free(s->item_scores);
    free(s->heaps);
}

static int alloc_scratch(const cascade_vindex *ix, size_t nq, size_t nprobe, struct ivf_scratch *s)
{
    size_t qb = nq < IVF_QUERY_BLOCK ? nq : IVF_QUERY_BLOCK;
    s->qb_max = qb;
    s->nprobe = nprobe;
    s->centroid_scores = malloc(sizeof(float) * qb * ix->nlist);
    s->list_ids = malloc(sizeof(uint64_t) * ix->nlist);
    s->probe_scores = malloc(sizeof(float) * nprobe);
    s->probes = malloc(sizeof(uint64_t) * qb * nprobe);
    s->list_start = malloc(sizeof(size_t) * (ix->nlist + 1));
    s->list_queries = malloc(sizeof(uint32_t) * qb * nprobe);
    s->gathered = malloc(sizeof(float) * qb * ix->dim);
    s->item_scores = malloc(sizeof(float) * qb * (ix->max_list ? ix->max_list : 1));
    s->heaps = malloc(sizeof(*s->heaps) * qb);
    if (!s->centroid_scores || !s->list_ids || !s->probe_scores || !s->probes || !s->list_start ||
        !s->list_queries || !s->gathered || !s->item_scores || !s->heaps) {
        free_scratch(s);
        return CASCADE_ENOMEM;
    }
    for (size_t l = 0; l < ix->nlist; l++)
        s->list_ids[l] = l;
    return 0;
}

/* Centroid scores of queries q[0..nq) into out (nq × nlist). */
static void score_centroids(const cascade_vindex *ix, const float *q, size_t nq, float *out)
{
    if (nq == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)ix->nlist, (int)ix->dim, 1.0f, ix->centroids,
                    (int)ix->dim, q, 1, 0.0f, out, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ix->nlist, (int)ix->dim,
                1.0f, q, (int)ix->dim, ix->centroids, (int)ix->dim, 0.0f, out, (int)ix->nlist);
}

/* Each query's nprobe best lists, then the (query, list) pairs grouped by
 * list: list l's queries are list_queries[list_start[l] .. list_start[l+1]). */
static void choose_lists(const cascade_vindex *ix, size_t qb, struct ivf_scratch *s)
{
    size_t np = s->nprobe;
    memset(s->list_start, 0, sizeof(size_t) * (ix->nlist + 1));
    for (size_t i = 0; i < qb; i++) {
        struct cascade_vindex__topk probes;
        cascade_vindex__topk_init(&probes, s->probe_scores, s->probes + i * np, np);
        cascade_vindex__topk_push(&probes, s->centroid_scores + i * ix->nlist, s->list_ids,
                                  ix->nlist);
        for (size_t p = 0; p < np; p++)
            s->list_start[s->probes[i * np + p] + 1]++;
    }
    for (size_t l = 0; l < ix->nlist; l++)
        s->list_start[l + 1] += s->list_start[l];
    for (size_t i = 0; i < qb; i++) {
        for (size_t p = 0; p < np; p++)
            s->list_queries[s->list_start[s->probes[i * np + p]]++] = (uint32_t)i;
    }
    /* The fill advanced each start to the next list's: shift back. */
    memmove(s->list_start + 1, s->list_start, sizeof(size_t) * ix->nlist);
    s->list_start[0] = 0;
}

/* Score list l against the m block queries listed in who[] and offer the
 * items to their heaps. */
static void scan_list(const cascade_vindex *ix, size_t l, const float *q, const uint32_t *who,
                      size_t m, struct ivf_scratch *s)
{
    size_t begin = (size_t)ix->offsets[l], len = (size_t)ix->offsets[l + 1] - begin;
    const float *v = ix->vectors + begin * ix->dim;
    if (len == 0 || m == 0)
        return;
    if (m == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)len, (int)ix->dim, 1.0f, v, (int)ix->dim,
                    q + (size_t)who[0] * ix->dim, 1, 0.0f, s->item_scores, 1);
    } else {
        for (size_t j = 0; j < m; j++)
            memcpy(s->gathered + j * ix->dim, q + (size_t)who[j] * ix->dim,
                   sizeof(float) * ix->dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)len, (int)ix->dim, 1.0f,
                    s->gathered, (int)ix->dim, v, (int)ix->dim, 0.0f, s->item_scores, (int)len);
    }
    for (size_t j = 0; j < m; j++)
        cascade_vindex__topk_push(&s->heaps[who[j]], s->item_scores + j * len, ix->ids + begin,
                                  len);
}

/* Queries q[0..qb) of the block whose results go to ids / scores rows. */
static void search_block(const cascade_vindex *ix, const float *q, size_t qb, size_t k,
                         uint64_t *ids, float *scores, struct ivf_scratch *s)
{
    score_centroids(ix, q, qb, s->centroid_scores);
    choose_lists(ix, qb, s);
    for (size_t i = 0; i < qb; i++)
        cascade_vindex__topk_init(&s->heaps[i], scores + i * k, ids + i * k, k);
    for (size_t l = 0; l < ix->nlist; l++)
        scan_list(ix, l, q, s->list_queries + s->list_start[l],
                  s->list_start[l + 1] - s->list_start[l], s);
    for (size_t i = 0; i < qb; i++)
        cascade_vindex__topk_finish(&s->heaps[i]);
}

int cascade_vindex_search(const cascade_vindex *ix, const float *queries, size_t nq, size_t dim,
                          size_t k, size_t nprobe, uint64_t *ids, float *scores, char *err,
                          size_t errlen)
{
    int rc = cascade_vindex__check_search(ix, queries, nq, dim, k, ids, scores, err, errlen);
    if (rc != 0 || nq == 0)
        return rc;
    if (ix->nlist == 1)
        return cascade_vindex_search_exact(ix, queries, nq, dim, k, ids, scores, err, errlen);
    nprobe = nprobe == 0 ? ix->nprobe : nprobe > ix->nlist ? ix->nlist : nprobe;
    struct ivf_scratch s = {0};
    float *owned = NULL;
    const float *q = cascade_vindex__prepare_queries(ix, queries, nq, &owned);
    if (!q || alloc_scratch(ix, nq, nprobe, &s) != 0) {
        cascade_vindex__err(err, errlen, "vindex search: out of memory for %zu queries", nq);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t q0 = 0; q0 < nq; q0 += IVF_QUERY_BLOCK) {
        size_t qb = nq - q0 < IVF_QUERY_BLOCK ? nq - q0 : IVF_QUERY_BLOCK;
        search_block(ix, q + q0 * dim, qb, k, ids + q0 * k, scores + q0 * k, &s);
    }
out:
    free_scratch(&s);
    free(owned);
    return rc;
}
