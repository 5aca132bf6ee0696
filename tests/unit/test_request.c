/* Unit tests for common/request.c: the user-context and candidate-list checks
 * (codes and the exact messages the stages answer with) and the candidate
 * sort (score desc, id asc, input position; every score kind; NaN last). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "error.h"
#include "request.h"

static void test_check_user(void **state)
{
    (void)state;
    char err[128] = "";
    char id[CASCADE_USER_ID_MAX + 2];
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;

    assert_int_equal(cascade_request_check_user(NULL, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    u.user_id = NULL;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    u.user_id = "";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");

    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0'; /* 65 bytes */
    u.user_id = id;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is longer than 64 bytes");
    id[CASCADE_USER_ID_MAX] = '\0'; /* exactly 64 bytes is fine */
    err[0] = '\0';
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    assert_string_equal(err, "");

    u.request_time_s = -5;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.request_time_s -5 is negative");
    u.request_time_s = 0; /* 0 = server clock */
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    u.request_time_s = 1750000000;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
}

static void test_check_user_id_names_the_field(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(cascade_request_check_user_id("events[3].user_id", "", err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "events[3].user_id is empty");
    char id[100];
    memset(id, 'y', 99);
    id[99] = '\0';
    assert_int_equal(cascade_request_check_user_id("user_id", id, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user_id is longer than 64 bytes");
    assert_int_equal(cascade_request_check_user_id("user_id", "u1", err, sizeof err), 0);
}

static void test_check_candidates(void **state)
{
    (void)state;
    char err[128] = "";
    Cascade__V1__Candidate a = CASCADE__V1__CANDIDATE__INIT, b = CASCADE__V1__CANDIDATE__INIT;
    Cascade__V1__Candidate *c[4] = {&a, &b, NULL, &a};

    assert_int_equal(cascade_request_check_candidates(c, 4, 3, err, sizeof err), CASCADE_ETOOBIG);
    assert_string_equal(err, "4 candidates exceed the limit of 3");
    assert_int_equal(cascade_request_check_candidates(c, 4, 4, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[2] is missing");
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), 0);
    assert_int_equal(cascade_request_check_candidates(NULL, 0, 0, err, sizeof err), 0);
}

/* Candidates i = 0..n-1 with item ids ids[i] and every score kind set to s[i]
 * times a per-kind factor, so each kind sorts the same way. */
static void make(Cascade__V1__Candidate *store, Cascade__V1__Candidate **c, const uint64_t *ids,
                 const float *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&store[i]);
        store[i].item_id = ids[i];
        store[i].recall_score = s[i];
        store[i].prerank_score = 2 * s[i];
        store[i].rank_score = 3 * s[i];
        store[i].rerank_score = 4 * s[i];
        c[i] = &store[i];
    }
}

static void test_sort_order(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    assert_non_null(arena);
    /* Two equal scores with different ids (id decides) and an exact repeat of
     * (score, id) at positions 1 and 4 (input position decides). */
    const uint64_t ids[] = {9, 5, 7, 3, 5, 1};
    const float s[] = {0.5f, 0.8f, 0.8f, 0.1f, 0.8f, 0.9f};
    const size_t want[] = {5, 1, 4, 2, 0, 3}; /* input positions in sorted order */
    const enum cascade_score_kind kinds[] = {CASCADE_SCORE_RECALL, CASCADE_SCORE_PRERANK,
                                             CASCADE_SCORE_RANK, CASCADE_SCORE_RERANK};
    for (size_t k = 0; k < 4; k++) {
        Cascade__V1__Candidate store[6], *c[6];
        make(store, c, ids, s, 6);
        assert_int_equal(cascade_request_sort_candidates(c, 6, kinds[k], arena), 0);
        for (size_t i = 0; i < 6; i++)
            assert_ptr_equal(c[i], &store[want[i]]);
        assert_true(cascade_request_candidate_score(c[0], kinds[k]) == (float)(k + 1) * 0.9f);
    }
    assert_int_equal(cascade_request_sort_candidates(NULL, 0, CASCADE_SCORE_RANK, arena), 0);
    cascade_arena_destroy(arena);
}

static void test_sort_nan_last(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    const uint64_t ids[] = {1, 2, 3, 4};
    const float s[] = {NAN, -1.0f, NAN, 2.0f};
    Cascade__V1__Candidate store[4], *c[4];
    make(store, c, ids, s, 4);
    assert_int_equal(cascade_request_sort_candidates(c, 4, CASCADE_SCORE_RANK, arena), 0);
    assert_int_equal(c[0]->item_id, 4);
    assert_int_equal(c[1]->item_id, 2);
    assert_int_equal(c[2]->item_id, 1); /* NaNs last, by id */
    assert_int_equal(c[3]->item_id, 3);
    cascade_arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_user),
        cmocka_unit_test(test_check_user_id_names_the_field),
        cmocka_unit_test(test_check_candidates),
        cmocka_unit_test(test_sort_order),
        cmocka_unit_test(test_sort_nan_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
