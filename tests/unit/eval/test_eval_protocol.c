/* Unit tests of the random and the given splits (eval_split.h): the random
 * split keeps round(0.75 n) of each user's items in train, holds out the
 * rest with every event on them (impressions included), is disjoint and
 * complete, the same for a seed and different across seeds; the given split
 * reads held-out items from a second data set, without the user's train
 * items, skipping unknown users and items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
#include "eval_split.h"

#define N_ITEMS 40

static void add_users_items(cascade_dataset *ds, size_t n_users)
{
    for (size_t u = 0; u < n_users; u++) {
        struct cascade_ds_user usr = {0};
        snprintf(usr.id, sizeof usr.id, "u%zu", u);
        assert_int_equal(cascade_dataset_add_user(ds, &usr, NULL), 0);
    }
    for (uint64_t i = 0; i < N_ITEMS; i++) {
        struct cascade_ds_item it = {.id = 1000 + i, .created_at = 1};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
}

/* u0: 20 items clicked, each shown first; u1: 8 clicks; u2: 3 clicks (below
 * the minimum of 5); u3: impressions only. */
static cascade_dataset *world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    add_users_items(ds, 4);
    for (uint32_t i = 0; i < 20; i++) {
        assert_int_equal(cascade_dataset_add_event_idx(ds, 10 * i, 0, i, CASCADE_EV_IMPRESSION, 0),
                         0);
        assert_int_equal(cascade_dataset_add_event_idx(ds, 10 * i + 1, 0, i, CASCADE_EV_CLICK, 0),
                         0);
    }
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(cascade_dataset_add_event_idx(ds, 5 + i, 1, 20 + i, CASCADE_EV_CLICK, 0),
                         0);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(cascade_dataset_add_event_idx(ds, 7 + i, 2, i, CASCADE_EV_CLICK, 0), 0);
    assert_int_equal(cascade_dataset_add_event_idx(ds, 3, 3, 5, CASCADE_EV_IMPRESSION, 0), 0);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    return ds;
}

static void random_split(const cascade_dataset *ds, uint64_t seed, double share,
                         struct cascade_eval_split *s)
{
    struct cascade_eval_split_opts o;
    char err[256] = "";
    cascade_eval_split_defaults(&o);
    o.protocol = CASCADE_EVAL_PROTOCOL_RANDOM;
    o.split_seed = seed;
    o.train_share = share;
    int rc = cascade_eval_split_run(ds, &o, s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "split: %s\n", err);
    assert_int_equal(rc, 0);
}

