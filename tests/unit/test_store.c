/* Unit tests for common/store.c against a private redis-server: key formats,
 * nanopb codecs, and a round trip of every record and key the store reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "store.h"
#include "support.h"

#define NS "t"

/* The handle still answers a plain command (no pipeline left half-read). */
static void assert_usable(cascade_redis *r)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), 0);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
}

static void test_key_formats(void **state)
{
    (void)state;
    char k[CASCADE_KEY_MAX];
    assert_string_equal(cascade_key_item(k, "cascade", 42), "cascade:item:42");
    assert_string_equal(cascade_key_item(k, NULL, 18446744073709551615ULL),
                        "cascade:item:18446744073709551615");
    assert_string_equal(cascade_key_user(k, "ns", "u7"), "ns:user:u7");
    assert_string_equal(cascade_key_user_lastn(k, "ns", "u7"), "ns:user:u7:lastn");
    assert_string_equal(cascade_key_user_consumed(k, "ns", "u7"), "ns:user:u7:consumed");
    assert_string_equal(cascade_key_artefact(k, "ns", "hot", 3, NULL), "ns:hot@3");
    assert_string_equal(cascade_key_artefact(k, "ns", "itemcf", 3, "9"), "ns:itemcf@3:9");
    assert_string_equal(cascade_key_artefact(k, "ns", "authors", 3, "items:5"),
                        "ns:authors@3:items:5");
    assert_string_equal(cascade_key_building(k, "ns", "city"), "ns:gen:city:building");
    assert_string_equal(cascade_key_exposure(k, "ns", "u7", 20412), "ns:expo:u7:20412");
    assert_string_equal(cascade_key_events(k, "ns"), "ns:events");
    assert_string_equal(cascade_key_meta(k, ""), "cascade:meta");
    /* The item and generation keys are built without snprintf: its text at
     * the edges (no suffix, "" suffix, gen 0 and negative, a key cut at
     * CASCADE_KEY_MAX − 1 characters as snprintf cuts it). */
    assert_string_equal(cascade_key_item(k, "", 0), "cascade:item:0");
    assert_string_equal(cascade_key_artefact(k, "ns", "hot", 0, ""), "ns:hot@0");
    assert_string_equal(cascade_key_artefact(k, "ns", "hot", -12, "x"), "ns:hot@-12:x");
    assert_string_equal(cascade_key_artefact(k, "ns", "hot", INT64_MIN, NULL),
                        "ns:hot@-9223372036854775808");
    char want[600], longer[400];
    memset(longer, 's', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    snprintf(want, sizeof want, "ns:itemcf@%d:%s", 12345, longer);
    want[CASCADE_KEY_MAX - 1] = '\0';
    assert_int_equal(strlen(cascade_key_artefact(k, "ns", "itemcf", 12345, longer)),
                     CASCADE_KEY_MAX - 1);
    assert_string_equal(k, want);
    longer[CASCADE_KEY_MAX - 10] = '\0'; /* the cut falls inside the id */
    snprintf(want, sizeof want, "%s:item:%llu", longer, 18446744073709551615ULL);
    want[CASCADE_KEY_MAX - 1] = '\0';
    assert_string_equal(cascade_key_item(k, longer, 18446744073709551615ULL), want);
}

static cascade_v1_ItemRecord make_item(uint64_t id)
{
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    it.item_id = id;
    it.author_id = 1000 + id;
    it.category = (uint32_t)(id % 17);
    it.tags_count = 3;
    it.tags[0] = 1;
    it.tags[1] = 2;
    it.tags[2] = (uint32_t)id;
    it.created_at_s = 1700000000 + (int64_t)id;
    snprintf(it.geohash, sizeof(it.geohash), "wtw3s%u", (unsigned)(id % 10));
    it.city = 310000;
    it.media_type = 2;
    it.duration_s = 12.5f;
    it.has_stats = true;
    it.stats.impressions = 100;
    it.stats.clicks = (uint32_t)id;
    it.stats.play_seconds = 321.25f;
    return it;
}

static void assert_item_equal(const cascade_v1_ItemRecord *a, const cascade_v1_ItemRecord *b)
{
    assert_int_equal(a->item_id, b->item_id);
    assert_int_equal(a->author_id, b->author_id);
    assert_int_equal(a->category, b->category);
    assert_int_equal(a->tags_count, b->tags_count);
    assert_memory_equal(a->tags, b->tags, sizeof(a->tags[0]) * a->tags_count);
    assert_int_equal(a->created_at_s, b->created_at_s);
    assert_string_equal(a->geohash, b->geohash);
    assert_int_equal(a->city, b->city);
    assert_int_equal(a->media_type, b->media_type);
    assert_true(a->duration_s == b->duration_s);
    assert_int_equal(a->has_stats, b->has_stats);
    assert_memory_equal(&a->stats, &b->stats, sizeof(a->stats)); /* no padding: 6 u32 + float */
}

static void test_codec(void **state)
{
    (void)state;
    cascade_v1_ItemRecord in = make_item(7), out;
    uint8_t buf[cascade_v1_ItemRecord_size];
    size_t len = 0;
    assert_int_equal(
        cascade_record_encode(cascade_v1_ItemRecord_fields, &in, buf, sizeof(buf), &len), 0);
    assert_true(len > 0);
    assert_int_equal(cascade_record_decode(cascade_v1_ItemRecord_fields, &out, buf, len), 0);
    assert_item_equal(&out, &in);
    /* Too small a buffer, and bytes that are not a record. */
    assert_int_equal(cascade_record_encode(cascade_v1_ItemRecord_fields, &in, buf, 5, &len),
                     CASCADE_ETOOBIG);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(cascade_record_decode(cascade_v1_ItemRecord_fields, &out, junk, sizeof(junk)),
                     CASCADE_EFORMAT);
}

static void test_items_roundtrip(void **state)
{
    struct test_redis_fixture *f = *state;
    /* 600 ids cross the 256-id MGET chunks; every third id has no record. */
    enum { N = 600 };
    uint64_t *ids = malloc(sizeof(*ids) * N);
    cascade_v1_ItemRecord *out = malloc(sizeof(*out) * N);
    bool *found = malloc(sizeof(*found) * N);
    for (size_t i = 0; i < N; i++) {
        ids[i] = 10 + i;
        if (i % 3 != 0) {
            cascade_v1_ItemRecord it = make_item(ids[i]);
            assert_int_equal(cascade_store_put_item(f->conn, NS, &it), 0);
        }
    }
    assert_int_equal(cascade_store_get_items(f->conn, NS, ids, N, out, found), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(found[i], i % 3 != 0);
        if (found[i]) {
            cascade_v1_ItemRecord want = make_item(ids[i]);
            assert_item_equal(&out[i], &want);
        } else {
            assert_int_equal(out[i].item_id, 0);
        }
    }
    assert_int_equal(cascade_store_get_items(f->conn, NS, ids, 0, out, found), 0);
    free(found);
    free(out);
    free(ids);
}

static void test_corrupt_record_reported(void **state)
{
    struct test_redis_fixture *f = *state;
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "SET t:item:99999 %b", "\xff\xff\xff", (size_t)3), 0);
    freeReplyObject(rep);
    uint64_t id = 99999;
    cascade_v1_ItemRecord out;
    bool found;
    assert_int_equal(cascade_store_get_items(f->conn, NS, &id, 1, &out, &found), CASCADE_EFORMAT);
    assert_non_null(strstr(cascade_redis_error(f->conn), "t:item:99999: not a valid ItemRecord"));
    assert_usable(f->conn);
}

