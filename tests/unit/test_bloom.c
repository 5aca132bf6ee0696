/* Unit tests for common/bloom.c: sizing, no false negatives, a measured false
 * positive rate near the target, and bit numbering identical to Redis
 * SETBIT/GETBIT (checked against a real redis-server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bloom.h"
#include "error.h"
#include "redis.h"
#include "support.h"

#define INSERTED 10000
#define TARGET_FP 0.01

static void test_sizing(void **state)
{
    (void)state;
    struct cascade_bloom_params p;
    /* m = ceil(-10000 ln 0.01 / ln²2) = 95851, k = round(m/n ln 2) = 7. */
    assert_int_equal(cascade_bloom_size(INSERTED, TARGET_FP, &p), 0);
    assert_int_equal(p.bits, 95851);
    assert_int_equal(p.hashes, 7);
    assert_int_equal(cascade_bloom_size(1, 0.5, &p), 0);
    assert_true(p.hashes >= 1);
    assert_int_equal(cascade_bloom_size(0, 0.01, &p), CASCADE_EINVAL);
    assert_int_equal(cascade_bloom_size(10, 0.0, &p), CASCADE_EINVAL);
    assert_int_equal(cascade_bloom_size(10, 1.0, &p), CASCADE_EINVAL);
}

static void test_positions(void **state)
{
    (void)state;
    struct cascade_bloom_params p;
    cascade_bloom_size(INSERTED, TARGET_FP, &p);
    uint64_t a[16], b[16];
    cascade_bloom_positions(&p, 12345, a);
    cascade_bloom_positions(&p, 12345, b);
    assert_memory_equal(a, b, sizeof(a[0]) * p.hashes);
    int distinct = 0;
    for (uint32_t i = 0; i < p.hashes; i++) {
        assert_true(a[i] < p.bits);
        distinct += i == 0 || a[i] != a[i - 1];
    }
    assert_int_equal(distinct, p.hashes);
    cascade_bloom_positions(&p, 12346, b);
    assert_memory_not_equal(a, b, sizeof(a[0]) * p.hashes);
}

static void test_no_false_negatives_and_fp_rate(void **state)
{
    (void)state;
    struct cascade_bloom_params p;
    cascade_bloom_size(INSERTED, TARGET_FP, &p);
    size_t len = (size_t)((p.bits + 7) / 8);
    uint8_t *bitmap = calloc(len, 1);
    for (uint64_t i = 0; i < INSERTED; i++)
        cascade_bloom_set_bitmap(&p, bitmap, 1000000 + i * 7919);
    for (uint64_t i = 0; i < INSERTED; i++)
        assert_true(cascade_bloom_test_bitmap(&p, bitmap, len, 1000000 + i * 7919));
    /* Ids never inserted: the measured rate should be close to the target. */
    int fp = 0;
    const int probes = 200000;
    for (int i = 0; i < probes; i++)
        fp += cascade_bloom_test_bitmap(&p, bitmap, len, 5000000000ULL + (uint64_t)i);
    double rate = (double)fp / probes;
    assert_true(rate <= TARGET_FP * 1.5);
    assert_true(rate >= TARGET_FP / 1.5); /* sized right, not just oversized */
    /* Bytes past len read as zero: a short bitmap rejects everything it lacks. */
    assert_false(cascade_bloom_test_bitmap(&p, bitmap, 0, 1000000));
    free(bitmap);
}

/* The bitmap we build locally must be byte-for-byte what Redis builds with
 * SETBIT on the same positions, and Redis' bitmap must test positive. */
static void test_bits_match_redis(void **state)
{
    (void)state;
    struct test_redis server;
    assert_int_equal(test_redis_start(&server), 0);
    struct cascade_redis_opts o = {.host = "127.0.0.1", .port = server.port};
    cascade_redis *r = cascade_redis_create(&o);

    struct cascade_bloom_params p;
    cascade_bloom_size(200, TARGET_FP, &p);
    size_t len = (size_t)((p.bits + 7) / 8);
    uint8_t *local = calloc(len, 1);
    uint64_t pos[64];
    for (uint64_t id = 1; id <= 50; id++) {
        cascade_bloom_set_bitmap(&p, local, id * 31);
        cascade_bloom_positions(&p, id * 31, pos);
        for (uint32_t i = 0; i < p.hashes; i++)
            assert_int_equal(
                cascade_redis_append(r, "SETBIT expo %llu 1", (unsigned long long)pos[i]), 0);
    }
    for (uint64_t id = 1; id <= 50; id++) {
        for (uint32_t i = 0; i < p.hashes; i++) {
            redisReply *rep = NULL;
            assert_int_equal(cascade_redis_get_reply(r, &rep), 0);
            freeReplyObject(rep);
        }
    }
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "GET expo"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    /* Redis grows the string only up to the highest bit set. */
    assert_true(rep->len <= len);
    assert_memory_equal(rep->str, local, rep->len);
    for (size_t i = rep->len; i < len; i++)
        assert_int_equal(local[i], 0);
    for (uint64_t id = 1; id <= 50; id++)
        assert_true(cascade_bloom_test_bitmap(&p, (const uint8_t *)rep->str, rep->len, id * 31));
    freeReplyObject(rep);

    /* And GETBIT agrees with our numbering for one known position. */
    cascade_bloom_positions(&p, 31, pos);
    assert_int_equal(cascade_redis_command(r, &rep, "GETBIT expo %llu", (unsigned long long)pos[0]),
                     0);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);

    free(local);
    cascade_redis_destroy(r);
    test_redis_stop(&server);
}

/* Known answers pinning the bit positions, so a change of hash, seed or byte
 * order cannot silently orphan the exposure bitmaps already in Redis. The
 * expected positions were computed independently of this code, with
 * python3-xxhash: h = xxh3_128(item id as 8 little-endian bytes,
 * seed 0x63617363616465), h1 = low 64 bits, h2 = high 64 bits, probe i =
 * (h1 mod m + i·max(h2 mod m, 1)) mod m. */
static void test_positions_known_answers(void **state)
{
    (void)state;
    static const struct {
        uint64_t bits;
        uint32_t hashes;
        uint64_t item;
        uint64_t want[10];
    } cases[] = {
        {71888, 10, 1, {26245, 46199, 66153, 14219, 34173, 54127, 2193, 22147, 42101, 62055}},
        {71888, 10, 42, {37712, 62149, 14698, 39135, 63572, 16121, 40558, 64995, 17544, 41981}},
        {71888,
         10,
         UINT64_MAX,
         {31106, 1130, 43042, 13066, 54978, 25002, 66914, 36938, 6962, 48874}},
        {1000, 3, 123456789, {866, 975, 84}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct cascade_bloom_params p = {.bits = cases[c].bits, .hashes = cases[c].hashes};
        uint64_t got[10];
        cascade_bloom_positions(&p, cases[c].item, got);
        for (uint32_t i = 0; i < p.hashes; i++)
            assert_int_equal(got[i], cases[c].want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_no_false_negatives_and_fp_rate),
        cmocka_unit_test(test_bits_match_redis),
        cmocka_unit_test(test_positions_known_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
