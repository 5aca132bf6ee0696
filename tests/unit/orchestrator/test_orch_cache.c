/* Unit tests of the recall cache writes against a private redis-server:
 * newest first, FIFO eviction beyond the capacity (oldest first), removal of
 * shown items (eviction on exposure), no duplicates (a re-cached item moves to
 * the head), expiry, the no-op update, an unreachable Redis, a key of another
 * type, and the same state as the per-item command sequence the script
 * replaced (LREM each shown and unshown item, LPUSH, LTRIM, EXPIRE), over
 * random updates with the script cache flushed now and then; the script goes
 * by EVALSHA, and by one EVAL after Redis lost it (SCRIPT FLUSH), also when
 * the update shares its pipeline with other commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"

#include "error.h"
#include "store.h"
#include "support.h"
#include "user_cache.h"

#define NS "t"

/* The script's sha, as the orchestrator keeps it for the process. */
static struct cascade_store_script cache_script = CASCADE_STORE_SCRIPT_INIT;

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
    int rc = cascade_user_cache_update(fx(state)->conn, &cache_script, NS, user, &u);
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
    assert_int_equal(cascade_user_cache_update(fx(state)->conn, &cache_script, NS, "u4", &bad),
                     CASCADE_EINVAL);
    /* The connection is still in step after all that. */
    update(state, "u4", NULL, 0, (const uint64_t[]){3}, 1, 10);
    assert_list(state, "u4", (const uint64_t[]){3, 1}, 2);
}

static void script_flush(void **state)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "SCRIPT FLUSH"), 0);
    freeReplyObject(rep);
}

/* The update the script replaced, one command per item, applied by the test
 * itself to another key: the reference the script's state is compared with. */
static void reference_update(void **state, const char *key, const uint64_t *shown, size_t n_shown,
                             const uint64_t *unshown, size_t n_unshown, uint32_t capacity,
                             int64_t ttl_s)
{
    cascade_redis *c = fx(state)->conn;
    redisReply *rep = NULL;
    for (size_t i = 0; i < n_shown + n_unshown; i++) {
        uint64_t id = i < n_shown ? shown[i] : unshown[i - n_shown];
        assert_int_equal(
            cascade_redis_command(c, &rep, "LREM %s 0 %llu", key, (unsigned long long)id), 0);
        freeReplyObject(rep);
    }
    for (size_t i = n_unshown; i-- > 0;) {
        assert_int_equal(
            cascade_redis_command(c, &rep, "LPUSH %s %llu", key, (unsigned long long)unshown[i]),
            0);
        freeReplyObject(rep);
    }
    assert_int_equal(
        cascade_redis_command(c, &rep, "LTRIM %s 0 %lld", key, (long long)capacity - 1), 0);
    freeReplyObject(rep);
    if (ttl_s > 0) {
        assert_int_equal(cascade_redis_command(c, &rep, "EXPIRE %s %lld", key, (long long)ttl_s),
                         0);
        freeReplyObject(rep);
    }
}

