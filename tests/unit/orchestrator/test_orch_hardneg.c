/* Unit tests of the hard-negative log: which items count as cut by the rank
 * stage (the ranker's tail, then what it did not return, never a kept or
 * shown item, never twice, at most `max`), and the capped LIST write against
 * a private redis-server (newest first, trim, expiry, no-op). Redis down is
 * covered through Recommend in test_recommend.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "hardneg_log.h"
#include "store.h"
#include "support.h"

#define NS "t"

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

/* Candidates with the given ids (static storage, enough for these tests). */
static Cascade__V1__Candidate *const *cands(const uint64_t *ids, size_t n)
{
    static Cascade__V1__Candidate pool[4][32];
    static Cascade__V1__Candidate *ptrs[4][32];
    static size_t next;
    size_t k = next++ % 4;
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&pool[k][i]);
        pool[k][i].item_id = ids[i];
        ptrs[k][i] = &pool[k][i];
    }
    return ptrs[k];
}

static void assert_ids(const uint64_t *got, size_t n, const uint64_t *want, size_t m)
{
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

/* The ranker returned everything (exploration) and kept 3: its tail in its
 * order, minus a shown item (exploration showed 7). */
static void test_select_ranker_tail(void **state)
{
    (void)state;
    const uint64_t sent[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint64_t ranked[] = {8, 6, 4, 2, 7, 5, 3, 1};
    const uint64_t shown[] = {8, 6, 7};
    struct cascade_hardneg_cut c = {cands(sent, 8), 8, cands(ranked, 8), 8, 3, shown, 3};
    uint64_t ids[16];
    assert_ids(ids, cascade_hardneg_select(&c, ids, 16), (const uint64_t[]){2, 5, 3, 1}, 4);
    /* At most max, the hardest first. */
    assert_ids(ids, cascade_hardneg_select(&c, ids, 2), (const uint64_t[]){2, 5}, 2);
}

/* The stage truncated to keep itself: what it did not return is the cut, in
 * the order it was sent; duplicates and id 0 are skipped. */
static void test_select_truncated(void **state)
{
    (void)state;
    const uint64_t sent[] = {10, 11, 12, 13, 11, 14, 0};
    const uint64_t ranked[] = {13, 10};
    struct cascade_hardneg_cut c = {cands(sent, 7), 7, cands(ranked, 2), 2, 2, NULL, 0};
    uint64_t ids[16];
    assert_ids(ids, cascade_hardneg_select(&c, ids, 16), (const uint64_t[]){11, 12, 14}, 3);
    /* Nothing cut: nothing selected. */
    struct cascade_hardneg_cut none = {cands(sent, 2), 2, cands(sent, 2), 2, 2, NULL, 0};
    assert_int_equal(cascade_hardneg_select(&none, ids, 16), 0);
}

static size_t read_log(void **state, const char *user, uint64_t *out, size_t max)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "LRANGE %s 0 -1",
                                           cascade_key_user_hardneg(key, NS, user)),
                     0);
    assert_true(rep->elements <= max);
    for (size_t i = 0; i < rep->elements; i++)
        out[i] = strtoull(rep->element[i]->str, NULL, 10);
    size_t n = rep->elements;
    freeReplyObject(rep);
    return n;
}

static void write_log(void **state, const char *user, const uint64_t *ids, size_t n, uint32_t cap)
{
    int rc = cascade_hardneg_log_write(fx(state)->conn, NS, user, ids, n, cap, 3600);
    if (rc)
        fail_msg("hard-negative write: %s", cascade_redis_error(fx(state)->conn));
}

/* Newest batch first, hardest first within it, trimmed to the cap; expiry
 * set; an empty write sends nothing; a zero cap is refused. */
static void test_log_write(void **state)
{
    uint64_t got[32];
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    write_log(state, "u1", (const uint64_t[]){1, 2, 3}, 3, 5);
    write_log(state, "u1", (const uint64_t[]){4, 5, 6}, 3, 5);
    assert_ids(got, read_log(state, "u1", got, 32), (const uint64_t[]){4, 5, 6, 1, 2}, 5);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "TTL %s",
                                           cascade_key_user_hardneg(key, NS, "u1")),
                     0);
    assert_true(rep->integer > 3500 && rep->integer <= 3600);
    freeReplyObject(rep);
    write_log(state, "u1", NULL, 0, 5);
    assert_int_equal(read_log(state, "u1", got, 32), 5);
    assert_int_equal(
        cascade_hardneg_log_write(fx(state)->conn, NS, "u1", (const uint64_t[]){7}, 1, 0, 0),
        CASCADE_EINVAL);
    /* The connection is still in step. */
    write_log(state, "u1", (const uint64_t[]){8}, 1, 5);
    assert_int_equal(read_log(state, "u1", got, 32), 5);
    assert_int_equal(got[0], 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_ranker_tail),
        cmocka_unit_test(test_select_truncated),
        cmocka_unit_test(test_log_write),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
