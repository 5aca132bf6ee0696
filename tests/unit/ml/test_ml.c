/* Unit tests of the ml library's process setup (common/ml/ml.h):
 * cascade_ml_init leaves OpenBLAS one thread per caller, unless
 * OPENBLAS_NUM_THREADS is set, in which case it leaves the count alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cblas.h>
#include <cmocka.h>

#include "ml.h"

static void test_init_sets_one_thread(void **state)
{
    (void)state;
    assert_int_equal(unsetenv("OPENBLAS_NUM_THREADS"), 0);
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() != 2)
        skip(); /* one core: 1 thread before and after, nothing to tell apart */
    cascade_ml_init();
    assert_int_equal(openblas_get_num_threads(), 1);
    cascade_ml_init(); /* again: no harm */
    assert_int_equal(openblas_get_num_threads(), 1);
}

static void test_init_respects_the_environment(void **state)
{
    (void)state;
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() != 2)
        skip();
    assert_int_equal(setenv("OPENBLAS_NUM_THREADS", "2", 1), 0);
    cascade_ml_init();
    assert_int_equal(openblas_get_num_threads(), 2);
    /* Set but empty counts as unset. */
    assert_int_equal(setenv("OPENBLAS_NUM_THREADS", "", 1), 0);
    cascade_ml_init();
    assert_int_equal(openblas_get_num_threads(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sets_one_thread),
        cmocka_unit_test(test_init_respects_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
