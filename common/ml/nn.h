/* A small neural-network library for the learned models (two-tower, MMoE):
 * named parameters with gradients and optimiser state, batched layers with
 * forward/backward over OpenBLAS, losses, Adam/Adagrad, safetensors I/O.
 * Conventions, memory ownership and thread-safety: docs/nn.md. */
#ifndef CASCADE_NN_H
#define CASCADE_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "safetensors.h"

/* Conventions (see docs/nn.md):
 * - Tensors are plain row-major float arrays, batch × features; a function's
 *   comment gives every shape. Dense weights are [out, in] like torch.nn.Linear.
 * - forward writes its output; backward OVERWRITES input gradients (dx, may be
 *   NULL when not needed) and ACCUMULATES parameter gradients (param->grad),
 *   which the optimiser step clears. dx may alias dy where a comment says so.
 * - Functions that call BLAS return 0 or CASCADE_EINVAL (a size over INT_MAX
 *   or an out-of-range id); the others cannot fail and return void.
 * - Nothing here keeps per-call scratch: activations belong to the caller, so
 *   forward passes over a model that is not being trained may run in parallel. */

/* Seeded random numbers: the project's generator, struct cascade_rng (rng.h). */

/* ---- parameters ---- */

/* A trainable tensor of 1 or 2 dimensions. Owned by its cascade_nn_params set;
 * layers hold borrowed pointers to it, valid until the set is destroyed. */
struct cascade_nn_param {
    char *name;           /* e.g. "experts.0.weight" (the safetensors/torch name) */
    int ndim;             /* 1 (a vector: rows = 1) or 2 */
    size_t rows, cols;    /* 2-D view; ndim 1 has rows == 1 */
    size_t size;          /* rows * cols */
    float *value;         /* size floats */
    float *grad;          /* size floats, accumulated by backward passes */
    float *m, *v;         /* optimiser state (NULL until the first step) */
    int state_kind;       /* which optimiser owns m/v (internal) */
    bool sparse;          /* row-wise gradients: only touched rows are updated */
    bool frozen;          /* the optimiser skips it (and clears its gradient) */
    uint8_t *row_touched; /* sparse: rows flags, 1 when the row has a gradient */
    size_t *touched;      /* sparse: the touched rows, n_touched of them */
    size_t n_touched;
};

/* Flags for cascade_nn_params_add. */
#define CASCADE_NN_PARAM_SPARSE 1u

typedef struct cascade_nn_params cascade_nn_params;

/* An empty parameter set; NULL when out of memory. */
cascade_nn_params *cascade_nn_params_create(void);
/* Free the set, its parameters and their state. NULL is a no-op. */
void cascade_nn_params_destroy(cascade_nn_params *ps);

/* Add a zero-initialised parameter `name` (copied) of ndim 1 (shape[0]) or 2
 * (shape[0] × shape[1]). Returns it (owned by ps) or NULL with a message in
 * err: duplicate name, zero or oversized shape, out of memory. */
struct cascade_nn_param *cascade_nn_params_add(cascade_nn_params *ps, const char *name, int ndim,
                                               const size_t *shape, unsigned flags, char *err,
                                               size_t errlen);
/* The parameter called name, or NULL. */
struct cascade_nn_param *cascade_nn_params_find(const cascade_nn_params *ps, const char *name);
/* Number of parameters, and the i-th in insertion order (NULL past the end). */
size_t cascade_nn_params_count(const cascade_nn_params *ps);
struct cascade_nn_param *cascade_nn_params_at(const cascade_nn_params *ps, size_t i);
/* Total number of scalar values over every parameter. */
size_t cascade_nn_params_numel(const cascade_nn_params *ps);
/* Clear every gradient (sparse ones row by row) without touching values or state. */
void cascade_nn_params_zero_grad(cascade_nn_params *ps);

/* Record that `row` of a sparse parameter received a gradient (backward
 * passes of sparse layers call this); no-op for dense parameters. */
void cascade_nn_param_touch_row(struct cascade_nn_param *p, size_t row);

/* ---- initialisation (all draw from rng, so a seed reproduces a model) ---- */

