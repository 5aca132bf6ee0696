/* Every Recall channel against a small seeded example in a private
 * redis-server, with the expected order and scores worked out by hand in the
 * comments: itemcf and swing (Σ interest·sim), ease (Σ sim, binary history), usercf (Σ sim·interest
 * over similar users), hot, new (exploration share), geo (own cell + a neighbour cell), city, the
 * three author channels, cache (FIFO), and the cold-start channels interest and demo_hot, with
 * their profile fallbacks; the list cache answering as a stage without it and following new
 * generations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "geohash.h"
#include "metrics.h"
#include "recall_seed.h"

#define T0 1700000000.0 /* creation times are T0 + k hours */
#define HOUR 3600.0

struct fixture {
    struct test_redis_fixture redis;
    cascade_recall *recall;
    cascade_arena *arena;
    char north[CASCADE_GEOHASH_MAX + 1]; /* the cell north of wx4g0 */
};

/* The fixture's channel settings (recall.channels). */
#define CHANNELS                                                                                   \
    "\"channels\": {"                                                                              \
    " \"itemcf\": {\"neighbours\": 3},"                                                            \
    " \"ease\": {\"neighbours\": 3},"                                                              \
    " \"usercf\": {\"users\": 2},"                                                                 \
    " \"new\": {\"explore_share\": 0.5, \"max_impressions\": 10, \"half_life_hours\": 1,"          \
    "  \"explore_pool\": 1},"                                                                      \
    " \"geo\": {\"half_life_hours\": 1},"                                                          \
    " \"city\": {\"half_life_hours\": 1},"                                                         \
    " \"follow_author\": {\"half_life_hours\": 1},"                                                \
    " \"similar_author\": {\"max_authors\": 2}}"

static const char *const families[] = {"itemcf", "swing", "usercf", "authors", "hot",
                                       "new",    "geo",   "city",   "ease"};

/* ItemCF/Swing/UserCF: user u1 clicked 100 (weight 1) and liked 200 (2). */
static void seed_cf(cascade_redis *r)
{
    seed_push(r, "u1", 100, 1.0f);
    seed_push(r, "u1", 200, 2.0f);
    seed_item_nlist(r, "itemcf", 1, 100, (uint64_t[]){200, 300, 400, 600},
                    (float[]){0.9f, 0.5f, 0.4f, 0.35f}, 4);
    seed_item_nlist(r, "itemcf", 1, 200, (uint64_t[]){100, 500, 300}, (float[]){0.8f, 0.3f, 0.1f},
                    3);
    seed_item_nlist(r, "swing", 1, 100, (uint64_t[]){700, 300}, (float[]){0.6f, 0.2f}, 2);
    seed_item_nlist(r, "swing", 1, 200, (uint64_t[]){100, 800, 700}, (float[]){0.9f, 0.25f, 0.1f},
                    3);
    /* ease: B's best weights of 100 and 200 (600 is beyond neighbours = 3). */
    seed_item_nlist(r, "ease", 1, 100, (uint64_t[]){200, 300, 400, 600},
                    (float[]){0.9f, 0.5f, 0.3f, 0.25f}, 4);
    seed_item_nlist(r, "ease", 1, 200, (uint64_t[]){100, 500, 300}, (float[]){0.8f, 0.6f, 0.2f}, 3);
    /* usercf: v1 0.5, v2 0.25, v3 0.1 (cut by users = 2). */
    seed_user_neighbours(r, 1, "u1", (const char *[]){"v1", "v2", "v3"},
                         (float[]){0.5f, 0.25f, 0.1f}, 3);
    seed_push(r, "v1", 300, 1.0f);
    seed_push(r, "v1", 100, 3.0f); /* u1's own item: excluded */
    seed_push(r, "v1", 900, 2.0f);
    seed_push(r, "v2", 300, 3.0f);
    seed_push(r, "v2", 901, 0.0f); /* weight unset: counts 1 */
    seed_push(r, "v3", 902, 5.0f);
}

/* Lists: hot, new (+ impressions), geo cells, city, category and demographic hot. */
static void seed_lists(struct fixture *f)
{
    cascade_redis *r = f->redis.conn;
    char key[CASCADE_KEY_MAX], around[8][CASCADE_GEOHASH_MAX + 1];
    for (uint64_t id = 1; id <= 10; id++)
        seed_zadd(r, seed_key(key, "hot", 1, NULL), 10.0 * (double)id, id);
    /* new: item 1000+k created at T0 + k hours, impressions imp[k]; item 999
     * left the window but still has an impressions entry. */
    const double imp[] = {0, 0, 100, 5, 30, 0, 50};
    for (uint64_t k = 1; k <= 6; k++) {
        seed_zadd(r, seed_key(key, "new", 1, NULL), T0 + (double)k * HOUR, 1000 + k);
        seed_zadd(r, seed_key(key, "new", 1, "impressions"), imp[k], 1000 + k);
    }
    seed_zadd(r, seed_key(key, "new", 1, "impressions"), 0, 999);
    /* geo: cell wx4g0 has 1 (T0+1h) and 2 (T0+3h); its north neighbour has 3
     * (T0+2h) and 5 (T0+½h); a far cell has 4 (newest, not near). */
    assert_int_equal(cascade_geohash_neighbours("wx4g0", around), 0);
    snprintf(f->north, sizeof f->north, "%s", around[0]);
    seed_zadd(r, seed_key(key, "geo", 1, "wx4g0"), T0 + HOUR, 1);
    seed_zadd(r, seed_key(key, "geo", 1, "wx4g0"), T0 + 3 * HOUR, 2);
    seed_zadd(r, seed_key(key, "geo", 1, f->north), T0 + 2 * HOUR, 3);
    seed_zadd(r, seed_key(key, "geo", 1, f->north), T0 + 0.5 * HOUR, 5);
    seed_zadd(r, seed_key(key, "geo", 1, "u4pru"), T0 + 9 * HOUR, 4);
    /* city 7: 11 (T0), 12 (T0+2h), 13 (T0+1h). */
    seed_zadd(r, seed_key(key, "city", 1, "7"), T0, 11);
    seed_zadd(r, seed_key(key, "city", 1, "7"), T0 + 2 * HOUR, 12);
    seed_zadd(r, seed_key(key, "city", 1, "7"), T0 + HOUR, 13);
    /* category hot: cat 3 = 31 (9), 32 (6), 33 (3); cat 4 = 41 (4), 31 (2). */
    seed_zadd(r, seed_key(key, "hot", 1, "cat:3"), 9, 31);
    seed_zadd(r, seed_key(key, "hot", 1, "cat:3"), 6, 32);
    seed_zadd(r, seed_key(key, "hot", 1, "cat:3"), 3, 33);
    seed_zadd(r, seed_key(key, "hot", 1, "cat:4"), 4, 41);
    seed_zadd(r, seed_key(key, "hot", 1, "cat:4"), 2, 31);
    /* demographic hot: 25-34 (bucket 3) male (2) = 71 (5), 72 (7); unknown = 73. */
    seed_zadd(r, seed_key(key, "hot", 1, "demo:3:2"), 5, 71);
    seed_zadd(r, seed_key(key, "hot", 1, "demo:3:2"), 7, 72);
    seed_zadd(r, seed_key(key, "hot", 1, "demo:0:0"), 1, 73);
    seed_profile(r, "p1", 30, 2, 7, "wx4g0ec1", (uint32_t[]){3, 4}, 2);
}

