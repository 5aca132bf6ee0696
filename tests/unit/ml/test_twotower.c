/* Unit tests for common/ml/twotower: the whole two-tower step's gradient against
 * finite differences for every objective, the listwise logits (logQ sign,
 * false-negative masking) against a hand computation, normalised vectors,
 * id checks, concurrent inference and a save/load round trip. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "support.h"
#include "test_nn_check.h"
#include "twotower.h"

enum { B = 3, NNEG = 2, D = 3 };
/* Finite-difference step: float32 rounding in the forward pass puts ~1e-5
 * of noise on a derivative at h = 1e-2, so the step is large and the kinks
 * (ReLU, hinge) are kept out of its reach instead. */
#define GC_H 5e-2f
/* |bias| of the hidden ReLU inputs during the check (see away_from_kinks). */
#define GC_BIAS 3.0f
#define GC_HID 4

static void small_config(struct cascade_twotower_config *c, size_t hidden)
{
    cascade_twotower_config_default(c);
    c->n_users = 5;
    c->n_items = 7;
    c->n_authors = 3;
    c->n_categories = 4;
    c->n_user_age_buckets = 3;
    c->n_genders = 2;
    c->n_cities = 4;
    c->n_item_age_buckets = 2;
    c->emb_dim = 3;
    c->hidden = hidden;
    c->out_dim = D;
    c->temperature = 0.5f;
    c->margin = 0.5f;
    c->init_std = 0.5f;
    c->seed = 5;
}

static cascade_twotower *make(size_t hidden)
{
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    char err[256] = "";
    small_config(&c, hidden);
    if (cascade_twotower_create(&c, &m, err, sizeof(err)) != 0)
        fail_msg("create: %s", err);
    return m;
}

static const uint32_t hist0[] = {1, 4, 6}, hist2[] = {0, 0, 3, 5};
static const struct cascade_twotower_user users[B] = {
    {0, 1, 0, 2, hist0, 3},
    {3, 0, 1, 3, NULL, 0},
    {4, 2, 1, 0, hist2, 4},
};
static const struct cascade_twotower_item pos[B] = {{2, 0, 1, 0}, {5, 2, 3, 1}, {6, 1, 0, 1}};
static const struct cascade_twotower_item neg[B * NNEG] = {
    {1, 1, 2, 0}, {3, 0, 0, 1}, {4, 2, 1, 0}, {0, 0, 3, 0}, {5, 1, 2, 1}, {2, 2, 2, 1}};
static const float labels[B] = {1.0f, 0.0f, 1.0f};
static const float pos_logq[B] = {-1.5f, -0.3f, -2.0f};
static const float neg_logq[B * NNEG] = {-1.0f, -2.5f, -0.7f, -1.2f, -3.0f, -0.4f};

static struct cascade_twotower_batch batch(bool in_batch)
{
    struct cascade_twotower_batch b = {
        .n = B,
        .users = users,
        .pos = pos,
        .labels = labels,
        .n_neg = NNEG,
        .neg = neg,
        .pos_logq = pos_logq,
        .neg_logq = neg_logq,
        .in_batch = in_batch,
    };
    return b;
}

struct ctx {
    cascade_twotower *m;
    enum cascade_twotower_objective obj;
    struct cascade_twotower_batch b;
};

static double objective(void *p)
{
    struct ctx *c = p;
    double loss = NAN;
    char err[256] = "";
    if (cascade_twotower_loss(c->m, c->obj, &c->b, &loss, err, sizeof(err)) != 0)
        fail_msg("loss: %s", err);
    return loss;
}

/* Push every hidden ReLU's input far from its kink (alternately on and off),
 * so finite differences with a step large enough to swamp float32 rounding
 * never cross it. Both branches of the ReLU backward stay exercised. */
static void away_from_kinks(cascade_twotower *m)
{
    const char *names[] = {"user.fc1.bias", "item.fc1.bias"};
    for (size_t n = 0; n < 2; n++) {
        struct cascade_nn_param *b = cascade_nn_params_find(cascade_twotower_params(m), names[n]);
        if (cascade_twotower_config_get(m)->hidden == 0)
            continue;
        assert_non_null(b);
        for (size_t i = 0; i < b->size; i++)
            b->value[i] = i % 2 ? -GC_BIAS : GC_BIAS;
    }
}

