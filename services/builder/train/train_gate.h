/* The model gate of cascade-build's trainers: a new model is saved under its
 * version name, evaluated on the trainer's held-out data next to the
 * currently published model, and only then may "<name>.latest" move. It
 * moves when the new model's held-out metric is better than a floor and no
 * worse than the published model's on the same data (within a tolerance),
 * or when --force says so (logged). Every decision is written beside the
 * model as "<model file>.gate.json" (common/gate_record.h). A refused model
 * stays on disk under its version name, so that it can be inspected and
 * promoted by hand (write its file name into the .latest file).
 *
 * Generic over the model: a trainer supplies its kind, metric name and
 * direction, the new value, and a callback that evaluates the published
 * model's file on the same held-out data. Degenerate training data is
 * refused before training (cascade_train_gate_check_labels): CASCADE_EDATA,
 * which the commands turn into exit status 3. */
#ifndef CASCADE_BUILDER_TRAIN_GATE_H
#define CASCADE_BUILDER_TRAIN_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include "flags.h"
#include "gate_record.h"

/* Defaults: an AUC must be above 0.52 (0.5 is chance) and may lose at most
 * 0.005 against the published model (about the spread of AUC between
 * seeds on our data); recall@K floors are chance, K / catalogue size. */
#define CASCADE_TRAIN_GATE_AUC_FLOOR 0.52
#define CASCADE_TRAIN_GATE_TOLERANCE 0.005

/* Held-out examples a binary label must have of each class; fewer and the
 * AUC is noise (and the data cannot train a classifier either). */
#define CASCADE_TRAIN_GATE_MIN_CLASS 10

/* The gate settings of a trainer command (flags --gate-floor,
 * --gate-tolerance, --force). */
struct cascade_train_gate_opts {
    double floor;     /* default CASCADE_TRAIN_GATE_AUC_FLOOR */
    double tolerance; /* default CASCADE_TRAIN_GATE_TOLERANCE */
    bool force;       /* publish whatever the gate says (logged) */
};

/* AUC floor, default tolerance, no force. */
void cascade_train_gate_defaults(struct cascade_train_gate_opts *o);

/* The three flags, as initialisers for a command's cascade_flag table. */
#define CASCADE_TRAIN_GATE_FLAG_FLOOR(g)                                                           \
    {                                                                                              \
        "gate-floor", CASCADE_FLAG_DOUBLE, &(g)->floor,                                            \
            "publish only if the held-out metric is above this", -1e9, 1e9                         \
    }
#define CASCADE_TRAIN_GATE_FLAG_TOLERANCE(g)                                                       \
    {                                                                                              \
        "gate-tolerance", CASCADE_FLAG_DOUBLE, &(g)->tolerance,                                    \
            "how far below the published model's held-out metric a new model may be", 0, 1e9       \
    }
#define CASCADE_TRAIN_GATE_FLAG_FORCE(g)                                                           \
    {                                                                                              \
        "force", CASCADE_FLAG_BOOL, &(g)->force,                                                   \
            "publish even when the gate refuses the model (logged, and in the gate record)", 0, 0  \
    }

/* The end of every trainer's --help: the gate and the exit statuses. */
#define CASCADE_TRAIN_GATE_HELP                                                                    \
    "\nThe model is saved under its version name; the .latest file moves only when its "           \
    "held-out metric\nis above --gate-floor and no worse than the published model's on the "       \
    "same held-out data\n(within --gate-tolerance), or with --force. The decision is in "          \
    "<model file>.gate.json.\nExit status: 0 published, 1 failure, 2 usage, 3 the data does not "  \
    "support this model\n(constant labels, too few examples, metric not above the floor), 4 "      \
    "worse than the published\nmodel (kept on disk, not published)."

/* One decision's inputs. Strings are borrowed for the call. */
struct cascade_train_gate {
    const char *job;          /* "train-rank": prefix of the lines logged on stderr */
    const char *kind;         /* "rank-lr", "rank-mmoe", "prerank-lr", "two-tower", ... */
    const char *metric;       /* "auc", "recall@100", "ndcg@10", ... */
    bool higher_is_better;    /* false for a loss */
    double floor;             /* the new value must be strictly better than this */
    double tolerance;         /* how much worse than the current value it may be (≥ 0) */
    size_t holdout;           /* held-out examples (or users) the values come from */
    double value;             /* the new model's held-out metric */
    bool has_current;         /* current_value was measured */
    double current_value;     /* the published model on the same held-out data */
    const char *current;      /* the published model's file name; NULL = none published */
    const char *current_note; /* why current_value is missing; NULL = "" */
    bool force;
};

/* Fill g for a trainer's new model whose metric is higher-is-better: job,
 * kind and metric (borrowed, as in the struct), floor, tolerance and force
 * from o, holdout and value; nothing published yet. A trainer with a
 * different floor or direction sets it afterwards. */
