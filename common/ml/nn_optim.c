/* Optimisers of the nn library: Adam and Adagrad with torch's update rules.
 * Dense parameters update every value; sparse ones (embedding tables) only
 * the rows touched since the last step, moments included ("lazy" updates). */
#include "nn.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "nn_internal.h"

void cascade_nn_optim_adam(struct cascade_nn_optim *o, float lr)
{
    *o = (struct cascade_nn_optim){
        .kind = CASCADE_NN_ADAM, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
}

void cascade_nn_optim_adagrad(struct cascade_nn_optim *o, float lr)
{
    *o = (struct cascade_nn_optim){.kind = CASCADE_NN_ADAGRAD, .lr = lr, .eps = 1e-10f};
}

/* Make p's moments belong to o's kind: allocate them on the first step, and
 * start them afresh if another optimiser kind used them before. */
static int ensure_state(const struct cascade_nn_optim *o, struct cascade_nn_param *p)
{
    if (p->state_kind == (int)o->kind)
        return 0;
    if (!p->v)
        p->v = calloc(p->size, sizeof(float));
    if (o->kind == CASCADE_NN_ADAM && !p->m)
        p->m = calloc(p->size, sizeof(float));
    if (!p->v || (o->kind == CASCADE_NN_ADAM && !p->m))
        return CASCADE_ENOMEM;
    float v0 = o->kind == CASCADE_NN_ADAGRAD ? o->initial_accumulator : 0.0f;
    for (size_t i = 0; i < p->size; i++) {
        p->v[i] = v0;
        if (p->m)
            p->m[i] = 0.0f;
    }
    p->state_kind = (int)o->kind;
    return 0;
}

/* Adam on values [from, from + count) of p; bc1/bc2 are the bias corrections. */
static void adam_range(const struct cascade_nn_optim *o, struct cascade_nn_param *p, size_t from,
                       size_t count, double bc1, double bc2)
{
    float b1 = o->beta1, b2 = o->beta2;
    double step = o->lr / bc1, root_bc2 = sqrt(bc2);
    for (size_t i = from; i < from + count; i++) {
        float g = p->grad[i] + o->weight_decay * p->value[i];
        p->m[i] = b1 * p->m[i] + (1.0f - b1) * g;
        p->v[i] = b2 * p->v[i] + (1.0f - b2) * g * g;
        double denom = sqrt((double)p->v[i]) / root_bc2 + o->eps;
        p->value[i] -= (float)(step * p->m[i] / denom);
    }
}

static void adagrad_range(const struct cascade_nn_optim *o, struct cascade_nn_param *p, size_t from,
                          size_t count)
{
    for (size_t i = from; i < from + count; i++) {
        float g = p->grad[i] + o->weight_decay * p->value[i];
        p->v[i] += g * g;
        p->value[i] -= (float)(o->lr * g / (sqrt((double)p->v[i]) + o->eps));
    }
}

static void update_range(const struct cascade_nn_optim *o, struct cascade_nn_param *p, size_t from,
                         size_t count)
{
    if (o->kind == CASCADE_NN_ADAM) {
        double t = (double)o->step;
        adam_range(o, p, from, count, 1.0 - pow(o->beta1, t), 1.0 - pow(o->beta2, t));
    } else {
        adagrad_range(o, p, from, count);
    }
}

static int step_param(const struct cascade_nn_optim *o, struct cascade_nn_param *p)
{
    if (p->frozen)
        goto out;
    int rc = ensure_state(o, p);
    if (rc < 0)
        return rc;
    if (!p->sparse) {
        update_range(o, p, 0, p->size);
        goto out;
    }
    for (size_t i = 0; i < p->n_touched; i++)
        update_range(o, p, p->touched[i] * p->cols, p->cols);
out:
    cascade__nn_param_zero_grad(p);
    return 0;
}

int cascade_nn_optim_step(struct cascade_nn_optim *o, cascade_nn_params *ps)
{
    if (o->kind != CASCADE_NN_ADAM && o->kind != CASCADE_NN_ADAGRAD)
        return CASCADE_EINVAL;
    o->step++;
    for (size_t i = 0; i < cascade_nn_params_count(ps); i++) {
        int rc = step_param(o, cascade_nn_params_at(ps, i));
        if (rc < 0)
            return rc;
    }
    return 0;
}
