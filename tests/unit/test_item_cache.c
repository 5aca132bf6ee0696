/* Unit tests for common/item_cache.c against a real redis-server: records
 * are served from memory within the TTL (found and missing alike), read
 * again after it, right under slot collisions, and configured per stage;
 * and readers on several threads sharing one cache while a writer rewrites
 * the records in Redis (scripts/tsan.sh runs it under TSan). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "item_cache.h"
#include "metrics.h"
#include "rng.h"
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
    assert_int_equal(
        cascade_item_cache_from_config(NULL, "rank", NULL, NS, NULL, NULL, &c, err, sizeof err), 0);
    assert_null(c);
    assert_null(cascade_item_cache_create(0, 1000));
    assert_null(cascade_item_cache_create(16, 0));
    cfg = cascade_config_parse("{\"rank\": {\"item_cache\": {\"ttl_ms\": 500, \"slots\": 8}}}", "t",
                               err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(
        cascade_item_cache_from_config(cfg, "rank", NULL, NS, NULL, NULL, &c, err, sizeof err), 0);
    assert_non_null(c);
    cascade_item_cache_destroy(c);
    assert_int_equal(
        cascade_item_cache_from_config(cfg, "prerank", NULL, NS, NULL, NULL, &c, err, sizeof err),
        0);
    assert_null(c); /* another stage's section */
    cascade_config_destroy(cfg);
    cfg = cascade_config_parse("{\"rank\": {\"item_cache\": {\"ttl_ms\": -1}}}", "t", err,
                               sizeof err);
    assert_non_null(cfg);
    assert_int_not_equal(
        cascade_item_cache_from_config(cfg, "rank", NULL, NS, NULL, NULL, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "rank.item_cache.ttl_ms"));
    cascade_config_destroy(cfg);
}

/* ------------------------------------------------------------ threaded */

#define T_READERS 6
#define T_ITEMS 200        /* ids 1..T_ITEMS are in Redis */
#define T_ABSENT_FROM 1001 /* ids from here on are never written */
#define T_VERSIONS 40      /* the writer rewrites every item this often */
#define T_BATCH 24
#define T_SLOTS 64  /* fewer than the items: colliding ids evict each other */
#define T_TTL_MS 20 /* entries expire and are read again while the writer runs */

/* A version v of item id: fields tied to the id and to each other, so a
 * record of another id, or one mixed from two writes, is seen. */
static int put_version(cascade_redis *r, uint64_t id, uint32_t v)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.author_id = id * 7 + 1;
    rec.category = (uint32_t)(id % 5) + 1;
    rec.has_stats = true;
    rec.stats.clicks = v;
    rec.stats.likes = (uint32_t)id + v;
    return cascade_store_put_item(r, NS, &rec);
}

struct shared {
    cascade_redis_pool *pool;
    cascade_item_cache *cache;
    atomic_uint published; /* the version the writer has started to write */
    atomic_bool writing;
    struct test_violations bad;
    atomic_long hits, lookups;
};

static void *writer_main(void *arg)
{
    struct shared *s = arg;
    cascade_redis *r = cascade_redis_pool_get(s->pool);
    for (uint32_t v = 1; v <= T_VERSIONS; v++) {
        atomic_store(&s->published, v);
        for (uint64_t id = 1; id <= T_ITEMS; id++)
            if (put_version(r, id, v) != 0)
                test_violation(&s->bad, "write failed: %s", cascade_redis_error(r));
    }
    atomic_store(&s->writing, false);
    return NULL;
}

/* One read through the shared cache: every present id comes back as some
 * version the writer wrote, whole; every absent id as not found, zeroed. */
static void check_read(struct shared *s, const uint64_t *ids, const cascade_v1_ItemRecord *recs,
                       const bool *found)
{
    for (size_t i = 0; i < T_BATCH; i++) {
        const cascade_v1_ItemRecord *rec = &recs[i];
        if (ids[i] >= T_ABSENT_FROM) {
            if (found[i] || rec->item_id != 0)
                test_violation(&s->bad, "absent id %llu found", (unsigned long long)ids[i]);
        } else if (!found[i] || rec->item_id != ids[i] || rec->author_id != ids[i] * 7 + 1) {
            test_violation(&s->bad, "id %llu: found %d, record of item %llu",
                           (unsigned long long)ids[i], found[i], (unsigned long long)rec->item_id);
        } else if (rec->stats.likes != ids[i] + rec->stats.clicks ||
                   rec->stats.clicks > atomic_load(&s->published)) {
            test_violation(&s->bad, "id %llu: clicks %u likes %u is no version written",
                           (unsigned long long)ids[i], rec->stats.clicks, rec->stats.likes);
        }
    }
}