void cascade_train_gate_init(struct cascade_train_gate *g, const char *job, const char *kind,
                             const char *metric, const struct cascade_train_gate_opts *o,
                             size_t holdout, double value);

/* The outcome: publish says whether .latest moves. */
struct cascade_train_gate_decision {
    bool publish;
    bool forced;        /* published only because of force */
    const char *reason; /* CASCADE_GATE_REASON_* */
    char message[512];
};

/* Decide (pure, no I/O): see the file comment. A NAN value is below any
 * floor. */
void cascade_train_gate_decide(const struct cascade_train_gate *g,
                               struct cascade_train_gate_decision *d);

/* Evaluate the published model file at path on the trainer's held-out data:
 * 0 with *value, or a negative code with err when it cannot be (a different
 * shape, unreadable): the gate then compares against nothing and says why. */
typedef int (*cascade_train_gate_eval)(void *ctx, const char *path, double *value, char *err,
                                       size_t errlen);

/* Fill g's current fields from dir/latest: current (into name), and
 * has_current/current_value from eval, or current_note (into note). With no
 * dir or nothing published, current stays NULL. Returns 0, or CASCADE_ENOMEM
 * from eval. */
int cascade_train_gate_current(struct cascade_train_gate *g, const char *dir, const char *latest,
                               cascade_train_gate_eval eval, void *ctx, char *name, size_t namelen,
                               char *note, size_t notelen);

/* Decide for the model saved at model_path (file name latest_name in dir),
 * write model_path.gate.json, and when it publishes point dir/latest at
 * latest_name. Logs the decision on stderr unless quiet (always when forced).
 * Returns 0 when published or refused as worse than the published model
 * (d->publish tells which), CASCADE_EDATA with err when refused for being
 * no better than the floor (the data does not support the model), or the
 * I/O error of writing the record or the .latest file. */
int cascade_train_gate_apply(const struct cascade_train_gate *g, const char *model_path,
                             const char *dir, const char *latest, const char *latest_name,
                             const char *version, bool quiet, struct cascade_train_gate_decision *d,
                             char *err, size_t errlen);

/* Write this run's model (and any files that go with it) at path under
 * version; path is dir/<version>.safetensors, named by
 * cascade_train_gate_publish. 0, or a negative code with err. */
typedef int (*cascade_train_gate_save)(void *ctx, const char *path, const char *version, char *err,
                                       size_t errlen);

/* Where a trainer publishes and how it reads and writes its models. Strings
 * and ctx are borrowed for the call. */
struct cascade_train_gate_target {
    const char *dir;              /* the model directory; created when missing */
    const char *latest;           /* "rank-lr.latest", ... */
    bool latest_names_version;    /* .latest holds "<version>" (a model of several files),
                                     not "<version>.safetensors" */
    cascade_train_gate_eval eval; /* the published model on this run's held-out data */
    cascade_train_gate_save save; /* this run's model */
    void *ctx;                    /* passed to eval and save */
    bool quiet;                   /* as cascade_train_gate_apply */
};

/* A trainer's publish step: measure the published model (t->eval, as
 * cascade_train_gate_current), name a new version "<g->kind>-<UTC time>" in
 * t->dir (cascade_latest_version_new), write it through t->save, then decide
 * and move t->latest with cascade_train_gate_apply. g is borrowed and not
 * written: its current fields are filled in a copy. path/version receive the
 * new model's file and version once it is named, before t->save runs.
 * Returns as cascade_train_gate_apply, or the error of creating t->dir or of
 * t->save (with err), or CASCADE_ENOMEM from t->eval. */
int cascade_train_gate_publish(const struct cascade_train_gate *g,
                               const struct cascade_train_gate_target *t, char *path,
                               size_t pathlen, char *version, size_t versionlen,
                               struct cascade_train_gate_decision *d, char *err, size_t errlen);

/* Refuse a degenerate binary-labelled training set before training: labels
 * y (0/1) with rows [0, n_train) for training and [n_train, n) held out.
 * CASCADE_EDATA with a message naming the problem (every label equal, or
 * fewer than CASCADE_TRAIN_GATE_MIN_CLASS held-out examples of a class);
 * 0 otherwise. The message does not name the trainer: the command line does
 * (HACKING.md, "Who adds prefixes"). */
int cascade_train_gate_check_labels(const float *y, size_t n_train, size_t n, char *err,
                                    size_t errlen);

/* The cascade-build exit status for a trainer's result: OK when published,
 * 4 (CASCADE_BUILD_EXIT_REFUSED) when refused as worse, 3
 * (CASCADE_BUILD_EXIT_DATA) for CASCADE_EDATA, 1 for other errors. */
int cascade_train_gate_exit_status(int rc, bool published);

#endif
