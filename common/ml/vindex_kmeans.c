/* k-means for the IVF index: seeded greedy k-means++ (on a subsample) or random
 * initialisation, Lloyd iterations whose distances come from sgemm, empty
 * clusters refilled by splitting the largest one, training on a random
 * sample of the rows when there are many. Spherical mode keeps the centroids
 * at unit norm and assigns by the largest dot product (cosine). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "error.h"
#include "rng.h"
#include "vindex_internal.h"

#define KMEANS_PP_POINTS_PER_CLUSTER 4 /* k-means++ seeds from max(4·k, 4096) points */
#define KMEANS_PP_MIN_POINTS 4096
#define KMEANS_SPLIT_EPS (1.0f / 1024) /* relative nudge when splitting a cluster */
#define ASSIGN_SCRATCH_FLOATS (1024u * 1024)

/* Working state of one k-means run over the training rows. */
struct kmeans {
    const float *x; /* ns × dim training rows */
    size_t ns, dim, k;
    bool spherical;
    float *c;         /* k × dim centroids (the caller's output) */
    uint32_t *assign; /* ns */
    size_t *counts;   /* k */
    double *sums;     /* k × dim */
    uint64_t rng;
};

static uint64_t next_u64(uint64_t *s)
{
    return cascade_rng_splitmix64(s);
}

static double next_unit(uint64_t *s)
{
    return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

/* The first m entries of a seeded random permutation of 0..n-1, into idx[m]. */
static int random_subset(size_t n, size_t m, uint64_t *rng, size_t *idx)
{
    size_t *perm = malloc(sizeof(size_t) * (n ? n : 1));
    if (!perm)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)(next_u64(rng) % (n - i));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
    free(perm);
    return 0;
}

/* Copy m random rows of x (n × dim) into a new array; NULL when out of memory. */
static float *gather_sample(const float *x, size_t n, size_t dim, size_t m, uint64_t *rng)
{
    size_t *idx = malloc(sizeof(size_t) * (m ? m : 1));
    float *out = malloc(sizeof(float) * (m * dim > 0 ? m * dim : 1));
    if (!idx || !out || random_subset(n, m, rng, idx) != 0) {
        free(out);
        out = NULL;
        goto out;
    }
    for (size_t i = 0; i < m; i++)
        memcpy(out + i * dim, x + idx[i] * dim, sizeof(float) * dim);
out:
    free(idx);
    return out;
}

/* ---- assignment ---- */

/* Half squared norms of the centroids (L2 mode), so argmin ||x - c||² is
 * argmax x·c - ||c||²/2; zeros in spherical mode. */
static void half_norms(const float *c, size_t k, size_t dim, bool spherical, float *hn)
{
    for (size_t j = 0; j < k; j++) {
        double ss = 0;
        for (size_t t = 0; !spherical && t < dim; t++)
            ss += (double)c[j * dim + t] * c[j * dim + t];
        hn[j] = (float)(ss / 2);
    }
}

/* Best centroid of one row given its dot products s[k]; *dist gets its
 * distance (squared L2 from the row's squared norm xx, or 1 - dot). */
static uint32_t best_centroid(const float *s, const float *hn, size_t k, bool spherical, double xx,
                              double *dist)
{
    size_t best = 0;
    float best_val = s[0] - hn[0];
    for (size_t j = 1; j < k; j++) {
        float v = s[j] - hn[j];
        if (v > best_val) {
            best_val = v;
            best = j;
        }
    }
    *dist = spherical ? 1.0 - best_val : fmax(0.0, xx - 2.0 * best_val);
    return (uint32_t)best;
}

static double row_sqnorm(const float *x, size_t dim)
{
    double ss = 0;
    for (size_t t = 0; t < dim; t++)
        ss += (double)x[t] * x[t];
    return ss;
}

/* Assign every row, in blocks whose dot products with all centroids fit the
 * scratch; returns the mean distance through *objective. */
