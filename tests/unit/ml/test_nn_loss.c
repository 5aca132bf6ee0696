/* Unit tests for the losses of common/ml/nn: each gradient against central
 * finite differences, values by hand, and stability for huge logits (no
 * overflow, no NaN, the exact limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "test_nn_check.h"

#define H 2e-2f
#define N 12

struct loss_ctx {
    float a[N], b[N], w[N];
    uint32_t targets[N];
    size_t rows, cols;
    float margin;
    int which;
};

enum { BCE, XENT, HINGE, TLOG, MSE };

static double loss_objective(void *p)
{
    struct loss_ctx *c = p;
    switch (c->which) {
    case BCE:
        return cascade_nn_bce_logits(c->a, c->b, c->w, N, NULL);
    case XENT:
        return cascade_nn_softmax_xent(c->a, c->rows, c->cols, c->targets, NULL);
    case HINGE:
        return cascade_nn_triplet_hinge(c->a, c->b, N, c->margin, NULL, NULL);
    case TLOG:
        return cascade_nn_triplet_log(c->a, c->b, N, NULL, NULL);
    default:
        return cascade_nn_mse(c->a, c->b, N, NULL);
    }
}

static void setup_ctx(struct loss_ctx *c, uint64_t seed, int which)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, seed);
    memset(c, 0, sizeof(*c));
    c->which = which;
    nn_fill(&rng, c->a, N, -3, 3);
    nn_fill(&rng, c->b, N, 0, 1);
    nn_fill(&rng, c->w, N, 0, 2);
}

static void test_bce_gradient(void **state)
{
    (void)state;
    struct loss_ctx c;
    setup_ctx(&c, 20, BCE); /* soft labels in [0, 1] and example weights */
    float dz[N];
    cascade_nn_bce_logits(c.a, c.b, c.w, N, dz);
    assert_true(nn_gradcheck("bce", loss_objective, &c, c.a, N, dz, H) < NN_GRAD_TOL);
}