static void test_user_roundtrip(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero, out;
    snprintf(u.user_id, sizeof(u.user_id), "alice");
    u.age = 31;
    u.gender = 1;
    u.city = 310000;
    snprintf(u.geohash, sizeof(u.geohash), "wtw3sj");
    u.interests_count = 2;
    u.interests[0] = 3;
    u.interests[1] = 9;
    u.affinities_count = 16;
    for (int i = 0; i < 16; i++) {
        u.affinities[i].category = (uint32_t)i;
        u.affinities[i].weight = 1.0f / (float)(i + 1);
    }
    u.clicks = 12;
    assert_int_equal(cascade_store_put_user(f->conn, NS, &u), 0);
    bool found = false;
    assert_int_equal(cascade_store_get_user(f->conn, NS, "alice", &out, &found), 0);
    assert_true(found);
    assert_string_equal(out.user_id, "alice");
    assert_int_equal(out.age, 31);
    assert_int_equal(out.gender, 1);
    assert_int_equal(out.city, 310000);
    assert_string_equal(out.geohash, "wtw3sj");
    assert_int_equal(out.interests_count, 2);
    assert_int_equal(out.interests[1], 9);
    assert_int_equal(out.affinities_count, 16);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(out.affinities[i].category, i);
        assert_true(out.affinities[i].weight == 1.0f / (float)(i + 1));
    }
    assert_int_equal(out.clicks, 12);
    assert_int_equal(cascade_store_get_user(f->conn, NS, "nobody", &out, &found), 0);
    assert_false(found);
    assert_string_equal(out.user_id, "");
}

