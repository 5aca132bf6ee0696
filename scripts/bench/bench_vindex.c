/* Vector index benchmark: clustered synthetic vectors (seeded), an exact scan
 * and the IVF index over them, and a table of build time, recall@k against
 * the exact answer, single-query latency (p50/p99 of wall and CPU time, one
 * query per call) and batch throughput (all queries in one call). --out-dir writes the vectors,
 * queries and exact ids as .npy so scripts/bench/vindex_faiss.py measures
 * faiss IndexIVFFlat on the same data and settings (params.txt). --sweep adds
 * a recall/latency row per nprobe value. OpenBLAS runs on --threads threads
 * (default 1).
 * Usage: cascade-bench-vindex [--n N] [--dim D] [--queries Q] [--k K]
 * [--clusters C] [--spread S] [--seed S] [--nlist L] [--nprobe P]
 * [--train-sample N] [--iters I] [--threads T] [--sweep p1,p2,...] [--out-dir DIR] */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "error.h"
#include "rng.h"
#include "vindex.h"

struct opts {
    size_t n, dim, nq, k, clusters, nlist, nprobe, train_sample;
    int iters;
    double spread;
    size_t seed;
    int threads;
    const char *sweep, *out_dir;
};

struct row {
    const char *name;
    double build_s, recall, qps;
    double p50_us, p99_us, cpu_p50_us, cpu_p99_us;
    size_t nprobe;
};

/* ---- data ---- */

static uint64_t next_u64(uint64_t *s)
{
    return cascade_rng_splitmix64(s);
}