/* value ~ U(-bound, bound). */
void cascade_nn_init_uniform(struct cascade_nn_param *p, struct cascade_rng *rng, float bound);
/* value ~ N(0, std²). */
void cascade_nn_init_normal(struct cascade_nn_param *p, struct cascade_rng *rng, float std);
/* Xavier/Glorot uniform for a [out, in] weight: bound sqrt(6 / (in + out)). */
void cascade_nn_init_xavier_uniform(struct cascade_nn_param *p, struct cascade_rng *rng);
/* He/Kaiming uniform (ReLU gain) for a [out, in] weight: bound sqrt(6 / in). */
void cascade_nn_init_he_uniform(struct cascade_nn_param *p, struct cascade_rng *rng);

enum cascade_nn_init {
    CASCADE_NN_INIT_ZERO,
    CASCADE_NN_INIT_XAVIER_UNIFORM,
    CASCADE_NN_INIT_HE_UNIFORM,
};

/* ---- dense layer: y = x · Wᵀ + b ---- */

struct cascade_nn_dense {
    struct cascade_nn_param *weight; /* [out, in], borrowed from the set */
    struct cascade_nn_param *bias;   /* [out] */
    size_t in, out;
};

/* Add "<prefix>.weight" [out, in] (initialised by `init` from rng, which may
 * be NULL for CASCADE_NN_INIT_ZERO) and
 * "<prefix>.bias" [out] (zero) to ps and point d at them. 0 or a negative
 * code with a message in err. */
int cascade_nn_dense_init(struct cascade_nn_dense *d, cascade_nn_params *ps, const char *prefix,
                          size_t in, size_t out, enum cascade_nn_init init, struct cascade_rng *rng,
                          char *err, size_t errlen);
/* y [batch, out] = x [batch, in] · Wᵀ + b. */
int cascade_nn_dense_forward(const struct cascade_nn_dense *d, const float *x, size_t batch,
                             float *y);
/* Given x [batch, in] and dy [batch, out]: W.grad += dyᵀ·x, b.grad += Σ dy,
 * and dx [batch, in] = dy · W when dx is not NULL. */
int cascade_nn_dense_backward(struct cascade_nn_dense *d, const float *x, const float *dy,
                              size_t batch, float *dx);

/* ---- embedding table with pooled bags ---- */

enum cascade_nn_pool {
    CASCADE_NN_POOL_SUM,
    CASCADE_NN_POOL_MEAN,
};

/* A batch of variable-length id lists (like torch EmbeddingBag with offsets):
 * bag b is ids[offsets[b] .. offsets[b+1]); an empty bag pools to zeros. */
struct cascade_nn_bags {
    size_t batch;
    const size_t *offsets; /* batch + 1 entries, offsets[0] == 0 */
    const uint32_t *ids;   /* offsets[batch] row indices */
    const float *weights;  /* per-id weight, or NULL for 1 */
};

struct cascade_nn_embedding {
    struct cascade_nn_param *table; /* [num, dim], sparse, borrowed from the set */
    size_t num, dim;
    enum cascade_nn_pool pool;
};

/* Add "<prefix>.weight" [num, dim] (sparse, ~ N(0, init_std²) from rng, or
 * zeros when rng is NULL) to ps. 0 or a negative code with a message in err. */
int cascade_nn_embedding_init(struct cascade_nn_embedding *e, cascade_nn_params *ps,
                              const char *prefix, size_t num, size_t dim, enum cascade_nn_pool pool,
                              float init_std, struct cascade_rng *rng, char *err, size_t errlen);
/* 0 when every id of bags is below num and offsets are non-decreasing;
 * otherwise CASCADE_EINVAL with the offending bag and id in err. */
int cascade_nn_bags_check(const struct cascade_nn_bags *bags, size_t num, char *err, size_t errlen);
/* out [batch, dim] = pooled rows of each bag (sum or mean of weight·row).
 * CASCADE_EINVAL on an out-of-range id (cascade_nn_bags_check says which). */
int cascade_nn_embedding_forward(const struct cascade_nn_embedding *e,
                                 const struct cascade_nn_bags *bags, float *out);
/* Scatter dout [batch, dim] into the gradient rows of the ids used, marking
 * only those rows touched (the sparse update reads nothing else). */
int cascade_nn_embedding_backward(struct cascade_nn_embedding *e,
                                  const struct cascade_nn_bags *bags, const float *dout);

/* ---- element-wise and row-wise activations (n = rows · cols elements) ---- */