/* Authors: u1 follows 51 and 52; interacted 53 (2.0) and 51 (1.0). */
static void seed_authors(cascade_redis *r)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    seed_ok(
        cascade_redis_command(r, &rep, "SADD %s 51 52", cascade_key_user_follows(key, NS, "u1")), r,
        "follows");
    freeReplyObject(rep);
    seed_zadd(r, seed_key(key, "authors", 1, "items:51"), T0 + 1 * HOUR, 501);
    seed_zadd(r, seed_key(key, "authors", 1, "items:51"), T0 + 4 * HOUR, 502);
    seed_zadd(r, seed_key(key, "authors", 1, "items:52"), T0 + 3 * HOUR, 521);
    seed_zadd(r, seed_key(key, "authors", 1, "items:52"), T0 + 2 * HOUR, 522);
    seed_zadd(r, seed_key(key, "authors", 1, "items:53"), T0 + 5 * HOUR, 531);
    seed_zadd(r, seed_key(key, "authors", 1, "items:53"), T0 + 0.5 * HOUR, 532);
    seed_zadd(r, seed_key(key, "authors", 1, "items:54"), T0 + 1 * HOUR, 541);
    seed_zadd(r, seed_key(key, "authors", 1, "items:54"), T0 + 2 * HOUR, 542);
    seed_zadd(r, seed_key(key, "authors", 1, "items:55"), T0, 551);
    seed_zadd(r, seed_key(key, "authors", 1, "items:56"), T0, 561);
    seed_family_nlist(r, "authors", 1, "interacted:u1", (uint64_t[]){53, 51}, (float[]){2.0f, 1.0f},
                      2);
    seed_family_nlist(r, "authors", 1, "similar:53", (uint64_t[]){54, 51}, (float[]){0.5f, 0.9f},
                      2);
    seed_family_nlist(r, "authors", 1, "similar:51", (uint64_t[]){54, 55}, (float[]){0.2f, 0.4f},
                      2);
    seed_family_nlist(r, "authors", 1, "similar:52", (uint64_t[]){55, 56}, (float[]){0.1f, 0.3f},
                      2);
}

/* Cache: pushed 5, 6, 7, 6, 8 (LPUSH, so the list reads 8 6 7 6 5). */
static void seed_cache(cascade_redis *r)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    seed_ok(
        cascade_redis_command(r, &rep, "LPUSH %s 5 6 7 6 8", cascade_key_user_cache(key, NS, "u1")),
        r, "cache");
    freeReplyObject(rep);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    seed_cf(f.redis.conn);
    seed_lists(&f);
    seed_authors(f.redis.conn);
    seed_cache(f.redis.conn);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        seed_publish(f.redis.conn, families[i], 1);
    f.recall = seed_recall(f.redis.pool, NS, NULL, "{\"recall\": {" CHANNELS "}}");
    f.arena = cascade_arena_create(0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    cascade_recall_destroy(f->recall);
    test_redis_fixture_stop(&f->redis);
    return 0;
}

/* Run channel for uid with quota against the fixture's stage. */
static Cascade__V1__RecallResponse *run(struct fixture *f, const char *channel, const char *uid,
                                        uint32_t quota)
{
    return seed_run1(f->recall, f->arena,
                     seed_request(f->arena, uid, quota, 1, (const char *[]){channel}));
}

static void test_itemcf(void **state)
{
    struct fixture *f = *state;
    /* 300: 1·0.5 + 2·0.1 = 0.7; 500: 2·0.3 = 0.6; 400: 1·0.4; 600 is beyond
     * k = 3; 100 and 200 are the user's own items. */
    seed_expect(run(f, "itemcf", "u1", 10), "itemcf", (uint64_t[]){300, 500, 400},
                (float[]){0.7f, 0.6f, 0.4f}, 3);
    seed_expect(run(f, "itemcf", "u1", 2), "itemcf", (uint64_t[]){300, 500}, NULL, 2);
    seed_expect(run(f, "itemcf", "nobody", 10), "itemcf", NULL, NULL, 0);
}

static void test_swing(void **state)
{
    struct fixture *f = *state;
    /* 700: 1·0.6 + 2·0.1 = 0.8; 800: 2·0.25 = 0.5; 300: 1·0.2; 100 is own. */
    seed_expect(run(f, "swing", "u1", 10), "swing", (uint64_t[]){700, 800, 300},
                (float[]){0.8f, 0.5f, 0.2f}, 3);
}

static void test_ease(void **state)
{
    struct fixture *f = *state;
    /* Every history item weighs 1 (binary X), whatever its interest:
     * 300: 0.5 + 0.2 = 0.7; 500: 0.6; 400: 0.3; 600 is beyond k = 3; 100
     * and 200 are the user's own items. With the interest weights (100: 1,
     * 200: 2) the order would be 500 (1.2), 300 (0.9), 400. */
    seed_expect(run(f, "ease", "u1", 10), "ease", (uint64_t[]){300, 500, 400},
                (float[]){0.7f, 0.6f, 0.3f}, 3);
    seed_expect(run(f, "ease", "u1", 1), "ease", (uint64_t[]){300}, NULL, 1);
    seed_expect(run(f, "ease", "nobody", 10), "ease", NULL, NULL, 0);
}

