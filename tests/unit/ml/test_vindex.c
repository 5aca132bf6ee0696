/* Unit tests for the vector index search and k-means (common/ml/vindex*.c): the
 * exact scan against a naive loop, k-means recovering separated blobs and
 * refilling empty clusters, IVF with every list probed equal to exact, IVF
 * recall@100 at the default nprobe on clustered data, the recall-vs-exact
 * figure against a hand count, and concurrent search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "vindex.h"

/* ---- data ---- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double gaussian(uint64_t *s)
{
    double u = ((double)(next_u64(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(next_u64(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static float *gaussian_matrix(size_t rows, size_t dim, uint64_t seed)
{
    float *x = malloc(sizeof(float) * rows * dim);
    for (size_t i = 0; i < rows * dim; i++)
        x[i] = (float)gaussian(&seed);
    return x;
}

/* rows points around `clusters` random unit centres (noise of norm ≈ spread);
 * the same generator as scripts/bench/bench_vindex.c, with equal popularity. */
static float *clustered(size_t rows, size_t dim, size_t clusters, double spread, uint64_t seed)
{
    float *centres = gaussian_matrix(clusters, dim, seed);
    float *x = malloc(sizeof(float) * rows * dim);
    uint64_t rng = seed ^ 0x5555;
    for (size_t i = 0; i < rows; i++) {
        size_t c = (size_t)(next_u64(&rng) % clusters);
        double norm = 0;
        for (size_t j = 0; j < dim; j++)
            norm += (double)centres[c * dim + j] * centres[c * dim + j];
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = (float)(centres[c * dim + j] / sqrt(norm) +
                                     spread / sqrt((double)dim) * gaussian(&rng));
    }
    free(centres);
    return x;
}

static uint64_t *spaced_ids(size_t n)
{
    uint64_t *ids = malloc(sizeof(uint64_t) * n);
    for (size_t i = 0; i < n; i++)
        ids[i] = 1000 + 7 * (uint64_t)i; /* not the row number, to catch mix-ups */
    return ids;
}

/* ---- naive reference ---- */

struct scored {
    double score;
    uint64_t id;
};

