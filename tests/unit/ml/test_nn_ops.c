/* Unit tests for the parameter-free operations of common/ml/nn: each backward
 * pass against central finite differences (ReLU, sigmoid, masked softmax,
 * L2 normalisation, row dots, pairwise scores, the MMoE mixture, dropout),
 * softmax/sigmoid stability for huge logits, and the dropout masks. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "test_nn_check.h"

#define H 2e-2f
#define ROWS 4
#define COLS 6
#define N (ROWS * COLS)

/* Inputs shared by the element-wise and row-wise checks. */
struct op_ctx {
    float a[N], b[N], r[N], y[N], tmp[N], norms[ROWS], dy[N];
    uint8_t keep[N];
    const uint8_t *mask;
    float rate;
    uint64_t seed;
};

static double relu_objective(void *p)
{
    struct op_ctx *c = p;
    cascade_nn_relu_forward(c->a, N, c->y);
    return nn_dot(c->r, c->y, N);
}

static double sigmoid_objective(void *p)
{
    struct op_ctx *c = p;
    cascade_nn_sigmoid_forward(c->a, N, c->y);
    return nn_dot(c->r, c->y, N);
}

static double softmax_objective(void *p)
{
    struct op_ctx *c = p;
    cascade_nn_softmax_forward(c->a, c->mask, ROWS, COLS, c->y);
    return nn_dot(c->r, c->y, N);
}

static double l2norm_objective(void *p)
{
    struct op_ctx *c = p;
    cascade_nn_l2norm_forward(c->a, ROWS, COLS, c->y, c->norms);
    return nn_dot(c->r, c->y, N);
}

static double rowdot_objective(void *p)
{
    struct op_ctx *c = p;
    cascade_nn_rowdot_forward(c->a, c->b, ROWS, COLS, c->y);
    return nn_dot(c->r, c->y, ROWS);
}

static double dropout_objective(void *p)
{
    struct op_ctx *c = p;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, c->seed); /* the same mask on every call */
    cascade_nn_dropout_forward(&rng, c->rate, c->a, N, c->keep, c->y);
    return nn_dot(c->r, c->y, N);
}

static void setup_ctx(struct op_ctx *c, uint64_t seed)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, seed);
    memset(c, 0, sizeof(*c));
    nn_fill_away(&rng, c->a, N, 0.1f, 2.0f); /* away from ReLU's kink */
    nn_fill(&rng, c->b, N, -1, 1);
    nn_fill(&rng, c->r, N, -1, 1);
}

/* The branch-free ReLU gives bit for bit what `x > 0 ? x : 0` gives, on
 * every kind of float: signs, zeros of both signs, subnormals, infinities,
 * NaN (which becomes +0), and the backward pass the same way. */
static void test_relu_matches_branch(void **state)
{
    (void)state;
    const float special[] = {0.0f,    -0.0f,    1.0f,    -1.0f,    1e-40f,   -1e-40f,
                             FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,
                             NAN,     -NAN,     0.5f,    -3.25f};
    enum { M = 16 + 4096 };
    static float x[M], y[M], dy[M], dx[M];
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 11);
    for (size_t i = 0; i < M; i++) {
        x[i] = i < 16 ? special[i] : (float)cascade_rng_normal(&rng);
        dy[i] = i < 16 ? special[15 - i] : (float)cascade_rng_normal(&rng);
    }
    cascade_nn_relu_forward(x, M, y);
    cascade_nn_relu_backward(x, dy, M, dx);
    for (size_t i = 0; i < M; i++) {
        float want_y = x[i] > 0.0f ? x[i] : 0.0f;
        float want_dx = x[i] > 0.0f ? dy[i] : 0.0f;
        if (memcmp(&y[i], &want_y, sizeof(float)) != 0 ||
            memcmp(&dx[i], &want_dx, sizeof(float)) != 0)
            fail_msg("element %zu: x %g dy %g: relu %g (want %g), backward %g (want %g)", i,
                     (double)x[i], (double)dy[i], (double)y[i], (double)want_y, (double)dx[i],
                     (double)want_dx);
    }
    /* In place, as the MMoE forward pass calls it. */
    memcpy(y, x, sizeof x);
    cascade_nn_relu_forward(y, M, y);
    for (size_t i = 0; i < M; i++) {
        float want = x[i] > 0.0f ? x[i] : 0.0f;
        assert_memory_equal(&y[i], &want, sizeof(float));
    }
}

