/* End-to-end tests of the evaluation on a generated world against a private
 * redis-server: the split's train part is built with the builder's jobs, the
 * channels run through the Recall stage's library call, and every metric of
 * every row (hot, itemcf, merged) is a finite value in [0, 1] with the
 * expected orderings; ItemCF beats the expected recall of a random list (the
 * world has strong category structure and every step is seeded, so the
 * numbers are deterministic). Then the command line in-process: the table
 * and JSON, --skip-build reuse and its mismatch check, the guard against
 * flushing a namespace cascade-eval did not build, and flag errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "eval_build.h"
#include "eval_channels.h"
#include "eval_cli.h"
#include "eval_run.h"
#include "eval_split.h"
#include "eval_world.h"
#include "recall.h"
#include "store.h"
#include "support.h"

static int setup(void **state)
{
    return world_group_setup(state, 600, 40000, 11);
}

static void check_row(const struct cascade_eval_result *res, size_t row, size_t users)
{
    const struct cascade_eval_acc *a = &res->acc[row];
    assert_int_equal(a->users, users);
    for (size_t i = 0; i < a->n_ks; i++) {
        double r = a->recall[i] / (double)users, h = a->hit[i] / (double)users,
               n = a->ndcg[i] / (double)users, c = cascade_eval_acc_coverage(a, a->ks[i]);
        assert_true(isfinite(r) && r >= 0 && r <= 1);
        assert_true(isfinite(h) && h >= 0 && h <= 1);
        assert_true(isfinite(n) && n >= 0 && n <= 1);
        assert_true(isfinite(c) && c >= 0 && c <= 1);
        assert_true(h >= r - 1e-12); /* per user, hit >= recall */
        if (i > 0) {
            assert_true(a->recall[i] >= a->recall[i - 1]);
            assert_true(a->hit[i] >= a->hit[i - 1]);
            assert_true(cascade_eval_acc_coverage(a, a->ks[i]) >=
                        cascade_eval_acc_coverage(a, a->ks[i - 1]));
        }
    }
    assert_true(a->candidates <= users * a->ks[a->n_ks - 1]);
}