/* LRANGE key 0 -1 and TTL key, as one comparable string. */
static char *list_state(void **state, const char *key)
{
    cascade_redis *c = fx(state)->conn;
    redisReply *rep = NULL;
    size_t cap = 16384, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    assert_int_equal(cascade_redis_command(c, &rep, "LRANGE %s 0 -1", key), 0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < rep->elements; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s,", rep->element[i]->str);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(c, &rep, "TTL %s", key), 0);
    /* -2 (no key) and -1 (no expiry) must match exactly; a set TTL within a
     * second of the other (the two keys are written moments apart). */
    long long ttl = rep->integer < 0 ? rep->integer : (rep->integer + 5) / 10;
    freeReplyObject(rep);
    assert_true(len < cap - 32);
    snprintf(out + len, cap - len, " ttl %lld", ttl);
    return out;
}

/* Random updates over a small id range (so shown, unshown and cached items
 * overlap, and unshown lists carry repeats), small capacities (so trimming
 * happens) and with and without a TTL: after every update the script's list
 * and TTL equal those of the per-item commands on a twin key. */
static void test_same_state_as_per_item_commands(void **state)
{
    char key[CASCADE_KEY_MAX];
    const char *ref = "t:reference:cache";
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 20261207);
    cascade_key_user_cache(key, NS, "twin");
    for (int round = 0; round < 400; round++) {
        uint64_t shown[12], unshown[40];
        size_t n_shown = cascade_rng_below(&rng, 12), n_unshown = cascade_rng_below(&rng, 40);
        uint32_t capacity = 1 + (uint32_t)cascade_rng_below(&rng, round < 200 ? 30 : 300);
        int64_t ttl_s = cascade_rng_below(&rng, 3) ? 3600 : 0;
        for (size_t i = 0; i < n_shown; i++)
            shown[i] = 1 + cascade_rng_below(&rng, 60);
        for (size_t i = 0; i < n_unshown; i++)
            unshown[i] = 1 + cascade_rng_below(&rng, 60);
        if (n_shown == 0 && n_unshown == 0)
            continue; /* nothing is sent then (test_expiry_and_noop) */
        if (round % 7 == 3)
            script_flush(state); /* this update goes by EVAL after a NOSCRIPT */
        struct cascade_user_cache_update u = {shown, n_shown, unshown, n_unshown, capacity, ttl_s};
        if (cascade_user_cache_update(fx(state)->conn, &cache_script, NS, "twin", &u))
            fail_msg("cache update: %s", cascade_redis_error(fx(state)->conn));
        reference_update(state, ref, shown, n_shown, unshown, n_unshown, capacity, ttl_s);
        char *got = list_state(state, key), *want = list_state(state, ref);
        if (strcmp(got, want) != 0)
            fail_msg("round %d: script %s, per-item commands %s", round, got, want);
        free(got);
        free(want);
    }
}

/* A key of another type fails the update with Redis's message and is left
 * as it was (the script errs before its first write). */
static void test_wrong_type_changes_nothing(void **state)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_redis *c = fx(state)->conn;
    cascade_key_user_cache(key, NS, "u5");
    assert_int_equal(cascade_redis_command(c, &rep, "SET %s x", key), 0);
    freeReplyObject(rep);
    struct cascade_user_cache_update u = {NULL, 0, (const uint64_t[]){1}, 1, 10, 3600};
    assert_int_equal(cascade_user_cache_update(c, &cache_script, NS, "u5", &u), CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(c), "WRONGTYPE"));
    assert_int_equal(cascade_redis_command(c, &rep, "GET %s", key), 0);
    assert_string_equal(rep->str, "x");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(c, &rep, "TTL %s", key), 0);
    assert_int_equal(rep->integer, -1);
    freeReplyObject(rep);
}

/* Calls of EVALSHA and EVAL since the last look, into *evalsha and *eval. */
static void script_calls(void **state, long long *evalsha, long long *eval)
{
    static long long seen_evalsha, seen_eval;
    long long sha = test_redis_command_calls(fx(state)->conn, "evalsha");
    long long body = test_redis_command_calls(fx(state)->conn, "eval");
    *evalsha = sha - seen_evalsha;
    *eval = body - seen_eval;
    seen_evalsha = sha;
    seen_eval = body;
}

/* Updates go by EVALSHA. After SCRIPT FLUSH (what a Redis restart does to the
 * script cache) the EVALSHA answers NOSCRIPT and the same update is sent once
 * by EVAL, which loads the script again under the same sha: the next update
 * is an EVALSHA that succeeds. The list is as without the flush. */
