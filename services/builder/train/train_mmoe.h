/* cascade-build train-mmoe: the multi-task ranker (common/ml/mmoe.h) on the
 * same point-in-time examples as train-rank (one per impression after the
 * warm-up, features from cascade_features_rank), with one label per task
 * from the events that follow the impression of the pair. Optional negative
 * down-sampling (calibrated back), warm start from the previous version.
 * Reports held-out AUC, log loss and ECE per task (and the oracle click AUC
 * with truth), saves model-dir/rank-mmoe-<UTC>.safetensors and points
 * model-dir/rank-mmoe.latest at it. */
#ifndef CASCADE_BUILDER_TRAIN_MMOE_H
#define CASCADE_BUILDER_TRAIN_MMOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "mmoe.h"
#include "train_gate.h"
#include "train_rank.h"

struct cascade_train_mmoe_opts {
    struct cascade_train_rank_opts rank;           /* warm-up, hold-out, weights (lr part unused) */
    const char *tasks;                             /* "click,like,..."; NULL = the six defaults */
    size_t epochs, batch;                          /* default 3, 256 */
    float lr;                                      /* Adam, default 1e-3 */
    size_t n_experts, expert_hidden, tower_hidden; /* default 4, 32, 16 */
    float expert_dropout;                          /* default 0.1 */
    double complete_frac;  /* complete = played ≥ this share of a video, default 0.8 */
    uint64_t seed;         /* initialisation, shuffling, dropout and sampling, default 1 */
    const char *model_dir; /* NULL = do not save */
    bool quiet;
    /* Keep training examples without a click at this rate α (default 1 = all).
     * The click task is calibrated back with p = α·q/(1 − q + α·q) (α saved in
     * the metadata as neg_sample_rate); the other tasks weight the kept
     * negatives by 1/α instead, so they need no correction. */
    double neg_sample_rate;
    /* Initialise from the model named by model-dir/rank-mmoe.latest when it
     * has the same shape and tasks (default true). */
    bool warm_start;
    /* True p_click per event (ds->n_events, -1 for non-impressions), e.g. from
     * cascade_datagen_generate, for the oracle AUC; NULL = read
     * rank.truth_path when set. */
    const float *true_p_click;
    struct cascade_train_gate_opts gate; /* on the held-out click AUC */
};

struct cascade_train_mmoe_task_report {
    char name[CASCADE_MMOE_TASK_NAME_MAX];
    size_t labelled;      /* held-out examples with this label (complete: videos only) */
    double positive_rate; /* mean target on them */
    double auc;           /* watch time: against "played at all" */
    double logloss;       /* BCE of the served probability (watch time: of t/(1+t)) */
    double ece;           /* 10 bins */
    double mean_pred;     /* mean served (calibrated) probability */
    double mean_raw;      /* the same before the down-sampling calibration */
};

struct cascade_train_mmoe_summary {
    size_t examples, train, holdout, n_tasks;
    struct cascade_train_mmoe_task_report tasks[CASCADE_MMOE_MAX_TASKS];
    double gate_entropy[CASCADE_MMOE_MAX_TASKS];
    char model_path[1024]; /* "" when not saved */
    char version[128];
    char warm_from[256];      /* file the weights started from; "" = fresh */
    size_t sampled_train;     /* training rows after negative down-sampling */
    double neg_sample_rate;   /* α used (saved as metadata neg_sample_rate) */
    double oracle_auc;        /* true p_click on the held-out set; NAN without truth */
    char complete_rates[256]; /* f(duration) saved as complete_rate_by_duration */
    double seconds;
    /* With model_dir: the gate's decision on the held-out click AUC
     * (publish: rank-mmoe.latest moved). */
    struct cascade_train_gate_decision gate;
};

/* Name of the pointer file train-mmoe maintains in the model directory. */
#define CASCADE_TRAIN_MMOE_LATEST "rank-mmoe.latest"

void cascade_train_mmoe_defaults(struct cascade_train_mmoe_opts *o);

/* Labels [ex->n, n_tasks] and weights (0 = no label) for the tasks of c:
 * click/like/collect/share 1 when that event follows the example's
 * impression before the pair's next impression; watch_time the seconds
 * played then; complete 1 when played ≥ complete_frac·duration (videos only,
 * weight 0 for notes). Other names are CASCADE_EINVAL with err. */
int cascade_mmoe_labels_build(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                              const struct cascade_mmoe_config *c, double complete_frac,
                              float *labels, float *weights, char *err, size_t errlen);

/* Build examples and labels, down-sample negatives, warm start, train with
 * per-epoch progress on stderr, fold the input standardisation into the
 * first layers (the saved model takes raw features), evaluate on the
 * held-out split, save, and let the gate decide whether rank-mmoe.latest
 * moves (sum->gate; CASCADE_EDATA for constant click labels or a click AUC
 * not above the floor). *model (may be NULL)
 * receives the trained model, which the caller destroys. */
int cascade_train_mmoe_run(const cascade_dataset *ds, const struct cascade_train_mmoe_opts *o,
                           struct cascade_train_mmoe_summary *sum, cascade_mmoe **model, char *err,
                           size_t errlen);

/* The `cascade-build train-mmoe` subcommand: argv[2..] are its flags
 * (--data DIR --model-dir DIR, --help for the rest). Returns a
 * CASCADE_BUILD_EXIT_* code (build_cli.h). */
int cascade_train_mmoe_command(int argc, char **argv);

#endif
