/* Unit tests for common/stage_reads.c against a real redis-server: one
 * pipeline reads the user record (continued with the online events above
 * its sequence only), the item records (several MGETs, some from the item
 * cache) and the online counters' change; an error reply mid-pipeline
 * (a wrong-type key) degrades only its own part and leaves the connection
 * in step for the next command; with a counters cache the totals read
 * within its ttl are reused (with or without item-record misses), and a
 * failed read of the others adds no change at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "error.h"
#include "item_cache.h"
#include "record_cache.h"
#include "stage_reads.h"
#include "store.h"
#include "support.h"

#define NS "sr"
#define N_ITEMS 600 /* three MGETs of 256 */

static void put_items(cascade_redis *r)
{
    for (uint64_t id = 1; id <= N_ITEMS; id++) {
        cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
        rec.item_id = id;
        rec.has_stats = true;
        rec.stats.clicks = 10;
        rec.stats.impressions = 100;
        /* Even ids carry the snapshot their stats were paired with. */
        rec.has_online_base = id % 2 == 0;
        rec.online_base.clicks = 4;
        rec.online_base.impressions = 40;
        assert_int_equal(cascade_store_put_item(r, NS, &rec), 0);
    }
}

/* The user u1 (online_seq 5, 7 impressions), its base, and its events: two
 * impressions and a click above seq 5, one impression at seq 4 (already in
 * the base). */
static void put_user(cascade_redis *r)
{
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_UserOnlineBase base = cascade_v1_UserOnlineBase_init_zero;
    uint8_t buf[256];
    size_t len = 0;
    redisReply *rep = NULL;
    snprintf(u.user_id, sizeof u.user_id, "u1");
    u.online_seq = 5;
    u.impressions = 7;
    assert_int_equal(cascade_store_put_user(r, NS, &u), 0);
    base.seq = 5;
    assert_int_equal(
        cascade_record_encode(cascade_v1_UserOnlineBase_fields, &base, buf, sizeof buf, &len), 0);
    assert_int_equal(cascade_redis_command(r, &rep, "SET " NS ":user:u1:online %b", buf, len), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(r, &rep, "ZADD " NS ":uev:u1 4 %s 6 %s 7 %s 8 %s",
                                           "4 1 3 2 1000", "6 1 3 2 1001", "7 1 4 2 1002",
                                           "8 2 4 2 1003"),
                     0);
    freeReplyObject(rep);
}

static void set_totals(cascade_redis *r, uint64_t id, const char *value)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "HSET " NS ":ictr:totals %llu %s",
                                           (unsigned long long)id, value),
                     0);
    freeReplyObject(rep);
}

/* The items, u1 and item 2's totals (+5 clicks over its base), over what
 * the tests before left of another type at those keys. */
static void reset_world(cascade_redis *conn)
{
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(conn, &rep, "DEL " NS ":ictr:totals " NS ":uev:u1 " NS ":user:u1"),
        0);
    freeReplyObject(rep);
    put_items(conn);
    put_user(conn);
    set_totals(conn, 2, "50 9 0 0 0 0 0");
}

struct reads {
    cascade_v1_UserRecord user;
    cascade_v1_ItemRecord items[N_ITEMS + 1];
    bool found[N_ITEMS + 1];
    uint64_t ids[N_ITEMS + 1];
    struct cascade_stage_reads q;
};

/* Ask for u1 and ids 1..N_ITEMS+1 (the last has no record). */
static struct cascade_stage_reads *ask(cascade_item_cache *cache)
{
    static struct reads r; /* too big for the stack */
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i <= N_ITEMS; i++)
        r.ids[i] = i + 1;
    r.q = (struct cascade_stage_reads){.ns = NS,
                                       .user_id = "u1",
                                       .online_user = true,
                                       .online_counters = true,
                                       .ids = r.ids,
                                       .n = N_ITEMS + 1,
                                       .cache = cache,
                                       .now_s = 2000,
                                       .user = &r.user,
                                       .items = r.items,
                                       .found = r.found};
    return &r.q;
}

/* Every read in one round trip, the item records from Redis (all missed:
 * their counters' totals asked with them) or from the cache. */
