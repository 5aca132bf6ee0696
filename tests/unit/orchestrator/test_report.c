/* Unit tests of the degrade bookkeeping: reasons read "<stage>: <STATUS>" or
 * "<stage>: <code>" (the message goes to details and the trace only), only
 * degraded outcomes set the flag, the trace is kept only when asked for, and
 * who may have it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "report.h"

static void test_reasons(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    struct cascade_orch_report r;
    cascade_orch_report_init(&r, a, false);
    assert_int_equal(cascade_orch_report_add(
                         &r, &(struct cascade_orch_outcome){.stage = "recall/hot", .items_out = 5}),
                     0);
    assert_false(r.degraded);
    assert_int_equal(r.n_reasons, 0);
    assert_int_equal(r.n_trace, 0);
    assert_int_equal(cascade_orch_report_add(
                         &r, &(struct cascade_orch_outcome){.stage = "recall/itemcf",
                                                            .status = GRPC_STATUS_UNAVAILABLE,
                                                            .message = "redis 127.0.0.1:41059: "
                                                                       "command timed out",
                                                            .degraded = true}),
                     0);
    assert_int_equal(cascade_orch_report_add(
                         &r, &(struct cascade_orch_outcome){.stage = "fallback",
                                                            .message = "serving the hot list",
                                                            .code = "hot",
                                                            .degraded = true}),
                     0);
    assert_int_equal(
        cascade_orch_report_add(&r, &(struct cascade_orch_outcome){.stage = "cache",
                                                                   .message = "no code given",
                                                                   .degraded = true}),
        0);
    assert_true(r.degraded);
    assert_int_equal(r.n_reasons, 3);
    assert_string_equal(r.reasons[0], "recall/itemcf: UNAVAILABLE");
    assert_string_equal(r.reasons[1], "fallback: hot");
    assert_string_equal(r.reasons[2], "cache: degraded");
    assert_string_equal(r.details[0],
                        "recall/itemcf: UNAVAILABLE: redis 127.0.0.1:41059: command timed out");
    assert_string_equal(r.details[1], "fallback: hot: serving the hot list");
    cascade_arena_destroy(a);
}

static void test_trace(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    struct cascade_orch_report r;
    cascade_orch_report_init(&r, a, true);
    char stage[32];
    for (int i = 0; i < 20; i++) { /* past the initial capacity */
        snprintf(stage, sizeof stage, "stage%d", i);
        assert_int_equal(
            cascade_orch_report_add(
                &r, &(struct cascade_orch_outcome){.stage = stage,
                                                   .status = i == 3 ? GRPC_STATUS_DEADLINE_EXCEEDED
                                                                    : GRPC_STATUS_OK,
                                                   .latency_us = 1000 + i,
                                                   .items_in = 100,
                                                   .items_out = (size_t)i,
                                                   .degraded = i == 3}),
            0);
    }
    assert_int_equal(r.n_trace, 20);
    assert_string_equal(r.trace[3]->stage, "stage3");
    assert_int_equal(r.trace[3]->status_code, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_true(r.trace[3]->degraded);
    assert_false(r.trace[4]->degraded);
    assert_int_equal(r.trace[19]->items_out, 19);
    assert_int_equal(r.trace[19]->latency_us, 1019);
    assert_int_equal(r.n_reasons, 1);
    assert_string_equal(r.reasons[0], "stage3: DEADLINE_EXCEEDED");
    assert_string_equal(r.details[0], "stage3: DEADLINE_EXCEEDED: no details");
    cascade_arena_destroy(a);
}

/* A stage's order is copied into item_ids, capped at
 * CASCADE_ORCH_TRACE_IDS_MAX; without tracing nothing is kept. */
static void test_trace_ids(void **state)
{
    (void)state;
    enum { N = CASCADE_ORCH_TRACE_IDS_MAX + 50 };
    cascade_arena *a = cascade_arena_create(0);
    static Cascade__V1__Candidate cands[N];
    static Cascade__V1__Candidate *order[N];
    for (size_t i = 0; i < N; i++) {
        cascade__v1__candidate__init(&cands[i]);
        cands[i].item_id = 1000 + (N - i) * 3; /* descending, not the position */
        order[i] = &cands[i];
    }
    struct cascade_orch_report r;
    cascade_orch_report_init(&r, a, true);
    assert_int_equal(
        cascade_orch_report_add(
            &r, &(struct cascade_orch_outcome){.stage = "rank", .order = order, .n_order = 3}),
        0);
    assert_int_equal(
        cascade_orch_report_add(
            &r, &(struct cascade_orch_outcome){.stage = "merge", .order = order, .n_order = N}),
        0);
    assert_int_equal(
        cascade_orch_report_add(&r, &(struct cascade_orch_outcome){.stage = "exposure"}), 0);
    assert_int_equal(r.trace[0]->n_item_ids, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(r.trace[0]->item_ids[i], cands[i].item_id);
    assert_int_equal(r.trace[1]->n_item_ids, CASCADE_ORCH_TRACE_IDS_MAX);
    assert_int_equal(r.trace[1]->item_ids[CASCADE_ORCH_TRACE_IDS_MAX - 1],
                     cands[CASCADE_ORCH_TRACE_IDS_MAX - 1].item_id);
    assert_int_equal(r.trace[2]->n_item_ids, 0);
    cascade_orch_report_init(&r, a, false);
    assert_int_equal(
        cascade_orch_report_add(
            &r, &(struct cascade_orch_outcome){.stage = "rank", .order = order, .n_order = 3}),
        0);
    assert_int_equal(r.n_trace, 0);
    cascade_arena_destroy(a);
}

/* Who may have the trace: loopback and Unix-socket peers (when allowed), or
 * the exact configured token; nobody when debug is disabled. */
static void test_trace_allowed(void **state)
{
    (void)state;
    const char *local[] = {"ipv4:127.0.0.1:5123", "ipv4:127.8.9.10:1",         "ipv6:[::1]:5123",
                           "ipv6:%5B::1%5D:5123", "ipv6:[::ffff:127.0.0.1]:9", "unix:/tmp/s"};
    const char *remote[] = {"ipv4:10.0.0.1:5123",
                            "ipv4:128.0.0.1:1",
                            "ipv6:[::2]:5123",
                            "ipv6:[2001:db8::1]:1",
                            "ipv4:1127.0.0.1:1",
                            "",
                            NULL};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        assert_true(cascade_orch_report_trace_allowed(true, true, "", local[i], NULL));
        assert_false(cascade_orch_report_trace_allowed(true, false, "", local[i], NULL));
        assert_false(cascade_orch_report_trace_allowed(false, true, "tok", local[i], "tok"));
    }
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        assert_false(cascade_orch_report_trace_allowed(true, true, "", remote[i], NULL));
        assert_false(cascade_orch_report_trace_allowed(true, true, "", remote[i], ""));
        assert_false(cascade_orch_report_trace_allowed(true, true, "tok", remote[i], "to"));
        assert_false(cascade_orch_report_trace_allowed(true, true, "tok", remote[i], "tokk"));
        assert_false(cascade_orch_report_trace_allowed(true, true, "tok", remote[i], "Tok"));
        assert_false(cascade_orch_report_trace_allowed(true, true, "tok", remote[i], NULL));
        assert_true(cascade_orch_report_trace_allowed(true, true, "tok", remote[i], "tok"));
        assert_true(cascade_orch_report_trace_allowed(true, false, "tok", remote[i], "tok"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_trace_ids),
        cmocka_unit_test(test_trace_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