static int by_score_then_id(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Top-k of one query by scoring every row in double precision and sorting. */
static void naive_topk(const float *x, const uint64_t *ids, size_t n, size_t dim, const float *q,
                       bool cosine, size_t k, uint64_t *out_ids, double *out_scores)
{
    struct scored *all = malloc(sizeof(*all) * n);
    double qn = 0;
    for (size_t j = 0; j < dim; j++)
        qn += (double)q[j] * q[j];
    for (size_t i = 0; i < n; i++) {
        double dot = 0, xn = 0;
        for (size_t j = 0; j < dim; j++) {
            dot += (double)x[i * dim + j] * q[j];
            xn += (double)x[i * dim + j] * x[i * dim + j];
        }
        all[i].score = cosine ? dot / sqrt(xn * qn) : dot;
        all[i].id = ids[i];
    }
    qsort(all, n, sizeof(*all), by_score_then_id);
    for (size_t r = 0; r < k; r++) {
        out_ids[r] = all[r].id;
        out_scores[r] = all[r].score;
    }
    free(all);
}

/* Every row of (ids, scores) equals the naive answer (scores to 1e-4). */
static void assert_matches_naive(const float *x, const uint64_t *xid, size_t n, size_t dim,
                                 const float *q, size_t nq, bool cosine, size_t k,
                                 const uint64_t *ids, const float *scores)
{
    uint64_t *want = malloc(sizeof(uint64_t) * k);
    double *want_s = malloc(sizeof(double) * k);
    for (size_t i = 0; i < nq; i++) {
        naive_topk(x, xid, n, dim, q + i * dim, cosine, k, want, want_s);
        for (size_t r = 0; r < k; r++) {
            assert_int_equal(ids[i * k + r], want[r]);
            assert_true(fabs(scores[i * k + r] - want_s[r]) < 1e-4);
        }
    }
    free(want);
    free(want_s);
}

/* ---- exact scan ---- */

static void check_exact(enum cascade_vindex_metric metric, size_t nq, size_t k)
{
    enum { N = 2500, D = 24 }; /* N not a multiple of the 1024-row block */
    char err[256] = "";
    float *x = gaussian_matrix(N, D, 1), *q = gaussian_matrix(nq, D, 2);
    uint64_t *xid = spaced_ids(N), *ids = malloc(sizeof(uint64_t) * nq * k);
    float *scores = malloc(sizeof(float) * nq * k);
    struct cascade_vindex_opts o = {.metric = metric, .nlist = 1};
    cascade_vindex *ix = cascade_vindex_build(x, xid, N, D, &o, err, sizeof(err));
    assert_non_null(ix);
    assert_int_equal(cascade_vindex_search_exact(ix, q, nq, D, k, ids, scores, err, sizeof(err)),
                     0);
    assert_matches_naive(x, xid, N, D, q, nq, metric == CASCADE_VINDEX_COSINE, k, ids, scores);
    cascade_vindex_destroy(ix);
    free(x);
    free(q);
    free(xid);
    free(ids);
    free(scores);
}

static void test_exact_matches_naive_loop(void **state)
{
    (void)state;
    check_exact(CASCADE_VINDEX_IP, 70, 50); /* 70 queries: more than one query block */
    check_exact(CASCADE_VINDEX_COSINE, 70, 50);
    check_exact(CASCADE_VINDEX_IP, 1, 10);       /* the sgemv path */
    check_exact(CASCADE_VINDEX_COSINE, 3, 2500); /* k = n: everything, in order */
}

/* Equal scores rank by ascending id, in the exact scan and in IVF alike, so
 * answers are deterministic whatever the storage order. */
static void test_ties_broken_by_lower_id(void **state)
{
    (void)state;
    enum { N = 64, D = 4, K = 5 };
    float x[N * D], q[D] = {1, 0, 0, 0};
    uint64_t ids[N], got[K];
    float scores[K];
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            x[i * D + j] = j == 0 ? 1.0f : 0.0f; /* all identical */
        ids[i] = (uint64_t)((i * 37) % N) + 100; /* a permutation of 100..163 */
    }
    char err[256] = "";
    struct cascade_vindex_opts o = {.metric = CASCADE_VINDEX_IP, .nlist = 1};
    cascade_vindex *ix = cascade_vindex_build(x, ids, N, D, &o, err, sizeof(err));
    assert_non_null(ix);
    assert_int_equal(cascade_vindex_search_exact(ix, q, 1, D, K, got, scores, err, sizeof(err)), 0);
    for (size_t r = 0; r < K; r++)
        assert_int_equal(got[r], 100 + r);
    cascade_vindex_destroy(ix);
}

/* ---- k-means ---- */

/* Blob b's centre: coordinate b·2 is 10, the rest 0, so centres are 14 apart. */
static void blob_centre(size_t b, size_t dim, float *c)
{
    memset(c, 0, sizeof(float) * dim);
    c[(b * 2) % dim] = 10.0f;
}

/* 8 blobs of 150 points (noise σ 0.5) around centres 14 apart. */
static float *blobs(size_t b_count, size_t per, size_t dim)
{
    float *x = malloc(sizeof(float) * b_count * per * dim), centre[64];
    uint64_t rng = 11;
    for (size_t i = 0; i < b_count * per; i++) {
        blob_centre(i % b_count, dim, centre);
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = centre[j] + (float)(0.5 * gaussian(&rng));
    }
    return x;
}

static void test_kmeans_recovers_blobs(void **state)
{
    (void)state;
    enum { B = 8, PER = 150, D = 16 };
    float *x = blobs(B, PER, D), centre[D], c[B * D];
    uint32_t assign[B * PER];
    for (uint64_t seed = 1; seed <= 5; seed++) {
        struct cascade_vindex_kmeans_opts o = {.iters = 30, .seed = seed};
        struct cascade_vindex_kmeans_stats st;
        char err[256] = "";
        assert_int_equal(cascade_vindex_kmeans(x, B * PER, D, B, &o, c, &st, err, sizeof(err)), 0);
        /* Each true centre has exactly one found centroid within 0.3 of it. */
        for (size_t b = 0; b < B; b++) {
            blob_centre(b, D, centre);
            int near = 0;
            for (size_t j = 0; j < B; j++) {
                double d2 = 0;
                for (size_t t = 0; t < D; t++)
                    d2 += (double)(c[j * D + t] - centre[t]) * (c[j * D + t] - centre[t]);
                near += d2 < 0.3 * 0.3;
            }
            assert_int_equal(near, 1);
        }
        /* Each point's cluster is its blob's: assignments are pure. */
        assert_int_equal(cascade_vindex_kmeans_assign(x, B * PER, D, c, B, false, assign), 0);
        for (size_t i = B; i < B * PER; i++)
            assert_int_equal(assign[i], assign[i % B]);
        assert_true(st.objective < 0.5 * 0.5 * D * 1.2); /* ≈ the noise variance per point */
    }
    free(x);
}