/* The user record and the online interaction count in one round trip; a
 * count of the wrong type fails only the count, a record of the wrong type
 * the call, the connection in step after both. */
static void test_user_and_interactions(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero, out;
    redisReply *rep = NULL;
    bool found = false;
    uint32_t online = 99;
    int online_rc = -1;
    snprintf(u.user_id, sizeof(u.user_id), "bob");
    u.interactions = 3;
    assert_int_equal(cascade_store_put_user(f->conn, NS, &u), 0);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HSET " NS ":uctr:bob interactions 7"),
                     0);
    freeReplyObject(rep);
    uint64_t trips = cascade_redis_round_trips(f->conn);
    assert_int_equal(cascade_store_get_user_and_interactions(f->conn, NS, "bob", &out, &found,
                                                             &online, &online_rc),
                     0);
    assert_int_equal(cascade_redis_round_trips(f->conn) - trips, 1);
    assert_true(found);
    assert_int_equal(out.interactions, 3);
    assert_int_equal(online_rc, 0);
    assert_int_equal(online, 7);
    /* Neither key: no record, a count of 0. */
    assert_int_equal(cascade_store_get_user_and_interactions(f->conn, NS, "nobody", &out, &found,
                                                             &online, &online_rc),
                     0);
    assert_false(found);
    assert_int_equal(online_rc, 0);
    assert_int_equal(online, 0);
    /* The count's key of another type: the record still read. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SET " NS ":uctr:bob x"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_store_get_user_and_interactions(f->conn, NS, "bob", &out, &found,
                                                             &online, &online_rc),
                     0);
    assert_true(found);
    assert_int_equal(online_rc, CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(f->conn), "WRONGTYPE"));
    assert_int_equal(online, 0);
    /* The record's key of another type: the call fails with its reason. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":user:bob " NS ":uctr:bob"),
                     0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SADD " NS ":user:bob a"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_store_get_user_and_interactions(f->conn, NS, "bob", &out, &found,
                                                             &online, &online_rc),
                     CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(f->conn), "WRONGTYPE"));
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ECHO in-step"), 0);
    assert_string_equal(rep->str, "in-step");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "DEL " NS ":user:bob"), 0);
    freeReplyObject(rep);
}

static void test_interactions_lastn_and_consumed(void **state)
{
    struct test_redis_fixture *f = *state;
    for (uint64_t i = 1; i <= 8; i++) {
        cascade_v1_Interaction it = {
            .item_id = 100 + i, .type = 2, .time_s = 1000 + (int64_t)i, .weight = (float)i};
        assert_int_equal(cascade_store_push_interaction(f->conn, NS, "bob", &it, 5), 0);
    }
    cascade_v1_Interaction out[10];
    size_t n = 0;
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "bob", 10, out, &n), 0);
    assert_int_equal(n, 5); /* trimmed to keep_max */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].item_id, 108 - i); /* newest first */
        assert_int_equal(out[i].time_s, 1008 - (int64_t)i);
        assert_true(out[i].weight == (float)(8 - i));
    }
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "bob", 2, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[1].item_id, 107);
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "bob", 0, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "nobody", 5, out, &n), 0);
    assert_int_equal(n, 0);

    /* Every pushed item is consumed, including those trimmed from last-n. */
    uint64_t ids[] = {101, 108, 999, 104};
    bool consumed[4];
    assert_int_equal(cascade_store_consumed(f->conn, NS, "bob", ids, 4, consumed), 0);
    assert_true(consumed[0]);
    assert_true(consumed[1]);
    assert_false(consumed[2]);
    assert_true(consumed[3]);
    assert_int_equal(cascade_store_consumed(f->conn, NS, "nobody", ids, 4, consumed), 0);
    assert_false(consumed[0] || consumed[1] || consumed[2] || consumed[3]);

    cascade_v1_Interaction it = {.item_id = 1};
    assert_int_equal(cascade_store_push_interaction(f->conn, NS, "bob", &it, 0), CASCADE_EINVAL);
}

