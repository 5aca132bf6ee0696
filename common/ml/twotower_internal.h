/* Internals of the two-tower model shared by twotower.c (towers, inference,
 * persistence) and twotower_train.c (objectives): the tower layout, per-batch
 * inputs and the activations a backward pass needs. Not part of the API. */
#ifndef CASCADE_TWOTOWER_INTERNAL_H
#define CASCADE_TWOTOWER_INTERNAL_H

#include "twotower.h"

#define TT_MAX_FEATS 5

/* One tower: n_feats embedding bags concatenated, then an MLP and L2 norm. */
struct tt_tower {
    size_t n_feats, emb_dim, in_dim, hidden, out_dim;
    struct cascade_nn_embedding emb[TT_MAX_FEATS];
    struct cascade_nn_dense fc1, fc2; /* fc2 only when hidden > 0 */
};

struct cascade_twotower {
    struct cascade_twotower_config cfg;
    cascade_nn_params *ps;
    struct tt_tower user, item;
};

/* A tower's input for one batch: one bag list per feature. */
struct tt_input {
    size_t batch;
    struct cascade_nn_bags bags[TT_MAX_FEATS];
    size_t *offsets_single; /* 0..batch, shared by the one-id features */
    size_t *offsets_hist;   /* user tower: the history bags */
    uint32_t *ids;          /* every feature's ids, one block */
};

/* Activations of one tower over a batch (one allocation). */
struct tt_acts {
    size_t batch;
    float *feat;  /* [n_feats][batch, emb_dim] pooled per feature */
    float *x;     /* [batch, in_dim] concatenation */
    float *h;     /* [batch, hidden] after ReLU (hidden > 0) */
    float *y;     /* [batch, out_dim] before normalisation */
    float *out;   /* [batch, out_dim] normalised */
    float *norms; /* [batch] */
    float *block;
};

/* Build tower inputs, checking every id against the config (message in err). */
int cascade_twotower__user_input(const cascade_twotower *m, const struct cascade_twotower_user *u,
                                 size_t n, struct tt_input *in, char *err, size_t errlen);
int cascade_twotower__item_input(const cascade_twotower *m, const struct cascade_twotower_item *it,
                                 size_t n, struct tt_input *in, char *err, size_t errlen);
void cascade_twotower__input_free(struct tt_input *in);

int cascade_twotower__acts_alloc(const struct tt_tower *t, size_t batch, struct tt_acts *a);
void cascade_twotower__acts_free(struct tt_acts *a);

/* Forward pass of a tower over in, filling a (a->out holds the vectors). */
int cascade_twotower__tower_forward(const struct tt_tower *t, const struct tt_input *in,
                                    struct tt_acts *a);
/* Backward from dout [batch, out_dim] (the gradient of the normalised
 * output; not modified): accumulate parameter gradients. */
int cascade_twotower__tower_backward(struct tt_tower *t, const struct tt_input *in,
                                     const struct tt_acts *a, const float *dout);

#endif
