/* Tests of weight tuning on a validation split: the coordinate ascent finds
 * the known optimum of synthetic objectives on a small grid, keeps ties,
 * stops early and passes errors on, and follows its seed (same seed, same
 * trace); the nested split never lets a held-out (test) or validation item
 * into what the validation build sees, checked on the datasets and in the
 * built Redis namespace; a merge of kept lists ranks exactly as the
 * evaluation loop's merged row; and the command line with --tune-weights is
 * deterministic for a seed and writes a fragment the orchestrator parses.
 * Redis is a private redis-server (tests/support). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "eval_build.h"
#include "eval_channels.h"
#include "eval_cli.h"
#include "eval_lists.h"
#include "eval_run.h"
#include "eval_split.h"
#include "eval_tune.h"
#include "eval_world.h"
#include "orch_config.h"
#include "recall.h"
#include "store.h"
#include "support.h"

static const double GRID[] = {0, 0.25, 0.5, 1, 2, 4};
#define N_GRID (sizeof GRID / sizeof GRID[0])

/* ---- coordinate ascent on synthetic objectives (no Redis) ---- */

/* -Σ (w_i - target_i)^2, and every evaluated point kept as a trace. */
struct quad {
    const double *target;
    size_t calls, fail_at;
    double trace[512][4];
};

static int quad_value(void *ctx, const double *w, size_t n, double *value)
{
    struct quad *q = ctx;
    if (q->fail_at && q->calls + 1 == q->fail_at)
        return CASCADE_EIO;
    double v = 0;
    for (size_t i = 0; i < n; i++) {
        v -= (w[i] - q->target[i]) * (w[i] - q->target[i]);
        if (q->calls < 512 && i < 4)
            q->trace[q->calls][i] = w[i];
    }
    q->calls++;
    *value = v;
    return 0;
}

static void test_ascent_finds_grid_optimum(void **state)
{
    (void)state;
    const double target[] = {2, 0, 0.5, 4};
    struct quad q = {.target = target};
    double w[] = {1, 1, 1, 1};
    struct cascade_eval_ascent_opts o = {
        .grid = GRID, .n_grid = N_GRID, .max_sweeps = 5, .seed = 7};
    struct cascade_eval_ascent_result r;
    assert_int_equal(cascade_eval_coord_ascent(quad_value, &q, w, 4, &o, &r), 0);
    for (size_t i = 0; i < 4; i++)
        assert_true(w[i] == target[i]);
    assert_true(r.value == 0);
    assert_true(r.start_value == -(1 + 1 + 0.25 + 9));
    /* Separable: one pass reaches the optimum, a second one confirms it. */
    assert_int_equal(r.sweeps, 2);
    assert_int_equal(r.evaluations, 1 + 2 * 4 * (N_GRID - 1));
    assert_int_equal(q.calls, r.evaluations);
}

/* A chain: -0.1 (w0 - w1)^2 - 0.3 (w1 - w2)^2 - (w2 - 4)^2. From (0, 0, 0)
 * the optimum (4, 4, 4) takes several passes, whatever the order, because
 * each coordinate can only follow its neighbour a step at a time. */
static int chain_value(void *ctx, const double *w, size_t n, double *value)
{
    (void)ctx;
    (void)n;
    *value = -0.1 * (w[0] - w[1]) * (w[0] - w[1]) - 0.3 * (w[1] - w[2]) * (w[1] - w[2]) -
             (w[2] - 4) * (w[2] - 4);
    return 0;
}

static void test_ascent_coupled(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        double w[] = {0, 0, 0};
        struct cascade_eval_ascent_opts o = {
            .grid = GRID, .n_grid = N_GRID, .max_sweeps = 10, .seed = seed};
        struct cascade_eval_ascent_result r;
        assert_int_equal(cascade_eval_coord_ascent(chain_value, NULL, w, 3, &o, &r), 0);
        assert_true(w[0] == 4 && w[1] == 4 && w[2] == 4);
        assert_true(r.value == 0);
        assert_true(r.sweeps >= 3 && r.sweeps < 10);

        /* max_sweeps bounds the search: one pass does not get there, but
         * never ends below the start. */
        double w1[] = {0, 0, 0};
        o.max_sweeps = 1;
        assert_int_equal(cascade_eval_coord_ascent(chain_value, NULL, w1, 3, &o, &r), 0);
        assert_int_equal(r.sweeps, 1);
        assert_true(r.value < 0 && r.value > r.start_value);
    }
}