static int assign_rows(const float *x, size_t n, size_t dim, const float *c, size_t k,
                       bool spherical, uint32_t *assign, double *objective)
{
    size_t block = ASSIGN_SCRATCH_FLOATS / k;
    block = block < 16 ? 16 : block > 1024 ? 1024 : block;
    float *s = malloc(sizeof(float) * block * k);
    float *hn = malloc(sizeof(float) * k);
    if (!s || !hn) {
        free(s);
        free(hn);
        return CASCADE_ENOMEM;
    }
    half_norms(c, k, dim, spherical, hn);
    double total = 0;
    for (size_t r0 = 0; r0 < n; r0 += block) {
        size_t nb = n - r0 < block ? n - r0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)dim, 1.0f,
                    x + r0 * dim, (int)dim, c, (int)dim, 0.0f, s, (int)k);
        for (size_t i = 0; i < nb; i++) {
            double d, xx = spherical ? 1.0 : row_sqnorm(x + (r0 + i) * dim, dim);
            assign[r0 + i] = best_centroid(s + i * k, hn, k, spherical, xx, &d);
            total += d;
        }
    }
    if (objective)
        *objective = n ? total / (double)n : 0;
    free(s);
    free(hn);
    return 0;
}

int cascade_vindex_kmeans_assign(const float *x, size_t n, size_t dim, const float *centroids,
                                 size_t k, bool spherical, uint32_t *assign)
{
    if (k == 0 || dim == 0)
        return CASCADE_EINVAL;
    return assign_rows(x, n, dim, centroids, k, spherical, assign, NULL);
}

/* ---- initialisation ---- */

static void init_random(struct kmeans *km, size_t *idx)
{
    for (size_t j = 0; j < km->k; j++)
        memcpy(km->c + j * km->dim, km->x + idx[j] * km->dim, sizeof(float) * km->dim);
}

/* k-means++ seeding state over the np points p: each point's squared
 * distance to its nearest chosen centre, and scratch for scoring candidates. */
struct seeding {
    const float *p;
    size_t np, trials;
    double *d, *pnorm;
    float *cand;   /* trials × dim candidate centres */
    double *cnorm; /* trials: their squared norms */
    float *dots;   /* np × trials */
    size_t *pick;  /* trials */
};

/* Distance of point i to candidate c from their dot product (never below 0,
 * which rounding could otherwise produce for a point and itself). */
static inline double cand_dist(const struct kmeans *km, const struct seeding *sd, size_t i,
                               size_t c)
{
    double dot = sd->dots[i * sd->trials + c];
    double d = km->spherical ? 1.0 - dot : sd->pnorm[i] - 2.0 * dot + sd->cnorm[c];
    return d > 0 ? d : 0;
}

/* A point drawn with probability d[i] / total (uniformly when total is 0,
 * or infinite before the first centre). */
static size_t pp_draw(const double *d, size_t np, double total, uint64_t *rng)
{
    if (total <= 0 || !isfinite(total))
        return (size_t)(next_u64(rng) % np);
    double r = next_unit(rng) * total, acc = 0;
    for (size_t i = 0; i < np; i++) {
        acc += d[i];
        if (acc > r && d[i] > 0)
            return i;
    }
    for (size_t i = np; i > 0; i--) { /* rounding left r at the very end */
        if (d[i - 1] > 0)
            return i - 1;
    }
    return 0;
}

/* Score the m candidates already in sd->cand against every point. */
static void score_candidates(const struct kmeans *km, struct seeding *sd, size_t m)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)sd->np, (int)m, (int)km->dim, 1.0f,
                sd->p, (int)km->dim, sd->cand, (int)km->dim, 0.0f, sd->dots, (int)sd->trials);
}

/* Greedy k-means++ step: draw `trials` candidates ∝ d, keep the one that
 * lowers the total distance most, write it to centre j and update d. */
static void choose_centre(struct kmeans *km, struct seeding *sd, size_t j, size_t trials)
{
    double total = 0;
    for (size_t i = 0; i < sd->np; i++)
        total += sd->d[i];
    for (size_t c = 0; c < trials; c++) {
        sd->pick[c] = pp_draw(sd->d, sd->np, total, &km->rng);
        memcpy(sd->cand + c * km->dim, sd->p + sd->pick[c] * km->dim, sizeof(float) * km->dim);
        sd->cnorm[c] = sd->pnorm[sd->pick[c]];
    }
    score_candidates(km, sd, trials);
    size_t best = 0;
    double best_pot = INFINITY;
    for (size_t c = 0; c < trials; c++) {
        double pot = 0;
        for (size_t i = 0; i < sd->np; i++) {
            double d = cand_dist(km, sd, i, c);
            pot += d < sd->d[i] ? d : sd->d[i];
        }
        if (pot < best_pot) {
            best_pot = pot;
            best = c;
        }
    }
    for (size_t i = 0; i < sd->np; i++) {
        double d = cand_dist(km, sd, i, best);
        sd->d[i] = d < sd->d[i] ? d : sd->d[i];
    }
    memcpy(km->c + j * km->dim, sd->cand + best * km->dim, sizeof(float) * km->dim);
}