static void test_relu_sigmoid_gradients(void **state)
{
    (void)state;
    struct op_ctx c;
    setup_ctx(&c, 10);
    float dx[N];
    cascade_nn_relu_forward(c.a, N, c.y);
    cascade_nn_relu_backward(c.y, c.r, N, dx);
    assert_true(nn_gradcheck("relu", relu_objective, &c, c.a, N, dx, H) < NN_GRAD_TOL);
    cascade_nn_sigmoid_forward(c.a, N, c.y);
    memcpy(dx, c.r, sizeof(dx));
    cascade_nn_sigmoid_backward(c.y, dx, N, dx); /* in place on dy */
    assert_true(nn_gradcheck("sigmoid", sigmoid_objective, &c, c.a, N, dx, H) < NN_GRAD_TOL);
}

static void check_softmax(const uint8_t *mask)
{
    struct op_ctx c;
    setup_ctx(&c, 11);
    c.mask = mask;
    float dx[N];
    cascade_nn_softmax_forward(c.a, mask, ROWS, COLS, c.y);
    cascade_nn_softmax_backward(c.y, c.r, ROWS, COLS, dx);
    assert_true(nn_gradcheck("softmax", softmax_objective, &c, c.a, N, dx, H) < NN_GRAD_TOL);
    for (size_t r = 0; r < ROWS; r++) {
        double sum = 0;
        for (size_t j = 0; j < COLS; j++) {
            sum += c.y[r * COLS + j];
            if (mask && !mask[r * COLS + j])
                assert_near(c.y[r * COLS + j], 0.0f, 0.0);
        }
        assert_near(sum, 1.0, 1e-6);
    }
}

static void test_softmax_gradients(void **state)
{
    (void)state;
    check_softmax(NULL);
    uint8_t mask[N];
    for (size_t i = 0; i < N; i++)
        mask[i] = (i % 3) != 1;
    check_softmax(mask);
}

/* A row with nothing kept is all zeros, not NaN. */
static void test_softmax_all_masked(void **state)
{
    (void)state;
    const float x[3] = {1, 2, 3};
    const uint8_t keep[3] = {0, 0, 0};
    float y[3] = {5, 5, 5};
    cascade_nn_softmax_forward(x, keep, 1, 3, y);
    for (int j = 0; j < 3; j++)
        assert_near(y[j], 0.0f, 0.0);
}

static void test_softmax_sigmoid_stable(void **state)
{
    (void)state;
    const float x[4] = {1000.0f, 0.0f, -1000.0f, 999.0f};
    float y[4];
    cascade_nn_softmax_forward(x, NULL, 1, 4, y);
    assert_near(y[0], 1.0f / (1.0f + expf(-1.0f)), 1e-6);
    assert_near(y[1], 0.0f, 1e-30);
    assert_near(y[2], 0.0f, 0.0);
    assert_near(y[3], 1.0f - y[0], 1e-6);
    const float z[4] = {1e4f, -1e4f, 88.8f, -104.0f};
    float s[4];
    cascade_nn_sigmoid_forward(z, 4, s);
    assert_near(s[0], 1.0f, 0.0);
    assert_near(s[1], 0.0f, 1e-30);
    for (int i = 0; i < 4; i++)
        assert_false(isnan(s[i]));
}

