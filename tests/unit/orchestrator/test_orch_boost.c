/* Unit tests of new-item boosting with an impression target (boost.h): the
 * schedule and weight formula on hand-computed values, boosting stopping at
 * the target and at the end of the window, the behind-schedule test, the
 * per-user order w / (1 + rank position), the guarantee (an item the ranker
 * puts last for everyone still reaches its target), and the Redis reads (created_at
 * from the record, served impressions from {ns}:ictr, the census of the
 * current new list) against a private redis-server. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "support.h"

#include "boost.h"
#include "error.h"
#include "explore.h"
#include "store.h"

#define NS "tboost"
#define DAY 86400

static void test_weight_formula(void **state)
{
    (void)state;
    const struct cascade_boost_params p = {.target = 100, .window_s = DAY};
    const int64_t created = 1000000, half = created + DAY / 2;
    /* Half way through the window 50 impressions are due. */
    assert_float_equal(cascade_boost_deficit(&p, created, half, 20), 30.0, 1e-9);
    assert_float_equal(cascade_boost_weight(&p, created, half, 20), 31.0, 1e-9);
    assert_true(cascade_boost_behind(&p, created, half, 20));
    /* On or ahead of schedule: weight 1, not behind, still boosted. */
    assert_float_equal(cascade_boost_deficit(&p, created, half, 50), 0.0, 0);
    assert_float_equal(cascade_boost_weight(&p, created, half, 50), 1.0, 0);
    assert_float_equal(cascade_boost_weight(&p, created, half, 70), 1.0, 0);
    assert_false(cascade_boost_behind(&p, created, half, 50));
    /* Less than one impression short is not "behind". */
    assert_false(cascade_boost_behind(&p, created, half, 49.5));
    /* A quarter of the window: 25 due. */
    assert_float_equal(cascade_boost_weight(&p, created, created + DAY / 4, 0), 26.0, 1e-9);
    /* Just created (or created in the future): nothing due yet, weight 1. */
    assert_float_equal(cascade_boost_weight(&p, created, created, 0), 1.0, 0);
    assert_float_equal(cascade_boost_weight(&p, created, created - 60, 0), 1.0, 0);
}

static void test_stops_at_target_and_window(void **state)
{
    (void)state;
    const struct cascade_boost_params p = {.target = 100, .window_s = DAY};
    const int64_t created = 1000000;
    /* One short of the target: still boosted; at or above it: never again,
     * however far behind the schedule would say. */
    assert_true(cascade_boost_weight(&p, created, created + DAY - 1, 99) > 0.0);
    assert_float_equal(cascade_boost_weight(&p, created, created + DAY - 1, 100), 0.0, 0);
    assert_float_equal(cascade_boost_weight(&p, created, created + 10, 100), 0.0, 0);
    assert_float_equal(cascade_boost_weight(&p, created, created + 10, 250), 0.0, 0);
    assert_false(cascade_boost_behind(&p, created, created + DAY - 1, 100));
    /* The window is over: no boost, not counted as behind. */
    assert_float_equal(cascade_boost_weight(&p, created, created + DAY, 0), 0.0, 0);
    assert_false(cascade_boost_behind(&p, created, created + 2 * DAY, 0));
    /* No target: every item weight 1, none behind. */
    const struct cascade_boost_params off = {.target = 0, .window_s = DAY};
    assert_float_equal(cascade_boost_weight(&off, created, created + 2 * DAY, 1e6), 1.0, 0);
    assert_false(cascade_boost_behind(&off, created, created + DAY / 2, 0));
}

static void test_order(void **state)
{
    (void)state;
    Cascade__V1__Candidate c[4];
    Cascade__V1__Candidate *picks[4];
    for (int i = 0; i < 4; i++) {
        cascade__v1__candidate__init(&c[i]);
        c[i].item_id = 10 + (uint64_t)i;
        picks[i] = &c[i];
    }
    /* The ranker's order 10, 11, 12, 13 at rank positions 0, 3, 5, 9. Keys
     * w/(1+pos): 1/1 = 1, 31/4 = 7.75, 6/6 = 1, 30/10 = 3. */
    uint32_t pos[4] = {0, 3, 5, 9};
    double w[4] = {1, 31, 6, 30};
    cascade_boost_order(picks, pos, w, 4);
    const uint64_t want[4] = {11, 13, 10,
                              12}; /* 10 before 12: equal keys keep the ranker's order */
    const uint32_t want_pos[4] = {3, 9, 0, 5};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(picks[i]->item_id, want[i]);
        assert_int_equal(pos[i], want_pos[i]);
    }
    assert_float_equal(w[0], 31, 0);
    assert_float_equal(w[3], 6, 0);
}

/* The target's guarantee: the pool item far enough behind schedule that
 * the ranker left below its bar, per user by w / (1 + position); inserted
 * first when further behind than the best pick, else last. */
