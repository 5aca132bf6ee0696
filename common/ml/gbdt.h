/* A gradient-boosted tree ensemble for serving: the learning-to-rank models
 * (cascade-build train ltr) that PreRank and Rank score with. Training runs
 * in libxgboost (builder only); the trained booster's JSON dump is turned
 * into flat node arrays here and stored as safetensors, so the services
 * evaluate it in plain C without linking xgboost. Semantics follow
 * xgboost's: at a split, x < threshold goes left, a missing (NaN) value
 * follows the node's default branch; the score is base_score plus the sum
 * of one leaf value per tree, or, for a model boosted from a margin
 * (xgboost's base_margin), scale · x[feature] plus the sum of the leaves. A loaded model is
 * immutable and safe to share between threads. */
#ifndef CASCADE_GBDT_H
#define CASCADE_GBDT_H

#include <stddef.h>

typedef struct cascade_gbdt cascade_gbdt;

/* Build from xgboost's JSON model (XGBoosterSaveModelToBuffer with format
 * "json"; gbtree boosters only). n_features is the input width the model
 * must accept (a split on a feature at or past it is an error). NULL with a
 * message in err on malformed input or out of memory. */
cascade_gbdt *cascade_gbdt_from_xgboost_json(const char *json, size_t len, size_t n_features,
                                             char *err, size_t errlen);

/* Boost from a margin: the score becomes scale · x[feature] plus the trees
 * (base_score no longer counts, as in xgboost with a base_margin). A
 * missing x[feature] counts 0. CASCADE_EINVAL when feature is out of range. */
int cascade_gbdt_set_margin(cascade_gbdt *m, size_t feature, float scale);

/* A model with no tree: the margin alone (for a booster whose best round
 * was none). NULL when out of memory. */
cascade_gbdt *cascade_gbdt_margin_only(size_t n_features, size_t feature, float scale);

/* Save as safetensors (tensors "node_feature", "node_value", "node_left",
 * "node_right", "node_default_left", "tree_root", "base_score", and
 * "margin" [feature, scale] when set; metadata
 * "n_features" plus the caller's pairs). Atomic (temp file + rename). */
int cascade_gbdt_save(const cascade_gbdt *m, const char *path, const char *const *meta_keys,
                      const char *const *meta_values, size_t n_meta, char *err, size_t errlen);

/* Load a file cascade_gbdt_save wrote; every node index and feature is
 * checked, so a damaged file is an error, never an out-of-bounds read. */
cascade_gbdt *cascade_gbdt_load(const char *path, char *err, size_t errlen);

void cascade_gbdt_destroy(cascade_gbdt *m); /* NULL-safe */

size_t cascade_gbdt_n_features(const cascade_gbdt *m);
size_t cascade_gbdt_n_trees(const cascade_gbdt *m);

/* Metadata value stored with the model (load only; NULL when absent). */
const char *cascade_gbdt_meta(const cascade_gbdt *m, const char *key);

/* out[i] = score of row i of X (n × n_features, row-major). Walks the
 * branch-free node layout built at load (gbdt.c), 8 or 16 rows at a time with
 * AVX2 or AVX-512 where the CPU has it and the trees are at most 8 deep (gbdt_batch.c;
 * so pass many rows per call), with the same float sums in the same order
 * as a plain walk; allocates nothing, safe to call from many threads on one
 * model. */
void cascade_gbdt_predict(const cascade_gbdt *m, const float *X, size_t n, float *out);

#endif
