/* Unit tests for common/ml/gbdt.c: xgboost's JSON trees read into flat nodes,
 * the split rule (x < threshold goes left, NaN follows the default branch),
 * base score plus one leaf per tree, save/load round trips and damaged input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gbdt.h"
#include "support.h"

/* Two trees over 3 features, base score 0.5:
 *   tree 0: f0 < 1.0 ? (f2 < -2 ? 0.1 : 0.2) : 0.3, missing f0 goes right, missing f2 left
 *   tree 1: f1 < 0.0 ? -1.0 : 1.0, missing goes left */
static const char *const two_trees =
    "{\"learner\": {\"learner_model_param\": {\"base_score\": \"5E-1\", \"num_feature\": \"3\"},"
    " \"gradient_booster\": {\"model\": {\"trees\": ["
    "  {\"left_children\": [1, 3, -1, -1, -1], \"right_children\": [2, 4, -1, -1, -1],"
    "   \"split_indices\": [0, 2, 0, 0, 0], \"split_conditions\": [1.0, -2.0, 0.3, 0.1, 0.2],"
    "   \"default_left\": [0, 1, 0, 0, 0]},"
    "  {\"left_children\": [1, -1, -1], \"right_children\": [2, -1, -1],"
    "   \"split_indices\": [1, 0, 0], \"split_conditions\": [0.0, -1.0, 1.0],"
    "   \"default_left\": [1, 0, 0]}"
    "]}}}}";

/* The same trees walked by hand. */
static double by_hand(const float *x)
{
    double t0, t1;
    if (isnan(x[0]) || !(x[0] < 1.0f))
        t0 = 0.3;
    else if (isnan(x[2]) || x[2] < -2.0f)
        t0 = 0.1;
    else
        t0 = 0.2;
    t1 = isnan(x[1]) || x[1] < 0.0f ? -1.0 : 1.0;
    return 0.5 + t0 + t1;
}

static const float rows[][3] = {
    {0.0f, -1.0f, -3.0f}, {0.0f, 1.0f, 5.0f}, {2.0f, 0.5f, 0.0f}, {1.0f, 0.0f, -2.0f},
    {NAN, NAN, NAN},      {0.5f, NAN, 0.0f},  {NAN, 3.0f, -9.0f}, {-4.0f, -0.1f, NAN},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static cascade_gbdt *load_two_trees(void)
{
    char err[256] = "";
    cascade_gbdt *m =
        cascade_gbdt_from_xgboost_json(two_trees, strlen(two_trees), 3, err, sizeof err);
    if (!m)
        fail_msg("from_xgboost_json: %s", err);
    return m;
}

static void test_predict_follows_xgboost_split_rules(void **state)
{
    (void)state;
    cascade_gbdt *m = load_two_trees();
    float out[N_ROWS];
    assert_int_equal(cascade_gbdt_n_trees(m), 2);
    assert_int_equal(cascade_gbdt_n_features(m), 3);
    cascade_gbdt_predict(m, &rows[0][0], N_ROWS, out);
    for (size_t i = 0; i < N_ROWS; i++)
        assert_float_equal(out[i], by_hand(rows[i]), 1e-6);
    cascade_gbdt_destroy(m);
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    char dir[256], path[512], err[256] = "";
    test_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cascade_gbdt *m = load_two_trees();
    const char *keys[] = {"features"}, *vals[] = {"test-v1"};
    assert_int_equal(cascade_gbdt_save(m, path, keys, vals, 1, err, sizeof err), 0);
    cascade_gbdt *back = cascade_gbdt_load(path, err, sizeof err);
    assert_non_null(back);
    assert_string_equal(cascade_gbdt_meta(back, "features"), "test-v1");
    float a[N_ROWS], b[N_ROWS];
    cascade_gbdt_predict(m, &rows[0][0], N_ROWS, a);
    cascade_gbdt_predict(back, &rows[0][0], N_ROWS, b);
    assert_memory_equal(a, b, sizeof a);
    cascade_gbdt_destroy(m);
    cascade_gbdt_destroy(back);
    test_rmdir(dir);
}

static void test_bad_json_is_an_error(void **state)
{
    (void)state;
    char err[256] = "";
    /* A child pointing outside its tree. */
    const char *bad = "{\"learner\": {\"gradient_booster\": {\"model\": {\"trees\": ["
                      "  {\"left_children\": [5, -1, -1], \"right_children\": [2, -1, -1],"
                      "   \"split_indices\": [0, 0, 0], \"split_conditions\": [1.0, 1.0, 2.0],"
                      "   \"default_left\": [0, 0, 0]}]}}}}";
    assert_null(cascade_gbdt_from_xgboost_json(bad, strlen(bad), 3, err, sizeof err));
    assert_non_null(strstr(err, "out of range"));
    /* A split on a feature the model does not take. */
    assert_null(cascade_gbdt_from_xgboost_json(two_trees, strlen(two_trees), 2, err, sizeof err));
    assert_non_null(strstr(err, "feature 2"));
    assert_null(cascade_gbdt_from_xgboost_json("{", 1, 3, err, sizeof err));
    assert_null(cascade_gbdt_from_xgboost_json("{}", 2, 3, err, sizeof err));
    assert_non_null(strstr(err, "trees"));
}

static void test_damaged_file_is_an_error(void **state)
{
    (void)state;
    char dir[256], path[512], err[256] = "";
    test_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cascade_gbdt *m = load_two_trees();
    assert_int_equal(cascade_gbdt_save(m, path, NULL, NULL, 0, err, sizeof err), 0);
    cascade_gbdt_destroy(m);
    /* Overwrite node_left with an index past the end: the loader must refuse. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint64_t hlen;
    assert_int_equal(fread(&hlen, 8, 1, f), 1);
    char *header = calloc(1, hlen + 1);
    assert_int_equal(fread(header, 1, hlen, f), hlen);
    char *at = strstr(header, "\"node_left\"");
    assert_non_null(at);
    at = strstr(at, "\"data_offsets\":[");
    assert_non_null(at);
    long off = strtol(at + strlen("\"data_offsets\":["), NULL, 10);
    float huge = 1e6f;
    fseek(f, (long)(8 + hlen) + off, SEEK_SET);
    assert_int_equal(fwrite(&huge, sizeof huge, 1, f), 1);
    fclose(f);
    free(header);
    assert_null(cascade_gbdt_load(path, err, sizeof err));
    assert_non_null(strstr(err, "damaged"));
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_follows_xgboost_split_rules),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_bad_json_is_an_error),
        cmocka_unit_test(test_damaged_file_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