/* Random initialisation may stop in a local optimum, but Lloyd iterations
 * still end at a fixed point: every centroid is the mean of its points. */
static void test_kmeans_random_init_reaches_fixed_point(void **state)
{
    (void)state;
    enum { B = 8, PER = 150, D = 16, N = B * PER };
    float *x = blobs(B, PER, D), c[B * D];
    double mean[B * D] = {0};
    size_t count[B] = {0};
    uint32_t assign[N];
    struct cascade_vindex_kmeans_opts o = {
        .iters = 100, .seed = 5, .init = CASCADE_VINDEX_INIT_RANDOM};
    struct cascade_vindex_kmeans_stats st;
    char err[256] = "";
    assert_int_equal(cascade_vindex_kmeans(x, N, D, B, &o, c, &st, err, sizeof(err)), 0);
    assert_true(st.iters_run < 100); /* converged */
    assert_int_equal(cascade_vindex_kmeans_assign(x, N, D, c, B, false, assign), 0);
    for (size_t i = 0; i < N; i++) {
        count[assign[i]]++;
        for (size_t t = 0; t < D; t++)
            mean[assign[i] * D + t] += x[i * D + t];
    }
    for (size_t j = 0; j < B; j++) {
        assert_true(count[j] > 0);
        for (size_t t = 0; t < D; t++)
            assert_true(fabs(mean[j * D + t] / (double)count[j] - c[j * D + t]) < 1e-4);
    }
    free(x);
}

