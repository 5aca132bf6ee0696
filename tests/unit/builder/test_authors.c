/* Unit tests for the authors job against a private redis-server: author-level
 * ItemCF on a hand-computed example (and the per-user author cap), the order
 * of a user's time-decayed interacted authors, author item lists newest first
 * and capped, generation replacement, config overrides and the command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authors.h"
#include "build_cli.h"
#include "config.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "store.h"
#include "support.h"

#define NS "t"
#define DAY 86400
#define NOW (100 * DAY)

enum { A = 1, B = 2, C = 3 };

static int setup(void **state)
{
    static struct test_redis_fixture f;
    *state = &f;
    return test_redis_fixture_start(&f);
}

static int teardown(void **state)
{
    test_redis_fixture_stop(*state);
    return 0;
}

static void add_user(cascade_dataset *ds, const char *id)
{
    struct cascade_ds_user u = {0};
    snprintf(u.id, sizeof(u.id), "%s", id);
    assert_int_equal(cascade_dataset_add_user(ds, &u, NULL), 0);
}

static void add_item(cascade_dataset *ds, uint64_t id, uint64_t author, int64_t created_at)
{
    struct cascade_ds_item it = {.id = id, .author_id = author, .created_at = created_at};
    assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
}

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* Authors A (items 10, 11), B (20), C (30..33; 33 published after now) and
 * an item 40 without an author. Author interest per user (click 1, like 2):
 *   u1: A 1, B 1;   u2: A 3 (click + like), B 1;   u3: B 1, C 2 (two items)
 * so over (u1, u2, u3): A = (1, 3, 0), B = (1, 1, 1), C = (0, 0, 2) and
 *   sim(A,B) = 4/(√10·√3),  sim(B,C) = 2/(√3·2),  sim(A,C) = 0. */
static cascade_dataset *hand_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    add_user(ds, "u1");
    add_user(ds, "u2");
    add_user(ds, "u3");
    add_item(ds, 10, A, 100);
    add_item(ds, 11, A, 200);
    add_item(ds, 20, B, 150);
    add_item(ds, 30, C, 300);
    add_item(ds, 31, C, 310);
    add_item(ds, 32, C, 320);
    add_item(ds, 33, C, NOW + 5);
    add_item(ds, 40, 0, 400);
    ev(ds, NOW - 50, "u1", 10, CASCADE_EV_CLICK);
    ev(ds, NOW - 49, "u1", 20, CASCADE_EV_CLICK);
    ev(ds, NOW - 40, "u2", 10, CASCADE_EV_IMPRESSION);
    ev(ds, NOW - 39, "u2", 10, CASCADE_EV_CLICK);
    ev(ds, NOW - 38, "u2", 10, CASCADE_EV_LIKE);
    ev(ds, NOW - 37, "u2", 20, CASCADE_EV_CLICK);
    ev(ds, NOW - 30, "u3", 20, CASCADE_EV_CLICK);
    ev(ds, NOW - 29, "u3", 30, CASCADE_EV_CLICK);
    ev(ds, NOW - 28, "u3", 31, CASCADE_EV_CLICK);
    ev(ds, NOW - 27, "u3", 40, CASCADE_EV_CLICK);
    ev(ds, NOW, "u3", 31, CASCADE_EV_IMPRESSION);
    return ds;
}

static void run_authors(cascade_redis *r, const cascade_dataset *ds, struct cascade_authors_opts *o,
                        struct cascade_authors_summary *s)
{
    char err[512] = "";
    o->ns = NS;
    o->quiet = true;
    o->pipeline = 3;
    int rc = cascade_authors_run(ds, r, o, s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "authors: %s\n", err);
    assert_int_equal(rc, 0);
}

/* The current generation's NeighbourList under suffix; false when absent. */
static bool get_list(cascade_redis *r, const char *suffix, cascade_v1_NeighbourList *list)
{
    char key[CASCADE_KEY_MAX];
    int64_t gen;
    redisReply *rep = NULL;
    assert_int_equal(cascade_store_get_generation(r, NS, "authors", &gen), 0);
    assert_true(gen > 0);
    cascade_key_artefact(key, NS, "authors", gen, suffix);
    assert_int_equal(cascade_redis_command(r, &rep, "GET %s", key), 0);
    bool found = rep->type == REDIS_REPLY_STRING;
    if (found)
        assert_int_equal(cascade_record_decode(cascade_v1_NeighbourList_fields, list,
                                               (const uint8_t *)rep->str, rep->len),
                         0);
    freeReplyObject(rep);
    return found;
}

