/* Unit tests for common/ml/gbdt.c: xgboost's JSON trees read into flat nodes,
 * the split rule (x < threshold goes left, NaN follows the default branch),
 * base score plus one leaf per tree, save/load round trips and damaged input;
 * random ensembles scored bit for bit against a plain walk of their own, and
 * the batches (gbdt_batch.c: leaf masks, level walk; each ISA the CPU has)
 * against the one-row walk and leaves known by construction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gbdt.h"
#include "gbdt_internal.h"
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

/* ------------------------------------------------ random trees, plain walk */

/* A random ensemble kept as xgboost's arrays, walked here the plain way
 * (x < threshold left, NaN the default side, one leaf per tree summed in
 * tree order in a double from the base score) as the reference. */
#define MAX_TREES 40
#define MAX_NODES 1100
struct rnd_tree {
    int n, left[MAX_NODES], right[MAX_NODES], feature[MAX_NODES], default_left[MAX_NODES];
    float cond[MAX_NODES];
};

static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rnd_unit(uint64_t *s)
{
    return (double)(rnd_next(s) >> 11) / 9007199254740992.0;
}

/* Values that sit on thresholds, signed zeros, a denormal, the infinities
 * (1e39 turns into +inf as a float); rows also draw from these. */
static const double edges[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1e-40, -1e-40, 3.25, 1e39, -1e39};
#define N_EDGES (sizeof edges / sizeof edges[0])

/* Children are numbered after their parent, sometimes the right subtree
 * first, so a node's two children are not always side by side. */
static int rnd_grow(struct rnd_tree *t, int depth, int max_depth, int n_features, uint64_t *s)
{
    int i = t->n++;
    if (depth == max_depth || (depth > 0 && rnd_unit(s) < 0.3)) {
        t->left[i] = t->right[i] = -1;
        t->feature[i] = 0;
        t->default_left[i] = 0;
        t->cond[i] = (float)(rnd_unit(s) * 2 - 1);
        return i;
    }
    t->feature[i] = (int)(rnd_next(s) % (uint64_t)n_features);
    t->default_left[i] = (int)(rnd_next(s) & 1);
    t->cond[i] =
        rnd_unit(s) < 0.5 ? (float)edges[rnd_next(s) % N_EDGES] : (float)(rnd_unit(s) * 6 - 2);
    if (rnd_next(s) & 1) {
        t->left[i] = rnd_grow(t, depth + 1, max_depth, n_features, s);
        t->right[i] = rnd_grow(t, depth + 1, max_depth, n_features, s);
    } else {
        t->right[i] = rnd_grow(t, depth + 1, max_depth, n_features, s);
        t->left[i] = rnd_grow(t, depth + 1, max_depth, n_features, s);
    }
    return i;
}

