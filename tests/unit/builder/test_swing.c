/* Unit tests for Swing: the formula on a hand-computed example, the
 * small-circle effect (items shared by one tight pair of users score lower
 * than items shared by unrelated users), top-k order and ties, the users-
 * per-item cap, determinism for a seed across thread counts, and option
 * checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_test.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "swing.h"

#define NEAR(x, y) assert_true(fabs((double)(x) - (double)(y)) < 1e-6 * (1 + fabs((double)(y))))

/* user clicks each of items[0..n) (one second apart from ts). */
static void clicks(cascade_dataset *ds, const char *user, int64_t ts, const uint64_t *items,
                   size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            cascade_dataset_add_event(ds, ts + (int64_t)i, user, items[i], CASCADE_EV_CLICK, 0), 0);
}

static uint32_t count_of(const cascade_dataset *ds, const struct cascade_cf_lists *r, uint64_t id)
{
    return r->count[cascade_dataset_find_item(ds, id)];
}

/* Neighbour t of item id and its score. */
static uint64_t nbr(const cascade_dataset *ds, const struct cascade_cf_lists *r, uint64_t id,
                    size_t t, double *score)
{
    long i = cascade_dataset_find_item(ds, id);
    assert_true(i >= 0 && t < r->count[i]);
    *score = r->score[(size_t)i * r->k + t];
    return ds->items[r->nbr[(size_t)i * r->k + t]].id;
}

static void compute(const cascade_dataset *ds, struct cascade_swing_opts *o,
                    struct cascade_cf_lists *r)
{
    char err[256];
    o->quiet = true;
    assert_int_equal(cascade_swing_compute(ds, o, r, err, sizeof(err)), 0);
}

/* u1 {A,B}, u2 {A,B,C}, u3 {B,C,D}: |I| = 2, 3, 3.
 *   sim(A,B) = w1·w2 / (1 + |{A,B}|)      (pair u1,u2)
 *   sim(B,C) = w2·w3 / (1 + |{B,C}|)      (pair u2,u3)
 *   A–C and B–D, C–D share only one user: no pair, no similarity. */
static void test_hand_computed(void **state)
{
    (void)state;
    enum { A = 11, B = 12, C = 13, D = 14 };
    cascade_dataset *ds = cascade_dataset_create();
    cf_test_add_user(ds, "u1");
    cf_test_add_user(ds, "u2");
    cf_test_add_user(ds, "u3");
    for (uint64_t id = A; id <= D; id++)
        cf_test_add_item(ds, id);
    clicks(ds, "u1", 10, (const uint64_t[]){A, B}, 2);
    clicks(ds, "u2", 20, (const uint64_t[]){A, B, C}, 3);
    clicks(ds, "u3", 30, (const uint64_t[]){B, C, D}, 3);
    struct cascade_swing_opts o;
    struct cascade_cf_lists r;
    double s;
    cascade_swing_defaults(&o);
    compute(ds, &o, &r);
    double w1 = pow(2 + 5.0, -0.3), w2 = pow(3 + 5.0, -0.3), w3 = pow(3 + 5.0, -0.3);
    assert_int_equal(count_of(ds, &r, A), 1);
    assert_int_equal(nbr(ds, &r, A, 0, &s), B);
    NEAR(s, w1 * w2 / 3);
    /* B: A (w1·w2/3) ranks above C (w2·w3/3) because u1 has fewer items. */
    assert_int_equal(count_of(ds, &r, B), 2);
    assert_int_equal(nbr(ds, &r, B, 0, &s), A);
    NEAR(s, w1 * w2 / 3);
    assert_int_equal(nbr(ds, &r, B, 1, &s), C);
    NEAR(s, w2 * w3 / 3);
    assert_int_equal(count_of(ds, &r, C), 1);
    assert_int_equal(nbr(ds, &r, C, 0, &s), B);
    assert_int_equal(count_of(ds, &r, D), 0);
    cascade_cf_lists_free(&r);

    /* The parameters are the ones of the formula: α = 0, α₁ = 0, β = 1. */
    o.alpha = 0;
    o.alpha1 = 0;
    o.beta = 1;
    compute(ds, &o, &r);
    assert_int_equal(nbr(ds, &r, B, 0, &s), A);
    NEAR(s, (1.0 / 2) * (1.0 / 3) / 2);
    assert_int_equal(nbr(ds, &r, B, 1, &s), C);
    NEAR(s, (1.0 / 3) * (1.0 / 3) / 2);
    cascade_cf_lists_free(&r);

    /* Top-k 1 keeps B's best. */
    cascade_swing_defaults(&o);
    o.top_k = 1;
    compute(ds, &o, &r);
    assert_int_equal(count_of(ds, &r, B), 1);
    assert_int_equal(nbr(ds, &r, B, 0, &s), A);
    cascade_cf_lists_free(&r);
    cascade_dataset_destroy(ds);
}

/* A tight pair u1, u2 share X, Y and three more items; unrelated users u3,
 * u4 share only Z, W (each has three items of their own). Every user has 5
 * items, so all w_u are equal and only the pair's overlap differs:
 *   sim(X,Y) = w²/(1 + 5),  sim(Z,W) = w²/(1 + 2). */
