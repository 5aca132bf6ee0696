/* Two-tower retrieval model (SPEC §5): a user tower (id, profile buckets,
 * pooled last-n items) and an item tower (id, author, category, age bucket),
 * each an MLP with L2-normalised output; scores are cosines over a temperature.
 * Built on common/ml/nn.h; details and the training objectives in docs/twotower.md. */
#ifndef CASCADE_TWOTOWER_H
#define CASCADE_TWOTOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn.h"

/* Sizes and hyper-parameters. Every id below is a row index: the caller maps
 * raw ids to [0, n_*) (row 0 is a good "unknown" bucket). */
struct cascade_twotower_config {
    size_t n_users, n_items, n_authors, n_categories;
    size_t n_user_age_buckets, n_genders, n_cities, n_item_age_buckets;
    size_t emb_dim;    /* width of every feature embedding */
    size_t hidden;     /* hidden ReLU layer width of both MLPs; 0 = one linear layer */
    size_t out_dim;    /* width of the normalised user/item vectors */
    float temperature; /* τ: logits are cos/τ (pointwise and listwise) */
    float margin;      /* m of the triplet hinge loss */
    float init_std;    /* embeddings ~ N(0, init_std²) */
    uint64_t seed;     /* initialisation seed */
};

/* Fill c with defaults (emb 16, hidden 64, out 32, τ 0.05, m 0.2, std 0.1,
 * seed 1) and zero table sizes, which the caller must set. */
void cascade_twotower_config_default(struct cascade_twotower_config *c);

/* One user's features. history (borrowed) holds up to any number of item rows,
 * mean-pooled; it may be empty. */
struct cascade_twotower_user {
    uint32_t user_id, age_bucket, gender, city;
    const uint32_t *history;
    size_t n_history;
};

/* One item's features. */
struct cascade_twotower_item {
    uint32_t item_id, author, category, age_bucket;
};

typedef struct cascade_twotower cascade_twotower;

/* A new model with seeded random weights. 0, or CASCADE_EINVAL (a zero size,
 * τ ≤ 0) / CASCADE_ENOMEM with a message in err. *out is freed by _destroy. */
int cascade_twotower_create(const struct cascade_twotower_config *cfg, cascade_twotower **out,
                            char *err, size_t errlen);
/* Free the model. NULL is a no-op. */
void cascade_twotower_destroy(cascade_twotower *m);

/* The model's configuration (borrowed, valid while m lives). */
const struct cascade_twotower_config *cascade_twotower_config_get(const cascade_twotower *m);
/* The parameter set (borrowed), e.g. for cascade_nn_optim_step or inspection. */
cascade_nn_params *cascade_twotower_params(cascade_twotower *m);

/* ---- inference: read-only on m, safe from many threads at once ---- */

/* out [n, out_dim] = normalised user vectors. 0, or CASCADE_EINVAL naming the
 * out-of-range feature in err, or CASCADE_ENOMEM. */
int cascade_twotower_user_vectors(const cascade_twotower *m, const struct cascade_twotower_user *u,
                                  size_t n, float *out, char *err, size_t errlen);
/* out [n, out_dim] = normalised item vectors (same errors). */
int cascade_twotower_item_vectors(const cascade_twotower *m, const struct cascade_twotower_item *it,
                                  size_t n, float *out, char *err, size_t errlen);

/* ---- training ---- */

enum cascade_twotower_objective {
    /* BCE on cos/τ: positives with labels (NULL = 1), negatives labelled 0. */
    CASCADE_TWOTOWER_POINTWISE = 1,
    /* mean over (example, negative) of max(0, m + cos⁻ − cos⁺). */
    CASCADE_TWOTOWER_TRIPLET_HINGE = 2,
    /* mean over (example, negative) of log(1 + exp(cos⁻ − cos⁺)). */
    CASCADE_TWOTOWER_TRIPLET_LOG = 3,
    /* softmax cross-entropy over the positive and the negatives (and the other
     * examples' positives when in_batch), logits cos/τ − log q(item). */
    CASCADE_TWOTOWER_LISTWISE = 4,
};

/* A training batch (all arrays borrowed). Example i is users[i] with positive
 * pos[i] and negatives neg[i·n_neg .. (i+1)·n_neg). */
struct cascade_twotower_batch {
    size_t n;
    const struct cascade_twotower_user *users; /* [n] */
    const struct cascade_twotower_item *pos;   /* [n] */
    const float *labels;                       /* pointwise: [n] labels of pos, NULL = 1 */
    size_t n_neg;                              /* negatives per example (may be 0 when in_batch) */
    const struct cascade_twotower_item *neg;   /* [n · n_neg] */
    /* listwise logQ correction: log q of each positive as an in-batch
     * negative, and of each sampled negative; NULL = no correction. */
    const float *pos_logq; /* [n] */
    const float *neg_logq; /* [n · n_neg] */
    bool in_batch;         /* listwise: the other examples' positives are negatives
                            * (those with the same item id as the row's positive are masked) */
    /* in_batch: per example, items that must never be its negatives (its
     * clicks and exposed-but-unclicked items); in-batch columns holding one
     * are masked. NULL = none; else exclude[i] has n_exclude[i] ids. Sampled
     * negatives are kept clean by common/negsample. */
    const uint32_t *const *exclude; /* [n] */
    const size_t *n_exclude;        /* [n] */
};

/* The batch loss (mean over examples) without touching gradients; read-only
 * on m. 0 or a negative code with err (bad ids, no negatives, bad objective). */
int cascade_twotower_loss(const cascade_twotower *m, enum cascade_twotower_objective obj,
                          const struct cascade_twotower_batch *b, double *loss, char *err,
                          size_t errlen);
/* Forward and backward: the loss in *loss and its gradient ACCUMULATED into
 * the parameters' grads (sparse rows touched). Same errors as _loss. */
int cascade_twotower_backward(cascade_twotower *m, enum cascade_twotower_objective obj,
                              const struct cascade_twotower_batch *b, double *loss, char *err,
                              size_t errlen);
/* _backward then cascade_nn_optim_step(o) (which clears the gradients). */
int cascade_twotower_train_step(cascade_twotower *m, struct cascade_nn_optim *o,
                                enum cascade_twotower_objective obj,
                                const struct cascade_twotower_batch *b, double *loss, char *err,
                                size_t errlen);

/* ---- persistence (safetensors; the config is stored as metadata) ---- */

/* Write every parameter and the config to path atomically. */
int cascade_twotower_save(const cascade_twotower *m, const char *path, char *err, size_t errlen);
/* Read a model written by _save: the config from the metadata, then the
 * weights. 0, or CASCADE_EIO/ENOTFOUND/EFORMAT with the reason in err. */
int cascade_twotower_load(const char *path, cascade_twotower **out, char *err, size_t errlen);

#endif
