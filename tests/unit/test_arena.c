/* Unit tests for common/arena.c: alignment, growth past a block, limits,
 * reset, string helpers, and the protobuf-c allocator view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

static void test_alignment_and_contents(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(256);
    assert_non_null(a);
    unsigned char *ptrs[200];
    size_t sizes[200];
    for (int i = 0; i < 200; i++) {
        sizes[i] = (size_t)(i % 37) + 1;
        ptrs[i] = cascade_arena_alloc(a, sizes[i]);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % 16, 0);
        memset(ptrs[i], i, sizes[i]);
    }
    /* Later allocations (and new blocks) never overwrite earlier ones. */
    for (int i = 0; i < 200; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            assert_int_equal(ptrs[i][j], (unsigned char)i);
    }
    assert_true(cascade_arena_used(a) >= 200 * 16);
    cascade_arena_destroy(a);
    cascade_arena_destroy(NULL);
}

static void test_large_allocation(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(1024);
    char *small = cascade_arena_strdup(a, "before");
    size_t big_len = 1 << 20;
    unsigned char *big = cascade_arena_alloc(a, big_len);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 0xAB, big_len);
    char *after = cascade_arena_strdup(a, "after");
    assert_string_equal(small, "before");
    assert_string_equal(after, "after");
    assert_int_equal(big[big_len - 1], 0xAB);
    cascade_arena_destroy(a);
}

static void test_limit(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    cascade_arena_set_limit(a, 1000);
    assert_non_null(cascade_arena_alloc(a, 500));
    assert_null(cascade_arena_alloc(a, 600)); /* 512 + 608 > 1000 */
    assert_non_null(cascade_arena_alloc(a, 400));
    assert_true(cascade_arena_used(a) <= 1000);
    assert_null(cascade_arena_alloc(a, SIZE_MAX));
    cascade_arena_set_limit(a, 0);
    assert_non_null(cascade_arena_alloc(a, 4096));
    cascade_arena_destroy(a);
}

static void test_reset(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(128);
    for (int i = 0; i < 100; i++)
        assert_non_null(cascade_arena_alloc(a, 100));
    assert_true(cascade_arena_used(a) >= 100 * 100);
    cascade_arena_reset(a);
    assert_int_equal(cascade_arena_used(a), 0);
    char *s = cascade_arena_strdup(a, "again");
    assert_string_equal(s, "again");
    assert_int_equal(cascade_arena_used(a), 16);
    cascade_arena_destroy(a);
}

/* Resets keep blocks for reuse, up to CASCADE_ARENA_RETAIN_BYTES: the same
 * oversized request after a reset gets the same memory back. */
static void test_reset_keeps_blocks(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(1024);
    assert_non_null(a);
    char *big = cascade_arena_alloc(a, 200000);
    assert_non_null(big);
    memset(big, 1, 200000);
    assert_int_equal(cascade_arena_retained(a), 0);
    cascade_arena_reset(a);
    assert_true(cascade_arena_retained(a) >= 200000);
    char *again = cascade_arena_alloc(a, 150000);
    assert_ptr_equal(again, big); /* the kept block, first fit */
    assert_int_equal(cascade_arena_retained(a), 0);
    cascade_arena_reset(a);
    /* Far more than the cap in 1 MiB blocks: only up to the cap is kept. */
    for (int i = 0; i < 40; i++)
        assert_non_null(cascade_arena_alloc(a, 1u << 20));
    cascade_arena_reset(a);
    assert_true(cascade_arena_retained(a) <= CASCADE_ARENA_RETAIN_BYTES);
    assert_true(cascade_arena_retained(a) >= CASCADE_ARENA_RETAIN_BYTES - (2u << 20));
    cascade_arena_destroy(a);
}

static void test_calloc_and_printf(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(64);
    int *zeros = cascade_arena_calloc(a, 1000, sizeof(int));
    assert_non_null(zeros);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(zeros[i], 0);
    assert_null(cascade_arena_calloc(a, SIZE_MAX / 2, 4)); /* overflow */
    char *s = cascade_arena_printf(a, "%s:%d:%.1f", "item", 42, 0.5);
    assert_string_equal(s, "item:42:0.5");
    cascade_arena_destroy(a);
}

static void test_protobuf_allocator(void **state)
{
    (void)state;
    Cascade__V1__LayerAssignment__ParamsEntry entry =
        CASCADE__V1__LAYER_ASSIGNMENT__PARAMS_ENTRY__INIT;
    entry.key = "rerank.lambda";
    entry.value = "0.7";
    Cascade__V1__LayerAssignment__ParamsEntry *entries[] = {&entry};
    Cascade__V1__LayerAssignment la = CASCADE__V1__LAYER_ASSIGNMENT__INIT;
    la.layer = "rerank";
    la.bucket = 123;
    la.experiment = "mmr_07";
    la.n_params = 1;
    la.params = entries;
    uint8_t buf[256];
    size_t len = cascade__v1__layer_assignment__pack(&la, buf);

    cascade_arena *a = cascade_arena_create(0);
    size_t before = cascade_arena_used(a);
    Cascade__V1__LayerAssignment *out =
        cascade__v1__layer_assignment__unpack(cascade_arena_protobuf_allocator(a), len, buf);
    assert_non_null(out);
    assert_true(cascade_arena_used(a) > before); /* it really came from the arena */
    assert_string_equal(out->layer, "rerank");
    assert_int_equal(out->bucket, 123);
    assert_int_equal(out->n_params, 1);
    assert_string_equal(out->params[0]->value, "0.7");
    /* Freeing through the allocator is a no-op; the arena releases it all. */
    cascade__v1__layer_assignment__free_unpacked(out, cascade_arena_protobuf_allocator(a));
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_contents),
        cmocka_unit_test(test_large_allocation),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_reset_keeps_blocks),
        cmocka_unit_test(test_calloc_and_printf),
        cmocka_unit_test(test_protobuf_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
