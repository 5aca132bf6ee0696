/* Unit tests of PutItems (put_items.h): the request bounds and their
 * messages, and the write script against a private redis-server: the record,
 * the new list only within the build's window, the geo cell at the published
 * precision, city and author lists trimmed to their caps, the generation
 * being built written too, a changed item leaving its old lists, and the
 * online revisions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "support.h"

#include "error.h"
#include "put_items.h"
#include "store.h"

#define NS "tput"

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

/* Check a request of the given items; the message into err. */
static int check(Cascade__V1__NewItem *items, size_t n, char *err, size_t len)
{
    Cascade__V1__NewItem *ptrs[128];
    Cascade__V1__PutItemsRequest req = CASCADE__V1__PUT_ITEMS_REQUEST__INIT;
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &items[i];
    req.items = ptrs;
    req.n_items = n;
    err[0] = '\0';
    return cascade_put_items_check(&req, 1800000000, err, len);
}

static void test_check(void **state)
{
    (void)state;
    Cascade__V1__NewItem it[120];
    uint32_t tags[9] = {0};
    char err[256];
    for (size_t i = 0; i < 120; i++) {
        cascade__v1__new_item__init(&it[i]);
        it[i].item_id = 100 + i;
    }
    assert_int_equal(check(it, 2, err, sizeof err), 0);
    assert_int_equal(check(it, 0, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "items is empty");
    assert_int_equal(check(it, 101, err, sizeof err), CASCADE_ETOOBIG);
    assert_string_equal(err, "items: 101 items, at most 100");
    assert_int_equal(check(it, 100, err, sizeof err), 0);
    it[1].item_id = 100;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "items[1].item_id 100 repeats items[0]");
    it[1].item_id = 0;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "items[1].item_id is 0");
    it[1].item_id = 101;
    it[1].geohash = "wx4g!";
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "items[1].geohash"));
    it[1].geohash = "wx4g0bcdefghj"; /* 13 characters */
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    it[1].geohash = "wx4g0";
    it[1].tags = tags;
    it[1].n_tags = 9;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "items[1].tags: 9 tags, at most 8");
    it[1].n_tags = 8;
    it[1].media_type = 3;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "items[1].media_type 3 is not 0, 1 or 2");
    it[1].media_type = 2;
    const float bad_durations[] = {-1.0f, NAN, INFINITY, 86401.0f};
    for (size_t k = 0; k < 4; k++) {
        it[1].duration_s = bad_durations[k];
        assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
        assert_non_null(strstr(err, "items[1].duration_s"));
    }
    it[1].duration_s = 86400.0f;
    it[1].created_at_s = -1;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "items[1].created_at_s -1 is negative"));
    it[1].created_at_s = 1800000000 + 86401;
    assert_int_equal(check(it, 2, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "more than a day ahead"));
    it[1].created_at_s = 1800000000 + 86400;
    assert_int_equal(check(it, 2, err, sizeof err), 0);
}

static void cmd(void **state, const char *fmt, ...)
{
    redisReply *rep = NULL;
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Space-separated words only (no quoting needed by the tests). */
    const char *argv[16];
    size_t argvlen[16];
    int argc = 0;
    for (char *tok = strtok(line, " "); tok && argc < 16; tok = strtok(NULL, " ")) {
        argv[argc] = tok;
        argvlen[argc++] = strlen(tok);
    }
    assert_int_equal(cascade_redis_command_argv(fx(state)->conn, &rep, argc, argv, argvlen), 0);
    freeReplyObject(rep);
}

/* ZSCORE as a number; -1 when absent. */
static double zscore(void **state, const char *key, uint64_t id)
{
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(fx(state)->conn, &rep, "ZSCORE %s %llu", key, (unsigned long long)id),
        0);
    double v = rep->type == REDIS_REPLY_STRING ? atof(rep->str) : -1;
    freeReplyObject(rep);
    return v;
}

static long long zcard(void **state, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "ZCARD %s", key), 0);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

static struct cascade_put_item item(uint64_t id, int64_t created, uint64_t author, uint32_t city,
                                    const char *gh)
{
    struct cascade_put_item it;
    memset(&it, 0, sizeof it);
    it.rec = (cascade_v1_ItemRecord)cascade_v1_ItemRecord_init_zero;
    it.rec.item_id = id;
    it.rec.created_at_s = created;
    it.rec.author_id = author;
    it.rec.city = city;
    snprintf(it.rec.geohash, sizeof it.rec.geohash, "%s", gh);
    return it;
}

