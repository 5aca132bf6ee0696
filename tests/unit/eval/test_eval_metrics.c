/* Unit tests for the evaluation metrics on hand-computed examples: hits,
 * recall@K, hit@K, NDCG@K, precision@K and AP@K (binary relevance, including
 * K beyond the list and an empty relevant set), the accumulators' averages,
 * coverage and popularity bias, and the popularity percentiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include <cmocka.h>

#include "error.h"
#include "eval_metrics.h"

/* ranked: 5 3 9 1 7 (best first); relevant: {1, 3, 8}. */
static const uint32_t ranked[] = {5, 3, 9, 1, 7};
static const uint32_t rel[] = {1, 3, 8};

static void test_hits_and_recall(void **state)
{
    (void)state;
    assert_int_equal(cascade_eval_hits(ranked, 5, 1, rel, 3), 0);
    assert_int_equal(cascade_eval_hits(ranked, 5, 2, rel, 3), 1);
    assert_int_equal(cascade_eval_hits(ranked, 5, 5, rel, 3), 2);
    assert_int_equal(cascade_eval_hits(ranked, 5, 100, rel, 3), 2); /* K past the list */
    assert_true(fabs(cascade_eval_recall(ranked, 5, 2, rel, 3) - 1.0 / 3.0) < 1e-12);
    assert_true(fabs(cascade_eval_recall(ranked, 5, 5, rel, 3) - 2.0 / 3.0) < 1e-12);
    assert_true(cascade_eval_recall(ranked, 5, 5, rel, 0) == 0.0);
    assert_true(cascade_eval_recall(ranked, 0, 5, rel, 3) == 0.0);
}

static void test_hit(void **state)
{
    (void)state;
    assert_true(cascade_eval_hit(ranked, 5, 1, rel, 3) == 0.0);
    assert_true(cascade_eval_hit(ranked, 5, 2, rel, 3) == 1.0);
    assert_true(cascade_eval_hit(ranked, 5, 50, rel, 3) == 1.0);
    assert_true(cascade_eval_hit(ranked, 5, 50, rel, 0) == 0.0);
}

static void test_ndcg(void **state)
{
    (void)state;
    /* @5: hits at ranks 2 and 4; ideal: 3 hits at ranks 1..3. */
    double dcg5 = 1.0 / log2(3.0) + 1.0 / log2(5.0);
    double idcg5 = 1.0 + 1.0 / log2(3.0) + 1.0 / log2(4.0);
    assert_true(fabs(cascade_eval_ndcg(ranked, 5, 5, rel, 3) - dcg5 / idcg5) < 1e-12);
    assert_true(fabs(cascade_eval_ndcg(ranked, 5, 5, rel, 3) - 0.498189) < 1e-6);
    /* @2: one hit at rank 2; ideal has min(3, 2) = 2 hits. */
    assert_true(fabs(cascade_eval_ndcg(ranked, 5, 2, rel, 3) - 0.386853) < 1e-6);
    assert_true(cascade_eval_ndcg(ranked, 5, 1, rel, 3) == 0.0);
    /* A perfect ranking scores 1 at every K. */
    const uint32_t perfect[] = {8, 1, 3, 4};
    assert_true(fabs(cascade_eval_ndcg(perfect, 4, 3, rel, 3) - 1.0) < 1e-12);
    assert_true(fabs(cascade_eval_ndcg(perfect, 4, 10, rel, 3) - 1.0) < 1e-12);
    assert_true(cascade_eval_ndcg(perfect, 4, 10, rel, 0) == 0.0);
}

static void test_accumulator(void **state)
{
    (void)state;
    struct cascade_eval_acc a;
    const size_t ks[] = {2, 5};
    const uint32_t ranked_b[] = {2, 5};
    const uint32_t rel_b[] = {2};
    assert_int_equal(cascade_eval_acc_init(&a, ks, 2, 10), 0);
    cascade_eval_acc_add(&a, ranked, 5, rel, 3, 300);
    cascade_eval_acc_add(&a, ranked_b, 2, rel_b, 1, 100);
    cascade_eval_acc_add(&a, NULL, 0, rel_b, 1, 20); /* an empty list */
    assert_int_equal(a.users, 3);
    assert_int_equal(a.candidates, 7);
    assert_int_equal(a.empty, 1);
    assert_int_equal(a.time_us, 420);
    assert_true(fabs(a.recall[0] - (1.0 / 3.0 + 1.0)) < 1e-12);
    assert_true(fabs(a.recall[1] - (2.0 / 3.0 + 1.0)) < 1e-12);
    assert_true(fabs(a.hit[0] - 2.0) < 1e-12);
    assert_true(fabs(a.ndcg[0] - (0.386853 + 1.0)) < 1e-6);
    /* Top 2: {5, 3} and {2, 5}; top 5 adds 9, 1, 7. */
    assert_true(fabs(cascade_eval_acc_coverage(&a, 2) - 0.3) < 1e-12);
    assert_true(fabs(cascade_eval_acc_coverage(&a, 5) - 0.6) < 1e-12);
    assert_true(cascade_eval_acc_coverage(&a, 1) == 0.2); /* 5 and 2 were first */
    cascade_eval_acc_free(&a);
    cascade_eval_acc_free(&a); /* twice is harmless */
}