static void test_usercf(void **state)
{
    struct fixture *f = *state;
    /* 300: 0.5·1 + 0.25·3 = 1.25; 900: 0.5·2 = 1.0; 901: 0.25·1; 100 is u1's
     * own; v3 (and its 902) is beyond users = 2. */
    seed_expect(run(f, "usercf", "u1", 10), "usercf", (uint64_t[]){300, 900, 901},
                (float[]){1.25f, 1.0f, 0.25f}, 3);
    seed_expect(run(f, "usercf", "v3", 10), "usercf", NULL, NULL, 0); /* no list */
}

static void test_hot(void **state)
{
    struct fixture *f = *state;
    seed_expect(run(f, "hot", "u1", 3), "hot", (uint64_t[]){10, 9, 8}, (float[]){100, 90, 80}, 3);
    assert_int_equal(run(f, "hot", "u1", 50)->n_candidates, 10);
}

static void test_new_exploration(void **state)
{
    struct fixture *f = *state;
    /* quota 4, share ceil(0.5·4) = 2: the least-shown items with ≤ 10
     * impressions are 1001 and 1005 (0 each; ties by id text), then 999 (0,
     * no longer new) and 1003 (5). 1001 is not among the 4 newest, so its
     * creation time is read separately. The newest others fill up: 1006,
     * 1004. Newest first, score 2^(-age in hours): 1006 1, 1005 ½, 1004 ¼,
     * 1001 1/32. */
    seed_expect(run(f, "new", "u1", 4), "new", (uint64_t[]){1006, 1005, 1004, 1001},
                (float[]){1.0f, 0.5f, 0.25f, 0.03125f}, 4);
    /* quota 6, share 3: 999 is among the least shown but no longer new: skipped. */
    seed_expect(run(f, "new", "u1", 6), "new", (uint64_t[]){1006, 1005, 1004, 1003, 1002, 1001},
                NULL, 6);
    /* Without exploration: the four newest. */
    cascade_recall *plain = seed_recall(f->redis.pool, NS, NULL,
                                        "{\"recall\": {\"channels\": {\"new\": "
                                        "{\"explore_share\": 0, \"half_life_hours\": 1}}}}");
    seed_expect(
        seed_run1(plain, f->arena, seed_request(f->arena, "u1", 4, 1, (const char *[]){"new"})),
        "new", (uint64_t[]){1006, 1005, 1004, 1003}, (float[]){1, 0.5f, 0.25f, 0.125f}, 4);
    cascade_recall_destroy(plain);
}

/* With a pool larger than the share, each user explores its own pick of the
 * little-shown items: always from the pool, stable for the user, and spread
 * over the pool across users. */
static void test_new_exploration_spreads_over_users(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r = seed_recall(f->redis.pool, NS, NULL,
                                    "{\"recall\": {\"channels\": {\"new\": {\"explore_share\": 0.5,"
                                    " \"max_impressions\": 10, \"explore_pool\": 4}}}}");
    /* quota 2, share 1: the pool is the 4 least-shown (999, 1001, 1005, 1003),
     * of which 999 left the window; the newest (1006) fills the other slot. */
    size_t picked[3] = {0, 0, 0};
    const uint64_t pool[3] = {1001, 1005, 1003};
    for (int u = 0; u < 60; u++) {
        char user[16];
        snprintf(user, sizeof user, "x%d", u);
        uint64_t first = 0;
        for (int again = 0; again < 2; again++) {
            Cascade__V1__RecallResponse *resp =
                seed_run1(r, f->arena, seed_request(f->arena, user, 2, 1, (const char *[]){"new"}));
            assert_int_equal(resp->n_candidates, 2);
            assert_int_equal(resp->candidates[0]->item_id, 1006);
            uint64_t explored = resp->candidates[1]->item_id;
            if (again)
                assert_int_equal(explored, first); /* stable for the user */
            first = explored;
        }
        bool in_pool = false;
        for (int k = 0; k < 3; k++)
            if (first == pool[k]) {
                picked[k]++;
                in_pool = true;
            }
        assert_true(in_pool);
    }
    for (int k = 0; k < 3; k++)
        assert_true(picked[k] > 0); /* every little-shown item gets explored */
    cascade_recall_destroy(r);
}

static void test_geo(void **state)
{
    struct fixture *f = *state;
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, 1, (const char *[]){"geo"});
    req->user->geohash = "wx4g0ec1";
    /* Own cell (2 at +3h, 1 at +1h) and the north cell (3 at +2h, 5 at +½h),
     * newest first; the far cell's 4 is not near. */
    seed_expect(seed_run1(f->recall, f->arena, req), "geo", (uint64_t[]){2, 3, 1, 5},
                (float[]){1.0f, 0.5f, 0.25f, 0.1767767f}, 4);
    /* per_cell 1: a neighbour cell gives only its newest item. */
    cascade_recall *one = seed_recall(f->redis.pool, NS, NULL,
                                      "{\"recall\": {\"channels\": {\"geo\": {\"per_cell\": 1}}}}");
    seed_expect(seed_run1(one, f->arena, req), "geo", (uint64_t[]){2, 3, 1}, NULL, 3);
    cascade_recall_destroy(one);
    /* No geohash in the request: the profile's (p1 lives in wx4g0ec1). */
    seed_expect(run(f, "geo", "p1", 2), "geo", (uint64_t[]){2, 3}, NULL, 2);
    /* No location anywhere, or one too coarse for a 5-character cell. */
    seed_expect(run(f, "geo", "u1", 10), "geo", NULL, NULL, 0);
    req = seed_request(f->arena, "u1", 10, 1, (const char *[]){"geo"});
    req->user->geohash = "wx4";
    seed_expect(seed_run1(f->recall, f->arena, req), "geo", NULL, NULL, 0);
    /* An invalid geohash in the request is the caller's error. */
    req->user->geohash = "wx4!a";
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(
        cascade_recall_run(f->recall, f->arena, INT64_MAX, req, &resp, err, sizeof err),
        CASCADE_EINVAL);
    assert_non_null(strstr(err, "user.geohash \"wx4!a\" is not a geohash"));
}

