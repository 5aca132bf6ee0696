/* Unit tests for the item cache kept exact by Redis change tracking
 * (common/item_cache.c with common/key_tracker.c) against a real
 * redis-server: a rewritten or deleted record is read fresh although no TTL
 * has passed, FLUSHDB drops everything, a record read before its change was
 * announced is not stored, a server that goes away makes the cache fall back
 * to ttl_ms and tracking comes back with the server, and the tracker works
 * over a Unix socket with AUTH. Waits are on the tracker's state and
 * message counts, never on the clock. */
#include <setjmp.h>
#include <stdarg.h>
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
#include "key_tracker.h"
#include "metrics.h"
#include "store.h"
#include "support.h"

#define NS "ict"
#define WAIT_MS 10000 /* a bound for the waits, never reached when things work */

static void put_item(cascade_redis *r, uint64_t id, uint32_t clicks)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.has_stats = true;
    rec.stats.clicks = clicks;
    assert_int_equal(cascade_store_put_item(r, NS, &rec), 0);
}

/* A command that must succeed; its reply is dropped. */
#define COMMAND(r, ...)                                                                            \
    do {                                                                                           \
        redisReply *rep_ = NULL;                                                                   \
        assert_int_equal(cascade_redis_command(r, &rep_, __VA_ARGS__), 0);                         \
        freeReplyObject(rep_);                                                                     \
    } while (0)

static double metric(cascade_metrics *m, const char *name, bool gauge)
{
    cascade_metric_family *f = gauge ? cascade_metrics_gauge(m, name, "x", NULL)
                                     : cascade_metrics_counter(m, name, "x", NULL);
    return cascade_metric_value(cascade_metric_get(f, NULL));
}

/* A cache of 64 slots kept ttl_ms untracked, tracking on the server opts
 * names, its metrics in m (stage "rank"); returns once tracking is on. */
static cascade_item_cache *tracked_cache(const struct cascade_redis_opts *opts, int64_t ttl_ms,
                                         cascade_metrics *m)
{
    char err[256];
    cascade_item_cache *c = cascade_item_cache_create(64, ttl_ms);
    assert_non_null(c);
    cascade_item_cache_set_metrics(c, m, "rank");
    assert_int_equal(cascade_item_cache_track(c, opts, NS, "rank", 600000, err, sizeof err), 0);
    assert_true(cascade_key_tracker_wait(cascade_item_cache_tracker(c), true, NULL, WAIT_MS));
    return c;
}

/* Wait until the tracker handled one more message than `before`. */
static void wait_message(cascade_item_cache *c, struct cascade_key_tracker_counts before)
{
    before.messages++;
    assert_true(cascade_key_tracker_wait(cascade_item_cache_tracker(c), true, &before, WAIT_MS));
}

/* Read ids 1..3 and 99 (no record) through c; returns the hits. */
static size_t read_four(cascade_item_cache *c, cascade_redis *r, cascade_v1_ItemRecord *recs,
                        bool *found)
{
    const uint64_t ids[4] = {1, 2, 3, 99};
    size_t hits = 0;
    assert_int_equal(cascade_item_cache_get(c, r, NS, ids, 4, recs, found, &hits), 0);
    return hits;
}

static void test_rewrite_served_fresh(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    cascade_metrics *m = cascade_metrics_create();
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f->conn, id, (uint32_t)(10 * id));
    /* ttl_ms 60 s: no expiry can explain a fresh read below. */
    cascade_item_cache *c = tracked_cache(cascade_redis_pool_opts(f->pool), 60000, m);
    assert_int_equal(metric(m, "cascade_rank_item_cache_tracking", true), 1);
    assert_int_equal(read_four(c, f->conn, recs, found), 0);
    assert_int_equal(read_four(c, f->conn, recs, found), 4);
    /* Rewritten (SET, as cascade-build load and PutItems write): read fresh. */
    struct cascade_key_tracker_counts before =
        cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    put_item(f->conn, 2, 777);
    wait_message(c, before);
    assert_int_equal(read_four(c, f->conn, recs, found), 3);
    assert_int_equal(recs[1].stats.clicks, 777);
    assert_int_equal(metric(m, "cascade_rank_item_cache_invalidations_total", false), 1);
    /* Deleted: read as absent. Keys outside the item records (another
     * namespace, a non-numeric id) change nothing cached. */
    before = cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    COMMAND(f->conn, "DEL %s", NS ":item:3");
    wait_message(c, before);
    before = cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    COMMAND(f->conn, "SET %s junk", NS ":item:x1");
    wait_message(c, before);
    COMMAND(f->conn, "SET other:item:1 junk");
    assert_int_equal(read_four(c, f->conn, recs, found), 3);
    assert_true(found[0] && found[1] && !found[2] && !found[3]);
    assert_int_equal(recs[0].stats.clicks, 10);
    assert_int_equal(metric(m, "cascade_rank_item_cache_invalidations_total", false), 2);
    COMMAND(f->conn, "DEL %s other:item:1", NS ":item:x1");
    cascade_item_cache_destroy(c);
    cascade_metrics_destroy(m);
}

