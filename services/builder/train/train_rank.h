/* cascade-build train-rank: the first ranking model. Every impression is an
 * example labelled 1 when the user clicked that item afterwards (before the
 * next impression of the same pair). Features come from cascade_features_rank
 * on point-in-time records: the log is replayed in time order and each
 * impression sees only the statistics of events strictly before it (no label
 * leakage), and the rows of one served list all see the state before the list
 * (cascade_dataset_request_end); the first warm-up share of the log only builds state. The last
 * share of examples by time is held out for AUC and log loss. The model is a
 * logistic regression (common/ml/lr.h) saved as
 * model-dir/rank-lr-<UTC time>.safetensors and named in model-dir/rank-lr.latest. */
#ifndef CASCADE_BUILDER_TRAIN_RANK_H
#define CASCADE_BUILDER_TRAIN_RANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "lr.h"
#include "train_gate.h"

struct cascade_train_rank_opts {
    double warmup_frac;             /* share of impressions that only build state, default 0.3 */
    double holdout_frac;            /* share of examples held out (the latest), default 0.1 */
    double affinity_half_life_days; /* as in load, default 30 */
    struct cascade_behaviour_weights weights;
    struct cascade_lr_train_opts lr;
    const char *model_dir;  /* where to save; NULL = do not save */
    const char *truth_path; /* optional truth.tsv for the oracle AUC; NULL = none */
    bool warm_start;        /* start from model_dir's current rank-lr model (default true) */
    bool quiet;
    struct cascade_train_gate_opts gate; /* held-out AUC floor, tolerance, force */
};

/* Examples in time order: rows [0, n_train) train, [n_train, n) held out. */
struct cascade_rank_examples {
    size_t n, n_train;
    float *X; /* n × CASCADE_RANK_FEATURES */
    float *y;
    uint32_t *event; /* index of the impression event in ds->events */
};

struct cascade_train_rank_summary {
    size_t impressions, examples, train, holdout;
    double train_ctr, holdout_ctr;
    double auc, logloss;   /* held out, after the last epoch */
    double base_logloss;   /* constant prediction (train CTR) on the held-out set */
    double oracle_auc;     /* true p_click on the held-out set; NAN without truth */
    char model_path[1024]; /* "" when not saved */
    char version[128];
    char warm_from[256]; /* the model started from; "" = fresh (zero weights) */
    double seconds;
    /* With model_dir: the gate's decision (publish: rank-lr.latest moved). */
    struct cascade_train_gate_decision gate;
};

void cascade_train_rank_defaults(struct cascade_train_rank_opts *o);

/* Replay the log and build the examples (see the file comment). */
int cascade_rank_examples_build(const cascade_dataset *ds, const struct cascade_train_rank_opts *o,
                                struct cascade_rank_examples *ex, char *err, size_t errlen);
void cascade_rank_examples_free(struct cascade_rank_examples *ex);

/* Build examples, refuse degenerate labels (CASCADE_EDATA), train with
 * per-epoch held-out reports, save the model and let the gate decide
 * whether rank-lr.latest moves (train_gate.h; sum->gate). *model (may be
 * NULL) receives the trained model, which the caller destroys. */
int cascade_train_rank_run(const cascade_dataset *ds, const struct cascade_train_rank_opts *o,
                           struct cascade_train_rank_summary *sum, cascade_lr **model, char *err,
                           size_t errlen);

/* cascade_train_rank_run on examples already built from ds (borrowed; the
 * caller frees them). */
int cascade_train_rank_fit(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                           const struct cascade_train_rank_opts *o,
                           struct cascade_train_rank_summary *sum, cascade_lr **model, char *err,
                           size_t errlen);

/* True p_click per event of ds from the generator's truth.tsv at path
 * (impressions in events.tsv order; -1 for the other events). NULL when path
 * is NULL, the file is missing or it does not line up with the events; the
 * caller frees the array. */
float *cascade_rank_truth_read(const cascade_dataset *ds, const char *path);

/* AUC of truth (per event, from cascade_rank_truth_read) on the held-out
 * examples of ex: the best any model can do. NAN when truth is NULL or
 * lacks one of them. */
double cascade_rank_oracle_auc(const float *truth, const struct cascade_rank_examples *ex);

/* Save m as dir/rank-lr-<UTC time>.safetensors and point dir/rank-lr.latest
 * at it without the gate (tests, hand-made models). path/version receive
 * what was written. */
int cascade_rank_model_publish(const cascade_lr *m, const char *dir, char *path, size_t pathlen,
                               char *version, size_t versionlen, char *err, size_t errlen);

#endif