/* Greedy k-means++ (2 + ln k candidates per centre) over the np points p,
 * already a random subset of the rows. */
static int init_plusplus(struct kmeans *km, const float *p, size_t np)
{
    struct seeding sd = {.p = p, .np = np, .trials = 2 + (size_t)log((double)km->k)};
    sd.d = malloc(sizeof(double) * np);
    sd.pnorm = malloc(sizeof(double) * np);
    sd.cand = malloc(sizeof(float) * sd.trials * km->dim);
    sd.dots = malloc(sizeof(float) * np * sd.trials);
    sd.pick = malloc(sizeof(size_t) * sd.trials);
    sd.cnorm = malloc(sizeof(double) * sd.trials);
    int rc = CASCADE_ENOMEM;
    if (!sd.d || !sd.pnorm || !sd.cand || !sd.dots || !sd.pick || !sd.cnorm)
        goto out;
    for (size_t i = 0; i < np; i++) {
        sd.d[i] = INFINITY;
        sd.pnorm[i] = row_sqnorm(p + i * km->dim, km->dim);
    }
    choose_centre(km, &sd, 0, 1); /* all d infinite: one uniform draw */
    for (size_t j = 1; j < km->k; j++)
        choose_centre(km, &sd, j, sd.trials);
    rc = 0;
out:
    free(sd.d);
    free(sd.pnorm);
    free(sd.cand);
    free(sd.dots);
    free(sd.pick);
    free(sd.cnorm);
    return rc;
}

static int initialise(struct kmeans *km, enum cascade_vindex_kmeans_init how)
{
    size_t np = km->k;
    if (how != CASCADE_VINDEX_INIT_RANDOM) {
        np = km->k * KMEANS_PP_POINTS_PER_CLUSTER;
        np = np < KMEANS_PP_MIN_POINTS ? KMEANS_PP_MIN_POINTS : np;
    }
    np = np > km->ns ? km->ns : np;
    size_t *idx = malloc(sizeof(size_t) * np);
    float *p = NULL;
    int rc = CASCADE_ENOMEM;
    if (!idx || random_subset(km->ns, np, &km->rng, idx) != 0)
        goto out;
    if (how == CASCADE_VINDEX_INIT_RANDOM) {
        init_random(km, idx);
        rc = 0;
        goto out;
    }
    p = malloc(sizeof(float) * np * km->dim);
    if (!p)
        goto out;
    for (size_t i = 0; i < np; i++)
        memcpy(p + i * km->dim, km->x + idx[i] * km->dim, sizeof(float) * km->dim);
    rc = init_plusplus(km, p, np);
out:
    free(p);
    free(idx);
    return rc;
}

/* ---- Lloyd iterations ---- */

static void normalise_centroids(struct kmeans *km)
{
    for (size_t j = 0; km->spherical && j < km->k; j++)
        cascade_vindex__normalise(km->c + j * km->dim, km->dim);
}

/* Centroids become the means of their rows; empty ones keep their place. */
static void update_centroids(struct kmeans *km)
{
    memset(km->counts, 0, sizeof(size_t) * km->k);
    memset(km->sums, 0, sizeof(double) * km->k * km->dim);
    for (size_t i = 0; i < km->ns; i++) {
        uint32_t a = km->assign[i];
        const float *xi = km->x + i * km->dim;
        double *sum = km->sums + (size_t)a * km->dim;
        for (size_t t = 0; t < km->dim; t++)
            sum[t] += xi[t];
        km->counts[a]++;
    }
    for (size_t j = 0; j < km->k; j++) {
        for (size_t t = 0; km->counts[j] && t < km->dim; t++)
            km->c[j * km->dim + t] = (float)(km->sums[j * km->dim + t] / (double)km->counts[j]);
    }
}

/* Give each empty cluster half of the largest one: both centroids start from
 * the large one's, nudged in opposite directions, and the next assignment
 * divides its rows between them. Returns the number of splits. */
static size_t split_empty(struct kmeans *km)
{
    size_t splits = 0;
    for (size_t j = 0; j < km->k; j++) {
        if (km->counts[j] != 0)
            continue;
        size_t m = 0;
        for (size_t i = 1; i < km->k; i++)
            m = km->counts[i] > km->counts[m] ? i : m;
        if (km->counts[m] < 2)
            break;
        float *cj = km->c + j * km->dim, *cm = km->c + m * km->dim;
        for (size_t t = 0; t < km->dim; t++) {
            float nudge = (t % 2 ? -1.0f : 1.0f) * KMEANS_SPLIT_EPS;
            cj[t] = cm[t] * (1.0f + nudge);
            cm[t] = cm[t] * (1.0f - nudge);
        }
        km->counts[j] = km->counts[m] / 2;
        km->counts[m] -= km->counts[j];
        splits++;
    }
    return splits;
}