static void test_guarantee_pick(void **state)
{
    (void)state;
    Cascade__V1__Candidate c[4];
    Cascade__V1__Candidate *pool[4], *ranked[3];
    for (int i = 0; i < 4; i++) {
        cascade__v1__candidate__init(&c[i]);
        c[i].item_id = 10 + (uint64_t)i;
        pool[i] = &c[i];
    }
    const double w[4] = {5, 1.5, 4, 9};
    Cascade__V1__Candidate *picks[5] = {&c[0]}; /* the ranker qualified 10 only */
    ranked[0] = &c[0];
    ranked[1] = &c[1];
    ranked[2] = &c[2]; /* 13 was not returned: position 3 */
    uint32_t at = 99;
    /* Weight >= 3: 12 (4 / (1 + 2) = 1.33) and 13 (9 / (1 + 3) = 2.25). */
    assert_int_equal(cascade_boost_guarantee(pool, w, 4, picks, 1, ranked, 3, 2.0, &at), 3);
    assert_int_equal(at, 3);
    /* Another user ranks 12 first: the pick is per user. */
    Cascade__V1__Candidate *ranked2[3] = {&c[2], &c[0], &c[1]};
    assert_int_equal(cascade_boost_guarantee(pool, w, 4, picks, 1, ranked2, 3, 2.0, &at), 2);
    assert_int_equal(at, 0);
    /* 10 is a pick already; weight 9 needs a deficit bar of at most 8. */
    assert_int_equal(cascade_boost_guarantee(pool, w, 4, picks, 1, ranked, 3, 8.0, &at), 3);
    assert_int_equal(cascade_boost_guarantee(pool, w, 4, picks, 1, ranked, 3, 8.5, &at), -1);
    assert_int_equal(cascade_boost_guarantee(pool, w, 4, picks, 1, ranked, 3, 0.0, &at), -1);
    /* Insertion: first when its weight beats the best pick's, else last. */
    uint32_t pos[5] = {0};
    double pw[5] = {5};
    size_t n = cascade_boost_insert(picks, pos, pw, 1, &c[3], 3, 9.0);
    assert_int_equal(n, 2);
    assert_int_equal(picks[0]->item_id, 13);
    assert_int_equal(pos[0], 3);
    assert_int_equal(picks[1]->item_id, 10);
    n = cascade_boost_insert(picks, pos, pw, n, &c[1], 1, 1.5);
    assert_int_equal(n, 3);
    assert_int_equal(picks[2]->item_id, 11);
    assert_float_equal(pw[2], 1.5, 0);
}

/* Requests over one target window with one exploration slot each, the pool
 * handled as the orchestrator does (recommend_final.c: weights, items at
 * target dropped, the ranker's bar, the order, the guarantee), for new
 * items 1 and 2 that every user's ranker puts first and item 3 that it puts
 * last of 100. Returns item 3's impressions at the end of the window. */
static int serve_window(double guarantee_deficit, int *imp)
{
    const struct cascade_boost_params p = {.target = 10, .window_s = 10000};
    Cascade__V1__Candidate c[100];
    Cascade__V1__Candidate *ranked[100];
    for (int i = 0; i < 100; i++) {
        cascade__v1__candidate__init(&c[i]);
        c[i].item_id = 100 + (uint64_t)i;
        ranked[i] = &c[i];
    }
    c[0].item_id = 1;
    c[1].item_id = 2;
    c[99].item_id = 3;
    Cascade__V1__Candidate *const all[3] = {&c[0], &c[1], &c[99]};
    imp[0] = imp[1] = imp[2] = 0;
    const int64_t created = 1000000; /* 0 would be "unknown" */
    for (int64_t t = created + 50; t < created + p.window_s; t += 50) {
        cascade_arena *arena = cascade_arena_create(4096);
        Cascade__V1__Candidate *pool[3];
        double w[3];
        int idx[3];
        size_t n_pool = 0;
        for (int i = 0; i < 3; i++) {
            double wi = cascade_boost_weight(&p, created, t, imp[i]);
            if (wi > 0.0) {
                pool[n_pool] = all[i];
                w[n_pool] = wi;
                idx[n_pool++] = i;
            }
        }
        Cascade__V1__Candidate **picks;
        uint32_t *pos;
        size_t n_picks;
        assert_int_equal(
            cascade_explore_by_rank(pool, n_pool, ranked, 100, 0.5, arena, &picks, &n_picks, &pos),
            0);
        double pw[4];
        for (size_t k = 0; k < n_picks; k++)
            for (size_t i = 0; i < n_pool; i++)
                if (pool[i] == picks[k])
                    pw[k] = w[i];
        cascade_boost_order(picks, pos, pw, n_picks);
        uint32_t at;
        long g = cascade_boost_guarantee(pool, w, n_pool, picks, n_picks, ranked, 100,
                                         guarantee_deficit, &at);
        if (g >= 0)
            n_picks = cascade_boost_insert(picks, pos, pw, n_picks, pool[g], at, w[g]);
        for (size_t i = 0; n_picks > 0 && i < n_pool; i++)
            if (pool[i] == picks[0])
                imp[idx[i]]++; /* the one slot */
        cascade_arena_destroy(arena);
    }
    return imp[2];
}

