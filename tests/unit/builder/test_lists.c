/* Unit tests for the lists job (hot, new, geo, city) against a private
 * redis-server: decayed hot scores on a hand example, demographic buckets and
 * lists, the new-window cut-off and impression counts, geo cell assignment
 * and caps, city lists, generation replacement (including the clean-up of a
 * half-written generation), config overrides, and the cascade-build command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "build_cli.h"
#include "config.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "lists.h"
#include "store.h"
#include "support.h"
#include "timescale.h"

#define NS "t"
#define DAY 86400
#define NOW (100 * DAY) /* the data's "now" in these worlds */

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

static void add_user(cascade_dataset *ds, const char *id, uint32_t age, uint32_t gender)
{
    struct cascade_ds_user u = {.age = age, .gender = gender};
    snprintf(u.id, sizeof(u.id), "%s", id);
    assert_int_equal(cascade_dataset_add_user(ds, &u, NULL), 0);
}

static void add_item(cascade_dataset *ds, uint64_t id, int64_t created_at, const char *geohash,
                     uint32_t city)
{
    struct cascade_ds_item it = {.id = id, .created_at = created_at, .city = city};
    snprintf(it.geohash, sizeof(it.geohash), "%s", geohash);
    assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
}

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

static void run_lists(cascade_redis *r, const cascade_dataset *ds, struct cascade_lists_opts *o,
                      struct cascade_lists_summary *s)
{
    char err[512] = "";
    o->ns = NS;
    o->quiet = true;
    o->pipeline = 3; /* several round trips even for tiny worlds */
    int rc = cascade_lists_run(ds, r, o, s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "lists: %s\n", err);
    assert_int_equal(rc, 0);
}

/* ZREVRANGE of an artefact key of the current generation of family. */
static size_t top(cascade_redis *r, const char *family, const char *suffix, uint64_t *ids,
                  double *scores, size_t max)
{
    char key[CASCADE_KEY_MAX];
    int64_t gen;
    size_t n = 0;
    assert_int_equal(cascade_store_get_generation(r, NS, family, &gen), 0);
    assert_true(gen > 0);
    cascade_key_artefact(key, NS, family, gen, suffix);
    assert_int_equal(cascade_store_top_items(r, key, max, ids, scores, &n), 0);
    return n;
}

static long long exists(cascade_redis *r, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "EXISTS %s", key), 0);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* Hot, half-life one day:
 *   item 1: click 1 day before now (1·½) + like 2 days before (2·¼) = 1
 *   item 2: collect now = 3
 *   item 3: impressions only -> not hot
 *   item 4: click after as_of -> not counted */
static cascade_dataset *hot_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    add_user(ds, "a", 20, 1); /* bucket 2 (18-24), female */
    add_user(ds, "b", 40, 2); /* bucket 4 (35-44), male */
    add_user(ds, "c", 0, 0);  /* unknown */
    for (uint64_t i = 1; i <= 4; i++)
        add_item(ds, i, DAY, "", 0);
    ev(ds, NOW - 2 * DAY, "a", 1, CASCADE_EV_LIKE);
    ev(ds, NOW - DAY, "a", 1, CASCADE_EV_CLICK);
    ev(ds, NOW - DAY, "c", 3, CASCADE_EV_IMPRESSION);
    ev(ds, NOW, "b", 2, CASCADE_EV_COLLECT);
    ev(ds, NOW, "b", 3, CASCADE_EV_IMPRESSION);
    ev(ds, NOW + 10, "c", 4, CASCADE_EV_CLICK);
    return ds;
}

