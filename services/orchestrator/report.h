/* Per-request bookkeeping of how each channel and stage went: the debug trace
 * (one StageTrace per channel/stage) and the degrade reasons returned in
 * RecommendResponse ("recall/itemcf: UNAVAILABLE: connection refused").
 * Everything lives in the request arena; one report per request, not
 * thread-safe. */
#ifndef CASCADE_ORCH_REPORT_H
#define CASCADE_ORCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <grpc/status.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

struct cascade_orch_report {
    cascade_arena *arena;
    bool want_trace;
    bool degraded;
    char **reasons;
    size_t n_reasons, cap_reasons;
    Cascade__V1__StageTrace **trace;
    size_t n_trace, cap_trace;
};

/* What happened in one stage or channel. */
struct cascade_orch_outcome {
    const char *stage;       /* "recall/itemcf", "filter", ... */
    grpc_status_code status; /* status of the call (OK when none was made) */
    const char *message;     /* status message or why it was skipped; may be NULL */
    int64_t latency_us;
    size_t items_in, items_out;
    bool degraded; /* the pipeline carried on without this stage's work */
    /* The stage's output order (borrowed; may be NULL): its first
     * CASCADE_ORCH_TRACE_IDS_MAX ids are copied into the trace entry's
     * item_ids when tracing. */
    Cascade__V1__Candidate *const *order;
    size_t n_order;
};

/* Most ids a trace entry carries (StageTrace.item_ids, docs/orchestrator.md). */
#define CASCADE_ORCH_TRACE_IDS_MAX 200

/* Start an empty report; the trace is only kept when want_trace. */
void cascade_orch_report_init(struct cascade_orch_report *r, cascade_arena *arena, bool want_trace);

/* Record an outcome: a trace entry (when tracing, with the ids of o->order
 * capped at CASCADE_ORCH_TRACE_IDS_MAX) and, when o->degraded, the
 * degraded flag plus a reason "<stage>: <STATUS>: <message>" (the status part
 * is left out when it is OK, e.g. a skipped stage). Returns 0 or CASCADE_ENOMEM. */
int cascade_orch_report_add(struct cascade_orch_report *r, const struct cascade_orch_outcome *o);

#endif