static void test_script_flushed(void **state)
{
    long long evalsha, eval;
    update(state, "u6", NULL, 0, (const uint64_t[]){1, 2}, 2, 10);
    script_calls(state, &evalsha, &eval);
    update(state, "u6", (const uint64_t[]){2}, 1, (const uint64_t[]){3}, 1, 10);
    script_calls(state, &evalsha, &eval);
    assert_int_equal(evalsha, 1);
    assert_int_equal(eval, 0);
    assert_list(state, "u6", (const uint64_t[]){3, 1}, 2);

    script_flush(state);
    update(state, "u6", (const uint64_t[]){1}, 1, (const uint64_t[]){4, 5}, 2, 10);
    script_calls(state, &evalsha, &eval);
    assert_int_equal(evalsha, 1); /* answered NOSCRIPT */
    assert_int_equal(eval, 1);
    assert_list(state, "u6", (const uint64_t[]){4, 5, 3}, 3);

    update(state, "u6", NULL, 0, (const uint64_t[]){6}, 1, 10);
    script_calls(state, &evalsha, &eval);
    assert_int_equal(evalsha, 1);
    assert_int_equal(eval, 0);
    assert_list(state, "u6", (const uint64_t[]){6, 4, 5, 3}, 4);
}

/* As the orchestrator sends it: the update and another write in one pipeline.
 * After a flush the read reports the lost script without failing, the other
 * write's reply is read in its turn, then the resend applies the update. A
 * key of another type still fails the resend with Redis's message and is
 * left as it was; the connection stays in step throughout. */
static void test_script_flushed_in_pipeline(void **state)
{
    cascade_redis *c = fx(state)->conn;
    redisReply *rep = NULL;
    size_t sent = 0;
    bool resend = false;
    struct cascade_user_cache_update u = {
        (const uint64_t[]){7}, 1, (const uint64_t[]){8, 9}, 2, 10, 3600};
    update(state, "u7", NULL, 0, (const uint64_t[]){7}, 1, 10);
    script_flush(state);
    assert_int_equal(cascade_user_cache_append(c, &cache_script, NS, "u7", &u, &sent), 0);
    assert_int_equal(sent, 1);
    assert_int_equal(cascade_redis_append(c, "SET t:other x"), 0);
    assert_int_equal(cascade_user_cache_read(c, sent, &resend), 0);
    assert_true(resend);
    assert_int_equal(cascade_redis_get_reply(c, &rep), 0);
    assert_string_equal(rep->str, "OK");
    freeReplyObject(rep);
    assert_list(state, "u7", (const uint64_t[]){7}, 1); /* nothing written yet */
    assert_int_equal(cascade_user_cache_resend(c, NS, "u7", &u), 0);
    assert_list(state, "u7", (const uint64_t[]){8, 9}, 2);

    /* No flush: the read reports nothing to resend. */
    assert_int_equal(cascade_user_cache_append(c, &cache_script, NS, "u7", &u, &sent), 0);
    assert_int_equal(cascade_user_cache_read(c, sent, &resend), 0);
    assert_false(resend);

    /* A wrong-type key after a flush: the resend's EVAL fails with WRONGTYPE. */
    char key[CASCADE_KEY_MAX];
    cascade_key_user_cache(key, NS, "u8");
    assert_int_equal(cascade_redis_command(c, &rep, "SET %s x", key), 0);
    freeReplyObject(rep);
    script_flush(state);
    assert_int_equal(cascade_user_cache_update(c, &cache_script, NS, "u8", &u), CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(c), "WRONGTYPE"));
    assert_int_equal(cascade_redis_command(c, &rep, "GET %s", key), 0);
    assert_string_equal(rep->str, "x");
    freeReplyObject(rep);
}

static void test_redis_down(void **state)
{
    (void)state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    struct cascade_user_cache_update u = {NULL, 0, (const uint64_t[]){1}, 1, 10, 0};
    cascade_redis *r = cascade_redis_pool_get(dead);
    assert_int_equal(cascade_user_cache_update(r, &cache_script, NS, "u", &u),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(cascade_redis_error(r), "127.0.0.1"));
    cascade_redis_pool_destroy(dead);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_capacity),
        cmocka_unit_test(test_eviction_on_exposure_and_no_duplicates),
        cmocka_unit_test(test_expiry_and_noop),
        cmocka_unit_test(test_same_state_as_per_item_commands),
        cmocka_unit_test(test_wrong_type_changes_nothing),
        cmocka_unit_test(test_script_flushed),
        cmocka_unit_test(test_script_flushed_in_pipeline),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
