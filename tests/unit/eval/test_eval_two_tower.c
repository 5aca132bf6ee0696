/* The two_tower channel in the evaluation, on a generated world (strong
 * category structure) against a private redis-server: the build trains the
 * model on the split's train part only (its positives are exactly the train
 * part's distinct interacted pairs), the Recall stage serves it from the
 * build's model directory, and its recall@50 is well above that of a random
 * list and its scores are cosines (a channel returning garbage fails). Then
 * the command line: the two_tower row and the model's JSON summary,
 * --skip-build reusing the model only for the same --two-tower-* settings,
 * and --tune-weights training a validation model and tuning the channel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "dataset.h"
#include "error.h"
#include "eval_build.h"
#include "eval_channels.h"
#include "eval_cli.h"
#include "eval_lists.h"
#include "eval_run.h"
#include "eval_split.h"
#include "eval_world.h"
#include "events.h"
#include "recall.h"
#include "support.h"

static int setup(void **state)
{
    return world_group_setup(state, 600, 40000, 11);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Distinct (user, item) pairs with an interest event in ds. */
static size_t interest_pairs(const cascade_dataset *ds)
{
    uint64_t *keys = malloc((ds->n_events + 1) * sizeof *keys);
    size_t n = 0, distinct = 0;
    assert_non_null(keys);
    for (size_t e = 0; e < ds->n_events; e++)
        if (cascade_event_interest_weight(ds->events[e].type) > 0)
            keys[n++] = (uint64_t)ds->events[e].user << 32 | ds->events[e].item;
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || keys[i] != keys[i - 1];
    free(keys);
    return distinct;
}

static void test_channel_learns(void **state)
{
    struct world *w = *state;
    struct cascade_eval_split_opts so;
    struct cascade_eval_split split;
    struct cascade_eval_build_summary bs;
    struct cascade_eval_run_opts ro;
    struct cascade_eval_result res;
    struct cascade_eval_lists lists = {0};
    struct cascade_train_twotower_opts to;
    char err[1024] = "", dir[512], set[600];
    cascade_eval_split_defaults(&so);
    assert_int_equal(cascade_eval_split_run(w->ds, &so, &split, err, sizeof err), 0);
    snprintf(dir, sizeof dir, "%s/two-tower", w->dir);
    cascade_train_twotower_defaults(&to);
    to.epochs = 20; /* few examples: more passes */
    struct cascade_eval_build_opts bo = {
        .ns = "tt", .threads = 2, .quiet = true, .two_tower_dir = dir, .two_tower = &to};
    int rc = cascade_eval_build_run(split.train, w->redis.conn, &bo, &bs, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "build: %s\n", err);
    assert_int_equal(rc, 0);
    /* Trained on every train interaction and nothing held out. */
    assert_int_equal(bs.two_tower_examples, interest_pairs(split.train));
    assert_true(bs.two_tower_examples < interest_pairs(w->ds));
    assert_true(bs.two_tower_version[0] != '\0');

    cascade_config *cfg = cascade_config_empty();
    assert_non_null(cfg);
    snprintf(set, sizeof set, "recall.channels.two_tower.model_dir=%s", dir);
    assert_int_equal(cascade_config_set(cfg, set, err, sizeof err), 0);
    cascade_recall *recall = cascade_recall_create(cfg, w->redis.pool, "tt", NULL, err, sizeof err);
    assert_non_null(recall);
    memset(&ro, 0, sizeof ro);
    ro.quiet = true;
    ro.max_quota = 5000;
    ro.request_time_s = bs.as_of;
    ro.capture = &lists;
    assert_int_equal(cascade_eval_ks_parse(&ro, "10,50,100", err, sizeof err), 0);
    assert_int_equal(cascade_eval_channels_parse(&ro, "itemcf,two_tower", err, sizeof err), 0);
    cascade_eval_merge_equal(&ro, 100);
    rc = cascade_eval_run(recall, &split, &ro, &res, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "eval: %s\n", err);
    assert_int_equal(rc, 0);

    int tt = cascade_eval_result_row(&res, "two_tower"),
        merged = cascade_eval_result_row(&res, "merged");
    assert_true(tt == 1 && merged == 2);
    size_t users = split.n_users;
    /* Every user gets a full list: the model covers the whole catalogue. */
    assert_int_equal(res.acc[tt].candidates, users * 100);
    double base = world_random_recall(&split, 50), tt50 = res.acc[tt].recall[1] / (double)users,
           cf50 = res.acc[0].recall[1] / (double)users,
           merged50 = res.acc[merged].recall[1] / (double)users;
    double base10 = world_random_recall(&split, 10), tt10 = res.acc[tt].recall[0] / (double)users;
    fprintf(stderr,
            "recall@50: two_tower %.4f, itemcf %.4f, merged %.4f, random %.4f; recall@10: "
            "two_tower %.4f, random %.4f\n",
            tt50, cf50, merged50, base, tt10, base10);
    assert_true(tt50 > 1.5 * base);
    assert_true(tt10 > 2.0 * base10);
    /* The channel's scores are cosines, best first. */
    int c = cascade_eval_lists_channel(&lists, "two_tower");
    assert_true(c >= 0);
    for (size_t k = 0; k < users; k++) {
        size_t i = k * lists.n_channels + (size_t)c;
        for (size_t j = lists.off[i]; j < lists.off[i + 1]; j++) {
            assert_true(lists.scores[j] >= -1.0001f && lists.scores[j] <= 1.0001f);
            if (j > lists.off[i])
                assert_true(lists.scores[j] <= lists.scores[j - 1] + 1e-6f);
        }
    }

    cascade_eval_lists_free(&lists);
    cascade_eval_result_free(&res);
    cascade_recall_destroy(recall);
    cascade_config_destroy(cfg);
    cascade_eval_split_free(&split);
}

