/* Unit tests for common/decimal.c: the digits of every width, the edges of
 * uint64, and agreement with snprintf's "%" PRIu64 over a spread of values. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decimal.h"

/* cascade_decimal_u64(v) against snprintf, length and text. */
static void check(uint64_t v)
{
    char want[32], got[CASCADE_DECIMAL_U64_MAX + 8];
    int n = snprintf(want, sizeof want, "%" PRIu64, v);
    memset(got, 'x', sizeof got);
    size_t len = cascade_decimal_u64(got, v);
    assert_int_equal(len, (size_t)n);
    assert_string_equal(got, want);
}

static void test_edges(void **state)
{
    (void)state;
    char buf[CASCADE_DECIMAL_U64_MAX];
    assert_int_equal(cascade_decimal_u64(buf, 0), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(cascade_decimal_u64(buf, 7), 1);
    assert_string_equal(buf, "7");
    assert_int_equal(cascade_decimal_u64(buf, 10), 2);
    assert_string_equal(buf, "10");
    assert_int_equal(cascade_decimal_u64(buf, 100), 3);
    assert_string_equal(buf, "100");
    assert_int_equal(cascade_decimal_u64(buf, UINT64_MAX), 20);
    assert_string_equal(buf, "18446744073709551615");
}

static void test_every_width_matches_snprintf(void **state)
{
    (void)state;
    /* Each power of ten and its neighbours: every digit count, both parities. */
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        check(p - 1);
        check(p);
        check(p + 1);
        check(p * 10 - 1);
    }
    for (uint64_t v = 0; v < 100000; v++)
        check(v);
    /* A multiplicative walk over the whole range. */
    uint64_t v = 1;
    for (int i = 0; i < 100000; i++) {
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        check(v);
        check(v >> (i % 64));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_every_width_matches_snprintf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
