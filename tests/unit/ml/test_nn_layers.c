/* Unit tests for the layers of common/ml/nn: the dense layer and the pooled
 * embedding bag checked against central finite differences (every weight,
 * bias and input), sparse gradient bookkeeping, and input validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "nn.h"
#include "test_nn_check.h"

#define H 2e-2f

struct dense_ctx {
    struct cascade_nn_dense d;
    float *x, *y, *r;
    size_t batch;
};

static double dense_objective(void *p)
{
    struct dense_ctx *c = p;
    assert_int_equal(cascade_nn_dense_forward(&c->d, c->x, c->batch, c->y), 0);
    return nn_dot(c->r, c->y, c->batch * c->d.out);
}

static void test_dense_gradients(void **state)
{
    (void)state;
    enum { B = 5, IN = 7, OUT = 4 };
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 1);
    cascade_nn_params *ps = cascade_nn_params_create();
    struct dense_ctx c = {.batch = B};
    char err[256] = "";
    assert_int_equal(cascade_nn_dense_init(&c.d, ps, "fc", IN, OUT, CASCADE_NN_INIT_XAVIER_UNIFORM,
                                           &rng, err, sizeof(err)),
                     0);
    nn_fill(&rng, c.d.bias->value, OUT, -0.5f, 0.5f);
    float x[B * IN], y[B * OUT], r[B * OUT], dx[B * IN];
    nn_fill(&rng, x, B * IN, -1, 1);
    nn_fill(&rng, r, B * OUT, -1, 1);
    c.x = x, c.y = y, c.r = r;

    assert_int_equal(cascade_nn_dense_backward(&c.d, x, r, B, dx), 0);
    assert_true(nn_gradcheck("dense dx", dense_objective, &c, x, B * IN, dx, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("dense dW", dense_objective, &c, c.d.weight->value, OUT * IN,
                             c.d.weight->grad, H) < NN_GRAD_TOL);
    assert_true(nn_gradcheck("dense db", dense_objective, &c, c.d.bias->value, OUT, c.d.bias->grad,
                             H) < NN_GRAD_TOL);

    /* Parameter gradients accumulate: a second backward doubles them. */
    float w0 = c.d.weight->grad[3];
    assert_int_equal(cascade_nn_dense_backward(&c.d, x, r, B, NULL), 0);
    assert_near(c.d.weight->grad[3], 2 * w0, 1e-5);
    cascade_nn_params_destroy(ps);
}

/* y = x·Wᵀ + b by hand for a 2 → 3 layer: the [out, in] layout of torch. */
static void test_dense_layout(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_dense d;
    assert_int_equal(cascade_nn_dense_init(&d, ps, "l", 2, 3, CASCADE_NN_INIT_ZERO, NULL, NULL, 0),
                     0);
    assert_int_equal(d.weight->rows, 3);
    assert_int_equal(d.weight->cols, 2);
    assert_int_equal(d.bias->ndim, 1);
    const float w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {0.5f, -1, 0};
    memcpy(d.weight->value, w, sizeof(w));
    memcpy(d.bias->value, b, sizeof(b));
    const float x[2] = {1, -1};
    float y[3];
    assert_int_equal(cascade_nn_dense_forward(&d, x, 1, y), 0);
    assert_near(y[0], 1 - 2 + 0.5f, 1e-6);
    assert_near(y[1], 3 - 4 - 1, 1e-6);
    assert_near(y[2], 5 - 6, 1e-6);
    assert_non_null(cascade_nn_params_find(ps, "l.weight"));
    assert_non_null(cascade_nn_params_find(ps, "l.bias"));
    cascade_nn_params_destroy(ps);
}

static void test_dense_init_errors(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_dense d;
    char err[256] = "";
    assert_int_equal(
        cascade_nn_dense_init(&d, ps, "a", 2, 3, CASCADE_NN_INIT_ZERO, NULL, err, sizeof(err)), 0);
    assert_int_equal(
        cascade_nn_dense_init(&d, ps, "a", 2, 3, CASCADE_NN_INIT_ZERO, NULL, err, sizeof(err)),
        CASCADE_EINVAL);
    assert_non_null(strstr(err, "a.bias"));
    assert_non_null(strstr(err, "already used"));
    assert_int_equal(cascade_nn_params_count(ps), 2); /* the clash added nothing */
    assert_int_equal(
        cascade_nn_dense_init(&d, ps, "b", 0, 3, CASCADE_NN_INIT_ZERO, NULL, err, sizeof(err)),
        CASCADE_EINVAL);
    assert_non_null(strstr(err, "b.weight"));
    cascade_nn_params_destroy(ps);
}

struct emb_ctx {
    struct cascade_nn_embedding e;
    const struct cascade_nn_bags *bags;
    float *y, *r;
};

static double emb_objective(void *p)
{
    struct emb_ctx *c = p;
    assert_int_equal(cascade_nn_embedding_forward(&c->e, c->bags, c->y), 0);
    return nn_dot(c->r, c->y, c->bags->batch * c->e.dim);
}

