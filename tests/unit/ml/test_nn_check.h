/* Shared helpers for the nn unit tests: random fills, the scalar objective
 * Σ r·y used to probe a layer's backward pass, and a central finite-difference
 * gradient check that reports the worst relative error. */
#ifndef CASCADE_TEST_NN_CHECK_H
#define CASCADE_TEST_NN_CHECK_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nn.h"

/* Gradients must match finite differences to this relative error. Relative
 * to max(|analytic|, |numeric|, NN_GRAD_FLOOR): below the floor a float32
 * forward pass cannot resolve the difference, so the check is absolute there. */
#define NN_GRAD_TOL 1e-3
#define NN_GRAD_FLOOR 1e-2

static inline void nn_fill(struct cascade_rng *rng, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * cascade_rng_uniform(rng));
}

/* Uniform values in ±[lo, hi]: away from 0 (for kinks such as ReLU's). */
static inline void nn_fill_away(struct cascade_rng *rng, float *x, size_t n, float lo, float hi)
{
    nn_fill(rng, x, n, lo, hi);
    for (size_t i = 0; i < n; i++)
        if (cascade_rng_uniform(rng) < 0.5)
            x[i] = -x[i];
}

/* Σ r_i·y_i in double: its gradient with respect to y is r. */
static inline double nn_dot(const float *r, const float *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)r[i] * y[i];
    return s;
}

/* |a − b| ≤ tol in double. Used instead of cmocka's assert_float_equal, which
 * compares as float and lets an infinity pass. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (double)(tol)))                                                     \
            fail_msg("%s = %.9g, expected %.9g ± %g", #a, a_, b_, (double)(tol));                  \
    } while (0)

typedef double (*nn_objective)(void *ctx);

/* (f(x + h) − f(x − h)) / 2h for the one input *xi (restored after). The
 * step is taken as the float difference actually applied. */
static inline double nn_central(nn_objective f, void *ctx, float *xi, float h)
{
    float saved = *xi, hi = saved + h, lo = saved - h;
    *xi = hi;
    double up = f(ctx);
    *xi = lo;
    double down = f(ctx);
    *xi = saved;
    return (up - down) / ((double)hi - (double)lo);
}

/* Compare analytic[i] with the finite-difference derivative along e_i for every i
 * (x is restored). Returns the worst relative error and prints where it was
 * when it exceeds NN_GRAD_TOL (always with NN_GRADCHECK_VERBOSE set). */
static inline double nn_gradcheck(const char *what, nn_objective f, void *ctx, float *x, size_t n,
                                  const float *analytic, float h)
{
    double worst = 0.0;
    size_t worst_i = 0;
    double worst_num = 0.0;
    for (size_t i = 0; i < n; i++) {
        /* Richardson: (4·D(h/2) − D(h))/3 cancels the h² error of central
         * differences, so h can stay large enough for float32 rounding not
         * to matter. */
        double num = (4.0 * nn_central(f, ctx, &x[i], h / 2) - nn_central(f, ctx, &x[i], h)) / 3.0;
        double a = analytic[i];
        double scale = fmax(fmax(fabs(a), fabs(num)), NN_GRAD_FLOOR);
        double rel = fabs(a - num) / scale;
        if (i == 0 || rel > worst) {
            worst = rel;
            worst_i = i;
            worst_num = num;
        }
    }
    if (worst > NN_GRAD_TOL || getenv("NN_GRADCHECK_VERBOSE"))
        fprintf(stderr, "%s: gradient %zu analytic %.6g numeric %.6g (relative error %.3g)\n", what,
                worst_i, (double)analytic[worst_i], worst_num, worst);
    return worst;
}

#endif
