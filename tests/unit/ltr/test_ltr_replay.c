/* Tests of the learned rankers' replay and training job on a generated world
 * with a real Redis: the replay build sees only the replay-train part (no
 * held-out interaction leaks into the records the features read), its lists
 * are labelled by the held-out items, and the gate publishes a model only
 * when it beats the order it replaces and is no worse than the published
 * model (which stays in place otherwise). */
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

#include "../eval/eval_world.h"
#include "error.h"
#include "events.h"
#include "latest_file.h"
#include "ltr_features.h"
#include "ltr_test.h"
#include "ltr_replay.h"
#include "ltr_train.h"
#include "store.h"

static void replay_opts(struct cascade_ltr_replay_opts *o, cascade_config *cfg, const char *ns)
{
    cascade_ltr_replay_defaults(o);
    o->cfg = cfg;
    o->ns = ns;
    o->quiet = true;
    o->seed = 7;
}

/* The split the replay makes, made again here. */
static void same_split(const struct world *w, const struct cascade_ltr_replay_opts *o,
                       struct cascade_eval_split *s)
{
    struct cascade_eval_split_opts so;
    char err[256] = "";
    cascade_ltr_replay_split_opts(o, &so);
    assert_int_equal(cascade_eval_split_run(w->ds, &so, s, err, sizeof err), 0);
}

static bool contains(const uint32_t *a, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == x)
            return true;
    return false;
}

static void test_replay_sees_no_held_out_interaction(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_replay_opts o;
    struct cascade_ltr_lists l;
    struct cascade_eval_split s = {0};
    char err[512] = "";
    replay_opts(&o, cfg, "ltr-leak");
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &l, err, sizeof err), 0);
    same_split(w, &o, &s);
    assert_true(l.n_groups > 0 && l.positives > 0);
    /* Every user's interaction list in the replay namespace holds none of its held-out items. */
    size_t checked = 0;
    for (size_t k = 0; k < s.n_users; k++) {
        cascade_v1_Interaction last[200];
        size_t n = 0;
        const char *uid = s.train->users[s.users[k]].id;
        assert_int_equal(cascade_store_get_lastn(w->redis.conn, "ltr-leak", uid, 200, last, &n), 0);
        for (size_t i = 0; i < n; i++) {
            long idx = cascade_dataset_find_item(s.train, last[i].item_id);
            assert_true(idx >= 0);
            assert_false(
                contains(s.test + s.test_off[k], s.test_off[k + 1] - s.test_off[k], (uint32_t)idx));
            checked++;
        }
    }
    assert_true(checked > 0);
    /* The item counters count the replay-train clicks only. */
    size_t train_clicks = 0, stored_clicks = 0;
    for (size_t e = 0; e < s.train->n_events; e++)
        train_clicks += s.train->events[e].type == CASCADE_EV_CLICK;
    for (size_t i = 0; i < w->ds->n_items; i++) {
        cascade_v1_ItemRecord rec;
        bool found = false;
        assert_int_equal(cascade_store_get_items(w->redis.conn, "ltr-leak", &w->ds->items[i].id, 1,
                                                 &rec, &found),
                         0);
        if (found)
            stored_clicks += rec.stats.clicks;
    }
    assert_int_equal(stored_clicks, train_clicks);
    /* Labels: every positive row is a held-out item of its group's user. */
    size_t pos = 0;
    for (size_t g = 0; g < l.n_groups; g++)
        for (size_t r = l.off[g]; r < l.off[g + 1]; r++) {
            pos += l.y[r] > 0;
            assert_true(isfinite(l.X[r * CASCADE_LTR_FEATURES])); /* rank features are finite */
        }
    assert_int_equal(pos, l.positives);
    cascade_eval_split_free(&s);
    cascade_ltr_lists_free(&l);
    cascade_config_destroy(cfg);
}

static void train_opts(struct cascade_ltr_train_opts *o, cascade_config *cfg, const char *dir)
{
    cascade_ltr_train_defaults(o);
    replay_opts(&o->replay, cfg, "ltr-gate");
    o->model_dir = dir;
    o->prerank.rounds = o->rank.rounds = 40;
    o->prerank.patience = o->rank.patience = 40;
    o->prerank.threads = o->rank.threads = 1;
}

static bool file_exists(const char *dir, const char *name, const char *suffix)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    return stat(path, &st) == 0;
}

