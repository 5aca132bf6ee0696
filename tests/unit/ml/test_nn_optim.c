/* Unit tests for the optimisers and training loop pieces of common/ml/nn: Adam
 * and Adagrad against hand-computed steps (torch's update rules), sparse
 * row-wise updates that leave untouched embedding rows bit-for-bit alone,
 * frozen parameters, seeded reproducibility, and a tiny MLP learning XOR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "nn.h"
#include "test_nn_check.h"

static struct cascade_nn_param *vector_param(cascade_nn_params *ps, const char *name, size_t n)
{
    struct cascade_nn_param *p = cascade_nn_params_add(ps, name, 1, (size_t[]){n}, 0, NULL, 0);
    assert_non_null(p);
    return p;
}

/* Two Adam steps on w = [1, −2] with lr 0.1, gradients [0.5, −0.1] then
 * [1, 0.3]. Step 1: m̂ = g and v̂ = g², so each weight moves lr·sign(g).
 * Step 2: m = [0.145, 0.021], v = [0.00124975, 0.00009999] and with bias
 * corrections 0.19 and 0.001999 the weights become [0.8034818, −1.9494190]. */
static void test_adam_by_hand(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_param *w = vector_param(ps, "w", 2);
    w->value[0] = 1.0f, w->value[1] = -2.0f;
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, 0.1f);
    w->grad[0] = 0.5f, w->grad[1] = -0.1f;
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(w->value[0], 0.9f, 1e-6);
    assert_near(w->value[1], -1.9f, 1e-6);
    assert_near(w->grad[0], 0.0f, 0.0); /* the step clears gradients */
    w->grad[0] = 1.0f, w->grad[1] = 0.3f;
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(w->m[0], 0.145f, 1e-7);
    assert_near(w->v[1], 0.00009999f, 1e-8);
    assert_near(w->value[0], 0.8034818f, 1e-6);
    assert_near(w->value[1], -1.9494190f, 1e-6);
    assert_int_equal(o.step, 2);
    cascade_nn_params_destroy(ps);
}

/* Adagrad on w = 1, lr 0.1, initial accumulator 0.1, gradients 0.5 then 1:
 * acc 0.35 → w = 1 − 0.05/√0.35 = 0.9154846; acc 1.35 → w = 0.8294183. */
static void test_adagrad_by_hand(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_param *w = vector_param(ps, "w", 1);
    w->value[0] = 1.0f;
    struct cascade_nn_optim o;
    cascade_nn_optim_adagrad(&o, 0.1f);
    o.initial_accumulator = 0.1f;
    w->grad[0] = 0.5f;
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(w->v[0], 0.35f, 1e-7);
    assert_near(w->value[0], 0.9154846f, 1e-6);
    w->grad[0] = 1.0f;
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(w->value[0], 0.8294183f, 1e-6);
    cascade_nn_params_destroy(ps);
}

/* Weight decay adds decay·w to the gradient: Adagrad's first step with
 * g = 0 and w = 2, decay 0.5 moves w by lr·sign(w). */
static void test_weight_decay(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_param *w = vector_param(ps, "w", 1);
    w->value[0] = 2.0f;
    struct cascade_nn_optim o;
    cascade_nn_optim_adagrad(&o, 0.1f);
    o.weight_decay = 0.5f;
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(w->value[0], 1.9f, 1e-6);
    cascade_nn_params_destroy(ps);
}

/* One embedding-bag training step; returns a copy of the table before it. */
static float *embedding_step(struct cascade_nn_optim *o, cascade_nn_params *ps,
                             struct cascade_nn_embedding *e, const uint32_t *ids, size_t n)
{
    float *before = malloc(e->table->size * sizeof(float));
    memcpy(before, e->table->value, e->table->size * sizeof(float));
    const size_t offsets[2] = {0, n};
    struct cascade_nn_bags bags = {.batch = 1, .offsets = offsets, .ids = ids};
    float out[4], dout[4] = {0.5f, -1.0f, 0.25f, 2.0f};
    assert_int_equal(cascade_nn_embedding_forward(e, &bags, out), 0);
    assert_int_equal(cascade_nn_embedding_backward(e, &bags, dout), 0);
    assert_int_equal(cascade_nn_optim_step(o, ps), 0);
    return before;
}

