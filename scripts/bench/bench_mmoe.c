/* MMoE inference helper and benchmark. --predict runs a saved model (ours or
 * torch's, see docs/mmoe.md) over raw float32 inputs and writes its outputs
 * (used by tests/interop/test_mmoe_parity.py); otherwise it times
 * cascade_mmoe_predict over batches of --candidates rows (p50/p99 per batch).
 * --threads T splits each batch into T slices run on T threads, one scratch
 * each (OpenBLAS itself single-threaded).
 * Usage: cascade-bench-mmoe --model FILE --predict IN.f32 --out OUT.f32
 *            [--logits-out Z.f32]
 *        cascade-bench-mmoe [--model FILE | --input-dim D] [--candidates N]
 *            [--iters I] [--warmup W] [--threads T] [--seed S] */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "error.h"
#include "mmoe.h"
#include "rng.h"

struct opts {
    const char *model, *predict, *out, *logits_out;
    size_t input_dim, candidates;
    int iters, warmup, threads;
    unsigned long long seed;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cascade-bench-mmoe --model FILE --predict IN.f32 --out OUT.f32 "
               "[--logits-out Z.f32]\n"
               "       cascade-bench-mmoe [--model FILE | --input-dim D] [--candidates 300] "
               "[--iters 2000] [--warmup 100] [--threads 1] [--seed 1]\n"
               "IN.f32 holds n rows of input_dim float32 (native order); OUT.f32 receives n "
               "rows of n_tasks served predictions, Z.f32 the logits.\n");
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

static const struct option LONGS[] = {{"model", required_argument, NULL, 'm'},
                                      {"predict", required_argument, NULL, 'p'},
                                      {"out", required_argument, NULL, 'o'},
                                      {"logits-out", required_argument, NULL, 'z'},
                                      {"input-dim", required_argument, NULL, 'd'},
                                      {"candidates", required_argument, NULL, 'n'},
                                      {"iters", required_argument, NULL, 'i'},
                                      {"warmup", required_argument, NULL, 'w'},
                                      {"threads", required_argument, NULL, 't'},
                                      {"seed", required_argument, NULL, 's'},
                                      {"help", no_argument, NULL, 'h'},
                                      {NULL, 0, NULL, 0}};

/* The long name of option c. */
static const char *opt_name(int c)
{
    for (const struct option *l = LONGS; l->name; l++)
        if (l->val == c)
            return l->name;
    return "?";
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){
        .input_dim = 16, .candidates = 300, .iters = 2000, .warmup = 100, .threads = 1, .seed = 1};
    int c;
    size_t v;
    while ((c = getopt_long(argc, argv, "h", LONGS, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'p':
            o->predict = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'z':
            o->logits_out = optarg;
            break;
        case 's':
            o->seed = strtoull(optarg, NULL, 10);
            break;
        case 'd':
        case 'n':
        case 'i':
        case 'w':
        case 't':
            if (parse_size(optarg, &v) != 0) {
                fprintf(stderr, "cascade-bench-mmoe: --%s needs a positive integer, got \"%s\"\n",
                        opt_name(c), optarg);
                return -1;
            }
            if (c == 'd')
                o->input_dim = v;
            else if (c == 'n')
                o->candidates = v;
            else if (c == 'i')
                o->iters = (int)v;
            else if (c == 'w')
                o->warmup = (int)v;
            else
                o->threads = (int)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc || (o->predict && (!o->model || !o->out))) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* The whole of path into a malloc'd buffer of *len bytes. */
static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long size = ftell(f);
    if (size <= 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)size);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    *len = (size_t)size;
out:
    fclose(f);
    return buf;
}