static void test_small_circle_scores_lower(void **state)
{
    (void)state;
    enum { X = 1, Y = 2, Z = 3, W = 4, P = 5, Q = 6, R = 7, A1 = 8, A2, A3, B1, B2, B3 };
    cascade_dataset *ds = cascade_dataset_create();
    cf_test_add_user(ds, "u1");
    cf_test_add_user(ds, "u2");
    cf_test_add_user(ds, "u3");
    cf_test_add_user(ds, "u4");
    for (uint64_t id = X; id <= B3; id++)
        cf_test_add_item(ds, id);
    clicks(ds, "u1", 100, (const uint64_t[]){X, Y, P, Q, R}, 5);
    clicks(ds, "u2", 200, (const uint64_t[]){X, Y, P, Q, R}, 5);
    clicks(ds, "u3", 300, (const uint64_t[]){Z, W, A1, A2, A3}, 5);
    clicks(ds, "u4", 400, (const uint64_t[]){Z, W, B1, B2, B3}, 5);
    struct cascade_swing_opts o;
    struct cascade_cf_lists r;
    double s_xy, s_zw, s;
    cascade_swing_defaults(&o);
    compute(ds, &o, &r);
    double w = pow(5 + 5.0, -0.3);
    assert_int_equal(nbr(ds, &r, X, 0, &s_xy), Y);
    assert_int_equal(nbr(ds, &r, Z, 0, &s_zw), W);
    NEAR(s_xy, w * w / 6);
    NEAR(s_zw, w * w / 3);
    assert_true(s_zw > s_xy);
    /* X's neighbours all tie at w²/6: lower item id first. */
    assert_int_equal(count_of(ds, &r, X), 4);
    assert_int_equal(nbr(ds, &r, X, 1, &s), P);
    assert_int_equal(nbr(ds, &r, X, 2, &s), Q);
    assert_int_equal(nbr(ds, &r, X, 3, &s), R);
    NEAR(s, w * w / 6);
    /* Z's only neighbour is W: A1..B3 have one user each. */
    assert_int_equal(count_of(ds, &r, Z), 1);
    assert_int_equal(count_of(ds, &r, A1), 0);
    cascade_cf_lists_free(&r);
    cascade_dataset_destroy(ds);
}

/* Ten users who all have A and B: with a cap of 4 users per item, A–B is
 * scored from C(4,2) = 6 pairs instead of C(10,2) = 45. */
static void test_users_per_item_cap(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    cf_test_add_item(ds, 1);
    cf_test_add_item(ds, 2);
    for (int u = 0; u < 10; u++) {
        char id[16];
        snprintf(id, sizeof(id), "u%d", u);
        cf_test_add_user(ds, id);
        clicks(ds, id, 10 * u, (const uint64_t[]){1, 2}, 2);
    }
    struct cascade_swing_opts o;
    struct cascade_cf_lists r;
    double s;
    double pair = pow(2 + 5.0, -0.6) / (1 + 2);
    cascade_swing_defaults(&o);
    compute(ds, &o, &r);
    assert_int_equal(nbr(ds, &r, 1, 0, &s), 2);
    NEAR(s, 45 * pair);
    cascade_cf_lists_free(&r);
    o.max_users_per_item = 4;
    compute(ds, &o, &r);
    assert_int_equal(nbr(ds, &r, 1, 0, &s), 2);
    NEAR(s, 6 * pair);
    assert_int_equal(nbr(ds, &r, 2, 0, &s), 1);
    NEAR(s, 6 * pair);
    cascade_cf_lists_free(&r);
    cascade_dataset_destroy(ds);
}

static cascade_dataset *small_world(void)
{
    return cf_test_generated_world(1000, 60000, 5);
}

/* Same seed: identical lists for 1 and 3 threads; another seed samples
 * other users (with a small cap) and changes some lists. */
static void test_seeded_and_thread_independent(void **state)
{
    (void)state;
    cascade_dataset *ds = small_world();
    struct cascade_swing_opts o;
    struct cascade_cf_lists r1, r2, r3;
    cascade_swing_defaults(&o);
    o.top_k = 20;
    o.max_users_per_item = 8;
    o.threads = 1;
    compute(ds, &o, &r1);
    o.threads = 3;
    compute(ds, &o, &r2);
    assert_true(cf_test_same_lists(&r1, &r2));
    o.seed = 2;
    compute(ds, &o, &r3);
    assert_false(cf_test_same_lists(&r1, &r3));
    size_t with_lists = 0;
    for (size_t i = 0; i < r1.n; i++) {
        with_lists += r1.count[i] > 0;
        for (uint32_t t = 0; t < r1.count[i]; t++) {
            assert_int_not_equal(r1.nbr[i * r1.k + t], i);
            assert_true(r1.score[i * r1.k + t] > 0);
            if (t)
                assert_true(r1.score[i * r1.k + t] <= r1.score[i * r1.k + t - 1]);
        }
    }
    assert_true(with_lists > r1.n / 2);
    assert_true(r1.pairs > 0);
    cascade_cf_lists_free(&r1);
    cascade_cf_lists_free(&r2);
    cascade_cf_lists_free(&r3);
    cascade_dataset_destroy(ds);
}

static void test_bad_options(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_swing_opts o;
    struct cascade_cf_lists r;
    char err[256];
    cascade_swing_defaults(&o);
    o.top_k = 201;
    assert_int_equal(cascade_swing_compute(ds, &o, &r, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "top-k"));
    cascade_swing_defaults(&o);
    o.max_users_per_item = 1;
    assert_int_equal(cascade_swing_compute(ds, &o, &r, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "users per item"));
    cascade_swing_defaults(&o);
    o.beta = -1;
    assert_int_equal(cascade_swing_compute(ds, &o, &r, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "beta"));
    cascade_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_small_circle_scores_lower),
        cmocka_unit_test(test_users_per_item_cap),
        cmocka_unit_test(test_seeded_and_thread_independent),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