static void test_write(void **state)
{
    struct cascade_store_script script = CASCADE_STORE_SCRIPT_INIT;
    const struct cascade_put_items_caps caps = {.geo = 3, .city = 3, .author = 2};
    uint64_t rev = 0;
    /* Published generations: new@4 (oldest 1000), geo@2 at precision 5,
     * city@7, authors@9 with author 5 at its cap of 2; authors@10 is being
     * built. */
    cmd(state, "SET " NS ":gen:new 4");
    cmd(state, "SET " NS ":gen:geo 2");
    cmd(state, "SET " NS ":gen:city 7");
    cmd(state, "SET " NS ":gen:authors 9");
    cmd(state, "SET " NS ":gen:authors:building 10");
    cmd(state, "HSET " NS ":meta geo_precision 5");
    cmd(state, "ZADD " NS ":new@4 1000 1 2000 2");
    cmd(state, "ZADD " NS ":authors@9:items:5 1500 3 2500 4");
    cmd(state, "HSET " NS ":ictr:50 impression 7");
    struct cascade_put_item its[2] = {item(50, 3000, 5, 8, "wx4g0bc"),
                                      item(51, 500, 0, 0, "")}; /* 51: older than new@4 */
    assert_int_equal(cascade_put_items_write(fx(state)->conn, NS, its, 2, &caps, &script, &rev), 0);
    assert_int_equal(rev, 2);
    cascade_v1_ItemRecord rec;
    bool found = false;
    uint64_t id = 50;
    assert_int_equal(cascade_store_get_items(fx(state)->conn, NS, &id, 1, &rec, &found), 0);
    assert_true(found);
    assert_int_equal(rec.author_id, 5);
    assert_string_equal(rec.geohash, "wx4g0bc");
    assert_true(zscore(state, NS ":new@4", 50) == 3000);
    assert_true(zscore(state, NS ":new@4:impressions", 50) == 7); /* live served count */
    assert_true(zscore(state, NS ":new@4", 51) < 0);              /* outside the window */
    assert_true(zscore(state, NS ":geo@2:wx4g0", 50) == 3000);
    assert_true(zscore(state, NS ":city@7:8", 50) == 3000);
    /* Author 5 at its cap of 2: the oldest (3) leaves. */
    assert_true(zscore(state, NS ":authors@9:items:5", 50) == 3000);
    assert_int_equal(zcard(state, NS ":authors@9:items:5"), 2);
    assert_true(zscore(state, NS ":authors@9:items:5", 3) < 0);
    /* The generation being built gets it too. */
    assert_true(zscore(state, NS ":authors@10:items:5", 50) == 3000);
    assert_true(zscore(state, NS ":items:online", 50) == 1);
    assert_true(zscore(state, NS ":items:online", 51) == 2);

    /* A change: new author, city and cell; the old lists lose it. */
    struct cascade_put_item changed = item(50, 3000, 6, 9, "u4pru");
    changed.had_record = true;
    changed.old_author = 5;
    changed.old_city = 8;
    snprintf(changed.old_geohash, sizeof changed.old_geohash, "wx4g0bc");
    assert_int_equal(
        cascade_put_items_write(fx(state)->conn, NS, &changed, 1, &caps, &script, &rev), 0);
    assert_int_equal(rev, 3);
    assert_true(zscore(state, NS ":authors@9:items:5", 50) < 0);
    assert_true(zscore(state, NS ":authors@9:items:6", 50) == 3000);
    assert_true(zscore(state, NS ":city@7:8", 50) < 0);
    assert_true(zscore(state, NS ":city@7:9", 50) == 3000);
    assert_true(zscore(state, NS ":geo@2:wx4g0", 50) < 0);
    assert_true(zscore(state, NS ":geo@2:u4pru", 50) == 3000);
    assert_true(zscore(state, NS ":items:online", 50) == 3);
    pthread_mutex_destroy(&script.lock);
}

static void test_write_redis_down(void **state)
{
    (void)state;
    struct cascade_store_script script = CASCADE_STORE_SCRIPT_INIT;
    const struct cascade_put_items_caps caps = {.geo = 3, .city = 3, .author = 2};
    cascade_redis_pool *dead = test_redis_dead_pool();
    struct cascade_put_item it = item(1, 1, 1, 1, "");
    uint64_t rev = 9;
    assert_non_null(dead);
    assert_int_equal(
        cascade_put_items_write(cascade_redis_pool_get(dead), NS, &it, 1, &caps, &script, &rev),
        CASCADE_EUNAVAILABLE);
    assert_int_equal(rev, 0);
    cascade_redis_pool_destroy(dead);
}

int main(void)
{
    const struct CMUnitTest pure[] = {cmocka_unit_test(test_check)};
    const struct CMUnitTest redis[] = {
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_write_redis_down),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    return failed +
           cmocka_run_group_tests(redis, test_redis_group_setup, test_redis_group_teardown);
}