static void test_city(void **state)
{
    struct fixture *f = *state;
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, 1, (const char *[]){"city"});
    req->user->city = 7;
    seed_expect(seed_run1(f->recall, f->arena, req), "city", (uint64_t[]){12, 13, 11},
                (float[]){1.0f, 0.5f, 0.25f}, 3);
    seed_expect(run(f, "city", "p1", 10), "city", (uint64_t[]){12, 13, 11}, NULL, 3); /* profile */
    seed_expect(run(f, "city", "u1", 10), "city", NULL, NULL, 0); /* city unknown */
    req->user->city = 8;                                          /* no list */
    seed_expect(seed_run1(f->recall, f->arena, req), "city", NULL, NULL, 0);
}

/* With recall.profile_cache on, a user's profile (or its absence) is read
 * once and reused within the TTL, by every channel that needs it; a stage
 * without the cache reads the current record. */
static void test_profile_cache(void **state)
{
    struct fixture *f = *state;
    cascade_metrics *m = cascade_metrics_create();
    cascade_recall *cached = seed_recall(f->redis.pool, NS, m,
                                         "{\"recall\": {\"profile_cache\": {\"ttl_ms\": 600000}}}");
    seed_expect(
        seed_run1(cached, f->arena, seed_request(f->arena, "p1", 10, 1, (const char *[]){"city"})),
        "city", (uint64_t[]){12, 13, 11}, NULL, 3);
    /* p9 has no profile yet: no city. */
    seed_expect(
        seed_run1(cached, f->arena, seed_request(f->arena, "p9", 10, 1, (const char *[]){"city"})),
        "city", NULL, NULL, 0);
    /* p1 moves to city 8 (no list) and p9 appears in city 7. */
    seed_profile(f->redis.conn, "p1", 30, 2, 8, "wx4g0ec1", (uint32_t[]){3, 4}, 2);
    seed_profile(f->redis.conn, "p9", 30, 2, 7, "wx4g0ec1", NULL, 0);
    seed_expect(
        seed_run1(cached, f->arena, seed_request(f->arena, "p1", 10, 1, (const char *[]){"city"})),
        "city", (uint64_t[]){12, 13, 11}, NULL, 3); /* still the cached city 7 */
    seed_expect(
        seed_run1(cached, f->arena, seed_request(f->arena, "p9", 10, 1, (const char *[]){"city"})),
        "city", NULL, NULL, 0);                                   /* still cached as absent */
    seed_expect(run(f, "city", "p1", 10), "city", NULL, NULL, 0); /* uncached: city 8 */
    seed_expect(run(f, "city", "p9", 10), "city", (uint64_t[]){12, 13, 11}, NULL, 3);
    seed_profile(f->redis.conn, "p1", 30, 2, 7, "wx4g0ec1", (uint32_t[]){3, 4}, 2); /* restore */
    /* Two reads (p1, p9), two hits. */
    cascade_metric_family *hits =
        cascade_metrics_counter(m, "cascade_recall_profile_cache_hits_total", "x", NULL);
    cascade_metric_family *misses =
        cascade_metrics_counter(m, "cascade_recall_profile_cache_misses_total", "x", NULL);
    assert_true(cascade_metric_value(cascade_metric_get(hits, NULL)) == 2);
    assert_true(cascade_metric_value(cascade_metric_get(misses, NULL)) == 2);
    cascade_recall_destroy(cached);
    cascade_metrics_destroy(m);
}

static void test_follow_author(void **state)
{
    struct fixture *f = *state;
    /* Followed 51 (502 +4h, 501 +1h) and 52 (521 +3h, 522 +2h), newest
     * first; 53 is not followed. */
    seed_expect(run(f, "follow_author", "u1", 10), "follow_author",
                (uint64_t[]){502, 521, 522, 501}, (float[]){1.0f, 0.5f, 0.25f, 0.125f}, 4);
    cascade_recall *one = seed_recall(f->redis.pool, NS, NULL,
                                      "{\"recall\": {\"channels\": {\"follow_author\": "
                                      "{\"per_author\": 1}}}}");
    seed_expect(seed_run1(one, f->arena,
                          seed_request(f->arena, "u1", 10, 1, (const char *[]){"follow_author"})),
                "follow_author", (uint64_t[]){502, 521}, NULL, 2);
    cascade_recall_destroy(one);
    seed_expect(run(f, "follow_author", "v1", 10), "follow_author", NULL, NULL, 0);
}

static void test_interacted_author(void **state)
{
    struct fixture *f = *state;
    /* interest / (1 + position in the author's newest-first list):
     * 531 = 2/1, 532 = 2/2, 502 = 1/1, 501 = 1/2; ties by smaller id. */
    seed_expect(run(f, "interacted_author", "u1", 10), "interacted_author",
                (uint64_t[]){531, 502, 532, 501}, (float[]){2.0f, 1.0f, 1.0f, 0.5f}, 4);
    seed_expect(run(f, "interacted_author", "v1", 10), "interacted_author", NULL, NULL, 0);
}

static void test_similar_author(void **state)
{
    struct fixture *f = *state;
    /* Seeds: interacted 53 (2/2 = 1) and 51 (1/2, raised to 1 as followed),
     * followed 52 (1). S(54) = 0.5 + 0.2 = 0.7, S(55) = 0.4 + 0.1 = 0.5,
     * S(56) = 0.3 (cut: max_authors 2); 51 is a seed, not a suggestion.
     * Items: 542 = 0.7/1, 541 = 0.7/2, 551 = 0.5/1. */
    seed_expect(run(f, "similar_author", "u1", 10), "similar_author", (uint64_t[]){542, 551, 541},
                (float[]){0.7f, 0.5f, 0.35f}, 3);
}

static void test_cache_fifo(void **state)
{
    struct fixture *f = *state;
    /* Oldest first; the second 6 is a repeat. */
    seed_expect(run(f, "cache", "u1", 10), "cache", (uint64_t[]){5, 6, 7, 8},
                (float[]){1.0f, 0.75f, 0.5f, 0.25f}, 4);
    /* A smaller quota takes the oldest end of the list. */
    seed_expect(run(f, "cache", "u1", 3), "cache", (uint64_t[]){5, 6, 7}, NULL, 3);
    seed_expect(run(f, "cache", "nobody", 3), "cache", NULL, NULL, 0);
}

