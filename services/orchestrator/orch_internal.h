/* Internal layout of the orchestrator shared by its .c files (create/destroy,
 * Recommend, Feedback). Not part of the library's API. */
#ifndef CASCADE_ORCH_INTERNAL_H
#define CASCADE_ORCH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "experiments.h"
#include "metrics.h"
#include "orchestrator.h"
#include "store.h"

/* One gRPC channel per distinct endpoint address, shared by every user. */
struct cascade_orch_endpoint {
    char addr[CASCADE_ORCH_ADDR_MAX];
    cascade_rpc_channel *channel;
};

#define CASCADE_ORCH_MAX_ENDPOINTS (2 * CASCADE_ORCH_MAX_CHANNELS + 4 * CASCADE_ORCH_MAX_TRACKS)

/* The downstream stages, in call order, for per-stage tables. */
enum cascade_orch_stage {
    CASCADE_ORCH_STAGE_FILTER,
    CASCADE_ORCH_STAGE_PRERANK,
    CASCADE_ORCH_STAGE_RANK,
    CASCADE_ORCH_STAGE_RERANK,
    CASCADE_ORCH_N_STAGES
};

/* "filter", "prerank", "rank", "rerank". */
extern const char *const cascade_orch__stage_names[CASCADE_ORCH_N_STAGES];

/* The config of stage s. */
const struct cascade_orch_stage_cfg *cascade_orch__stage_cfg(const cascade_orch *o,
                                                             enum cascade_orch_stage s);

struct cascade_orch {
    struct cascade_orch_config cfg;
    /* The experiment table and the active config's identity are replaced
     * by cascade_orch_reload while requests run: a request holds the read
     * lock only while it assigns (copying the assignment into its arena),
     * the reload holds the write lock only for the pointer swap, then
     * destroys the old table outside it. */
    pthread_rwlock_t exp_lock;
    cascade_experiments *experiments;
    char config_version[128], config_hash[17];
    cascade_redis_pool *redis; /* borrowed; may be NULL */
    char ns[64];
    struct cascade_orch_endpoint endpoints[CASCADE_ORCH_MAX_ENDPOINTS];
    size_t n_endpoints;
    cascade_rpc_channel *channel_of[CASCADE_ORCH_MAX_CHANNELS];      /* per recall channel */
    cascade_rpc_channel *cold_channel_of[CASCADE_ORCH_MAX_CHANNELS]; /* per cold-start channel */
    cascade_rpc_channel *filter, *prerank, *rank, *rerank;
    /* Stages with an endpoint group (sticky canary): each track's channel
     * and its request counter (cascade_orchestrator_track_requests_total). */
    cascade_rpc_channel *track_rpc[CASCADE_ORCH_N_STAGES][CASCADE_ORCH_MAX_TRACKS];
    cascade_metric *track_requests[CASCADE_ORCH_N_STAGES][CASCADE_ORCH_MAX_TRACKS];
    atomic_uint_fast64_t request_seq; /* for generated request ids */
    /* Impression target (boost.h): when the new-list census last ran (ms,
     * monotonic; claimed by compare-and-swap so one request runs it), and its
     * gauges; the counter of pool items skipped because their target was met. */
    atomic_int_fast64_t boost_census_ms;
    cascade_metric *boost_behind, *boost_met, *boost_skipped, *boost_guaranteed;
    cascade_metric *hardneg_logged;     /* items written to the hard-negative log */
    cascade_metric *hardneg_failures;   /* failed hard-negative writes (request unaffected) */
    cascade_metric *serve_log_written;  /* serve records written to {ns}:serves */
    cascade_metric *serve_log_failures; /* failed serve record writes (request unaffected) */
    struct cascade_store_script feedback_script;  /* sha of the Feedback record script */
    struct cascade_store_script put_items_script; /* sha of the PutItems script */
    struct cascade_store_script cache_script;     /* sha of the recall cache update script */
};

/* Write the message into call->err (when there is one) and return code: how
 * Recommend and Feedback report a failure. */
int cascade_orch__fail(const struct cascade_orch_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The per-call inputs of an RPC: the request's arena, deadline and id, with
 * err (errlen bytes) for the failure message. */
struct cascade_orch_call cascade_orch__call_of(cascade_rpc_ctx *ctx, char *err, size_t errlen);

#endif
