/* Unit tests for cascade-build train-mmoe: multi-task labels from the events
 * after each impression (click, like, collect, share, watch time, completion
 * of videos), and training on a generated world: held-out metrics per task
 * and a published model that takes raw features. */
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
#include "dataset.h"
#include "error.h"
#include "mmoe.h"
#include "rank_features.h"
#include "support.h"
#include "train_mmoe.h"

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type,
               float value)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, value), 0);
}

static void test_labels(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ds_user a = {.id = "a"}, b = {.id = "b"};
    struct cascade_ds_item video = {.id = 1, .media_type = 2, .duration_s = 10, .created_at = 1};
    struct cascade_ds_item note = {.id = 2, .media_type = 1, .created_at = 1};
    assert_int_equal(cascade_dataset_add_user(ds, &a, NULL), 0);
    assert_int_equal(cascade_dataset_add_user(ds, &b, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &video, NULL), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &note, NULL), 0);
    ev(ds, 1000, "a", 1, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 1001, "a", 1, CASCADE_EV_CLICK, 0);
    ev(ds, 1002, "a", 1, CASCADE_EV_LIKE, 0);
    ev(ds, 1003, "a", 1, CASCADE_EV_PLAY, 5);
    ev(ds, 1004, "a", 1, CASCADE_EV_PLAY, 4); /* 9 of 10 s: complete */
    ev(ds, 2000, "b", 1, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 2001, "b", 1, CASCADE_EV_PLAY, 3); /* 3 of 10 s: not complete */
    ev(ds, 3000, "a", 2, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 3001, "a", 2, CASCADE_EV_SHARE, 0);
    ev(ds, 4000, "a", 1, CASCADE_EV_IMPRESSION, 0);
    ev(ds, 4001, "a", 1, CASCADE_EV_COLLECT, 0); /* labels the 4000 impression only */

    struct cascade_train_rank_opts o;
    struct cascade_rank_examples ex;
    char err[256];
    cascade_train_rank_defaults(&o);
    o.warmup_frac = 0;
    o.holdout_frac = 0.25;
    o.quiet = true;
    assert_int_equal(cascade_rank_examples_build(ds, &o, &ex, err, sizeof(err)), 0);
    assert_int_equal(ex.n, 4);
    struct cascade_mmoe_config c;
    cascade_mmoe_config_default(&c, CASCADE_RANK_FEATURES); /* the six tasks */
    float labels[4 * 6], weights[4 * 6];
    assert_int_equal(cascade_mmoe_labels_build(ds, &ex, &c, 0.8, labels, weights, err, sizeof(err)),
                     0);
    /* click, like, collect, share, watch_time, complete */
    const float want[4][6] = {
        {1, 1, 0, 0, 9, 1},
        {0, 0, 0, 0, 3, 0},
        {0, 0, 0, 1, 0, 0},
        {0, 0, 1, 0, 0, 0},
    };
    for (size_t r = 0; r < 4; r++) {
        for (size_t t = 0; t < 6; t++) {
            if (labels[r * 6 + t] != want[r][t])
                fail_msg("example %zu task %s: label %g, expected %g", r, c.tasks[t].name,
                         (double)labels[r * 6 + t], (double)want[r][t]);
            /* Completion is only defined for videos: masked on the note. */
            assert_true(weights[r * 6 + t] == (r == 2 && t == 5 ? 0.0f : 1.0f));
        }
    }
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click,dwell", err, sizeof(err)), 0);
    assert_int_equal(cascade_mmoe_labels_build(ds, &ex, &c, 0.8, labels, weights, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "dwell"));
    cascade_rank_examples_free(&ex);
    cascade_dataset_destroy(ds);
}

static void test_trains_and_publishes(void **state)
{
    (void)state;
    struct cascade_datagen_opts g;
    struct cascade_train_mmoe_opts o;
    struct cascade_train_mmoe_summary s;
    cascade_dataset *ds = NULL;
    cascade_mmoe *m = NULL;
    char dir[256], err[512];
    cascade_datagen_defaults(&g);
    g.users = 3000;
    g.items = 500;
    g.events = 60000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof(err)), 0);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    cascade_train_mmoe_defaults(&o);
    o.quiet = getenv("MMOE_VERBOSE") == NULL;
    o.model_dir = dir;
    o.epochs = 3;
    if (cascade_train_mmoe_run(ds, &o, &s, &m, err, sizeof(err)) != 0)
        fail_msg("train-mmoe: %s", err);
    assert_non_null(m);
    assert_int_equal(s.n_tasks, 6);
    assert_true(s.holdout > 0 && s.train > 5 * s.holdout);
    for (size_t t = 0; t < s.n_tasks; t++) {
        const struct cascade_train_mmoe_task_report *r = &s.tasks[t];
        if (getenv("MMOE_VERBOSE"))
            fprintf(stderr, "%-10s n %zu rate %.4f AUC %.4f logloss %.4f ECE %.4f entropy %.3f\n",
                    r->name, r->labelled, r->positive_rate, r->auc, r->logloss, r->ece,
                    s.gate_entropy[t]);
        assert_true(s.gate_entropy[t] >= 0 && s.gate_entropy[t] <= log(4.0) + 1e-9);
        assert_true(r->ece >= 0 && r->ece < 1);
    }
    /* Click is learnable from the rank features: far better than chance and
     * than the best constant, measured after the standardisation was folded
     * into the model (so on raw features). */
    const struct cascade_train_mmoe_task_report *click = &s.tasks[0];
    assert_string_equal(click->name, "click");
    double r = click->positive_rate;
    assert_true(r > 0 && r < 1);
    assert_true(click->auc > 0.65);
    assert_true(click->logloss < -(r * log(r) + (1 - r) * log(1 - r)));

    /* The published file loads and predicts what the trained model does. */
    assert_int_equal(strncmp(s.version, "rank-mmoe-", 10), 0);
    assert_non_null(strstr(s.model_path, dir));
    cascade_mmoe *back = cascade_mmoe_load(s.model_path, err, sizeof(err));
    if (!back)
        fail_msg("load: %s", err);
    float x[2 * CASCADE_RANK_FEATURES], p1[2 * 6], p2[2 * 6];
    for (size_t i = 0; i < 2 * CASCADE_RANK_FEATURES; i++)
        x[i] = (float)(i % 5) * 0.3f - 0.5f;
    cascade_mmoe_scratch *sc = cascade_mmoe_scratch_create(m, 4);
    assert_int_equal(cascade_mmoe_predict(m, sc, x, 2, p1), 0);
    assert_int_equal(cascade_mmoe_predict(back, sc, x, 2, p2), 0);
    assert_memory_equal(p1, p2, sizeof(p1));
    cascade_mmoe_scratch_destroy(sc);
    cascade_mmoe_destroy(back);
    cascade_mmoe_destroy(m);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_trains_and_publishes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
