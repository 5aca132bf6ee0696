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
    int epochs;           /* default 5 */
    size_t batch_size;    /* default 1024 */
    float learning_rate;  /* default 0.01 */
    float l2;             /* default 1e-5 */
    uint64_t seed;        /* shuffling seed */
    /* Called after each epoch with the epoch's mean loss (may be NULL). */
    void (*on_epoch)(void *ud, int epoch, double loss, double examples_per_s);
    void *ud;
};

/* Train on X (n × dim, row-major) and labels y in {0,1}. */
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

#endif
