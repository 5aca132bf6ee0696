/* Unit tests for common/ml/negsample: the alias table reproduces q ∝ c^0.75
 * exactly, seeded draws match q in frequency, hard negatives are mixed in by
 * the configured ratio, and excluded (exposed-but-unclicked) items never come
 * out as negatives. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "negsample.h"
#include "test_nn_check.h"

/* A hand distribution, including an item with no clicks. */
static const double clicks[] = {100, 50, 10, 0, 1, 30, 7, 200};
enum { N = sizeof(clicks) / sizeof(clicks[0]) };

static cascade_negsample *make(double hard_ratio)
{
    struct cascade_negsample_config c;
    cascade_negsample *s = NULL;
    char err[256] = "";
    cascade_negsample_config_default(&c);
    c.hard_ratio = hard_ratio;
    if (cascade_negsample_create(clicks, N, &c, &s, err, sizeof(err)) != 0)
        fail_msg("create: %s", err);
    return s;
}

static double expected_q(size_t i)
{
    double z = 0.0;
    for (size_t j = 0; j < N; j++)
        z += pow(clicks[j], 0.75);
    return pow(clicks[i], 0.75) / z;
}

static void test_prob_is_power_law(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.0);
    double sum = 0.0, total = 0.0;
    for (size_t j = 0; j < N; j++)
        total += clicks[j];
    for (uint32_t i = 0; i < N; i++) {
        assert_near(cascade_negsample_prob(s, i), expected_q(i), 1e-12);
        if (clicks[i] > 0)
            assert_near(cascade_negsample_logq_inbatch(s, i), log(clicks[i] / total), 1e-12);
        else
            assert_true(isinf(cascade_negsample_logq_inbatch(s, i)));
        sum += cascade_negsample_prob(s, i);
    }
    assert_near(sum, 1.0, 1e-12);
    assert_near(cascade_negsample_logq(s, 0), log(expected_q(0)), 1e-12);
    assert_true(isinf(cascade_negsample_logq(s, 3))); /* never sampled: log 0 */
    assert_true(cascade_negsample_prob(s, N) == 0.0);
    cascade_negsample_destroy(s);
}

/* The mass each item receives from the table, Σ over columns of the kept
 * part and alias parts, divided by n, must equal q exactly (up to rounding). */
static void test_alias_table_mass(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.0);
    double mass[N] = {0};
    for (uint32_t i = 0; i < N; i++) {
        double keep;
        uint32_t alias;
        cascade_negsample_alias_column(s, i, &keep, &alias);
        assert_true(keep >= 0.0 && keep <= 1.0 + 1e-12);
        assert_true(alias < N);
        mass[i] += keep / N;
        mass[alias] += (1.0 - keep) / N;
    }
    for (uint32_t i = 0; i < N; i++)
        assert_near(mass[i], expected_q(i), 1e-12);
    assert_near(mass[3], 0.0, 1e-15); /* the unclicked item gets nothing */
    cascade_negsample_destroy(s);
}

static void test_draw_frequencies(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.0);
    struct cascade_rng rng;
    enum { DRAWS = 400000 };
    size_t count[N] = {0};
    cascade_rng_seed(&rng, 42);
    for (size_t d = 0; d < DRAWS; d++)
        count[cascade_negsample_easy(s, &rng)]++;
    for (size_t i = 0; i < N; i++) {
        double q = expected_q(i), f = (double)count[i] / DRAWS;
        /* 5 standard deviations of a binomial proportion, deterministic seed. */
        double tol = 5.0 * sqrt(q * (1.0 - q) / DRAWS) + 1e-9;
        if (fabs(f - q) > tol)
            fail_msg("item %zu: frequency %.5f, expected %.5f ± %.5f", i, f, q, tol);
    }
    assert_int_equal(count[3], 0);
    /* The same seed gives the same stream. */
    struct cascade_rng a, b;
    cascade_rng_seed(&a, 7);
    cascade_rng_seed(&b, 7);
    for (int d = 0; d < 1000; d++)
        assert_int_equal(cascade_negsample_easy(s, &a), cascade_negsample_easy(s, &b));
    cascade_negsample_destroy(s);
}