static void check_embedding(enum cascade_nn_pool pool, const float *weights)
{
    enum { NUM = 12, DIM = 5, B = 4 };
    /* Bags: {3, 7, 3}, {}, {11}, {0, 7}; rows 3 and 7 are shared. */
    static const size_t offsets[B + 1] = {0, 3, 3, 4, 6};
    static const uint32_t ids[6] = {3, 7, 3, 11, 0, 7};
    struct cascade_nn_bags bags = {.batch = B, .offsets = offsets, .ids = ids, .weights = weights};
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 2);
    cascade_nn_params *ps = cascade_nn_params_create();
    struct emb_ctx c = {.bags = &bags};
    assert_int_equal(
        cascade_nn_embedding_init(&c.e, ps, "item", NUM, DIM, pool, 0.5f, &rng, NULL, 0), 0);
    assert_true(c.e.table->sparse);
    float y[B * DIM], r[B * DIM];
    nn_fill(&rng, r, B * DIM, -1, 1);
    c.y = y, c.r = r;
    assert_int_equal(cascade_nn_embedding_backward(&c.e, &bags, r), 0);
    assert_true(nn_gradcheck("embedding", emb_objective, &c, c.e.table->value, NUM * DIM,
                             c.e.table->grad, H) < NN_GRAD_TOL);

    /* Exactly the used rows are touched, each once. */
    assert_int_equal(c.e.table->n_touched, 4);
    for (size_t row = 0; row < NUM; row++) {
        bool used = row == 0 || row == 3 || row == 7 || row == 11;
        assert_int_equal(c.e.table->row_touched[row], used);
    }
    /* The empty bag pools to zeros. */
    emb_objective(&c);
    for (size_t k = 0; k < DIM; k++)
        assert_near(y[DIM + k], 0.0f, 0.0);
    cascade_nn_params_destroy(ps);
}

static void test_embedding_sum_gradients(void **state)
{
    (void)state;
    check_embedding(CASCADE_NN_POOL_SUM, NULL);
}

static void test_embedding_mean_weighted_gradients(void **state)
{
    (void)state;
    static const float weights[6] = {0.5f, 2.0f, -1.0f, 1.5f, 0.25f, 1.0f};
    check_embedding(CASCADE_NN_POOL_MEAN, weights);
}

/* Mean pooling by hand: bag {1, 2} of rows [1, 2] and [3, 5] gives [2, 3.5]. */
static void test_embedding_mean_value(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_embedding e;
    assert_int_equal(
        cascade_nn_embedding_init(&e, ps, "u", 3, 2, CASCADE_NN_POOL_MEAN, 0.0f, NULL, NULL, 0), 0);
    const float table[6] = {9, 9, 1, 2, 3, 5};
    memcpy(e.table->value, table, sizeof(table));
    const size_t offsets[2] = {0, 2};
    const uint32_t ids[2] = {1, 2};
    struct cascade_nn_bags bags = {.batch = 1, .offsets = offsets, .ids = ids};
    float out[2];
    assert_int_equal(cascade_nn_embedding_forward(&e, &bags, out), 0);
    assert_near(out[0], 2.0f, 1e-6);
    assert_near(out[1], 3.5f, 1e-6);
    cascade_nn_params_destroy(ps);
}

static void test_bags_rejected(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_embedding e;
    assert_int_equal(
        cascade_nn_embedding_init(&e, ps, "u", 4, 2, CASCADE_NN_POOL_SUM, 0.1f, NULL, NULL, 0), 0);
    const size_t offsets[3] = {0, 1, 3};
    const uint32_t ids[3] = {1, 2, 9};
    struct cascade_nn_bags bags = {.batch = 2, .offsets = offsets, .ids = ids};
    char err[256] = "";
    assert_int_equal(cascade_nn_bags_check(&bags, 4, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "bag 1 has id 9, table has 4 rows"));
    float out[4], dout[4] = {1, 1, 1, 1};
    assert_int_equal(cascade_nn_embedding_forward(&e, &bags, out), CASCADE_EINVAL);
    assert_int_equal(cascade_nn_embedding_backward(&e, &bags, dout), CASCADE_EINVAL);
    assert_int_equal(e.table->n_touched, 0); /* rejected before any row was touched */

    const size_t backwards[3] = {0, 2, 1};
    bags.offsets = backwards;
    assert_int_equal(cascade_nn_bags_check(&bags, 4, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "offsets decrease at bag 1"));
    cascade_nn_params_destroy(ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_gradients),
        cmocka_unit_test(test_dense_layout),
        cmocka_unit_test(test_dense_init_errors),
        cmocka_unit_test(test_embedding_sum_gradients),
        cmocka_unit_test(test_embedding_mean_weighted_gradients),
        cmocka_unit_test(test_embedding_mean_value),
        cmocka_unit_test(test_bags_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
