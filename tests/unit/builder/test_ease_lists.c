/* Unit tests for the EASE builder family (services/builder/cf/ease_lists.c):
 * which events are interactions (positive interest weight, binary, repeats
 * once), lists equal to the model's own neighbours built from the expected
 * binary matrix, the item cap leaving the other items without lists, the
 * error for data without interactions, build.ease.* config, and
 * `cascade-build ease` publishing {ns}:ease@{gen}:{id} into a real Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "build_cli.h"
#include "cf_config.h"
#include "cf_test.h"
#include "dataset.h"
#include "ease.h"
#include "ease_lists.h"
#include "error.h"
#include "store.h"
#include "support.h"

#define N_USERS 8
#define N_ITEMS 7

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* Users u0..u7 and items 100..106. The binary matrix the builder must see
 * is want[u][i]; impressions and plays (weight 0) add events that must not
 * count, and some interactions are repeated or carried by two behaviours. */
static const unsigned char want[N_USERS][N_ITEMS] = {
    {1, 1, 1, 0, 0, 0, 0}, {1, 1, 0, 1, 0, 0, 0}, {1, 0, 1, 1, 1, 0, 0}, {0, 1, 1, 0, 1, 0, 0},
    {1, 1, 0, 0, 1, 1, 0}, {0, 0, 1, 1, 0, 1, 0}, {1, 0, 0, 1, 1, 1, 0}, {1, 1, 1, 0, 0, 0, 0},
};

static cascade_dataset *hand_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    char uid[8];
    int64_t ts = 1000;
    assert_non_null(ds);
    for (int u = 0; u < N_USERS; u++) {
        snprintf(uid, sizeof uid, "u%d", u);
        cf_test_add_user(ds, uid);
    }
    for (int i = 0; i < N_ITEMS; i++)
        cf_test_add_item(ds, 100 + (uint64_t)i);
    for (int u = 0; u < N_USERS; u++) {
        snprintf(uid, sizeof uid, "u%d", u);
        for (int i = 0; i < N_ITEMS; i++) {
            /* Item 106 and every item the user did not interact with: shown only. */
            ev(ds, ts++, uid, 100 + (uint64_t)i, CASCADE_EV_IMPRESSION);
            if (!want[u][i])
                continue;
            ev(ds, ts++, uid, 100 + (uint64_t)i, CASCADE_EV_CLICK);
            if ((u + i) % 3 == 0)
                ev(ds, ts++, uid, 100 + (uint64_t)i, CASCADE_EV_LIKE);
            if ((u + i) % 4 == 0)
                ev(ds, ts++, uid, 100 + (uint64_t)i, CASCADE_EV_CLICK);
            ev(ds, ts++, uid, 100 + (uint64_t)i, CASCADE_EV_PLAY);
        }
    }
    return ds;
}

/* The model over want[][] directly (item index = column). */
static cascade_ease *reference_model(double lambda, size_t max_items)
{
    static size_t off[N_USERS + 1];
    static uint32_t item[N_USERS * N_ITEMS];
    size_t n = 0;
    for (int u = 0; u < N_USERS; u++) {
        off[u] = n;
        for (int i = 0; i < N_ITEMS; i++)
            if (want[u][i])
                item[n++] = (uint32_t)i;
    }
    off[N_USERS] = n;
    struct cascade_ease_input in = {
        .n_users = N_USERS, .n_items = N_ITEMS, .off = off, .item = item};
    struct cascade_ease_opts o;
    char err[256];
    cascade_ease_opts_default(&o);
    o.lambda = lambda;
    o.max_items = max_items;
    cascade_ease *m = cascade_ease_build(&in, &o, err, sizeof err);
    assert_non_null(m);
    return m;
}

static void opts(struct cascade_ease_lists_opts *o, double lambda, size_t max_items, size_t k)
{
    cascade_ease_lists_defaults(o);
    o->lambda = lambda;
    o->max_items = max_items;
    o->neighbours = k;
    o->quiet = true;
}

static void test_lists_are_the_binary_models_neighbours(void **state)
{
    (void)state;
    cascade_dataset *ds = hand_world();
    struct cascade_ease_lists_opts o;
    struct cascade_cf_lists res;
    char err[256];
    size_t covered = 0;
    opts(&o, 2.0, 100, 4);
    assert_int_equal(cascade_ease_lists_compute(ds, &o, &res, &covered, err, sizeof err), 0);
    assert_int_equal(covered, N_ITEMS - 1); /* item 106 was only ever shown */
    assert_int_equal(res.n, N_ITEMS);
    assert_int_equal(res.k, 4);
    cascade_ease *m = reference_model(2.0, 100);
    size_t nonempty = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        uint32_t items[4];
        float w[4];
        long n = cascade_ease_neighbours(m, i, 4, items, w);
        assert_int_equal(res.count[i], n);
        nonempty += n > 0;
        for (long t = 0; t < n; t++) {
            assert_int_equal(res.nbr[i * res.k + t], items[t]);
            assert_true(res.score[i * res.k + t] == w[t]);
        }
    }
    assert_true(nonempty >= 4);
    assert_int_equal(res.count[6], 0);
    cascade_ease_destroy(m);
    cascade_cf_lists_free(&res);
    cascade_dataset_destroy(ds);
}

