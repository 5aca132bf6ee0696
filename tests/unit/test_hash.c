/* Unit tests for common/hash.c: determinism, the bucket definition, a uniform
 * bucket distribution, and independence of layers with different salts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"

#define USERS 100000
#define BUCKETS 1000

static void test_deterministic(void **state)
{
    (void)state;
    assert_true(cascade_hash64("user-1", 6, 7) == cascade_hash64("user-1", 6, 7));
    assert_true(cascade_hash_str("user-1", 7) == cascade_hash64("user-1", 6, 7));
    assert_true(cascade_hash64("user-1", 6, 7) != cascade_hash64("user-1", 6, 8));
    assert_true(cascade_hash64("user-1", 6, 7) != cascade_hash64("user-2", 6, 7));
    uint64_t a1, a2, b1, b2;
    cascade_hash128("x", 1, 0, &a1, &a2);
    cascade_hash128("x", 1, 0, &b1, &b2);
    assert_true(a1 == b1 && a2 == b2);
    assert_true(a1 != a2);
    /* Stable across runs and machines: XXH3-64 of "" with seed 0. */
    assert_true(cascade_hash64("", 0, 0) == 0x2D06800538D394C2ULL);
}

static void test_bucket_is_hash_of_concatenation(void **state)
{
    (void)state;
    const char *users[] = {"u1", "alice", "", "a-much-longer-user-identifier-0123456789"};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        char joined[128];
        snprintf(joined, sizeof(joined), "%s%s", users[i], "rank-2026");
        uint32_t want = (uint32_t)(cascade_hash64(joined, strlen(joined), 0) % BUCKETS);
        assert_int_equal(cascade_hash_bucket(users[i], "rank-2026", BUCKETS), want);
        assert_true(cascade_hash_bucket(users[i], "rank-2026", BUCKETS) < BUCKETS);
    }
}

static void user_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "user%d", i);
}

static void test_bucket_distribution(void **state)
{
    (void)state;
    static unsigned counts[BUCKETS];
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < USERS; i++) {
        char uid[32];
        user_name(uid, sizeof(uid), i);
        counts[cascade_hash_bucket(uid, "recall", BUCKETS)]++;
    }
    /* Chi-square with 999 degrees of freedom: mean 999, sd ≈ 44.7. A uniform
     * hash stays far below 999 + 6 sd; a biased one (e.g. bucket from only a
     * few bits) blows far past it. */
    double expected = (double)USERS / BUCKETS, chi2 = 0;
    for (int b = 0; b < BUCKETS; b++) {
        double d = counts[b] - expected;
        chi2 += d * d / expected;
        assert_true(counts[b] > 40 && counts[b] < 180);
    }
    assert_true(chi2 < 999 + 6 * 44.7);
    assert_true(chi2 > 999 - 6 * 44.7); /* not suspiciously even either */
}

static void test_salts_independent(void **state)
{
    (void)state;
    /* Layer A range [0,500) holds ~50% of users, layer B range [0,100) ~10%.
     * Independent layers put ~5% in both; sd of the fraction is ~0.0007. */
    int in_a = 0, in_b = 0, in_both = 0, same_bucket = 0;
    for (int i = 0; i < USERS; i++) {
        char uid[32];
        user_name(uid, sizeof(uid), i);
        uint32_t a = cascade_hash_bucket(uid, "rank-2026", BUCKETS);
        uint32_t b = cascade_hash_bucket(uid, "rerank-2026", BUCKETS);
        in_a += a < 500;
        in_b += b < 100;
        in_both += a < 500 && b < 100;
        same_bucket += a == b;
    }
    double fa = (double)in_a / USERS, fb = (double)in_b / USERS;
    double fboth = (double)in_both / USERS;
    assert_true(fa > 0.48 && fa < 0.52);
    assert_true(fb > 0.09 && fb < 0.11);
    assert_true(fboth > fa * fb - 0.005 && fboth < fa * fb + 0.005);
    /* Same bucket in both layers should be ~1/1000, not correlated. */
    assert_true(same_bucket < 3 * USERS / BUCKETS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bucket_is_hash_of_concatenation),
        cmocka_unit_test(test_bucket_distribution),
        cmocka_unit_test(test_salts_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
