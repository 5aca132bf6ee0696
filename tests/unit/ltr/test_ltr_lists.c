/* Unit tests for cascade_ltr_lists_partition (services/ltr/ltr_replay.c):
 * reordering the replayed groups in place gives, bit for bit, what copying
 * the chosen groups out and then the others (each in their order) gives —
 * the copy train ltr made before (issue 15) — for every mix of chosen
 * groups, group sizes from 1 row to thousands, NaN features included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ltr_features.h"
#include "ltr_replay.h"
#include "rng.h"

#define F CASCADE_LTR_FEATURES

/* Lists of n_groups groups with sizes in [1, max_rows], every value drawn
 * (a tenth of the features NaN), item ids unique. */
static void make_lists(struct cascade_ltr_lists *l, size_t n_groups, size_t max_rows,
                       struct cascade_rng *rng)
{
    memset(l, 0, sizeof *l);
    l->n_groups = n_groups;
    l->off = malloc((n_groups + 1) * sizeof *l->off);
    l->user = malloc((n_groups + 1) * sizeof *l->user);
    assert_non_null(l->off);
    assert_non_null(l->user);
    l->off[0] = 0;
    for (size_t g = 0; g < n_groups; g++) {
        l->off[g + 1] = l->off[g] + 1 + (size_t)cascade_rng_below(rng, max_rows);
        l->user[g] = (uint32_t)cascade_rng_below(rng, 1u << 30);
    }
    l->n_rows = l->off[n_groups];
    l->X = malloc((l->n_rows + 1) * F * sizeof *l->X);
    l->y = malloc((l->n_rows + 1) * sizeof *l->y);
    l->item = malloc((l->n_rows + 1) * sizeof *l->item);
    assert_non_null(l->X);
    assert_non_null(l->y);
    assert_non_null(l->item);
    for (size_t r = 0; r < l->n_rows; r++) {
        for (size_t f = 0; f < F; f++)
            l->X[r * F + f] =
                cascade_rng_uniform(rng) < 0.1 ? NAN : (float)(cascade_rng_uniform(rng) - 0.5);
        l->y[r] = cascade_rng_uniform(rng) < 0.2 ? 1.0f : 0.0f;
        l->item[r] = 1000000 + r;
    }
}

/* The reference: the chosen groups copied out in order, then the others. */
static void expected_order(const struct cascade_ltr_lists *l, const bool *first,
                           struct cascade_ltr_lists *e)
{
    memset(e, 0, sizeof *e);
    e->n_groups = l->n_groups;
    e->n_rows = l->n_rows;
    e->off = malloc((l->n_groups + 1) * sizeof *e->off);
    e->user = malloc((l->n_groups + 1) * sizeof *e->user);
    e->X = malloc((l->n_rows + 1) * F * sizeof *e->X);
    e->y = malloc((l->n_rows + 1) * sizeof *e->y);
    e->item = malloc((l->n_rows + 1) * sizeof *e->item);
    assert_true(e->off && e->user && e->X && e->y && e->item);
    size_t k = 0, rows = 0;
    e->off[0] = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t g = 0; g < l->n_groups; g++) {
            if (first[g] != (pass == 1))
                continue;
            size_t n = l->off[g + 1] - l->off[g];
            memcpy(e->X + rows * F, l->X + l->off[g] * F, n * F * sizeof *e->X);
            memcpy(e->y + rows, l->y + l->off[g], n * sizeof *e->y);
            memcpy(e->item + rows, l->item + l->off[g], n * sizeof *e->item);
            rows += n;
            e->user[k] = l->user[g];
            e->off[++k] = rows;
        }
}

/* Partition random lists with chosen groups drawn at share p and compare
 * with the reference copy, bit for bit. */
static void check_partition(size_t n_groups, size_t max_rows, double p, uint64_t seed)
{
    struct cascade_rng rng;
    struct cascade_ltr_lists l, e;
    cascade_rng_seed(&rng, seed);
    make_lists(&l, n_groups, max_rows, &rng);
    bool *first = calloc(n_groups + 1, sizeof *first);
    assert_non_null(first);
    size_t want = 0;
    for (size_t g = 0; g < n_groups; g++) {
        first[g] = cascade_rng_uniform(&rng) < p;
        want += first[g];
    }
    expected_order(&l, first, &e);
    size_t n_first = 12345;
    assert_int_equal(cascade_ltr_lists_partition(&l, first, &n_first), 0);
    assert_int_equal(n_first, want);
    for (size_t g = 0; g < n_groups; g++)
        assert_int_equal(first[g], g < want);
    assert_int_equal(l.n_groups, n_groups);
    assert_int_equal(l.n_rows, e.n_rows);
    assert_memory_equal(l.off, e.off, (n_groups + 1) * sizeof *l.off);
    if (n_groups) {
        assert_memory_equal(l.user, e.user, n_groups * sizeof *l.user);
        assert_memory_equal(l.X, e.X, l.n_rows * F * sizeof *l.X);
        assert_memory_equal(l.y, e.y, l.n_rows * sizeof *l.y);
        assert_memory_equal(l.item, e.item, l.n_rows * sizeof *l.item);
    }
    free(first);
    cascade_ltr_lists_free(&l);
    cascade_ltr_lists_free(&e);
}

static void test_partition_mixed(void **state)
{
    (void)state;
    /* Validation share 0.3 as train ltr draws it, small and long groups. */
    for (uint64_t seed = 1; seed <= 20; seed++)
        check_partition(50, 40, 0.7, seed);
    check_partition(300, 2000, 0.7, 77);
    check_partition(1000, 3, 0.5, 78);
}

static void test_partition_all_or_none(void **state)
{
    (void)state;
    check_partition(40, 30, 1.0, 5); /* nothing moves */
    check_partition(40, 30, 0.0, 6); /* nothing moves */
    check_partition(1, 10, 1.0, 7);
    check_partition(0, 10, 0.5, 8); /* no group at all */
}

static void test_partition_two_groups_swap(void **state)
{
    (void)state;
    /* The second group only: both groups trade places (one long cycle). */
    struct cascade_rng rng;
    struct cascade_ltr_lists l;
    cascade_rng_seed(&rng, 9);
    make_lists(&l, 2, 500, &rng);
    size_t n0 = l.off[1], n1 = l.off[2] - l.off[1];
    uint64_t item0 = l.item[0], item1 = l.item[n0];
    bool first[2] = {false, true};
    size_t n_first = 0;
    assert_int_equal(cascade_ltr_lists_partition(&l, first, &n_first), 0);
    assert_int_equal(n_first, 1);
    assert_int_equal(l.off[1], n1);
    assert_int_equal(l.item[0], item1);
    assert_int_equal(l.item[n1], item0);
    cascade_ltr_lists_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_mixed),
        cmocka_unit_test(test_partition_all_or_none),
        cmocka_unit_test(test_partition_two_groups_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