/* Flat in w[1]: it keeps its start value, even off the grid (1.5). */
static int flat_value(void *ctx, const double *w, size_t n, double *value)
{
    (void)ctx;
    (void)n;
    *value = -(w[0] - 0.25) * (w[0] - 0.25);
    return 0;
}

static void test_ascent_ties_and_errors(void **state)
{
    (void)state;
    double w[] = {4, 1.5};
    struct cascade_eval_ascent_opts o = {
        .grid = GRID, .n_grid = N_GRID, .max_sweeps = 3, .seed = 1};
    struct cascade_eval_ascent_result r;
    assert_int_equal(cascade_eval_coord_ascent(flat_value, NULL, w, 2, &o, &r), 0);
    assert_true(w[0] == 0.25);
    assert_true(w[1] == 1.5);

    const double target[] = {2, 2};
    struct quad q = {.target = target, .fail_at = 5};
    double w2[] = {0, 0};
    assert_int_equal(cascade_eval_coord_ascent(quad_value, &q, w2, 2, &o, &r), CASCADE_EIO);
    o.n_grid = 0;
    assert_int_equal(cascade_eval_coord_ascent(quad_value, &q, w2, 2, &o, &r), CASCADE_EINVAL);
}

static void run_traced(uint64_t seed, struct quad *q, double *w)
{
    static const double target[] = {0.25, 4, 0, 1};
    struct cascade_eval_ascent_opts o = {
        .grid = GRID, .n_grid = N_GRID, .max_sweeps = 3, .seed = seed};
    struct cascade_eval_ascent_result r;
    memset(q, 0, sizeof *q);
    q->target = target;
    for (size_t i = 0; i < 4; i++)
        w[i] = 1;
    assert_int_equal(cascade_eval_coord_ascent(quad_value, q, w, 4, &o, &r), 0);
}

static void test_ascent_seeded(void **state)
{
    (void)state;
    static struct quad a, b;
    double wa[4], wb[4];
    run_traced(5, &a, wa);
    run_traced(5, &b, wb);
    assert_int_equal(a.calls, b.calls);
    assert_memory_equal(a.trace, b.trace, a.calls * sizeof a.trace[0]);
    assert_memory_equal(wa, wb, sizeof wa);
    /* The seed orders the coordinates: some other seed visits them differently
     * (same optimum, different trace). */
    bool differs = false;
    for (uint64_t seed = 6; seed < 12 && !differs; seed++) {
        run_traced(seed, &b, wb);
        assert_memory_equal(wa, wb, sizeof wa);
        differs = memcmp(a.trace, b.trace, a.calls * sizeof a.trace[0]) != 0;
    }
    assert_true(differs);
}

static void test_grid_parse(void **state)
{
    (void)state;
    double grid[CASCADE_EVAL_MAX_GRID];
    size_t n;
    char err[256];
    assert_int_equal(cascade_eval_grid_parse("0,0.25,0.5,1,2,4", grid, &n, err, sizeof err), 0);
    assert_int_equal(n, 6);
    assert_true(grid[1] == 0.25 && grid[5] == 4);
    assert_int_equal(cascade_eval_grid_parse("1,0.5", grid, &n, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "ascending"));
    assert_int_equal(cascade_eval_grid_parse("-1", grid, &n, err, sizeof err), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_grid_parse("", grid, &n, err, sizeof err), CASCADE_EINVAL);
}

/* The fragment: weights replaced in the config's objects, weight 0 disabled,
 * except the exploration channel while exploration is on. */