static void test_l2norm_gradients(void **state)
{
    (void)state;
    struct op_ctx c;
    setup_ctx(&c, 12);
    float dx[N];
    cascade_nn_l2norm_forward(c.a, ROWS, COLS, c.y, c.norms);
    for (size_t r = 0; r < ROWS; r++) {
        float n;
        cascade_nn_rowdot_forward(c.y + r * COLS, c.y + r * COLS, 1, COLS, &n);
        assert_near(n, 1.0f, 1e-6);
    }
    cascade_nn_l2norm_backward(c.y, c.norms, c.r, ROWS, COLS, dx);
    assert_true(nn_gradcheck("l2norm", l2norm_objective, &c, c.a, N, dx, H) < NN_GRAD_TOL);
}

/* A zero row stays zero (no division by zero) and keeps a finite gradient. */
static void test_l2norm_zero_row(void **state)
{
    (void)state;
    const float x[2] = {0, 0}, dy[2] = {1, -1};
    float y[2], norm, dx[2];
    cascade_nn_l2norm_forward(x, 1, 2, y, &norm);
    assert_near(y[0], 0.0f, 0.0);
    cascade_nn_l2norm_backward(y, &norm, dy, 1, 2, dx);
    assert_true(isfinite(dx[0]) && isfinite(dx[1]));
}

static void test_rowdot_gradients(void **state)
{
    (void)state;
    struct op_ctx c;
    setup_ctx(&c, 13);
    float da[N], db[N];
    cascade_nn_rowdot_backward(c.a, c.b, c.r, ROWS, COLS, da, db);
    assert_true(nn_gradcheck("rowdot da", rowdot_objective, &c, c.a, N, da, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("rowdot db", rowdot_objective, &c, c.b, N, db, H) < NN_GRAD_TOL);
}

struct matmul_ctx {
    float a[3 * 5], b[4 * 5], c[3 * 4], r[3 * 4];
};

static double matmul_objective(void *p)
{
    struct matmul_ctx *m = p;
    assert_int_equal(cascade_nn_matmul_nt_forward(m->a, m->b, 3, 4, 5, m->c), 0);
    return nn_dot(m->r, m->c, 12);
}

static void test_matmul_gradients(void **state)
{
    (void)state;
    struct matmul_ctx m;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 14);
    nn_fill(&rng, m.a, 15, -1, 1);
    nn_fill(&rng, m.b, 20, -1, 1);
    nn_fill(&rng, m.r, 12, -1, 1);
    matmul_objective(&m);
    float dot;
    cascade_nn_rowdot_forward(m.a + 2 * 5, m.b + 1 * 5, 1, 5, &dot);
    assert_near(m.c[2 * 4 + 1], dot, 1e-6); /* c[i][j] = a_i · b_j */
    float da[15], db[20];
    assert_int_equal(cascade_nn_matmul_nt_backward(m.a, m.b, m.r, 3, 4, 5, da, db), 0);
    assert_true(nn_gradcheck("matmul da", matmul_objective, &m, m.a, 15, da, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("matmul db", matmul_objective, &m, m.b, 20, db, H) < NN_GRAD_TOL);
}

enum { MB = 3, ME = 4, MW = 5 };

struct mixture_ctx {
    float gates[MB * ME], experts[MB * ME * MW], out[MB * MW], r[MB * MW];
};

static double mixture_objective(void *p)
{
    struct mixture_ctx *m = p;
    cascade_nn_mixture_forward(m->gates, m->experts, MB, ME, MW, m->out);
    return nn_dot(m->r, m->out, MB * MW);
}

static void test_mixture_gradients(void **state)
{
    (void)state;
    struct mixture_ctx m;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 15);
    nn_fill(&rng, m.gates, MB * ME, 0, 1);
    nn_fill(&rng, m.experts, MB * ME * MW, -1, 1);
    nn_fill(&rng, m.r, MB * MW, -1, 1);
    mixture_objective(&m);
    /* out[1][2] by the einsum 'be,beh->bh'. */
    double want = 0;
    for (int e = 0; e < ME; e++)
        want += (double)m.gates[1 * ME + e] * m.experts[(1 * ME + e) * MW + 2];
    assert_near(m.out[1 * MW + 2], want, 1e-6);
    float dg[MB * ME], dx[MB * ME * MW];
    cascade_nn_mixture_backward(m.gates, m.experts, m.r, MB, ME, MW, dg, dx);
    assert_true(nn_gradcheck("mixture gates", mixture_objective, &m, m.gates, MB * ME, dg, H) <
                NN_GRAD_TOL);
    assert_true(nn_gradcheck("mixture experts", mixture_objective, &m, m.experts, MB * ME * MW, dx,
                             H) < NN_GRAD_TOL);
}

