/* Unit tests of the degrade bookkeeping: reasons read
 * "<stage>: <STATUS>: <message>", only degraded outcomes set the flag, and
 * the trace is kept only when asked for. */
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
                                                            .message = "connection refused",
                                                            .degraded = true}),
                     0);
    assert_int_equal(cascade_orch_report_add(
                         &r, &(struct cascade_orch_outcome){.stage = "fallback",
                                                            .message = "serving the hot list",
                                                            .degraded = true}),
                     0);
    assert_true(r.degraded);
    assert_int_equal(r.n_reasons, 2);
    assert_string_equal(r.reasons[0], "recall/itemcf: UNAVAILABLE: connection refused");
    assert_string_equal(r.reasons[1], "fallback: serving the hot list");
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
    assert_string_equal(r.reasons[0], "stage3: DEADLINE_EXCEEDED: no details");
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
    assert_int_equal(cascade_orch_report_add(&r, &(struct cascade_orch_outcome){.stage = "rank",
                                                                               .order = order,
                                                                               .n_order = 3}),
                     0);
    assert_int_equal(cascade_orch_report_add(&r, &(struct cascade_orch_outcome){.stage = "merge",
                                                                               .order = order,
                                                                               .n_order = N}),
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
    assert_int_equal(cascade_orch_report_add(&r, &(struct cascade_orch_outcome){.stage = "rank",
                                                                               .order = order,
                                                                               .n_order = 3}),
                     0);
    assert_int_equal(r.n_trace, 0);
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_trace_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