static void test_kmeans_is_deterministic(void **state)
{
    (void)state;
    enum { N = 3000, D = 8, K = 20 };
    float *x = gaussian_matrix(N, D, 3), a[K * D], b[K * D], c[K * D];
    char err[256];
    struct cascade_vindex_kmeans_opts o = {.seed = 9, .train_sample = 1000};
    assert_int_equal(cascade_vindex_kmeans(x, N, D, K, &o, a, NULL, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_kmeans(x, N, D, K, &o, b, NULL, err, sizeof(err)), 0);
    assert_memory_equal(a, b, sizeof(a));
    o.seed = 10;
    assert_int_equal(cascade_vindex_kmeans(x, N, D, K, &o, c, NULL, err, sizeof(err)), 0);
    assert_memory_not_equal(a, c, sizeof(a));
    free(x);
}

/* Most points sit on one spot, so random initialisation picks several
 * identical centroids: all but one start empty and must be refilled by
 * splitting, or the two small blobs end up sharing a centroid. */
static void test_kmeans_splits_empty_clusters(void **state)
{
    (void)state;
    enum { SPOT = 1000, SMALL = 40, N = SPOT + 2 * SMALL, D = 2, K = 3 };
    float x[N * D], c[K * D];
    uint64_t rng = 4;
    memset(x, 0, sizeof(x));
    for (size_t i = SPOT; i < N; i++) {
        bool second = i >= SPOT + SMALL;
        x[i * D + 0] = (second ? 0.0f : 10.0f) + (float)(0.3 * gaussian(&rng));
        x[i * D + 1] = (second ? 10.0f : 0.0f) + (float)(0.3 * gaussian(&rng));
    }
    struct cascade_vindex_kmeans_opts o = {
        .seed = 1, .iters = 50, .init = CASCADE_VINDEX_INIT_RANDOM};
    struct cascade_vindex_kmeans_stats st;
    char err[256];
    assert_int_equal(cascade_vindex_kmeans(x, N, D, K, &o, c, &st, err, sizeof(err)), 0);
    assert_true(st.empty_splits >= 1);
    const float want[K][D] = {{0, 0}, {10, 0}, {0, 10}};
    for (size_t w = 0; w < K; w++) {
        int near = 0;
        for (size_t j = 0; j < K; j++)
            near += hypot(c[j * D] - want[w][0], c[j * D + 1] - want[w][1]) < 0.5;
        assert_int_equal(near, 1);
    }
}

/* ---- IVF ---- */

static void check_full_probe(enum cascade_vindex_metric metric, size_t nq)
{
    enum { N = 4000, D = 16, K = 30, NLIST = 25 };
    char err[256] = "";
    float *x = clustered(N, D, 40, 0.8, 21), *q = clustered(nq, D, 40, 0.8, 22);
    uint64_t *xid = spaced_ids(N), *a = malloc(sizeof(uint64_t) * nq * K),
             *b = malloc(sizeof(uint64_t) * nq * K);
    float *sa = malloc(sizeof(float) * nq * K), *sb = malloc(sizeof(float) * nq * K);
    struct cascade_vindex_opts o = {.metric = metric, .nlist = NLIST, .seed = 3};
    cascade_vindex *ix = cascade_vindex_build(x, xid, N, D, &o, err, sizeof(err));
    assert_non_null(ix);
    assert_int_equal(cascade_vindex_nlist(ix), NLIST);
    size_t total = 0;
    for (size_t l = 0; l < NLIST; l++)
        total += cascade_vindex_list_size(ix, l);
    assert_int_equal(total, N);
    assert_int_equal(cascade_vindex_search(ix, q, nq, D, K, NLIST, a, sa, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_search_exact(ix, q, nq, D, K, b, sb, err, sizeof(err)), 0);
    for (size_t i = 0; i < nq * K; i++) {
        assert_int_equal(a[i], b[i]);
        assert_true(fabsf(sa[i] - sb[i]) < 1e-5f);
    }
    /* And both agree with the naive loop. */
    assert_matches_naive(x, xid, N, D, q, nq < 5 ? nq : 5, metric == CASCADE_VINDEX_COSINE, K, a,
                         sa);
    cascade_vindex_destroy(ix);
    free(x);
    free(q);
    free(xid);
    free(a);
    free(b);
    free(sa);
    free(sb);
}

static void test_ivf_full_probe_equals_exact(void **state)
{
    (void)state;
    check_full_probe(CASCADE_VINDEX_COSINE, 300); /* more than one 256-query block */
    check_full_probe(CASCADE_VINDEX_IP, 300);
    check_full_probe(CASCADE_VINDEX_COSINE, 1);
}

/* recall@100 of the IVF search at nprobe against the exact scan. */
static double ivf_recall(const cascade_vindex *ix, const float *q, size_t nq, size_t dim,
                         size_t nprobe)
{
    enum { K = 100 };
    char err[256];
    uint64_t *a = malloc(sizeof(uint64_t) * nq * K), *b = malloc(sizeof(uint64_t) * nq * K);
    float *s = malloc(sizeof(float) * nq * K);
    assert_int_equal(cascade_vindex_search(ix, q, nq, dim, K, nprobe, a, s, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_search_exact(ix, q, nq, dim, K, b, s, err, sizeof(err)), 0);
    double r = cascade_vindex_recall(a, b, nq, K);
    free(a);
    free(b);
    free(s);
    return r;
}

static void test_ivf_recall_at_default_nprobe(void **state)
{
    (void)state;
    enum { N = 20000, D = 64, NQ = 200 };
    char err[256] = "";
    float *x = clustered(N + NQ, D, 200, 1.0, 31), *q = x + (size_t)N * D;
    uint64_t *xid = spaced_ids(N);
    cascade_vindex *ix = cascade_vindex_build(x, xid, N, D, NULL, err, sizeof(err));
    assert_non_null(ix);
    assert_int_equal(cascade_vindex_nlist(ix), cascade_vindex_default_nlist(N));
    assert_int_equal(cascade_vindex_nprobe(ix), cascade_vindex_default_nprobe(566));
    double r = ivf_recall(ix, q, NQ, D, 0);
    print_message("IVF recall@100 at nprobe %zu of %zu lists: %.4f\n", cascade_vindex_nprobe(ix),
                  cascade_vindex_nlist(ix), r);
    assert_true(r >= 0.95);
    /* The lists really partition the items: one probe misses much of the answer. */
    assert_true(ivf_recall(ix, q, NQ, D, 1) < 0.8);
    cascade_vindex_destroy(ix);
    free(x);
    free(xid);
}

/* cascade_vindex_recall_vs_exact against a hand count of the overlap of the
 * two searches, 1 with every list probed, k capped at the size, bad input. */
static void test_recall_vs_exact(void **state)
{
    (void)state;
    enum { N = 5000, D = 16, NQ = 40, K = 20 };
    char err[256] = "";
    float *x = clustered(N + NQ, D, 50, 1.0, 7), *q = x + (size_t)N * D;
    uint64_t *xid = spaced_ids(N);
    struct cascade_vindex_opts o = {.metric = CASCADE_VINDEX_COSINE, .nlist = 64, .seed = 3};
    cascade_vindex *ix = cascade_vindex_build(x, xid, N, D, &o, err, sizeof(err));
    assert_non_null(ix);
    uint64_t *a = malloc(sizeof(uint64_t) * NQ * K), *b = malloc(sizeof(uint64_t) * NQ * K);
    float *sc = malloc(sizeof(float) * NQ * K);
    assert_int_equal(cascade_vindex_search(ix, q, NQ, D, K, 2, a, sc, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_search_exact(ix, q, NQ, D, K, b, sc, err, sizeof(err)), 0);
    size_t hits = 0;
    for (size_t i = 0; i < (size_t)NQ * K; i++)
        for (size_t j = (i / K) * K; j < (i / K + 1) * K; j++)
            hits += a[i] != CASCADE_VINDEX_NO_ID && a[i] == b[j];
    double r = -1, want = (double)hits / (NQ * K);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, K, 2, &r, err, sizeof(err)), 0);
    assert_true(fabs(r - want) < 1e-12);
    assert_true(r > 0.1 && r < 1.0); /* two of 64 lists: some of the answer, not all */
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, K, 64, &r, err, sizeof(err)), 0);
    assert_true(r == 1.0);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, K, 1000, &r, err, sizeof(err)),
                     0);
    assert_true(r == 1.0);
    /* nprobe 0 is the index default. */
    double r0 = -1;
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, K, 0, &r0, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, K, cascade_vindex_nprobe(ix), &r,
                                                    err, sizeof(err)),
                     0);
    assert_true(r0 == r);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, 0, D, K, 0, &r, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D - 1, K, 0, &r, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "dimension"));
    cascade_vindex_destroy(ix);
    /* k above the size is capped (not an error): with every list probed
     * (the default for 4 lists) each answer holds every item. */
    o.nlist = 4;
    ix = cascade_vindex_build(x, xid, 30, D, &o, err, sizeof(err));
    assert_non_null(ix);
    assert_int_equal(cascade_vindex_recall_vs_exact(ix, q, NQ, D, 100, 0, &r, err, sizeof(err)), 0);
    assert_true(r == 1.0);
    cascade_vindex_destroy(ix);
    free(a);
    free(b);
    free(sc);
    free(x);
    free(xid);
}

