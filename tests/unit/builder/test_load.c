/* Unit tests for the load job against a private redis-server: a tiny world
 * with hand-counted statistics is loaded and every record, list and set
 * (last-n, consumed, followed authors) is read back through common/store.h;
 * reloading replaces rather than appends; --flush; and cascade-build all on a
 * generated world. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "build_cli.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "load.h"
#include "rank_features.h"
#include "lr.h"
#include "store.h"
#include "support.h"

#define NS "t"
#define AS_OF 100000

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type,
               float value)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, value), 0);
}

/* Three items (two by author 7), user u1 with a profile, u2 without one. */
static cascade_dataset *tiny_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ds_user u1 = {.id = "u1",
                                 .age = 30,
                                 .gender = 1,
                                 .city = 2,
                                 .geohash = "wx4g0b",
                                 .n_interests = 1,
                                 .interests = {3}};
    struct cascade_ds_user u2 = {.id = "u2"};
    struct cascade_ds_item i1 = {.id = 1,
                                 .author_id = 7,
                                 .category = 3,
                                 .n_tags = 2,
                                 .tags = {1, 2},
                                 .created_at = 1000,
                                 .geohash = "wx4g0",
                                 .city = 2,
                                 .media_type = 2,
                                 .duration_s = 60};
    struct cascade_ds_item i2 = {
        .id = 2, .author_id = 7, .category = 5, .created_at = 2000, .city = 3, .media_type = 1};
    struct cascade_ds_item i3 = {
        .id = 3, .author_id = 8, .category = 3, .created_at = 1500, .media_type = 1};
    assert_int_equal(cascade_dataset_add_user(ds, &u1, NULL), 0);
    assert_int_equal(cascade_dataset_add_user(ds, &u2, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &i1, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &i2, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &i3, NULL), 0);
    ev(ds, 10000, "u1", 1, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 10001, "u1", 1, CASCADE_EV_CLICK, 0);
    ev(ds, 10030, "u1", 1, CASCADE_EV_PLAY, 25);
    ev(ds, 10040, "u1", 1, CASCADE_EV_LIKE, 0);
    ev(ds, 20000, "u1", 2, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 20001, "u1", 2, CASCADE_EV_CLICK, 0);
    ev(ds, 20010, "u1", 2, CASCADE_EV_COLLECT, 0);
    ev(ds, 30000, "u1", 3, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 40000, "u2", 1, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 40001, "u2", 1, CASCADE_EV_CLICK, 0);
    ev(ds, 40005, "u2", 1, CASCADE_EV_SHARE, 0);
    ev(ds, AS_OF, "u2", 2, CASCADE_EV_IMPRESSION, 0);
    return ds;
}

/* Load ds with the tests' options (affinity half-life half_life_days, 0 = no
 * decay; 3 commands per round trip), the summary into *s. */