static void put_neighbours(cascade_redis *r, uint64_t item, size_t count)
{
    cascade_v1_NeighbourList nl = cascade_v1_NeighbourList_init_zero;
    nl.neighbours_count = (pb_size_t)count;
    for (size_t i = 0; i < count; i++) {
        nl.neighbours[i].item_id = item * 1000 + i;
        nl.neighbours[i].score = 1.0f - (float)i / 1000.0f;
    }
    static uint8_t buf[cascade_v1_NeighbourList_size];
    size_t len = 0;
    assert_int_equal(
        cascade_record_encode(cascade_v1_NeighbourList_fields, &nl, buf, sizeof(buf), &len), 0);
    char key[CASCADE_KEY_MAX], suffix[32];
    snprintf(suffix, sizeof(suffix), "%llu", (unsigned long long)item);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "SET %s %b",
                                           cascade_key_artefact(key, NS, "itemcf", 2, suffix),
                                           (const char *)buf, len),
                     0);
    freeReplyObject(rep);
}

static void test_neighbours_pipelined(void **state)
{
    struct test_redis_fixture *f = *state;
    put_neighbours(f->conn, 1, 200);
    put_neighbours(f->conn, 3, 7);
    uint64_t ids[] = {1, 2, 3};
    static cascade_v1_NeighbourList out[3];
    bool found[3];
    /* Generation 2 written but not published: nothing is found yet. */
    assert_int_equal(cascade_store_get_neighbours(f->conn, NS, "itemcf", 0, ids, 3, out, found), 0);
    assert_false(found[0] || found[1] || found[2]);
    assert_int_equal(cascade_store_publish_generation(f->conn, NS, "itemcf", 2), 0);
    assert_int_equal(cascade_store_get_neighbours(f->conn, NS, "itemcf", 0, ids, 3, out, found), 0);
    assert_true(found[0]);
    assert_false(found[1]);
    assert_true(found[2]);
    assert_int_equal(out[0].neighbours_count, 200);
    assert_int_equal(out[0].neighbours[199].item_id, 1199);
    assert_int_equal(out[2].neighbours_count, 7);
    assert_int_equal(out[2].neighbours[6].item_id, 3006);
    assert_true(out[2].neighbours[0].score == 1.0f);
    /* Another algorithm's lists are separate keys. */
    assert_int_equal(cascade_store_get_neighbours(f->conn, NS, "swing", 2, ids, 3, out, found), 0);
    assert_false(found[0] || found[1] || found[2]);
    assert_usable(f->conn); /* pipeline fully drained */
}

static void test_sorted_sets(void **state)
{
    struct test_redis_fixture *f = *state;
    char hot[CASCADE_KEY_MAX], author[CASCADE_KEY_MAX], city[CASCADE_KEY_MAX];
    cascade_key_artefact(hot, NS, "hot", 1, NULL);
    cascade_key_artefact(author, NS, "authors", 1, "items:77");
    cascade_key_artefact(city, NS, "city", 1, "310000");
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ZADD %s 5.5 11 9.25 12 1 13", hot), 0);
    freeReplyObject(rep);
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "ZADD %s 1700000300 21 1700000100 22", author), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ZADD %s 1700000000 31", city), 0);
    freeReplyObject(rep);

    uint64_t ids[10];
    double scores[10];
    size_t n = 0;
    assert_int_equal(cascade_store_top_items(f->conn, hot, 10, ids, scores, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 12);
    assert_true(scores[0] == 9.25);
    assert_int_equal(ids[1], 11);
    assert_true(scores[1] == 5.5);
    assert_int_equal(ids[2], 13);
    assert_int_equal(cascade_store_top_items(f->conn, hot, 2, ids, NULL, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cascade_store_top_items(f->conn, hot, 0, ids, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cascade_store_top_items(f->conn, author, 10, ids, scores, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 21); /* newest first */
    assert_true(scores[0] == 1700000300.0);
    assert_int_equal(cascade_store_top_items(f->conn, city, 10, ids, scores, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 31);

    /* A member that is not an item id is a format error naming the key. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ZADD %s 100 not-an-id", hot), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_store_top_items(f->conn, hot, 10, ids, scores, &n), CASCADE_EFORMAT);
    assert_non_null(strstr(cascade_redis_error(f->conn), "t:hot"));
    /* Wrong type: Redis' own error comes back. */
    assert_int_equal(cascade_store_top_items(f->conn, "t:user:bob:lastn", 10, ids, scores, &n),
                     CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(f->conn), "WRONGTYPE"));
}

static int key_exists(cascade_redis *r, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "EXISTS %s", key), 0);
    int n = (int)rep->integer;
    freeReplyObject(rep);
    return n;
}

static void set_key(cascade_redis *r, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "SET %s x", key), 0);
    freeReplyObject(rep);
}