/* A rewrite of many records at once (as cascade-build load writes them):
 * Redis announces them in few messages of many keys, more than the tracker
 * hands over per callback; every one is dropped and read fresh. */
static void test_many_records_rewritten(void **state)
{
    enum { N = 700, FIRST = 1000 };
    struct test_redis_fixture *f = *state;
    static uint64_t ids[N];
    static cascade_v1_ItemRecord recs[N];
    static bool found[N];
    char err[256];
    size_t hits = 0;
    for (size_t i = 0; i < N; i++) {
        ids[i] = FIRST + i;
        put_item(f->conn, ids[i], 1);
    }
    cascade_metrics *m = cascade_metrics_create();
    cascade_item_cache *c = cascade_item_cache_create(1 << 16, 60000);
    cascade_item_cache_set_metrics(c, m, "rank");
    assert_int_equal(cascade_item_cache_track(c, cascade_redis_pool_opts(f->pool), NS, "rank",
                                              600000, err, sizeof err),
                     0);
    assert_true(cascade_key_tracker_wait(cascade_item_cache_tracker(c), true, NULL, WAIT_MS));
    assert_int_equal(cascade_item_cache_get(c, f->conn, NS, ids, N, recs, found, &hits), 0);
    for (size_t i = 0; i < N; i++)
        put_item(f->conn, ids[i], 2);
    int64_t deadline = cascade_now_ms() + WAIT_MS;
    while (metric(m, "cascade_rank_item_cache_invalidations_total", false) < N &&
           cascade_now_ms() < deadline) {
    } /* poll the counter the tracker's thread advances */
    assert_int_equal(metric(m, "cascade_rank_item_cache_invalidations_total", false), N);
    assert_int_equal(cascade_item_cache_get(c, f->conn, NS, ids, N, recs, found, &hits), 0);
    for (size_t i = 0; i < N; i++) {
        assert_true(found[i]);
        assert_int_equal(recs[i].stats.clicks, 2);
    }
    cascade_item_cache_destroy(c);
    cascade_metrics_destroy(m);
}

static void test_tracked_records_outlive_ttl(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f->conn, id, 5);
    /* ttl_ms 1: while tracked, records are kept tracked_ttl_ms instead. */
    cascade_item_cache *c = tracked_cache(cascade_redis_pool_opts(f->pool), 1, NULL);
    assert_int_equal(read_four(c, f->conn, recs, found), 0);
    int64_t t0 = cascade_now_ms();
    while (cascade_now_ms() < t0 + 3) {
    } /* poll the clock past ttl_ms */
    assert_int_equal(read_four(c, f->conn, recs, found), 4);
    cascade_item_cache_destroy(c);
}

static void test_flushdb_drops_everything(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f->conn, id, 5);
    cascade_item_cache *c = tracked_cache(cascade_redis_pool_opts(f->pool), 60000, NULL);
    assert_int_equal(read_four(c, f->conn, recs, found), 0);
    assert_int_equal(read_four(c, f->conn, recs, found), 4);
    struct cascade_key_tracker_counts before =
        cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    COMMAND(f->conn, "FLUSHDB");
    wait_message(c, before);
    assert_int_equal(read_four(c, f->conn, recs, found), 0);
    for (int i = 0; i < 4; i++)
        assert_false(found[i]);
    cascade_item_cache_destroy(c);
}

/* The record is read (MGET) before its rewrite, the rewrite is announced,
 * then the read's result is stored: it must not be kept. */