static void test_interest(void **state)
{
    struct fixture *f = *state;
    /* Interests 3 then 4, round-robin: 31 (9/9), 41 (4/4), 32 (6/9), [31
     * again skipped], 33 (3/9). */
    seed_expect(run(f, "interest", "p1", 10), "interest", (uint64_t[]){31, 41, 32, 33},
                (float[]){1.0f, 1.0f, 6.0f / 9, 3.0f / 9}, 4);
    seed_expect(run(f, "interest", "u1", 10), "interest", NULL, NULL, 0); /* no profile */
}

static void test_demo_hot(void **state)
{
    struct fixture *f = *state;
    /* p1: 30 years (bucket 3), gender 2. */
    seed_expect(run(f, "demo_hot", "p1", 10), "demo_hot", (uint64_t[]){72, 71},
                (float[]){7.0f, 5.0f}, 2);
    /* No profile: unknown age and gender; so is an age of 0 with gender 9. */
    seed_expect(run(f, "demo_hot", "u1", 10), "demo_hot", (uint64_t[]){73}, NULL, 1);
    seed_profile(f->redis.conn, "p2", 0, 9, 0, NULL, NULL, 0);
    seed_expect(run(f, "demo_hot", "p2", 10), "demo_hot", (uint64_t[]){73}, NULL, 1);
}

/* Every channel, one request: each returns what it returned alone. */
static void test_all_channels_one_request(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"hot",
                           "itemcf",
                           "swing",
                           "usercf",
                           "new",
                           "geo",
                           "city",
                           "follow_author",
                           "interacted_author",
                           "similar_author",
                           "cache",
                           "interest",
                           "demo_hot"};
    size_t n = sizeof names / sizeof names[0];
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, n, names);
    req->user->geohash = "wx4g0ec1";
    req->user->city = 7;
    Cascade__V1__RecallResponse *resp = seed_run1(f->recall, f->arena, req);
    const uint32_t want[] = {10, 3, 3, 3, 6, 4, 3, 4, 4, 3, 4, 0, 1};
    assert_int_equal(resp->n_channels, n);
    for (size_t c = 0; c < n; c++) {
        assert_string_equal(resp->channels[c]->channel, names[c]);
        assert_int_equal(resp->channels[c]->count, want[c]);
    }
}

/* Both responses hold the same candidates, hits (channel, score, rank) and counts. */
static void expect_same(const Cascade__V1__RecallResponse *a, const Cascade__V1__RecallResponse *b)
{
    assert_int_equal(a->n_candidates, b->n_candidates);
    for (size_t i = 0; i < a->n_candidates; i++) {
        const Cascade__V1__Candidate *x = a->candidates[i], *y = b->candidates[i];
        assert_int_equal(x->item_id, y->item_id);
        assert_int_equal(x->n_channels, y->n_channels);
        for (size_t h = 0; h < x->n_channels; h++) {
            assert_string_equal(x->channels[h]->channel, y->channels[h]->channel);
            assert_int_equal(x->channels[h]->rank, y->channels[h]->rank);
            assert_float_equal(x->channels[h]->score, y->channels[h]->score, 0);
        }
    }
    assert_int_equal(a->n_channels, b->n_channels);
    for (size_t c = 0; c < a->n_channels; c++)
        assert_int_equal(a->channels[c]->count, b->channels[c]->count);
}

/* The hits of one channel in a response, by their rank in the channel
 * (ids[rank], scores[rank]; ranks below 32). Returns how many. */
static size_t channel_hits(const Cascade__V1__RecallResponse *resp, const char *channel,
                           uint64_t *ids, float *scores)
{
    size_t n = 0;
    for (size_t i = 0; i < resp->n_candidates; i++)
        for (size_t h = 0; h < resp->candidates[i]->n_channels; h++)
            if (strcmp(resp->candidates[i]->channels[h]->channel, channel) == 0) {
                uint32_t rank = resp->candidates[i]->channels[h]->rank;
                assert_true(rank < 32);
                ids[rank] = resp->candidates[i]->item_id;
                scores[rank] = resp->candidates[i]->channels[h]->score;
                n++;
            }
    return n;
}

static long long lrange_calls(cascade_redis *r)
{
    return test_redis_command_calls(r, "lrange");
}

/* The user's last-n is read once per request and shared by the channels
 * that expand it: a channel asking for fewer entries than were read, or for
 * any number once the whole list was read, takes the first ones. Each
 * channel's hits in one request equal its hits alone (last_n 1, 2 and 5 over
 * u1's two interactions, in orders that read short then longer, and the whole
 * list first), and the LRANGEs per request are counted. */
static void test_lastn_read_once(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r =
        seed_recall(f->redis.pool, NS, NULL,
                    "{\"recall\": {\"list_cache\": {\"enabled\": false}, \"channels\": {"
                    " \"itemcf\": {\"neighbours\": 3, \"last_n\": 1}, \"swing\": {\"last_n\": 2},"
                    " \"ease\": {\"neighbours\": 3, \"last_n\": 5}}}}");
    static const struct {
        const char *names[3];
        long long lranges; /* per request with all three */
    } orders[] = {
        /* 1 of u1's 2 entries; 2 (as many as asked: maybe not all); 5: the whole list. */
        {{"itemcf", "swing", "ease"}, 3},
        {{"ease", "itemcf", "swing"}, 1}, /* 2 where 5 were asked: the whole list first */
        {{"swing", "ease", "itemcf"}, 2}, /* 2, then 5; itemcf takes the first of those */
    };
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        long long before = lrange_calls(f->redis.conn);
        Cascade__V1__RecallResponse *all =
            seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 3, orders[o].names));
        assert_int_equal(lrange_calls(f->redis.conn) - before, orders[o].lranges);
        for (size_t c = 0; c < 3; c++) {
            uint64_t ids_all[32] = {0}, ids_one[32] = {0};
            float sc_all[32] = {0}, sc_one[32] = {0};
            const char *name = orders[o].names[c];
            Cascade__V1__RecallResponse *one =
                seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 1, &name));
            size_t n = channel_hits(all, name, ids_all, sc_all);
            assert_true(n > 0);
            assert_int_equal(channel_hits(one, name, ids_one, sc_one), n);
            assert_memory_equal(ids_all, ids_one, sizeof ids_all);
            assert_memory_equal(sc_all, sc_one, sizeof sc_all);
        }
    }
    /* itemcf with last_n 1 sees only the newest interaction (200): 100 (0.8),
     * 500 (0.3), 300 (0.1), times its weight 2 — not the two-source answer. */
    const char *itemcf = "itemcf";
    seed_expect(seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 1, &itemcf)), "itemcf",
                (uint64_t[]){100, 500, 300}, (float[]){1.6f, 0.6f, 0.2f}, 3);
    cascade_recall_destroy(r);
}