/* Backward once, then compare every parameter's gradient with finite differences. */
static void gradcheck(size_t hidden, enum cascade_twotower_objective obj, bool in_batch)
{
    struct ctx c = {make(hidden), obj, batch(in_batch)};
    away_from_kinks(c.m);
    cascade_nn_params *ps = cascade_twotower_params(c.m);
    char err[256] = "", what[128];
    double loss = NAN;
    cascade_nn_params_zero_grad(ps);
    assert_int_equal(cascade_twotower_backward(c.m, obj, &c.b, &loss, err, sizeof(err)), 0);
    assert_near(loss, objective(&c), 1e-9);
    assert_true(loss > 0.0);
    size_t checked = 0;
    for (size_t i = 0; i < cascade_nn_params_count(ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(ps, i);
        float *g = malloc(p->size * sizeof(float));
        assert_non_null(g);
        memcpy(g, p->grad, p->size * sizeof(float));
        snprintf(what, sizeof(what), "objective %d hidden %zu: %s", (int)obj, hidden, p->name);
        double worst = nn_gradcheck(what, objective, &c, p->value, p->size, g, GC_H);
        if (worst > NN_GRAD_TOL)
            fail_msg("%s: relative gradient error %.3g", what, worst);
        for (size_t k = 0; k < p->size; k++)
            checked += g[k] != 0.0f;
        free(g);
    }
    assert_true(checked > 50); /* the check saw real gradients */
    cascade_twotower_destroy(c.m);
}

static void test_gradcheck_pointwise(void **state)
{
    (void)state;
    gradcheck(GC_HID, CASCADE_TWOTOWER_POINTWISE, false);
    gradcheck(0, CASCADE_TWOTOWER_POINTWISE, false);
}

static void test_gradcheck_triplet(void **state)
{
    (void)state;
    gradcheck(GC_HID, CASCADE_TWOTOWER_TRIPLET_HINGE, false);
    gradcheck(GC_HID, CASCADE_TWOTOWER_TRIPLET_LOG, false);
}

static void test_gradcheck_listwise(void **state)
{
    (void)state;
    gradcheck(GC_HID, CASCADE_TWOTOWER_LISTWISE, false);
    gradcheck(GC_HID, CASCADE_TWOTOWER_LISTWISE, true);
    gradcheck(0, CASCADE_TWOTOWER_LISTWISE, true);
}

static double dot(const float *a, const float *b)
{
    double s = 0.0;
    for (size_t k = 0; k < D; k++)
        s += (double)a[k] * b[k];
    return s;
}

/* In-batch listwise loss by hand from the tower outputs: logits u_i·p_k/τ −
 * log q(p_k) over the batch's positives, then the negatives; a repeated
 * positive is masked out of the other row, and so is an item on the row's
 * exclusion list (row 1 excludes row 0's positive, an exposure it skipped). */
static double listwise_by_hand(cascade_twotower *m, const struct cascade_twotower_item *p2,
                               bool use_logq, bool use_exclude)
{
    char err[256] = "";
    float u[B * D], pv[B * D], nv[B * NNEG * D];
    double want = 0.0, tau = 0.5;
    assert_int_equal(cascade_twotower_user_vectors(m, users, B, u, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_item_vectors(m, p2, B, pv, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_item_vectors(m, neg, B * NNEG, nv, err, sizeof(err)), 0);
    for (size_t i = 0; i < B; i++) {
        double logits[B + NNEG], mx = -INFINITY, z = 0.0;
        bool keep[B + NNEG];
        for (size_t k = 0; k < B; k++) {
            logits[k] = dot(&u[i * D], &pv[k * D]) / tau - (use_logq ? pos_logq[k] : 0.0);
            keep[k] = k == i || (p2[k].item_id != p2[i].item_id &&
                                 !(use_exclude && i == 1 && p2[k].item_id == p2[0].item_id));
        }
        for (size_t j = 0; j < NNEG; j++) {
            logits[B + j] = dot(&u[i * D], &nv[(i * NNEG + j) * D]) / tau -
                            (use_logq ? neg_logq[i * NNEG + j] : 0.0);
            keep[B + j] = neg[i * NNEG + j].item_id != p2[i].item_id;
        }
        for (size_t k = 0; k < B + NNEG; k++)
            if (keep[k])
                mx = fmax(mx, logits[k]);
        for (size_t k = 0; k < B + NNEG; k++)
            if (keep[k])
                z += exp(logits[k] - mx);
        want += -(logits[i] - mx - log(z)) / B;
    }
    return want;
}

static void test_listwise_by_hand(void **state)
{
    (void)state;
    cascade_twotower *m = make(4);
    char err[256] = "";
    struct cascade_twotower_item p2[B] = {pos[0], pos[1], pos[0]}; /* row 2 repeats row 0's */
    struct cascade_twotower_batch b = batch(true);
    double loss = NAN, plain = NAN, masked = NAN;
    b.pos = p2;
    assert_int_equal(
        cascade_twotower_loss(m, CASCADE_TWOTOWER_LISTWISE, &b, &loss, err, sizeof(err)), 0);
    assert_near(loss, listwise_by_hand(m, p2, true, false), 1e-5);
    /* Without the correction the loss changes: the sign and use of log q matter. */
    b.pos_logq = NULL;
    b.neg_logq = NULL;
    assert_int_equal(
        cascade_twotower_loss(m, CASCADE_TWOTOWER_LISTWISE, &b, &plain, err, sizeof(err)), 0);
    assert_near(plain, listwise_by_hand(m, p2, false, false), 1e-5);
    assert_true(fabs(plain - loss) > 1e-3);
    /* Row 1 was exposed to row 0's positive and skipped it: never its negative. */
    const uint32_t ex1[] = {6, p2[0].item_id};
    const uint32_t *ex[B] = {NULL, ex1, NULL};
    const size_t n_ex[B] = {0, 2, 0};
    b.exclude = ex;
    b.n_exclude = n_ex;
    assert_int_equal(
        cascade_twotower_loss(m, CASCADE_TWOTOWER_LISTWISE, &b, &masked, err, sizeof(err)), 0);
    assert_near(masked, listwise_by_hand(m, p2, false, true), 1e-5);
    assert_true(fabs(masked - plain) > 1e-4);
    cascade_twotower_destroy(m);
}

static void test_vectors_normalised_and_checked(void **state)
{
    (void)state;
    cascade_twotower *m = make(4);
    char err[256] = "";
    float u[B * D], it[B * D];
    assert_int_equal(cascade_twotower_user_vectors(m, users, B, u, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_item_vectors(m, pos, B, it, err, sizeof(err)), 0);
    for (size_t i = 0; i < B; i++) {
        assert_near(dot(&u[i * D], &u[i * D]), 1.0, 1e-5);
        assert_near(dot(&it[i * D], &it[i * D]), 1.0, 1e-5);
    }
    /* The history matters: the same user with another history gets another vector. */
    struct cascade_twotower_user other = users[0];
    float v[D];
    other.history = hist2;
    other.n_history = 4;
    assert_int_equal(cascade_twotower_user_vectors(m, &other, 1, v, err, sizeof(err)), 0);
    assert_true(fabs(dot(v, &u[0]) - 1.0) > 1e-4);

    struct cascade_twotower_user bad = users[1];
    bad.city = 4;
    assert_int_equal(cascade_twotower_user_vectors(m, &bad, 1, v, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "city 4"));
    const uint32_t bad_hist[] = {7};
    bad = users[1];
    bad.history = bad_hist;
    bad.n_history = 1;
    assert_int_equal(cascade_twotower_user_vectors(m, &bad, 1, v, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "history item 7"));
    struct cascade_twotower_item bad_item = {1, 3, 0, 0};
    assert_int_equal(cascade_twotower_item_vectors(m, &bad_item, 1, v, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "author 3"));

    struct cascade_twotower_batch b = batch(false);
    double loss;
    b.n_neg = 0;
    assert_int_equal(
        cascade_twotower_loss(m, CASCADE_TWOTOWER_TRIPLET_LOG, &b, &loss, err, sizeof(err)),
        CASCADE_EINVAL);
    assert_int_equal(
        cascade_twotower_loss(m, CASCADE_TWOTOWER_LISTWISE, &b, &loss, err, sizeof(err)),
        CASCADE_EINVAL);
    assert_int_equal(
        cascade_twotower_loss(m, (enum cascade_twotower_objective)99, &b, &loss, err, sizeof(err)),
        CASCADE_EINVAL);
    cascade_twotower_destroy(m);
}

static void test_create_rejects_bad_config(void **state)
{
    (void)state;
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    char err[256] = "";
    small_config(&c, 4);
    c.n_cities = 0;
    assert_int_equal(cascade_twotower_create(&c, &m, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "n_cities"));
    assert_null(m);
    small_config(&c, 4);
    c.temperature = 0.0f;
    assert_int_equal(cascade_twotower_create(&c, &m, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "temperature"));
    cascade_twotower_destroy(NULL);
}

struct worker {
    const cascade_twotower *m;
    float out[B * D];
    int rc;
};

static void *infer(void *p)
{
    struct worker *w = p;
    char err[128];
    for (int r = 0; r < 200 && w->rc == 0; r++)
        w->rc = cascade_twotower_user_vectors(w->m, users, B, w->out, err, sizeof(err));
    return NULL;
}

static void test_concurrent_inference(void **state)
{
    (void)state;
    cascade_twotower *m = make(4);
    char err[128];
    float want[B * D];
    struct worker w[4];
    pthread_t t[4];
    assert_int_equal(cascade_twotower_user_vectors(m, users, B, want, err, sizeof(err)), 0);
    for (int i = 0; i < 4; i++) {
        w[i].m = m;
        w[i].rc = 0;
        assert_int_equal(pthread_create(&t[i], NULL, infer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].rc, 0);
        assert_memory_equal(w[i].out, want, sizeof(want));
    }
    cascade_twotower_destroy(m);
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    cascade_twotower *m = make(4), *back = NULL;
    struct cascade_nn_optim o;
    char dir[256], path[512], err[256] = "";
    double loss;
    struct cascade_twotower_batch b = batch(true);
    float u1[B * D], u2[B * D], i1[B * D], i2[B * D];
    /* Train a step so the weights differ from a fresh seeded model. */
    cascade_nn_optim_adam(&o, 0.05f);
    assert_int_equal(
        cascade_twotower_train_step(m, &o, CASCADE_TWOTOWER_LISTWISE, &b, &loss, err, sizeof(err)),
        0);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/twotower.safetensors", dir);
    assert_int_equal(cascade_twotower_save(m, path, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_load(path, &back, err, sizeof(err)), 0);
    const struct cascade_twotower_config *c1 = cascade_twotower_config_get(m);
    const struct cascade_twotower_config *c2 = cascade_twotower_config_get(back);
    assert_int_equal(c1->n_users, c2->n_users);
    assert_int_equal(c1->n_cities, c2->n_cities);
    assert_int_equal(c1->n_item_age_buckets, c2->n_item_age_buckets);
    assert_int_equal(c1->hidden, c2->hidden);
    assert_int_equal(c1->out_dim, c2->out_dim);
    assert_true(c1->temperature == c2->temperature && c1->margin == c2->margin);
    assert_int_equal(cascade_twotower_user_vectors(m, users, B, u1, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_user_vectors(back, users, B, u2, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_item_vectors(m, pos, B, i1, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_item_vectors(back, pos, B, i2, err, sizeof(err)), 0);
    assert_memory_equal(u1, u2, sizeof(u1));
    assert_memory_equal(i1, i2, sizeof(i1));
    /* A fresh model of the same seed differs, so the load really copied weights. */
    cascade_twotower *fresh = make(4);
    assert_int_equal(cascade_twotower_user_vectors(fresh, users, B, u2, err, sizeof(err)), 0);
    assert_true(memcmp(u1, u2, sizeof(u1)) != 0);
    cascade_twotower_destroy(fresh);

    snprintf(path, sizeof(path), "%s/missing.safetensors", dir);
    assert_true(cascade_twotower_load(path, &fresh, err, sizeof(err)) < 0);
    assert_null(fresh);
    assert_non_null(strstr(err, "missing.safetensors"));
    cascade_twotower_destroy(back);
    cascade_twotower_destroy(m);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_pointwise),
        cmocka_unit_test(test_gradcheck_triplet),
        cmocka_unit_test(test_gradcheck_listwise),
        cmocka_unit_test(test_listwise_by_hand),
        cmocka_unit_test(test_vectors_normalised_and_checked),
        cmocka_unit_test(test_create_rejects_bad_config),
        cmocka_unit_test(test_concurrent_inference),
        cmocka_unit_test(test_save_load_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
