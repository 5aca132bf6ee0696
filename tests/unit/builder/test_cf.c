/* Unit tests for the shared CF machinery: the interaction index (per-user
 * cap keeps the newest items, popularity counts every user, transposed
 * lists ascending), the seeded per-item user samples (size, subset, order,
 * determinism), top-k rows (order, ties, truncation), the runner's progress
 * over many rows, and the build.itemcf/swing/usercf config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_config.h"
#include "cf_index.h"
#include "cf_lists.h"
#include "cf_run.h"
#include "cf_test.h"
#include "dataset.h"
#include "error.h"

/* 40 users; user u clicks items 0..(u % 5) at increasing times, so item 0
 * has all 40 users and item 4 has 8. User 0 also likes item 1 (weight 1+2). */
static cascade_dataset *world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    for (uint64_t i = 0; i < 5; i++)
        cf_test_add_item(ds, 100 + i);
    for (int u = 0; u < 40; u++) {
        char id[16];
        snprintf(id, sizeof(id), "u%02d", u);
        cf_test_add_user(ds, id);
        for (int i = 0; i <= u % 5; i++)
            assert_int_equal(cascade_dataset_add_event(ds, 1000 * u + i, id, 100 + (uint64_t)i,
                                                       CASCADE_EV_CLICK, 0),
                             0);
    }
    assert_int_equal(cascade_dataset_add_event(ds, 1, "u00", 101, CASCADE_EV_LIKE, 0), 0);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    return ds;
}

static void test_index_caps_and_popularity(void **state)
{
    (void)state;
    cascade_dataset *ds = world();
    struct cascade_behaviour_weights w;
    struct cascade_cf_index x;
    cascade_behaviour_weights_default(&w);
    struct cascade_cf_index_opts o = {.weights = &w, .max_items_per_user = 2};
    assert_int_equal(cascade_cf_index_build(ds, &o, &x), 0);
    /* u04 clicked items 0..4 in that order: the cap keeps the newest two. */
    long u4 = cascade_dataset_find_user(ds, "u04");
    assert_int_equal(cascade_cf_user_len(&x, (size_t)u4), 2);
    assert_int_equal(x.uitem[x.uoff[u4]], 4);
    assert_int_equal(x.uitem[x.uoff[u4] + 1], 3);
    /* u00: item 0 clicked, item 1 liked (no click): weights 1 and 2. */
    long u0 = cascade_dataset_find_user(ds, "u00");
    assert_int_equal(cascade_cf_user_len(&x, (size_t)u0), 2);
    for (size_t a = x.uoff[u0]; a < x.uoff[u0 + 1]; a++)
        assert_true(x.uw[a] == (x.uitem[a] == 0 ? 1.0f : 2.0f));
    /* Popularity is counted before the cap: item 0 has all 40 users, but
     * only users with at most 2 items (u % 5 = 0 or 1) keep it. */
    assert_int_equal(x.item_popularity[0], 40);
    assert_int_equal(x.item_popularity[4], 8);
    assert_int_equal(cascade_cf_item_len(&x, 0), 16);
    for (size_t i = 0; i < 5; i++)
        for (size_t a = x.ioff[i] + 1; a < x.ioff[i + 1]; a++)
            assert_true(x.iuser[a - 1] < x.iuser[a]);
    assert_null(x.soff); /* no sample requested */
    cascade_cf_index_free(&x);
    cascade_cf_index_free(&x); /* twice is harmless */
    cascade_dataset_destroy(ds);
}

static void test_samples(void **state)
{
    (void)state;
    cascade_dataset *ds = world();
    struct cascade_behaviour_weights w;
    struct cascade_cf_index x, y, z;
    cascade_behaviour_weights_default(&w);
    struct cascade_cf_index_opts o = {.weights = &w, .max_users_per_item = 10, .seed = 1};
    assert_int_equal(cascade_cf_index_build(ds, &o, &x), 0);
    assert_int_equal(cascade_cf_index_build(ds, &o, &y), 0);
    o.seed = 2;
    assert_int_equal(cascade_cf_index_build(ds, &o, &z), 0);
    for (size_t i = 0; i < 5; i++) {
        size_t n = cascade_cf_item_len(&x, i), m = cascade_cf_sample_len(&x, i);
        assert_int_equal(m, n < 10 ? n : 10);
        const uint32_t *s = x.suser + x.soff[i];
        for (size_t a = 0; a < m; a++) {
            bool member = false;
            for (size_t b = x.ioff[i]; b < x.ioff[i + 1]; b++)
                member |= x.iuser[b] == s[a];
            assert_true(member);
            if (a)
                assert_true(s[a - 1] < s[a]); /* ascending, hence distinct */
        }
    }
    /* Same seed, same samples; another seed, another sample of item 0 (40 users). */
    assert_memory_equal(x.soff, y.soff, 6 * sizeof(size_t));
    assert_memory_equal(x.suser, y.suser, x.soff[5] * sizeof(uint32_t));
    assert_true(memcmp(x.suser, z.suser, 10 * sizeof(uint32_t)) != 0);
    cascade_cf_index_free(&x);
    cascade_cf_index_free(&y);
    cascade_cf_index_free(&z);
    cascade_dataset_destroy(ds);
}