static void test_one_pipeline_reads_everything(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_arena *arena = cascade_arena_create(1 << 16);
    cascade_item_cache *cache = cascade_item_cache_create(1024, 60000);
    assert_non_null(arena);
    assert_non_null(cache);
    put_items(f->conn);
    put_user(f->conn);
    set_totals(f->conn, 2, "50 9 0 0 0 0 0");   /* base 40/4: +10 impressions, +5 clicks */
    set_totals(f->conn, 3, "500 90 0 0 0 0 0"); /* no online_base: ignored */
    for (int round = 0; round < 2; round++) {   /* the second from the item cache */
        struct cascade_stage_reads *q = ask(cache);
        uint64_t trips = cascade_redis_round_trips(f->conn);
        assert_int_equal(cascade_stage_reads_run(f->conn, arena, q), 0);
        assert_int_equal(cascade_redis_round_trips(f->conn) - trips, 1);
        assert_true(q->user_found);
        assert_int_equal(q->user_online_rc, 0);
        /* 7 in the record, +2 impressions above seq 5 (not the one at 4). */
        assert_int_equal(q->user->impressions, 9);
        assert_int_equal(q->user->clicks, 1);
        assert_int_equal(q->counters_rc, 0);
        for (size_t i = 0; i < N_ITEMS; i++)
            assert_true(q->found[i] && q->items[i].item_id == i + 1);
        assert_false(q->found[N_ITEMS]);
        assert_int_equal(q->items[1].stats.impressions, 110);
        assert_int_equal(q->items[1].stats.clicks, 15);
        assert_int_equal(q->items[2].stats.impressions, 100);
        assert_int_equal(q->items[3].stats.clicks, 10); /* no totals: +0 */
        /* only the candidates with a base count as asked */
        assert_int_equal(q->counters_asked, N_ITEMS / 2);
        cascade_arena_reset(arena);
    }
    /* The cache kept the nightly records, not the ones with the change. */
    cascade_v1_ItemRecord rec;
    bool found = false;
    const uint64_t two = 2;
    assert_int_equal(cascade_item_cache_lookup(cache, &two, 1, &rec, NULL, &found, (size_t[1]){0},
                                               0, &(uint64_t){0}),
                     0);
    assert_int_equal(rec.stats.clicks, 10);
    cascade_item_cache_destroy(cache);
    cascade_arena_destroy(arena);
}

/* A wrong-type key in the middle: the events set and the counters' hash are
 * strings, so ZRANGEBYSCORE and HMGET get error replies between and after
 * the MGETs. The records still arrive, only the online parts degrade, and
 * the next command on the connection gets its own reply. */
static void test_error_reply_keeps_connection_in_step(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_arena *arena = cascade_arena_create(1 << 16);
    redisReply *rep = NULL;
    assert_non_null(arena);
    put_items(f->conn);
    put_user(f->conn);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":uev:u1 " NS ":ictr:totals"),
                     0);
    freeReplyObject(rep);
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "MSET " NS ":uev:u1 x " NS ":ictr:totals y"), 0);
    freeReplyObject(rep);
    struct cascade_stage_reads *q = ask(NULL);
    assert_int_equal(cascade_stage_reads_run(f->conn, arena, q), 0);
    assert_true(q->user_found);
    assert_int_equal(q->user_online_rc, CASCADE_EIO);
    assert_int_equal(q->user->impressions, 7); /* the nightly record */
    assert_int_equal(q->counters_rc, CASCADE_EIO);
    for (size_t i = 0; i < N_ITEMS; i++)
        assert_true(q->found[i] && q->items[i].stats.clicks == 10);
    /* In step: the next commands read their own replies. */
    cascade_v1_UserRecord u;
    bool found = false;
    assert_int_equal(cascade_store_get_user(f->conn, NS, "u1", &u, &found), 0);
    assert_true(found && u.online_seq == 5);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ECHO in-step"), 0);
    assert_string_equal(rep->str, "in-step");
    freeReplyObject(rep);
    /* The user's key of another type fails the call, the connection still
     * in step afterwards. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":user:u1"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SADD " NS ":user:u1 a"), 0);
    freeReplyObject(rep);
    cascade_arena_reset(arena);
    q = ask(NULL);
    assert_int_equal(cascade_stage_reads_run(f->conn, arena, q), CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(f->conn), "WRONGTYPE"));
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ECHO again"), 0);
    assert_string_equal(rep->str, "again");
    freeReplyObject(rep);
    cascade_arena_destroy(arena);
}

/* Item 2's clicks after a read of all candidates (even ids carry a base
 * of 4 clicks, the nightly record 10). */
static uint32_t clicks_of_2(cascade_redis *conn, cascade_arena *arena, cascade_item_cache *items,
                            cascade_record_cache *counters, size_t n, size_t *cached, size_t *asked,
                            int *counters_rc)
{
    struct cascade_stage_reads *q = ask(items);
    q->counters_cache = counters;
    q->n = n;
    assert_int_equal(cascade_stage_reads_run(conn, arena, q), 0);
    *cached = q->counters_cached;
    *asked = q->counters_asked;
    *counters_rc = q->counters_rc;
    uint32_t clicks = q->items[1].stats.clicks;
    cascade_arena_reset(arena);
    return clicks;
}

