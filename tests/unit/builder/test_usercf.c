/* Unit tests for UserCF: the formula on a hand-computed example where a
 * shared hot item counts less than a shared niche one, top-k order and ties,
 * the users-per-item cap (item popularity still counted in full), the
 * per-user history cap, determinism for a seed across thread counts, and the
 * lists published in a real Redis and read back with
 * cascade_store_get_user_neighbours, generation after generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_publish.h"
#include "cf_test.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "store.h"
#include "support.h"
#include "usercf.h"

#define NEAR(x, y) assert_true(fabs((double)(x) - (double)(y)) < 1e-6 * (1 + fabs((double)(y))))

enum { HOT = 1, NICHE = 2, OTHER = 3 };

static void click(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, CASCADE_EV_CLICK, 0), 0);
}

/* Users in index order a b c d e f g:
 *   a {HOT, NICHE}; b, d, e, f {HOT}; c {NICHE}; g nothing (an impression only).
 *   n_HOT = 5, n_NICHE = 2. */
static cascade_dataset *hand_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    const char *users[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (size_t i = 0; i < 7; i++)
        cf_test_add_user(ds, users[i]);
    for (uint64_t id = HOT; id <= OTHER; id++) {
        struct cascade_ds_item it = {.id = id, .category = 1, .media_type = 1};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    click(ds, 1, "a", HOT);
    click(ds, 2, "a", NICHE);
    click(ds, 3, "b", HOT);
    click(ds, 4, "c", NICHE);
    click(ds, 5, "d", HOT);
    click(ds, 6, "e", HOT);
    click(ds, 7, "f", HOT);
    assert_int_equal(cascade_dataset_add_event(ds, 8, "g", OTHER, CASCADE_EV_IMPRESSION, 0), 0);
    return ds;
}

static const char *nbr(const cascade_dataset *ds, const struct cascade_cf_lists *r,
                       const char *user, size_t t, double *score)
{
    long u = cascade_dataset_find_user(ds, user);
    assert_true(u >= 0 && t < r->count[u]);
    *score = r->score[(size_t)u * r->k + t];
    return ds->users[r->nbr[(size_t)u * r->k + t]].id;
}

static uint32_t count_of(const cascade_dataset *ds, const struct cascade_cf_lists *r,
                         const char *user)
{
    return r->count[cascade_dataset_find_user(ds, user)];
}

static void compute(const cascade_dataset *ds, struct cascade_usercf_opts *o,
                    struct cascade_cf_lists *r)
{
    char err[256];
    o->quiet = true;
    assert_int_equal(cascade_usercf_compute(ds, o, r, err, sizeof(err)), 0);
}

static void test_hot_items_count_less(void **state)
{
    (void)state;
    cascade_dataset *ds = hand_world();
    struct cascade_usercf_opts o;
    struct cascade_cf_lists r;
    double s;
    cascade_usercf_defaults(&o);
    compute(ds, &o, &r);
    double hot = 1 / log(6.0), niche = 1 / log(3.0);
    /* a: c via the niche item first, then b, d, e, f via the hot one (tied:
     * lower user index first). */
    assert_int_equal(count_of(ds, &r, "a"), 5);
    assert_string_equal(nbr(ds, &r, "a", 0, &s), "c");
    NEAR(s, niche / sqrt(2.0));
    assert_string_equal(nbr(ds, &r, "a", 1, &s), "b");
    NEAR(s, hot / sqrt(2.0));
    assert_string_equal(nbr(ds, &r, "a", 2, &s), "d");
    assert_string_equal(nbr(ds, &r, "a", 4, &s), "f");
    /* b: the single-item users d, e, f before a, whose longer history dilutes. */
    assert_int_equal(count_of(ds, &r, "b"), 4);
    assert_string_equal(nbr(ds, &r, "b", 0, &s), "d");
    NEAR(s, hot);
    assert_string_equal(nbr(ds, &r, "b", 3, &s), "a");
    NEAR(s, hot / sqrt(2.0));
    /* c shares only the niche item, with a. g has no interest events. */
    assert_int_equal(count_of(ds, &r, "c"), 1);
    assert_string_equal(nbr(ds, &r, "c", 0, &s), "a");
    NEAR(s, niche / sqrt(2.0));
    assert_int_equal(count_of(ds, &r, "g"), 0);
    cascade_cf_lists_free(&r);

    /* Top-k 2 keeps a's two best, in order. */
    o.top_k = 2;
    compute(ds, &o, &r);
    assert_int_equal(count_of(ds, &r, "a"), 2);
    assert_string_equal(nbr(ds, &r, "a", 0, &s), "c");
    assert_string_equal(nbr(ds, &r, "a", 1, &s), "b");
    cascade_cf_lists_free(&r);

    /* One item per user (the most recent): a keeps NICHE only, so its only
     * neighbour is c, and |I_a| = 1 now. */
    cascade_usercf_defaults(&o);
    o.max_items_per_user = 1;
    compute(ds, &o, &r);
    assert_int_equal(count_of(ds, &r, "a"), 1);
    assert_string_equal(nbr(ds, &r, "a", 0, &s), "c");
    NEAR(s, niche);
    cascade_cf_lists_free(&r);
    cascade_dataset_destroy(ds);
}

/* A cap of 2 users per item: the hot item offers at most 2 candidates, but
 * its weight still uses all 5 of its users. */
static void test_users_per_item_cap(void **state)
{
    (void)state;
    cascade_dataset *ds = hand_world();
    struct cascade_usercf_opts o;
    struct cascade_cf_lists r;
    double s;
    cascade_usercf_defaults(&o);
    o.max_users_per_item = 2;
    compute(ds, &o, &r);
    const char *hot_only[] = {"b", "d", "e", "f"};
    for (size_t i = 0; i < 4; i++) {
        uint32_t n = count_of(ds, &r, hot_only[i]);
        assert_true(n >= 1 && n <= 2);
        for (uint32_t t = 0; t < n; t++) {
            const char *v = nbr(ds, &r, hot_only[i], t, &s);
            NEAR(s, (1 / log(6.0)) / sqrt(strcmp(v, "a") == 0 ? 2.0 : 1.0));
        }
    }
    assert_true(count_of(ds, &r, "a") <= 3); /* c + at most 2 from the hot item */
    assert_string_equal(nbr(ds, &r, "a", 0, &s), "c");
    cascade_cf_lists_free(&r);
    cascade_dataset_destroy(ds);
}

static void test_seeded_and_thread_independent(void **state)
{
    (void)state;
    cascade_dataset *ds = cf_test_generated_world(1500, 20000, 7);
    struct cascade_usercf_opts o;
    struct cascade_cf_lists r1, r2, r3;
    cascade_usercf_defaults(&o);
    o.top_k = 20;
    o.max_users_per_item = 10;
    o.threads = 1;
    compute(ds, &o, &r1);
    o.threads = 3;
    compute(ds, &o, &r2);
    assert_true(cf_test_same_lists(&r1, &r2));
    o.seed = 99;
    compute(ds, &o, &r3);
    assert_false(cf_test_same_lists(&r1, &r3));
    size_t with_lists = 0;
    for (size_t u = 0; u < r1.n; u++) {
        with_lists += r1.count[u] > 0;
        for (uint32_t t = 0; t < r1.count[u]; t++) {
            float sc = r1.score[u * r1.k + t];
            assert_int_not_equal(r1.nbr[u * r1.k + t], u);
            assert_true(sc > 0);
            if (t)
                assert_true(sc <= r1.score[u * r1.k + t - 1]);
        }
    }
    assert_true(with_lists > r1.n / 2);
    cascade_cf_lists_free(&r1);
    cascade_cf_lists_free(&r2);
    cascade_cf_lists_free(&r3);
    cascade_dataset_destroy(ds);
}

static void publish(cascade_redis *r, const cascade_dataset *ds, struct cascade_usercf_opts *o,
                    int64_t want_gen)
{
    struct cascade_cf_lists l;
    struct cascade_cf_publish_opts po = {
        .ns = "t", .family = "usercf", .pipeline = 3, .quiet = true};
    struct cascade_cf_publish_summary sum;
    char err[512];
    compute(ds, o, &l);
    assert_int_equal(cascade_cf_publish_users(ds, &l, r, &po, &sum, err, sizeof(err)), 0);
    assert_int_equal(sum.gen, want_gen);
    assert_int_equal(sum.written, 6); /* g has no list */
    assert_int_equal(sum.empty, 1);
    cascade_cf_lists_free(&l);
}

static long long exists(cascade_redis *r, int64_t gen, const char *user)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_key_artefact(key, "t", "usercf", gen, user);
    assert_int_equal(cascade_redis_command(r, &rep, "EXISTS %s", key), 0);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* Each build is a new generation; the reader follows the current one, and
 * generation gen-2 is deleted when gen is published. */
static void test_publish_generations(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv), 0);
    struct cascade_redis_opts ro = {.host = "127.0.0.1", .port = srv.port};
    cascade_redis *r = cascade_redis_create(&ro);
    cascade_dataset *ds = hand_world();
    struct cascade_usercf_opts o;
    static cascade_v1_UserNeighbourList list;
    bool found = true;
    cascade_usercf_defaults(&o);

    /* Nothing published yet. */
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 0, "a", &list, &found), 0);
    assert_false(found);

    publish(r, ds, &o, 1);
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 0, "a", &list, &found), 0);
    assert_true(found);
    assert_int_equal(list.neighbours_count, 5);
    assert_string_equal(list.neighbours[0].user_id, "c");
    NEAR(list.neighbours[0].score, (1 / log(3.0)) / sqrt(2.0));
    assert_string_equal(list.neighbours[4].user_id, "f");
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 0, "g", &list, &found), 0);
    assert_false(found);

    o.top_k = 1;
    publish(r, ds, &o, 2);
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 0, "a", &list, &found), 0);
    assert_true(found);
    assert_int_equal(list.neighbours_count, 1);
    /* Generation 1 is still there for readers that resolved it a moment ago. */
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 1, "a", &list, &found), 0);
    assert_true(found);
    assert_int_equal(list.neighbours_count, 5);

    o.top_k = 2;
    publish(r, ds, &o, 3);
    assert_int_equal(exists(r, 1, "a"), 0);
    assert_int_equal(exists(r, 1, "c"), 0);
    assert_int_equal(exists(r, 2, "a"), 1);
    assert_int_equal(cascade_store_get_user_neighbours(r, "t", 0, "a", &list, &found), 0);
    assert_int_equal(list.neighbours_count, 2);
    assert_string_equal(list.neighbours[1].user_id, "b");

    cascade_dataset_destroy(ds);
    cascade_redis_destroy(r);
    test_redis_stop(&srv);
}

static void test_bad_options(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_usercf_opts o;
    struct cascade_cf_lists r;
    char err[256];
    cascade_usercf_defaults(&o);
    o.top_k = 101; /* UserNeighbourList holds at most 100 */
    assert_int_equal(cascade_usercf_compute(ds, &o, &r, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "top-k"));
    cascade_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_items_count_less),
        cmocka_unit_test(test_users_per_item_cap),
        cmocka_unit_test(test_seeded_and_thread_independent),
        cmocka_unit_test(test_publish_generations),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