/* y = max(0, x); y may alias x. */
void cascade_nn_relu_forward(const float *x, size_t n, float *y);
/* dx = dy where y > 0, else 0 (y is the forward output); dx may alias dy. */
void cascade_nn_relu_backward(const float *y, const float *dy, size_t n, float *dx);
/* y = 1 / (1 + e^-x), stable for large |x|; y may alias x. */
void cascade_nn_sigmoid_forward(const float *x, size_t n, float *y);
/* dx = dy · y · (1 − y); dx may alias dy. */
void cascade_nn_sigmoid_backward(const float *y, const float *dy, size_t n, float *dx);

/* Row-wise softmax of x [rows, cols], stable for large logits (max is
 * subtracted). keep [rows, cols] may be NULL; where keep is 0 the entry gets
 * probability 0 and the rest renormalise (a row with nothing kept is all 0).
 * y may alias x. */
void cascade_nn_softmax_forward(const float *x, const uint8_t *keep, size_t rows, size_t cols,
                                float *y);
/* dx_i = y_i · (dy_i − Σ_j y_j dy_j) per row; dx may alias dy. */
void cascade_nn_softmax_backward(const float *y, const float *dy, size_t rows, size_t cols,
                                 float *dx);

/* Row-wise L2 normalisation y = x / max(‖x‖, 1e-12) (as torch F.normalize);
 * norms [rows] receives ‖x‖ for the backward pass. y may alias x. */
void cascade_nn_l2norm_forward(const float *x, size_t rows, size_t cols, float *y, float *norms);
/* dx = (dy − y·(y·dy)) / ‖x‖ per row (dy / 1e-12 where the norm was clamped). */
void cascade_nn_l2norm_backward(const float *y, const float *norms, const float *dy, size_t rows,
                                size_t cols, float *dx);

/* Row-wise dot products out [rows] = Σ_k a[r,k]·b[r,k] (cosine for
 * normalised rows). */
void cascade_nn_rowdot_forward(const float *a, const float *b, size_t rows, size_t cols,
                               float *out);
/* da = dout·b, db = dout·a (either may be NULL). */
void cascade_nn_rowdot_backward(const float *a, const float *b, const float *dout, size_t rows,
                                size_t cols, float *da, float *db);

/* c [m, n] = a [m, k] · bᵀ (b is [n, k]): all pairwise scores, e.g. users ×
 * items for in-batch negatives. */
int cascade_nn_matmul_nt_forward(const float *a, const float *b, size_t m, size_t n, size_t k,
                                 float *c);
/* da [m, k] = dc · b and db [n, k] = dcᵀ · a (either may be NULL). */
int cascade_nn_matmul_nt_backward(const float *a, const float *b, const float *dc, size_t m,
                                  size_t n, size_t k, float *da, float *db);

/* MMoE mixing: out [batch, width] = Σ_e gates[b, e] · experts[b, e, :], with
 * experts laid out [batch, n_experts, width] (torch.stack(dim=1)). */
void cascade_nn_mixture_forward(const float *gates, const float *experts, size_t batch,
                                size_t n_experts, size_t width, float *out);
/* dgates [batch, n_experts] and dexperts [batch, n_experts, width] (either may be NULL). */
void cascade_nn_mixture_backward(const float *gates, const float *experts, const float *dout,
                                 size_t batch, size_t n_experts, size_t width, float *dgates,
                                 float *dexperts);

/* ---- dropout (training only; inference skips it) ---- */

/* Inverted dropout: keep[i] ~ Bernoulli(1 − rate) from rng, y = x·keep/(1 − rate).
 * rate in [0, 1); y may alias x. */
void cascade_nn_dropout_forward(struct cascade_rng *rng, float rate, const float *x, size_t n,
                                uint8_t *keep, float *y);
/* dx = dy·keep/(1 − rate); dx may alias dy. */
void cascade_nn_dropout_backward(float rate, const uint8_t *keep, const float *dy, size_t n,
                                 float *dx);

/* Expert dropout for MMoE: keep [batch, n_experts] drops each expert of each
 * example with probability rate, but always keeps at least one (a random one
 * when all were drawn). Use keep either as the softmax mask of the gate (the
 * gate renormalises over surviving experts) or with _apply below. */
void cascade_nn_expert_dropout_mask(struct cascade_rng *rng, float rate, size_t batch,
                                    size_t n_experts, uint8_t *keep);
/* In place on x [batch, n_experts, width]: zero the dropped experts' blocks
 * and scale the kept ones by 1/(1 − rate). Also the backward pass (apply it
 * to the gradient with the same keep). */
void cascade_nn_expert_dropout_apply(const uint8_t *keep, float rate, size_t batch,
                                     size_t n_experts, size_t width, float *x);

