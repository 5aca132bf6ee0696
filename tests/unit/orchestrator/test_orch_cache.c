/* Unit tests of the recall cache writes against a private redis-server:
 * newest first, FIFO eviction beyond the capacity (oldest first), removal of
 * shown items (eviction on exposure), no duplicates (a re-cached item moves to
 * the head), expiry, the no-op update, and an unreachable Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "store.h"
#include "support.h"
#include "user_cache.h"

#define NS "t"

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

/* The cache list of a user, head first, into out (at most max). */
static size_t cache_list(void **state, const char *user, uint64_t *out, size_t max)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "LRANGE %s 0 -1",
                                           cascade_key_user_cache(key, NS, user)),
                     0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_true(rep->elements <= max);
    for (size_t i = 0; i < rep->elements; i++)
        out[i] = strtoull(rep->element[i]->str, NULL, 10);
    size_t n = rep->elements;
    freeReplyObject(rep);
    return n;
}

static void update(void **state, const char *user, const uint64_t *shown, size_t n_shown,
                   const uint64_t *unshown, size_t n_unshown, uint32_t capacity)
{
    struct cascade_user_cache_update u = {shown, n_shown, unshown, n_unshown, capacity, 3600};
    int rc = cascade_user_cache_update(fx(state)->conn, NS, user, &u);
    if (rc)
        fail_msg("cache update: %s", cascade_redis_error(fx(state)->conn));
}

static void assert_list(void **state, const char *user, const uint64_t *want, size_t n)
{
    uint64_t got[64];
    size_t m = cache_list(state, user, got, 64);
    assert_int_equal(m, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

/* Batches enter newest first, best first within a batch; the oldest leave
 * first when the list is over capacity. */
static void test_fifo_and_capacity(void **state)
{
    update(state, "u1", NULL, 0, (const uint64_t[]){1, 2, 3}, 3, 5);
    assert_list(state, "u1", (const uint64_t[]){1, 2, 3}, 3);
    update(state, "u1", NULL, 0, (const uint64_t[]){4, 5}, 2, 5);
    assert_list(state, "u1", (const uint64_t[]){4, 5, 1, 2, 3}, 5);
    /* Capacity 5: the two oldest (2, 3) are evicted. */
    update(state, "u1", NULL, 0, (const uint64_t[]){6, 7}, 2, 5);
    assert_list(state, "u1", (const uint64_t[]){6, 7, 4, 5, 1}, 5);
}

/* Shown items leave the cache; an item cached again moves to the head and is
 * never in the list twice. */
static void test_eviction_on_exposure_and_no_duplicates(void **state)
{
    update(state, "u2", NULL, 0, (const uint64_t[]){10, 11, 12, 13}, 4, 100);
    update(state, "u2", (const uint64_t[]){11, 13, 99}, 3, NULL, 0, 100);
    assert_list(state, "u2", (const uint64_t[]){10, 12}, 2);
    update(state, "u2", (const uint64_t[]){10}, 1, (const uint64_t[]){12, 14}, 2, 100);
    assert_list(state, "u2", (const uint64_t[]){12, 14}, 2);
    /* Another user's cache is separate. */
    assert_list(state, "u3", NULL, 0);
}

static void test_expiry_and_noop(void **state)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    update(state, "u4", NULL, 0, (const uint64_t[]){1}, 1, 10);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "TTL %s",
                                           cascade_key_user_cache(key, NS, "u4")),
                     0);
    assert_true(rep->integer > 3500 && rep->integer <= 3600);
    freeReplyObject(rep);
    /* An empty update sends nothing and changes nothing. */
    update(state, "u4", NULL, 0, NULL, 0, 10);
    assert_list(state, "u4", (const uint64_t[]){1}, 1);
    /* A zero capacity is refused. */
    struct cascade_user_cache_update bad = {NULL, 0, (const uint64_t[]){2}, 1, 0, 0};
    assert_int_equal(cascade_user_cache_update(fx(state)->conn, NS, "u4", &bad), CASCADE_EINVAL);
    /* The connection is still in step after all that. */
    update(state, "u4", NULL, 0, (const uint64_t[]){3}, 1, 10);
    assert_list(state, "u4", (const uint64_t[]){3, 1}, 2);
}

static void test_redis_down(void **state)
{
    (void)state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    struct cascade_user_cache_update u = {NULL, 0, (const uint64_t[]){1}, 1, 10, 0};
    cascade_redis *r = cascade_redis_pool_get(dead);
    assert_int_equal(cascade_user_cache_update(r, NS, "u", &u), CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(cascade_redis_error(r), "127.0.0.1"));
    cascade_redis_pool_destroy(dead);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_capacity),
        cmocka_unit_test(test_eviction_on_exposure_and_no_duplicates),
        cmocka_unit_test(test_expiry_and_noop),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
