/* Internals shared by the tree ensemble sources only (gbdt.c: files, the
 * plain and walk-ready layouts, one row at a time; gbdt_batch.c: eight or
 * sixteen rows at a time with AVX2 or AVX-512). Not part of the API: gbdt.h is. */
#ifndef CASCADE_GBDT_INTERNAL_H
#define CASCADE_GBDT_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "gbdt.h"
#include "safetensors.h"

/* Widest row the walk-ready layout takes (its row copy is on the stack);
 * a wider model is walked the plain way (tree_score). */
#define GBDT_WALK_MAX_FEATURES 256

/* One node of the walk-ready layout. Both children of a split sit side by
 * side at child and child + 1 and a step is child + (xx[feature] >=
 * threshold), where xx is the row followed by its negation, so the walk
 * has no branch on the direction, the missing value or the leaf:
 *   - a split that sends a missing value left keeps [left, right], the
 *     feature and the threshold t: x >= t goes right, x < t left, and a NaN
 *     compares false, so it goes left;
 *   - one that sends it right stores [right, left], the negated feature and
 *     the least float above -t: -x >= next(-t) holds exactly when x < t
 *     (floats are discrete), sending x < t left, x >= t and NaN right (for
 *     t = -inf nothing is below: the threshold is NaN, always right);
 *   - a leaf stores itself as child and a NaN threshold, so steps past it
 *     stay on it; a tree's walk is always its depth in steps. */
struct gbdt_node {
    uint32_t feature;
    float threshold;
    uint32_t child;
    float leaf; /* the leaf value (leaves only) */
};

struct cascade_gbdt__batch; /* gbdt_batch.c */

struct cascade_gbdt {
    size_t n_features, n_nodes, n_trees;
    int32_t *feature; /* split feature; -1 = leaf */
    float *value;     /* split threshold, or the leaf value */
    int32_t *left, *right;
    uint8_t *default_left;
    int32_t *root; /* n_trees */
    float base_score;
    int32_t margin_feature; /* -1 = none */
    float margin_scale;
    cascade_safetensors *file;         /* metadata of a loaded model; NULL otherwise */
    struct gbdt_node *walk;            /* n_nodes, the walk-ready layout */
    uint32_t *walk_root;               /* n_trees, each tree's root in walk */
    uint32_t walk_depth;               /* the deepest tree's depth */
    struct cascade_gbdt__batch *batch; /* rows in blocks; NULL = not on this CPU/model */
};

/* What a row's sum starts from: the base score, or the margin. */
static inline double cascade_gbdt__row_start(const cascade_gbdt *m, const float *x)
{
    if (m->margin_feature < 0)
        return m->base_score;
    float v = x[m->margin_feature];
    return isfinite(v) ? (double)m->margin_scale * v : 0.0;
}

/* out[i] for rows [0, n) one row at a time over the walk-ready layout (or
 * the plain arrays past GBDT_WALK_MAX_FEATURES): the reference the batch
 * walk must equal bit for bit. Thread-safe, allocates nothing. */
void cascade_gbdt__predict_rows(const cascade_gbdt *m, const float *X, size_t n, float *out);

/* The vector instructions a batch layout is built for, in increasing order. */
enum cascade_gbdt__isa {
    CASCADE_GBDT__SCALAR, /* none: rows go one at a time */
    CASCADE_GBDT__AVX2,
    CASCADE_GBDT__AVX512, /* AVX-512 F and CD */
};

/* The best this CPU has. */
enum cascade_gbdt__isa cascade_gbdt__cpu_isa(void);

/* Build m->batch from m's walk-ready layout when this CPU has AVX2 and the
 * trees are at most CASCADE_GBDT__BATCH_MAX_DEPTH deep and the rows at most
 * GBDT_WALK_MAX_FEATURES wide; otherwise leave it NULL (rows go one at a
 * time). 0, or CASCADE_ENOMEM. */
#define CASCADE_GBDT__BATCH_MAX_DEPTH 8
int cascade_gbdt__batch_build(cascade_gbdt *m);

/* The same for the instructions isa (at most cascade_gbdt__cpu_isa(), else
 * CASCADE_EINVAL and no batch layout), replacing m->batch: for tests and
 * benchmarks that compare the ways of a CPU with the best one. Models
 * deeper than the leaf masks take AVX2 (their walk has no other form). */
int cascade_gbdt__batch_build_isa(cascade_gbdt *m, enum cascade_gbdt__isa isa);

/* How m->batch scores, for people: "leaf masks, 16 rows a block
 * (AVX-512)", "one row at a time", ... (a static string). */
const char *cascade_gbdt__batch_method(const cascade_gbdt *m);

/* NULL-safe. */
void cascade_gbdt__batch_destroy(struct cascade_gbdt__batch *b);

/* out[i] for rows [0, n) with m->batch (non-NULL): 8 or 16 rows a block,
 * each row's leaves added in tree order to the same double as
 * cascade_gbdt__predict_rows adds them, so every score is bit-identical.
 * A last group of fewer than CASCADE_GBDT__BATCH_MIN_TAIL rows goes one at a time. */
#define CASCADE_GBDT__BATCH_MIN_TAIL 4
void cascade_gbdt__batch_predict(const cascade_gbdt *m, const float *X, size_t n, float *out);

#endif