/* Run cascade_eval_main on the world with the given flags after the fixed ones. */
static int eval_cli(struct world *w, const char *json, int argc_extra, ...)
{
    char port[32], dir[512];
    snprintf(port, sizeof port, "127.0.0.1:%d", w->redis.server.port);
    snprintf(dir, sizeof dir, "%s/models", w->dir);
    const char *fixed[] = {"cascade-eval",    "--data", w->dir,        "--redis", port,
                           "--namespace",     "ttcli",  "--json",      json,      "--quiet",
                           "--two-tower-dir", dir,      "--max-users", "60",      "--channels",
                           "two_tower,hot"};
    va_list ap;
    va_start(ap, argc_extra);
    int rc = world_eval_main(fixed, sizeof fixed / sizeof fixed[0], argc_extra, ap);
    va_end(ap);
    return rc;
}

static void test_command_line(void **state)
{
    struct world *w = *state;
    char json_path[512];
    json_error_t jerr;
    snprintf(json_path, sizeof json_path, "%s/eval-tt.json", w->dir);
    assert_int_equal(eval_cli(w, json_path, 2, "--two-tower-epochs", "2"), CASCADE_EVAL_EXIT_OK);
    json_t *doc = json_load_file(json_path, 0, &jerr);
    assert_non_null(doc);
    json_t *row = json_array_get(json_object_get(doc, "rows"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "name")), "two_tower");
    double r100 = json_real_value(json_object_get(json_object_get(row, "recall"), "100"));
    assert_true(r100 > 0 && r100 <= 1);
    json_t *tt = json_object_get(json_object_get(doc, "build"), "two_tower");
    assert_non_null(tt);
    assert_true(json_integer_value(json_object_get(tt, "examples")) > 0);
    json_decref(doc);

    /* The model is reused with the same settings, and only then. */
    assert_int_equal(eval_cli(w, json_path, 3, "--two-tower-epochs", "2", "--skip-build"),
                     CASCADE_EVAL_EXIT_OK);
    assert_int_equal(eval_cli(w, json_path, 3, "--two-tower-epochs", "3", "--skip-build"),
                     CASCADE_EVAL_EXIT_FAILURE);
    assert_int_equal(eval_cli(w, json_path, 2, "--two-tower-epochs", "0"), CASCADE_EVAL_EXIT_USAGE);

    /* --tune-weights: the validation build trains its own model, and the
     * two-tower is one of the tuned channels, with candidates. */
    char latest[600];
    assert_int_equal(eval_cli(w, json_path, 3, "--two-tower-epochs", "2", "--tune-weights"),
                     CASCADE_EVAL_EXIT_OK);
    snprintf(latest, sizeof latest, "%s/models/ttcli-valid/two-tower.latest", w->dir);
    FILE *f = fopen(latest, "r");
    assert_non_null(f);
    fclose(f);
    doc = json_load_file(json_path, 0, &jerr);
    assert_non_null(doc);
    json_t *chs = json_object_get(json_object_get(doc, "tuning"), "channels");
    bool found = false;
    for (size_t i = 0; i < json_array_size(chs); i++) {
        json_t *c = json_array_get(chs, i);
        if (strcmp(json_string_value(json_object_get(c, "name")), "two_tower") == 0) {
            found = true;
            assert_true(json_is_true(json_object_get(c, "signal")));
        }
    }
    assert_true(found);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_learns),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, world_group_teardown);
}
