/* cascade-build train-mmoe: the multi-task ranker (common/mmoe.h) on the
 * same point-in-time examples as train-rank (one per impression after the
 * warm-up, features from cascade_features_rank), with one label per task
 * from the events that follow the impression of the pair. Reports held-out
 * AUC, log loss and ECE per task and saves model-dir/rank-mmoe-<UTC>.safetensors. */
#ifndef CASCADE_BUILDER_TRAIN_MMOE_H
#define CASCADE_BUILDER_TRAIN_MMOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "mmoe.h"
#include "train_rank.h"

struct cascade_train_mmoe_opts {
    struct cascade_train_rank_opts rank;           /* warm-up, hold-out, weights (lr part unused) */
    const char *tasks;                             /* "click,like,..."; NULL = the six defaults */
    size_t epochs, batch;                          /* default 3, 256 */
    float lr;                                      /* Adam, default 1e-3 */
    size_t n_experts, expert_hidden, tower_hidden; /* default 4, 32, 16 */
    float expert_dropout;                          /* default 0.1 */
    double complete_frac;  /* complete = played ≥ this share of a video, default 0.8 */
    uint64_t seed;         /* initialisation and dropout, default 1 */
    const char *model_dir; /* NULL = do not save */
    bool quiet;
};

struct cascade_train_mmoe_task_report {
    char name[CASCADE_MMOE_TASK_NAME_MAX];
    size_t labelled;      /* held-out examples with this label (complete: videos only) */
    double positive_rate; /* mean target on them */
    double auc;           /* watch time: against "played at all" */
    double logloss;       /* BCE of the served probability (watch time: of t/(1+t)) */
    double ece;           /* 10 bins */
};

struct cascade_train_mmoe_summary {
    size_t examples, train, holdout, n_tasks;
    struct cascade_train_mmoe_task_report tasks[CASCADE_MMOE_MAX_TASKS];
    double gate_entropy[CASCADE_MMOE_MAX_TASKS];
    char model_path[1024]; /* "" when not saved */
    char version[128];
    double seconds;
};

void cascade_train_mmoe_defaults(struct cascade_train_mmoe_opts *o);

/* Labels [ex->n, n_tasks] and weights (0 = no label) for the tasks of c:
 * click/like/collect/share 1 when that event follows the example's
 * impression before the pair's next impression; watch_time the seconds
 * played then; complete 1 when played ≥ complete_frac·duration (videos only,
 * weight 0 for notes). Other names are CASCADE_EINVAL with err. */
int cascade_mmoe_labels_build(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                              const struct cascade_mmoe_config *c, double complete_frac,
                              float *labels, float *weights, char *err, size_t errlen);

/* Build examples and labels, train with per-epoch progress on stderr, fold
 * the input standardisation into the first layers (the saved model takes raw
 * features), evaluate on the held-out split and save. *model (may be NULL)
 * receives the trained model, which the caller destroys. */
int cascade_train_mmoe_run(const cascade_dataset *ds, const struct cascade_train_mmoe_opts *o,
                           struct cascade_train_mmoe_summary *sum, cascade_mmoe **model, char *err,
                           size_t errlen);

/* The `cascade-build train-mmoe` subcommand: argv[2..] are its flags
 * (--data DIR --model-dir DIR, --help for the rest). Returns a
 * CASCADE_BUILD_EXIT_* code (build_cli.h). */
int cascade_train_mmoe_command(int argc, char **argv);

#endif
