/* Unit tests of the readout's statistics (services/ab/ab_stats.c) against
 * published table values: chi-square critical values (upper tail 0.05, 0.01,
 * 0.001) and the normal's two-sided 5% point; and the delta-method CTR
 * variance on a three-user case worked by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ab_internal.h"

static void test_chi2_table(void **state)
{
    (void)state;
    /* {df, critical value, upper-tail probability} from the standard table. */
    static const double table[][3] = {
        {1, 3.841, 0.05},   {1, 10.828, 0.001}, {2, 5.991, 0.05},
        {3, 7.815, 0.05},   {3, 16.266, 0.001}, {5, 11.070, 0.05},
        {10, 23.209, 0.01}, {20, 31.410, 0.05}, {30, 59.703, 0.001},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        double p = ab_chi2_p(table[i][1], table[i][0]);
        if (fabs(p - table[i][2]) > 2e-4 * (table[i][2] / 0.05) + 1e-6)
            fail_msg("df %g x %g: p %g, table %g", table[i][0], table[i][1], p, table[i][2]);
    }
    assert_true(ab_chi2_p(0, 4) == 1.0);
    assert_true(isnan(ab_chi2_p(1, 0)));
    assert_true(fabs(ab_normal_p(1.959963984540054) - 0.05) < 1e-12);
}

/* Three users: clicks (1, 0, 2), impressions (4, 2, 4). By hand: x̄ = 1,
 * ȳ = 10/3, s_x² = 1, s_y² = 4/3, s_xy = 1; CTR = 3/10; Var = (1/3)(1/ȳ² −
 * 2·1·1/ȳ³ + 1·(4/3)/ȳ⁴) = (1/3)(0.09 − 0.054 + 0.0108) = 0.0156. */
static void test_ctr_delta_method(void **state)
{
    (void)state;
    struct ab_arm_stats s = {.users = 3};
    const double x[] = {1, 0, 2}, y[] = {4, 2, 4};
    for (int i = 0; i < 3; i++) {
        s.sx += x[i];
        s.sy += y[i];
        s.sxx += x[i] * x[i];
        s.syy += y[i] * y[i];
        s.sxy += x[i] * y[i];
    }
    double ctr, var, mean, vmean;
    ab_ctr(&s, &ctr, &var);
    assert_true(fabs(ctr - 0.3) < 1e-12);
    assert_true(fabs(var - 0.0156) < 1e-12);
    ab_per_user(&s, s.sx, s.sxx, &mean, &vmean);
    assert_true(fabs(mean - 1) < 1e-12 && fabs(vmean - 1.0 / 3) < 1e-12);
    struct ab_diff d = ab_compare(0.3, 0.0156, 0.3, 0.0156, true);
    assert_true(d.valid && d.p == 1.0 && d.diff == 0);
    struct ab_arm_stats one = {.users = 1, .sx = 1, .sy = 2, .sxx = 1, .syy = 4, .sxy = 2};
    ab_ctr(&one, &ctr, &var);
    assert_true(isnan(var));
    assert_false(ab_compare(0.5, var, 0.3, 0.01, true).valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chi2_table),
        cmocka_unit_test(test_ctr_delta_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