static json_t *fragment_of(const char *dir, const char *config_text,
                           const struct cascade_eval_tune_result *tr, const char **kept)
{
    char path[512], err[256];
    json_error_t jerr;
    cascade_config *cfg = cascade_config_parse(config_text, "cfg", err, sizeof err);
    assert_non_null(cfg);
    snprintf(path, sizeof path, "%s/frag.json", dir);
    assert_int_equal(cascade_eval_tune_write_fragment(path, tr, cfg, kept, err, sizeof err), 0);
    cascade_config_destroy(cfg);
    json_t *doc = json_load_file(path, 0, &jerr);
    assert_non_null(doc);
    return doc;
}

static json_t *fragment_channel_named(json_t *doc, const char *name)
{
    json_t *list = json_object_get(json_object_get(doc, "orchestrator"), "channels"), *c;
    size_t i;
    json_array_foreach(list, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    return NULL;
}

static void test_weights_fragment(void **state)
{
    (void)state;
    char dir[256];
    const char *kept = NULL;
    struct cascade_eval_tune_result tr = {.n = 4};
    const struct cascade_eval_tuned_channel ch[] = {
        {.name = "itemcf", .start = 2, .weight = 4, .quota = 500, .in_base = true, .signal = true},
        {.name = "hot", .start = 0.5, .weight = 0, .quota = 300, .in_base = true, .signal = true},
        {.name = "new", .start = 0.3, .weight = 0, .quota = 100, .in_base = true, .signal = true},
        {.name = "interest", .start = 0, .weight = 0, .quota = 200, .signal = true},
    };
    memcpy(tr.ch, ch, sizeof ch);
    assert_non_null(test_tempdir(dir, sizeof dir));
    const char *cfg = "{\"orchestrator\": {\"channels\": [{\"name\": \"itemcf\", \"weight\": 2, "
                      "\"quota\": 500, \"timeout_ms\": 250, \"endpoint\": \"recall\"}]}}";
    json_t *doc = fragment_of(dir, cfg, &tr, &kept);
    json_t *itemcf = fragment_channel_named(doc, "itemcf"),
           *hot = fragment_channel_named(doc, "hot"), *new_ = fragment_channel_named(doc, "new");
    assert_non_null(itemcf);
    assert_true(json_real_value(json_object_get(itemcf, "weight")) == 4);
    assert_int_equal(json_integer_value(json_object_get(itemcf, "timeout_ms")), 250);
    assert_true(json_is_false(json_object_get(hot, "enabled")));
    assert_null(json_object_get(new_, "enabled")); /* exploration needs its hits */
    assert_true(json_real_value(json_object_get(new_, "weight")) == 0);
    assert_null(fragment_channel_named(doc, "interest")); /* never in the mix */
    assert_non_null(kept);
    assert_string_equal(kept, "new");
    json_decref(doc);

    /* Exploration off: new is disabled like any channel at weight 0. */
    doc = fragment_of(dir, "{\"orchestrator\": {\"exploration\": {\"new_share\": 0}}}", &tr, &kept);
    assert_true(json_is_false(json_object_get(fragment_channel_named(doc, "new"), "enabled")));
    assert_null(kept);
    json_decref(doc);
    test_rmdir(dir);
}

/* ---- on a generated world, with Redis ---- */

static int setup(void **state)
{
    static struct world w;
    if (world_start(&w, 300, 60000, 12) != 0)
        return -1;
    *state = &w;
    return 0;
}

static int teardown(void **state)
{
    world_stop(*state);
    return 0;
}

static bool in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Position of dataset user u among the split's users, or -1. */
static long split_pos(const struct cascade_eval_split *s, uint32_t u)
{
    for (size_t k = 0; k < s->n_users; k++)
        if (s->users[k] == u)
            return (long)k;
    return -1;
}

/* No interaction of user u with any of items[0..n) in ds, and no event of u
 * after `until`. */
static void assert_absent(const cascade_dataset *ds, const struct cascade_behaviour_weights *bw,
                          uint32_t u, const uint32_t *items, size_t n, int64_t until)
{
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (e->user != u)
            continue;
        assert_true(e->ts <= until);
        if (bw->w[e->type] > 0)
            assert_false(in_sorted(items, n, e->item));
    }
}