static int write_file(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(v, sizeof(float), n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* --predict: outputs (and optionally logits) of m for the rows of o->predict. */
static int run_predict(const cascade_mmoe *m, const struct opts *o)
{
    const struct cascade_mmoe_config *c = cascade_mmoe_config(m);
    size_t len = 0, D = c->input_dim, T = c->n_tasks;
    int rc = 1;
    float *x = read_file(o->predict, &len), *out = NULL, *z = NULL;
    cascade_mmoe_scratch *s = NULL;
    if (!x || len % (D * sizeof(float)) != 0) {
        fprintf(stderr,
                "cascade-bench-mmoe: %s: cannot read, or its size %zu is not a multiple "
                "of input_dim %zu float32\n",
                o->predict, len, D);
        goto out;
    }
    size_t n = len / (D * sizeof(float));
    out = malloc(n * T * sizeof(float));
    z = malloc(n * T * sizeof(float));
    s = cascade_mmoe_scratch_create(m, 256);
    if (!out || !z || !s || cascade_mmoe_predict(m, s, x, n, out) != 0 ||
        cascade_mmoe_logits(m, s, x, n, z) != 0) {
        fprintf(stderr, "cascade-bench-mmoe: forward pass failed (out of memory?)\n");
        goto out;
    }
    if (write_file(o->out, out, n * T) != 0 ||
        (o->logits_out && write_file(o->logits_out, z, n * T) != 0)) {
        fprintf(stderr, "cascade-bench-mmoe: cannot write %s or %s\n", o->out,
                o->logits_out ? o->logits_out : "-");
        goto out;
    }
    printf("rows %zu tasks", n);
    for (size_t t = 0; t < T; t++)
        printf("%s%s", t ? "," : " ", c->tasks[t].name);
    printf("\n");
    rc = 0;
out:
    cascade_mmoe_scratch_destroy(s);
    free(x);
    free(out);
    free(z);
    return rc;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of sorted v[0..n). */
static double percentile(const double *v, size_t n, int p)
{
    size_t at = n * (size_t)p / 100;
    return v[at < n ? at : n - 1];
}

/* Seeded standard normal inputs (splitmix64 + Box-Muller). */
static void fill_inputs(float *x, size_t n, unsigned long long seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t r[2];
        for (int k = 0; k < 2; k++)
            r[k] = cascade_rng_splitmix64(&s);
        double u = ((double)(r[0] >> 11) + 0.5) * 0x1.0p-53, v = (double)(r[1] >> 11) * 0x1.0p-53;
        x[i] = (float)(sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
    }
}

#define MAX_THREADS 16

/* One slice of a batch: rows [begin, end) on its own scratch. */
struct slice {
    const cascade_mmoe *m;
    cascade_mmoe_scratch *s;
    const float *x;
    float *out;
    size_t begin, end;
    int rc;
};

static void *run_slice(void *arg)
{
    struct slice *sl = arg;
    const struct cascade_mmoe_config *c = cascade_mmoe_config(sl->m);
    sl->rc = cascade_mmoe_predict(sl->m, sl->s, sl->x + sl->begin * c->input_dim,
                                  sl->end - sl->begin, sl->out + sl->begin * c->n_tasks);
    return NULL;
}

/* Predict every slice: slices 1.. on new threads, slice 0 on this one. */
static int predict_split(struct slice *sl, int threads)
{
    pthread_t tid[MAX_THREADS];
    int started = 0, rc = 0;
    for (int k = 1; k < threads; k++, started++)
        if (pthread_create(&tid[k], NULL, run_slice, &sl[k]) != 0)
            break;
    run_slice(&sl[0]);
    for (int k = 1; k <= started; k++)
        pthread_join(tid[k], NULL);
    if (started != threads - 1)
        return CASCADE_ENOMEM;
    for (int k = 0; k < threads; k++)
        rc = rc ? rc : sl[k].rc;
    return rc;
}

/* Time o->iters predictions of o->candidates rows; one table row on stdout. */
static int run_bench(const cascade_mmoe *m, const struct opts *o)
{
    const struct cascade_mmoe_config *c = cascade_mmoe_config(m);
    size_t N = o->candidates, D = c->input_dim, T = c->n_tasks;
    int rc = 1;
    float *x = malloc(N * D * sizeof(float)), *out = malloc(N * T * sizeof(float));
    double *lat = malloc((size_t)o->iters * sizeof(double));
    struct slice sl[MAX_THREADS] = {{0}};
    int threads = o->threads < (int)N ? o->threads : (int)N;
    if (!x || !out || !lat) {
        fprintf(stderr, "cascade-bench-mmoe: out of memory\n");
        goto out;
    }
    for (int k = 0; k < threads; k++) {
        sl[k] = (struct slice){.m = m,
                               .x = x,
                               .out = out,
                               .begin = N * (size_t)k / (size_t)threads,
                               .end = N * (size_t)(k + 1) / (size_t)threads};
        sl[k].s = cascade_mmoe_scratch_create(m, sl[k].end - sl[k].begin);
        if (!sl[k].s) {
            fprintf(stderr, "cascade-bench-mmoe: out of memory\n");
            goto out;
        }
    }
    fill_inputs(x, N * D, o->seed);
    double checksum = 0.0;
    for (int i = -o->warmup; i < o->iters; i++) {
        double t0 = now_us();
        if (predict_split(sl, threads) != 0) {
            fprintf(stderr, "cascade-bench-mmoe: prediction failed (out of memory or threads?)\n");
            goto out;
        }
        if (i >= 0)
            lat[i] = now_us() - t0;
        checksum += out[(size_t)(i + o->warmup) % (N * T)];
    }
    qsort(lat, (size_t)o->iters, sizeof(double), cmp_double);
    double sum = 0.0;
    for (int i = 0; i < o->iters; i++)
        sum += lat[i];
    printf("| cascade C | %d | %zu | %.1f | %.1f | %.1f | %.0f |\n", o->threads, N,
           percentile(lat, (size_t)o->iters, 50), percentile(lat, (size_t)o->iters, 99),
           sum / o->iters, 1e6 * (double)N / (sum / o->iters));
    fprintf(stderr,
            "cascade-bench-mmoe: %zu tasks, %zu experts of %zu, towers %zu, input %zu "
            "(checksum %.3f)\n",
            T, c->n_experts, c->expert_hidden, c->tower_hidden, D, checksum);
    rc = 0;
out:
    for (int k = 0; k < MAX_THREADS; k++)
        cascade_mmoe_scratch_destroy(sl[k].s);
    free(x);
    free(out);
    free(lat);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    char err[512] = "";
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    if (o.threads > MAX_THREADS) {
        fprintf(stderr, "cascade-bench-mmoe: --threads is at most %d\n", MAX_THREADS);
        return 2;
    }
    openblas_set_num_threads(1);
    cascade_mmoe *m = NULL;
    if (o.model) {
        m = cascade_mmoe_load(o.model, err, sizeof(err));
    } else {
        struct cascade_mmoe_config c;
        cascade_mmoe_config_default(&c, o.input_dim);
        c.seed = o.seed;
        m = cascade_mmoe_create(&c, err, sizeof(err));
    }
    if (!m) {
        fprintf(stderr, "cascade-bench-mmoe: %s\n", err);
        return 1;
    }
    int rc = o.predict ? run_predict(m, &o) : run_bench(m, &o);
    cascade_mmoe_destroy(m);
    return rc;
}