static void test_guarantee_reaches_target(void **state)
{
    (void)state;
    int imp[3];
    /* Without the guarantee the item the ranker puts last is never served. */
    assert_int_equal(serve_window(0.0, imp), 0);
    assert_int_equal(imp[0], 10);
    assert_int_equal(imp[1], 10);
    /* With it (the default bar, half an impression behind schedule), it
     * reaches its target within the window, and the others still do. */
    assert_int_equal(serve_window(0.5, imp), 10);
    assert_int_equal(imp[0], 10);
    assert_int_equal(imp[1], 10);
}

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

static void put_item(void **state, uint64_t id, int64_t created)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.created_at_s = created;
    if (cascade_store_put_item(fx(state)->conn, NS, &rec) != 0)
        fail_msg("put item: %s", cascade_redis_error(fx(state)->conn));
}

static void set_impressions(void **state, uint64_t id, int n)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep,
                                           "HSET " NS ":ictr:%llu impression %d",
                                           (unsigned long long)id, n),
                     0);
    freeReplyObject(rep);
}

/* The current new list (generation 3): items 1..4 created at c[0..4). */
static void publish_new_list(void **state, const int64_t *c)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(
                         fx(state)->conn, &rep, "ZADD " NS ":new@3 %lld 1 %lld 2 %lld 3 %lld 4",
                         (long long)c[0], (long long)c[1], (long long)c[2], (long long)c[3]),
                     0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "SET " NS ":gen:new 3"), 0);
    freeReplyObject(rep);
}

static void test_read_and_census(void **state)
{
    const int64_t now = 2000000000;
    const struct cascade_boost_params p = {.target = 10, .window_s = DAY};
    /* 1: half a day old, 2 impressions (5 due: behind); 2: half a day, 10
     * (met); 3: an hour old, 0 (0.4 due: not behind); 4: two days old, 0
     * (window over); 5: no record, no counters. */
    put_item(state, 1, now - DAY / 2);
    put_item(state, 2, now - DAY / 2);
    put_item(state, 3, now - 3600);
    put_item(state, 4, now - 2 * DAY);
    set_impressions(state, 1, 2);
    set_impressions(state, 2, 10);
    uint64_t ids[5] = {1, 2, 3, 4, 5};
    int64_t created[5];
    double imps[5];
    assert_int_equal(cascade_boost_read(fx(state)->conn, NS, ids, 5, created, imps), 0);
    assert_int_equal(created[0], now - DAY / 2);
    assert_int_equal(created[3], now - 2 * DAY);
    assert_int_equal(created[4], 0);
    assert_float_equal(imps[0], 2, 0);
    assert_float_equal(imps[1], 10, 0);
    assert_float_equal(imps[2], 0, 0);
    assert_float_equal(imps[4], 0, 0);
    assert_float_equal(cascade_boost_weight(&p, created[0], now, imps[0]), 4.0, 1e-9);
    assert_float_equal(cascade_boost_weight(&p, created[1], now, imps[1]), 0.0, 0);

    size_t behind = 99, met = 99;
    /* No new list published yet: nothing counted. */
    assert_int_equal(cascade_boost_census(fx(state)->conn, NS, &p, now, 100, &behind, &met), 0);
    assert_int_equal(behind, 0);
    assert_int_equal(met, 0);
    const int64_t c[4] = {now - DAY / 2, now - DAY / 2, now - 3600, now - 2 * DAY};
    publish_new_list(state, c);
    assert_int_equal(cascade_boost_census(fx(state)->conn, NS, &p, now, 100, &behind, &met), 0);
    assert_int_equal(behind, 1); /* item 1 */
    assert_int_equal(met, 1);    /* item 2 */
    set_impressions(state, 1, 10);
    assert_int_equal(cascade_boost_census(fx(state)->conn, NS, &p, now, 100, &behind, &met), 0);
    assert_int_equal(behind, 0);
    assert_int_equal(met, 2);
}

static void test_read_redis_down(void **state)
{
    (void)state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    assert_non_null(dead);
    cascade_redis *r = cascade_redis_pool_get(dead);
    uint64_t ids[1] = {1};
    int64_t created[1];
    double imps[1];
    assert_int_equal(cascade_boost_read(r, NS, ids, 1, created, imps), CASCADE_EUNAVAILABLE);
    cascade_redis_pool_destroy(dead);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_weight_formula),
        cmocka_unit_test(test_stops_at_target_and_window),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_guarantee_pick),
        cmocka_unit_test(test_guarantee_reaches_target),
    };
    const struct CMUnitTest redis[] = {
        cmocka_unit_test(test_read_and_census),
        cmocka_unit_test(test_read_redis_down),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    return failed +
           cmocka_run_group_tests(redis, test_redis_group_setup, test_redis_group_teardown);
}
