/* Recall stage, one request: validation, running the named channels in order
 * (each timed and counted in its metric series), merging their hits into one
 * candidate per item, and the RPC handler. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "idmap.h"
#include "recall_internal.h"
#include "request.h"

/* Check the request; fill idx[0..n_channels) with registry indexes. */
static int recall_validate(const cascade_recall *r, const Cascade__V1__RecallRequest *req, int *idx,
                           char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    if (rc != 0)
        return rc;
    if (req->n_channels == 0) {
        snprintf(err, errlen, "channels is empty (known: %s)", cascade_recall_channel_list());
        return CASCADE_EINVAL;
    }
    if (req->n_channels > cascade_recall__n_channels) {
        snprintf(err, errlen, "%zu channels requested, at most %zu distinct channels exist",
                 req->n_channels, cascade_recall__n_channels);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < req->n_channels; i++) {
        const char *name = req->channels[i] ? req->channels[i] : "";
        char field[32];
        snprintf(field, sizeof field, "channels[%zu]", i);
        if ((rc = cascade_request_check_string(field, name, CASCADE_REQUEST_CHANNEL_NAME_MAX, err,
                                               errlen)))
            return rc;
        idx[i] = -1;
        for (size_t c = 0; c < cascade_recall__n_channels; c++)
            if (strcmp(cascade_recall__channels[c].name, name) == 0)
                idx[i] = (int)c;
        if (idx[i] < 0) {
            snprintf(err, errlen, "unknown channel \"%.64s\" (known: %s)", name,
                     cascade_recall_channel_list());
            return CASCADE_EINVAL;
        }
        if (!r->cfg[idx[i]].enabled) {
            snprintf(err, errlen, "channel \"%s\" is disabled (recall.channels.%s.enabled)", name,
                     name);
            return CASCADE_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (idx[j] == idx[i]) {
                snprintf(err, errlen, "channel \"%s\" is requested twice", name);
                return CASCADE_EINVAL;
            }
    }
    if (req->quota < 1 || req->quota > r->max_quota) {
        snprintf(err, errlen, "quota %u out of range 1..%u", req->quota, r->max_quota);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* One candidate per item, in order of first appearance (channel order, then
 * channel rank); a later channel's hit on the same item is appended to it.
 * Two passes: create the candidates and count their hits, then give each
 * candidate its slice of one hit-pointer array and fill it. */
static int recall_merge(cascade_arena *arena, const int *idx,
                        const struct cascade_recall_hits *hits, size_t n_channels,
                        Cascade__V1__RecallResponse *resp)
{
    size_t total = 0;
    for (size_t c = 0; c < n_channels; c++)
        total += hits[c].count;
    cascade_idmap byid;
    resp->candidates = cascade_arena_calloc(arena, total + 1, sizeof *resp->candidates);
    Cascade__V1__Candidate *slab = cascade_arena_calloc(arena, total + 1, sizeof *slab);
    Cascade__V1__ChannelHit **slots = cascade_arena_calloc(arena, total + 1, sizeof *slots);
    Cascade__V1__ChannelHit *hit_slab = cascade_arena_calloc(arena, total + 1, sizeof *hit_slab);
    if (!resp->candidates || !slab || !slots || !hit_slab ||
        cascade_idmap_init(&byid, arena, total) != 0)
        return CASCADE_ENOMEM;
    for (size_t c = 0; c < n_channels; c++) {
        for (size_t i = 0; i < hits[c].count; i++) {
            bool created;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&byid, hits[c].ids[i], &created);
            if (!e)
                return CASCADE_ENOMEM;
            if (created) {
                Cascade__V1__Candidate *cand = &slab[resp->n_candidates];
                cascade__v1__candidate__init(cand);
                cand->item_id = hits[c].ids[i];
                e->index = (uint32_t)resp->n_candidates;
                resp->candidates[resp->n_candidates++] = cand;
            }
            e->score += 1; /* hits of this item */
        }
    }
    size_t offset = 0;
    for (size_t s = 0; s < byid.cap; s++) {
        if (!byid.slots[s].used)
            continue;
        resp->candidates[byid.slots[s].index]->channels = &slots[offset];
        offset += (size_t)byid.slots[s].score;
    }
    size_t used = 0;
    for (size_t c = 0; c < n_channels; c++) {
        for (size_t i = 0; i < hits[c].count; i++) {
            Cascade__V1__Candidate *cand =
                resp->candidates[cascade_idmap_find(&byid, hits[c].ids[i])->index];
            Cascade__V1__ChannelHit *h = &hit_slab[used++];
            cascade__v1__channel_hit__init(h);
            h->channel = (char *)cascade_recall__channels[idx[c]].name;
            h->score = hits[c].scores[i];
            h->rank = (uint32_t)i;
            cand->channels[cand->n_channels++] = h;
        }
    }
    return 0;
}

static int recall_results(cascade_arena *arena, const int *idx,
                          const struct cascade_recall_hits *hits, const int64_t *latency_us,
                          size_t n_channels, Cascade__V1__RecallResponse *resp)
{
    resp->channels = cascade_arena_calloc(arena, n_channels, sizeof *resp->channels);
    if (!resp->channels)
        return CASCADE_ENOMEM;
    for (size_t c = 0; c < n_channels; c++) {
        Cascade__V1__ChannelResult *cr = cascade_arena_alloc(arena, sizeof *cr);
        if (!cr)
            return CASCADE_ENOMEM;
        cascade__v1__channel_result__init(cr);
        cr->channel = (char *)cascade_recall__channels[idx[c]].name;
        cr->count = (uint32_t)hits[c].count;
        cr->latency_us = latency_us[c] > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us[c];
        resp->channels[resp->n_channels++] = cr;
    }
    return 0;
}

/* Run channel idx for this request, timed and counted. */
static int run_channel(cascade_recall *r, int idx, struct cascade_recall__channel_args *args,
                       struct cascade_recall_hits *hits, int64_t *latency_us)
{
    const struct cascade_recall__channel_metrics *m = &r->metrics[idx];
    args->name = cascade_recall__channels[idx].name;
    args->cfg = &r->cfg[idx];
    args->family = cascade_recall__channels[idx].family;
    memset(hits, 0, sizeof *hits);
    cascade_metric_inc(m->requests);
    int64_t t0 = cascade_now_us();
    int rc = cascade_recall__channels[idx].fn(args, hits);
    *latency_us = cascade_now_us() - t0;
    cascade_metric_observe(m->latency, (double)*latency_us / 1e6);
    if (rc != 0) {
        cascade_metric_inc(m->errors);
        return rc;
    }
    if (hits->count > args->quota)
        hits->count = args->quota; /* a channel never returns more than asked */
    cascade_metric_add(m->candidates, (double)hits->count);
    return 0;
}

/* Run the channels of a validated request on this thread's Redis handle. */
static int recall_run_channels(cascade_recall *r, cascade_redis *redis, cascade_arena *arena,
                               int64_t deadline_ms, const Cascade__V1__RecallRequest *req,
                               const int *idx, Cascade__V1__RecallResponse **out, char *err,
                               size_t errlen)
{
    struct cascade_recall_hits hits[CASCADE_RECALL_MAX_CHANNELS];
    int64_t latency_us[CASCADE_RECALL_MAX_CHANNELS];
    int rc;
    struct cascade_recall__request_state *state = cascade_arena_calloc(arena, 1, sizeof *state);
    if (!redis || !state) {
        snprintf(err, errlen, "recall: out of memory");
        return CASCADE_ENOMEM;
    }
    struct cascade_recall__channel_args args = {
        .recall = r,
        .redis = redis,
        .arena = arena,
        .deadline_ms = deadline_ms,
        .req = req,
        .user_id = req->user->user_id,
        .quota = req->quota,
        .state = state,
        .err = err,
        .errlen = errlen,
    };
    for (size_t c = 0; c < req->n_channels; c++) {
        if (cascade_now_ms() >= deadline_ms) {
            snprintf(err, errlen, "deadline exceeded before channel \"%s\"",
                     cascade_recall__channels[idx[c]].name);
            return CASCADE_ETIMEDOUT;
        }
        if ((rc = run_channel(r, idx[c], &args, &hits[c], &latency_us[c])) != 0)
            return rc;
    }
    Cascade__V1__RecallResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    if (!resp)
        goto nomem;
    cascade__v1__recall_response__init(resp);
    if (recall_merge(arena, idx, hits, req->n_channels, resp) != 0 ||
        recall_results(arena, idx, hits, latency_us, req->n_channels, resp) != 0)
        goto nomem;
    *out = resp;
    return 0;
nomem:
    snprintf(err, errlen, "recall: out of request memory");
    return CASCADE_ENOMEM;
}

int cascade_recall_run(cascade_recall *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__RecallRequest *req, Cascade__V1__RecallResponse **out,
                       char *err, size_t errlen)
{
    int idx[CASCADE_RECALL_MAX_CHANNELS];
    int rc = recall_validate(r, req, idx, err, errlen);
    if (rc != 0)
        return rc;
    /* Every Redis command of this request waits at most until its deadline;
     * the handle is the thread's, so the bound is lifted again afterwards. */
    cascade_redis *redis = cascade_redis_pool_get(r->redis);
    cascade_redis_set_deadline(redis, deadline_ms);
    rc = recall_run_channels(r, redis, arena, deadline_ms, req, idx, out, err, errlen);
    cascade_redis_set_deadline(redis, INT64_MAX);
    return rc;
}

/* ------------------------------------------------------------------ rpc */

int cascade_recall_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    int rc =
        cascade_recall_run(service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
                           (const Cascade__V1__RecallRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

const struct cascade_rpc_method *cascade_recall_methods(size_t *n)
{
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.Recall/Recall", &cascade__v1__recall_request__descriptor,
         &cascade__v1__recall_response__descriptor, cascade_recall_handle},
    };
    *n = sizeof methods / sizeof methods[0];
    return methods;
}