static void test_hot_decay(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hot_world();
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8];

    /* The scores themselves. */
    double hot[4];
    struct cascade_behaviour_weights w;
    cascade_behaviour_weights_default(&w);
    cascade_hot_scores(ds, &w, NOW, DAY, hot);
    assert_true(hot[0] == 1.0 && hot[1] == 3.0 && hot[2] == 0.0 && hot[3] == 0.0);

    cascade_lists_defaults(&o);
    assert_true(o.hot_half_life_days == CASCADE_TIMESCALE_AUTO); /* derived unless set */
    o.families = CASCADE_LISTS_HOT;
    o.hot_half_life_days = 1;
    o.as_of = NOW;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.as_of, NOW);
    assert_true(s.hot_half_life_days == 1); /* the explicit setting wins */
    assert_int_equal(s.hot, 2);
    assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 2);
    assert_int_equal(ids[0], 2);
    assert_true(scores[0] == 3.0);
    assert_int_equal(ids[1], 1);
    assert_true(fabs(scores[1] - 1.0) < 1e-12);

    /* Only the top N are kept. */
    o.hot_size = 1;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 1);
    assert_int_equal(ids[0], 2);

    /* as_of defaults to the last event: item 4's click counts (undecayed), item 1's less. */
    cascade_lists_defaults(&o);
    o.families = CASCADE_LISTS_HOT;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.as_of, NOW + 10);
    assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 3);
    cascade_dataset_destroy(ds);
}

static void test_demographic_hot(void **state)
{
    struct test_redis_fixture *f = *state;
    const uint32_t ages[] = {0, 1, 17, 18, 24, 25, 34, 35, 44, 45, 54, 55, 200};
    const int buckets[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6};
    for (size_t i = 0; i < sizeof(ages) / sizeof(ages[0]); i++)
        assert_int_equal(cascade_age_bucket(ages[i]), buckets[i]);

    cascade_dataset *ds = hot_world();
    ev(ds, NOW, "b", 3, CASCADE_EV_CLICK); /* b: item 2 (collect 3) and item 3 (click 1) */
    ev(ds, NOW, "c", 3, CASCADE_EV_CLICK);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8];
    cascade_lists_defaults(&o);
    o.families = CASCADE_LISTS_HOT;
    o.as_of = NOW;
    o.hot_half_life_days = 1;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.demo_lists, 3);
    assert_int_equal(top(f->conn, "hot", "demo:2:1", ids, scores, 8), 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(top(f->conn, "hot", "demo:4:2", ids, scores, 8), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_true(scores[0] == 3.0 && scores[1] == 1.0);
    assert_int_equal(top(f->conn, "hot", "demo:0:0", ids, scores, 8), 1);
    assert_int_equal(ids[0], 3);
    assert_int_equal(top(f->conn, "hot", "demo:3:1", ids, scores, 8), 0); /* nobody there */
    /* The global list sums every cell. */
    assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 3);
    assert_int_equal(ids[0], 2);
    assert_true(scores[1] == 2.0 && ids[1] == 3);

    /* demo_size caps each cell; 0 turns the demographic lists off. */
    o.hot_demo_size = 1;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(top(f->conn, "hot", "demo:4:2", ids, scores, 8), 1);
    assert_int_equal(ids[0], 2);
    o.hot_demo_size = 0;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.demo_lists, 0);
    assert_int_equal(top(f->conn, "hot", "demo:4:2", ids, scores, 8), 0);
    cascade_dataset_destroy(ds);
}

/* Category hot lists: the global hot order restricted to each category,
 * capped per category; items without a category (0) get no list. */
