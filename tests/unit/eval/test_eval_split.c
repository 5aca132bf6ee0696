/* Unit tests for the per-user time split on a tiny hand-made data set: the
 * last 20 % of each user's interacted items held out (by first interaction,
 * at least one), the train cut at the first held-out interaction with
 * impressions following it, later events dropped, users below the minimum
 * kept whole in train, dislikes not counted as interactions, equal times
 * ordered by the seed (deterministically), the seeded user sample, and
 * option errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
#include "eval_split.h"

/* Items 101..110 have indices 0..9. */
#define ITEM(i) (100 + (i))
#define IDX(i) ((uint32_t)((i)-1))

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* a: 10 items clicked at 100·i, each shown one second before, a late like on
 *    item 2 (after the split), so 2 held out (items 9, 10), cut at 900;
 * b: 4 items: below the minimum, all train;
 * c: 5 items clicked at the same second: one held out, chosen by the seed;
 * d: impressions only (no interactions);
 * e: 4 clicks and a dislike: 4 interactions, below the minimum. */
static cascade_dataset *tiny(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    const char *users[] = {"a", "b", "c", "d", "e"};
    for (size_t u = 0; u < 5; u++) {
        struct cascade_ds_user usr = {0};
        snprintf(usr.id, sizeof usr.id, "%s", users[u]);
        assert_int_equal(cascade_dataset_add_user(ds, &usr, NULL), 0);
    }
    for (uint64_t i = 1; i <= 10; i++) {
        struct cascade_ds_item it = {.id = ITEM(i), .created_at = 1};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    for (int i = 1; i <= 10; i++) {
        ev(ds, 100 * i - 1, "a", ITEM(i), CASCADE_EV_IMPRESSION);
        ev(ds, 100 * i, "a", ITEM(i), CASCADE_EV_CLICK);
    }
    ev(ds, 950, "a", ITEM(2), CASCADE_EV_LIKE);
    for (int i = 1; i <= 4; i++)
        ev(ds, 50 + i, "b", ITEM(i), CASCADE_EV_CLICK);
    for (int i = 1; i <= 5; i++) {
        ev(ds, 500, "c", ITEM(i), CASCADE_EV_IMPRESSION);
        ev(ds, 500, "c", ITEM(i), CASCADE_EV_CLICK);
    }
    ev(ds, 10, "d", ITEM(1), CASCADE_EV_IMPRESSION);
    for (int i = 1; i <= 4; i++)
        ev(ds, 20 + i, "e", ITEM(i), CASCADE_EV_CLICK);
    ev(ds, 30, "e", ITEM(5), CASCADE_EV_DISLIKE);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    return ds;
}

/* Events of user u in the train part. */
static size_t train_events_of(const cascade_dataset *train, uint32_t u)
{
    size_t n = 0;
    for (size_t i = 0; i < train->n_events; i++)
        n += train->events[i].user == u;
    return n;
}

static void split(const cascade_dataset *ds, struct cascade_eval_split_opts *o,
                  struct cascade_eval_split *s)
{
    char err[256] = "";
    int rc = cascade_eval_split_run(ds, o, s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "split: %s\n", err);
    assert_int_equal(rc, 0);
}

static void test_split_by_time(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny();
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    cascade_eval_split_defaults(&o);
    split(ds, &o, &s);

    assert_int_equal(s.eligible, 2);  /* a and c */
    assert_int_equal(s.below_min, 2); /* b and e; d has no interactions */
    assert_int_equal(s.n_users, 2);
    assert_int_equal(s.users[0], 0); /* a */
    assert_int_equal(s.users[1], 2); /* c */

    /* a: items 9 and 10 held out, 1..8 seen, cut at the click on item 9. */
    assert_int_equal(s.split_ts[0], 900);
    assert_int_equal(s.test_off[1] - s.test_off[0], 2);
    assert_int_equal(s.test[s.test_off[0]], IDX(9));
    assert_int_equal(s.test[s.test_off[0] + 1], IDX(10));
    assert_int_equal(s.seen_off[1] - s.seen_off[0], 8);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(s.seen[s.seen_off[0] + i], IDX(i + 1));
    /* Train for a: 8 clicks and 9 impressions (item 9 was shown at 899, before
     * the cut); the click on 9, everything on 10 and the like at 950 dropped. */
    assert_int_equal(train_events_of(s.train, 0), 17);
    for (size_t i = 0; i < s.train->n_events; i++)
        if (s.train->events[i].user == 0)
            assert_true(s.train->events[i].ts < 900);

    /* c: 5 items at one time: one held out, 4 seen, its events dropped. */
    assert_int_equal(s.test_off[2] - s.test_off[1], 1);
    assert_int_equal(s.seen_off[2] - s.seen_off[1], 4);
    assert_int_equal(train_events_of(s.train, 2), 8);
    uint32_t held = s.test[s.test_off[1]];
    for (size_t i = 0; i < s.train->n_events; i++)
        if (s.train->events[i].user == 2)
            assert_int_not_equal(s.train->events[i].item, held);

    /* Users below the minimum (and without interactions) keep everything. */
    assert_int_equal(train_events_of(s.train, 1), 4);
    assert_int_equal(train_events_of(s.train, 3), 1);
    assert_int_equal(train_events_of(s.train, 4), 5);
    assert_int_equal(s.train->n_users, ds->n_users);
    assert_int_equal(s.train->n_items, ds->n_items);
    assert_int_equal(s.train_events + s.dropped_events, ds->n_events);
    assert_int_equal(s.train_events, 17 + 4 + 8 + 1 + 5);
    assert_int_equal(s.test_items, 3);
    /* Train events stay in time order. */
    for (size_t i = 1; i < s.train->n_events; i++)
        assert_true(s.train->events[i - 1].ts <= s.train->events[i].ts);
    cascade_eval_split_free(&s);
    cascade_eval_split_free(&s); /* twice is harmless */
    cascade_dataset_destroy(ds);
}

static void test_fraction_and_minimum(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny();
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    cascade_eval_split_defaults(&o);
    o.test_frac = 0.5;
    o.min_interactions = 6; /* c (5 items) drops out */
    split(ds, &o, &s);
    assert_int_equal(s.n_users, 1);
    assert_int_equal(s.test_off[1], 5); /* items 6..10 */
    assert_int_equal(s.test[0], IDX(6));
    assert_int_equal(s.split_ts[0], 600);
    cascade_eval_split_free(&s);
    /* min 4 brings in b and e (4 interactions each; e's dislike does not count). */
    cascade_eval_split_defaults(&o);
    o.min_interactions = 4;
    split(ds, &o, &s);
    assert_int_equal(s.n_users, 4);
    assert_int_equal(s.users[3], 4);
    assert_int_equal(s.seen_off[4] - s.seen_off[3], 3);
    assert_int_equal(s.test[s.test_off[3]], IDX(4)); /* e's last click, not the dislike */
    cascade_eval_split_free(&s);
    cascade_dataset_destroy(ds);
}

/* Which of c's tied items a seed holds out. */
static uint32_t held_out_for_seed(const cascade_dataset *ds, uint64_t seed)
{
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    cascade_eval_split_defaults(&o);
    o.seed = seed;
    split(ds, &o, &s);
    uint32_t held = s.test[s.test_off[1]];
    cascade_eval_split_free(&s);
    return held;
}

static void test_seeded_ties(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny();
    bool seen[10] = {false};
    size_t distinct = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        uint32_t held = held_out_for_seed(ds, seed);
        assert_int_equal(held, held_out_for_seed(ds, seed)); /* same seed, same split */
        assert_true(held <= IDX(5));
        distinct += !seen[held];
        seen[held] = true;
    }
    assert_true(distinct >= 2); /* the seed, not the input order, breaks ties */
    cascade_dataset_destroy(ds);
}