static void test_bce_values_and_stability(void **state)
{
    (void)state;
    /* −log σ(0) = log 2. */
    const float z0 = 0.0f, y1 = 1.0f;
    assert_near(cascade_nn_bce_logits(&z0, &y1, NULL, 1, NULL), log(2.0), 1e-12);
    /* Huge logits: the exact limits, finite gradients in [−1/n, 1/n]. */
    const float z[4] = {1000.0f, -1000.0f, 1000.0f, -1000.0f};
    const float y[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    float dz[4];
    double loss = cascade_nn_bce_logits(z, y, NULL, 4, dz);
    assert_near(loss, (0 + 0 + 1000.0 + 1000.0) / 4, 1e-9);
    assert_near(dz[0], 0.0f, 1e-12);
    assert_near(dz[1], 0.0f, 1e-12);
    assert_near(dz[2], 0.25f, 1e-7);
    assert_near(dz[3], -0.25f, 1e-7);
    /* A weight of 0 masks an example out of loss and gradient. */
    const float w[4] = {1, 1, 0, 1};
    loss = cascade_nn_bce_logits(z, y, w, 4, dz);
    assert_near(loss, 1000.0 / 4, 1e-9);
    assert_near(dz[2], 0.0f, 0.0);
}

static void test_softmax_xent_gradient(void **state)
{
    (void)state;
    struct loss_ctx c;
    setup_ctx(&c, 21, XENT);
    c.rows = 3, c.cols = 4;
    c.targets[0] = 0, c.targets[1] = 3, c.targets[2] = 1;
    float dz[N];
    cascade_nn_softmax_xent(c.a, c.rows, c.cols, c.targets, dz);
    assert_true(nn_gradcheck("softmax xent", loss_objective, &c, c.a, N, dz, H) < NN_GRAD_TOL);
}

static void test_softmax_xent_values_and_stability(void **state)
{
    (void)state;
    /* Uniform logits over 4 classes: log 4. */
    const float flat[4] = {2, 2, 2, 2};
    const uint32_t t0 = 0, t3 = 3, bad = 4;
    assert_near(cascade_nn_softmax_xent(flat, 1, 4, &t0, NULL), log(4.0), 1e-9);
    /* Logits of ±1e4 would overflow exp without the max shift. */
    const float big[4] = {1e4f, -1e4f, 0.0f, 1e4f - 2.0f};
    float dz[4];
    double loss = cascade_nn_softmax_xent(big, 1, 4, &t3, dz);
    assert_near(loss, 2.0 + log1p(exp(-2.0)), 1e-6);
    double sum = 0;
    for (int j = 0; j < 4; j++) {
        assert_true(isfinite(dz[j]));
        sum += dz[j];
    }
    assert_near(sum, 0.0, 1e-6); /* softmax − onehot sums to 0 */
    assert_true(isnan(cascade_nn_softmax_xent(flat, 1, 4, &bad, NULL)));
}

static void test_triplet_hinge(void **state)
{
    (void)state;
    struct loss_ctx c;
    setup_ctx(&c, 22, HINGE);
    c.margin = 0.3f;
    /* Keep m + neg − pos at least 0.05 away from the kink at 0. */
    for (size_t i = 0; i < N; i++) {
        c.a[i] = (float)i / N;
        c.b[i] = c.a[i] + (i % 2 ? 0.1f : -0.6f);
    }
    float dp[N], dn[N];
    double loss = cascade_nn_triplet_hinge(c.a, c.b, N, c.margin, dp, dn);
    /* Odd i: 0.3 + 0.1 = 0.4 active; even i: 0.3 − 0.6 < 0 inactive. */
    assert_near(loss, 0.4 * (N / 2) / N, 1e-6);
    assert_near(dp[1], -1.0f / N, 1e-7);
    assert_near(dp[0], 0.0f, 0.0);
    assert_true(nn_gradcheck("hinge pos", loss_objective, &c, c.a, N, dp, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("hinge neg", loss_objective, &c, c.b, N, dn, H) < NN_GRAD_TOL);
}

static void test_triplet_log(void **state)
{
    (void)state;
    struct loss_ctx c;
    setup_ctx(&c, 23, TLOG);
    float dp[N], dn[N];
    cascade_nn_triplet_log(c.a, c.b, N, dp, dn);
    assert_true(nn_gradcheck("tlog pos", loss_objective, &c, c.a, N, dp, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("tlog neg", loss_objective, &c, c.b, N, dn, H) < NN_GRAD_TOL);
    /* cos⁺ = cos⁻ gives log 2. */
    const float p = 0.5f;
    assert_near(cascade_nn_triplet_log(&p, &p, 1, NULL, NULL), log(2.0), 1e-12);
}

static void test_mse(void **state)
{
    (void)state;
    struct loss_ctx c;
    setup_ctx(&c, 24, MSE);
    float dp[N];
    cascade_nn_mse(c.a, c.b, N, dp);
    assert_true(nn_gradcheck("mse", loss_objective, &c, c.a, N, dp, H) < NN_GRAD_TOL);
    const float pred[2] = {1, 3}, target[2] = {0, 1};
    assert_near(cascade_nn_mse(pred, target, 2, NULL), (1.0 + 4.0) / 2, 1e-12);
}

static void test_empty_batch(void **state)
{
    (void)state;
    assert_near(cascade_nn_bce_logits(NULL, NULL, NULL, 0, NULL), 0.0, 0.0);
    assert_near(cascade_nn_softmax_xent(NULL, 0, 3, NULL, NULL), 0.0, 0.0);
    assert_near(cascade_nn_mse(NULL, NULL, 0, NULL), 0.0, 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bce_gradient),
        cmocka_unit_test(test_bce_values_and_stability),
        cmocka_unit_test(test_softmax_xent_gradient),
        cmocka_unit_test(test_softmax_xent_values_and_stability),
        cmocka_unit_test(test_triplet_hinge),
        cmocka_unit_test(test_triplet_log),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_empty_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
