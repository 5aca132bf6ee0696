/* cascade-build train-prerank: the pre-rank model. The examples are those of
 * train-rank (every impression after the warm-up, labelled by a later click,
 * the latest share held out), but each is described by the hashed user×item
 * crosses of common/ml/prerank_features.h computed on point-in-time records.
 * A hashed-feature LR (common/ml/hashlr.h) is trained with Adagrad, evaluated
 * per epoch on the held-out set next to the pre-rank heuristic, and saved as
 * model-dir/prerank-lr-<UTC time>.safetensors named in prerank-lr.latest. */
#ifndef CASCADE_BUILDER_TRAIN_PRERANK_H
#define CASCADE_BUILDER_TRAIN_PRERANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "hashlr.h"
#include "train_gate.h"
#include "train_rank.h"

struct cascade_train_prerank_opts {
    struct cascade_train_rank_opts examples; /* warm-up, hold-out, affinity half-life, weights */
    unsigned bits;                           /* 2^bits weights, default 20 */
    int epochs;                              /* default 3 */
    uint64_t seed;                           /* shuffling seed, default 1 */
    struct cascade_hashlr_train_opts lr;
    const char *model_dir; /* NULL = do not save */
    bool warm_start;       /* start from model_dir's current prerank-lr model (default true) */
    bool quiet;
    struct cascade_train_gate_opts gate; /* held-out AUC floor, tolerance, force */
};

/* Examples in time order: rows [0, n_train) train, [n_train, n) held out. */
struct cascade_prerank_examples {
    size_t n, n_train;
    uint32_t *idx;    /* n × CASCADE_PRERANK_FEATURES bucket indices */
    float *y;         /* click labels */
    float *heuristic; /* the pre-rank heuristic's score (default weights, recall score 0) */
};

struct cascade_train_prerank_summary {
    size_t examples, train, holdout;
    double train_ctr, holdout_ctr;
    double auc, logloss;   /* model on the held-out set after the last epoch */
    double heuristic_auc;  /* the heuristic on the same held-out examples */
    double base_logloss;   /* constant prediction (train CTR) on the held-out set */
    char model_path[1024]; /* "" when not saved */
    char version[128];
    char warm_from[256]; /* the model started from; "" = fresh */
    double seconds;
    /* With model_dir: the gate's decision (publish: prerank-lr.latest moved). */
    struct cascade_train_gate_decision gate;
};

void cascade_train_prerank_defaults(struct cascade_train_prerank_opts *o);

/* Replay the log and build the examples at o->bits. 0 or a negative code with err. */
int cascade_prerank_examples_build(const cascade_dataset *ds,
                                   const struct cascade_train_prerank_opts *o,
                                   struct cascade_prerank_examples *ex, char *err, size_t errlen);
void cascade_prerank_examples_free(struct cascade_prerank_examples *ex);

/* Build examples, refuse degenerate labels (CASCADE_EDATA), train with
 * per-epoch held-out reports, and when o->model_dir is set save the model
 * and let the gate decide whether prerank-lr.latest moves (sum->gate).
 * *model (may be NULL) receives the trained model, which the caller destroys. */
int cascade_train_prerank_run(const cascade_dataset *ds, const struct cascade_train_prerank_opts *o,
                              struct cascade_train_prerank_summary *sum, cascade_hashlr **model,
                              char *err, size_t errlen);

/* Save m as dir/prerank-lr-<UTC time>.safetensors and point
 * dir/prerank-lr.latest at it without the gate (tests, hand-made models).
 * path/version receive what was written. */
int cascade_prerank_model_publish(const cascade_hashlr *m, const char *dir, char *path,
                                  size_t pathlen, char *version, size_t versionlen, char *err,
                                  size_t errlen);

/* The train-prerank subcommand: flags, data, training, summary lines, and
 * with --redis the model name and AUC in {ns}:meta. Returns an exit code. */
int cascade_train_prerank_command(int argc, char **argv);

#endif