static void test_end_to_end(void **state)
{
    struct world *w = *state;
    struct cascade_eval_split_opts so;
    struct cascade_eval_split split;
    struct cascade_eval_build_summary bs;
    struct cascade_eval_run_opts ro;
    struct cascade_eval_result res;
    char err[1024] = "";
    cascade_eval_split_defaults(&so);
    assert_int_equal(cascade_eval_split_run(w->ds, &so, &split, err, sizeof err), 0);
    assert_true(split.n_users > 100);

    struct cascade_eval_build_opts bo = {.ns = "ev", .threads = 2, .quiet = true};
    int rc = cascade_eval_build_run(split.train, w->redis.conn, &bo, &bs, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "build: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(bs.itemcf_lists > 0);
    assert_true(bs.ease_lists > 0);
    assert_int_equal(bs.as_of, cascade_dataset_last_ts(split.train));

    cascade_recall *recall =
        cascade_recall_create(NULL, w->redis.pool, "ev", NULL, err, sizeof err);
    assert_non_null(recall);
    memset(&ro, 0, sizeof ro);
    ro.quiet = true;
    ro.max_quota = 5000;
    ro.request_time_s = bs.as_of;
    assert_int_equal(cascade_eval_ks_parse(&ro, "10,50,100", err, sizeof err), 0);
    assert_int_equal(cascade_eval_channels_parse(&ro, "hot,itemcf", err, sizeof err), 0);
    cascade_eval_merge_equal(&ro, 100);
    rc = cascade_eval_run(recall, &split, &ro, &res, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "eval: %s\n", err);
    assert_int_equal(rc, 0);

    assert_int_equal(res.n_rows, 3);
    assert_string_equal(res.names[2], "merged");
    for (size_t row = 0; row < res.n_rows; row++)
        check_row(&res, row, split.n_users);
    int hot = cascade_eval_result_row(&res, "hot"),
        itemcf = cascade_eval_result_row(&res, "itemcf");
    assert_true(hot == 0 && itemcf == 1);
    assert_true(res.acc[hot].candidates > 0);
    assert_true(res.acc[itemcf].candidates > 0);
    assert_true(res.acc[2].candidates > 0);
    double base = world_random_recall(&split, 50);
    double item50 = res.acc[itemcf].recall[1] / (double)split.n_users;
    fprintf(stderr, "itemcf recall@50 %.4f, hot %.4f, merged %.4f, random %.4f\n", item50,
            res.acc[hot].recall[1] / (double)split.n_users,
            res.acc[2].recall[1] / (double)split.n_users, base);
    assert_true(item50 > 1.5 * base);

    cascade_eval_result_free(&res);
    cascade_recall_destroy(recall);
    cascade_eval_split_free(&split);
}

/* Run cascade_eval_main with the given flags after the fixed ones. */
static int eval_cli(struct world *w, const char *ns, const char *json, int argc_extra, ...)
{
    char port[32];
    snprintf(port, sizeof port, "127.0.0.1:%d", w->redis.server.port);
    const char *fixed[] = {"cascade-eval", "--data", w->dir,   "--redis", port,
                           "--namespace",  ns,       "--json", json,      "--quiet"};
    va_list ap;
    va_start(ap, argc_extra);
    int rc = world_eval_main(fixed, sizeof fixed / sizeof fixed[0], argc_extra, ap);
    va_end(ap);
    return rc;
}

static void test_command_line(void **state)
{
    struct world *w = *state;
    char json_path[512], key[CASCADE_KEY_MAX];
    json_error_t jerr;
    redisReply *rep = NULL;
    snprintf(json_path, sizeof json_path, "%s/eval.json", w->dir);

    assert_int_equal(eval_cli(w, "cli", json_path, 6, "--channels", "hot,itemcf", "--max-users",
                              "40", "--k", "20,50"),
                     CASCADE_EVAL_EXIT_USAGE); /* coverage K 100 is not among --k */
    assert_int_equal(
        eval_cli(w, "cli", json_path, 4, "--channels", "hot,itemcf", "--max-users", "40"),
        CASCADE_EVAL_EXIT_OK);
    json_t *doc = json_load_file(json_path, 0, &jerr);
    assert_non_null(doc);
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 2), "name")),
                        "merged");
    json_t *split = json_object_get(doc, "split");
    assert_int_equal(json_integer_value(json_object_get(split, "test_users")), 40);
    double r100 =
        json_real_value(json_object_get(json_object_get(json_array_get(rows, 1), "recall"), "100"));
    assert_true(r100 > 0 && r100 <= 1);
    json_decref(doc);

    /* The namespace is reused as long as the split is the same. */
    assert_int_equal(eval_cli(w, "cli", json_path, 5, "--channels", "hot,itemcf", "--max-users",
                              "40", "--skip-build"),
                     CASCADE_EVAL_EXIT_OK);
    assert_int_equal(eval_cli(w, "cli", json_path, 7, "--channels", "hot,itemcf", "--max-users",
                              "40", "--skip-build", "--seed", "2"),
                     CASCADE_EVAL_EXIT_FAILURE);

    /* A namespace someone else built is not flushed. */
    assert_int_equal(cascade_redis_command(w->redis.conn, &rep, "HSET %s source %s",
                                           cascade_key_meta(key, "prod"), "data/world"),
                     0);
    freeReplyObject(rep);
    assert_int_equal(eval_cli(w, "prod", json_path, 2, "--channels", "hot"),
                     CASCADE_EVAL_EXIT_FAILURE);
    assert_int_equal(cascade_redis_command(w->redis.conn, &rep, "HGET %s source", key), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "data/world");
    freeReplyObject(rep);

    assert_int_equal(eval_cli(w, "cli", json_path, 2, "--merge", "itemcf=x"),
                     CASCADE_EVAL_EXIT_USAGE);
    assert_int_equal(eval_cli(w, "cli", json_path, 2, "--test-frac", "1.5"),
                     CASCADE_EVAL_EXIT_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, world_group_teardown);
}
