/* Unit tests for common/ml/lr.c: learning a separable problem, the loss gradient
 * against finite differences, step-wise training, save/load round trips, and
 * the AUC / log-loss metrics on hand-computed examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lr.h"
#include "rng.h"
#include "support.h"

#define DIM 4

/* The project's generator, seeded on first use. */
static double uniform(void)
{
    static struct cascade_rng rng;
    static int seeded;
    if (!seeded) {
        cascade_rng_seed(&rng, 12345);
        seeded = 1;
    }
    return cascade_rng_uniform(&rng);
}

/* n points in [-1,1]^DIM labelled by a fixed hyperplane. */
static void separable(float *X, float *y, size_t n)
{
    static const float w[DIM] = {1.5f, -2.0f, 0.5f, 1.0f};
    for (size_t i = 0; i < n; i++) {
        double z = 0.2;
        for (int j = 0; j < DIM; j++) {
            X[i * DIM + j] = (float)(2 * uniform() - 1);
            z += w[j] * X[i * DIM + j];
        }
        y[i] = z > 0 ? 1.0f : 0.0f;
    }
}

static void test_learns_separable_problem(void **state)
{
    (void)state;
    enum { N = 4000, H = 1000 };
    float *X = malloc(sizeof(float) * N * DIM), *y = malloc(sizeof(float) * N);
    float *Xh = malloc(sizeof(float) * H * DIM), *yh = malloc(sizeof(float) * H);
    float *p = malloc(sizeof(float) * H);
    char err[256] = "";
    separable(X, y, N);
    separable(Xh, yh, H);
    struct cascade_lr_train_opts o = {
        .epochs = 20, .batch_size = 64, .learning_rate = 0.05f, .seed = 3};
    cascade_lr *m = cascade_lr_train(X, y, N, DIM, &o, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(cascade_lr_dim(m), DIM);
    assert_string_equal(cascade_lr_version(m), "untrained");
    cascade_lr_predict(m, Xh, H, p);
    double auc = cascade_auc(p, yh, H);
    assert_true(auc > 0.95);
    /* The direction of the learned weights matches the generating hyperplane. */
    const float *w = cascade_lr_weights(m, NULL);
    assert_true(w[0] > 0 && w[1] < 0 && w[3] > 0);
    assert_true(cascade_logloss(p, yh, H) < 0.3);
    cascade_lr_destroy(m);
    free(X);
    free(y);
    free(Xh);
    free(yh);
    free(p);
}

static void test_gradient_matches_finite_differences(void **state)
{
    (void)state;
    enum { N = 50, D = 5 };
    float X[N * D], y[N], w[D], gw[D], gb;
    const float l2 = 0.1f;
    for (int i = 0; i < N * D; i++)
        X[i] = (float)(2 * uniform() - 1);
    for (int i = 0; i < N; i++)
        y[i] = uniform() < 0.4 ? 1.0f : 0.0f;
    for (int j = 0; j < D; j++)
        w[j] = (float)(uniform() - 0.5);
    cascade_lr *m = cascade_lr_create(D);
    assert_non_null(m);
    cascade_lr_set_weights(m, w, 0.3f);
    cascade_lr_loss(m, X, y, N, l2, gw, &gb);
    const float eps = 1e-2f;
    for (int j = 0; j <= D; j++) {
        float wp[D], wm[D], bp = 0.3f, bm = 0.3f;
        memcpy(wp, w, sizeof(w));
        memcpy(wm, w, sizeof(w));
        if (j < D) {
            wp[j] += eps;
            wm[j] -= eps;
        } else {
            bp += eps;
            bm -= eps;
        }
        cascade_lr_set_weights(m, wp, bp);
        double lp = cascade_lr_loss(m, X, y, N, l2, NULL, NULL);
        cascade_lr_set_weights(m, wm, bm);
        double lm = cascade_lr_loss(m, X, y, N, l2, NULL, NULL);
        double numeric = (lp - lm) / (2 * eps);
        double analytic = j < D ? gw[j] : gb;
        assert_true(fabs(numeric - analytic) < 1e-3 + 1e-2 * fabs(numeric));
    }
    /* The loss itself: with zero weights it is ln 2 whatever the labels. */
    float zeros[D] = {0};
    cascade_lr_set_weights(m, zeros, 0);
    assert_true(fabs(cascade_lr_loss(m, X, y, N, l2, NULL, NULL) - log(2.0)) < 1e-6);
    cascade_lr_destroy(m);
}

static void test_stepwise_fit_equals_one_run(void **state)
{
    (void)state;
    enum { N = 500 };
    float *X = malloc(sizeof(float) * N * DIM), *y = malloc(sizeof(float) * N);
    char err[256];
    separable(X, y, N);
    struct cascade_lr_train_opts o = {
        .epochs = 3, .batch_size = 32, .learning_rate = 0.02f, .seed = 9};
    cascade_lr *whole = cascade_lr_train(X, y, N, DIM, &o, err, sizeof(err));
    cascade_lr *steps = cascade_lr_create(DIM);
    assert_non_null(whole);
    assert_non_null(steps);
    o.epochs = 1;
    cascade_lr_init_bias(steps, y, N); /* as cascade_lr_train does */
    for (int e = 0; e < 3; e++)
        assert_int_equal(cascade_lr_fit(steps, X, y, N, &o, err, sizeof(err)), 0);
    float b1, b2;
    const float *w1 = cascade_lr_weights(whole, &b1), *w2 = cascade_lr_weights(steps, &b2);
    assert_memory_equal(w1, w2, sizeof(float) * DIM);
    assert_true(b1 == b2);
    cascade_lr_destroy(whole);
    cascade_lr_destroy(steps);
    free(X);
    free(y);
}

static int epochs_seen;

static void count_epochs(void *ud, int epoch, double loss, double rate)
{
    (void)ud;
    (void)rate;
    assert_true(isfinite(loss) && loss > 0);
    epochs_seen = epoch;
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    enum { N = 300 };
    float *X = malloc(sizeof(float) * N * DIM), *y = malloc(sizeof(float) * N);
    float p1[N], p2[N];
    char dir[256], path[512], err[256];
    separable(X, y, N);
    struct cascade_lr_train_opts o = {.epochs = 2, .seed = 1, .on_epoch = count_epochs};
    cascade_lr *m = cascade_lr_train(X, y, N, DIM, &o, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(epochs_seen, 2);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/m.safetensors", dir);
    assert_int_equal(cascade_lr_save(m, path, "rank-lr-test", err, sizeof(err)), 0);
    cascade_lr *back = cascade_lr_load(path, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(cascade_lr_dim(back), DIM);
    assert_string_equal(cascade_lr_version(back), "rank-lr-test");
    cascade_lr_predict(m, X, N, p1);
    cascade_lr_predict(back, X, N, p2);
    assert_memory_equal(p1, p2, sizeof(p1));
    cascade_lr_destroy(back);

    /* A file that is not a model is refused with the path in the message. */
    snprintf(path, sizeof(path), "%s/junk.safetensors", dir);
    FILE *f = fopen(path, "w");
    fputs("not a model", f);
    fclose(f);
    err[0] = '\0';
    assert_null(cascade_lr_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "junk.safetensors"));
    cascade_lr_destroy(m);
    cascade_lr_destroy(NULL);
    test_rmdir(dir);
    free(X);
    free(y);
}

static void test_auc_hand_examples(void **state)
{
    (void)state;
    const float s1[] = {0.1f, 0.4f, 0.35f, 0.8f}, l1[] = {0, 0, 1, 1};
    assert_true(fabs(cascade_auc(s1, l1, 4) - 0.75) < 1e-12);
    /* Ties between a positive and a negative count one half:
     * pairs (0.5,0.5)=0.5, (0.5,0.2)=1, (0.9,0.5)=1, (0.9,0.2)=1 -> 3.5/4. */
    const float s2[] = {0.5f, 0.5f, 0.2f, 0.9f}, l2[] = {1, 0, 0, 1};
    assert_true(fabs(cascade_auc(s2, l2, 4) - 0.875) < 1e-12);
    /* All scores equal: 0.5. */
    const float s3[] = {1, 1, 1, 1}, l3[] = {1, 0, 1, 0};
    assert_true(fabs(cascade_auc(s3, l3, 4) - 0.5) < 1e-12);
    /* Perfectly inverted: 0. One class only: 0.5 by definition. */
    const float s4[] = {0.9f, 0.1f}, l4[] = {0, 1};
    assert_true(fabs(cascade_auc(s4, l4, 2)) < 1e-12);
    const float l5[] = {1, 1};
    assert_true(fabs(cascade_auc(s4, l5, 2) - 0.5) < 1e-12);
}

static void test_logloss_hand_examples(void **state)
{
    (void)state;
    const float p[] = {0.5f, 0.9f}, y[] = {1, 0};
    double expect = (log(2.0) - log(0.1)) / 2;
    assert_true(fabs(cascade_logloss(p, y, 2) - expect) < 1e-6);
    /* Probabilities of exactly 0 or 1 are clipped, never infinite. */
    const float q[] = {0.0f, 1.0f}, z[] = {1, 0};
    assert_true(isfinite(cascade_logloss(q, z, 2)));
}

static void test_bias_starts_at_base_rate(void **state)
{
    (void)state;
    const float y[] = {1, 0, 0, 0, 0};
    float bias;
    cascade_lr *m = cascade_lr_create(3);
    cascade_lr_init_bias(m, y, 5);
    cascade_lr_weights(m, &bias);
    assert_true(fabsf(bias - logf(0.25f)) < 1e-6);
    /* All positives: clamped, finite. */
    const float ones[] = {1, 1};
    cascade_lr_init_bias(m, ones, 2);
    cascade_lr_weights(m, &bias);
    assert_true(isfinite(bias) && bias > 5);
    cascade_lr_destroy(m);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char err[256] = "";
    float X[DIM] = {0}, y[1] = {0};
    assert_null(cascade_lr_train(X, y, 0, DIM, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no training examples"));
    assert_null(cascade_lr_create(0));
    err[0] = '\0';
    assert_null(cascade_lr_load("/nonexistent/model.safetensors", err, sizeof(err)));
    assert_true(err[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_separable_problem),
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_stepwise_fit_equals_one_run),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_auc_hand_examples),
        cmocka_unit_test(test_logloss_hand_examples),
        cmocka_unit_test(test_bias_starts_at_base_rate),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
