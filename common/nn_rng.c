/* Seeded random numbers for the nn library (xoshiro256** seeded through
 * splitmix64) and the parameter initialisers built on them, so that a seed
 * reproduces a model exactly on every machine. */
#include "nn.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cascade_nn_rng_seed(struct cascade_nn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t cascade_nn_rng_next(struct cascade_nn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cascade_nn_rng_uniform(struct cascade_nn_rng *r)
{
    return (double)(cascade_nn_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t cascade_nn_rng_below(struct cascade_nn_rng *r, uint64_t n)
{
    return (uint64_t)(cascade_nn_rng_uniform(r) * (double)n) % n;
}

double cascade_nn_rng_normal(struct cascade_nn_rng *r)
{
    double u1 = cascade_nn_rng_uniform(r), u2 = cascade_nn_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void cascade_nn_init_uniform(struct cascade_nn_param *p, struct cascade_nn_rng *rng, float bound)
{
    for (size_t i = 0; i < p->size; i++)
        p->value[i] = (float)((2.0 * cascade_nn_rng_uniform(rng) - 1.0) * bound);
}

void cascade_nn_init_normal(struct cascade_nn_param *p, struct cascade_nn_rng *rng, float std)
{
    for (size_t i = 0; i < p->size; i++)
        p->value[i] = (float)(cascade_nn_rng_normal(rng) * std);
}

/* A [out, in] weight has fan_in = cols and fan_out = rows; a vector counts
 * as one row. */
void cascade_nn_init_xavier_uniform(struct cascade_nn_param *p, struct cascade_nn_rng *rng)
{
    cascade_nn_init_uniform(p, rng, (float)sqrt(6.0 / (double)(p->rows + p->cols)));
}

void cascade_nn_init_he_uniform(struct cascade_nn_param *p, struct cascade_nn_rng *rng)
{
    cascade_nn_init_uniform(p, rng, (float)sqrt(6.0 / (double)p->cols));
}