static void test_category_hot(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    add_user(ds, "a", 20, 1);
    const uint32_t category[] = {7, 7, 9, 7, 0};
    for (uint64_t i = 1; i <= 5; i++) {
        struct cascade_ds_item it = {.id = i, .created_at = DAY, .category = category[i - 1]};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    /* hot (no decay): item 1 = 1, item 2 = 3, item 3 = 2, item 4 = 4, item 5 = 5 */
    ev(ds, NOW, "a", 1, CASCADE_EV_CLICK);
    ev(ds, NOW, "a", 2, CASCADE_EV_COLLECT);
    ev(ds, NOW, "a", 3, CASCADE_EV_LIKE);
    ev(ds, NOW, "a", 4, CASCADE_EV_FOLLOW);
    ev(ds, NOW, "a", 5, CASCADE_EV_FOLLOW);
    ev(ds, NOW, "a", 5, CASCADE_EV_CLICK);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8];
    cascade_lists_defaults(&o);
    o.families = CASCADE_LISTS_HOT;
    o.as_of = NOW;
    o.hot_half_life_days = 0;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.category_lists, 2);
    assert_int_equal(top(f->conn, "hot", "cat:7", ids, scores, 8), 3);
    assert_true(ids[0] == 4 && ids[1] == 2 && ids[2] == 1);
    assert_true(scores[0] == 4.0 && scores[1] == 3.0 && scores[2] == 1.0);
    assert_int_equal(top(f->conn, "hot", "cat:9", ids, scores, 8), 1);
    assert_int_equal(ids[0], 3);
    assert_int_equal(top(f->conn, "hot", "cat:0", ids, scores, 8), 0);
    o.hot_category_size = 2;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(top(f->conn, "hot", "cat:7", ids, scores, 8), 2);
    assert_true(ids[0] == 4 && ids[1] == 2);
    o.hot_category_size = 0;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.category_lists, 0);
    assert_int_equal(top(f->conn, "hot", "cat:7", ids, scores, 8), 0);
    cascade_dataset_destroy(ds);
}

static void test_new_window(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = cascade_dataset_create();
    add_user(ds, "a", 0, 0);
    add_item(ds, 1, NOW - 7 * DAY, "", 0);     /* on the window's edge: in */
    add_item(ds, 2, NOW - 7 * DAY - 1, "", 0); /* one second older: out */
    add_item(ds, 3, NOW - DAY, "", 0);         /* in */
    add_item(ds, 4, NOW + 60, "", 0);          /* created after as_of: out */
    add_item(ds, 5, 0, "", 0);                 /* unknown creation time: out */
    ev(ds, NOW - 100, "a", 3, CASCADE_EV_IMPRESSION);
    ev(ds, NOW - 90, "a", 3, CASCADE_EV_IMPRESSION);
    ev(ds, NOW - 80, "a", 3, CASCADE_EV_IMPRESSION);
    ev(ds, NOW - 70, "a", 1, CASCADE_EV_IMPRESSION);
    ev(ds, NOW + 100, "a", 1, CASCADE_EV_IMPRESSION); /* after as_of: not counted */
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8];
    cascade_lists_defaults(&o);
    assert_true(o.new_window_days == CASCADE_TIMESCALE_AUTO);
    o.new_window_days = 7;
    o.families = CASCADE_LISTS_NEW;
    o.as_of = NOW;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.new_items, 2);
    assert_int_equal(top(f->conn, "new", NULL, ids, scores, 8), 2);
    assert_int_equal(ids[0], 3);
    assert_true(scores[0] == NOW - DAY);
    assert_int_equal(ids[1], 1);
    assert_true(scores[1] == NOW - 7 * DAY);
    assert_int_equal(top(f->conn, "new", "impressions", ids, scores, 8), 2);
    assert_int_equal(ids[0], 3);
    assert_true(scores[0] == 3);
    assert_int_equal(ids[1], 1);
    assert_true(scores[1] == 1);

    /* A one-day window keeps only item 3. */
    o.new_window_days = 1;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(top(f->conn, "new", NULL, ids, scores, 8), 1);
    assert_int_equal(ids[0], 3);

    /* Unset, the window follows the log: these events span 200 s, so the
     * window is the one-hour floor and even item 3 (a day old) is out. */
    o.new_window_days = CASCADE_TIMESCALE_AUTO;
    run_lists(f->conn, ds, &o, &s);
    assert_true(s.new_window_days == CASCADE_TIMESCALE_MIN_DAYS);
    assert_int_equal(s.new_items, 0);
    /* A log of 40 days (one old event) makes it 40 × share days, more than 7:
     * items 1, 2 and 3 are new again. */
    ev(ds, NOW - 40 * DAY, "a", 5, CASCADE_EV_IMPRESSION);
    run_lists(f->conn, ds, &o, &s);
    assert_true(fabs(s.span_days - (40.0 * DAY + 100) / DAY) < 1e-9);
    assert_true(fabs(s.new_window_days - CASCADE_TIMESCALE_NEW_SHARE * s.span_days) < 1e-9);
    assert_true(s.new_window_days > 7 + 1.0 / DAY);
    assert_int_equal(s.new_items, 3);
    cascade_dataset_destroy(ds);
}

