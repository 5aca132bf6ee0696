/* Re-rank selection benchmark, in-process, one thread: per round, C random
 * candidates (relevance, one of 20 categories, one of 100 authors, a unit
 * embedding of D floats) and MMR and DPP each picking K of them (the stage's
 * selection functions on plain arrays, no RPC). Prints p50/p99/mean per
 * selection over R rounds, in thread CPU time and in wall time. Run with OPENBLAS_NUM_THREADS=1
 * (rerank.sh does). Usage: cascade-bench-rerank [--candidates C] [--count K] [--dim D]
 * [--window W] [--theta T] [--lambda L] [--rounds R] [--seed S] */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "arena.h"
#include "clock.h"
#include "rerank.h"

static uint64_t rng_state;

/* Knuth's MMIX linear congruential generator, high bits. */
static uint64_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return rng_state >> 16;
}

static double unit(void)
{
    return (double)(rnd() >> 1) / 140737488355328.0; /* 47 bits */
}

/* CPU time of this thread: on a loaded machine wall time mostly measures
 * the time slices other processes took. */
static double cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(struct cascade_mmr_item *items, float *emb, size_t n, size_t dim)
{
    for (size_t i = 0; i < n; i++) {
        double norm = 0;
        for (size_t k = 0; k < dim; k++) {
            emb[i * dim + k] = (float)(unit() * 2 - 1);
            norm += (double)emb[i * dim + k] * emb[i * dim + k];
        }
        for (size_t k = 0; k < dim; k++)
            emb[i * dim + k] /= (float)sqrt(norm);
        items[i] = (struct cascade_mmr_item){.relevance = (float)unit(),
                                             .category = 1 + (uint32_t)(rnd() % 20),
                                             .author_id = 1 + rnd() % 100,
                                             .embedding = emb + i * dim,
                                             .dim = dim};
    }
}

static void report(const char *name, double *us, int rounds)
{
    double sum = 0;
    for (int r = 0; r < rounds; r++)
        sum += us[r];
    qsort(us, (size_t)rounds, sizeof *us, cmp_double);
    printf("%-28s p50 %8.1f us   p99 %8.1f us   mean %8.1f us\n", name, us[rounds / 2],
           us[(int)(rounds * 0.99)], sum / rounds);
}

int main(int argc, char **argv)
{
    size_t n = 500, count = 50, dim = 64, window = 0;
    double theta = 0.7, lambda = 0.7;
    int rounds = 2000;
    rng_state = 1;
    static const struct option longopts[] = {{"candidates", required_argument, 0, 'c'},
                                             {"count", required_argument, 0, 'k'},
                                             {"dim", required_argument, 0, 'd'},
                                             {"window", required_argument, 0, 'w'},
                                             {"theta", required_argument, 0, 't'},
                                             {"lambda", required_argument, 0, 'l'},
                                             {"rounds", required_argument, 0, 'r'},
                                             {"seed", required_argument, 0, 's'},
                                             {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            n = strtoul(optarg, NULL, 10);
            break;
        case 'k':
            count = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            dim = strtoul(optarg, NULL, 10);
            break;
        case 'w':
            window = strtoul(optarg, NULL, 10);
            break;
        case 't':
            theta = strtod(optarg, NULL);
            break;
        case 'l':
            lambda = strtod(optarg, NULL);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 's':
            rng_state = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: cascade-bench-rerank [--candidates C] [--count K] [--dim D] "
                            "[--window W] [--theta T] [--lambda L] [--rounds R] [--seed S]\n");
            return 2;
        }
    }
    if (n == 0 || count == 0 || dim == 0 || rounds < 1 || !(theta >= 0 && theta <= 1) ||
        !(lambda >= 0 && lambda <= 1)) {
        fprintf(stderr, "cascade-bench-rerank: candidates, count, dim and rounds must be > 0, "
                        "theta and lambda in [0, 1]\n");
        return 2;
    }
    struct cascade_mmr_item *items = calloc(n, sizeof *items);
    float *emb = calloc(n * dim, sizeof *emb), *values = calloc(n, sizeof *values);
    size_t *order = calloc(n, sizeof *order), picked = 0;
    double *t_mmr = calloc((size_t)rounds, sizeof *t_mmr);
    double *t_dpp = calloc((size_t)rounds, sizeof *t_dpp);
    double *c_mmr = calloc((size_t)rounds, sizeof *c_mmr);
    double *c_dpp = calloc((size_t)rounds, sizeof *c_dpp);
    cascade_arena *arena = cascade_arena_create(0);
    int rc = 1;
    if (!items || !emb || !values || !order || !t_mmr || !t_dpp || !c_mmr || !c_dpp || !arena) {
        fprintf(stderr, "cascade-bench-rerank: out of memory\n");
        goto out;
    }
    const struct cascade_mmr_opts mo = {
        .lambda = lambda, .sim_category = 0.7, .sim_author = 0.3, .sim_embedding = 1.0};
    const struct cascade_dpp_opts dop = {.theta = theta,
                                         .window = window,
                                         .sim_category = 0.7,
                                         .sim_author = 0.3,
                                         .sim_embedding = 1.0};
    for (int r = 0; r < rounds; r++) {
        fill(items, emb, n, dim);
        cascade_arena_reset(arena);
        double c0 = cpu_us(), t0 = (double)cascade_now_us();
        if (cascade_rerank_mmr(items, n, count, &mo, arena, INT64_MAX, order, values, &picked))
            goto out;
        double c1 = cpu_us(), t1 = (double)cascade_now_us();
        cascade_arena_reset(arena);
        if (cascade_rerank_dpp(items, n, count, &dop, arena, INT64_MAX, order, values, &picked))
            goto out;
        double c2 = cpu_us(), t2 = (double)cascade_now_us();
        t_mmr[r] = t1 - t0;
        t_dpp[r] = t2 - t1;
        c_mmr[r] = c1 - c0;
        c_dpp[r] = c2 - c1;
    }
    printf("%zu candidates, %zu picks, dim %zu, %d rounds, DPP theta %.2f window %zu, MMR lambda "
           "%.2f\n",
           n, count, dim, rounds, theta, window, lambda);
    report("mmr, CPU time", c_mmr, rounds);
    report("dpp, CPU time", c_dpp, rounds);
    report("mmr, wall time", t_mmr, rounds);
    report("dpp, wall time", t_dpp, rounds);
    rc = 0;
out:
    cascade_arena_destroy(arena);
    free(items);
    free(emb);
    free(values);
    free(order);
    free(t_mmr);
    free(t_dpp);
    free(c_mmr);
    free(c_dpp);
    return rc;
}