static void load_with(cascade_redis *r, cascade_dataset *ds, bool flush, double half_life_days,
                      struct cascade_load_summary *s)
{
    struct cascade_load_opts o;
    char err[512];
    cascade_load_defaults(&o);
    o.ns = NS;
    o.quiet = true;
    o.flush = flush;
    o.affinity_half_life_days = half_life_days; /* 0: no decay, plain weighted counts */
    o.pipeline = 3;                             /* several round trips even for a tiny world */
    if (cascade_load_run(ds, r, &o, s, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
}

static void load_tiny_decayed(cascade_redis *r, cascade_dataset *ds, bool flush,
                              double half_life_days)
{
    struct cascade_load_summary s;
    load_with(r, ds, flush, half_life_days, &s);
    assert_int_equal(s.items, 3);
    assert_int_equal(s.users, 2);
    assert_int_equal(s.as_of, AS_OF);
    assert_int_equal(s.follow_sets, 0);
}

static void load_tiny(cascade_redis *r, cascade_dataset *ds, bool flush)
{
    load_tiny_decayed(r, ds, flush, 0);
}

/* Affinities decay with the half-life (interests.h): each event's weight is
 * multiplied by 2^(-(as_of - ts) / half_life), and so are the category's
 * impressions and clicks. Half-life 0.5 day = 43200 s. */
static void test_affinity_decay(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    load_tiny_decayed(f->conn, ds, false, 0.5);
    cascade_v1_UserRecord u;
    bool found;
    assert_int_equal(cascade_store_get_user(f->conn, NS, "u1", &u, &found), 0);
    assert_true(found);
    const double h = 43200.0;
    /* Category 5: click (w 1) at 20001, collect (w 3) at 20010; shown at 20000. */
    double w5 = 1 * pow(2, -(AS_OF - 20001) / h) + 3 * pow(2, -(AS_OF - 20010) / h);
    /* Category 3: click (w 1) at 10001, like (w 2) at 10040 (play weighs 0). */
    double w3 = 1 * pow(2, -(AS_OF - 10001) / h) + 2 * pow(2, -(AS_OF - 10040) / h);
    assert_int_equal(u.affinities_count, 2);
    assert_int_equal(u.affinities[0].category, 5);
    assert_true(fabs(u.affinities[0].weight - w5) < 1e-4 * w5);
    assert_int_equal(u.affinities[1].category, 3);
    assert_true(fabs(u.affinities[1].weight - w3) < 1e-4 * w3);
    double imp5 = pow(2, -(AS_OF - 20000) / h), clk5 = pow(2, -(AS_OF - 20001) / h);
    assert_true(fabs(u.affinities[0].impressions - imp5) < 1e-4 * imp5);
    assert_true(fabs(u.affinities[0].clicks - clk5) < 1e-4 * clk5);
    cascade_dataset_destroy(ds);
}

static void test_items(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    load_tiny(f->conn, ds, false);
    uint64_t ids[4] = {1, 2, 3, 42};
    cascade_v1_ItemRecord rec[4];
    bool found[4];
    assert_int_equal(cascade_store_get_items(f->conn, NS, ids, 4, rec, found), 0);
    assert_true(found[0] && found[1] && found[2] && !found[3]);
    assert_int_equal(rec[0].author_id, 7);
    assert_int_equal(rec[0].category, 3);
    assert_int_equal(rec[0].tags_count, 2);
    assert_int_equal(rec[0].created_at_s, 1000);
    assert_string_equal(rec[0].geohash, "wx4g0");
    assert_int_equal(rec[0].media_type, 2);
    assert_true(rec[0].duration_s == 60);
    assert_true(rec[0].has_stats);
    assert_int_equal(rec[0].stats.impressions, 2);
    assert_int_equal(rec[0].stats.clicks, 2);
    assert_int_equal(rec[0].stats.likes, 1);
    assert_int_equal(rec[0].stats.shares, 1);
    assert_int_equal(rec[0].stats.plays, 1);
    assert_true(rec[0].stats.play_seconds == 25);
    assert_int_equal(rec[1].stats.impressions, 2);
    assert_int_equal(rec[1].stats.clicks, 1);
    assert_int_equal(rec[1].stats.collects, 1);
    assert_int_equal(rec[2].stats.impressions, 1);
    assert_int_equal(rec[2].stats.clicks, 0);

    cascade_dataset_destroy(ds);
}

static void test_users_and_lists(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    load_tiny(f->conn, ds, false);
    cascade_v1_UserRecord u;
    bool found;
    assert_int_equal(cascade_store_get_user(f->conn, NS, "u1", &u, &found), 0);
    assert_true(found);
    assert_int_equal(u.age, 30);
    assert_int_equal(u.city, 2);
    assert_string_equal(u.geohash, "wx4g0b");
    assert_int_equal(u.interests_count, 1);
    assert_int_equal(u.impressions, 3);
    assert_int_equal(u.clicks, 2);
    assert_int_equal(u.interactions, 5); /* click, play, like, click, collect */
    /* Category 5: click 1 + collect 3 = 4; category 3: click 1 + like 2 = 3. */
    assert_int_equal(u.affinities_count, 2);
    assert_int_equal(u.affinities[0].category, 5);
    assert_true(u.affinities[0].weight == 4);
    assert_int_equal(u.affinities[1].category, 3);
    assert_true(u.affinities[1].weight == 3);
    /* Exposure per category: items 1 and 3 (category 3) shown, 1 clicked;
     * item 2 (category 5) shown and clicked. */
    assert_true(u.affinities[0].impressions == 1 && u.affinities[0].clicks == 1);
    assert_true(u.affinities[1].impressions == 2 && u.affinities[1].clicks == 1);

    /* Last-n: one entry per item, newest first, weights of distinct behaviours summed. */
    cascade_v1_Interaction it[8];
    size_t n = 0;
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "u1", 8, it, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(it[0].item_id, 2);
    assert_int_equal(it[0].type, CASCADE_EV_COLLECT);
    assert_true(it[0].weight == 4);
    assert_int_equal(it[0].time_s, 20010);
    assert_int_equal(it[1].item_id, 1);
    assert_int_equal(it[1].type, CASCADE_EV_LIKE);
    assert_true(it[1].weight == 3);

    /* Consumed: interacted items only, not mere impressions. */
    uint64_t ids[3] = {1, 2, 3};
    bool consumed[3];
    assert_int_equal(cascade_store_consumed(f->conn, NS, "u1", ids, 3, consumed), 0);
    assert_true(consumed[0] && consumed[1] && !consumed[2]);
    assert_int_equal(cascade_store_consumed(f->conn, NS, "u2", ids, 3, consumed), 0);
    assert_true(consumed[0] && !consumed[1] && !consumed[2]);

    /* u2 has no profile line but a record with its counters. */
    assert_int_equal(cascade_store_get_user(f->conn, NS, "u2", &u, &found), 0);
    assert_true(found);
    assert_int_equal(u.impressions, 2);
    assert_int_equal(u.affinities_count, 2);
    assert_int_equal(u.affinities[0].category, 3);
    assert_true(u.affinities[0].weight == 4); /* click 1 + share 3 */
    /* Item 2 was only shown: its category is recorded with no weight, after. */
    assert_int_equal(u.affinities[1].category, 5);
    assert_true(u.affinities[1].weight == 0 && u.affinities[1].impressions == 1 &&
                u.affinities[1].clicks == 0);

    /* Loading again replaces the lists instead of appending to them. */
    load_tiny(f->conn, ds, false);
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "u1", 8, it, &n), 0);
    assert_int_equal(n, 2);
    cascade_dataset_destroy(ds);
}