static void test_similar_authors(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hand_world();
    struct cascade_authors_opts o;
    struct cascade_authors_summary s;
    cascade_v1_NeighbourList l;
    cascade_authors_defaults(&o);
    o.as_of = NOW;
    run_authors(f->conn, ds, &o, &s);
    assert_int_equal(s.authors, 3);
    assert_int_equal(s.similar_lists, 3);
    double ab = 4 / (sqrt(10) * sqrt(3)), bc = 2 / (sqrt(3) * 2);

    assert_true(get_list(f->conn, "similar:1", &l));
    assert_int_equal(l.neighbours_count, 1); /* A and C share no user */
    assert_int_equal(l.neighbours[0].item_id, B);
    assert_true(fabs(l.neighbours[0].score - ab) < 1e-6);
    assert_true(get_list(f->conn, "similar:2", &l));
    assert_int_equal(l.neighbours_count, 2);
    assert_int_equal(l.neighbours[0].item_id, A);
    assert_true(fabs(l.neighbours[0].score - ab) < 1e-6);
    assert_int_equal(l.neighbours[1].item_id, C);
    assert_true(fabs(l.neighbours[1].score - bc) < 1e-6);
    assert_true(get_list(f->conn, "similar:3", &l));
    assert_int_equal(l.neighbours_count, 1);
    assert_int_equal(l.neighbours[0].item_id, B);
    assert_false(get_list(f->conn, "similar:0", &l));

    /* Top-k 1 keeps B's best only. */
    o.similar_top_k = 1;
    run_authors(f->conn, ds, &o, &s);
    assert_true(get_list(f->conn, "similar:2", &l));
    assert_int_equal(l.neighbours_count, 1);
    assert_int_equal(l.neighbours[0].item_id, A);

    /* One author per user (the strongest; u1's A/B tie goes to A): u1, u2 keep
     * A and u3 keeps C, so B has no users left and no two authors share one. */
    o.similar_top_k = 50;
    o.max_authors_per_user = 1;
    run_authors(f->conn, ds, &o, &s);
    assert_int_equal(s.similar_lists, 0);
    assert_int_equal(s.pairs, 0);
    assert_false(get_list(f->conn, "similar:1", &l));
    assert_false(get_list(f->conn, "similar:2", &l));
    /* ...while the interacted lists do not depend on the cap. */
    assert_true(get_list(f->conn, "interacted:u1", &l));
    assert_int_equal(l.neighbours_count, 2);
    cascade_dataset_destroy(ds);
}