static double gaussian(uint64_t *s)
{
    double u = ((double)(next_u64(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(next_u64(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void normalise(float *v, size_t dim)
{
    double ss = 0;
    for (size_t j = 0; j < dim; j++)
        ss += (double)v[j] * v[j];
    for (size_t j = 0; j < dim; j++)
        v[j] = (float)(v[j] / sqrt(ss));
}

/* Unit cluster centres with Zipf-like popularity (cumulative weights in cdf). */
static void make_centres(float *centres, double *cdf, size_t c, size_t dim, uint64_t *rng)
{
    double total = 0;
    for (size_t i = 0; i < c; i++) {
        for (size_t j = 0; j < dim; j++)
            centres[i * dim + j] = (float)gaussian(rng);
        normalise(centres + i * dim, dim);
        total += 1.0 / sqrt((double)i + 1);
        cdf[i] = total;
    }
    for (size_t i = 0; i < c; i++)
        cdf[i] /= total;
}

/* n unit vectors: a centre drawn by popularity plus Gaussian noise of norm ≈ spread. */
static void make_points(float *out, size_t n, const float *centres, const double *cdf, size_t c,
                        size_t dim, double spread, uint64_t *rng)
{
    double scale = spread / sqrt((double)dim);
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next_u64(rng) >> 11) * 0x1.0p-53;
        size_t lo = 0;
        while (lo + 1 < c && cdf[lo] < u)
            lo++;
        for (size_t j = 0; j < dim; j++)
            out[i * dim + j] = centres[lo * dim + j] + (float)(scale * gaussian(rng));
        normalise(out + i * dim, dim);
    }
}

/* ---- .npy output ---- */

static int write_npy(const char *dir, const char *name, const char *descr, const void *data,
                     size_t rows, size_t cols, size_t elem)
{
    char path[1024], header[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int len = snprintf(header, sizeof(header),
                       "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr,
                       rows, cols);
    /* magic (6) + version (2) + length (2) + header, padded to 64 with '\n' last */
    int total = (10 + len + 1 + 63) / 64 * 64;
    memset(header + len, ' ', (size_t)(total - 10 - len));
    header[total - 10 - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    unsigned char pre[10];
    memcpy(pre, "\x93NUMPY\x01\x00", 8);
    pre[8] = (unsigned char)((total - 10) & 0xff);
    pre[9] = (unsigned char)((total - 10) >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 &&
             fwrite(header, 1, (size_t)(total - 10), f) == (size_t)(total - 10) &&
             fwrite(data, elem, rows * cols, f) == rows * cols;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "%s: write failed\n", path);
    return ok ? 0 : -1;
}

/* ---- measuring ---- */

/* Microseconds on a clock: CLOCK_MONOTONIC for wall time, or
 * CLOCK_THREAD_CPUTIME_ID for this thread's CPU time, which leaves out the
 * time the scheduler gave other processes on a busy machine. */
static double clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int search(const cascade_vindex *ix, bool exact, const float *q, size_t nq,
                  const struct opts *o, size_t nprobe, uint64_t *ids, float *scores)
{
    char err[256];
    int rc =
        exact
            ? cascade_vindex_search_exact(ix, q, nq, o->dim, o->k, ids, scores, err, sizeof(err))
            : cascade_vindex_search(ix, q, nq, o->dim, o->k, nprobe, ids, scores, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "search failed: %s\n", err);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of v[0..n), sorting v. */
static double percentile(double *v, size_t n, int p)
{
    qsort(v, n, sizeof(double), cmp_double);
    size_t at = n * (size_t)p / 100;
    return v[at < n ? at : n - 1];
}

/* Search every query alone (wall and CPU latency percentiles), then all at
 * once (QPS); ids_out gets the batch answer. exact selects the exact scan. */
static int measure(const cascade_vindex *ix, const float *q, const struct opts *o, bool exact,
                   size_t nprobe, uint64_t *ids_out, float *scores, struct row *r)
{
    double *wall = malloc(sizeof(double) * o->nq), *cpu = malloc(sizeof(double) * o->nq);
    int rc = wall && cpu ? 0 : CASCADE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < o->nq; i++) {
        double w0 = clock_us(CLOCK_MONOTONIC), c0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
        rc = search(ix, exact, q + i * o->dim, 1, o, nprobe, ids_out, scores);
        cpu[i] = clock_us(CLOCK_THREAD_CPUTIME_ID) - c0;
        wall[i] = clock_us(CLOCK_MONOTONIC) - w0;
    }
    double t0 = clock_us(CLOCK_MONOTONIC);
    if (rc == 0)
        rc = search(ix, exact, q, o->nq, o, nprobe, ids_out, scores);
    double batch_us = clock_us(CLOCK_MONOTONIC) - t0;
    if (rc == 0) {
        r->p50_us = percentile(wall, o->nq, 50);
        r->p99_us = percentile(wall, o->nq, 99);
        r->cpu_p50_us = percentile(cpu, o->nq, 50);
        r->cpu_p99_us = percentile(cpu, o->nq, 99);
        r->qps = batch_us > 0 ? (double)o->nq / batch_us * 1e6 : 0;
    }
    free(wall);
    free(cpu);
    return rc;
}

static void print_header(void)
{
    printf("| index | nlist | nprobe | build s | recall@k | p50 µs | p99 µs | CPU p50 µs | "
           "CPU p99 µs | batch QPS |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void print_row(const struct row *r, size_t nlist)
{
    printf("| %s | %zu | %zu | %.2f | %.4f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", r->name, nlist,
           r->nprobe, r->build_s, r->recall, r->p50_us, r->p99_us, r->cpu_p50_us, r->cpu_p99_us,
           r->qps);
    fflush(stdout);
}

static cascade_vindex *timed_build(const float *x, const uint64_t *ids, const struct opts *o,
                                   size_t nlist, double *secs)
{
    char err[256];
    struct cascade_vindex_opts vo = {.nlist = nlist,
                                     .nprobe = o->nprobe,
                                     .seed = o->seed,
                                     .train_sample = o->train_sample,
                                     .kmeans_iters = o->iters};
    double t0 = clock_us(CLOCK_MONOTONIC);
    cascade_vindex *ix = cascade_vindex_build(x, ids, o->n, o->dim, &vo, err, sizeof(err));
    *secs = (clock_us(CLOCK_MONOTONIC) - t0) / 1e6;
    if (!ix)
        fprintf(stderr, "build failed: %s\n", err);
    return ix;
}

/* IVF rows: the configured nprobe, then each --sweep value. */
static int run_ivf(const cascade_vindex *ix, const float *q, const struct opts *o, double build_s,
                   const uint64_t *truth, uint64_t *ids, float *scores)
{
    char list[256];
    snprintf(list, sizeof(list), "%zu%s%s", cascade_vindex_nprobe(ix), o->sweep ? "," : "",
             o->sweep ? o->sweep : "");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        struct row r = {.name = tok == list ? "cascade IVF" : "cascade IVF (sweep)",
                        .build_s = build_s,
                        .nprobe = strtoull(tok, NULL, 10)};
        if (measure(ix, q, o, false, r.nprobe, ids, scores, &r) != 0)
            return -1;
        r.recall = cascade_vindex_recall(ids, truth, o->nq, o->k);
        print_row(&r, cascade_vindex_nlist(ix));
    }
    return 0;
}

static int write_data(const struct opts *o, const float *x, const float *q, const uint64_t *truth)
{
    if (!o->out_dir)
        return 0;
    return write_npy(o->out_dir, "base.npy", "<f4", x, o->n, o->dim, sizeof(float)) ||
                   write_npy(o->out_dir, "queries.npy", "<f4", q, o->nq, o->dim, sizeof(float)) ||
                   write_npy(o->out_dir, "exact.npy", "<u8", truth, o->nq, o->k, sizeof(uint64_t))
               ? -1
               : 0;
}

/* The IVF settings in effect, for the faiss side (params.txt: "key value" lines). */
static int write_params(const struct opts *o, const cascade_vindex *ix)
{
    if (!o->out_dir)
        return 0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/params.txt", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t nlist = cascade_vindex_nlist(ix);
    fprintf(f, "nlist %zu\nnprobe %zu\ntrain_sample %zu\nkmeans_iters %d\nseed %zu\nk %zu\n", nlist,
            cascade_vindex_nprobe(ix),
            o->train_sample ? o->train_sample : cascade_vindex_default_train_sample(o->n, nlist),
            o->iters ? o->iters : CASCADE_VINDEX_DEFAULT_KMEANS_ITERS, o->seed, o->k);
    if (o->sweep)
        fprintf(f, "sweep %s\n", o->sweep);
    return fclose(f) == 0 ? 0 : -1;
}

static int run(const struct opts *o)
{
    uint64_t rng = o->seed;
    float *centres = malloc(sizeof(float) * o->clusters * o->dim);
    double *cdf = malloc(sizeof(double) * o->clusters);
    float *x = malloc(sizeof(float) * o->n * o->dim), *q = malloc(sizeof(float) * o->nq * o->dim);
    uint64_t *ids = malloc(sizeof(uint64_t) * o->n),
             *truth = malloc(sizeof(uint64_t) * o->nq * o->k);
    uint64_t *found = malloc(sizeof(uint64_t) * o->nq * o->k);
    float *scores = malloc(sizeof(float) * o->nq * o->k);
    cascade_vindex *flat = NULL, *ivf = NULL;
    int rc = -1;
    if (!centres || !cdf || !x || !q || !ids || !truth || !found || !scores)
        goto out;
    make_centres(centres, cdf, o->clusters, o->dim, &rng);
    make_points(x, o->n, centres, cdf, o->clusters, o->dim, o->spread, &rng);
    make_points(q, o->nq, centres, cdf, o->clusters, o->dim, o->spread, &rng);
    for (size_t i = 0; i < o->n; i++)
        ids[i] = i;
    struct row exact = {.name = "cascade exact scan"};
    if (!(flat = timed_build(x, ids, o, 1, &exact.build_s)) ||
        measure(flat, q, o, true, 0, truth, scores, &exact) != 0)
        goto out;
    exact.recall = 1.0;
    print_header();
    print_row(&exact, 1);
    if (write_data(o, x, q, truth) != 0)
        goto out;
    double build_s = 0;
    if (!(ivf = timed_build(x, ids, o, o->nlist, &build_s)) || write_params(o, ivf) != 0)
        goto out;
    rc = run_ivf(ivf, q, o, build_s, truth, found, scores);
out:
    cascade_vindex_destroy(ivf);
    cascade_vindex_destroy(flat);
    free(centres);
    free(cdf);
    free(x);
    free(q);
    free(ids);
    free(truth);
    free(found);
    free(scores);
    return rc;
}

/* ---- command line ---- */

/* One command-line option: a size_t, int, double or string field of opts. */
struct flag {
    const char *name;
    char kind; /* 'z' size_t, 'i' int, 'd' double, 's' string */
    void *field;
};

static void set_flag(const struct flag *f, const char *arg)
{
    switch (f->kind) {
    case 'z':
        *(size_t *)f->field = strtoull(arg, NULL, 10);
        break;
    case 'i':
        *(int *)f->field = atoi(arg);
        break;
    case 'd':
        *(double *)f->field = strtod(arg, NULL);
        break;
    default:
        *(const char **)f->field = arg;
    }
}

static int parse(int argc, char **argv, struct opts *o)
{
    const struct flag flags[] = {
        {"n", 'z', &o->n},
        {"dim", 'z', &o->dim},
        {"queries", 'z', &o->nq},
        {"k", 'z', &o->k},
        {"clusters", 'z', &o->clusters},
        {"spread", 'd', &o->spread},
        {"seed", 'z', &o->seed},
        {"nlist", 'z', &o->nlist},
        {"nprobe", 'z', &o->nprobe},
        {"train-sample", 'z', &o->train_sample},
        {"iters", 'i', &o->iters},
        {"threads", 'i', &o->threads},
        {"sweep", 's', &o->sweep},
        {"out-dir", 's', &o->out_dir},
    };
    enum { NFLAGS = sizeof(flags) / sizeof(flags[0]) };
    struct option longopts[NFLAGS + 1];
    for (int i = 0; i < NFLAGS; i++)
        longopts[i] = (struct option){flags[i].name, required_argument, NULL, i};
    longopts[NFLAGS] = (struct option){0, 0, 0, 0};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt < 0 || opt >= NFLAGS)
            return -1;
        set_flag(&flags[opt], optarg);
    }
    return o->n && o->dim && o->nq && o->k && o->k <= o->n && o->clusters && o->threads > 0 &&
                   o->iters >= 0
               ? 0
               : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.n = 100000,
                     .dim = 64,
                     .nq = 1000,
                     .k = 100,
                     .clusters = 1000,
                     .spread = 1.0,
                     .seed = 42,
                     .threads = 1};
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: cascade-bench-vindex [--n N] [--dim D] [--queries Q] [--k K] "
                        "[--clusters C] [--spread S] [--seed S] [--nlist L] [--nprobe P] "
                        "[--train-sample N] [--iters I] [--threads T] [--sweep p1,p2,...] "
                        "[--out-dir DIR]\n");
        return 2;
    }
    openblas_set_num_threads(o.threads);
    printf("# %zu items × d=%zu, %zu clusters (spread %.2f), %zu queries, top-%zu, seed %zu, "
           "%d OpenBLAS thread(s)\n",
           o.n, o.dim, o.clusters, o.spread, o.nq, o.k, o.seed, o.threads);
    return run(&o) == 0 ? 0 : 1;
}
