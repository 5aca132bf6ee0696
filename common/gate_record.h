/* The model gate's record: "<model file>.gate.json" beside every model a
 * trainer saves, saying whether the trainer published it (moved .latest),
 * on which held-out metric, against which floor and which published model.
 * The trainers write it (services/builder/train/train_gate.h); the services read
 * it to log what they load. Fields are documented in docs/stages.md. */
#ifndef CASCADE_GATE_RECORD_H
#define CASCADE_GATE_RECORD_H

#include <stdbool.h>
#include <stddef.h>

/* Suffix appended to a model file's path to name its record. */
#define CASCADE_GATE_RECORD_SUFFIX ".gate.json"

/* Decisions (the "decision" field). */
#define CASCADE_GATE_PUBLISHED "published" /* passed the gate, .latest moved */
#define CASCADE_GATE_FORCED "forced"       /* failed the gate, published by --force */
#define CASCADE_GATE_REFUSED "refused"     /* not published, .latest unchanged */

/* Reasons (the "reason" field). */
#define CASCADE_GATE_REASON_PASSED "passed"
#define CASCADE_GATE_REASON_BELOW_FLOOR "below_floor" /* not better than the floor */
#define CASCADE_GATE_REASON_WORSE "worse"             /* worse than the published model */

/* One gate decision. Values are NAN when unknown; strings are "" when absent. */
struct cascade_gate_record {
    char model[256];   /* the model file's name (no directory) */
    char version[128]; /* the new version */
    char kind[64];     /* model kind: "rank-lr", "rank-mmoe", "prerank-lr", "two-tower", ... */
    char metric[64];   /* held-out metric: "auc", "recall@100", "ndcg@10", ... */
    bool higher_is_better;
    size_t holdout;   /* held-out examples (or users) the values were computed on */
    double value;     /* the new model's held-out metric */
    double floor;     /* it had to be strictly better than this */
    double tolerance; /* how much worse than the published model it could be */
    bool has_current; /* a published model was evaluated on the same held-out data */
    double current_value;
    char current_version[256]; /* the published model's file name, "" when none */
    char current_note[256];    /* why it was not evaluated ("none published", ...) */
    char decision[16];         /* CASCADE_GATE_PUBLISHED / _FORCED / _REFUSED */
    char reason[16];           /* CASCADE_GATE_REASON_* */
    char message[512];         /* one readable sentence */
    long long decided_at;      /* Unix seconds */
};

/* Write r as JSON to path (path.tmp, then rename). 0 or CASCADE_EIO /
 * CASCADE_ENOMEM with err. Thread-safe (no shared state). */
int cascade_gate_record_write(const char *path, const struct cascade_gate_record *r, char *err,
                              size_t errlen);

/* Read the record at path into r. CASCADE_ENOTFOUND when there is none,
 * CASCADE_EFORMAT when it is not a gate record, 0 otherwise. */
int cascade_gate_record_read(const char *path, struct cascade_gate_record *r, char *err,
                             size_t errlen);

/* The record of the model file at model_path (model_path + suffix), summed
 * up in one line for a service's log, e.g. "gate published: auc 0.7132 >
 * floor 0.5200, published rank-lr-...: 0.7021". "no gate record" when the
 * model has none (a model from before the gate, or copied by hand). */
void cascade_gate_record_describe(const char *model_path, char *buf, size_t len);

#endif
