/* Orchestrator lifetime (config, experiments, one channel per stage endpoint),
 * the RPC handlers that adapt cascade_rpc_ctx to the pipeline entry points,
 * and the failure helper Recommend and Feedback share. */
#include "orchestrator.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "orch_internal.h"

/* Find or open the channel for addr. */
static cascade_rpc_channel *endpoint_channel(cascade_orch *o, const char *addr, char *err,
                                             size_t errlen)
{
    for (size_t i = 0; i < o->n_endpoints; i++)
        if (strcmp(o->endpoints[i].addr, addr) == 0)
            return o->endpoints[i].channel;
    if (o->n_endpoints == CASCADE_ORCH_MAX_ENDPOINTS) {
        snprintf(err, errlen, "more than %d distinct stage endpoints", CASCADE_ORCH_MAX_ENDPOINTS);
        return NULL;
    }
    struct cascade_orch_endpoint *e = &o->endpoints[o->n_endpoints];
    struct cascade_rpc_channel_opts opts = {
        .max_message_bytes = o->cfg.max_message_bytes,
        .initial_backoff_ms = o->cfg.reconnect_initial_backoff_ms,
        .max_backoff_ms = o->cfg.reconnect_max_backoff_ms,
        .connect_timeout_ms = o->cfg.connect_timeout_ms,
        .tls_ca_file = o->cfg.tls_ca_file,
        .tls_cert_file = o->cfg.tls_cert_file,
        .tls_key_file = o->cfg.tls_key_file,
    };
    e->channel = cascade_rpc_channel_create_err(addr, &opts, err, errlen);
    if (e->channel == NULL)
        return NULL;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    o->n_endpoints++;
    return e->channel;
}

const char *const cascade_orch__stage_names[CASCADE_ORCH_N_STAGES] = {"filter", "prerank", "rank",
                                                                      "rerank"};

const struct cascade_orch_stage_cfg *cascade_orch__stage_cfg(const cascade_orch *o,
                                                             enum cascade_orch_stage s)
{
    const struct cascade_orch_stage_cfg *all[CASCADE_ORCH_N_STAGES] = {
        &o->cfg.filter, &o->cfg.prerank, &o->cfg.rank, &o->cfg.rerank};
    return all[s];
}

static int open_channels(cascade_orch *o, char *err, size_t errlen)
{
    char why[700] = "";
    for (int s = 0; s < CASCADE_ORCH_N_STAGES; s++) {
        const struct cascade_orch_stage_cfg *st = cascade_orch__stage_cfg(o, s);
        for (size_t t = 0; t < st->n_tracks; t++)
            if (!(o->track_rpc[s][t] =
                      endpoint_channel(o, st->tracks[t].endpoint, why, sizeof why)))
                goto fail;
    }
    for (size_t i = 0; i < o->cfg.n_channels; i++) {
        o->channel_of[i] = endpoint_channel(o, o->cfg.channels[i].endpoint, why, sizeof why);
        if (o->channel_of[i] == NULL)
            goto fail;
    }
    for (size_t i = 0; i < o->cfg.n_cold_channels; i++) {
        o->cold_channel_of[i] =
            endpoint_channel(o, o->cfg.cold_channels[i].endpoint, why, sizeof why);
        if (o->cold_channel_of[i] == NULL)
            goto fail;
    }
    if (!(o->filter = endpoint_channel(o, o->cfg.filter.endpoint, why, sizeof why)) ||
        !(o->prerank = endpoint_channel(o, o->cfg.prerank.endpoint, why, sizeof why)) ||
        !(o->rank = endpoint_channel(o, o->cfg.rank.endpoint, why, sizeof why)) ||
        !(o->rerank = endpoint_channel(o, o->cfg.rerank.endpoint, why, sizeof why)))
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "orchestrator: cannot open gRPC channels to the stage endpoints: %s",
             why);
    return CASCADE_EINVAL;
}