static void test_read_in_flight_not_kept(void **state)
{
    struct test_redis_fixture *f = *state;
    const uint64_t id = 1;
    cascade_v1_ItemRecord rec, old;
    bool found, old_found;
    size_t miss;
    uint64_t epoch;
    put_item(f->conn, id, 1);
    cascade_item_cache *c = tracked_cache(cascade_redis_pool_opts(f->pool), 60000, NULL);
    assert_int_equal(
        cascade_item_cache_lookup(c, &id, 1, &rec, NULL, &found, &miss, cascade_now_ms(), &epoch),
        1);
    assert_int_equal(cascade_store_get_items(f->conn, NS, &id, 1, &old, &old_found), 0);
    struct cascade_key_tracker_counts before =
        cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    put_item(f->conn, id, 2);
    wait_message(c, before);
    cascade_item_cache_store(c, &id, &miss, 1, &old, &old_found, NULL, cascade_now_ms(), epoch);
    assert_int_equal(
        cascade_item_cache_lookup(c, &id, 1, &rec, NULL, &found, &miss, cascade_now_ms(), &epoch),
        1);
    cascade_item_cache_destroy(c);
}

/* The server goes away: tracking off, the cache emptied and back on ttl_ms;
 * a new server on the same port: tracking on again, and it works. */
static void test_server_lost_and_back(void **state)
{
    (void)state;
    struct test_redis_fixture f;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    size_t miss[4];
    uint64_t epoch;
    const uint64_t ids[4] = {1, 2, 3, 99};
    assert_int_equal(test_redis_fixture_start(&f), 0);
    cascade_metrics *m = cascade_metrics_create();
    for (uint64_t id = 1; id <= 3; id++)
        put_item(f.conn, id, 5);
    cascade_item_cache *c = tracked_cache(cascade_redis_pool_opts(f.pool), 10, m);
    cascade_key_tracker *t = cascade_item_cache_tracker(c);
    assert_int_equal(read_four(c, f.conn, recs, found), 0);
    redisReply *rep = NULL;
    (void)cascade_redis_command(f.conn, &rep, "SHUTDOWN NOSAVE"); /* no reply: it is gone */
    freeReplyObject(rep);
    assert_true(cascade_key_tracker_wait(t, false, NULL, WAIT_MS));
    assert_int_equal(metric(m, "cascade_rank_item_cache_tracking_lost_total", false), 1);
    assert_int_equal(metric(m, "cascade_rank_item_cache_tracking", true), 0);
    /* Emptied, and what is stored now lives ttl_ms (10 ms) only. */
    int64_t now = cascade_now_ms();
    assert_int_equal(cascade_item_cache_lookup(c, ids, 4, recs, NULL, found, miss, now, &epoch), 4);
    cascade_item_cache_store(c, ids, miss, 4, recs, found, NULL, now, epoch);
    assert_int_equal(cascade_item_cache_lookup(c, ids, 4, recs, NULL, found, miss, now + 9, &epoch),
                     0);
    assert_int_equal(
        cascade_item_cache_lookup(c, ids, 4, recs, NULL, found, miss, now + 10, &epoch), 4);
    /* Back (empty): tracking resumes and announces changes again. */
    struct cascade_key_tracker_counts again = cascade_key_tracker_counts(t);
    again.sessions++;
    assert_int_equal(test_redis_restart(&f.server), 0);
    assert_true(cascade_key_tracker_wait(t, true, &again, WAIT_MS));
    assert_int_equal(metric(m, "cascade_rank_item_cache_tracking", true), 1);
    /* Its announcement is awaited: arriving after the reads below, it would
     * (rightly) drop the fresh record they cached. */
    struct cascade_key_tracker_counts before = cascade_key_tracker_counts(t);
    put_item(f.conn, 2, 6);
    wait_message(c, before);
    assert_int_equal(read_four(c, f.conn, recs, found), 0);
    assert_int_equal(read_four(c, f.conn, recs, found), 4);
    before = cascade_key_tracker_counts(t);
    put_item(f.conn, 2, 7);
    wait_message(c, before);
    assert_int_equal(read_four(c, f.conn, recs, found), 3);
    assert_int_equal(recs[1].stats.clicks, 7);
    cascade_item_cache_destroy(c);
    cascade_metrics_destroy(m);
    test_redis_fixture_stop(&f);
}