static void *reader_main(void *arg)
{
    struct shared *s = arg;
    cascade_redis *r = cascade_redis_pool_get(s->pool);
    struct cascade_rng rng;
    cascade_rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
    uint64_t ids[T_BATCH];
    cascade_v1_ItemRecord recs[T_BATCH];
    bool found[T_BATCH];
    /* Read while the writer writes, and a little after it. */
    for (int after = 0; atomic_load(&s->writing) || after < 20;
         after += !atomic_load(&s->writing)) {
        for (size_t i = 0; i < T_BATCH; i++)
            ids[i] = i % 6 == 5 ? T_ABSENT_FROM + cascade_rng_below(&rng, 20)
                                : 1 + cascade_rng_below(&rng, T_ITEMS);
        size_t hits = 0;
        memset(recs, 0x5a, sizeof recs);
        if (cascade_item_cache_get(s->cache, r, NS, ids, T_BATCH, recs, found, &hits) != 0) {
            test_violation(&s->bad, "read failed: %s", cascade_redis_error(r));
            continue;
        }
        check_read(s, ids, recs, found);
        atomic_fetch_add(&s->hits, (long)hits);
        atomic_fetch_add(&s->lookups, T_BATCH);
    }
    return NULL;
}

static double counter(cascade_metrics *m, const char *name)
{
    return cascade_metric_value(
        cascade_metric_get(cascade_metrics_counter(m, name, "x", NULL), NULL));
}

static void test_threads_read_while_written(void **state)
{
    struct test_redis_fixture *f = *state;
    static struct shared s;
    memset(&s, 0, sizeof s);
    s.pool = f->pool;
    for (uint64_t id = 1; id <= T_ITEMS; id++)
        assert_int_equal(put_version(f->conn, id, 0), 0);
    s.cache = cascade_item_cache_create(T_SLOTS, T_TTL_MS);
    assert_non_null(s.cache);
    cascade_metrics *m = cascade_metrics_create();
    cascade_item_cache_set_metrics(s.cache, m, "rank");
    atomic_store(&s.writing, true);

    pthread_t writer, readers[T_READERS];
    assert_int_equal(pthread_create(&writer, NULL, writer_main, &s), 0);
    for (int i = 0; i < T_READERS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &s), 0);
    assert_int_equal(pthread_join(writer, NULL), 0);
    for (int i = 0; i < T_READERS; i++)
        assert_int_equal(pthread_join(readers[i], NULL), 0);

    if (atomic_load(&s.bad.count) != 0)
        fail_msg("%ld violations; first: %s", atomic_load(&s.bad.count), s.bad.first);
    /* Every record asked for was counted once, as a hit or as a miss. */
    long lookups = atomic_load(&s.lookups), hits = atomic_load(&s.hits);
    assert_true(lookups > 0);
    assert_true(counter(m, "cascade_rank_item_cache_hits_total") == (double)hits);
    assert_true(counter(m, "cascade_rank_item_cache_misses_total") == (double)(lookups - hits));
    assert_true(hits > 0 && hits < lookups);

    /* Once the TTL has passed, every item reads as the writer's last version. */
    int64_t t0 = cascade_now_ms();
    while (cascade_now_ms() < t0 + T_TTL_MS + 1) {
    } /* poll the clock past the TTL */
    uint64_t ids[T_ITEMS];
    static cascade_v1_ItemRecord recs[T_ITEMS];
    bool found[T_ITEMS];
    for (size_t i = 0; i < T_ITEMS; i++)
        ids[i] = i + 1;
    assert_int_equal(cascade_item_cache_get(s.cache, f->conn, NS, ids, T_ITEMS, recs, found, NULL),
                     0);
    for (size_t i = 0; i < T_ITEMS; i++) {
        assert_true(found[i]);
        assert_int_equal(recs[i].stats.clicks, T_VERSIONS);
    }
    cascade_metrics_destroy(m);
    cascade_item_cache_destroy(s.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_within_ttl),
        cmocka_unit_test(test_expiry_and_collisions),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_threads_read_while_written),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