static void test_author_items(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hand_world();
    struct cascade_authors_opts o;
    struct cascade_authors_summary s;
    char key[CASCADE_KEY_MAX];
    uint64_t ids[8];
    double scores[8];
    size_t n = 0;
    cascade_authors_defaults(&o);
    assert_int_equal(o.items_cap, 200);
    o.as_of = NOW;
    o.items_cap = 2;
    run_authors(f->conn, ds, &o, &s);
    assert_int_equal(s.item_lists, 3);
    assert_int_equal(s.items, 5); /* A 2, B 1, C 2 of 3 published */
    cascade_key_artefact(key, NS, "authors", s.gen, "items:3");
    assert_int_equal(cascade_store_top_items(f->conn, key, 8, ids, scores, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 32);
    assert_int_equal(ids[1], 31);
    assert_true(scores[0] == 320);
    cascade_key_artefact(key, NS, "authors", s.gen, "items:1");
    assert_int_equal(cascade_store_top_items(f->conn, key, 8, ids, scores, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 11);
    assert_int_equal(ids[1], 10);
    cascade_key_artefact(key, NS, "authors", s.gen, "items:0");
    assert_int_equal(cascade_store_top_items(f->conn, key, 8, ids, scores, &n), 0);
    assert_int_equal(n, 0);
    cascade_dataset_destroy(ds);
}

static void test_interacted_decay(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hand_world();
    struct cascade_authors_opts o;
    struct cascade_authors_summary s;
    cascade_v1_NeighbourList l;
    /* u4, half-life one day: A clicked 3 days ago (1·⅛), B clicked now (1),
     * C collected a day ago (3·½). Undecayed the order would be C, A, B. */
    add_user(ds, "u4");
    ev(ds, NOW - 3 * DAY, "u4", 11, CASCADE_EV_CLICK);
    ev(ds, NOW - DAY, "u4", 32, CASCADE_EV_COLLECT);
    ev(ds, NOW, "u4", 20, CASCADE_EV_CLICK);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    cascade_authors_defaults(&o);
    o.as_of = NOW;
    o.half_life_days = 1;
    run_authors(f->conn, ds, &o, &s);
    assert_int_equal(s.interacted_lists, 4);
    assert_true(get_list(f->conn, "interacted:u4", &l));
    assert_int_equal(l.neighbours_count, 3);
    assert_int_equal(l.neighbours[0].item_id, C);
    assert_true(fabs(l.neighbours[0].score - 1.5) < 1e-6);
    assert_int_equal(l.neighbours[1].item_id, B);
    assert_true(fabs(l.neighbours[1].score - 1.0) < 1e-6);
    assert_int_equal(l.neighbours[2].item_id, A);
    assert_true(fabs(l.neighbours[2].score - 0.125) < 1e-6);
    /* u3's item 40 has no author: only B and C. */
    assert_true(get_list(f->conn, "interacted:u3", &l));
    assert_int_equal(l.neighbours_count, 2);
    assert_int_equal(l.neighbours[0].item_id, C);

    /* Without decay u4's A and B tie at 1: lower author id first. */
    o.half_life_days = 0;
    o.interacted_top_k = 2;
    run_authors(f->conn, ds, &o, &s);
    assert_true(get_list(f->conn, "interacted:u4", &l));
    assert_int_equal(l.neighbours_count, 2);
    assert_int_equal(l.neighbours[0].item_id, C);
    assert_true(fabs(l.neighbours[0].score - 3.0) < 1e-6);
    assert_int_equal(l.neighbours[1].item_id, A);
    cascade_dataset_destroy(ds);
}

static void test_generations_replace(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hand_world();
    struct cascade_authors_opts o;
    struct cascade_authors_summary s;
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "FLUSHALL"), 0);
    freeReplyObject(rep);
    cascade_authors_defaults(&o);
    o.as_of = NOW;
    for (int64_t g = 1; g <= 3; g++) {
        run_authors(f->conn, ds, &o, &s);
        assert_int_equal(s.gen, g);
    }
    /* Generation 1 is gone with every key; 2 is kept for readers that still hold it. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "KEYS " NS ":authors@1*"), 0);
    assert_int_equal(rep->elements, 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep,
                                           "EXISTS " NS ":authors@2:similar:1 " NS
                                           ":authors@3:similar:1 " NS ":authors@3:interacted:u1"),
                     0);
    assert_int_equal(rep->integer, 3);
    freeReplyObject(rep);
    cascade_dataset_destroy(ds);
}

static void test_config(void **state)
{
    (void)state;
    char err[512];
    struct cascade_authors_opts o;
    cascade_authors_defaults(&o);
    cascade_config *c = cascade_config_parse(
        "{\"build\": {\"authors\": {\"items_cap\": 20, \"half_life_days\": 7,\n"
        "\"interacted_top_k\": 10, \"similar_top_k\": 5, \"max_authors_per_user\": 0}}}",
        "build.json", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(cascade_authors_config(c, &o, err, sizeof(err)), 0);
    assert_int_equal(o.items_cap, 20);
    assert_true(o.half_life_days == 7);
    assert_int_equal(o.interacted_top_k, 10);
    assert_int_equal(o.similar_top_k, 5);
    assert_int_equal(o.max_authors_per_user, 0);
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"build\": {\"authors\": {\"similar_top_k\": 201}}}", "bad.json",
                             err, sizeof(err));
    assert_int_equal(cascade_authors_config(c, &o, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "build.authors.similar_top_k"));
    cascade_config_destroy(c);
}

static void test_authors_command(void **state)
{
    struct test_redis_fixture *f = *state;
    char dir[256], data[300], port[16], err[256];
    struct cascade_datagen_opts g;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(port, sizeof(port), "127.0.0.1:%d", f->server.port);
    cascade_datagen_defaults(&g);
    g.users = 400;
    g.items = 150;
    g.authors = 30;
    g.events = 8000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_run(&g, data, NULL, err, sizeof(err)), 0);
    const char *argv[] = {
        "cascade-build",           "authors", "--data", data, "--redis", port, "--namespace", "cli",
        "--similar-authors-top-k", "3",       "--quiet"};
    assert_int_equal(cascade_build_main(11, (char **)argv), CASCADE_BUILD_EXIT_OK);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "GET cli:gen:authors"), 0);
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "KEYS cli:authors@1:similar:*"), 0);
    assert_true(rep->elements > 10);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "KEYS cli:authors@1:interacted:*"), 0);
    assert_true(rep->elements > 100);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "EXISTS cli:gen:authors:building"), 0);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    /* top-k is bounded by the record. */
    argv[9] = "201";
    assert_int_equal(cascade_build_main(11, (char **)argv), CASCADE_BUILD_EXIT_USAGE);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_similar_authors),  cmocka_unit_test(test_author_items),
        cmocka_unit_test(test_interacted_decay), cmocka_unit_test(test_generations_replace),
        cmocka_unit_test(test_config),           cmocka_unit_test(test_authors_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