static void test_accumulator_cuts_at_largest_k(void **state)
{
    (void)state;
    struct cascade_eval_acc a;
    const size_t ks[] = {2};
    const uint32_t one[] = {9};
    assert_int_equal(cascade_eval_acc_init(&a, ks, 1, 10), 0);
    cascade_eval_acc_add(&a, ranked, 5, one, 1, 0); /* 9 is third: beyond K = 2 */
    assert_int_equal(a.candidates, 2);
    assert_true(a.recall[0] == 0.0);
    assert_true(cascade_eval_acc_coverage(&a, 100) == 0.2); /* only the first two count */
    cascade_eval_acc_free(&a);
}

static void test_accumulator_rejects_bad_ks(void **state)
{
    (void)state;
    struct cascade_eval_acc a;
    const size_t descending[] = {100, 50};
    const size_t zero[] = {0};
    const size_t nine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(cascade_eval_acc_init(&a, descending, 2, 10), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_acc_init(&a, zero, 1, 10), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_acc_init(&a, nine, 9, 10), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_acc_init(&a, nine, 0, 10), CASCADE_EINVAL);
    cascade_eval_acc_free(&a);
}

static void test_precision_and_ap(void **state)
{
    (void)state;
    assert_true(fabs(cascade_eval_precision(ranked, 5, 2, rel, 3) - 0.5) < 1e-12);
    assert_true(fabs(cascade_eval_precision(ranked, 5, 5, rel, 3) - 0.4) < 1e-12);
    assert_true(fabs(cascade_eval_precision(ranked, 5, 10, rel, 3) - 0.2) < 1e-12);
    /* Hits at ranks 2 and 4: (1/2 + 2/4) / min(3, 5). */
    assert_true(fabs(cascade_eval_ap(ranked, 5, 5, rel, 3) - 1.0 / 3.0) < 1e-12);
    /* K = 2: (1/2) / min(3, 2). */
    assert_true(fabs(cascade_eval_ap(ranked, 5, 2, rel, 3) - 0.25) < 1e-12);
    const uint32_t one[] = {5};
    assert_true(fabs(cascade_eval_ap(ranked, 5, 10, one, 1) - 1.0) < 1e-12);
    assert_true(cascade_eval_ap(ranked, 5, 10, rel, 0) == 0.0);
}

static void test_popularity_percentiles(void **state)
{
    (void)state;
    const uint32_t counts[] = {5, 0, 5, 2};
    double pct[4];
    assert_int_equal(cascade_eval_popularity_percentiles(counts, 4, pct), 0);
    assert_true(pct[1] == 0.0);
    assert_true(fabs(pct[3] - 0.25) < 1e-12);
    assert_true(fabs(pct[0] - 0.5) < 1e-12);
    assert_true(fabs(pct[2] - 0.5) < 1e-12);
}

/* K = 2 over 4 items; user A: list {0, 3}, relevant {3}; user B: no list,
 * relevant {1}. */
static void test_list_accumulator(void **state)
{
    (void)state;
    const uint32_t counts[] = {5, 0, 5, 2};
    double pct[4];
    struct cascade_eval_list_acc a;
    struct cascade_eval_list_scores sc;
    assert_int_equal(cascade_eval_popularity_percentiles(counts, 4, pct), 0);
    assert_int_equal(cascade_eval_list_acc_init(&a, 0, 4, pct), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_list_acc_init(&a, 2, 4, pct), 0);
    const uint32_t list_a[] = {0, 3, 2}, rel_a[] = {3}, rel_b[] = {1};
    cascade_eval_list_acc_add(&a, list_a, 3, rel_a, 1); /* item 2 is past K */
    cascade_eval_list_acc_add(&a, NULL, 0, rel_b, 1);
    cascade_eval_list_acc_scores(&a, &sc);
    assert_int_equal(sc.users, 2);
    assert_int_equal(sc.empty, 1);
    assert_true(fabs(sc.precision - 0.25) < 1e-12);
    assert_true(fabs(sc.recall - 0.5) < 1e-12);
    assert_true(fabs(sc.ndcg - 0.5 / log2(3.0)) < 1e-12);
    assert_true(fabs(sc.map - 0.25) < 1e-12);
    assert_true(fabs(sc.coverage - 0.5) < 1e-12);
    assert_true(fabs(sc.pop_bias - (0.5 + 0.25) / 2) < 1e-12);
    cascade_eval_list_acc_free(&a);
    cascade_eval_list_acc_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_recall),
        cmocka_unit_test(test_hit),
        cmocka_unit_test(test_ndcg),
        cmocka_unit_test(test_accumulator),
        cmocka_unit_test(test_accumulator_cuts_at_largest_k),
        cmocka_unit_test(test_accumulator_rejects_bad_ks),
        cmocka_unit_test(test_precision_and_ap),
        cmocka_unit_test(test_popularity_percentiles),
        cmocka_unit_test(test_list_accumulator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
