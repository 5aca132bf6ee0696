/* Unit tests of calibration: the down-sampling formula and its logit form,
 * ECE by hand, and an end-to-end check that an MMoE trained on data whose
 * negatives were kept at rate α predicts the true positive rate once
 * calibrated (and overestimates it badly before). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "calibration.h"
#include "mmoe.h"
#include "test_nn_check.h"

static void test_formula(void **state)
{
    (void)state;
    assert_near(cascade_calibrate_downsampled(0.3, 1.0), 0.3, 1e-15);
    assert_near(cascade_calibrate_downsampled(0.5, 0.1), 0.05 / 0.55, 1e-15);
    assert_near(cascade_calibrate_downsampled(0.0, 0.1), 0.0, 0);
    assert_near(cascade_calibrate_downsampled(1.0, 0.1), 1.0, 1e-15);
    /* Odds scale by α: logit(p) = logit(q) + log α. */
    for (double q = 0.05; q < 1.0; q += 0.1) {
        double p = cascade_calibrate_downsampled(q, 0.2);
        assert_true(p < q);
        assert_near(log(p / (1 - p)), log(q / (1 - q)) + cascade_calibrate_logit_shift(0.2), 1e-12);
    }
    float a[3] = {0.2f, 0.5f, 0.9f};
    cascade_calibrate_downsampled_array(a, 3, 0.25);
    assert_near(a[1], 0.125 / 0.625, 1e-7);
    assert_near(a[2], cascade_calibrate_downsampled(0.9f, 0.25), 1e-7);
}

static void test_ece(void **state)
{
    (void)state;
    /* Ten examples at 0.9 with half positive: one bin, |0.9 − 0.5| = 0.4. */
    float p[10], y[10];
    for (size_t i = 0; i < 10; i++) {
        p[i] = 0.9f;
        y[i] = (float)(i % 2);
    }
    assert_near(cascade_ece(p, y, 10, 10), 0.4, 1e-6);
    /* Two bins each calibrated: 0.25 with 1 of 4 positive, 0.75 with 3 of 4. */
    float p2[8] = {0.25f, 0.25f, 0.25f, 0.25f, 0.75f, 0.75f, 0.75f, 0.75f};
    float y2[8] = {1, 0, 0, 0, 1, 1, 1, 0};
    assert_near(cascade_ece(p2, y2, 8, 10), 0.0, 1e-7);
    /* Miscalibrated in opposite directions: errors do not cancel across bins. */
    float y3[8] = {1, 1, 0, 0, 1, 0, 0, 0};
    assert_near(cascade_ece(p2, y3, 8, 10), 0.5 * 0.25 + 0.5 * 0.5, 1e-7);
    assert_near(cascade_ece(p, y, 0, 10), 0.0, 0);
    /* p = 1 falls in the last bin, not past it. */
    float one = 1.0f, pos = 1.0f;
    assert_near(cascade_ece(&one, &pos, 1, 5), 0.0, 0);
}

enum { D = 4, N = 60000 };

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static void test_downsampled_training_calibrates(void **state)
{
    (void)state;
    const double alpha = 0.1;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 17);
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N);
    float *xs = malloc(sizeof(float) * N * D), *ys = malloc(sizeof(float) * N);
    float *p = malloc(sizeof(float) * N);
    assert_true(x && y && xs && ys && p);
    /* The full data: a rare positive (about 5%) whose probability depends on x. */
    double positives = 0;
    for (size_t i = 0; i < N; i++) {
        nn_fill(&rng, x + i * D, D, -1, 1);
        const float *r = x + i * D;
        double pt = sigmoid(-3.4 + 1.5 * r[0] - 1.0 * r[1] + 0.5 * r[2] * r[3]);
        y[i] = cascade_rng_uniform(&rng) < pt ? 1.0f : 0.0f;
        positives += y[i];
    }
    double rate = positives / N;
    /* Keep every positive and each negative with probability α. */
    size_t ns = 0;
    for (size_t i = 0; i < N; i++) {
        if (y[i] > 0.5f || cascade_rng_uniform(&rng) < alpha) {
            for (size_t k = 0; k < D; k++)
                xs[ns * D + k] = x[i * D + k];
            ys[ns++] = y[i];
        }
    }

    struct cascade_mmoe_config c;
    char err[256];
    cascade_mmoe_config_default(&c, D);
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click", err, sizeof(err)), 0);
    c.n_experts = 2;
    c.expert_hidden = 8;
    c.tower_hidden = 4;
    c.seed = 2;
    cascade_mmoe *m = cascade_mmoe_create(&c, err, sizeof(err));
    assert_non_null(m);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 128);
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, 5e-3f);
    for (size_t ep = 0; ep < 25; ep++) {
        /* A lower rate at the end: Adam's noise at 5e-3 leaves the mean
         * prediction a few percent off the label mean. */
        if (ep == 20)
            o.lr = 5e-4f;
        for (size_t start = 0; start < ns; start += 128) {
            size_t b = ns - start < 128 ? ns - start : 128;
            cascade_mmoe_draw_dropout(m, s, &rng, b);
            assert_false(isnan(
                cascade_mmoe_backward(m, s, xs + start * D, ys + start, NULL, b, true, NULL)));
            assert_int_equal(cascade_nn_optim_step(&o, cascade_mmoe_params(m)), 0);
        }
    }

    assert_int_equal(cascade_mmoe_predict(m, s, x, N, p), 0);
    double raw = 0, cal = 0;
    for (size_t i = 0; i < N; i++)
        raw += p[i];
    double ece_raw = cascade_ece(p, y, N, 20);
    cascade_calibrate_downsampled_array(p, N, alpha);
    for (size_t i = 0; i < N; i++)
        cal += p[i];
    raw /= N;
    cal /= N;
    double ece_cal = cascade_ece(p, y, N, 20);
    if (getenv("MMOE_VERBOSE"))
        fprintf(stderr,
                "positive rate %.4f (%zu of %d kept), mean prediction raw %.4f calibrated %.4f, "
                "ECE raw %.4f calibrated %.4f\n",
                rate, ns, N, raw, cal, ece_raw, ece_cal);
    assert_true(rate > 0.02 && rate < 0.1);
    assert_true(raw > 3 * rate);         /* uncalibrated: far too high */
    assert_near(cal, rate, 0.05 * rate); /* calibrated: within 5% */
    assert_true(ece_cal < 0.01);
    assert_true(ece_cal < ece_raw / 5);
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
    free(x);
    free(y);
    free(xs);
    free(ys);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_ece),
        cmocka_unit_test(test_downsampled_training_calibrates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