/* SMEMBERS of a user's followed authors, sorted, into out (at most 8). */
static size_t follows_of(cascade_redis *r, const char *uid, uint64_t *out)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(r, &rep, "SORT %s", cascade_key_user_follows(key, NS, uid)), 0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_true(rep->elements <= 8);
    for (size_t i = 0; i < rep->elements; i++)
        out[i] = strtoull(rep->element[i]->str, NULL, 10);
    size_t n = rep->elements;
    freeReplyObject(rep);
    return n;
}

static void test_follows(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    /* u1 follows author 7 twice (items 1 and 2), u2 follows author 8 (item 3)
     * and, after as_of, author 7, which must not count. */
    ev(ds, 10050, "u1", 1, CASCADE_EV_FOLLOW, 0);
    ev(ds, 20030, "u1", 2, CASCADE_EV_FOLLOW, 0);
    ev(ds, 40010, "u2", 3, CASCADE_EV_FOLLOW, 0);
    ev(ds, 60000, "u2", 2, CASCADE_EV_FOLLOW, 0);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    struct cascade_load_opts o;
    struct cascade_load_summary s;
    char err[512];
    uint64_t authors[8];
    cascade_load_defaults(&o);
    o.ns = NS;
    o.quiet = true;
    o.as_of = 50000;
    assert_int_equal(cascade_load_run(ds, f->conn, &o, &s, err, sizeof(err)), 0);
    assert_int_equal(s.follow_sets, 2);
    assert_int_equal(s.follows, 2);
    assert_int_equal(follows_of(f->conn, "u1", authors), 1);
    assert_int_equal(authors[0], 7);
    assert_int_equal(follows_of(f->conn, "u2", authors), 1);
    assert_int_equal(authors[0], 8);

    /* As of the end of the log u2 follows both. */
    o.as_of = 0;
    assert_int_equal(cascade_load_run(ds, f->conn, &o, &s, err, sizeof(err)), 0);
    assert_int_equal(s.follows, 3);
    assert_int_equal(follows_of(f->conn, "u2", authors), 2);
    assert_int_equal(authors[0], 7);
    assert_int_equal(authors[1], 8);

    /* Loading a log without follows replaces the sets: nobody follows anyone. */
    cascade_dataset_destroy(ds);
    ds = tiny_world();
    load_tiny(f->conn, ds, false);
    assert_int_equal(follows_of(f->conn, "u1", authors), 0);
    assert_int_equal(follows_of(f->conn, "u2", authors), 0);
    cascade_dataset_destroy(ds);
}

