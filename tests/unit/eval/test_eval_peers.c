/* Unit tests of the peers on a hand-made train matrix where popularity and
 * ItemKNN disagree: a and b took items 0 and 1; c, d and e took 2 and 5;
 * test user t took 0 and holds out 1. Popularity lists 2, 5, 1 (counts 3, 3,
 * 2; item 0 is t's own); ItemKNN lists only 1 (the one item co-occurring with
 * 0, cos = 2 / sqrt(3 · 2)). EASE is checked when this build has it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
#include "eval_peers.h"
#include "eval_split.h"

static cascade_dataset *users_items(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    const char *ids[] = {"a", "b", "c", "d", "e", "t"};
    for (size_t u = 0; u < 6; u++) {
        struct cascade_ds_user usr = {0};
        snprintf(usr.id, sizeof usr.id, "%s", ids[u]);
        assert_int_equal(cascade_dataset_add_user(ds, &usr, NULL), 0);
    }
    for (uint64_t i = 0; i < 6; i++) {
        struct cascade_ds_item it = {.id = 500 + i, .created_at = 1};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    return ds;
}

static void click(cascade_dataset *ds, uint32_t u, uint32_t i)
{
    assert_int_equal(cascade_dataset_add_event_idx(ds, 10, u, i, CASCADE_EV_CLICK, 0), 0);
}

static void test_matrix_and_peers(void **state)
{
    (void)state;
    cascade_dataset *train = users_items(), *test = users_items();
    click(train, 0, 0), click(train, 0, 1), click(train, 1, 0), click(train, 1, 1);
    for (uint32_t u = 2; u <= 4; u++)
        click(train, u, 2), click(train, u, 5), click(train, u, 5); /* a repeat counts once */
    click(train, 5, 0);
    assert_int_equal(cascade_dataset_add_event_idx(train, 9, 5, 3, CASCADE_EV_IMPRESSION, 0), 0);
    click(test, 5, 1);
    struct cascade_eval_split_opts so;
    struct cascade_eval_split sp;
    char err[256] = "";
    cascade_eval_split_defaults(&so);
    assert_int_equal(cascade_eval_split_given(train, test, &so, &sp, err, sizeof err), 0);
    assert_int_equal(sp.n_users, 1);

    struct cascade_eval_matrix m;
    assert_int_equal(cascade_eval_matrix_build(sp.train, &so.weights, &m), 0);
    const uint32_t want_count[] = {3, 2, 3, 0, 0, 3}; /* the impression is no interaction */
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(m.count[i], want_count[i]);
    assert_int_equal(m.off[3] - m.off[2], 2);

    double pct[6];
    assert_int_equal(cascade_eval_popularity_percentiles(m.count, 6, pct), 0);
    struct cascade_eval_peers_opts po;
    struct cascade_eval_peers p;
    cascade_eval_peers_defaults(&po);
    po.quiet = true;
    assert_int_equal(cascade_eval_peers_run(&sp, &m, pct, &po, &p, err, sizeof err), 0);
    struct cascade_eval_list_scores pop, knn;
    cascade_eval_list_acc_scores(&p.acc[CASCADE_EVAL_PEER_POPULARITY], &pop);
    cascade_eval_list_acc_scores(&p.acc[CASCADE_EVAL_PEER_ITEMKNN], &knn);
    assert_true(p.built[CASCADE_EVAL_PEER_POPULARITY]);
    assert_true(p.built[CASCADE_EVAL_PEER_ITEMKNN]);
    /* Popularity: 2, 5, 1 -> the relevant item at rank 3. */
    assert_true(fabs(pop.precision - 0.1) < 1e-12);
    assert_true(fabs(pop.ndcg - 0.5) < 1e-12);
    assert_true(fabs(pop.map - 1.0 / 3.0) < 1e-12);
    assert_true(fabs(pop.coverage - 3.0 / 6.0) < 1e-12);
    /* ItemKNN: only item 1, at rank 1. */
    assert_true(fabs(knn.ndcg - 1.0) < 1e-12);
    assert_true(fabs(knn.map - 1.0) < 1e-12);
    assert_true(fabs(knn.coverage - 1.0 / 6.0) < 1e-12);
    assert_true(fabs(knn.pop_bias - pct[1]) < 1e-12);
#ifdef CASCADE_HAVE_EASE
    struct cascade_eval_list_scores ease;
    cascade_eval_list_acc_scores(&p.acc[CASCADE_EVAL_PEER_EASE], &ease);
    assert_true(p.built[CASCADE_EVAL_PEER_EASE]);
    assert_true(fabs(ease.ndcg - 1.0) < 1e-12); /* item 1 is the only positive weight of 0 */
#else
    assert_false(p.built[CASCADE_EVAL_PEER_EASE]);
    assert_non_null(strstr(p.note[CASCADE_EVAL_PEER_EASE], "not built"));
#endif
    cascade_eval_peers_free(&p);
    cascade_eval_matrix_free(&m);
    cascade_eval_matrix_free(&m);
    cascade_eval_split_free(&sp);
    cascade_dataset_destroy(test);
}

/* Ties go to the lower index; seen items and items at or below the floor
 * are skipped. */
static void test_top_unseen(void **state)
{
    (void)state;
    const float scores[] = {0.5f, 2.0f, 0.0f, 2.0f, -1.0f, 3.0f};
    const uint32_t seen[] = {5};
    uint32_t out[6];
    struct cascade_scored sc[6];
    size_t n = cascade_eval_top_unseen(scores, 6, seen, 1, 0.0f, 10, out, sc);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 0);
    n = cascade_eval_top_unseen(scores, 6, seen, 1, -INFINITY, 2, out, sc);
    assert_int_equal(n, 2);
    assert_int_equal(out[1], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix_and_peers),
        cmocka_unit_test(test_top_unseen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