static json_t *int_array(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* xgboost's JSON for the trees; an infinite threshold is written 1e39. */
static char *rnd_json(const struct rnd_tree *trees, int n_trees)
{
    json_t *arr = json_array();
    for (int t = 0; t < n_trees; t++) {
        const struct rnd_tree *tr = &trees[t];
        json_t *cond = json_array();
        for (int i = 0; i < tr->n; i++)
            json_array_append_new(cond, json_real(isinf(tr->cond[i]) ? copysign(1e39, tr->cond[i])
                                                                     : (double)tr->cond[i]));
        json_array_append_new(
            arr, json_pack("{s:o, s:o, s:o, s:o, s:o}", "left_children", int_array(tr->left, tr->n),
                           "right_children", int_array(tr->right, tr->n), "split_indices",
                           int_array(tr->feature, tr->n), "split_conditions", cond, "default_left",
                           int_array(tr->default_left, tr->n)));
    }
    json_t *root = json_pack("{s:{s:{s:s}, s:{s:{s:o}}}}", "learner", "learner_model_param",
                             "base_score", "0.25", "gradient_booster", "model", "trees", arr);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static float rnd_reference(const struct rnd_tree *trees, int n_trees, const float *x)
{
    double s = 0.25;
    for (int t = 0; t < n_trees; t++) {
        const struct rnd_tree *tr = &trees[t];
        int i = 0;
        while (tr->left[i] >= 0) {
            float v = x[tr->feature[i]];
            bool left = isnan(v) ? tr->default_left[i] != 0 : v < tr->cond[i];
            i = left ? tr->left[i] : tr->right[i];
        }
        s += tr->cond[i];
    }
    return (float)s;
}

static void rnd_rows(float *X, size_t n, int n_features, uint64_t *s)
{
    for (size_t i = 0; i < n * (size_t)n_features; i++) {
        double u = rnd_unit(s);
        X[i] = u < 0.25   ? NAN
               : u < 0.55 ? (float)edges[rnd_next(s) % N_EDGES]
                          : (float)(rnd_unit(s) * 6 - 2);
    }
}

/* A random ensemble of 1 to MAX_TREES trees, each up to max_depth deep,
 * into trees and as a model; *json (the caller frees) is its xgboost JSON. */
static cascade_gbdt *rnd_model(struct rnd_tree *trees, int *n_trees, int n_features, int max_depth,
                               uint64_t *seed, char **json)
{
    char err[256] = "";
    *n_trees = 1 + (int)(rnd_next(seed) % MAX_TREES);
    for (int t = 0; t < *n_trees; t++) {
        trees[t].n = 0;
        rnd_grow(&trees[t], 0, (int)(rnd_next(seed) % (uint64_t)(max_depth + 1)), n_features, seed);
    }
    *json = rnd_json(trees, *n_trees);
    cascade_gbdt *m =
        cascade_gbdt_from_xgboost_json(*json, strlen(*json), (size_t)n_features, err, sizeof err);
    if (!m)
        fail_msg("random model: %s", err);
    return m;
}

/* Random ensembles (1 to 40 trees up to max_depth deep, leaves at every
 * depth) over n_features; every row's score must equal the plain walk's bit for bit,
 * from the JSON and after a save/load round trip. */
static void check_random_ensembles(int n_features, int max_depth, uint64_t seed, int n_models)
{
    static struct rnd_tree trees[MAX_TREES];
    enum { N = 300 };
    float *X = malloc(sizeof(float) * N * (size_t)n_features), got[N], back_got[N], want[N];
    char dir[256], path[512], err[256] = "";
    assert_non_null(X);
    test_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.safetensors", dir);
    for (int k = 0; k < n_models; k++) {
        int n_trees;
        char *json;
        cascade_gbdt *m = rnd_model(trees, &n_trees, n_features, max_depth, &seed, &json);
        /* The file takes finite node values only: models with an infinite
         * threshold skip the round trip. */
        bool finite = true;
        for (int t = 0; t < n_trees; t++)
            for (int i = 0; i < trees[t].n; i++)
                finite = finite && isfinite(trees[t].cond[i]);
        assert_int_equal(cascade_gbdt_save(m, path, NULL, NULL, 0, err, sizeof err), 0);
        cascade_gbdt *back = finite ? cascade_gbdt_load(path, err, sizeof err) : NULL;
        if (finite && !back)
            fail_msg("model %d: %s", k, err);
        rnd_rows(X, N, n_features, &seed);
        cascade_gbdt_predict(m, X, N, got);
        cascade_gbdt_predict(back ? back : m, X, N, back_got);
        for (size_t i = 0; i < N; i++) {
            want[i] = rnd_reference(trees, n_trees, X + i * (size_t)n_features);
            if (memcmp(&got[i], &want[i], sizeof want[i]) != 0)
                fail_msg("model %d row %zu: %.9g, the plain walk %.9g", k, i, got[i], want[i]);
        }
        assert_memory_equal(back_got, want, sizeof want);
        cascade_gbdt_destroy(back);
        cascade_gbdt_destroy(m);
        free(json);
    }
    test_rmdir(dir);
    free(X);
}

static void test_random_trees_match_plain_walk(void **state)
{
    (void)state;
    check_random_ensembles(7, 9, 0x9e3779b97f4a7c15u, 60);
    check_random_ensembles(52, 9, 0xd1b54a32d192ed03u, 20);
    /* The depths the walk has straight-line code for. */
    check_random_ensembles(52, 4, 0xbf58476d1ce4e5b9u, 20);
    check_random_ensembles(52, 6, 0x94d049bb133111ebu, 20);
}

/* Past the widest row the fast walk takes, the plain walk serves. */
static void test_random_trees_wide_rows(void **state)
{
    (void)state;
    check_random_ensembles(300, 9, 0x2545f4914f6cdd1du, 5);
}

/* ------------------------------------------------ eight rows at a time */

/* The batch layout for isa must be there when the CPU has it and the model
 * fits (else a comparison would be of the one-row walk with itself): by
 * leaf masks for a model at most 4 deep and one 5 or 6 deep (16 rows a
 * block with AVX-512, 8 with AVX2), by the level walk 7 or 8 deep; a model
 * too deep has none. */
static void check_batch_method(cascade_gbdt *m, enum cascade_gbdt__isa isa, const char *what)
{
    assert_int_equal(cascade_gbdt__batch_build_isa(m, isa), 0);
    bool avx512 = isa == CASCADE_GBDT__AVX512;
    const char *want =
        isa == CASCADE_GBDT__SCALAR || m->walk_depth > CASCADE_GBDT__BATCH_MAX_DEPTH
            ? "one row at a time"
        : m->walk_depth <= 4 ? (avx512 ? "leaf masks (depth 4), 16 rows a block (AVX-512)"
                                       : "leaf masks (depth 4), 8 rows a block (AVX2)")
        : m->walk_depth <= 6 ? (avx512 ? "leaf masks (depth 6), 16 rows a block (AVX-512)"
                                       : "leaf masks (depth 6), 8 rows a block (AVX2)")
                             : "level walk, 8 rows a block (AVX2)";
    if (strcmp(cascade_gbdt__batch_method(m), want) != 0)
        fail_msg("%s (depth %u): batches by %s, not %s", what, m->walk_depth,
                 cascade_gbdt__batch_method(m), want);
}

/* Random ensembles up to max_depth deep over n_features, with each batch
 * layout the CPU has: scored in batches of every size from 1 to 40 rows,
 * and of 300, starting at every row offset mod 8, each score equals the
 * one-row walk's and the plain walk's bit for bit. */
static void check_batches(int n_features, int max_depth, uint64_t seed, int n_models)
{
    static struct rnd_tree trees[MAX_TREES];
    enum { N = 340 };
    size_t nf = (size_t)n_features;
    float *X = malloc(sizeof(float) * N * nf), got[N], want[N];
    assert_non_null(X);
    for (int k = 0; k < n_models; k++) {
        int n_trees;
        char *json;
        cascade_gbdt *m = rnd_model(trees, &n_trees, n_features, max_depth, &seed, &json);
        rnd_rows(X, N, n_features, &seed);
        for (int isa = CASCADE_GBDT__SCALAR; isa <= (int)cascade_gbdt__cpu_isa(); isa++) {
            check_batch_method(m, (enum cascade_gbdt__isa)isa, "random model");
            for (size_t n = 1; n <= 300; n = n < 40 ? n + 1 : n == 40 ? 300 : 301) {
                size_t off = (n * 7 + (size_t)k) % 8;
                cascade_gbdt_predict(m, X + off * nf, n, got);
                cascade_gbdt__predict_rows(m, X + off * nf, n, want);
                for (size_t i = 0; i < n; i++) {
                    float ref = rnd_reference(trees, n_trees, X + (off + i) * nf);
                    if (memcmp(&got[i], &want[i], sizeof got[i]) != 0 ||
                        memcmp(&got[i], &ref, sizeof ref) != 0)
                        fail_msg("model %d (depth %u, %s), %zu rows from %zu, row %zu: %.9g, "
                                 "one-row walk %.9g, plain walk %.9g",
                                 k, m->walk_depth, cascade_gbdt__batch_method(m), n, off, i, got[i],
                                 want[i], ref);
                }
            }
        }
        cascade_gbdt_destroy(m);
        free(json);
    }
    free(X);
}

static void test_batch_matches_row_walk(void **state)
{
    (void)state;
    if (cascade_gbdt__cpu_isa() < CASCADE_GBDT__AVX512)
        print_message("no AVX-512 on this CPU: its batches are not tested\n");
    if (cascade_gbdt__cpu_isa() < CASCADE_GBDT__AVX2)
        print_message("no AVX2 on this CPU: the batch walk is not built, rows go one at a time\n");
    for (int depth = 0; depth <= CASCADE_GBDT__BATCH_MAX_DEPTH + 1; depth++)
        check_batches(7, depth, 0x6a09e667f3bcc909u + (uint64_t)depth, 6);
    check_batches(52, 4, 0xbb67ae8584caa73bu, 10);
    check_batches(52, 6, 0x3c6ef372fe94f82bu, 10);
    check_batches(GBDT_WALK_MAX_FEATURES, 5, 0xa54ff53a5f1d36f1u, 3);
}

/* Two trees, base score 0, built so that each row's leaves are known:
 *   - a perfect tree of the given depth D, the node at level l splitting
 *     feature l at 0.5, a missing value going left on even levels, right on
 *     odd ones; leaf k (left to right) is worth k + 1, and bit D − 1 − l of
 *     k says whether a row goes right at level l;
 *   - a tree with a leaf at depth 1: f0 < 0.5 (missing left) ? 100 :
 *     (f1 < 0.5 (missing right) ? 200 : 300). */
#define KNOWN_MAX_DEPTH 6
static char *known_leaves_json(int depth)
{
    enum { KNOWN_NODES = (2 << KNOWN_MAX_DEPTH) - 1 };
    int left[KNOWN_NODES], right[KNOWN_NODES], feature[KNOWN_NODES], default_left[KNOWN_NODES];
    int n = (2 << depth) - 1, splits = (1 << depth) - 1;
    double cond[KNOWN_NODES];
    for (int i = 0; i < n; i++) {
        int level = 0;
        while ((2 << level) - 1 <= i)
            level++;
        bool split = i < splits;
        left[i] = split ? 2 * i + 1 : -1;
        right[i] = split ? 2 * i + 2 : -1;
        feature[i] = split ? level : 0;
        default_left[i] = level % 2 == 0;
        cond[i] = split ? 0.5 : (double)(i - splits + 1);
    }
    json_t *c = json_array(), *c2 = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(c, json_real(cond[i]));
    const double c2v[] = {0.5, 100, 0.5, 200, 300};
    for (int i = 0; i < 5; i++)
        json_array_append_new(c2, json_real(c2v[i]));
    const int l2[] = {1, -1, 3, -1, -1}, r2[] = {2, -1, 4, -1, -1}, f2[] = {0, 0, 1, 0, 0},
              d2[] = {1, 0, 0, 0, 0};
    json_t *trees = json_pack(
        "[{s:o, s:o, s:o, s:o, s:o}, {s:o, s:o, s:o, s:o, s:o}]", "left_children",
        int_array(left, n), "right_children", int_array(right, n), "split_indices",
        int_array(feature, n), "split_conditions", c, "default_left", int_array(default_left, n),
        "left_children", int_array(l2, 5), "right_children", int_array(r2, 5), "split_indices",
        int_array(f2, 5), "split_conditions", c2, "default_left", int_array(d2, 5));
    json_t *root = json_pack("{s:{s:{s:s}, s:{s:{s:o}}}}", "learner", "learner_model_param",
                             "base_score", "0", "gradient_booster", "model", "trees", trees);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* Every exit leaf of a perfect tree of the given depth in every lane of a
 * 16-row block (row i ends on leaf (i + i / 16) mod 2^depth), reached by
 * values and, for the second half of the rows, by missing values where the
 * default goes the same way; and the early leaf. Each way the CPU has must
 * give the known sums. */
static void check_every_exit_leaf(int depth)
{
    size_t leaves = (size_t)1 << depth, n = 2 * 16 * leaves, nf = (size_t)depth;
    float *X = malloc(n * nf * sizeof *X), *got = malloc(n * sizeof *got),
          *want = malloc(n * sizeof *want);
    assert_true(X && got && want);
    for (size_t i = 0; i < n; i++) {
        size_t leaf = (i + i / 16) % leaves;
        bool missing = i >= n / 2;
        for (int l = 0; l < depth; l++) {
            bool go_right = (leaf >> (depth - 1 - l)) & 1, nan_goes_right = l % 2 == 1;
            X[i * nf + (size_t)l] = missing && go_right == nan_goes_right ? NAN
                                    : go_right                            ? 1.0f
                                                                          : 0.0f;
        }
        /* f0 and f1 as the first two levels took them (a NaN f1 goes right) */
        bool f0_right = (leaf >> (depth - 1)) & 1, f1_right = (leaf >> (depth - 2)) & 1;
        want[i] = (float)(leaf + 1) + (!f0_right ? 100.0f : f1_right ? 300.0f : 200.0f);
    }
    char *json = known_leaves_json(depth), err[256] = "";
    cascade_gbdt *m = cascade_gbdt_from_xgboost_json(json, strlen(json), nf, err, sizeof err);
    if (!m)
        fail_msg("known leaves: %s", err);
    for (int isa = CASCADE_GBDT__SCALAR; isa <= (int)cascade_gbdt__cpu_isa(); isa++) {
        check_batch_method(m, (enum cascade_gbdt__isa)isa, "known leaves");
        cascade_gbdt_predict(m, X, n, got);
        for (size_t i = 0; i < n; i++)
            if (got[i] != want[i])
                fail_msg("depth %d, %s, row %zu (lane %zu): %g, want %g", depth,
                         cascade_gbdt__batch_method(m), i, i % 16, got[i], want[i]);
    }
    cascade_gbdt_destroy(m);
    free(json);
    free(X);
    free(got);
    free(want);
}

static void test_batch_every_exit_leaf(void **state)
{
    (void)state;
    check_every_exit_leaf(4);
    check_every_exit_leaf(5); /* unrolled to 6 */
    check_every_exit_leaf(KNOWN_MAX_DEPTH);
}

/* A model with no tree (the margin alone) scores the same in batches. */
static void test_batch_margin_only(void **state)
{
    (void)state;
    float X[11 * 3], got[11], want[11];
    for (size_t i = 0; i < 11 * 3; i++)
        X[i] = i % 5 == 0 ? NAN : (float)i * 0.37f - 4.0f;
    cascade_gbdt *m = cascade_gbdt_margin_only(3, 1, 0.75f);
    assert_non_null(m);
    cascade_gbdt_predict(m, X, 11, got);
    for (size_t i = 0; i < 11; i++) {
        float v = X[i * 3 + 1];
        want[i] = (float)(isfinite(v) ? 0.75 * v : 0.0);
    }
    assert_memory_equal(got, want, sizeof want);
    cascade_gbdt_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_follows_xgboost_split_rules),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_bad_json_is_an_error),
        cmocka_unit_test(test_damaged_file_is_an_error),
        cmocka_unit_test(test_random_trees_match_plain_walk),
        cmocka_unit_test(test_random_trees_wide_rows),
        cmocka_unit_test(test_batch_matches_row_walk),
        cmocka_unit_test(test_batch_every_exit_leaf),
        cmocka_unit_test(test_batch_margin_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