static int lloyd(struct kmeans *km, int iters, struct cascade_vindex_kmeans_stats *st)
{
    uint32_t *prev = malloc(sizeof(uint32_t) * km->ns);
    if (!prev)
        return CASCADE_ENOMEM;
    int rc = 0;
    for (int it = 0; it < iters; it++) {
        if (it > 0)
            memcpy(prev, km->assign, sizeof(uint32_t) * km->ns);
        rc = assign_rows(km->x, km->ns, km->dim, km->c, km->k, km->spherical, km->assign,
                         &st->objective);
        if (rc != 0)
            break;
        st->iters_run = it + 1;
        if (it > 0 && memcmp(prev, km->assign, sizeof(uint32_t) * km->ns) == 0)
            break; /* converged: the centroids are already these rows' means */
        update_centroids(km);
        st->empty_splits += split_empty(km);
        normalise_centroids(km);
    }
    free(prev);
    return rc;
}

/* ---- entry point ---- */

static int check_kmeans_args(const float *x, size_t n, size_t dim, size_t k, size_t ns,
                             const struct cascade_vindex_kmeans_opts *o, char *err, size_t errlen)
{
    if (!x || dim == 0 || k == 0) {
        cascade_vindex__err(err, errlen, "k-means: need data, dim ≥ 1 and k ≥ 1 (dim %zu, k %zu)",
                            dim, k);
        return CASCADE_EINVAL;
    }
    if (k > n || k > ns) {
        cascade_vindex__err(err, errlen,
                            "k-means: k = %zu clusters but only %zu points (%zu in the training "
                            "sample); lower nlist or raise train_sample",
                            k, n, ns);
        return CASCADE_EINVAL;
    }
    if (o->iters < 0 || k > UINT32_MAX) {
        cascade_vindex__err(err, errlen, "k-means: iters = %d must be ≥ 0, k ≤ 2^32-1", o->iters);
        return CASCADE_EINVAL;
    }
    size_t bad = cascade_vindex__first_nonfinite(x, n * dim);
    if (bad < n * dim) {
        cascade_vindex__err(err, errlen, "k-means: row %zu has a non-finite value at %zu",
                            bad / dim, bad % dim);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_vindex_kmeans(const float *x, size_t n, size_t dim, size_t k,
                          const struct cascade_vindex_kmeans_opts *opts, float *centroids,
                          struct cascade_vindex_kmeans_stats *stats, char *err, size_t errlen)
{
    struct cascade_vindex_kmeans_opts o = opts ? *opts : (struct cascade_vindex_kmeans_opts){0};
    struct cascade_vindex_kmeans_stats st = {0};
    size_t ns = o.train_sample && o.train_sample < n ? o.train_sample : n;
    int rc = check_kmeans_args(x, n, dim, k, ns, &o, err, errlen);
    if (rc != 0)
        return rc;
    struct kmeans km = {.x = x,
                        .ns = ns,
                        .dim = dim,
                        .k = k,
                        .spherical = o.spherical,
                        .c = centroids,
                        .rng = o.seed};
    float *sample = ns < n ? gather_sample(x, n, dim, ns, &km.rng) : NULL;
    km.x = sample ? sample : x;
    km.assign = malloc(sizeof(uint32_t) * ns);
    km.counts = malloc(sizeof(size_t) * k);
    km.sums = malloc(sizeof(double) * k * dim);
    rc = CASCADE_ENOMEM;
    if ((ns < n && !sample) || !km.assign || !km.counts || !km.sums)
        goto out;
    if ((rc = initialise(&km, o.init)) != 0)
        goto out;
    normalise_centroids(&km);
    rc = lloyd(&km, o.iters ? o.iters : CASCADE_VINDEX_DEFAULT_KMEANS_ITERS, &st);
out:
    if (rc == CASCADE_ENOMEM)
        cascade_vindex__err(err, errlen, "k-means: out of memory for %zu × %zu rows, k = %zu", ns,
                            dim, k);
    if (stats)
        *stats = st;
    free(km.sums);
    free(km.counts);
    free(km.assign);
    free(sample);
    return rc;
}
