/* The parameter initialisers of the nn library (uniform, normal, Xavier, He),
 * drawing from the project's seeded generator (rng.h), so that a seed
 * reproduces a model exactly on every machine. */
#include "nn.h"

#include <math.h>

void cascade_nn_init_uniform(struct cascade_nn_param *p, struct cascade_rng *rng, float bound)
{
    for (size_t i = 0; i < p->size; i++)
        p->value[i] = (float)((2.0 * cascade_rng_uniform(rng) - 1.0) * bound);
}

void cascade_nn_init_normal(struct cascade_nn_param *p, struct cascade_rng *rng, float std)
{
    for (size_t i = 0; i < p->size; i++)
        p->value[i] = (float)(cascade_rng_normal(rng) * std);
}

/* A [out, in] weight has fan_in = cols and fan_out = rows; a vector counts
 * as one row. */
void cascade_nn_init_xavier_uniform(struct cascade_nn_param *p, struct cascade_rng *rng)
{
    cascade_nn_init_uniform(p, rng, (float)sqrt(6.0 / (double)(p->rows + p->cols)));
}

void cascade_nn_init_he_uniform(struct cascade_nn_param *p, struct cascade_rng *rng)
{
    cascade_nn_init_uniform(p, rng, (float)sqrt(6.0 / (double)p->cols));
}