/* The ChannelResult of `channel` in resp. */
static const Cascade__V1__ChannelResult *channel_result(const Cascade__V1__RecallResponse *resp,
                                                        const char *channel)
{
    for (size_t c = 0; c < resp->n_channels; c++)
        if (strcmp(resp->channels[c]->channel, channel) == 0)
            return resp->channels[c];
    fail_msg("no result for channel %s", channel);
    return NULL;
}

/* The request's prefetch reads the user's own keys once for all channels:
 * u1's last-n once (usercf no longer reads it again with its neighbours'),
 * the cache list with it. Each channel's hits in the one request are the
 * hand-worked answers of its own test. */
static void test_prefetch_reads_once(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"itemcf",        "usercf", "cache", "interest", "interacted_author",
                           "similar_author"};
    long long before = lrange_calls(f->redis.conn);
    Cascade__V1__RecallResponse *all = seed_run1(
        f->recall, f->arena, seed_request(f->arena, "u1", 10, sizeof names / sizeof *names, names));
    /* u1's last-n, the cache list, v1's and v2's last-n (was 5: u1's twice). */
    assert_int_equal(lrange_calls(f->redis.conn) - before, 4);
    uint64_t ids[32] = {0};
    float sc[32] = {0};
    /* usercf (test_usercf): 300 (0.5·1 + 0.25·3), 900 (1.0), 901 (0.25). */
    assert_int_equal(channel_hits(all, "usercf", ids, sc), 3);
    assert_memory_equal(ids, ((uint64_t[]){300, 900, 901}), 3 * sizeof *ids);
    assert_float_equal(sc[0], 1.25f, 1e-5);
    assert_float_equal(sc[1], 1.0f, 1e-5);
    assert_float_equal(sc[2], 0.25f, 1e-5);
    /* cache (test_cache_fifo): oldest first, the repeated 6 once. */
    memset(ids, 0, sizeof ids);
    assert_int_equal(channel_hits(all, "cache", ids, sc), 4);
    assert_memory_equal(ids, ((uint64_t[]){5, 6, 7, 8}), 4 * sizeof *ids);
    assert_int_equal(channel_hits(all, "itemcf", ids, sc), 3);
    assert_int_equal(channel_hits(all, "interest", ids, sc), 0); /* u1 has no profile */
    /* Both author channels parse the one interacted-authors reply
     * (test_interacted_author, test_similar_author). */
    assert_int_equal(channel_hits(all, "interacted_author", ids, sc), 4);
    assert_memory_equal(ids, ((uint64_t[]){531, 502, 532, 501}), 4 * sizeof *ids);
    assert_float_equal(sc[0], 2.0f, 1e-5);
    assert_float_equal(sc[3], 0.5f, 1e-5);
    assert_int_equal(channel_hits(all, "similar_author", ids, sc), 3);
    assert_memory_equal(ids, ((uint64_t[]){542, 551, 541}), 3 * sizeof *ids);
    assert_float_equal(sc[0], 0.7f, 1e-5);
    assert_float_equal(sc[2], 0.35f, 1e-5);
    /* The interacted authors are read once for both: one GET fewer than the
     * two channels alone (generations cached, so the other GETs — similar
     * lists — are the same either way). */
    cascade_recall *r = seed_recall(f->redis.pool, NS, NULL,
                                    "{\"recall\": {\"generation_ttl_ms\": 3600000, " CHANNELS "}}");
    const char *authors[] = {"interacted_author", "similar_author"};
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 2, authors)); /* generations */
    long long g0 = test_redis_command_calls(f->redis.conn, "get");
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 1, &authors[0]));
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 1, &authors[1]));
    long long g1 = test_redis_command_calls(f->redis.conn, "get");
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 10, 2, authors));
    long long g2 = test_redis_command_calls(f->redis.conn, "get");
    assert_int_equal(g2 - g1, g1 - g0 - 1);
    cascade_recall_destroy(r);
}

/* What the prefetch could not read cleanly is left to the channel's own read:
 * user b1 has a profile that is not a record and a cache key that is not a
 * list; c1 is the same user with neither. In one batched request the cache
 * and profile channels fail with the message of their own read (as when
 * each runs alone, without a prefetch), and the other channels — read after
 * the failures on the same connection — answer as for c1. */