static void test_counters_cache(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_arena *arena = cascade_arena_create(1 << 16);
    cascade_item_cache *items = cascade_item_cache_create(1024, 60000);
    cascade_record_cache *counters = cascade_record_cache_create(
        1 << 18, sizeof(cascade_v1_ItemStats), 60000); /* no collision among 300 */
    redisReply *rep = NULL;
    size_t cached = 0, asked = 0;
    int rc = -1;
    assert_non_null(arena);
    assert_non_null(items);
    assert_non_null(counters);
    reset_world(f->conn);
    /* Item records all missed: the counters asked with them, all asked (the
     * odd ids' totals too, unused: they have no base). */
    assert_int_equal(
        clicks_of_2(f->conn, arena, items, counters, N_ITEMS + 1, &cached, &asked, &rc), 15);
    assert_int_equal(rc, 0);
    assert_int_equal(cached, 0);
    assert_int_equal(asked, N_ITEMS / 2);
    /* Within the ttl a newer total is not read: every one from the cache,
     * with the item records from theirs (nothing else to ask Redis for the
     * items) and without (the records read, the counters not). */
    set_totals(f->conn, 2, "60 19 0 0 0 0 0");
    for (int with_items = 1; with_items >= 0; with_items--) {
        assert_int_equal(clicks_of_2(f->conn, arena, with_items ? items : NULL, counters,
                                     N_ITEMS + 1, &cached, &asked, &rc),
                         15);
        assert_int_equal(rc, 0);
        /* direct-mapped: an id whose slot another took is read again */
        assert_int_equal(cached + asked, N_ITEMS / 2);
        assert_true(asked <= 3);
    }
    /* A cache that has not seen them reads the new total. */
    cascade_record_cache_drop_all(counters);
    assert_int_equal(
        clicks_of_2(f->conn, arena, items, counters, N_ITEMS + 1, &cached, &asked, &rc), 25);
    assert_int_equal(asked, N_ITEMS / 2);
    /* Ids 1..10 cached, the rest not; the totals' hash now of another type:
     * the read of the others fails and no candidate gets a change, not even
     * the cached ones. */
    cascade_record_cache_drop_all(counters);
    assert_int_equal(clicks_of_2(f->conn, arena, items, counters, 10, &cached, &asked, &rc), 25);
    assert_int_equal(asked, 5);
    /* Again: records and totals all from memory, nothing asked of Redis. */
    assert_int_equal(clicks_of_2(f->conn, arena, items, counters, 10, &cached, &asked, &rc), 25);
    assert_int_equal(rc, 0);
    assert_int_equal(cached, 5);
    assert_int_equal(asked, 0);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":ictr:totals"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SET " NS ":ictr:totals y"), 0);
    freeReplyObject(rep);
    assert_int_equal(
        clicks_of_2(f->conn, arena, items, counters, N_ITEMS + 1, &cached, &asked, &rc), 10);
    assert_int_equal(rc, CASCADE_EIO);
    assert_int_equal(cached, 0); /* nothing counted as served */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":ictr:totals"), 0);
    freeReplyObject(rep);
    cascade_record_cache_destroy(counters);
    cascade_item_cache_destroy(items);
    cascade_arena_destroy(arena);
}

/* What the test's item cache derives from a record: its id and counters as
 * the cache saw them, a mark, and how many times it was asked. */
#define DERIVED_MARK 0x5eedu
struct probe {
    uint64_t id;
    uint32_t clicks, impressions, mark;
};
static size_t derive_calls;

static void derive_probe(const cascade_v1_ItemRecord *rec, void *out)
{
    struct probe *p = out;
    p->id = rec->item_id;
    p->clicks = rec->stats.clicks;
    p->impressions = rec->stats.impressions;
    p->mark = DERIVED_MARK;
    derive_calls++;
}

static const struct cascade_item_derive probe_derive = {sizeof(struct probe), derive_probe};

/* A cache that derives data from each record fills it for every candidate:
 * computed once, when a record is read from Redis (the absent one from a
 * zeroed record with its id), and copied out with the record afterwards;
 * derived from the nightly record, not the one with the online counters'
 * change the request adds. */
static void test_derived_beside_records(void **state)
{
    struct test_redis_fixture *f = *state;
    static struct probe derived[N_ITEMS + 1];
    cascade_arena *arena = cascade_arena_create(1 << 16);
    cascade_item_cache *cache = cascade_item_cache_create_derived(
        1 << 20, 60000, &probe_derive); /* no collision among 601 */
    assert_non_null(arena);
    assert_non_null(cache);
    assert_int_equal(cascade_item_cache_derived_size(cache), sizeof(struct probe));
    assert_int_equal(cascade_item_cache_derived_size(NULL), 0);
    reset_world(f->conn);
    derive_calls = 0;
    for (int round = 0; round < 2; round++) { /* the second from the item cache */
        struct cascade_stage_reads *q = ask(cache);
        memset(derived, 0xab, sizeof derived);
        q->derived = derived;
        assert_int_equal(cascade_stage_reads_run(f->conn, arena, q), 0);
        assert_int_equal(q->items[1].stats.clicks, 15); /* the request's record: with the change */
        for (size_t i = 0; i <= N_ITEMS; i++) {
            assert_int_equal(derived[i].mark, DERIVED_MARK);
            assert_int_equal(derived[i].id, i + 1);
            assert_int_equal(derived[i].clicks, i < N_ITEMS ? 10 : 0); /* nightly */
            assert_int_equal(derived[i].impressions, i < N_ITEMS ? 100 : 0);
        }
        assert_int_equal(derive_calls, N_ITEMS + 1); /* once per record, not per request */
        cascade_arena_reset(arena);
    }
    cascade_item_cache_destroy(cache);
    cascade_arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_pipeline_reads_everything),
        cmocka_unit_test(test_error_reply_keeps_connection_in_step),
        cmocka_unit_test(test_counters_cache),
        cmocka_unit_test(test_derived_beside_records),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