static void test_generations(void **state)
{
    struct test_redis_fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    int64_t gen = -1;
    assert_string_equal(cascade_key_artefact(key, "t", "hot", 7, NULL), "t:hot@7");
    assert_string_equal(cascade_key_artefact(key, "t", "itemcf", 7, "42"), "t:itemcf@7:42");
    assert_string_equal(cascade_key_generation(key, "t", "itemcf"), "t:gen:itemcf");

    assert_int_equal(cascade_store_get_generation(f->conn, "g", "itemcf", &gen), 0);
    assert_int_equal(gen, 0); /* never published */
    for (int64_t g = 1; g <= 4; g++) {
        assert_int_equal(cascade_store_next_generation(f->conn, "g", "itemcf", &gen), 0);
        assert_int_equal(gen, g);
        set_key(f->conn, cascade_key_artefact(key, "g", "itemcf", g, "1"));
        set_key(f->conn, cascade_key_artefact(key, "g", "itemcf", g, "2"));
        set_key(f->conn, cascade_key_artefact(key, "g", "itemcf", g, NULL));
        assert_int_equal(cascade_store_publish_generation(f->conn, "g", "itemcf", g), 0);
        assert_int_equal(cascade_store_get_generation(f->conn, "g", "itemcf", &gen), 0);
        assert_int_equal(gen, g);
    }
    /* After publishing 4: generations 3 and 4 remain, 1 and 2 are gone. */
    assert_int_equal(key_exists(f->conn, cascade_key_artefact(key, "g", "itemcf", 4, "1")), 1);
    assert_int_equal(key_exists(f->conn, cascade_key_artefact(key, "g", "itemcf", 3, "2")), 1);
    assert_int_equal(key_exists(f->conn, cascade_key_artefact(key, "g", "itemcf", 2, "1")), 0);
    assert_int_equal(key_exists(f->conn, cascade_key_artefact(key, "g", "itemcf", 2, NULL)), 0);
    assert_int_equal(key_exists(f->conn, cascade_key_artefact(key, "g", "itemcf", 1, "2")), 0);
    /* A family whose name shares a prefix is not touched. */
    set_key(f->conn, "g:itemcf@20:1");
    assert_int_equal(cascade_store_publish_generation(f->conn, "g", "itemcf", 22), 0);
    assert_int_equal(key_exists(f->conn, "g:itemcf@20:1"), 0);
    set_key(f->conn, "g:itemcf@200:1");
    assert_int_equal(cascade_store_publish_generation(f->conn, "g", "itemcf", 23), 0);
    assert_int_equal(key_exists(f->conn, "g:itemcf@200:1"), 1);
}

static void test_unavailable(void **state)
{
    (void)state;
    struct cascade_redis_opts o = {.host = "127.0.0.1", .port = test_dead_port()};
    cascade_redis *r = cascade_redis_create(&o);
    uint64_t ids[] = {1, 2};
    cascade_v1_ItemRecord items[2];
    static cascade_v1_NeighbourList nl[2];
    bool found[2];
    assert_int_equal(cascade_store_get_items(r, NS, ids, 2, items, found), CASCADE_EUNAVAILABLE);
    assert_int_equal(cascade_store_get_neighbours(r, NS, "itemcf", 0, ids, 2, nl, found),
                     CASCADE_EUNAVAILABLE);
    assert_false(found[0] || found[1]);
    cascade_v1_Interaction it = {.item_id = 1};
    assert_int_equal(cascade_store_push_interaction(r, NS, "u", &it, 10), CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(cascade_redis_error(r), "connection refused"));
    cascade_redis_destroy(r);
}