/* LPUSH one interaction to a user's live last-n, as Feedback does. */
static void push_live(cascade_redis *r, const char *uid, uint64_t item, uint32_t type,
                      int64_t time_s, float weight)
{
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_Interaction_size];
    size_t len;
    cascade_v1_Interaction it = {item, type, time_s, weight};
    assert_int_equal(
        cascade_record_encode(cascade_v1_Interaction_fields, &it, buf, sizeof buf, &len), 0);
    const char *argv[] = {"LPUSH", cascade_key_user_lastn(key, NS, uid), (const char *)buf};
    size_t lens[] = {5, strlen(key), len};
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command_argv(r, &rep, 3, argv, lens), 0);
    freeReplyObject(rep);
}

/* Live state newer than the log survives a reload: u1's Feedback after
 * AS_OF (a click on item 3, a follow on item 1) stays at the head of last-n
 * (item 1 is not repeated from the log), in consumed, and the follow's author
 * in follows; an entry older than as_of is the log's business and goes. Once
 * the log itself reaches past those entries, the log's version replaces them. */
static void test_live_state_merged(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    load_tiny(f->conn, ds, true);
    push_live(f->conn, "u1", 3, CASCADE_EV_LIKE, AS_OF - 5, 2); /* stale: dropped */
    push_live(f->conn, "u1", 3, CASCADE_EV_CLICK, AS_OF + 50, 1);
    push_live(f->conn, "u1", 1, CASCADE_EV_FOLLOW, AS_OF + 60, 4);

    struct cascade_load_summary s;
    load_with(f->conn, ds, false, 0, &s);
    assert_int_equal(s.live_kept, 2);
    cascade_v1_Interaction it[8];
    size_t n = 0;
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "u1", 8, it, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(it[0].item_id, 1);
    assert_int_equal(it[0].type, CASCADE_EV_FOLLOW);
    assert_int_equal(it[0].time_s, AS_OF + 60);
    assert_int_equal(it[1].item_id, 3);
    assert_int_equal(it[1].type, CASCADE_EV_CLICK);
    assert_int_equal(it[2].item_id, 2); /* the log's, item 1 not repeated */
    assert_int_equal(it[2].type, CASCADE_EV_COLLECT);
    uint64_t ids[3] = {1, 2, 3};
    bool consumed[3];
    assert_int_equal(cascade_store_consumed(f->conn, NS, "u1", ids, 3, consumed), 0);
    assert_true(consumed[0] && consumed[1] && consumed[2]);
    uint64_t authors[8];
    assert_int_equal(follows_of(f->conn, "u1", authors), 1);
    assert_int_equal(authors[0], 7);
    /* u2 had no live entries: exactly the log. */
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "u2", 8, it, &n), 0);
    assert_int_equal(n, 1);

    /* The log now runs past the live entries: they are its business again. */
    ev(ds, AS_OF + 100, "u2", 3, CASCADE_EV_IMPRESSION, 0);
    load_with(f->conn, ds, false, 0, &s);
    assert_int_equal(s.live_kept, 0);
    assert_int_equal(cascade_store_get_lastn(f->conn, NS, "u1", 8, it, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(it[0].item_id, 2);
    assert_int_equal(it[1].item_id, 1);
    assert_int_equal(follows_of(f->conn, "u1", authors), 0);
    cascade_dataset_destroy(ds);
}

static void test_meta(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    load_tiny(f->conn, ds, false);
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "HGET %s users", cascade_key_meta(key, NS)), 0);
    assert_string_equal(rep->str, "2");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HGET %s as_of", key), 0);
    assert_string_equal(rep->str, "100000");
    freeReplyObject(rep);
    cascade_dataset_destroy(ds);
}