/* The hot half-life, unset, is a share of the log's span: a log of 2 days
 * decays with share × 2 days, a log of 200 days with share × 200 days; the
 * list's scores are the decayed counts with that half-life. */
static void test_hot_half_life_follows_span(void **state)
{
    struct test_redis_fixture *f = *state;
    struct cascade_behaviour_weights w;
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8], hot[8];
    cascade_behaviour_weights_default(&w);
    const double spans[] = {2, 200};
    for (size_t k = 0; k < 2; k++) {
        cascade_dataset *ds = cascade_dataset_create();
        add_user(ds, "a", 0, 0);
        add_item(ds, 1, DAY, "", 0);
        add_item(ds, 2, DAY, "", 0);
        ev(ds, NOW - (int64_t)(spans[k] * DAY), "a", 1, CASCADE_EV_CLICK);
        ev(ds, NOW - (int64_t)(spans[k] * DAY / 2), "a", 1, CASCADE_EV_CLICK);
        ev(ds, NOW, "a", 2, CASCADE_EV_CLICK);
        assert_int_equal(cascade_dataset_sort_events(ds), 0);
        cascade_lists_defaults(&o);
        o.families = CASCADE_LISTS_HOT;
        run_lists(f->conn, ds, &o, &s);
        assert_true(fabs(s.span_days - spans[k]) < 1e-9);
        double want = CASCADE_TIMESCALE_HOT_SHARE * spans[k];
        assert_true(fabs(s.hot_half_life_days - want) < 1e-9);
        cascade_hot_scores(ds, &w, NOW, want * DAY, hot);
        assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 2);
        for (size_t i = 0; i < 2; i++)
            assert_true(fabs(scores[i] - hot[ids[i] - 1]) < 1e-9);
        /* The same decay relative to the span: the old item keeps the same
         * share of the new one's score whatever the log's length. */
        assert_true(fabs(hot[0] - (exp2(-1.0 / CASCADE_TIMESCALE_HOT_SHARE) +
                                   exp2(-0.5 / CASCADE_TIMESCALE_HOT_SHARE))) < 1e-9);
        /* An explicit half-life (here: no decay) overrides the derived one. */
        o.hot_half_life_days = 0;
        run_lists(f->conn, ds, &o, &s);
        assert_true(s.hot_half_life_days == 0);
        assert_int_equal(top(f->conn, "hot", NULL, ids, scores, 8), 2);
        assert_int_equal(ids[0], 1);
        assert_true(scores[0] == 2.0);
        cascade_dataset_destroy(ds);
    }
}