static bool in(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

static void test_random_shares_and_disjoint(void **state)
{
    (void)state;
    cascade_dataset *ds = world();
    struct cascade_eval_split s;
    random_split(ds, 42, 0.75, &s);
    assert_int_equal(s.n_users, 2); /* u0, u1; u2 below 5, u3 no clicks */
    assert_int_equal(s.below_min, 1);
    const size_t want_train[] = {15, 6}, want_test[] = {5, 2}, n_items[] = {20, 8};
    const uint32_t first[] = {0, 20};
    for (size_t k = 0; k < 2; k++) {
        const uint32_t *test = s.test + s.test_off[k], *seen = s.seen + s.seen_off[k];
        size_t nt = s.test_off[k + 1] - s.test_off[k], ns = s.seen_off[k + 1] - s.seen_off[k];
        assert_int_equal(s.split_ts[k], INT64_MAX);
        assert_int_equal(nt, want_test[k]);
        assert_int_equal(ns, want_train[k]);
        /* Disjoint, and together the user's items. */
        for (uint32_t i = first[k]; i < first[k] + n_items[k]; i++)
            assert_true(in(test, nt, i) != in(seen, ns, i));
        /* No event of a held-out item in train, every event of a train item kept. */
        size_t kept = 0;
        for (size_t e = 0; e < s.train->n_events; e++) {
            const struct cascade_ds_event *ev = &s.train->events[e];
            if (ev->user != s.users[k])
                continue;
            assert_false(in(test, nt, ev->item));
            kept++;
        }
        assert_int_equal(kept, k == 0 ? 2 * want_train[0] : want_train[1]);
    }
    /* Users not evaluated keep their whole log. */
    assert_int_equal(s.train_events + s.dropped_events, ds->n_events);
    assert_int_equal(s.dropped_events, 2 * 5 + 2);
    cascade_eval_split_free(&s);
    random_split(ds, 42, 0.5, &s);
    assert_int_equal(s.test_off[1] - s.test_off[0], 10);
    assert_int_equal(s.test_off[2] - s.test_off[1], 4);
    cascade_eval_split_free(&s);
    cascade_dataset_destroy(ds);
}

/* The held-out set of u0 as a bit mask. */
static uint32_t held_mask(const cascade_dataset *ds, uint64_t seed)
{
    struct cascade_eval_split s;
    uint32_t mask = 0;
    random_split(ds, seed, 0.75, &s);
    for (size_t j = s.test_off[0]; j < s.test_off[1]; j++)
        mask |= 1u << s.test[j];
    cascade_eval_split_free(&s);
    return mask;
}

static void test_random_seeded(void **state)
{
    (void)state;
    cascade_dataset *ds = world();
    uint32_t m42 = held_mask(ds, 42);
    assert_int_equal(held_mask(ds, 42), m42);
    size_t differ = 0;
    for (uint64_t seed = 1; seed <= 10; seed++)
        differ += held_mask(ds, seed) != m42;
    assert_true(differ >= 8);
    /* Not simply the last (or first) items in time or id order. */
    assert_int_not_equal(m42, 0xF8000u);
    assert_int_not_equal(m42, 0x1Fu);
    cascade_dataset_destroy(ds);
}

static void test_random_bad_share(void **state)
{
    (void)state;
    cascade_dataset *ds = world();
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    char err[256] = "";
    cascade_eval_split_defaults(&o);
    o.protocol = CASCADE_EVAL_PROTOCOL_RANDOM;
    o.train_share = 1.0;
    assert_int_equal(cascade_eval_split_run(ds, &o, &s, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "train share"));
    cascade_dataset_destroy(ds);
}

/* Given: train has u0 with items 0..4, u1 with 10; test has u0 with 3 (also
 * in train), 5, 6 and an unknown item, u1 with an impression only, and a user
 * train does not know. */
static void test_given(void **state)
{
    (void)state;
    cascade_dataset *train = cascade_dataset_create(), *test = cascade_dataset_create();
    assert_non_null(train);
    assert_non_null(test);
    add_users_items(train, 2);
    add_users_items(test, 3);
    struct cascade_ds_item extra = {.id = 99999};
    assert_int_equal(cascade_dataset_add_item(test, &extra, NULL), 0);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(cascade_dataset_add_event_idx(train, i, 0, i, CASCADE_EV_CLICK, 0), 0);
    assert_int_equal(cascade_dataset_add_event_idx(train, 9, 1, 10, CASCADE_EV_LIKE, 0), 0);
    const uint32_t test_items[] = {3, 6, 5, 6, N_ITEMS};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(
            cascade_dataset_add_event_idx(test, 100 + i, 0, test_items[i], CASCADE_EV_CLICK, 0), 0);
    assert_int_equal(cascade_dataset_add_event_idx(test, 100, 1, 11, CASCADE_EV_IMPRESSION, 0), 0);
    assert_int_equal(cascade_dataset_add_event_idx(test, 100, 2, 11, CASCADE_EV_CLICK, 0), 0);
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    char err[256] = "";
    cascade_eval_split_defaults(&o);
    assert_int_equal(cascade_eval_split_given(train, test, &o, &s, err, sizeof err), 0);
    assert_ptr_equal(s.train, train);
    assert_int_equal(s.n_users, 1);
    assert_int_equal(s.users[0], 0);
    assert_int_equal(s.test_off[1], 2);
    assert_int_equal(s.test[0], 5);
    assert_int_equal(s.test[1], 6);
    assert_int_equal(s.seen_off[1], 5);
    assert_int_equal(s.unknown_users, 1);
    assert_int_equal(s.dropped_events, 2); /* the unknown item, the unknown user's click */
    cascade_eval_split_free(&s);
    cascade_dataset_destroy(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_shares_and_disjoint),
        cmocka_unit_test(test_random_seeded),
        cmocka_unit_test(test_random_bad_share),
        cmocka_unit_test(test_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