static void test_prefetch_failure_left_to_channel(void **state)
{
    struct fixture *f = *state;
    cascade_redis *r = f->redis.conn;
    char key[CASCADE_KEY_MAX];
    const char *users[] = {"b1", "c1"};
    for (size_t u = 0; u < 2; u++) {
        seed_push(r, users[u], 100, 1.0f);
        seed_user_neighbours(r, 1, users[u], (const char *[]){"v1", "v2"}, (float[]){0.5f, 0.25f},
                             2);
    }
    seed_set(r, cascade_key_user(key, NS, "b1"), "\xff\xff\xff", 3);
    seed_set(r, cascade_key_user_cache(key, NS, "b1"), "x", 1);
    const char *names[] = {"interest", "itemcf", "cache", "usercf"};
    const uint32_t quotas[] = {10, 10, 10, 10};
    size_t n = sizeof names / sizeof *names;
    Cascade__V1__RecallResponse *bad =
        seed_run1(f->recall, f->arena, seed_spec_request(f->arena, "b1", n, names, quotas));
    Cascade__V1__RecallResponse *good =
        seed_run1(f->recall, f->arena, seed_spec_request(f->arena, "c1", n, names, quotas));
    for (size_t c = 0; c < 2; c++) {
        const char *name = c == 0 ? "interest" : "cache";
        const Cascade__V1__ChannelResult *got = channel_result(bad, name);
        const Cascade__V1__ChannelResult *alone = channel_result(
            seed_run1(f->recall, f->arena, seed_spec_request(f->arena, "b1", 1, &name, quotas)),
            name);
        assert_int_equal(got->status, GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(alone->status, GRPC_STATUS_UNAVAILABLE);
        assert_string_equal(got->message, alone->message);
        assert_int_equal(got->count, 0);
    }
    assert_int_equal(channel_result(good, "cache")->status, GRPC_STATUS_OK);
    for (size_t c = 1; c < n; c += 2) { /* itemcf, usercf */
        uint64_t ids_bad[32] = {0}, ids_good[32] = {0};
        float sc_bad[32] = {0}, sc_good[32] = {0};
        size_t k = channel_hits(bad, names[c], ids_bad, sc_bad);
        assert_true(k > 0);
        assert_int_equal(channel_result(bad, names[c])->status, GRPC_STATUS_OK);
        assert_int_equal(channel_hits(good, names[c], ids_good, sc_good), k);
        assert_memory_equal(ids_bad, ids_good, sizeof ids_bad);
        assert_memory_equal(sc_bad, sc_good, sizeof sc_bad);
    }
    /* d1's interacted authors are a string that is not a record: the
     * prefetch reads it cleanly (no profile comes before it) and both author
     * channels fail parsing it, with the message of their own read. */
    seed_set(r, seed_key(key, "authors", 1, "interacted:d1"), "\xff\xff\xff", 3);
    const char *authors[] = {"interest", "interacted_author", "similar_author"};
    Cascade__V1__RecallResponse *d1 =
        seed_run1(f->recall, f->arena, seed_spec_request(f->arena, "d1", 3, authors, quotas));
    assert_int_equal(channel_result(d1, "interest")->status, GRPC_STATUS_OK);
    for (size_t c = 1; c < 3; c++) {
        const Cascade__V1__ChannelResult *got = channel_result(d1, authors[c]);
        const Cascade__V1__ChannelResult *alone =
            channel_result(seed_run1(f->recall, f->arena,
                                     seed_spec_request(f->arena, "d1", 1, &authors[c], quotas)),
                           authors[c]);
        assert_int_equal(got->status, GRPC_STATUS_UNAVAILABLE);
        assert_string_equal(got->message, alone->message);
    }
}

/* The list and author channels answer from the list cache exactly as a
 * stage without it, for a larger quota after a smaller one and the other way round, and
 * the repeated requests are served from the cache (its hit counter). */
static void test_list_cache_same_answers(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"hot", "new", "geo", "city", "interest", "demo_hot"};
    size_t n = sizeof names / sizeof names[0];
    cascade_metrics *m = cascade_metrics_create();
    cascade_recall *cached = seed_recall(
        f->redis.pool, NS, m, "{\"recall\": {\"list_cache\": {\"max_len\": 4}, " CHANNELS "}}");
    cascade_recall *plain =
        seed_recall(f->redis.pool, NS, NULL,
                    "{\"recall\": {\"list_cache\": {\"enabled\": false}, " CHANNELS "}}");
    const char *authors[] = {"follow_author", "interacted_author", "similar_author"};
    const uint32_t quotas[] = {2, 10, 3, 2, 10, 6};
    for (size_t q = 0; q < sizeof quotas / sizeof quotas[0]; q++) {
        Cascade__V1__RecallRequest *req = seed_request(f->arena, "p1", quotas[q], n, names);
        expect_same(seed_run1(cached, f->arena, req), seed_run1(plain, f->arena, req));
        req = seed_request(f->arena, "u1", quotas[q], 3, authors);
        expect_same(seed_run1(cached, f->arena, req), seed_run1(plain, f->arena, req));
    }
    cascade_metric_family *hits =
        cascade_metrics_counter(m, "cascade_recall_list_cache_hits_total", "x", NULL);
    cascade_metric_family *misses =
        cascade_metrics_counter(m, "cascade_recall_list_cache_misses_total", "x", NULL);
    /* The second request (quota 10 over max_len 4) reads past the cache; the
     * repeats of quotas 2, 3 and 6 are served by the complete lists. */
    assert_true(cascade_metric_value(cascade_metric_get(hits, NULL)) >= 10);
    assert_true(cascade_metric_value(cascade_metric_get(misses, NULL)) > 0);
    /* CF neighbour lists are cached too (itemcf reads 3 per source, within
     * max_len; swing's 50 are not kept): same answers, and itemcf is served
     * from memory — on the first request too, where the neighbour prefetch
     * of the two channels read its lists into the cache before it ran. */
    const char *cf[] = {"itemcf", "swing"};
    for (int rep = 0; rep < 2; rep++) {
        double before = cascade_metric_value(cascade_metric_get(hits, NULL));
        Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, 2, cf);
        expect_same(seed_run1(cached, f->arena, req), seed_run1(plain, f->arena, req));
        double gained = cascade_metric_value(cascade_metric_get(hits, NULL)) - before;
        assert_true(gained > 0);
    }
    cascade_recall_destroy(plain);
    cascade_recall_destroy(cached);
    cascade_metrics_destroy(m);
}

/* itemcf, swing and ease together read their neighbour lists in one round
 * trip (the neighbour prefetch, into the list cache) instead of one each, and
 * answer exactly as without the cache; a second request finds every list in
 * memory. Round trips are counted on this thread's pooled connection. */
