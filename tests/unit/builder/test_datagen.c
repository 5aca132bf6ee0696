/* Unit tests for the synthetic world generator: seeded determinism, skewed
 * popularity, clicks that depend on affinity, and a well-formed event log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datagen.h"
#include "error.h"
#include "support.h"

#define END_TS 1764547200 /* fixed so that reruns are byte-identical */

static void small_world(struct cascade_datagen_opts *o, uint64_t seed)
{
    cascade_datagen_defaults(o);
    o->users = 2000;
    o->items = 400;
    o->events = 30000;
    o->categories = 12;
    o->authors = 40;
    o->cities = 5;
    o->days = 10;
    o->seed = seed;
    o->end_ts = END_TS;
    o->quiet = true;
}

/* Whole file into memory (caller frees); *len gets its size. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bool same_file(const char *a, const char *b, const char *name)
{
    size_t la, lb;
    char *x = slurp(a, name, &la), *y = slurp(b, name, &lb);
    bool same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static void test_same_seed_same_files(void **state)
{
    (void)state;
    char d1[256], d2[256], d3[256], err[256];
    struct cascade_datagen_opts o;
    struct cascade_datagen_summary s1, s2;
    assert_non_null(test_tempdir(d1, sizeof(d1)));
    assert_non_null(test_tempdir(d2, sizeof(d2)));
    assert_non_null(test_tempdir(d3, sizeof(d3)));
    small_world(&o, 42);
    assert_int_equal(cascade_datagen_run(&o, d1, &s1, err, sizeof(err)), 0);
    assert_int_equal(cascade_datagen_run(&o, d2, &s2, err, sizeof(err)), 0);
    const char *files[] = {"users.tsv", "items.tsv", "events.tsv", "truth.tsv"};
    for (size_t i = 0; i < 4; i++)
        assert_true(same_file(d1, d2, files[i]));
    assert_int_equal(s1.events, s2.events);
    o.seed = 43;
    assert_int_equal(cascade_datagen_run(&o, d3, NULL, err, sizeof(err)), 0);
    assert_false(same_file(d1, d3, "events.tsv"));
    assert_false(same_file(d1, d3, "items.tsv"));

    /* What was written reads back as the same world. */
    cascade_dataset *ds = NULL;
    assert_int_equal(cascade_dataset_read(d1, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_users, 2000);
    assert_int_equal(ds->n_items, 400);
    assert_int_equal(ds->n_events, s1.events);
    assert_int_equal(ds->implicit_users, 0);
    assert_int_equal(ds->unknown_item_events, 0);
    cascade_dataset_destroy(ds);
    test_rmdir(d1);
    test_rmdir(d2);
    test_rmdir(d3);
}

static void test_popularity_is_skewed(void **state)
{
    (void)state;
    struct cascade_datagen_opts o;
    cascade_dataset *ds = NULL;
    char err[256];
    small_world(&o, 7);
    assert_int_equal(cascade_datagen_generate(&o, &ds, NULL, NULL, err, sizeof(err)), 0);
    size_t *count = calloc(ds->n_items, sizeof(size_t)), total = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        if (ds->events[i].type == CASCADE_EV_IMPRESSION) {
            count[ds->events[i].item]++;
            total++;
        }
    /* Sort counts descending (small n: insertion sort). */
    for (size_t i = 1; i < ds->n_items; i++)
        for (size_t j = i; j > 0 && count[j] > count[j - 1]; j--) {
            size_t t = count[j];
            count[j] = count[j - 1];
            count[j - 1] = t;
        }
    size_t top = 0;
    for (size_t i = 0; i < ds->n_items / 10; i++)
        top += count[i];
    assert_true(total > 25000);
    assert_true((double)top / (double)total > 0.4);
    free(count);
    cascade_dataset_destroy(ds);
}

static bool declared(const struct cascade_ds_user *u, uint32_t category)
{
    for (uint32_t i = 0; i < u->n_interests; i++)
        if (u->interests[i] == category)
            return true;
    return false;
}

static void test_clicks_depend_on_affinity(void **state)
{
    (void)state;
    struct cascade_datagen_opts o;
    struct cascade_datagen_summary sum;
    cascade_dataset *ds = NULL;
    float *p = NULL;
    char err[256];
    small_world(&o, 11);
    assert_int_equal(cascade_datagen_generate(&o, &ds, &p, &sum, err, sizeof(err)), 0);
    /* Clicks are attributed to the impression of the same pair just before. */
    double imp_in = 0, clk_in = 0, imp_out = 0, clk_out = 0, p_in = 0, p_out = 0;
    long *last_imp = malloc(sizeof(long) * ds->n_users * ds->n_items);
    for (size_t i = 0; i < ds->n_users * ds->n_items; i++)
        last_imp[i] = -1;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        const struct cascade_ds_user *u = &ds->users[e->user];
        bool in = declared(u, ds->items[e->item].category);
        size_t pair = (size_t)e->user * ds->n_items + e->item;
        if (e->type == CASCADE_EV_IMPRESSION) {
            last_imp[pair] = (long)i;
            assert_true(p[i] > 0 && p[i] < 1);
            if (in) {
                imp_in++;
                p_in += p[i];
            } else if (u->n_interests) {
                imp_out++;
                p_out += p[i];
            }
        } else {
            /* Every label follows an impression of the same user and item. */
            assert_true(last_imp[pair] >= 0);
            assert_true(ds->events[last_imp[pair]].ts <= e->ts);
            if (e->type == CASCADE_EV_CLICK && in)
                clk_in++;
            else if (e->type == CASCADE_EV_CLICK && u->n_interests)
                clk_out++;
        }
        if (i > 0)
            assert_true(ds->events[i - 1].ts <= e->ts);
        if (e->type == CASCADE_EV_PLAY) {
            assert_int_equal(ds->items[e->item].media_type, 2);
            assert_true(e->value > 0 && e->value <= ds->items[e->item].duration_s + 0.5f);
        }
    }
    assert_true(imp_in > 1000 && imp_out > 1000);
    /* Observed CTR and true p_click are both clearly higher inside a user's
     * declared interests than outside them. */
    assert_true(clk_in / imp_in > 1.5 * (clk_out / imp_out));
    assert_true(p_in / imp_in > 1.5 * (p_out / imp_out));
    assert_true(sum.ctr > 0.02 && sum.ctr < 0.5);
    assert_true(sum.by_type[CASCADE_EV_LIKE] > 0 && sum.by_type[CASCADE_EV_PLAY] > 0);
    free(last_imp);
    free(p);
    cascade_dataset_destroy(ds);
}