/* The orchestrator's own metrics in m (NULL: none). */
static void register_metrics(cascade_orch *o, cascade_metrics *m)
{
    cascade_metric_family *tracks = cascade_metrics_counter(
        m, "cascade_orchestrator_track_requests_total",
        "Requests per stage endpoint-group track (sticky canary)", "stage,track");
    for (int s = 0; s < CASCADE_ORCH_N_STAGES; s++) {
        const struct cascade_orch_stage_cfg *st = cascade_orch__stage_cfg(o, s);
        for (size_t t = 0; t < st->n_tracks; t++)
            o->track_requests[s][t] = cascade_metric_get(
                tracks, (const char *const[]){cascade_orch__stage_names[s], st->tracks[t].name});
    }
    o->hardneg_logged = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_hardneg_logged_total",
                                "Items the rank stage cut, written to the hard-negative log", NULL),
        NULL);
    o->hardneg_failures = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_hardneg_write_failures_total",
                                "Hard-negative log writes that failed (the request was served)",
                                NULL),
        NULL);
    o->boost_behind = cascade_metric_get(
        cascade_metrics_gauge(m, "cascade_orchestrator_new_items_behind_target",
                              "New items within their target window and at least one "
                              "impression behind schedule (last census)",
                              NULL),
        NULL);
    o->boost_met = cascade_metric_get(
        cascade_metrics_gauge(m, "cascade_orchestrator_new_items_target_met",
                              "New items within their target window that met the impression "
                              "target (last census)",
                              NULL),
        NULL);
    o->boost_guaranteed = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_explore_guaranteed_total",
                                "Exploration slots offered to a new item behind its impression "
                                "target that the ranker put below exploration.max_rank_share",
                                NULL),
        NULL);
    o->boost_skipped = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_explore_target_skipped_total",
                                "Exploration candidates not boosted: impression target met or "
                                "window over",
                                NULL),
        NULL);
    o->serve_log_written = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_serve_log_written_total",
                                "Serve records written to the {ns}:serves stream", NULL),
        NULL);
    o->serve_log_failures = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_serve_log_failures_total",
                                "Serve record writes that failed (the request was served)", NULL),
        NULL);
}

cascade_orch *cascade_orch_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                  const char *ns, cascade_metrics *metrics, char *err,
                                  size_t errlen)
{
    cascade_orch *o = calloc(1, sizeof *o);
    if (o == NULL) {
        snprintf(err, errlen, "orchestrator: out of memory");
        return NULL;
    }
    atomic_init(&o->request_seq, 0);
    atomic_init(&o->boost_census_ms, 0);
    pthread_mutex_init(&o->feedback_script.lock, NULL); /* sha[] is "" from calloc */
    pthread_mutex_init(&o->put_items_script.lock, NULL);
    pthread_mutex_init(&o->cache_script.lock, NULL);
    pthread_rwlock_init(&o->exp_lock, NULL);
    o->redis = redis;
    snprintf(o->ns, sizeof o->ns, "%s", ns && ns[0] ? ns : "cascade");
    if (cascade_orch_config_parse(cfg, &o->cfg, err, errlen))
        goto fail;
    json_t *experiments = cascade_config_get(cfg, "experiments");
    if (json_is_null(experiments))
        experiments = NULL; /* "experiments": null = no layers */
    o->experiments = cascade_experiments_create(experiments, err, errlen);
    if (o->experiments == NULL)
        goto fail;
    cascade_config_identity(cfg, o->config_version, sizeof o->config_version, o->config_hash,
                            sizeof o->config_hash);
    if (open_channels(o, err, errlen))
        goto fail;
    register_metrics(o, metrics);
    return o;
fail:
    cascade_orch_destroy(o);
    return NULL;
}