static void test_item_cap(void **state)
{
    (void)state;
    cascade_dataset *ds = hand_world();
    struct cascade_ease_lists_opts o;
    struct cascade_cf_lists res;
    char err[256];
    size_t covered = 0;
    /* Users per item: 100:6, 101:5, 102:5, 103:4, 104:4, 105:3. A cap of 3
     * keeps 100, 101, 102 (ties to the lower index). */
    opts(&o, 1.0, 3, 10);
    assert_int_equal(cascade_ease_lists_compute(ds, &o, &res, &covered, err, sizeof err), 0);
    assert_int_equal(covered, 3);
    for (uint32_t i = 3; i < N_ITEMS; i++)
        assert_int_equal(res.count[i], 0);
    for (uint32_t i = 0; i < 3; i++)
        for (uint32_t t = 0; t < res.count[i]; t++)
            assert_true(res.nbr[i * res.k + t] < 3 && res.nbr[i * res.k + t] != i);
    cascade_cf_lists_free(&res);
    cascade_dataset_destroy(ds);
}

static void test_errors(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ease_lists_opts o;
    struct cascade_cf_lists res;
    char err[256] = "";
    cf_test_add_user(ds, "u");
    cf_test_add_item(ds, 1);
    ev(ds, 1, "u", 1, CASCADE_EV_IMPRESSION);
    opts(&o, 250, 100, 10);
    assert_int_equal(cascade_ease_lists_compute(ds, &o, &res, NULL, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "no interactions"));
    o.neighbours = 201;
    assert_int_equal(cascade_ease_lists_compute(ds, &o, &res, NULL, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "neighbours"));
    cascade_dataset_destroy(ds);
}

static void test_config(void **state)
{
    (void)state;
    char err[256];
    struct cascade_ease_lists_opts o;
    cascade_ease_lists_defaults(&o);
    assert_true(o.lambda == 250.0);
    assert_int_equal(o.neighbours, 200);
    cascade_config *c = cascade_config_parse(
        "{\"build\": {\"ease\": {\"lambda\": 80, \"max_items\": 500, \"neighbours\": 20}}}",
        "t.json", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(cascade_cf_config_ease(c, &o, err, sizeof err), 0);
    assert_true(o.lambda == 80.0);
    assert_int_equal(o.max_items, 500);
    assert_int_equal(o.neighbours, 20);
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"build\": {\"ease\": {\"lambda\": 0}}}", "bad.json", err,
                             sizeof err);
    assert_int_equal(cascade_cf_config_ease(c, &o, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "build.ease.lambda"));
    cascade_config_destroy(c);
}

/* `cascade-build ease` end to end: the generation is published and item
 * 100's list is the computed one. */
static void test_ease_command(void **state)
{
    (void)state;
    struct test_redis srv;
    char dir[256], port[32], err[256], key[CASCADE_KEY_MAX];
    assert_int_equal(test_redis_start(&srv), 0);
    assert_non_null(test_tempdir(dir, sizeof dir));
    snprintf(port, sizeof port, "127.0.0.1:%d", srv.port);
    cascade_dataset *ds = hand_world();
    assert_int_equal(cascade_dataset_write(ds, dir, err, sizeof err), 0);
    const char *argv[] = {"cascade-build", "ease", "--data",   dir, "--redis",      port,
                          "--namespace",   "cli",  "--lambda", "2", "--neighbours", "4",
                          "--quiet"};
    assert_int_equal(cascade_build_main(13, (char **)argv), CASCADE_BUILD_EXIT_OK);

    struct cascade_redis_opts ro = {.host = "127.0.0.1", .port = srv.port};
    cascade_redis *r = cascade_redis_create(&ro);
    int64_t gen = 0;
    assert_int_equal(cascade_store_get_generation(r, "cli", "ease", &gen), 0);
    assert_int_equal(gen, 1);
    struct cascade_ease_lists_opts o;
    struct cascade_cf_lists res;
    opts(&o, 2.0, 12000, 4);
    assert_int_equal(cascade_ease_lists_compute(ds, &o, &res, NULL, err, sizeof err), 0);
    redisReply *rep = NULL;
    static cascade_v1_NeighbourList list;
    assert_int_equal(cascade_redis_command(r, &rep, "GET %s",
                                           cascade_key_artefact(key, "cli", "ease", 1, "100")),
                     0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_int_equal(cascade_record_decode(cascade_v1_NeighbourList_fields, &list,
                                           (const uint8_t *)rep->str, rep->len),
                     0);
    freeReplyObject(rep);
    assert_true(res.count[0] > 0);
    assert_int_equal(list.neighbours_count, res.count[0]);
    for (uint32_t t = 0; t < res.count[0]; t++) {
        assert_int_equal(list.neighbours[t].item_id, ds->items[res.nbr[t]].id);
        assert_true(list.neighbours[t].score == res.score[t]);
    }
    /* Item 106 (never interacted with) has no key. */
    assert_int_equal(cascade_redis_command(r, &rep, "EXISTS %s",
                                           cascade_key_artefact(key, "cli", "ease", 1, "106")),
                     0);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    cascade_cf_lists_free(&res);

    /* A bad lambda is a usage error. */
    argv[9] = "-1";
    assert_int_equal(cascade_build_main(13, (char **)argv), CASCADE_BUILD_EXIT_USAGE);
    cascade_redis_destroy(r);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
    test_redis_stop(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_are_the_binary_models_neighbours),
        cmocka_unit_test(test_item_cap),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_ease_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
