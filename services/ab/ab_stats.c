/* The readout's statistics: CTR with its delta-method variance, per-user
 * means, the normal-approximation difference test and the chi-square upper
 * tail for the sample-ratio-mismatch test. Formulas in docs/experiments.md. */
#include <math.h>

#include "ab_internal.h"

#define Z_975 1.959963984540054 /* the standard normal's 97.5% quantile */

/* Sample variance from a sum and a sum of squares over n units. */
static double sample_var(double n, double sum, double sum_sq)
{
    if (n < 2)
        return NAN;
    double mean = sum / n;
    double v = (sum_sq - n * mean * mean) / (n - 1);
    return v < 0 ? 0 : v; /* rounding can leave -1e-17 */
}

void ab_ctr(const struct ab_arm_stats *s, double *ctr, double *var)
{
    double n = s->users;
    *ctr = s->sy > 0 ? s->sx / s->sy : NAN;
    if (n < 2 || s->sy <= 0) {
        *var = NAN;
        return;
    }
    /* The user is the randomisation unit: CTR = mean(x) / mean(y) over
     * users, and the delta method linearises the ratio around the means. */
    double mx = s->sx / n, my = s->sy / n;
    double vx = sample_var(n, s->sx, s->sxx), vy = sample_var(n, s->sy, s->syy);
    double cov = (s->sxy - n * mx * my) / (n - 1);
    *var =
        (vx / (my * my) - 2 * mx * cov / (my * my * my) + mx * mx * vy / (my * my * my * my)) / n;
}

void ab_per_user(const struct ab_arm_stats *s, double sum, double sum_sq, double *mean, double *var)
{
    double n = s->users;
    *mean = n > 0 ? sum / n : NAN;
    *var = sample_var(n, sum, sum_sq) / n;
}

double ab_normal_p(double z)
{
    return erfc(fabs(z) / sqrt(2.0));
}

struct ab_diff ab_compare(double c, double var_c, double t, double var_t, bool valid)
{
    struct ab_diff d = {.control = c, .treatment = t, .diff = t - c};
    d.rel = c != 0 ? d.diff / c : NAN;
    d.se = sqrt(var_c + var_t);
    d.valid = valid && isfinite(d.diff) && isfinite(d.se) && d.se > 0;
    if (!d.valid) {
        d.lo = d.hi = d.p = NAN;
        return d;
    }
    d.lo = d.diff - Z_975 * d.se;
    d.hi = d.diff + Z_975 * d.se;
    d.p = ab_normal_p(d.diff / d.se);
    return d;
}

/* Regularised upper incomplete gamma Q(a, y): the power series of P for
 * y < a + 1, the continued fraction of Q (modified Lentz) otherwise. */
static double gamma_q(double a, double y)
{
    const double eps = 1e-15, tiny = 1e-300;
    if (y <= 0)
        return 1.0;
    double log_front = -y + a * log(y) - lgamma(a);
    if (y < a + 1) {
        double term = 1.0 / a, sum = term;
        for (int n = 1; n < 10000 && fabs(term) > fabs(sum) * eps; n++) {
            term *= y / (a + n);
            sum += term;
        }
        return 1.0 - sum * exp(log_front);
    }
    double b = y + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1) < eps)
            break;
    }
    return exp(log_front) * h;
}

double ab_chi2_p(double x, double df)
{
    if (!(df > 0) || !(x >= 0))
        return NAN;
    return gamma_q(df / 2, x / 2);
}