int cascade_orch_set_auth_token(cascade_orch *o, const char *token)
{
    for (size_t i = 0; i < o->n_endpoints; i++) {
        int rc = cascade_rpc_channel_set_auth_token(o->endpoints[i].channel, token);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void cascade_orch_destroy(cascade_orch *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n_endpoints; i++)
        cascade_rpc_channel_destroy(o->endpoints[i].channel);
    cascade_experiments_destroy(o->experiments);
    pthread_rwlock_destroy(&o->exp_lock);
    pthread_mutex_destroy(&o->feedback_script.lock);
    pthread_mutex_destroy(&o->put_items_script.lock);
    pthread_mutex_destroy(&o->cache_script.lock);
    free(o);
}

int cascade_orch_reload(cascade_orch *o, const cascade_config *cfg, char *err, size_t errlen)
{
    struct cascade_orch_config *parsed = malloc(sizeof *parsed);
    cascade_experiments *fresh = NULL;
    int rc = CASCADE_ENOMEM;
    if (!parsed) {
        snprintf(err, errlen, "orchestrator: out of memory");
        goto out;
    }
    /* The whole new config must be valid, even the parts that wait for a
     * restart: a config that would not start is not accepted live either. */
    if ((rc = cascade_orch_config_parse(cfg, parsed, err, errlen)) != 0)
        goto out;
    json_t *experiments = cascade_config_get(cfg, "experiments");
    if (!(fresh = cascade_experiments_create(json_is_null(experiments) ? NULL : experiments, err,
                                             errlen))) {
        rc = CASCADE_EINVAL;
        goto out;
    }
    char version[sizeof o->config_version], hash[sizeof o->config_hash];
    cascade_config_identity(cfg, version, sizeof version, hash, sizeof hash);
    pthread_rwlock_wrlock(&o->exp_lock);
    cascade_experiments *old = o->experiments;
    o->experiments = fresh;
    memcpy(o->config_version, version, sizeof version);
    memcpy(o->config_hash, hash, sizeof hash);
    pthread_rwlock_unlock(&o->exp_lock);
    fresh = old; /* destroyed below, outside the lock */
    rc = 0;
out:
    cascade_experiments_destroy(fresh);
    free(parsed);
    return rc;
}

const struct cascade_orch_config *cascade_orch_get_config(const cascade_orch *o)
{
    return &o->cfg;
}

/* ------------------------------------------------------------ RPC adapters */

int cascade_orch__fail(const struct cascade_orch_call *call, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (call->err && call->errlen)
        vsnprintf(call->err, call->errlen, fmt, ap);
    va_end(ap);
    return code;
}

struct cascade_orch_call cascade_orch__call_of(cascade_rpc_ctx *ctx, char *err, size_t errlen)
{
    return (struct cascade_orch_call){
        .arena = cascade_rpc_ctx_arena(ctx),
        .deadline_ms = cascade_rpc_ctx_deadline_ms(ctx),
        .request_id = cascade_rpc_ctx_request_id(ctx),
        .peer = cascade_rpc_ctx_peer(ctx),
        .debug_token = cascade_rpc_ctx_metadata(ctx, "x-debug-token"),
        .err = err,
        .errlen = errlen,
    };
}

static int handle_recommend(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                            ProtobufCMessage **response)
{
    char err[512] = "";
    struct cascade_orch_call call = cascade_orch__call_of(ctx, err, sizeof err);
    Cascade__V1__RecommendResponse *out = NULL;
    int rc = cascade_orch_recommend(service, &call, (const Cascade__V1__RecommendRequest *)request,
                                    &out);
    if (rc)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &out->base;
    return 0;
}

static int handle_feedback(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response)
{
    char err[512] = "";
    struct cascade_orch_call call = cascade_orch__call_of(ctx, err, sizeof err);
    Cascade__V1__FeedbackResponse *out = NULL;
    int rc =
        cascade_orch_feedback(service, &call, (const Cascade__V1__FeedbackRequest *)request, &out);
    if (rc)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &out->base;
    return 0;
}

static int handle_put_items(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                            ProtobufCMessage **response)
{
    char err[512] = "";
    struct cascade_orch_call call = cascade_orch__call_of(ctx, err, sizeof err);
    Cascade__V1__PutItemsResponse *out = NULL;
    int rc =
        cascade_orch_put_items(service, &call, (const Cascade__V1__PutItemsRequest *)request, &out);
    if (rc)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &out->base;
    return 0;
}

static const struct cascade_rpc_method orch_methods[] = {
    {"/cascade.v1.Recommender/Recommend", &cascade__v1__recommend_request__descriptor,
     &cascade__v1__recommend_response__descriptor, handle_recommend},
    {"/cascade.v1.Recommender/Feedback", &cascade__v1__feedback_request__descriptor,
     &cascade__v1__feedback_response__descriptor, handle_feedback},
    {"/cascade.v1.Recommender/PutItems", &cascade__v1__put_items_request__descriptor,
     &cascade__v1__put_items_response__descriptor, handle_put_items},
};

const struct cascade_rpc_method *cascade_orch_methods(size_t *n_methods)
{
    *n_methods = sizeof orch_methods / sizeof orch_methods[0];
    return orch_methods;
}