/* A {ns}:ictr:totals value: seven numbers, one space apart; anything else
 * is refused whole (out zeroed) so a stage never adds half a value. */
static void test_item_totals_parse(void **state)
{
    (void)state;
    cascade_v1_ItemStats st;
    const char ok[] = "12 3 1 0 2 4 61.5";
    assert_int_equal(cascade_store_item_totals_parse(ok, strlen(ok), &st), 0);
    assert_int_equal(st.impressions, 12);
    assert_int_equal(st.clicks, 3);
    assert_int_equal(st.likes, 1);
    assert_int_equal(st.collects, 0);
    assert_int_equal(st.shares, 2);
    assert_int_equal(st.plays, 4);
    assert_true(st.play_seconds == 61.5f);
    static const char *const bad[] = {"",
                                      "x",
                                      "1 2 3 4 5 6",
                                      "1 2 3 4 5 6 7 8",
                                      "1 2 3 4 5 6 7 ",
                                      "1  2 3 4 5 6 7",
                                      "1 2 3 x 5 6 7"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cascade_store_item_totals_parse(bad[i], strlen(bad[i]), &st),
                         CASCADE_EFORMAT);
        assert_int_equal(st.clicks, 0);
    }
    char longer[400];
    memset(longer, '1', sizeof longer);
    assert_int_equal(cascade_store_item_totals_parse(longer, sizeof longer, &st), CASCADE_EFORMAT);
}

/* UserCF lists: the reader follows the published generation (or a given one). */
static void test_user_neighbours(void **state)
{
    struct test_redis_fixture *f = *state;
    static cascade_v1_UserNeighbourList in, out;
    uint8_t buf[cascade_v1_UserNeighbourList_size];
    char key[CASCADE_KEY_MAX];
    size_t len = 0;
    bool found = true;
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 0, "ann", &out, &found), 0);
    assert_false(found); /* no generation published yet */
    in.neighbours_count = 2;
    snprintf(in.neighbours[0].user_id, sizeof(in.neighbours[0].user_id), "bob");
    in.neighbours[0].score = 0.75f;
    snprintf(in.neighbours[1].user_id, sizeof(in.neighbours[1].user_id), "cy");
    in.neighbours[1].score = 0.5f;
    assert_int_equal(
        cascade_record_encode(cascade_v1_UserNeighbourList_fields, &in, buf, sizeof(buf), &len), 0);
    cascade_key_artefact(key, "un", "usercf", 3, "ann");
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SET %s %b", key, buf, len), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 0, "ann", &out, &found), 0);
    assert_false(found); /* written but not published */
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 3, "ann", &out, &found), 0);
    assert_true(found);
    assert_int_equal(cascade_store_publish_generation(f->conn, "un", "usercf", 3), 0);
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 0, "ann", &out, &found), 0);
    assert_true(found);
    assert_int_equal(out.neighbours_count, 2);
    assert_string_equal(out.neighbours[0].user_id, "bob");
    assert_true(out.neighbours[1].score == 0.5f);
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 0, "zed", &out, &found), 0);
    assert_false(found);
    /* A value that is not a UserNeighbourList is reported with its key. */
    cascade_key_artefact(key, "un", "usercf", 3, "bad");
    set_key(f->conn, key);
    assert_int_equal(cascade_store_get_user_neighbours(f->conn, "un", 0, "bad", &out, &found),
                     CASCADE_EFORMAT);
    assert_false(found);
    assert_non_null(strstr(cascade_redis_error(f->conn), "un:usercf@3:bad"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_items_roundtrip),
        cmocka_unit_test(test_corrupt_record_reported),
        cmocka_unit_test(test_user_roundtrip),
        cmocka_unit_test(test_user_and_interactions),
        cmocka_unit_test(test_interactions_lastn_and_consumed),
        cmocka_unit_test(test_neighbours_pipelined),
        cmocka_unit_test(test_sorted_sets),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_user_neighbours),
        cmocka_unit_test(test_item_totals_parse),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