/* Exposed-but-unclicked items and positives are never drawn, easy or hard. */
static void test_exclusions_never_drawn(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.5);
    struct cascade_rng rng;
    /* 7 and 0 carry most of the mass: excluding them forces many rejections. */
    const uint32_t exclude[] = {7, 0, 5};
    const uint32_t hard[] = {5, 2, 6, 7, 2};
    struct cascade_negsample_request req = {exclude, 3, hard, 5};
    uint32_t out[10];
    enum cascade_negsample_kind kind[10];
    float logq[10];
    size_t seen[N] = {0};
    cascade_rng_seed(&rng, 3);
    for (int round = 0; round < 2000; round++) {
        size_t got = cascade_negsample_draw(s, &rng, &req, 10, out, kind, logq);
        assert_int_equal(got, 10);
        for (size_t i = 0; i < got; i++) {
            assert_true(out[i] != 7 && out[i] != 0 && out[i] != 5);
            seen[out[i]]++;
        }
    }
    assert_true(seen[2] > 0 && seen[6] > 0 && seen[1] > 0);
    cascade_negsample_destroy(s);
}

/* round(k·ratio) hard negatives, without replacement, from the eligible
 * candidates, with logq = log(h/H); the rest easy with log q. */
static void test_hard_ratio(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.25);
    struct cascade_rng rng;
    const uint32_t exclude[] = {1};
    const uint32_t hard[] = {2, 4, 6, 1, 3};
    struct cascade_negsample_request req = {exclude, 1, hard, 5};
    uint32_t out[8];
    enum cascade_negsample_kind kind[8];
    float logq[8];
    cascade_rng_seed(&rng, 11);
    for (int round = 0; round < 200; round++) {
        assert_int_equal(cascade_negsample_draw(s, &rng, &req, 8, out, kind, logq), 8);
        size_t n_hard = 0;
        for (size_t i = 0; i < 8; i++) {
            if (kind[i] == CASCADE_NEGSAMPLE_HARD) {
                n_hard++;
                assert_true(out[i] == 2 || out[i] == 4 || out[i] == 6 || out[i] == 3);
                assert_near(logq[i], log(2.0 / 4.0), 1e-6);
            } else {
                assert_int_equal(kind[i], CASCADE_NEGSAMPLE_EASY);
                assert_near(logq[i], log(expected_q(out[i])), 1e-5);
            }
        }
        assert_int_equal(n_hard, 2); /* round(8 · 0.25) */
        assert_true(out[0] != out[1]);
    }
    /* Fewer eligible hard candidates than wanted: the rest are easy. */
    const uint32_t few[] = {1, 6};
    struct cascade_negsample_request req2 = {exclude, 1, few, 2};
    assert_int_equal(cascade_negsample_draw(s, &rng, &req2, 8, out, kind, logq), 8);
    assert_int_equal(kind[0], CASCADE_NEGSAMPLE_HARD);
    assert_int_equal(out[0], 6);
    assert_near(logq[0], 0.0, 1e-7);
    assert_int_equal(kind[1], CASCADE_NEGSAMPLE_EASY);
    cascade_negsample_destroy(s);
}

/* When every item with mass is excluded, draw gives up instead of looping. */
static void test_gives_up(void **state)
{
    (void)state;
    cascade_negsample *s = make(0.0);
    struct cascade_rng rng;
    const uint32_t all[] = {0, 1, 2, 4, 5, 6, 7};
    struct cascade_negsample_request req = {all, 7, NULL, 0};
    uint32_t out[4];
    cascade_rng_seed(&rng, 1);
    assert_int_equal(cascade_negsample_draw(s, &rng, &req, 4, out, NULL, NULL), 0);
    cascade_negsample_destroy(s);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct cascade_negsample_config c;
    cascade_negsample *s = NULL;
    char err[256] = "";
    const double neg[] = {1, -2};
    const double zero[] = {0, 0};
    cascade_negsample_config_default(&c);
    assert_int_equal(cascade_negsample_create(neg, 2, &c, &s, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "item 1"));
    assert_null(s);
    assert_int_equal(cascade_negsample_create(zero, 2, &c, &s, err, sizeof(err)), CASCADE_EINVAL);
    assert_int_equal(cascade_negsample_create(clicks, 0, &c, &s, err, sizeof(err)), CASCADE_EINVAL);
    c.hard_ratio = 1.5;
    assert_int_equal(cascade_negsample_create(clicks, N, &c, &s, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "hard_ratio"));
    /* Smoothing gives unclicked items mass. */
    cascade_negsample_config_default(&c);
    c.smoothing = 1.0;
    assert_int_equal(cascade_negsample_create(zero, 2, &c, &s, err, sizeof(err)), 0);
    assert_near(cascade_negsample_prob(s, 0), 0.5, 1e-12);
    cascade_negsample_destroy(s);
    cascade_negsample_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prob_is_power_law), cmocka_unit_test(test_alias_table_mass),
        cmocka_unit_test(test_draw_frequencies),  cmocka_unit_test(test_exclusions_never_drawn),
        cmocka_unit_test(test_hard_ratio),        cmocka_unit_test(test_gives_up),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
