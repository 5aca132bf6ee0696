/* MMoE ranker (Multi-gate Mixture-of-Experts, SPEC §5): shared experts
 * (Linear + ReLU), one softmax gate and one tower (Linear, ReLU, Linear) per
 * task, built on common/ml/nn.h with torch state_dict names. See docs/mmoe.md. */
#ifndef CASCADE_MMOE_H
#define CASCADE_MMOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn.h"

#define CASCADE_MMOE_MAX_TASKS 16
#define CASCADE_MMOE_MAX_EXPERTS 64
#define CASCADE_MMOE_TASK_NAME_MAX 32

/* How a task's label is trained and its logit z served. */
enum cascade_mmoe_task_kind {
    CASCADE_MMOE_BINARY = 0,     /* label 0/1 (or soft); served as sigmoid(z) */
    CASCADE_MMOE_WATCH_TIME = 1, /* label t ≥ 0, trained as t/(1+t); served as exp(z) */
};

struct cascade_mmoe_task {
    char name[CASCADE_MMOE_TASK_NAME_MAX];
    enum cascade_mmoe_task_kind kind;
    float loss_weight; /* weight of this task's mean BCE in the total loss */
};

/* Model shape and training knobs. Fill with cascade_mmoe_config_default. */
struct cascade_mmoe_config {
    size_t input_dim;
    size_t n_experts;
    size_t expert_hidden;
    size_t tower_hidden;
    size_t n_tasks;
    struct cascade_mmoe_task tasks[CASCADE_MMOE_MAX_TASKS];
    float expert_dropout; /* probability of dropping an expert per example in training */
    uint64_t seed;        /* initialisation seed */
};

/* Defaults: 4 experts of 32, towers of 16, expert dropout 0.1, seed 1, and
 * the six tasks click, like, collect, share, watch_time (WATCH_TIME kind),
 * complete, each with loss weight 1. */
void cascade_mmoe_config_default(struct cascade_mmoe_config *c, size_t input_dim);

/* Keep only the named tasks, comma separated ("click,watch_time"); names
 * other than "watch_time" are binary. 0 or CASCADE_EINVAL with err. */
int cascade_mmoe_config_set_tasks(struct cascade_mmoe_config *c, const char *csv, char *err,
                                  size_t errlen);

typedef struct cascade_mmoe cascade_mmoe;

/* A new model initialised from c->seed (He-uniform experts and tower hidden
 * layers, Xavier gates and output layers, zero biases). NULL with err on a
 * bad config or out of memory. */
cascade_mmoe *cascade_mmoe_create(const struct cascade_mmoe_config *c, char *err, size_t errlen);
/* Free the model. NULL is a no-op. */
void cascade_mmoe_destroy(cascade_mmoe *m);
/* The model's configuration (owned by m). */
const struct cascade_mmoe_config *cascade_mmoe_config(const cascade_mmoe *m);
/* Its parameter set (owned by m): for the optimiser, or to freeze parts. */
cascade_nn_params *cascade_mmoe_params(cascade_mmoe *m);
/* Index of the task called name, or -1. */
int cascade_mmoe_task_index(const cascade_mmoe *m, const char *name);

/* Per-call activations and gradients for up to max_batch examples. One
 * scratch per thread: forward passes over one const model with separate
 * scratches may run in parallel. */
typedef struct cascade_mmoe_scratch cascade_mmoe_scratch;

/* NULL when out of memory or max_batch is 0. */
cascade_mmoe_scratch *cascade_mmoe_scratch_create(const cascade_mmoe *m, size_t max_batch);
void cascade_mmoe_scratch_destroy(cascade_mmoe_scratch *s);

/* Inference logits z [n, n_tasks] (row per example) for x [n, input_dim]; any
 * n (processed in chunks of the scratch's max_batch). No dropout. 0 or
 * CASCADE_EINVAL. */
int cascade_mmoe_logits(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x, size_t n,
                        float *z);
/* Served predictions [n, n_tasks]: sigmoid(z) for binary tasks, exp(z) (the
 * expected watch time) for watch-time tasks. */
int cascade_mmoe_predict(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x, size_t n,
                         float *out);
/* The served value of one task's logit. */
float cascade_mmoe_serve(enum cascade_mmoe_task_kind kind, float z);
/* The training target of a label: t/(1+t) for watch time, the label itself
 * otherwise. */
float cascade_mmoe_target(enum cascade_mmoe_task_kind kind, float label);

/* Draw a fresh expert-dropout mask into s for batch examples (rate from the
 * config; a rate of 0 keeps every expert). The next _loss/_backward with
 * use_dropout applies it as the gates' softmax keep-mask. */
void cascade_mmoe_draw_dropout(const cascade_mmoe *m, cascade_mmoe_scratch *s,
                               struct cascade_rng *rng, size_t batch);

/* Training loss for x [batch, input_dim], labels [batch, n_tasks] (0/1, or
 * the raw watch time t) and optional weights [batch, n_tasks] (0 masks a
 * missing label; NULL = 1): Σ_t loss_weight_t · mean BCE_t. task_loss
 * [n_tasks] (may be NULL) receives each task's mean BCE. batch ≤ max_batch.
 * Returns NaN on a bad size. Forward only: gradients are not touched. */
double cascade_mmoe_loss(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                         const float *labels, const float *weights, size_t batch, bool use_dropout,
                         double *task_loss);
/* The same loss, then its gradient ACCUMULATED into every parameter's grad
 * (cascade_nn_optim_step on cascade_mmoe_params applies and clears them). */
double cascade_mmoe_backward(cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                             const float *labels, const float *weights, size_t batch,
                             bool use_dropout, double *task_loss);

/* Gate spread over x [n, input_dim] (no dropout): mean_weight [n_tasks ×
 * n_experts] the mean gate weight of each expert per task, entropy [n_tasks]
 * the mean entropy of the gate distribution in nats (log n_experts is a
 * uniform gate, 0 a gate polarised onto one expert). Either may be NULL. */
int cascade_mmoe_gate_stats(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                            size_t n, double *mean_weight, double *entropy);

/* Save as safetensors (atomic), with the config in the metadata and an
 * optional version string. 0 or a negative code with err. */
int cascade_mmoe_save(const cascade_mmoe *m, const char *path, const char *version, char *err,
                      size_t errlen);
/* Load a model saved by cascade_mmoe_save (or by torch with the same names
 * and the same metadata keys). NULL with err. */
cascade_mmoe *cascade_mmoe_load(const char *path, char *err, size_t errlen);

#endif
