/* Logistic regression over hashed binary features: each example is a short
 * list of bucket indices into 2^bits weights (the hashing trick), trained
 * one example at a time with Adagrad and L2 on the active weights. Saved as
 * safetensors ("weight" [2^bits], "bias" [1]; metadata version, bits, spec).
 * A model that is no longer being trained is safe to share between threads. */
#ifndef CASCADE_HASHLR_H
#define CASCADE_HASHLR_H

#include <stddef.h>
#include <stdint.h>

#define CASCADE_HASHLR_MIN_BITS 4
#define CASCADE_HASHLR_MAX_BITS 28

typedef struct cascade_hashlr cascade_hashlr;

struct cascade_hashlr_train_opts {
    float learning_rate; /* Adagrad step size, default 0.05 (train-prerank uses 0.02) */
    float l2;            /* L2 penalty on the weights an example touches, default 1e-6 */
};

/* Defaults as documented in the struct. */
void cascade_hashlr_train_defaults(struct cascade_hashlr_train_opts *o);

/* A zero model with 2^bits weights (bits in MIN_BITS..MAX_BITS) and feature
 * spec `spec` (copied; a name for how indices were computed, checked by
 * loaders). NULL when bits is out of range or out of memory. */
cascade_hashlr *cascade_hashlr_create(unsigned bits, const char *spec);

/* NULL is a no-op. */
void cascade_hashlr_destroy(cascade_hashlr *m);

unsigned cascade_hashlr_bits(const cascade_hashlr *m);
/* The feature spec and version strings (owned by m; version "untrained" before save/load). */
const char *cascade_hashlr_spec(const cascade_hashlr *m);
const char *cascade_hashlr_version(const cascade_hashlr *m);

/* Bucket index of a 64-bit feature hash: its low `bits` bits. */
static inline uint32_t cascade_hashlr_bucket(uint64_t h, unsigned bits)
{
    return (uint32_t)(h & ((1ull << bits) - 1));
}

/* bias + sum of the weights at idx[0..n) (indices must be < 2^bits). */
double cascade_hashlr_logit(const cascade_hashlr *m, const uint32_t *idx, size_t n);

/* sigmoid(cascade_hashlr_logit). */
float cascade_hashlr_predict(const cascade_hashlr *m, const uint32_t *idx, size_t n);

/* One Adagrad step on the example (idx, label y in {0,1}); returns the
 * example's log loss before the step. Not thread-safe on m. */
double cascade_hashlr_update(cascade_hashlr *m, const uint32_t *idx, size_t n, float y,
                             const struct cascade_hashlr_train_opts *o);

/* Set the bias (e.g. to the log-odds of the base rate before training). */
void cascade_hashlr_set_bias(cascade_hashlr *m, float bias);
float cascade_hashlr_bias(const cascade_hashlr *m);

/* The weight at bucket i (< 2^bits). */
float cascade_hashlr_weight(const cascade_hashlr *m, uint32_t i);

/* Start dst from src's weights and bias (warm start; the Adagrad state
 * starts fresh). 0, or CASCADE_EINVAL with err when the bits or the feature
 * spec differ. */
int cascade_hashlr_copy_weights(cascade_hashlr *dst, const cascade_hashlr *src, char *err,
                                size_t errlen);

/* Save atomically to path with version `version`. 0 or a negative code with err. */
int cascade_hashlr_save(const cascade_hashlr *m, const char *path, const char *version, char *err,
                        size_t errlen);

/* Load a model saved by cascade_hashlr_save. NULL with "path: reason" in err
 * when the file is unreadable, has no/invalid bits, or tensor sizes disagree. */
cascade_hashlr *cascade_hashlr_load(const char *path, char *err, size_t errlen);

#endif