/* ---- losses: the mean over the batch, in double; the gradient of that mean
 * is written to the d* outputs (NULL to skip) ---- */

/* Binary cross-entropy on logits z with labels y in [0, 1] (soft labels
 * allowed, e.g. watch time t/(1+t)): mean of w·(softplus(z) − y·z), stable for
 * any |z|. weights NULL means 1 (a weight of 0 masks an example); the mean
 * divides by n. dz = w·(sigmoid(z) − y)/n. */
double cascade_nn_bce_logits(const float *z, const float *y, const float *weights, size_t n,
                             float *dz);
/* Softmax cross-entropy over rows of logits [rows, cols] with the target
 * column per row (e.g. 0 for the positive in listwise training): mean of
 * −log softmax(z)[target]. dlogits = (softmax − onehot)/rows. NaN when a
 * target is ≥ cols. */
double cascade_nn_softmax_xent(const float *logits, size_t rows, size_t cols,
                               const uint32_t *targets, float *dlogits);
/* Triplet hinge: mean of max(0, margin + cos_neg − cos_pos). */
double cascade_nn_triplet_hinge(const float *cos_pos, const float *cos_neg, size_t n, float margin,
                                float *dpos, float *dneg);
/* Triplet log loss: mean of log(1 + exp(cos_neg − cos_pos)). */
double cascade_nn_triplet_log(const float *cos_pos, const float *cos_neg, size_t n, float *dpos,
                              float *dneg);
/* Mean squared error: mean of (pred − target)². dpred = 2(pred − target)/n. */
double cascade_nn_mse(const float *pred, const float *target, size_t n, float *dpred);

/* ---- optimisers ---- */

enum cascade_nn_optim_kind {
    CASCADE_NN_ADAM = 1,
    CASCADE_NN_ADAGRAD = 2,
};

/* Optimiser settings and step count (a plain value; the per-parameter moments
 * live in each cascade_nn_param). Fill with _adam/_adagrad, then adjust. */
struct cascade_nn_optim {
    enum cascade_nn_optim_kind kind;
    float lr;
    float beta1, beta2;        /* Adam moment decay */
    float eps;                 /* added to the root of the second moment */
    float initial_accumulator; /* Adagrad's starting sum of squares */
    float weight_decay;        /* L2: weight_decay·value is added to the gradient */
    int64_t step;              /* steps taken (Adam's bias correction) */
};

/* Adam with torch defaults: beta1 0.9, beta2 0.999, eps 1e-8, no decay. */
void cascade_nn_optim_adam(struct cascade_nn_optim *o, float lr);
/* Adagrad with torch defaults: eps 1e-10, initial accumulator 0, no decay. */
void cascade_nn_optim_adagrad(struct cascade_nn_optim *o, float lr);

/* One update of every non-frozen parameter from its gradient, then clear all
 * gradients. Dense parameters update every value; sparse ones only the
 * touched rows (their moments too: "lazy" Adam, as torch SparseAdam), so
 * untouched embedding rows stay bit-for-bit unchanged. State is allocated on
 * a parameter's first step. 0, or CASCADE_ENOMEM (nothing updated after the
 * failing parameter), or CASCADE_EINVAL for an unknown kind. */
int cascade_nn_optim_step(struct cascade_nn_optim *o, cascade_nn_params *ps);

/* ---- persistence (safetensors, F32; tensor names are parameter names) ---- */

/* Write every parameter's value to path atomically, with optional string
 * metadata (n_meta key/value pairs). 0 or a negative code with err. */
int cascade_nn_params_save(const cascade_nn_params *ps, const char *path,
                           const char *const *meta_keys, const char *const *meta_values,
                           size_t n_meta, char *err, size_t errlen);
/* Read path and copy a tensor into every parameter of ps by name. All or
 * nothing: a missing tensor (CASCADE_ENOTFOUND) or one of another shape
 * (CASCADE_EFORMAT) leaves ps unchanged and names the tensor, the file and
 * both shapes in err. Tensors in the file that ps lacks are ignored. */
int cascade_nn_params_load(cascade_nn_params *ps, const char *path, char *err, size_t errlen);
/* The same from an already read file (e.g. to read its metadata too); path
 * is only used in messages. */
int cascade_nn_params_load_from(cascade_nn_params *ps, const cascade_safetensors *st,
                                const char *path, char *err, size_t errlen);

#endif
