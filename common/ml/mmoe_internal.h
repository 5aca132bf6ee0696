/* Internals shared by the MMoE sources only (mmoe.c, mmoe_io.c): the model
 * and scratch layouts and the batched forward pass. Not part of the API. */
#ifndef CASCADE_MMOE_INTERNAL_H
#define CASCADE_MMOE_INTERNAL_H

#include "mmoe.h"

struct cascade_mmoe {
    struct cascade_mmoe_config cfg;
    cascade_nn_params *ps;
    struct cascade_nn_dense experts[CASCADE_MMOE_MAX_EXPERTS];    /* experts.{e}.0 */
    struct cascade_nn_dense gates[CASCADE_MMOE_MAX_TASKS];        /* gates.{t} */
    struct cascade_nn_dense tower_hidden[CASCADE_MMOE_MAX_TASKS]; /* towers.{t}.0 */
    struct cascade_nn_dense tower_out[CASCADE_MMOE_MAX_TASKS];    /* towers.{t}.2 */
};

/* Activations of the last forward pass (per task blocks of max_batch rows)
 * and backward temporaries. */
struct cascade_mmoe_scratch {
    size_t max_batch;
    float *stacked;    /* [B, E, H] expert outputs after ReLU */
    float *dstacked;   /* [B, E, H] gradient summed over tasks */
    float *dstacked_t; /* [B, E, H] one task's share */
    float *tmp, *tmp2; /* [B, H] */
    uint8_t *keep;     /* [B, E] expert-dropout mask */
    float *gate;       /* [T][B, E] gate softmax */
    float *mix;        /* [T][B, H] gated mixture */
    float *hid;        /* [T][B, TH] tower hidden after ReLU */
    float *z;          /* [T][B] logits */
    float *dz, *dhid, *dg;
    float *target, *weight; /* [B] one task's training targets and weights */
};

/* Forward pass of batch ≤ s->max_batch examples into s (keep NULL: no
 * dropout). 0 or CASCADE_EINVAL. */
int cascade__mmoe_forward(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                          size_t batch, const uint8_t *keep);

/* snprintf into err when err is not NULL. */
void cascade__mmoe_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