static void check_only_rows_changed(const struct cascade_nn_param *t, const float *before,
                                    const uint32_t *rows, size_t n)
{
    for (size_t r = 0; r < t->rows; r++) {
        bool used = false;
        for (size_t i = 0; i < n; i++)
            used |= rows[i] == r;
        const float *now = t->value + r * t->cols, *was = before + r * t->cols;
        if (used)
            assert_memory_not_equal(now, was, t->cols * sizeof(float));
        else
            assert_memory_equal(now, was, t->cols * sizeof(float));
    }
}

static void check_sparse_updates(struct cascade_nn_optim *o)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 30);
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_embedding e;
    assert_int_equal(
        cascade_nn_embedding_init(&e, ps, "emb", 10, 4, CASCADE_NN_POOL_SUM, 0.1f, &rng, NULL, 0),
        0);
    const uint32_t first[3] = {2, 5, 2}, second[2] = {7, 0};
    float *before = embedding_step(o, ps, &e, first, 3);
    check_only_rows_changed(e.table, before, first, 3);
    assert_int_equal(e.table->n_touched, 0);
    for (size_t i = 0; i < e.table->size; i++)
        assert_near(e.table->grad[i], 0.0f, 0.0);
    /* Lazy moments: the rows of step 1 do not move again in step 2. */
    free(before);
    before = embedding_step(o, ps, &e, second, 2);
    check_only_rows_changed(e.table, before, second, 2);
    free(before);
    cascade_nn_params_destroy(ps);
}

static void test_sparse_adam(void **state)
{
    (void)state;
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, 0.01f);
    check_sparse_updates(&o);
}

static void test_sparse_adagrad(void **state)
{
    (void)state;
    struct cascade_nn_optim o;
    cascade_nn_optim_adagrad(&o, 0.01f);
    check_sparse_updates(&o);
}

static void test_frozen(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    struct cascade_nn_param *a = vector_param(ps, "a", 2), *b = vector_param(ps, "b", 2);
    a->frozen = true;
    a->grad[0] = b->grad[0] = 1.0f;
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, 0.1f);
    assert_int_equal(cascade_nn_optim_step(&o, ps), 0);
    assert_near(a->value[0], 0.0f, 0.0);
    assert_near(a->grad[0], 0.0f, 0.0);
    assert_near(b->value[0], -0.1f, 1e-6);
    o.kind = 0;
    assert_int_equal(cascade_nn_optim_step(&o, ps), CASCADE_EINVAL);
    cascade_nn_params_destroy(ps);
}

/* ---- XOR with a 2 → 8 → 1 MLP ---- */

struct mlp {
    cascade_nn_params *ps;
    struct cascade_nn_dense l1, l2;
};

static void mlp_init(struct mlp *m, uint64_t seed)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, seed);
    m->ps = cascade_nn_params_create();
    assert_int_equal(
        cascade_nn_dense_init(&m->l1, m->ps, "0", 2, 8, CASCADE_NN_INIT_HE_UNIFORM, &rng, NULL, 0),
        0);
    assert_int_equal(cascade_nn_dense_init(&m->l2, m->ps, "2", 8, 1, CASCADE_NN_INIT_XAVIER_UNIFORM,
                                           &rng, NULL, 0),
                     0);
}

static const float xor_x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float xor_y[4] = {0, 1, 1, 0};

