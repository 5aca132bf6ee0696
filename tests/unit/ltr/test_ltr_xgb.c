/* Unit tests for services/ltr/ltr_xgb.c: the exported trees score exactly as
 * xgboost itself scores (missing values included), and LambdaMART training
 * learns a ranking that a feature determines, stopping at its best round. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xgboost/c_api.h>

#include "gbdt.h"
#include "ltr_xgb.h"
#include "rng.h"

#define DIM 5
#define GROUPS 120
#define PER_GROUP 40

/* The project's generator, seeded on first use. */
static double uniform(void)
{
    static struct cascade_rng rng;
    static int seeded;
    if (!seeded) {
        cascade_rng_seed(&rng, 99);
        seeded = 1;
    }
    return cascade_rng_uniform(&rng);
}

/* Groups whose relevance is 1 when f0 + 0.5·f1 is in the group's top 10 %,
 * with f2..f4 noise and 15 % of f1 missing. */
struct data {
    float X[GROUPS * PER_GROUP * DIM], y[GROUPS * PER_GROUP];
    size_t off[GROUPS + 1];
};

static void make_data(struct data *d)
{
    for (size_t g = 0; g < GROUPS; g++) {
        d->off[g] = g * PER_GROUP;
        float key[PER_GROUP];
        for (size_t i = 0; i < PER_GROUP; i++) {
            float *x = d->X + (g * PER_GROUP + i) * DIM;
            for (int j = 0; j < DIM; j++)
                x[j] = (float)(2 * uniform() - 1);
            key[i] = x[0] + 0.5f * x[1];
            if (uniform() < 0.15)
                x[1] = NAN;
        }
        for (size_t i = 0; i < PER_GROUP; i++) {
            size_t above = 0;
            for (size_t k = 0; k < PER_GROUP; k++)
                above += key[k] > key[i];
            d->y[g * PER_GROUP + i] = above < PER_GROUP / 10 ? 1.0f : 0.0f;
        }
    }
    d->off[GROUPS] = GROUPS * PER_GROUP;
}

static void test_exported_trees_score_like_xgboost(void **state)
{
    (void)state;
    static struct data d;
    make_data(&d);
    size_t n = GROUPS * PER_GROUP;
    DMatrixHandle dm;
    BoosterHandle b;
    unsigned groups[GROUPS];
    for (size_t g = 0; g < GROUPS; g++)
        groups[g] = PER_GROUP;
    assert_int_equal(XGDMatrixCreateFromMat(d.X, n, DIM, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", d.y, n), 0);
    assert_int_equal(XGDMatrixSetUIntInfo(dm, "group", groups, GROUPS), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &b), 0);
    XGBoosterSetParam(b, "objective", "rank:ndcg");
    XGBoosterSetParam(b, "max_depth", "5");
    XGBoosterSetParam(b, "nthread", "1");
    XGBoosterSetParam(b, "verbosity", "0");
    for (int it = 0; it < 20; it++)
        assert_int_equal(XGBoosterUpdateOneIter(b, it, dm), 0);
    bst_ulong len;
    const char *json;
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &json), 0);
    char err[256] = "";
    cascade_gbdt *m = cascade_gbdt_from_xgboost_json(json, len, DIM, err, sizeof err);
    assert_non_null(m);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *theirs;
    assert_int_equal(
        XGBoosterPredictFromDMatrix(b, dm,
                                    "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, "
                                    "\"iteration_end\": 0, \"strict_shape\": false}",
                                    &shape, &dim, &theirs),
        0);
    float *ours = malloc(n * sizeof *ours);
    cascade_gbdt_predict(m, d.X, n, ours);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(ours[i], theirs[i], 1e-4);
    free(ours);
    cascade_gbdt_destroy(m);
    XGBoosterFree(b);
    XGDMatrixFree(dm);
}

static double mean_ndcg10(const struct data *d, size_t g0, size_t g1, const float *score)
{
    double sum = 0;
    for (size_t g = g0; g < g1; g++) {
        size_t base = d->off[g];
        int taken[PER_GROUP] = {0};
        double dcg = 0, idcg = 0;
        size_t pos = 0;
        for (size_t i = 0; i < PER_GROUP; i++)
            pos += d->y[base + i] > 0;
        for (size_t r = 0; r < 10; r++) {
            size_t best = PER_GROUP;
            for (size_t i = 0; i < PER_GROUP; i++)
                if (!taken[i] && (best == PER_GROUP || score[base + i] > score[base + best]))
                    best = i;
            taken[best] = 1;
            if (d->y[base + best] > 0)
                dcg += 1 / log2(r + 2.0);
            if (r < pos)
                idcg += 1 / log2(r + 2.0);
        }
        sum += idcg > 0 ? dcg / idcg : 0;
    }
    return sum / (double)(g1 - g0);
}

static void test_training_learns_the_ranking(void **state)
{
    (void)state;
    static struct data d;
    make_data(&d);
    size_t split = GROUPS * 3 / 4;
    size_t valid_off[GROUPS + 1];
    for (size_t g = split; g <= GROUPS; g++)
        valid_off[g - split] = d.off[g] - d.off[split];
    struct cascade_ltr_set train = {
        .X = d.X, .y = d.y, .off = d.off, .n_groups = split, .dim = DIM};
    struct cascade_ltr_set valid = {.X = d.X + d.off[split] * DIM,
                                    .y = d.y + d.off[split],
                                    .off = valid_off,
                                    .n_groups = GROUPS - split,
                                    .dim = DIM};
    struct cascade_ltr_xgb_opts o;
    struct cascade_ltr_xgb_result res;
    char err[256] = "";
    cascade_ltr_xgb_defaults(&o);
    o.rounds = 60;
    o.patience = 15;
    o.threads = 1;
    cascade_gbdt *m = cascade_ltr_xgb_train(&train, &valid, &o, &res, err, sizeof err);
    assert_non_null(m);
    assert_true(res.best_round >= 1 && res.best_round <= 60);
    assert_int_equal(cascade_gbdt_n_trees(m), (size_t)res.best_round);
    size_t n = GROUPS * PER_GROUP;
    float *score = malloc(n * sizeof *score), *noise = malloc(n * sizeof *noise);
    cascade_gbdt_predict(m, d.X, n, score);
    for (size_t i = 0; i < n; i++)
        noise[i] = d.X[i * DIM + 3]; /* a feature unrelated to relevance */
    double learned = mean_ndcg10(&d, split, GROUPS, score);
    double unrelated = mean_ndcg10(&d, split, GROUPS, noise);
    assert_true(learned > 0.8);
    assert_true(learned > unrelated + 0.4);
    free(score);
    free(noise);
    cascade_gbdt_destroy(m);
}

static void test_bad_input_is_an_error(void **state)
{
    (void)state;
    float X[4] = {0, 1, 2, 3}, y[2] = {0, 1};
    size_t off[2] = {0, 2};
    struct cascade_ltr_set ok = {.X = X, .y = y, .off = off, .n_groups = 1, .dim = 2};
    struct cascade_ltr_xgb_opts o;
    struct cascade_ltr_xgb_result res;
    char err[256] = "";
    cascade_ltr_xgb_defaults(&o);
    o.objective = "no:such-objective";
    assert_null(cascade_ltr_xgb_train(&ok, &ok, &o, &res, err, sizeof err));
    assert_non_null(strstr(err, "xgboost"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exported_trees_score_like_xgboost),
        cmocka_unit_test(test_training_learns_the_ranking),
        cmocka_unit_test(test_bad_input_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