static void test_dropout(void **state)
{
    (void)state;
    struct op_ctx c;
    setup_ctx(&c, 16);
    c.rate = 0.25f;
    c.seed = 99;
    dropout_objective(&c);
    size_t kept = 0;
    for (size_t i = 0; i < N; i++) {
        kept += c.keep[i];
        assert_near(c.y[i], c.keep[i] ? c.a[i] / 0.75f : 0.0f, 1e-6);
    }
    assert_true(kept > 0 && kept < N); /* something dropped, something kept */
    float dx[N];
    cascade_nn_dropout_backward(c.rate, c.keep, c.r, N, dx);
    assert_true(nn_gradcheck("dropout", dropout_objective, &c, c.a, N, dx, H) < NN_GRAD_TOL);

    /* Same seed, same mask; another seed, another mask. */
    uint8_t first[N];
    memcpy(first, c.keep, N);
    dropout_objective(&c);
    assert_memory_equal(first, c.keep, N);
    c.seed = 100;
    dropout_objective(&c);
    assert_memory_not_equal(first, c.keep, N);
}

static void test_dropout_rate_zero_is_identity(void **state)
{
    (void)state;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 1);
    const float x[3] = {1, -2, 3};
    float y[3];
    uint8_t keep[3];
    cascade_nn_dropout_forward(&rng, 0.0f, x, 3, keep, y);
    assert_memory_equal(x, y, sizeof(x));
}

static void test_expert_dropout(void **state)
{
    (void)state;
    enum { B = 200, E = 4, W = 3 };
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 17);
    uint8_t keep[B * E];
    /* At rate 0.9 most rows draw no expert at all: one is kept regardless. */
    cascade_nn_expert_dropout_mask(&rng, 0.9f, B, E, keep);
    size_t dropped = 0;
    for (size_t b = 0; b < B; b++) {
        size_t kept = 0;
        for (size_t e = 0; e < E; e++)
            kept += keep[b * E + e];
        assert_true(kept >= 1);
        dropped += E - kept;
    }
    assert_true(dropped > B * E / 2);

    float x[2 * E * W];
    for (size_t i = 0; i < 2 * E * W; i++)
        x[i] = 1.0f;
    cascade_nn_expert_dropout_apply(keep, 0.5f, 2, E, W, x);
    for (size_t be = 0; be < 2 * E; be++)
        for (size_t h = 0; h < W; h++)
            assert_near(x[be * W + h], keep[be] ? 2.0f : 0.0f, 0.0);

    /* As the gate's softmax mask: dropped experts get weight 0, the rest sum to 1. */
    float logits[E] = {0.3f, -1, 2, 0.5f}, g[E];
    cascade_nn_softmax_forward(logits, keep, 1, E, g);
    double sum = 0;
    for (size_t e = 0; e < E; e++) {
        if (!keep[e])
            assert_near(g[e], 0.0f, 0.0);
        sum += g[e];
    }
    assert_near(sum, 1.0, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_matches_branch),
        cmocka_unit_test(test_relu_sigmoid_gradients),
        cmocka_unit_test(test_softmax_gradients),
        cmocka_unit_test(test_softmax_all_masked),
        cmocka_unit_test(test_softmax_sigmoid_stable),
        cmocka_unit_test(test_l2norm_gradients),
        cmocka_unit_test(test_l2norm_zero_row),
        cmocka_unit_test(test_rowdot_gradients),
        cmocka_unit_test(test_matmul_gradients),
        cmocka_unit_test(test_mixture_gradients),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dropout_rate_zero_is_identity),
        cmocka_unit_test(test_expert_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
