/* Unit tests for common/item_cache.c against a real redis-server: records
 * are served from memory within the TTL (found and missing alike), read
 * again after it, right under slot collisions, and configured per stage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "item_cache.h"
#include "metrics.h"
#include "store.h"
#include "support.h"

#define NS "ic"

static void put_item(cascade_redis *r, uint64_t id, uint32_t clicks)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.category = (uint32_t)(id % 5) + 1;
    rec.has_stats = true;
    rec.stats.clicks = clicks;
    assert_int_equal(cascade_store_put_item(r, NS, &rec), 0);
}

/* Read ids 1..3 and 99 (no record) through c; returns the hits. */
static size_t read_four(cascade_item_cache *c, cascade_redis *r, cascade_v1_ItemRecord *recs,
                        bool *found)
{
    const uint64_t ids[4] = {1, 2, 3, 99};
    size_t hits = 0;
    memset(recs, 0x5a, 4 * sizeof(*recs)); /* garbage the call must overwrite */
    assert_int_equal(cascade_item_cache_get(c, r, NS, ids, 4, recs, found, &hits), 0);
    return hits;
}

static void test_hits_within_ttl(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f->conn, id, (uint32_t)(10 * id));
    cascade_item_cache *c = cascade_item_cache_create(64, 60000);
    assert_non_null(c);
    cascade_metrics *m = cascade_metrics_create();
    cascade_item_cache_set_metrics(c, m, "rank");
    assert_int_equal(read_four(c, f->conn, recs, found), 0);
    assert_true(found[0] && found[1] && found[2] && !found[3]);
    assert_int_equal(recs[1].stats.clicks, 20);
    assert_int_equal(recs[3].item_id, 0); /* zeroed, as cascade_store_get_items does */
    /* Changed in Redis: the cache still serves what it read (within the TTL). */
    put_item(f->conn, 2, 777);
    assert_int_equal(read_four(c, f->conn, recs, found), 4);
    assert_int_equal(recs[1].stats.clicks, 20);
    assert_true(!found[3] && recs[3].item_id == 0);
    /* 4 misses, then 4 hits, counted. */
    cascade_metric_family *hit_family =
        cascade_metrics_counter(m, "cascade_rank_item_cache_hits_total", "x", NULL);
    cascade_metric_family *miss_family =
        cascade_metrics_counter(m, "cascade_rank_item_cache_misses_total", "x", NULL);
    assert_true(cascade_metric_value(cascade_metric_get(hit_family, NULL)) == 4);
    assert_true(cascade_metric_value(cascade_metric_get(miss_family, NULL)) == 4);
    cascade_metrics_destroy(m);
    /* No cache: straight to Redis. */
    size_t hits = 99;
    const uint64_t two = 2;
    assert_int_equal(cascade_item_cache_get(NULL, f->conn, NS, &two, 1, recs, found, &hits), 0);
    assert_int_equal(hits, 0);
    assert_int_equal(recs[0].stats.clicks, 777);
    cascade_item_cache_destroy(c);
}

static void test_expiry_and_collisions(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f->conn, id, 5);
    /* One slot: every id evicts the previous one, answers stay right. */
    cascade_item_cache *one = cascade_item_cache_create(1, 60000);
    assert_non_null(one);
    for (int round = 0; round < 2; round++) {
        assert_true(read_four(one, f->conn, recs, found) <= 1);
        for (int i = 0; i < 3; i++)
            assert_true(found[i] && recs[i].item_id == (uint64_t)i + 1);
        assert_false(found[3]);
    }
    cascade_item_cache_destroy(one);
    /* A 1 ms TTL: once the clock moves on, records are read again. */
    cascade_item_cache *brief = cascade_item_cache_create(64, 1);
    assert_non_null(brief);
    assert_int_equal(read_four(brief, f->conn, recs, found), 0);
    put_item(f->conn, 3, 321);
    int64_t t0 = cascade_now_ms();
    while (cascade_now_ms() < t0 + 2) {
    } /* poll the clock past the TTL */
    assert_int_equal(read_four(brief, f->conn, recs, found), 0);
    assert_int_equal(recs[2].stats.clicks, 321);
    cascade_item_cache_destroy(brief);
}

static void test_config(void **state)
{
    (void)state;
    char err[256];
    cascade_config *cfg = NULL;
    cascade_item_cache *c = (cascade_item_cache *)1;
    /* Default: off. */
    assert_int_equal(cascade_item_cache_from_config(NULL, "rank", &c, err, sizeof err), 0);
    assert_null(c);
    assert_null(cascade_item_cache_create(0, 1000));
    assert_null(cascade_item_cache_create(16, 0));
    cfg = cascade_config_parse("{\"rank\": {\"item_cache\": {\"ttl_ms\": 500, \"slots\": 8}}}", "t",
                               err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cascade_item_cache_from_config(cfg, "rank", &c, err, sizeof err), 0);
    assert_non_null(c);
    cascade_item_cache_destroy(c);
    assert_int_equal(cascade_item_cache_from_config(cfg, "prerank", &c, err, sizeof err), 0);
    assert_null(c); /* another stage's section */
    cascade_config_destroy(cfg);
    cfg = cascade_config_parse("{\"rank\": {\"item_cache\": {\"ttl_ms\": -1}}}", "t", err,
                               sizeof err);
    assert_non_null(cfg);
    assert_int_not_equal(cascade_item_cache_from_config(cfg, "rank", &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "rank.item_cache.ttl_ms"));
    cascade_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_within_ttl),
        cmocka_unit_test(test_expiry_and_collisions),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
