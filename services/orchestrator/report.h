/* Per-request bookkeeping of how each channel and stage went: the debug trace
 * (one StageTrace per channel/stage, with the full messages), the degrade
 * reasons returned to every caller in RecommendResponse — stable codes only
 * ("recall/itemcf: UNAVAILABLE", "fallback: hot"), never addresses or Redis
 * text — and the same reasons with their details for the log. Everything
 * lives in the request arena; one report per request, not thread-safe. */
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
    char **reasons; /* "<stage>: <code>", returned to the caller */
    char **details; /* reasons[i] + ": <message>", for the log only */
    size_t n_reasons, cap_reasons, cap_details;
    Cascade__V1__StageTrace **trace;
    size_t n_trace, cap_trace;
};

/* What happened in one stage or channel. */
struct cascade_orch_outcome {
    const char *stage;       /* "recall/itemcf", "filter", ... */
    grpc_status_code status; /* status of the call (OK when none was made) */
    const char *message;     /* status message or why it was skipped; may be NULL.
                              * Internal: it goes to the trace and the log only. */
    const char *code;        /* the reason's code when status is OK (e.g. "hot"
                              * for the fallback); a fixed word, never data */
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
 * degraded flag plus a reason "<stage>: <STATUS>" (the gRPC status name), or
 * "<stage>: <code>" when the status is OK ("degraded" without a code). The
 * message goes only to the trace and to details[] ("<reason>: <message>").
 * Returns 0 or CASCADE_ENOMEM. */
int cascade_orch_report_add(struct cascade_orch_report *r, const struct cascade_orch_outcome *o);

/* Whether a caller may have the debug trace: never unless debug_enabled;
 * then when loopback_ok and `peer` (gRPC's form: "ipv4:127.0.0.1:5123",
 * "ipv6:[::1]:5123", "ipv6:%5B::1%5D:5123", "unix:...") is a loopback or
 * Unix-socket address, or when `token` (the configured one; "" = none) is
 * non-empty and equals `caller_token` (the x-debug-token metadata; compared
 * in time independent of where they differ). peer and caller_token may be
 * NULL (unknown / absent). Pure function; thread-safe. */
bool cascade_orch_report_trace_allowed(bool debug_enabled, bool loopback_ok, const char *token,
                                       const char *peer, const char *caller_token);

#endif