/* Neither the user's consumed set nor its last-n list in namespace ns holds
 * one of items[0..n). */
static void assert_not_in_redis(cascade_redis *r, const char *ns, const cascade_dataset *ds,
                                uint32_t u, const uint32_t *items, size_t n)
{
    const char *uid = ds->users[u].id;
    uint64_t ids[512];
    bool consumed[512];
    static cascade_v1_Interaction lastn[256];
    size_t count = 0;
    assert_true(n <= 512);
    for (size_t i = 0; i < n; i++)
        ids[i] = ds->items[items[i]].id;
    assert_int_equal(cascade_store_consumed(r, ns, uid, ids, n, consumed), 0);
    for (size_t i = 0; i < n; i++)
        assert_false(consumed[i]);
    assert_int_equal(cascade_store_get_lastn(r, ns, uid, 256, lastn, &count), 0);
    for (size_t j = 0; j < count; j++)
        for (size_t i = 0; i < n; i++)
            assert_true(lastn[j].item_id != ids[i]);
}

static void test_nested_split_no_leak(void **state)
{
    struct world *w = *state;
    struct cascade_eval_split_opts so;
    struct cascade_eval_split outer, inner;
    struct cascade_eval_build_summary bs;
    char err[1024] = "";
    cascade_eval_split_defaults(&so);
    so.seed = 4;
    assert_int_equal(cascade_eval_split_run(w->ds, &so, &outer, err, sizeof err), 0);
    assert_int_equal(cascade_eval_split_validation(&outer, &so, 0.25, &inner, err, sizeof err), 0);
    assert_true(outer.n_users > 50);
    assert_true(inner.n_users > 50);
    assert_true(inner.train_events < outer.train_events);
    assert_int_equal(inner.train_events + inner.dropped_events, outer.train_events);

    size_t checked_test = 0, checked_valid = 0;
    for (size_t k = 0; k < outer.n_users; k++) {
        uint32_t u = outer.users[k];
        const uint32_t *test = outer.test + outer.test_off[k];
        size_t n_test = outer.test_off[k + 1] - outer.test_off[k];
        /* Test items: in neither train part, and the validation build sees
         * nothing of the user after its test split time. */
        assert_absent(outer.train, &so.weights, u, test, n_test, outer.split_ts[k]);
        assert_absent(inner.train, &so.weights, u, test, n_test, outer.split_ts[k]);
        checked_test += n_test;
        long v = split_pos(&inner, u);
        if (v < 0)
            continue;
        /* Validation items: some of the user's train items, never a test item,
         * and absent from the validation train part. */
        const uint32_t *valid = inner.test + inner.test_off[v];
        size_t n_valid = inner.test_off[v + 1] - inner.test_off[v];
        assert_true(n_valid >= 1);
        for (size_t i = 0; i < n_valid; i++) {
            assert_true(in_sorted(outer.seen + outer.seen_off[k],
                                  outer.seen_off[k + 1] - outer.seen_off[k], valid[i]));
            assert_false(in_sorted(test, n_test, valid[i]));
        }
        assert_true(inner.split_ts[v] <= outer.split_ts[k]);
        assert_absent(inner.train, &so.weights, u, valid, n_valid, inner.split_ts[v]);
        checked_valid += n_valid;
    }
    assert_true(checked_test > 100 && checked_valid > 100);

    /* The validation build: no user's consumed set or last-n list holds one of
     * its test or validation items. */
    struct cascade_eval_build_opts bo = {.ns = "nest", .threads = 2, .quiet = true};
    int rc = cascade_eval_build_run(inner.train, w->redis.conn, &bo, &bs, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "build: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(bs.as_of, cascade_dataset_last_ts(inner.train));
    for (size_t k = 0; k < outer.n_users; k++) {
        uint32_t u = outer.users[k];
        assert_not_in_redis(w->redis.conn, "nest", inner.train, u, outer.test + outer.test_off[k],
                            outer.test_off[k + 1] - outer.test_off[k]);
        long v = split_pos(&inner, u);
        if (v >= 0)
            assert_not_in_redis(w->redis.conn, "nest", inner.train, u,
                                inner.test + inner.test_off[v],
                                inner.test_off[v + 1] - inner.test_off[v]);
    }
    cascade_eval_split_free(&inner);
    cascade_eval_split_free(&outer);
}

/* Kept lists merged afterwards rank exactly as the loop's merged row, and
 * tuning on them never ends below its start. */
static void test_lists_merge_and_tune(void **state)
{
    struct world *w = *state;
    struct cascade_eval_split_opts so;
    struct cascade_eval_split split;
    struct cascade_eval_build_summary bs;
    struct cascade_eval_run_opts ro;
    struct cascade_eval_result res;
    struct cascade_eval_lists lists = {0};
    struct cascade_eval_acc acc;
    char err[1024] = "";
    cascade_eval_split_defaults(&so);
    assert_int_equal(cascade_eval_split_run(w->ds, &so, &split, err, sizeof err), 0);
    struct cascade_eval_build_opts bo = {.ns = "lists", .threads = 2, .quiet = true};
    assert_int_equal(cascade_eval_build_run(split.train, w->redis.conn, &bo, &bs, err, sizeof err),
                     0);
    cascade_recall *recall =
        cascade_recall_create(NULL, w->redis.pool, "lists", NULL, err, sizeof err);
    assert_non_null(recall);
    memset(&ro, 0, sizeof ro);
    ro.quiet = true;
    ro.max_quota = 5000;
    ro.request_time_s = bs.as_of;
    ro.capture = &lists;
    assert_int_equal(cascade_eval_ks_parse(&ro, "10,50", err, sizeof err), 0);
    assert_int_equal(
        cascade_eval_merge_parse(&ro, "hot=0.5:30,itemcf=2,swing=1:40", 50, err, sizeof err), 0);
    assert_int_equal(cascade_eval_run(recall, &split, &ro, &res, err, sizeof err), 0);
    assert_int_equal(lists.n_lists, split.n_users * 3);

    int merged = cascade_eval_result_row(&res, "merged");
    assert_true(merged == 3);
    assert_int_equal(cascade_eval_acc_init(&acc, ro.ks, ro.n_ks, split.train->n_items), 0);
    assert_int_equal(
        cascade_eval_lists_merge(&lists, ro.merge, ro.n_merge, 50, &acc, err, sizeof err), 0);
    const struct cascade_eval_acc *m = &res.acc[merged];
    assert_int_equal(acc.users, m->users);
    assert_int_equal(acc.candidates, m->candidates);
    for (size_t i = 0; i < ro.n_ks; i++) {
        assert_true(acc.recall[i] == m->recall[i]);
        assert_true(acc.ndcg[i] == m->ndcg[i]);
    }
    assert_memory_equal(acc.best_rank, m->best_rank, split.train->n_items * sizeof *acc.best_rank);
    cascade_eval_acc_free(&acc);

    /* A merge channel that was not evaluated is an error that names it. */
    struct cascade_eval_merge_channel bad = {.name = "geo", .weight = 1, .quota = 10};
    assert_int_equal(cascade_eval_acc_init(&acc, ro.ks, ro.n_ks, split.train->n_items), 0);
    assert_int_equal(cascade_eval_lists_merge(&lists, &bad, 1, 50, &acc, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "geo"));
    cascade_eval_acc_free(&acc);

    /* Tuning from these weights: the objective never drops, and the chosen
     * merge is what the result says. */
    struct cascade_eval_tune_opts to = {.n_grid = N_GRID, .max_sweeps = 2, .seed = 1};
    struct cascade_eval_tune_result tr;
    struct cascade_eval_merge_channel chosen[CASCADE_EVAL_MAX_CHANNELS];
    memcpy(to.grid, GRID, sizeof GRID);
    assert_int_equal(cascade_eval_tune_weights(&lists, ro.ks, ro.n_ks, ro.merge, ro.n_merge, &to,
                                               &tr, err, sizeof err),
                     0);
    assert_int_equal(tr.n, 3);
    assert_string_equal(tr.ch[0].name, "hot");
    assert_true(tr.ch[0].start == 0.5 && tr.ch[0].quota == 30 && tr.ch[0].in_base);
    assert_true(tr.ascent.value >= tr.ascent.start_value);
    assert_true(tr.ascent.start_value > 0);
    size_t n = cascade_eval_tune_merge(&tr, chosen);
    size_t positive = 0;
    for (size_t i = 0; i < tr.n; i++) {
        assert_true(tr.ch[i].signal);
        positive += tr.ch[i].weight > 0;
    }
    assert_int_equal(n, positive);

    cascade_eval_lists_free(&lists);
    cascade_eval_result_free(&res);
    cascade_recall_destroy(recall);
    cascade_eval_split_free(&split);
}

/* Run cascade_eval_main with the given flags after the fixed ones. */
static int eval_cli(struct world *w, const char *json, int argc_extra, ...)
{
    char port[32];
    const char *argv[48];
    int argc = 0;
    snprintf(port, sizeof port, "127.0.0.1:%d", w->redis.server.port);
    argv[argc++] = "cascade-eval";
    argv[argc++] = "--data";
    argv[argc++] = w->dir;
    argv[argc++] = "--redis";
    argv[argc++] = port;
    argv[argc++] = "--json";
    argv[argc++] = json;
    argv[argc++] = "--quiet";
    va_list ap;
    va_start(ap, argc_extra);
    for (int i = 0; i < argc_extra; i++)
        argv[argc++] = va_arg(ap, const char *);
    va_end(ap);
    argv[argc] = NULL;
    return cascade_eval_main(argc, (char **)argv);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static double row_recall(json_t *doc, const char *name, const char *k)
{
    json_t *rows = json_object_get(doc, "rows"), *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
            return json_real_value(json_object_get(json_object_get(row, "recall"), k));
    }
    fail_msg("no row %s", name);
    return -1;
}

static void test_command_line_tuning(void **state)
{
    struct world *w = *state;
    char cfg_path[512], json_path[512], frag1[512], frag2[512], json2[512], err[512];
    json_error_t jerr;
    snprintf(cfg_path, sizeof cfg_path, "%s/cfg.json", w->dir);
    snprintf(json_path, sizeof json_path, "%s/tune1.json", w->dir);
    snprintf(json2, sizeof json2, "%s/tune2.json", w->dir);
    snprintf(frag1, sizeof frag1, "%s/w1.json", w->dir);
    snprintf(frag2, sizeof frag2, "%s/w2.json", w->dir);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs("{\"orchestrator\": {\"channels\": ["
          "{\"name\": \"itemcf\", \"weight\": 2, \"quota\": 100, \"timeout_ms\": 250},"
          "{\"name\": \"hot\", \"weight\": 1, \"quota\": 80},"
          "{\"name\": \"demo_hot\", \"weight\": 1, \"quota\": 80}]}}",
          f);
    fclose(f);

    assert_int_equal(eval_cli(w, json_path, 2, "--weights-out", frag1), CASCADE_EVAL_EXIT_USAGE);
    assert_int_equal(eval_cli(w, json_path, 3, "--tune-weights", "--tune-grid", "2,1"),
                     CASCADE_EVAL_EXIT_USAGE);

    assert_int_equal(eval_cli(w, json_path, 13, "--config", cfg_path, "--channels",
                              "hot,demo_hot,itemcf,swing", "--namespace", "t1", "--tune-weights",
                              "--weights-out", frag1, "--seed", "3", "--max-users", "80"),
                     CASCADE_EVAL_EXIT_OK);
    /* The same run into other namespaces: the same weights, byte for byte. */
    assert_int_equal(eval_cli(w, json2, 13, "--config", cfg_path, "--channels",
                              "hot,demo_hot,itemcf,swing", "--namespace", "t2", "--tune-weights",
                              "--weights-out", frag2, "--seed", "3", "--max-users", "80"),
                     CASCADE_EVAL_EXIT_OK);
    char *a = slurp(frag1), *b = slurp(frag2);
    assert_string_equal(a, b);
    free(a);
    free(b);

    json_t *doc = json_load_file(json_path, 0, &jerr), *doc2 = json_load_file(json2, 0, &jerr);
    assert_non_null(doc);
    assert_non_null(doc2);
    json_t *t = json_object_get(doc, "tuning");
    assert_true(json_is_object(t));
    assert_true(json_real_value(json_object_get(t, "objective_after")) >=
                json_real_value(json_object_get(t, "objective_before")));
    assert_true(json_equal(json_object_get(t, "channels"),
                           json_object_get(json_object_get(doc2, "tuning"), "channels")));
    assert_true(json_integer_value(json_object_get(t, "valid_users")) > 0);
    /* The swing channel was not in the config's mix: it starts at 0. */
    json_t *chs = json_object_get(t, "channels");
    assert_int_equal(json_array_size(chs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(chs, 3), "name")),
                        "swing");
    assert_true(json_real_value(json_object_get(json_array_get(chs, 3), "start")) == 0);
    assert_true(row_recall(doc, "merged", "100") > 0);
    assert_true(row_recall(doc, "merged", "100") == row_recall(doc2, "merged", "100"));

    /* merged_base is the untuned merge: the same number a run without
     * --tune-weights reports for "merged" (reusing the test namespace). */
    double base = row_recall(doc, "merged_base", "100");
    assert_int_equal(eval_cli(w, json2, 11, "--config", cfg_path, "--channels",
                              "hot,demo_hot,itemcf,swing", "--namespace", "t1", "--skip-build",
                              "--seed", "3", "--max-users", "80"),
                     CASCADE_EVAL_EXIT_OK);
    json_decref(doc2);
    doc2 = json_load_file(json2, 0, &jerr);
    assert_non_null(doc2);
    assert_true(row_recall(doc2, "merged", "100") == base);
    assert_true(json_is_null(json_object_get(doc2, "tuning")));

    /* The fragment is an orchestrator config: the chosen weights, the
     * config's other fields kept, channels at weight 0 disabled. */
    cascade_config *frag = cascade_config_load(frag1, err, sizeof err);
    assert_non_null(frag);
    struct cascade_orch_config *oc = calloc(1, sizeof *oc);
    assert_non_null(oc);
    assert_int_equal(cascade_orch_config_parse(frag, oc, err, sizeof err), 0);
    size_t enabled = 0;
    for (size_t i = 0; i < json_array_size(chs); i++) {
        json_t *c = json_array_get(chs, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        double weight = json_real_value(json_object_get(c, "weight"));
        const struct cascade_orch_channel_cfg *cc = cascade_orch_config_channel(oc, name);
        if (weight > 0) {
            assert_non_null(cc);
            assert_true(cc->weight == weight);
            enabled++;
        } else {
            assert_null(cc);
        }
    }
    assert_int_equal(oc->n_channels, enabled);
    free(oc);
    json_t *fj = json_load_file(frag1, 0, &jerr);
    assert_non_null(fj);
    json_t *first =
        json_array_get(json_object_get(json_object_get(fj, "orchestrator"), "channels"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "itemcf");
    assert_int_equal(json_integer_value(json_object_get(first, "timeout_ms")), 250);
    assert_int_equal(json_integer_value(json_object_get(first, "quota")), 100);
    json_decref(fj);
    cascade_config_destroy(frag);
    json_decref(doc);
    json_decref(doc2);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_ascent_finds_grid_optimum),
        cmocka_unit_test(test_ascent_coupled),
        cmocka_unit_test(test_ascent_ties_and_errors),
        cmocka_unit_test(test_ascent_seeded),
        cmocka_unit_test(test_grid_parse),
        cmocka_unit_test(test_weights_fragment),
    };
    const struct CMUnitTest redis[] = {
        cmocka_unit_test(test_nested_split_no_leak),
        cmocka_unit_test(test_lists_merge_and_tune),
        cmocka_unit_test(test_command_line_tuning),
    };
    int failed = cmocka_run_group_tests_name("ascent", pure, NULL, NULL);
    return failed + cmocka_run_group_tests_name("world", redis, setup, teardown);
}
