/* A small seeded random number generator for the builder (xoshiro256**, seeded
 * through splitmix64) with the distributions the world generator needs.
 * Deterministic for a seed on every machine; one generator per thread. */
#ifndef CASCADE_BUILDER_RNG_H
#define CASCADE_BUILDER_RNG_H

#include <math.h>
#include <stdint.h>

struct cascade__rng {
    uint64_t s[4];
};

static inline uint64_t cascade__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void cascade__rng_seed(struct cascade__rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = cascade__splitmix64(&seed);
}

static inline uint64_t cascade__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t cascade__rng_next(struct cascade__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = cascade__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cascade__rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double cascade__rng_uniform(struct cascade__rng *r)
{
    return (double)(cascade__rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0. */
static inline uint64_t cascade__rng_below(struct cascade__rng *r, uint64_t n)
{
    return (uint64_t)(cascade__rng_uniform(r) * (double)n) % n;
}

/* Standard normal (Box-Muller; one value per call keeps the state simple). */
static inline double cascade__rng_normal(struct cascade__rng *r)
{
    double u1 = cascade__rng_uniform(r), u2 = cascade__rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 boosted by U^(1/shape). */
static inline double cascade__rng_gamma(struct cascade__rng *r, double shape)
{
    double boost = 1.0;
    if (shape < 1.0) {
        double u = cascade__rng_uniform(r);
        boost = pow(u > 1e-300 ? u : 1e-300, 1.0 / shape);
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = cascade__rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = cascade__rng_uniform(r);
        if (log(u > 1e-300 ? u : 1e-300) < 0.5 * x * x + d - d * v + d * log(v))
            return boost * d * v;
    }
}

/* Bernoulli(p). */
static inline int cascade__rng_bernoulli(struct cascade__rng *r, double p)
{
    return cascade__rng_uniform(r) < p;
}

#endif
