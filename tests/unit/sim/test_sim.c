/* Unit tests of cascade-sim's pieces that need no stack: the world's ground
 * truth regenerated without the log gives every impression of a generated
 * log the click probability the generator drew it with (so the simulated
 * users are the users the stack was trained on), and the flags. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "datagen.h"
#include "sim.h"

static void small_world(struct cascade_datagen_opts *o, uint64_t seed)
{
    cascade_datagen_defaults(o);
    o->users = 120;
    o->items = 90;
    o->events = 3000;
    o->categories = 6;
    o->authors = 15;
    o->cities = 4;
    o->days = 10;
    o->seed = seed;
    o->end_ts = 1796601600;
    o->quiet = true;
}

static void test_truth_matches_generated_log(void **state)
{
    (void)state;
    struct cascade_datagen_opts o;
    char err[256];
    cascade_dataset *ds = NULL;
    float *p = NULL;
    small_world(&o, 7);
    assert_int_equal(cascade_datagen_generate(&o, &ds, &p, NULL, err, sizeof err), 0);
    o.events = 1; /* the log's size must not matter */
    cascade_datagen_truth *t = cascade_datagen_truth_create(&o, err, sizeof err);
    assert_non_null(t);
    const cascade_dataset *w = cascade_datagen_truth_dataset(t);
    assert_int_equal(w->n_users, ds->n_users);
    assert_int_equal(w->n_items, ds->n_items);
    size_t checked = 0;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (e->type != CASCADE_EV_IMPRESSION)
            continue;
        /* Look the ids up in the truth's own tables: same ids, same rows. */
        long u = cascade_dataset_find_user(w, ds->users[e->user].id);
        long it = cascade_dataset_find_item(w, ds->items[e->item].id);
        assert_true(u >= 0 && it >= 0);
        double q = cascade_datagen_truth_p_click(t, (size_t)u, (size_t)it, e->ts);
        if (fabs(q - (double)p[i]) > 1e-6)
            fail_msg("impression %zu: truth %.7f, generator %.7f", i, q, (double)p[i]);
        checked++;
    }
    assert_true(checked > 1000);
    cascade_datagen_truth_destroy(t);
    /* Another seed is another world: the probabilities differ somewhere. */
    small_world(&o, 8);
    t = cascade_datagen_truth_create(&o, err, sizeof err);
    assert_non_null(t);
    size_t differ = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        if (ds->events[i].type == CASCADE_EV_IMPRESSION &&
            fabs(cascade_datagen_truth_p_click(t, ds->events[i].user, ds->events[i].item,
                                               ds->events[i].ts) -
                 (double)p[i]) > 1e-4)
            differ++;
    assert_true(differ > 100);
    cascade_datagen_truth_destroy(t);
    cascade_datagen_truth_destroy(NULL);
    cascade_dataset_destroy(ds);
    free(p);
    o.users = 0;
    assert_null(cascade_datagen_truth_create(&o, err, sizeof err));
    assert_non_null(strstr(err, "must all be positive"));
}

static void test_parse_drop(void **state)
{
    (void)state;
    struct cascade_sim_drop d;
    char err[256];
    assert_int_equal(cascade_sim_parse_drop("rerank=low_lambda:0.3", &d, err, sizeof err), 0);
    assert_string_equal(d.layer, "rerank");
    assert_string_equal(d.experiment, "low_lambda");
    assert_true(fabs(d.share - 0.3) < 1e-12);
    /* An experiment name may hold a colon (a reverse arm): the last one splits. */
    assert_int_equal(cascade_sim_parse_drop("rank=m:reverse:1", &d, err, sizeof err), 0);
    assert_string_equal(d.experiment, "m:reverse");
    static const char *bad[] = {"rerank",       "rerank=x",      "=x:0.5",
                                "rerank=:0.5",  "rerank=x:0",    "rerank=x:1.5",
                                "rerank=x:abc", "rerank=x:0.5z", "a:0.5=b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cascade_sim_parse_drop(bad[i], &d, err, sizeof err) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(strstr(err, "LAYER=EXPERIMENT:SHARE"));
    }
}

static void test_parse_flags(void **state)
{
    (void)state;
    struct cascade_sim_opts o;
    FILE *null = fopen("/dev/null", "w");
    assert_non_null(null);
    char *ok[] = {"cascade-sim",
                  "--target",
                  "127.0.0.1:1",
                  "--users",
                  "300",
                  "--seed",
                  "5",
                  "--sim-users",
                  "40",
                  "--drop",
                  "rerank=a:0.5,rank=b:1",
                  NULL};
    cascade_sim_defaults(&o);
    assert_int_equal(cascade_sim_parse(11, ok, &o, null, null), 0);
    assert_int_equal(o.world.users, 300);
    assert_int_equal(o.world.seed, 5);
    assert_int_equal(o.users, 40);
    assert_int_equal(o.n_drops, 2);
    assert_string_equal(o.drops[1].layer, "rank");
    char *bad_drop[] = {"cascade-sim", "--drop", "rerank", NULL};
    cascade_sim_defaults(&o);
    assert_int_equal(cascade_sim_parse(3, bad_drop, &o, null, null), CASCADE_SIM_USAGE);
    char *bad_count[] = {"cascade-sim", "--count", "0", NULL};
    cascade_sim_defaults(&o);
    assert_int_equal(cascade_sim_parse(3, bad_count, &o, null, null), CASCADE_SIM_USAGE);
    fclose(null);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth_matches_generated_log),
        cmocka_unit_test(test_parse_drop),
        cmocka_unit_test(test_parse_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