static void test_user_sample(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny();
    struct cascade_eval_split_opts o;
    struct cascade_eval_split all, s1, s2;
    cascade_eval_split_defaults(&o);
    o.min_interactions = 4;
    split(ds, &o, &all);
    o.max_users = 2;
    split(ds, &o, &s1);
    split(ds, &o, &s2);
    assert_int_equal(s1.n_users, 2);
    assert_int_equal(s1.eligible, 4);
    assert_true(s1.users[0] < s1.users[1]);
    assert_memory_equal(s1.users, s2.users, 2 * sizeof(uint32_t));
    /* Sampling picks whom to evaluate; the train part stays the same. */
    assert_int_equal(s1.train_events, all.train_events);
    assert_int_equal(s1.train->n_events, all.train->n_events);
    cascade_eval_split_free(&all);
    cascade_eval_split_free(&s1);
    cascade_eval_split_free(&s2);
    cascade_dataset_destroy(ds);
}

static void test_bad_options(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny();
    struct cascade_eval_split_opts o;
    struct cascade_eval_split s;
    char err[256] = "";
    cascade_eval_split_defaults(&o);
    o.test_frac = 0;
    assert_int_equal(cascade_eval_split_run(ds, &o, &s, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "test fraction"));
    cascade_eval_split_defaults(&o);
    o.min_interactions = 1;
    assert_int_equal(cascade_eval_split_run(ds, &o, &s, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "at least 2"));
    cascade_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_by_time), cmocka_unit_test(test_fraction_and_minimum),
        cmocka_unit_test(test_seeded_ties),   cmocka_unit_test(test_user_sample),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
