/* Unit tests for pre-rank training: examples carry train-rank's labels with
 * point-in-time hashed features and heuristic scores, the model beats the
 * heuristic on a generated world, and publishing writes the model and the
 * prerank-lr.latest pointer that names it. */
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
#include "hashlr.h"
#include "prerank_features.h"
#include "support.h"
#include "train_prerank.h"

#define NF CASCADE_PRERANK_FEATURES

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* One item shown three times: clicked after the first and third showing. */
static cascade_dataset *tiny_log(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ds_user a = {.id = "a", .age = 30}, b = {.id = "b"};
    struct cascade_ds_item it = {.id = 5, .category = 2, .media_type = 1, .created_at = 100};
    assert_int_equal(cascade_dataset_add_user(ds, &a, NULL), 0);
    assert_int_equal(cascade_dataset_add_user(ds, &b, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    ev(ds, 1000, "a", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 1001, "a", 5, CASCADE_EV_CLICK);
    ev(ds, 2000, "b", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 3000, "a", 5, CASCADE_EV_IMPRESSION);
    ev(ds, 3000, "a", 5, CASCADE_EV_CLICK);
    return ds;
}

static void test_examples_point_in_time(void **state)
{
    (void)state;
    cascade_dataset *ds = tiny_log();
    struct cascade_train_prerank_opts o;
    struct cascade_prerank_examples ex;
    struct cascade_prerank_weights w;
    char err[256];
    cascade_train_prerank_defaults(&o);
    o.examples.warmup_frac = 0;
    o.examples.holdout_frac = 1.0 / 3;
    o.quiet = true;
    assert_int_equal(cascade_prerank_examples_build(ds, &o, &ex, err, sizeof err), 0);
    assert_int_equal(ex.n, 3);
    assert_int_equal(ex.n_train, 2);
    assert_true(ex.y[0] == 1 && ex.y[1] == 0 && ex.y[2] == 1);
    /* Heuristic: the first sees no statistics, the second one impression and
     * one click, the third two impressions and one click. */
    cascade_prerank_weights_default(&w);
    cascade_v1_ItemStats s1 = {.impressions = 1, .clicks = 1}, s2 = {.impressions = 2, .clicks = 1};
    assert_float_equal(ex.heuristic[0], cascade_prerank_score(&w, NULL, 0), 1e-6);
    assert_float_equal(ex.heuristic[1], cascade_prerank_score(&w, &s1, 0), 1e-6);
    assert_float_equal(ex.heuristic[2], cascade_prerank_score(&w, &s2, 0), 1e-6);
    /* Item id and author buckets never change; the popularity bucket moves
     * once the click is seen; the user crosses differ between a and b. */
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(ex.idx[i * NF + 0], ex.idx[0]);
    assert_int_not_equal(ex.idx[0 * NF + 10], ex.idx[1 * NF + 10]);
    assert_int_not_equal(ex.idx[0 * NF + 3], ex.idx[1 * NF + 3]);
    assert_int_equal(ex.idx[0 * NF + 3], ex.idx[2 * NF + 3]);
    for (size_t i = 0; i < 3 * NF; i++)
        assert_true(ex.idx[i] < (1u << o.bits));
    cascade_prerank_examples_free(&ex);

    o.bits = 2;
    assert_int_equal(cascade_prerank_examples_build(ds, &o, &ex, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "bits"));
    cascade_dataset_destroy(ds);
}

static char *read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)len, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static void test_beats_heuristic_and_publishes(void **state)
{
    (void)state;
    struct cascade_datagen_opts g;
    struct cascade_train_prerank_opts o;
    struct cascade_train_prerank_summary s;
    cascade_dataset *ds = NULL;
    cascade_hashlr *m = NULL;
    char dir[256], err[512];
    cascade_datagen_defaults(&g);
    g.users = 3000;
    g.items = 500;
    g.events = 60000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof err), 0);
    assert_non_null(test_tempdir(dir, sizeof dir));
    cascade_train_prerank_defaults(&o);
    o.bits = 18;
    o.quiet = true;
    o.model_dir = dir;
    if (cascade_train_prerank_run(ds, &o, &s, &m, err, sizeof err) != 0)
        fail_msg("train: %s", err);
    assert_non_null(m);
    assert_true(s.holdout > 0 && s.train > 5 * s.holdout);
    assert_true(s.auc > 0.6);
    assert_true(s.auc > s.heuristic_auc);
    assert_true(s.logloss < s.base_logloss);
    assert_int_equal(strncmp(s.version, "prerank-lr-", 11), 0);

    /* prerank-lr.latest names the file; it loads with the same spec and scores. */
    char latest[400], name[256], path[700];
    snprintf(latest, sizeof latest, "%s/prerank-lr.latest", dir);
    snprintf(path, sizeof path, "%s/%s", dir, read_line(latest, name, sizeof name));
    assert_string_equal(path, s.model_path);
    cascade_hashlr *back = cascade_hashlr_load(path, err, sizeof err);
    assert_non_null(back);
    assert_string_equal(cascade_hashlr_version(back), s.version);
    assert_string_equal(cascade_hashlr_spec(back), CASCADE_PRERANK_SPEC);
    assert_int_equal(cascade_hashlr_bits(back), 18);
    uint32_t idx[NF];
    for (uint32_t k = 0; k < 50; k++) {
        for (size_t i = 0; i < NF; i++)
            idx[i] = (k * 2654435761u + (uint32_t)i * 40503u) & ((1u << 18) - 1);
        assert_true(cascade_hashlr_predict(m, idx, NF) == cascade_hashlr_predict(back, idx, NF));
    }
    /* Publishing again in the same second makes a new name and moves the pointer. */
    char path2[700], version2[128];
    assert_int_equal(cascade_prerank_model_publish(m, dir, path2, sizeof path2, version2,
                                                   sizeof version2, err, sizeof err),
                     0);
    assert_string_not_equal(path2, s.model_path);
    assert_non_null(strstr(read_line(latest, name, sizeof name), version2));

    /* Warm start from what prerank-lr.latest names: with a step too small to
     * move, the next model scores like m; without it, like a fresh model. */
    struct cascade_train_prerank_summary w;
    cascade_hashlr *mw = NULL, *mc = NULL;
    char before[256];
    read_line(latest, before, sizeof before);
    o.lr.learning_rate = 1e-9f;
    o.epochs = 1;
    if (cascade_train_prerank_run(ds, &o, &w, &mw, err, sizeof err) != 0)
        fail_msg("warm train: %s", err);
    assert_string_equal(w.warm_from, before);
    o.warm_start = false;
    if (cascade_train_prerank_run(ds, &o, &w, &mc, err, sizeof err) != 0)
        fail_msg("cold train: %s", err);
    assert_string_equal(w.warm_from, "");
    float warm_gap = 0, cold_gap = 0;
    for (uint32_t k = 0; k < 50; k++) {
        for (size_t i = 0; i < NF; i++)
            idx[i] = (k * 2654435761u + (uint32_t)i * 40503u) & ((1u << 18) - 1);
        float pm = cascade_hashlr_predict(m, idx, NF);
        warm_gap = fmaxf(warm_gap, fabsf(cascade_hashlr_predict(mw, idx, NF) - pm));
        cold_gap = fmaxf(cold_gap, fabsf(cascade_hashlr_predict(mc, idx, NF) - pm));
    }
    assert_true(warm_gap < 1e-4f);
    assert_true(cold_gap > 0.01f);
    cascade_hashlr_destroy(mw);
    cascade_hashlr_destroy(mc);
    cascade_hashlr_destroy(back);
    cascade_hashlr_destroy(m);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_point_in_time),
        cmocka_unit_test(test_beats_heuristic_and_publishes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