static void test_neighbours_prefetch(void **state)
{
    struct fixture *f = *state;
    const char *cf[] = {"itemcf", "swing", "ease"};
    cascade_redis *conn = cascade_redis_pool_get(f->redis.pool);
    cascade_recall *cached = seed_recall(
        f->redis.pool, NS, NULL, "{\"recall\": {\"generation_ttl_ms\": 3600000, " CHANNELS "}}");
    cascade_recall *plain = seed_recall(f->redis.pool, NS, NULL,
                                        "{\"recall\": {\"list_cache\": {\"enabled\": false},"
                                        " \"generation_ttl_ms\": 3600000, " CHANNELS "}}");
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, 3, cf);
    /* Generations into both stages' caches first. */
    seed_run1(cached, f->arena, seed_request(f->arena, "nobody", 10, 3, cf));
    seed_run1(plain, f->arena, seed_request(f->arena, "nobody", 10, 3, cf));
    uint64_t t0 = cascade_redis_round_trips(conn);
    Cascade__V1__RecallResponse *want = seed_run1(plain, f->arena, req);
    uint64_t t1 = cascade_redis_round_trips(conn);
    Cascade__V1__RecallResponse *got = seed_run1(cached, f->arena, req);
    uint64_t t2 = cascade_redis_round_trips(conn);
    expect_same(got, want);
    uint64_t ids[32];
    float sc[32];
    for (size_t c = 0; c < 3; c++) {
        assert_int_equal(channel_result(got, cf[c])->status, GRPC_STATUS_OK);
        assert_true(channel_hits(got, cf[c], ids, sc) > 0);
    }
    /* Without the cache: the user's last-n, then one read per channel. */
    assert_int_equal(t1 - t0, 1 + 3);
    assert_int_equal(t2 - t1, 1 + 1);
    /* Again: every list in memory (swing's too: within max_len here). */
    seed_run1(cached, f->arena, req);
    assert_int_equal(cascade_redis_round_trips(conn) - t2, 1);
    cascade_recall_destroy(plain);
    cascade_recall_destroy(cached);
}

/* A published generation is picked up by a caching stage at once (with the
 * generation looked up on every request): city and new from generation 2.
 * Generation 3 restores the fixture's contents. */
static void test_list_cache_new_generation(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    cascade_recall *r = seed_recall(f->redis.pool, NS, NULL,
                                    "{\"recall\": {\"generation_ttl_ms\": 0, " CHANNELS "}}");
    Cascade__V1__RecallRequest *city =
        seed_request(f->arena, "p1", 10, 1, (const char *[]){"city"});
    Cascade__V1__RecallRequest *fresh = seed_request(f->arena, "p1", 4, 1, (const char *[]){"new"});
    for (int i = 0; i < 2; i++) {
        seed_expect(seed_run1(r, f->arena, city), "city", (uint64_t[]){12, 13, 11}, NULL, 3);
        seed_expect(seed_run1(r, f->arena, fresh), "new", (uint64_t[]){1006, 1005, 1004, 1001},
                    NULL, 4);
    }
    seed_zadd(f->redis.conn, seed_key(key, "city", 2, "7"), T0, 14);
    seed_publish(f->redis.conn, "city", 2);
    seed_zadd(f->redis.conn, seed_key(key, "new", 2, NULL), T0 + HOUR, 2001);
    seed_zadd(f->redis.conn, seed_key(key, "new", 2, NULL), T0 + 2 * HOUR, 2002);
    seed_zadd(f->redis.conn, seed_key(key, "new", 2, "impressions"), 0, 2001);
    seed_zadd(f->redis.conn, seed_key(key, "new", 2, "impressions"), 50, 2002);
    seed_publish(f->redis.conn, "new", 2);
    seed_expect(seed_run1(r, f->arena, city), "city", (uint64_t[]){14}, NULL, 1);
    seed_expect(seed_run1(r, f->arena, fresh), "new", (uint64_t[]){2002, 2001}, NULL, 2);

    seed_zadd(f->redis.conn, seed_key(key, "city", 3, "7"), T0, 11);
    seed_zadd(f->redis.conn, seed_key(key, "city", 3, "7"), T0 + 2 * HOUR, 12);
    seed_zadd(f->redis.conn, seed_key(key, "city", 3, "7"), T0 + HOUR, 13);
    seed_publish(f->redis.conn, "city", 3);
    seed_expect(seed_run1(r, f->arena, city), "city", (uint64_t[]){12, 13, 11}, NULL, 3);
    cascade_recall_destroy(r);
}

/* Redis wiped and rebuilt: generation numbers start again at 1 with other
 * contents. A caching stage that sees the generation go back (here to 0,
 * while the rebuild runs) drops its lists and serves the new ones. */
static void test_list_cache_rebuilt_store(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX], gen_key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_recall *r =
        seed_recall(f->redis.pool, NS, NULL, "{\"recall\": {\"generation_ttl_ms\": 0}}");
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"});
    seed_expect(seed_run1(r, f->arena, req), "hot", (uint64_t[]){10, 9, 8}, NULL, 3);
    seed_ok(cascade_redis_command(f->redis.conn, &rep, "DEL %s %s",
                                  cascade_key_generation(gen_key, NS, "hot"),
                                  seed_key(key, "hot", 1, NULL)),
            f->redis.conn, "wipe");
    freeReplyObject(rep);
    seed_expect(seed_run1(r, f->arena, req), "hot", NULL, NULL, 0);
    seed_zadd(f->redis.conn, key, 5, 77);
    seed_publish(f->redis.conn, "hot", 1);
    seed_expect(seed_run1(r, f->arena, req), "hot", (uint64_t[]){77}, NULL, 1);
    cascade_recall_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itemcf),
        cmocka_unit_test(test_swing),
        cmocka_unit_test(test_ease),
        cmocka_unit_test(test_usercf),
        cmocka_unit_test(test_hot),
        cmocka_unit_test(test_new_exploration),
        cmocka_unit_test(test_new_exploration_spreads_over_users),
        cmocka_unit_test(test_geo),
        cmocka_unit_test(test_city),
        cmocka_unit_test(test_profile_cache),
        cmocka_unit_test(test_follow_author),
        cmocka_unit_test(test_interacted_author),
        cmocka_unit_test(test_similar_author),
        cmocka_unit_test(test_cache_fifo),
        cmocka_unit_test(test_interest),
        cmocka_unit_test(test_demo_hot),
        cmocka_unit_test(test_all_channels_one_request),
        cmocka_unit_test(test_lastn_read_once),
        cmocka_unit_test(test_prefetch_reads_once),
        cmocka_unit_test(test_prefetch_failure_left_to_channel),
        cmocka_unit_test(test_list_cache_same_answers),
        cmocka_unit_test(test_neighbours_prefetch),
        /* Last: these switch generations and rebuild the hot list. */
        cmocka_unit_test(test_list_cache_new_generation),
        cmocka_unit_test(test_list_cache_rebuilt_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
