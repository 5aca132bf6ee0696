/* Logistic regression on dense features with OpenBLAS: mini-batch training
 * (Adam, L2), batched prediction with sgemv, and safetensors persistence
 * (tensors "weight" [dim] and "bias" [1]; metadata "version", "features").
 * A trained model is immutable and safe to share between threads. */
#ifndef CASCADE_LR_H
#define CASCADE_LR_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_lr cascade_lr;

struct cascade_lr_train_opts {
    int epochs;          /* default 5 */
    size_t batch_size;   /* default 1024 */
    float learning_rate; /* default 0.01 */
    float l2;            /* default 1e-5 */
    uint64_t seed;       /* shuffling seed */
    /* Called after each epoch with the epoch's mean loss (may be NULL). */
    void (*on_epoch)(void *ud, int epoch, double loss, double examples_per_s);
    void *ud;
};

/* Train on X (n × dim, row-major) and labels y in {0,1}. The bias starts at
 * the log-odds of the mean label (cascade_lr_init_bias), the weights at 0. */
cascade_lr *cascade_lr_train(const float *X, const float *y, size_t n, size_t dim,
                             const struct cascade_lr_train_opts *opts, char *err, size_t errlen);
void cascade_lr_destroy(cascade_lr *m);

size_t cascade_lr_dim(const cascade_lr *m);
/* Version string (the file's metadata, or "untrained"). Owned by m. */
const char *cascade_lr_version(const cascade_lr *m);

/* p[i] = sigmoid(X[i]·w + b) for n rows. */
void cascade_lr_predict(const cascade_lr *m, const float *X, size_t n, float *p);

int cascade_lr_save(const cascade_lr *m, const char *path, const char *version, char *err,
                    size_t errlen);
cascade_lr *cascade_lr_load(const char *path, char *err, size_t errlen);

/* Area under the ROC curve of scores against {0,1} labels (ties averaged).
 * Returns 0.5 when one class is absent. */
double cascade_auc(const float *scores, const float *labels, size_t n);
/* Mean binary cross-entropy. */
double cascade_logloss(const float *p, const float *labels, size_t n);

/* A zero-weight model of dim features, version "untrained": the starting
 * point for step-wise training with cascade_lr_fit. NULL when out of memory. */
cascade_lr *cascade_lr_create(size_t dim);

/* Continue training m in place for opts->epochs epochs over X (n × dim) and y
 * (opts may be NULL for defaults). Adam moments live in m, so successive calls
 * (one epoch each, say, with an evaluation in between) continue smoothly; the
 * shuffle seed is offset by the number of epochs already run. Not thread-safe
 * on m. Returns 0 or CASCADE_EINVAL / CASCADE_ENOMEM with a message in err. */
int cascade_lr_fit(cascade_lr *m, const float *X, const float *y, size_t n,
                   const struct cascade_lr_train_opts *opts, char *err, size_t errlen);

/* Set the bias to the log-odds of the mean of y[0..n) (clamped away from 0
 * and 1), so that the first training steps go into the weights rather than
 * into learning the base rate. */
void cascade_lr_init_bias(cascade_lr *m, const float *y, size_t n);

/* The training objective on X/y: mean binary cross-entropy plus l2/2·||w||².
 * When grad_w (dim floats) and grad_b are non-NULL they receive its gradient. */
double cascade_lr_loss(const cascade_lr *m, const float *X, const float *y, size_t n, float l2,
                       float *grad_w, float *grad_b);

/* The weights (dim floats, borrowed from m) and, when bias is non-NULL, the bias. */
const float *cascade_lr_weights(const cascade_lr *m, float *bias);

/* Overwrite the weights (dim floats, copied) and bias. */
void cascade_lr_set_weights(cascade_lr *m, const float *w, float bias);

#endif
