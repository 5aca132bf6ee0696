/* Unit tests for ranking training: click labels, point-in-time features (an
 * example never sees its own or later events), the time split, learning on a
 * generated world, and publishing the model with its .latest pointer. */
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
#include "dataset.h"
#include "error.h"
#include "rank_features.h"
#include "lr.h"
#include "support.h"
#include "train_rank.h"

static size_t feat(const char *name)
{
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        if (strcmp(cascade_features_rank_name(i), name) == 0)
            return i;
    fail_msg("no feature named %s", name);
    return 0;
}

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* One item shown three times: clicked after the first and third showing. */
static cascade_dataset *tiny_log(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ds_user a = {.id = "a"}, b = {.id = "b"};
    struct cascade_ds_item it = {.id = 5, .category = 2, .media_type = 1, .created_at = 100};
    assert_int_equal(cascade_dataset_add_user(ds, &a, NULL), 0);
    assert_int_equal(cascade_dataset_add_user(ds, &b, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    ev(ds, 1000, "a", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 1001, "a", 5, CASCADE_EV_CLICK);
    ev(ds, 2000, "b", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 3000, "a", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 3000, "a", 5, CASCADE_EV_CLICK); /* same second, after the impression */
    ev(ds, 3005, "a", 5, CASCADE_EV_CLICK); /* a second click labels nothing new */
    return ds;
}

static void test_labels_and_point_in_time_features(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny_log();
    struct cascade_train_rank_opts o;
    struct cascade_rank_examples ex;
    char err[256];
    cascade_train_rank_defaults(&o);
    o.warmup_frac = 0;
    o.holdout_frac = 1.0 / 3;
    o.quiet = true;
    assert_int_equal(cascade_rank_examples_build(ds, &o, &ex, err, sizeof(err)), 0);
    assert_int_equal(ex.n, 3);
    assert_int_equal(ex.n_train, 2);
    assert_true(ex.y[0] == 1 && ex.y[1] == 0 && ex.y[2] == 1);
    /* Each example sees only earlier events: 0, 1 and 2 earlier impressions. */
    size_t imp = feat("item_log_impressions"), ctr = feat("item_ctr_logit");
    for (size_t i = 0; i < 3; i++)
        assert_true(fabsf(ex.X[i * CASCADE_RANK_FEATURES + imp] - (float)(log1p((double)i) / 10)) <
                    1e-6);
    /* The first example cannot see its own click: its CTR feature is the prior. */
    float prior = ex.X[ctr];
    assert_true(fabsf(prior - (float)(log(0.1 / 0.9) / 2)) < 1e-5);
    assert_true(ex.X[CASCADE_RANK_FEATURES + ctr] > prior); /* after one click */
    /* User a has history by its second impression, user b never does. */
    size_t cold = feat("user_no_history");
    assert_true(ex.X[cold] == 1 && ex.X[CASCADE_RANK_FEATURES + cold] == 1 &&
                ex.X[2 * CASCADE_RANK_FEATURES + cold] == 0);
    cascade_rank_examples_free(&ex);

    /* With a warm-up share the first impressions only feed the state. */
    o.warmup_frac = 0.5;
    assert_int_equal(cascade_rank_examples_build(ds, &o, &ex, err, sizeof(err)), 0);
    assert_int_equal(ex.n, 2);
    assert_int_equal(ex.event[0], 2); /* b's impression is event 2 */
    cascade_rank_examples_free(&ex);
    o.warmup_frac = 1.0;
    assert_int_equal(cascade_rank_examples_build(ds, &o, &ex, err, sizeof(err)), CASCADE_EDATA);
    assert_non_null(strstr(err, "no examples"));
    cascade_dataset_destroy(ds);
}

static void test_learns_on_generated_world_and_publishes(void **state)
{
    (void)state;
    struct cascade_datagen_opts g;
    struct cascade_train_rank_opts o;
    struct cascade_train_rank_summary s;
    cascade_dataset *ds = NULL;
    cascade_lr *m = NULL;
    char dir[256], err[512];
    cascade_datagen_defaults(&g);
    g.users = 3000;
    g.items = 500;
    g.events = 60000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof(err)), 0);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    cascade_train_rank_defaults(&o);
    o.quiet = true;
    o.model_dir = dir;
    assert_int_equal(cascade_train_rank_run(ds, &o, &s, &m, err, sizeof(err)), 0);
    assert_non_null(m);
    assert_true(s.holdout > 0 && s.train > 5 * s.holdout);
    assert_true(s.auc > 0.65);               /* far better than chance */
    assert_true(s.logloss < s.base_logloss); /* and better than the base rate */
    assert_true(isnan(s.oracle_auc));        /* no truth file given */
    assert_int_equal(strncmp(s.version, "rank-lr-", 8), 0);

    /* The published file is what rank-lr.latest names, and predicts the same. */
    char latest[400], name[256] = "", path[700];
    snprintf(latest, sizeof(latest), "%s/rank-lr.latest", dir);
    FILE *f = fopen(latest, "r");
    assert_non_null(f);
    assert_non_null(fgets(name, sizeof(name), f));
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_string_equal(path, s.model_path);
    cascade_lr *back = cascade_lr_load(path, err, sizeof(err));
    assert_non_null(back);
    assert_string_equal(cascade_lr_version(back), s.version);
    float x[CASCADE_RANK_FEATURES] = {0}, p1, p2;
    x[0] = 0.5f;
    cascade_lr_predict(m, x, 1, &p1);
    cascade_lr_predict(back, x, 1, &p2);
    assert_true(p1 == p2);

    /* Publishing again in the same second does not overwrite: a new name. */
    char path2[700], version2[128];
    assert_int_equal(cascade_rank_model_publish(m, dir, path2, sizeof(path2), version2,
                                                sizeof(version2), err, sizeof(err)),
                     0);
    assert_string_not_equal(path2, s.model_path);
    f = fopen(latest, "r");
    assert_non_null(fgets(name, sizeof(name), f));
    fclose(f);
    assert_non_null(strstr(name, version2));

    /* Warm start: the next run starts from what rank-lr.latest names; with a
     * step too small to move, it keeps that model's weights. */
    struct cascade_train_rank_summary w;
    cascade_lr *mw = NULL, *mc = NULL;
    o.lr.learning_rate = 1e-9f;
    o.lr.epochs = 1;
    assert_int_equal(cascade_train_rank_run(ds, &o, &w, &mw, err, sizeof(err)), 0);
    name[strcspn(name, "\n")] = '\0';
    assert_string_equal(w.warm_from, name);
    float bm, bw;
    const float *wm = cascade_lr_weights(m, &bm), *ww = cascade_lr_weights(mw, &bw);
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        assert_true(fabsf(wm[i] - ww[i]) < 1e-4f);
    assert_true(fabsf(bm - bw) < 1e-4f);
    /* --no-warm-start: zero weights, which that step cannot move far. */
    o.warm_start = false;
    assert_int_equal(cascade_train_rank_run(ds, &o, &w, &mc, err, sizeof(err)), 0);
    assert_string_equal(w.warm_from, "");
    float bc;
    const float *wc = cascade_lr_weights(mc, &bc);
    float moved = 0;
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        moved = fmaxf(moved, fabsf(wc[i] - wm[i]));
    assert_true(moved > 0.05f);
    cascade_lr_destroy(mw);
    cascade_lr_destroy(mc);
    cascade_lr_destroy(back);
    cascade_lr_destroy(m);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
}

/* A small, dense world (the integration test's size): ~17k training
 * examples. Undertrained models (too few optimiser steps) score at chance
 * here although single features are predictive, so this guards the
 * bias initialisation and the minimum number of steps per epoch. */
static void test_small_world_is_not_undertrained(void **state)
{
    (void)state;
    struct cascade_datagen_opts g;
    struct cascade_train_rank_opts o;
    struct cascade_train_rank_summary s;
    cascade_dataset *ds = NULL;
    char err[512];
    cascade_datagen_defaults(&g);
    g.users = 500;
    g.items = 300;
    g.events = 30000;
    g.seed = 7;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof(err)), 0);
    cascade_train_rank_defaults(&o);
    o.quiet = true;
    assert_int_equal(cascade_train_rank_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_true(s.train < 30000);
    assert_true(s.auc > 0.65);
    assert_true(s.logloss < s.base_logloss);
    assert_string_equal(s.model_path, ""); /* no model dir: nothing published */
    cascade_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_and_point_in_time_features),
        cmocka_unit_test(test_learns_on_generated_world_and_publishes),
        cmocka_unit_test(test_small_world_is_not_undertrained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