static void test_geo_and_city(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = cascade_dataset_create();
    add_user(ds, "a", 0, 0);
    add_item(ds, 1, NOW - 30, "wx4g0bc", 2);
    add_item(ds, 2, NOW - 10, "wx4g0zz", 2);
    add_item(ds, 3, NOW - 20, "wx4g0", 2);
    add_item(ds, 4, NOW - 40, "wx4g1aa", 3);
    add_item(ds, 5, NOW - 5, "wx4", 3);    /* shorter than the precision: no cell */
    add_item(ds, 6, NOW - 5, "", 0);       /* no location at all */
    add_item(ds, 7, NOW + 5, "wx4g0b", 2); /* not published yet */
    ev(ds, NOW, "a", 1, CASCADE_EV_IMPRESSION);
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    double scores[8];
    char key[CASCADE_KEY_MAX];
    cascade_lists_defaults(&o);
    assert_int_equal(o.geo_precision, 5);
    o.families = CASCADE_LISTS_GEO | CASCADE_LISTS_CITY;
    o.geo_cap = 2;
    o.city_cap = 2;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.geo_cells, 2);
    assert_int_equal(s.geo_items, 3); /* wx4g0 capped at 2 of 3, wx4g1 1 */
    assert_int_equal(s.geo_skipped, 2);
    assert_int_equal(top(f->conn, "geo", "wx4g0", ids, scores, 8), 2);
    assert_int_equal(ids[0], 2); /* newest first */
    assert_int_equal(ids[1], 3);
    assert_true(scores[0] == NOW - 10);
    assert_int_equal(top(f->conn, "geo", "wx4g1", ids, scores, 8), 1);
    assert_int_equal(ids[0], 4);
    /* Cities: 0 is unknown and gets no list. */
    assert_int_equal(s.cities, 2);
    assert_int_equal(top(f->conn, "city", "2", ids, scores, 8), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(top(f->conn, "city", "3", ids, scores, 8), 2);
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 4);
    assert_int_equal(top(f->conn, "city", "0", ids, scores, 8), 0);
    /* The precision is recorded for serving. */
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(f->conn, &rep, "HGET %s geo_precision", cascade_key_meta(key, NS)),
        0);
    assert_string_equal(rep->str, "5");
    freeReplyObject(rep);

    /* Precision 3: one cell holds every located item, "wx4" included. */
    o.geo_precision = 3;
    o.geo_cap = 10;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.geo_cells, 1);
    assert_int_equal(top(f->conn, "geo", "wx4", ids, scores, 8), 5);
    assert_int_equal(ids[0], 5);
    cascade_dataset_destroy(ds);
}

static void test_generations_replace(void **state)
{
    struct test_redis_fixture *f = *state;
    cascade_dataset *ds = hot_world();
    struct cascade_lists_opts o;
    struct cascade_lists_summary s;
    uint64_t ids[8];
    char key[CASCADE_KEY_MAX];
    int64_t gen;
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "FLUSHALL"), 0);
    freeReplyObject(rep);
    cascade_lists_defaults(&o);
    o.as_of = NOW;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.gen_hot, 1);
    assert_int_equal(s.gen_new, 1);
    assert_int_equal(s.gen_geo, 1);
    assert_int_equal(s.gen_city, 1);
    assert_int_equal(exists(f->conn, NS ":hot@1"), 1);
    assert_int_equal(exists(f->conn, NS ":hot@1:demo:2:1"), 1);

    /* A second build of different data becomes current; the first stays
     * readable for a moment (readers may hold it). */
    cascade_dataset *ds2 = cascade_dataset_create();
    add_user(ds2, "z", 30, 2);
    add_item(ds2, 9, DAY, "", 0);
    ev(ds2, NOW, "z", 9, CASCADE_EV_CLICK);
    run_lists(f->conn, ds2, &o, &s);
    assert_int_equal(cascade_store_get_generation(f->conn, NS, "hot", &gen), 0);
    assert_int_equal(gen, 2);
    assert_int_equal(top(f->conn, "hot", NULL, ids, NULL, 8), 1);
    assert_int_equal(ids[0], 9);
    assert_int_equal(exists(f->conn, NS ":hot@1"), 1);

    /* The third build deletes the first generation, every key of it. */
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.gen_hot, 3);
    assert_int_equal(exists(f->conn, NS ":hot@1"), 0);
    assert_int_equal(exists(f->conn, NS ":hot@1:demo:2:1"), 0);
    assert_int_equal(top(f->conn, "hot", NULL, ids, NULL, 8), 2);

    /* A build that died half-way through generation 4 left keys behind (and
     * its marker): the next build clears them before writing generation 4. */
    assert_int_equal(cascade_redis_command(f->conn, &rep, "MSET %s 4 %s x",
                                           cascade_key_building(key, NS, "hot"),
                                           NS ":hot@4:demo:9:9"),
                     0);
    freeReplyObject(rep);
    o.families = CASCADE_LISTS_HOT;
    run_lists(f->conn, ds, &o, &s);
    assert_int_equal(s.gen_hot, 4);
    assert_int_equal(exists(f->conn, NS ":hot@4:demo:9:9"), 0);
    assert_int_equal(exists(f->conn, key), 0); /* the marker is gone once published */
    assert_int_equal(exists(f->conn, NS ":hot@4:demo:2:1"), 1);
    cascade_dataset_destroy(ds);
    cascade_dataset_destroy(ds2);
}

