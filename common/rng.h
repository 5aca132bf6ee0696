/* The project's one seeded random number generator: xoshiro256**, seeded
 * through splitmix64, with the distributions the trainers, the world generator,
 * the evaluation split and the load generator draw from. The same seed gives
 * the same stream on every machine. */
#ifndef CASCADE_RNG_H
#define CASCADE_RNG_H

#include <stdint.h>

/* Generator state. Plain data: copy it to fork a stream. Not thread-safe: one
 * generator per thread (seed each from its own index). */
struct cascade_rng {
    uint64_t s[4];
};

/* splitmix64: advances *x and returns its next well-mixed value; also the
 * 64-bit mixer used to hash an integer (x = key; cascade_rng_splitmix64(&x)). */
static inline uint64_t cascade_rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Seed the generator (four splitmix64 steps from seed). */
void cascade_rng_seed(struct cascade_rng *r, uint64_t seed);

static inline uint64_t cascade__rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Next 64 random bits. Inline: the world generator and the trainers draw in
 * their innermost loops. */
static inline uint64_t cascade_rng_next(struct cascade_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = cascade__rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cascade__rng_rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) (53 random bits). */
static inline double cascade_rng_uniform(struct cascade_rng *r)
{
    return (double)(cascade_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n); n > 0. */
static inline uint64_t cascade_rng_below(struct cascade_rng *r, uint64_t n)
{
    return (uint64_t)(cascade_rng_uniform(r) * (double)n) % n;
}

/* Bernoulli(p): 1 with probability p. */
static inline int cascade_rng_bernoulli(struct cascade_rng *r, double p)
{
    return cascade_rng_uniform(r) < p;
}

/* Standard normal (Box-Muller; one value per call keeps the state simple). */
double cascade_rng_normal(struct cascade_rng *r);

/* Gamma(shape, 1), shape > 0 (Marsaglia and Tsang; shape < 1 boosted by
 * U^(1/shape)). */
double cascade_rng_gamma(struct cascade_rng *r, double shape);

#endif