/* The logit's terms add up to each impression's p_click, the same world is
 * drawn with or without them, and truth.tsv carries them as columns. */
static void test_truth_terms(void **state)
{
    (void)state;
    struct cascade_datagen_opts o;
    cascade_dataset *ds = NULL, *plain = NULL;
    float *p = NULL, *p_plain = NULL, *terms = NULL;
    char err[256], dir[256], path[300], line[512];
    small_world(&o, 3);
    assert_int_equal(cascade_datagen_generate_terms(&o, &ds, &p, &terms, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(cascade_datagen_generate(&o, &plain, &p_plain, NULL, err, sizeof(err)), 0);
    assert_int_equal(ds->n_events, plain->n_events);
    size_t favourites = 0, same_city = 0;
    for (size_t i = 0; i < ds->n_events; i++) {
        const float *t = terms + i * CASCADE_DATAGEN_TERMS;
        assert_true(p[i] == p_plain[i]);
        if (ds->events[i].type != CASCADE_EV_IMPRESSION) {
            for (int k = 0; k < CASCADE_DATAGEN_TERMS; k++)
                assert_true(t[k] == 0.0f);
            continue;
        }
        double z = CASCADE_DATAGEN_INTERCEPT;
        for (int k = 0; k < CASCADE_DATAGEN_TERMS; k++)
            z += t[k];
        assert_true(fabs(1.0 / (1.0 + exp(-z)) - p[i]) < 1e-5);
        favourites += t[5] == 0.9f;
        same_city += t[4] == 0.3f;
        assert_true((t[4] == 0.3f) ==
                    (ds->users[ds->events[i].user].city == ds->items[ds->events[i].item].city));
    }
    assert_true(favourites > 0 && same_city > 0);

    assert_non_null(test_tempdir(dir, sizeof(dir)));
    o.truth_terms = true;
    assert_int_equal(cascade_datagen_run(&o, dir, NULL, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/truth.tsv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "ts\tuser_id\titem_id\tp_click\ttheta\tquality\tuser_bias\t"
                              "freshness\tsame_city\tcircle_favourite\n");
    assert_non_null(fgets(line, sizeof(line), f));
    size_t tabs = 0;
    for (const char *c = line; *c; c++)
        tabs += *c == '\t';
    assert_int_equal(tabs, 9);
    fclose(f);
    test_rmdir(dir);
    free(p);
    free(p_plain);
    free(terms);
    cascade_dataset_destroy(ds);
    cascade_dataset_destroy(plain);
}

static void test_world_attributes(void **state)
{
    (void)state;
    struct cascade_datagen_opts o;
    cascade_dataset *ds = NULL;
    char err[256];
    small_world(&o, 5);
    assert_int_equal(cascade_datagen_generate(&o, &ds, NULL, NULL, err, sizeof(err)), 0);
    size_t videos = 0, with_interests = 0;
    for (size_t i = 0; i < ds->n_items; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        assert_true(it->category >= 1 && it->category <= o.categories);
        assert_true(it->author_id >= 1 && it->author_id <= o.authors);
        assert_true(it->city >= 1 && it->city <= o.cities);
        assert_true(it->n_tags >= 1);
        assert_int_equal(strlen(it->geohash), 7);
        assert_true(it->created_at < END_TS);
        if (it->media_type == 2) {
            videos++;
            assert_true(it->duration_s >= 5 && it->duration_s <= 900);
        } else {
            assert_true(it->duration_s == 0);
        }
    }
    for (size_t u = 0; u < ds->n_users; u++) {
        assert_true(ds->users[u].city >= 1 && ds->users[u].city <= o.cities);
        assert_true(ds->users[u].age >= 18 && ds->users[u].age <= 70);
        with_interests += ds->users[u].n_interests > 0;
    }
    assert_true(videos > ds->n_items / 4 && videos < ds->n_items * 3 / 4);
    assert_true(with_interests > ds->n_users / 2);
    cascade_dataset_destroy(ds);

    /* Nonsense sizes are refused with a message. */
    o.items = 0;
    assert_int_equal(cascade_datagen_generate(&o, &ds, NULL, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "positive"));
}

static void test_geohash_known_value(void **state)
{
    (void)state;
    char gh[13];
    /* The classic example from the geohash literature. */
    cascade_geohash_encode(57.64911, 10.40744, 11, gh);
    assert_string_equal(gh, "u4pruydqqvj");
    cascade_geohash_encode(39.9042, 116.4074, 5, gh);
    assert_string_equal(gh, "wx4g0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_files),
        cmocka_unit_test(test_popularity_is_skewed),
        cmocka_unit_test(test_clicks_depend_on_affinity),
        cmocka_unit_test(test_truth_terms),
        cmocka_unit_test(test_world_attributes),
        cmocka_unit_test(test_geohash_known_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