static void test_rows_best_first(void **state)
{
    (void)state;
    struct cascade_cf_lists l;
    assert_int_equal(cascade_cf_lists_alloc(&l, 2, 3), 0);
    struct cascade_scored c[] = {
        {.score = 0.5, .id = 30, .idx = 3}, {.score = 0.9, .id = 10, .idx = 1},
        {.score = 0.5, .id = 20, .idx = 2}, {.score = 0.1, .id = 40, .idx = 4},
        {.score = 0.7, .id = 50, .idx = 5},
    };
    cascade_cf_lists_set_row(&l, 1, c, 5);
    assert_int_equal(l.count[0], 0);
    assert_int_equal(l.count[1], 3);
    /* 0.9, 0.7, then the better of the two 0.5s by lower id (20). */
    assert_int_equal(l.nbr[3], 1);
    assert_int_equal(l.nbr[4], 5);
    assert_int_equal(l.nbr[5], 2);
    assert_true(l.score[3] == 0.9f && l.score[5] == 0.5f);
    assert_int_equal(cascade_cf_lists_total(&l), 3);
    cascade_cf_lists_free(&l);
    cascade_cf_lists_free(&l);
}

/* The runner visits every row exactly once, whatever the thread count. */
struct visit_ctx {
    unsigned char *seen;
};
static void *visit_scratch(void *ctx)
{
    return ctx;
}
static void visit_free(void *s)
{
    (void)s;
}
static size_t visit_row(void *ctx, void *scratch, size_t row)
{
    (void)scratch;
    struct visit_ctx *c = ctx;
    c->seen[row]++; /* one writer per row */
    return row % 3;
}

static void test_runner_visits_every_row_once(void **state)
{
    (void)state;
    enum { ROWS = 10007 };
    struct visit_ctx c = {.seen = calloc(ROWS, 1)};
    struct cascade_cf_job job = {.name = "test",
                                 .what = "rows",
                                 .rows = ROWS,
                                 .threads = 3,
                                 .quiet = true,
                                 .ctx = &c,
                                 .scratch_create = visit_scratch,
                                 .scratch_destroy = visit_free,
                                 .row = visit_row};
    size_t work = 0, want = 0;
    double secs = -1;
    assert_int_equal(cascade_cf_run(&job, &work, &secs), 0);
    for (size_t r = 0; r < ROWS; r++) {
        assert_int_equal(c.seen[r], 1);
        want += r % 3;
    }
    assert_int_equal(work, want);
    assert_true(secs >= 0);
    free(c.seen);
}

static void test_config(void **state)
{
    (void)state;
    char err[512];
    struct cascade_itemcf_opts i;
    struct cascade_swing_opts s;
    struct cascade_usercf_opts u;
    cascade_itemcf_defaults(&i);
    cascade_swing_defaults(&s);
    cascade_usercf_defaults(&u);
    cascade_config *c = cascade_config_parse(
        "{\"build\": {\"itemcf\": {\"weights\": {\"click\": 0.5, \"share\": 7}, \"top_k\": 30,"
        " \"max_items_per_user\": 50}, \"swing\": {\"alpha\": 2, \"beta\": 0.5, "
        "\"users_per_item\": 64}, \"usercf\": {\"top_k\": 20, \"seed\": 9}}}",
        "cf.json", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(cascade_cf_config(c, &i, &s, &u, err, sizeof(err)), 0);
    assert_true(i.weights.w[CASCADE_EV_CLICK] == 0.5f);
    assert_true(i.weights.w[CASCADE_EV_SHARE] == 7.0f);
    assert_true(i.weights.w[CASCADE_EV_LIKE] == 2.0f); /* untouched default */
    assert_true(s.weights.w[CASCADE_EV_SHARE] == 7.0f && u.weights.w[CASCADE_EV_CLICK] == 0.5f);
    assert_int_equal(i.top_k, 30);
    assert_int_equal(s.max_items_per_user, 50);
    assert_true(s.alpha == 2 && s.beta == 0.5 && s.alpha1 == 5);
    assert_int_equal(s.max_users_per_item, 64);
    assert_int_equal(u.top_k, 20);
    assert_int_equal(u.seed, 9);
    cascade_config_destroy(c);

    /* The string form, and errors that name the key. */
    c = cascade_config_parse("{\"build\": {\"itemcf\": {\"weights\": \"follow=9\"}}}", "cf.json",
                             err, sizeof(err));
    assert_int_equal(cascade_cf_config(c, &i, &s, &u, err, sizeof(err)), 0);
    assert_true(i.weights.w[CASCADE_EV_FOLLOW] == 9.0f);
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"build\": {\"itemcf\": {\"weights\": {\"clik\": 1}}}}", "cf.json",
                             err, sizeof(err));
    assert_int_equal(cascade_cf_config(c, &i, &s, &u, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "build.itemcf.weights"));
    assert_non_null(strstr(err, "clik"));
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"build\": {\"usercf\": {\"top_k\": 500}}}", "cf.json", err,
                             sizeof(err));
    assert_int_equal(cascade_cf_config(c, &i, &s, &u, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "build.usercf.top_k"));
    cascade_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_caps_and_popularity),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_rows_best_first),
        cmocka_unit_test(test_runner_visits_every_row_once),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