static void test_default_rules(void **state)
{
    (void)state;
    assert_int_equal(cascade_vindex_default_nlist(100000), 1265);
    assert_int_equal(cascade_vindex_default_nlist(20000), 566);
    assert_int_equal(cascade_vindex_default_nlist(8000), 250); /* capped at n/32 */
    assert_int_equal(cascade_vindex_default_nlist(4000), 1);   /* exact scan */
    assert_int_equal(cascade_vindex_default_nprobe(1265), 159);
    assert_int_equal(cascade_vindex_default_nprobe(304), 38);
    assert_int_equal(cascade_vindex_default_nprobe(100), 16);
    assert_int_equal(cascade_vindex_default_nprobe(10), 10);
    assert_int_equal(cascade_vindex_default_train_sample(100000, 1265), 80960);
    assert_int_equal(cascade_vindex_default_train_sample(1000, 100), 1000);
}

/* A single list (the default for small n) searches exactly; a short answer
 * is padded when the probed lists hold fewer than k items. */
static void test_small_index_and_padding(void **state)
{
    (void)state;
    enum { N = 200, D = 8, K = 150 };
    char err[256] = "";
    float *x = clustered(N, D, 4, 0.3, 41), *q = clustered(2, D, 4, 0.3, 42);
    uint64_t *xid = spaced_ids(N), a[2 * K], b[2 * K];
    float sa[2 * K], sb[2 * K];
    cascade_vindex *flat = cascade_vindex_build(x, xid, N, D, NULL, err, sizeof(err));
    assert_non_null(flat);
    assert_int_equal(cascade_vindex_nlist(flat), 1);
    assert_int_equal(cascade_vindex_search(flat, q, 2, D, K, 0, a, sa, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_search_exact(flat, q, 2, D, K, b, sb, err, sizeof(err)), 0);
    assert_memory_equal(a, b, sizeof(a));
    struct cascade_vindex_opts o = {.nlist = 4, .nprobe = 1, .seed = 2};
    cascade_vindex *ivf = cascade_vindex_build(x, xid, N, D, &o, err, sizeof(err));
    assert_non_null(ivf);
    assert_int_equal(cascade_vindex_search(ivf, q, 2, D, K, 0, a, sa, err, sizeof(err)), 0);
    /* One probed list of the four holds fewer than 150 items. */
    assert_int_equal(a[K - 1], CASCADE_VINDEX_NO_ID);
    assert_true(isinf(sa[K - 1]) && sa[K - 1] < 0);
    assert_true(a[0] != CASCADE_VINDEX_NO_ID);
    cascade_vindex_destroy(flat);
    cascade_vindex_destroy(ivf);
    free(x);
    free(q);
    free(xid);
}

/* ---- threads ---- */

struct search_job {
    const cascade_vindex *ix;
    const float *q;
    size_t nq, dim, k;
    uint64_t *ids;
    float *scores;
    int rc;
};

static void *search_thread(void *arg)
{
    struct search_job *j = arg;
    char err[256];
    for (int rep = 0; rep < 3 && j->rc == 0; rep++) {
        for (size_t i = 0; i < j->nq && j->rc == 0; i++)
            j->rc =
                cascade_vindex_search(j->ix, j->q + i * j->dim, 1, j->dim, j->k, 0,
                                      j->ids + i * j->k, j->scores + i * j->k, err, sizeof(err));
    }
    return NULL;
}

static void test_concurrent_search(void **state)
{
    (void)state;
    enum { N = 5000, D = 16, NQ = 50, K = 20, T = 4 };
    char err[256] = "";
    float *x = clustered(N, D, 30, 0.8, 51), *q = clustered(NQ, D, 30, 0.8, 52);
    uint64_t *xid = spaced_ids(N);
    cascade_vindex *ix = cascade_vindex_build(x, xid, N, D, NULL, err, sizeof(err));
    assert_non_null(ix);
    uint64_t want[NQ * K], got[T][NQ * K];
    float ws[NQ * K], gs[T][NQ * K];
    assert_int_equal(cascade_vindex_search(ix, q, NQ, D, K, 0, want, ws, err, sizeof(err)), 0);
    pthread_t th[T];
    struct search_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (struct search_job){ix, q, NQ, D, K, got[t], gs[t], 0};
        assert_int_equal(pthread_create(&th[t], NULL, search_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].rc, 0);
        assert_memory_equal(got[t], want, sizeof(want));
    }
    cascade_vindex_destroy(ix);
    free(x);
    free(q);
    free(xid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_matches_naive_loop),
        cmocka_unit_test(test_ties_broken_by_lower_id),
        cmocka_unit_test(test_kmeans_recovers_blobs),
        cmocka_unit_test(test_kmeans_random_init_reaches_fixed_point),
        cmocka_unit_test(test_kmeans_is_deterministic),
        cmocka_unit_test(test_kmeans_splits_empty_clusters),
        cmocka_unit_test(test_ivf_full_probe_equals_exact),
        cmocka_unit_test(test_ivf_recall_at_default_nprobe),
        cmocka_unit_test(test_recall_vs_exact),
        cmocka_unit_test(test_default_rules),
        cmocka_unit_test(test_small_index_and_padding),
        cmocka_unit_test(test_concurrent_search),
    };
    /* CASCADE_TEST_REDUCED=1 (scripts/tsan.sh): the searches on shared
     * indexes and the threaded test only; the k-means and recall checks are
     * single-threaded (OpenBLAS's pool aside) and take minutes instrumented. */
    const struct CMUnitTest reduced[] = {
        cmocka_unit_test(test_exact_matches_naive_loop),
        cmocka_unit_test(test_ties_broken_by_lower_id),
        cmocka_unit_test(test_default_rules),
        cmocka_unit_test(test_small_index_and_padding),
        cmocka_unit_test(test_concurrent_search),
    };
    const char *env = getenv("CASCADE_TEST_REDUCED");
    if (env && strcmp(env, "1") == 0)
        return cmocka_run_group_tests(reduced, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