static void test_flush_namespace(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = tiny_world();
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SET " NS ":junk 1"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "SET other:keep 1"), 0);
    freeReplyObject(rep);
    load_tiny(f->conn, ds, true);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "EXISTS " NS ":junk other:keep"), 0);
    assert_int_equal(rep->integer, 1); /* only the other namespace's key is left */
    freeReplyObject(rep);
    cascade_dataset_destroy(ds);
}

static void test_build_all_command(void **state)
{
    struct test_redis_fixture *f = *state;
    char dir[256], data[300], models[300], port[16], latest[400], path[700], err[256];
    struct cascade_datagen_opts g;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(models, sizeof(models), "%s/models", dir);
    snprintf(port, sizeof(port), "127.0.0.1:%d", f->server.port);
    cascade_datagen_defaults(&g);
    g.users = 600;
    g.items = 150;
    g.events = 12000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_run(&g, data, NULL, err, sizeof(err)), 0);
    const char *argv[] = {"cascade-build", "all",   "--data",      data,   "--redis",  port,
                          "--namespace",   "allns", "--model-dir", models, "--epochs", "2",
                          "--quiet"};
    assert_int_equal(cascade_build_main(13, (char **)argv), CASCADE_BUILD_EXIT_OK);

    /* The model is published and loads with the rank feature count. */
    snprintf(latest, sizeof(latest), "%s/rank-lr.latest", models);
    FILE *fl = fopen(latest, "r");
    assert_non_null(fl);
    char name[256] = "";
    assert_non_null(fgets(name, sizeof(name), fl));
    fclose(fl);
    name[strcspn(name, "\n")] = '\0';
    assert_int_equal(strncmp(name, "rank-lr-", 8), 0);
    snprintf(path, sizeof(path), "%s/%s", models, name);
    cascade_lr *m = cascade_lr_load(path, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(cascade_lr_dim(m), CASCADE_RANK_FEATURES);
    cascade_lr_destroy(m);

    /* Everything landed in the namespace, including the model name. */
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HGET allns:meta rank_model"), 0);
    assert_int_equal(strncmp(rep->str, name, strlen(rep->str)), 0);
    freeReplyObject(rep);
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "EXISTS allns:hot@1 allns:item:1 allns:user:u1"), 0);
    assert_int_equal(rep->integer, 3);
    freeReplyObject(rep);
    /* lists and authors ran: each family has its first generation. */
    assert_int_equal(cascade_redis_command(f->conn, &rep,
                                           "MGET allns:gen:hot allns:gen:new allns:gen:geo "
                                           "allns:gen:city allns:gen:authors"),
                     0);
    assert_int_equal(rep->elements, 5);
    for (size_t i = 0; i < rep->elements; i++) {
        assert_int_equal(rep->element[i]->type, REDIS_REPLY_STRING);
        assert_string_equal(rep->element[i]->str, "1");
    }
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HGET allns:meta itemcf_lists"), 0);
    assert_true(atoi(rep->str) > 50);
    freeReplyObject(rep);
    /* `all` includes the ease family. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HGET allns:meta ease_lists"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_true(atoi(rep->str) > 50);
    freeReplyObject(rep);

    /* A Redis nobody listens on: exit code 1. */
    snprintf(port, sizeof(port), "127.0.0.1:%d", test_dead_port());
    const char *dead[] = {"cascade-build", "load", "--data", data, "--redis", port, "--quiet"};
    assert_int_equal(cascade_build_main(7, (char **)dead), CASCADE_BUILD_EXIT_FAILURE);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_users_and_lists),
        cmocka_unit_test(test_affinity_decay),
        cmocka_unit_test(test_follows),
        cmocka_unit_test(test_live_state_merged),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_flush_namespace),
        cmocka_unit_test(test_build_all_command),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
