/* The project's seeded random number generator (rng.h): seeding and the
 * distributions that need libm; the bit generator itself is inline in the
 * header. */
#include "rng.h"

#include <math.h>

void cascade_rng_seed(struct cascade_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = cascade_rng_splitmix64(&seed);
}

double cascade_rng_normal(struct cascade_rng *r)
{
    double u1 = cascade_rng_uniform(r), u2 = cascade_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double cascade_rng_gamma(struct cascade_rng *r, double shape)
{
    double boost = 1.0;
    if (shape < 1.0) {
        double u = cascade_rng_uniform(r);
        boost = pow(u > 1e-300 ? u : 1e-300, 1.0 / shape);
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = cascade_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = cascade_rng_uniform(r);
        if (log(u > 1e-300 ? u : 1e-300) < 0.5 * x * x + d - d * v + d * log(v))
            return boost * d * v;
    }
}
