/* The orchestrator (cascade.v1.Recommender): assigns A/B buckets, picks the
 * channel mix (cold start for users with few interactions), fans Recall out
 * to every channel of the mix in parallel, merges the channels, then runs
 * filter → pre-rank → rank → re-rank within the request's deadline, reserves
 * the new-item exploration share, records exposure of what it returns, keeps
 * the user's recall cache (ranked but unshown items) and hard-negative log
 * (items the ranker cut), and logs Feedback events to Redis. A failing or late channel or stage
 * degrades the answer (flagged and explained in the response) instead of failing it.
 *
 * Thread-safety: one cascade_orch is shared by every worker thread; its stage
 * channels are created once at start and are thread-safe. */
#ifndef CASCADE_ORCHESTRATOR_H
#define CASCADE_ORCHESTRATOR_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/recommender.pb-c.h"
#include "config.h"
#include "metrics.h"
#include "orch_config.h"
#include "redis.h"
#include "rpc.h"

#define CASCADE_ORCH_MAX_COUNT 200
#define CASCADE_ORCH_MAX_EVENTS 1000

typedef struct cascade_orch cascade_orch;

/* Build an orchestrator from the "orchestrator" and "experiments" sections of
 * cfg (borrowed during the call only) and open a channel per distinct stage
 * endpoint. `redis` (borrowed, must outlive the orchestrator; may be NULL,
 * then Feedback and the hot-list fallback report UNAVAILABLE) serves Feedback
 * and the fallback; ns is the Redis key namespace (copied). The counters
 * cascade_orchestrator_* (docs/metrics.md) are registered in `metrics`
 * (borrowed, must outlive the orchestrator; NULL: no metrics). Requires
 * cascade_rpc_init. Returns NULL with a message in err. */
cascade_orch *cascade_orch_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                  const char *ns, cascade_metrics *metrics, char *err,
                                  size_t errlen);

/* Send "authorization: Bearer <token>" on every stage call (token copied;
 * NULL or "" sends none). Call once, before serving. Returns 0, or
 * CASCADE_EINVAL when the token is not 1..256 visible ASCII characters. */
int cascade_orch_set_auth_token(cascade_orch *o, const char *token);

/* Apply a re-read config (SIGHUP, through cascade_service_stage.reload)
 * while requests are served: the whole config is validated as at start
 * (the "orchestrator" section and the experiments), then the experiment
 * table and the config identity (version, hash; in the debug trace as stage
 * "config") are swapped under a write lock, so a request sees the old or
 * the new table, never a mix, and the old table is freed once no request
 * uses it. Changes to the "orchestrator" section are validated but need a
 * restart (cascade_service_main logs them as such). cfg is borrowed during the call only. Returns
 * 0, or CASCADE_EINVAL with the reason in err and nothing changed. */
int cascade_orch_reload(cascade_orch *o, const cascade_config *cfg, char *err, size_t errlen);

/* Close the stage channels and free the orchestrator. NULL is a no-op. */
void cascade_orch_destroy(cascade_orch *o);

/* The parsed configuration (borrowed). */
const struct cascade_orch_config *cascade_orch_get_config(const cascade_orch *o);

/* Per-call inputs, independent of the RPC server so tests can drive the
 * pipeline directly. */
struct cascade_orch_call {
    cascade_arena *arena;    /* request arena: the response is allocated here */
    int64_t deadline_ms;     /* absolute (cascade_now_ms clock); INT64_MAX = none */
    const char *request_id;  /* caller's x-request-id; NULL or "" = none */
    const char *peer;        /* caller's address (cascade_rpc_ctx_peer); NULL = unknown */
    const char *debug_token; /* caller's x-debug-token; NULL or "" = none */
    char *err;               /* message buffer for failures */
    size_t errlen;
};

/* Run Recommend. Returns 0 and *out (arena), or a negative code with a
 * message in call->err: CASCADE_EINVAL for a bad user context (see
 * cascade_request_check_user) or a count outside 1..200,
 * CASCADE_EUNAVAILABLE when no channel and no fallback produced anything.
 * A debug request gets the trace only when the caller may have it
 * (orchestrator.debug.*, cascade_orch_report_trace_allowed); otherwise it is
 * answered without one. */
int cascade_orch_recommend(cascade_orch *o, const struct cascade_orch_call *call,
                           const Cascade__V1__RecommendRequest *req,
                           Cascade__V1__RecommendResponse **out);

/* Run Feedback: validate every field of every event (at most 1000; bounds in
 * feedback_event.h and docs/orchestrator.md), then record the batch in one
 * atomic, idempotent Redis script: each event not seen before (by its event
 * id) goes to the event stream; those with a positive interest weight
 * (common/events.h: click, like, collect, share, follow) to the users'
 * last-n and consumed sets; dislike adds the item to the blocked items,
 * hide_author the item's author (from its item record) to the blocked
 * authors, follow the author to the followed authors (an item without a
 * record or author only goes to the stream). A retried call records nothing
 * twice; a failed one records nothing. Returns 0 and *out (arena; accepted =
 * every event, duplicates included), CASCADE_EINVAL / CASCADE_ETOOBIG for
 * bad input naming the field and event index, CASCADE_EUNAVAILABLE when
 * Redis cannot be reached in time, CASCADE_EIO for an error reply. */
int cascade_orch_feedback(cascade_orch *o, const struct cascade_orch_call *call,
                          const Cascade__V1__FeedbackRequest *req,
                          Cascade__V1__FeedbackResponse **out);

/* Run PutItems (put_items.h): validate every item (at most 100; the field
 * named in the message), read their previous records (kept statistics, old
 * list memberships), then write all of them in one atomic Redis script:
 * records, the new/geo/city/author lists of the current generation (and of
 * one being built), and {ns}:items:online for the two_tower channel. A
 * failed call writes nothing. Returns 0 and *out (arena), CASCADE_EINVAL /
 * CASCADE_ETOOBIG for bad input, CASCADE_EUNAVAILABLE / CASCADE_EIO when
 * Redis fails. Thread-safe. */
int cascade_orch_put_items(cascade_orch *o, const struct cascade_orch_call *call,
                           const Cascade__V1__PutItemsRequest *req,
                           Cascade__V1__PutItemsResponse **out);

/* The method table of cascade.v1.Recommender for cascade_service_run; the
 * handlers expect the cascade_orch as their service pointer. */
const struct cascade_rpc_method *cascade_orch_methods(size_t *n_methods);

#endif
