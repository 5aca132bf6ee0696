/* Unit tests for common/clock.c: monotonic clocks move forward, deadlines are
 * absolute, "no deadline" stays infinite, wall time is Unix seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

static void test_monotonic(void **state)
{
    (void)state;
    int64_t ms = cascade_now_ms(), us = cascade_now_us();
    assert_true(ms > 0);
    /* The two clocks are the same clock in different units. */
    assert_true(us / 1000 >= ms && us / 1000 - ms < 1000);
    int64_t prev = cascade_now_us();
    for (int i = 0; i < 1000; i++) {
        int64_t now = cascade_now_us();
        assert_true(now >= prev);
        prev = now;
    }
}

static void test_deadlines(void **state)
{
    (void)state;
    assert_true(cascade_ms_left(INT64_MAX) == INT64_MAX);
    int64_t now = cascade_now_ms();
    assert_true(cascade_ms_left(now - 50) < 0);
    int64_t left = cascade_ms_left(now + 60000);
    assert_true(left > 0 && left <= 60000);
}

static void test_wall(void **state)
{
    (void)state;
    int64_t wall = cascade_wall_s();
    int64_t t = (int64_t)time(NULL);
    assert_true(wall >= t - 1 && wall <= t + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_wall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
