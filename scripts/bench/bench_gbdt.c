/* Tree ensemble benchmark: a saved model (cascade-build train ltr's
 * prerank-ltr or rank-ltr file) over random rows (--nan of the values
 * missing, the others uniform in [-2, 4)), scored by cascade_gbdt_predict in
 * calls of --batch rows (eight rows at a time with AVX2, gbdt_batch.c) and
 * by the one-row walk (cascade_gbdt__predict_rows, one row per call), in
 * alternating rounds; prints the thread CPU time per row of each (best
 * round) and checks that both gave the same bytes (exit 1 otherwise).
 * --isa avx2 scores the batches with AVX2 on a CPU that also has AVX-512
 * (to compare the two ways; default: the best the CPU has).
 * Usage: cascade-bench-gbdt --model FILE [--rows 200000] [--batch 512]
 *            [--rounds 3] [--nan 0.3] [--seed 1] [--isa avx2|avx512] */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gbdt.h"
#include "gbdt_internal.h"
#include "rng.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    size_t rows = 200000, batch = 512;
    int rounds = 3, rc = 1;
    double nan_share = 0.3;
    unsigned long long seed = 1;
    const char *isa = NULL;
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"rows", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'}, {"rounds", required_argument, NULL, 'r'},
        {"nan", required_argument, NULL, 'a'},   {"seed", required_argument, NULL, 's'},
        {"isa", required_argument, NULL, 'i'},   {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 'n':
            rows = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            batch = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'a':
            nan_share = atof(optarg);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            isa = optarg;
            break;
        default:
            fprintf(stderr, "usage: cascade-bench-gbdt --model FILE [--rows 200000] [--batch 512] "
                            "[--rounds 3] [--nan 0.3] [--seed 1] [--isa avx2|avx512]\n");
            return 2;
        }
    }
    if (!model || rows == 0 || batch == 0 || rounds < 1 || !(nan_share >= 0 && nan_share <= 1) ||
        (isa && strcmp(isa, "avx2") != 0 && strcmp(isa, "avx512") != 0)) {
        fprintf(stderr, "cascade-bench-gbdt: --model FILE is required; --rows, --batch, --rounds "
                        "at least 1; --nan in [0, 1]; --isa avx2 or avx512\n");
        return 2;
    }
    char err[512] = "";
    cascade_gbdt *m = cascade_gbdt_load(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "cascade-bench-gbdt: %s\n", err);
        return 1;
    }
    if (isa && cascade_gbdt__batch_build_isa(m, strcmp(isa, "avx2") == 0 ? CASCADE_GBDT__AVX2
                                                                         : CASCADE_GBDT__AVX512)) {
        fprintf(stderr, "cascade-bench-gbdt: --isa %s: not on this CPU\n", isa);
        cascade_gbdt_destroy(m);
        return 1;
    }
    size_t nf = cascade_gbdt_n_features(m);
    float *X = malloc(rows * nf * sizeof *X), *batched = malloc(rows * sizeof *batched),
          *single = malloc(rows * sizeof *single);
    struct cascade_rng rng;
    double best_batch = INFINITY, best_single = INFINITY;
    if (!X || !batched || !single) {
        fprintf(stderr, "cascade-bench-gbdt: out of memory for %zu rows\n", rows);
        goto out;
    }
    cascade_rng_seed(&rng, seed);
    for (size_t i = 0; i < rows * nf; i++)
        X[i] = cascade_rng_uniform(&rng) < nan_share
                   ? NAN
                   : (float)(cascade_rng_uniform(&rng) * 6.0 - 2.0);
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_s();
        for (size_t i = 0; i < rows; i += batch)
            cascade_gbdt_predict(m, X + i * nf, rows - i < batch ? rows - i : batch, batched + i);
        double t1 = cpu_s();
        for (size_t i = 0; i < rows; i++)
            cascade_gbdt__predict_rows(m, X + i * nf, 1, single + i);
        double t2 = cpu_s();
        if (t1 - t0 < best_batch)
            best_batch = t1 - t0;
        if (t2 - t1 < best_single)
            best_single = t2 - t1;
    }
    printf("gbdt: %s: %zu trees, %zu features, depth %u, batches by %s\n", model,
           cascade_gbdt_n_trees(m), nf, m->walk_depth, cascade_gbdt__batch_method(m));
    printf("gbdt: %zu rows (%.0f %% NaN), best of %d rounds: batches of %zu %.1f ns/row, one row "
           "at a time %.1f ns/row (%.2fx)\n",
           rows, nan_share * 100, rounds, batch, best_batch / (double)rows * 1e9,
           best_single / (double)rows * 1e9, best_single / best_batch);
    if (memcmp(batched, single, rows * sizeof *single) != 0) {
        fprintf(stderr, "cascade-bench-gbdt: the batch and one-row scores differ\n");
        goto out;
    }
    printf("gbdt: scores identical (%zu bytes)\n", rows * sizeof *single);
    rc = 0;
out:
    free(X);
    free(batched);
    free(single);
    cascade_gbdt_destroy(m);
    return rc;
}