/* One full-batch step; returns the loss before it. */
static double mlp_step(struct mlp *m, struct cascade_nn_optim *o)
{
    float h[4 * 8], z[4], dz[4], dh[4 * 8];
    assert_int_equal(cascade_nn_dense_forward(&m->l1, xor_x, 4, h), 0);
    cascade_nn_relu_forward(h, 4 * 8, h);
    assert_int_equal(cascade_nn_dense_forward(&m->l2, h, 4, z), 0);
    double loss = cascade_nn_bce_logits(z, xor_y, NULL, 4, dz);
    assert_int_equal(cascade_nn_dense_backward(&m->l2, h, dz, 4, dh), 0);
    cascade_nn_relu_backward(h, dh, 4 * 8, dh);
    assert_int_equal(cascade_nn_dense_backward(&m->l1, xor_x, dh, 4, NULL), 0);
    assert_int_equal(cascade_nn_optim_step(o, m->ps), 0);
    return loss;
}

static void mlp_train(struct mlp *m, uint64_t seed, double *final_loss)
{
    mlp_init(m, seed);
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, 0.05f);
    for (int i = 0; i < 600; i++)
        *final_loss = mlp_step(m, &o);
}

static void test_xor(void **state)
{
    (void)state;
    struct mlp a, b;
    double loss_a, loss_b;
    mlp_train(&a, 42, &loss_a);
    assert_true(loss_a < 0.05);
    float h[4 * 8], z[4], p[4];
    assert_int_equal(cascade_nn_dense_forward(&a.l1, xor_x, 4, h), 0);
    cascade_nn_relu_forward(h, 4 * 8, h);
    assert_int_equal(cascade_nn_dense_forward(&a.l2, h, 4, z), 0);
    cascade_nn_sigmoid_forward(z, 4, p);
    for (int i = 0; i < 4; i++)
        assert_true(xor_y[i] > 0.5f ? p[i] > 0.9f : p[i] < 0.1f);

    /* The same seed trains bit-for-bit the same network. */
    mlp_train(&b, 42, &loss_b);
    assert_true(loss_a == loss_b);
    for (size_t i = 0; i < cascade_nn_params_count(a.ps); i++) {
        const struct cascade_nn_param *pa = cascade_nn_params_at(a.ps, i);
        const struct cascade_nn_param *pb = cascade_nn_params_at(b.ps, i);
        assert_string_equal(pa->name, pb->name);
        assert_memory_equal(pa->value, pb->value, pa->size * sizeof(float));
    }
    cascade_nn_params_destroy(a.ps);
    cascade_nn_params_destroy(b.ps);
}

static void test_seeded_init(void **state)
{
    (void)state;
    struct mlp a, b, c;
    mlp_init(&a, 7);
    mlp_init(&b, 7);
    mlp_init(&c, 8);
    assert_memory_equal(a.l1.weight->value, b.l1.weight->value, 16 * sizeof(float));
    assert_memory_not_equal(a.l1.weight->value, c.l1.weight->value, 16 * sizeof(float));
    /* He uniform bounds for fan_in 2: sqrt(6/2); Xavier for 8 → 1: sqrt(6/9). */
    for (size_t i = 0; i < 16; i++)
        assert_true(fabsf(a.l1.weight->value[i]) <= sqrtf(3.0f));
    for (size_t i = 0; i < 8; i++)
        assert_true(fabsf(a.l2.weight->value[i]) <= sqrtf(6.0f / 9.0f));
    /* A known first output pins the generator across machines and versions. */
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 0);
    assert_true(cascade_rng_next(&rng) == 0x99ec5f36cb75f2b4ULL);
    cascade_nn_params_destroy(a.ps);
    cascade_nn_params_destroy(b.ps);
    cascade_nn_params_destroy(c.ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_by_hand),
        cmocka_unit_test(test_adagrad_by_hand),
        cmocka_unit_test(test_weight_decay),
        cmocka_unit_test(test_sparse_adam),
        cmocka_unit_test(test_sparse_adagrad),
        cmocka_unit_test(test_frozen),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_seeded_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