/* The tracker's connections AUTH and reach the server over its Unix socket. */
static void test_unix_socket_and_auth(void **state)
{
    (void)state;
    struct test_redis server;
    cascade_v1_ItemRecord recs[4];
    bool found[4];
    assert_int_equal(test_redis_start_auth(&server, "s3cret"), 0);
    struct cascade_redis_opts opts = {.host = server.socket, .password = "s3cret"};
    cascade_redis *conn = cascade_redis_create(&opts);
    assert_non_null(conn);
    put_item(conn, 1, 1);
    cascade_item_cache *c = tracked_cache(&opts, 60000, NULL);
    assert_int_equal(read_four(c, conn, recs, found), 0);
    struct cascade_key_tracker_counts before =
        cascade_key_tracker_counts(cascade_item_cache_tracker(c));
    put_item(conn, 1, 2);
    wait_message(c, before);
    assert_int_equal(read_four(c, conn, recs, found), 3);
    assert_int_equal(recs[0].stats.clicks, 2);
    cascade_item_cache_destroy(c);
    cascade_redis_destroy(conn);
    test_redis_stop(&server);
}

/* A wrong password: tracking stays off (retried), the cache works on ttl_ms. */
static void test_refused_auth_stays_on_ttl(void **state)
{
    (void)state;
    struct test_redis server;
    char err[256];
    assert_int_equal(test_redis_start_auth(&server, "s3cret"), 0);
    struct cascade_redis_opts bad = {.host = server.socket, .password = "wrong"};
    cascade_item_cache *c = cascade_item_cache_create(64, 60000);
    assert_int_equal(cascade_item_cache_track(c, &bad, NS, "rank", 600000, err, sizeof err), 0);
    assert_false(cascade_key_tracker_wait(cascade_item_cache_tracker(c), true, NULL, 300));
    assert_int_not_equal(cascade_item_cache_track(c, &bad, NS, "rank", 600000, err, sizeof err),
                         0); /* twice */
    cascade_item_cache_destroy(c);
    test_redis_stop(&server);
}

static void test_config(void **state)
{
    struct test_redis_fixture *f = *state;
    char err[256];
    cascade_item_cache *c = NULL;
    cascade_config *cfg = cascade_config_parse(
        "{\"rank\": {\"item_cache\": {\"ttl_ms\": 500, \"tracking\": true, "
        "\"tracked_ttl_ms\": 9000}}, \"prerank\": {\"item_cache\": {\"ttl_ms\": 500}}}",
        "t", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(
        cascade_item_cache_from_config(cfg, "rank", f->pool, NS, NULL, NULL, &c, err, sizeof err),
        0);
    assert_non_null(cascade_item_cache_tracker(c));
    assert_true(cascade_key_tracker_wait(cascade_item_cache_tracker(c), true, NULL, WAIT_MS));
    cascade_item_cache_destroy(c);
    /* Default: not tracked. Without a pool: not tracked either. */
    assert_int_equal(cascade_item_cache_from_config(cfg, "prerank", f->pool, NS, NULL, NULL, &c,
                                                    err, sizeof err),
                     0);
    assert_null(cascade_item_cache_tracker(c));
    cascade_item_cache_destroy(c);
    assert_int_equal(
        cascade_item_cache_from_config(cfg, "rank", NULL, NS, NULL, NULL, &c, err, sizeof err), 0);
    assert_null(cascade_item_cache_tracker(c));
    cascade_item_cache_destroy(c);
    cascade_config_destroy(cfg);
    const char *bad[] = {
        "{\"rank\": {\"item_cache\": {\"ttl_ms\": 500, \"tracking\": 1}}}",
        "{\"rank\": {\"item_cache\": {\"ttl_ms\": 500, \"tracked_ttl_ms\": 0}}}",
    };
    const char *key[] = {"rank.item_cache.tracking", "rank.item_cache.tracked_ttl_ms"};
    for (size_t i = 0; i < 2; i++) {
        cfg = cascade_config_parse(bad[i], "t", err, sizeof err);
        assert_non_null(cfg);
        assert_int_not_equal(cascade_item_cache_from_config(cfg, "rank", f->pool, NS, NULL, NULL,
                                                            &c, err, sizeof err),
                             0);
        assert_null(c);
        assert_non_null(strstr(err, key[i]));
        cascade_config_destroy(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_served_fresh),
        cmocka_unit_test(test_many_records_rewritten),
        cmocka_unit_test(test_tracked_records_outlive_ttl),
        cmocka_unit_test(test_flushdb_drops_everything),
        cmocka_unit_test(test_read_in_flight_not_kept),
        cmocka_unit_test(test_server_lost_and_back),
        cmocka_unit_test(test_unix_socket_and_auth),
        cmocka_unit_test(test_refused_auth_stays_on_ttl),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