static void test_config(void **state)
{
    (void)state;
    char err[512];
    struct cascade_lists_opts o;
    cascade_lists_defaults(&o);
    cascade_config *c = cascade_config_parse(
        "{\"build\": {\"hot\": {\"half_life_days\": 5, \"size\": 10, \"demo_size\": 0},\n"
        "\"new\": {\"window_days\": 2.5}, \"geo\": {\"precision\": 6, \"cap\": 7},\n"
        "\"city\": {\"cap\": 8}}}",
        "build.json", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(cascade_lists_config(c, &o, err, sizeof(err)), 0);
    assert_true(o.hot_half_life_days == 5);
    assert_int_equal(o.hot_size, 10);
    assert_int_equal(o.hot_demo_size, 0);
    assert_true(o.new_window_days == 2.5);
    assert_int_equal(o.geo_precision, 6);
    assert_int_equal(o.geo_cap, 7);
    assert_int_equal(o.city_cap, 8);
    cascade_config_destroy(c);

    c = cascade_config_parse("{\"build\": {\"geo\": {\"precision\": 13}}}", "bad.json", err,
                             sizeof(err));
    assert_non_null(c);
    assert_int_equal(cascade_lists_config(c, &o, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "build.geo.precision"));
    cascade_config_destroy(c);
}

static void test_lists_command(void **state)
{
    struct test_redis_fixture *f = *state;
    char dir[256], data[300], cfg[300], port[16], err[256];
    struct cascade_datagen_opts g;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(cfg, sizeof(cfg), "%s/build.json", dir);
    snprintf(port, sizeof(port), "127.0.0.1:%d", f->server.port);
    cascade_datagen_defaults(&g);
    g.users = 400;
    g.items = 150;
    g.events = 8000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_run(&g, data, NULL, err, sizeof(err)), 0);
    FILE *fc = fopen(cfg, "w");
    assert_non_null(fc);
    fputs("{\"build\": {\"hot\": {\"size\": 5}, \"geo\": {\"precision\": 6}}}\n", fc);
    fclose(fc);
    /* The config sets hot size 5 and precision 6; the flag overrides the precision. */
    const char *argv[] = {"cascade-build", "lists", "--data",   data, "--redis",         port,
                          "--namespace",   "cli",   "--config", cfg,  "--geo-precision", "4",
                          "--quiet"};
    assert_int_equal(cascade_build_main(13, (char **)argv), CASCADE_BUILD_EXIT_OK);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->conn, &rep, "HGET cli:meta geo_precision"), 0);
    assert_string_equal(rep->str, "4");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ZCARD cli:hot@1"), 0);
    assert_int_equal(rep->integer, 5);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "KEYS cli:geo@1:*"), 0);
    assert_true(rep->elements > 0);
    for (size_t i = 0; i < rep->elements; i++)
        assert_int_equal(strlen(rep->element[i]->str), strlen("cli:geo@1:") + 4);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->conn, &rep, "ZCARD cli:new@1"), 0);
    assert_true(rep->integer > 0);
    freeReplyObject(rep);

    /* A bad config value is a usage error naming the path. */
    fc = fopen(cfg, "w");
    fputs("{\"build\": {\"hot\": {\"size\": \"many\"}}}\n", fc);
    fclose(fc);
    assert_int_equal(cascade_build_main(13, (char **)argv), CASCADE_BUILD_EXIT_USAGE);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_decay),    cmocka_unit_test(test_demographic_hot),
        cmocka_unit_test(test_new_window),   cmocka_unit_test(test_hot_half_life_follows_span),
        cmocka_unit_test(test_geo_and_city), cmocka_unit_test(test_generations_replace),
        cmocka_unit_test(test_config),       cmocka_unit_test(test_lists_command),
        cmocka_unit_test(test_category_hot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