static void test_gate_keeps_the_published_model(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_train_opts o;
    struct cascade_ltr_train_summary s;
    char dir[256], err[512] = "", name[256], path[1024], still[256];
    test_tempdir(dir, sizeof dir);
    train_opts(&o, cfg, dir);
    o.force = true; /* the first model is published whatever it scores */
    assert_int_equal(
        cascade_ltr_train_run(w->ds, w->redis.conn, w->redis.pool, &o, &s, err, sizeof err), 0);
    assert_true(s.rank_published && s.prerank_published);
    assert_true(file_exists(dir, s.rank_version, ".safetensors.gate.json"));
    assert_int_equal(cascade_latest_current(dir, CASCADE_LTR_RANK_LATEST, name, sizeof name, path,
                                            sizeof path, err, sizeof err),
                     0);
    assert_non_null(strstr(name, s.rank_version));
    double first = s.ndcg_rank;
    /* The same job again, with a bar no model can pass: nothing moves, and the
     * published model was measured on the same validation lists. */
    train_opts(&o, cfg, dir);
    o.min_gain = 1.0;
    assert_int_equal(
        cascade_ltr_train_run(w->ds, w->redis.conn, w->redis.pool, &o, &s, err, sizeof err), 0);
    assert_false(s.rank_published);
    assert_false(s.prerank_published);
    assert_non_null(strstr(s.rank_reason, "floor"));
    assert_true(file_exists(dir, s.rank_version, ".safetensors.gate.json"));
    assert_float_equal(s.ndcg_rank_current, first, 1e-9);
    assert_int_equal(cascade_latest_current(dir, CASCADE_LTR_RANK_LATEST, still, sizeof still, path,
                                            sizeof path, err, sizeof err),
                     0);
    assert_string_equal(still, name);
    test_rmdir(dir);
    cascade_config_destroy(cfg);
}

static void test_folds_add_lists(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_replay_opts o;
    struct cascade_ltr_lists one, two;
    char err[512] = "";
    replay_opts(&o, cfg, "ltr-folds");
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &one, err, sizeof err), 0);
    o.folds = 2;
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &two, err, sizeof err), 0);
    /* The first fold is the single replay; the second adds lists of its own split. */
    assert_true(two.n_groups > one.n_groups);
    assert_true(two.n_rows > one.n_rows);
    assert_int_equal(two.off[one.n_groups], one.n_rows);
    assert_memory_equal(two.y, one.y, one.n_rows * sizeof *one.y);
    assert_memory_equal(two.item, one.item, one.n_rows * sizeof *one.item);
    size_t pos = 0;
    for (size_t r = 0; r < two.n_rows; r++)
        pos += two.y[r] > 0;
    assert_int_equal(pos, two.positives);
    cascade_ltr_lists_free(&one);
    cascade_ltr_lists_free(&two);
    cascade_config_destroy(cfg);
}

static void test_no_positives_is_unsupported(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_replay_opts o;
    struct cascade_ltr_lists l;
    char err[512] = "";
    replay_opts(&o, cfg, "ltr-none");
    o.min_interactions = 1000000; /* nobody qualifies */
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &l, err, sizeof err),
        CASCADE_EDATA);
    assert_non_null(strstr(err, "nothing to replay"));
    cascade_config_destroy(cfg);
}

/* A replay whose lists could outgrow the memory is refused before anything
 * is built, and the message names the --max-users that fits. */
static void test_replay_too_big_for_memory_is_refused(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_replay_opts o;
    struct cascade_ltr_lists l;
    char err[512] = "";
    replay_opts(&o, cfg, "ltr-big");
    /* Room for 3 users' full lists (merge_max candidates each). */
    size_t merge_max = 2000; /* the default when the config has none */
    assert_int_equal(
        cascade_config_size(cfg, "orchestrator.merge_max", &merge_max, 1, 1000000, err, sizeof err),
        0);
    o.memory_bytes = 3 * merge_max * CASCADE_LTR_REPLAY_ROW_BYTES + 1;
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &l, err, sizeof err),
        CASCADE_ETOOBIG);
    assert_non_null(strstr(err, "pass --max-users 3 or fewer"));
    assert_int_equal(l.n_groups, 0);
    /* The sample it names fits and replays. */
    o.max_users = 3;
    err[0] = '\0';
    int rc = cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o, &l, err, sizeof err);
    assert_true(rc == 0 || rc == CASCADE_EDATA); /* 3 users may hold no positive */
    cascade_ltr_lists_free(&l);
    cascade_config_destroy(cfg);
}

static int setup(void **state)
{
    return world_group_setup(state, 400, 40000, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_sees_no_held_out_interaction),
        cmocka_unit_test(test_gate_keeps_the_published_model),
        cmocka_unit_test(test_folds_add_lists),
        cmocka_unit_test(test_no_positives_is_unsupported),
        cmocka_unit_test(test_replay_too_big_for_memory_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, world_group_teardown);
}
