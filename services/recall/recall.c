/* Recall stage: the channel registry, request validation, running the named
 * channels in order and merging their hits into one candidate per item. */
#include "recall.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "idmap.h"
#include "recall_internal.h"
#include "request.h"

/* The channel registry. Adding a channel: write its function (one file) and
 * add a row; config recall.channels.<name>.enabled switches it. */
static const struct {
    const char *name;
    cascade_recall__channel_fn fn;
} channels[] = {
    {"hot", cascade_recall__hot},
    {"itemcf", cascade_recall__itemcf},
};
#define N_CHANNELS (sizeof channels / sizeof channels[0])
_Static_assert(N_CHANNELS <= CASCADE_RECALL_MAX_CHANNELS, "raise CASCADE_RECALL_MAX_CHANNELS");

static char channel_list[512];
static pthread_once_t channel_list_once = PTHREAD_ONCE_INIT;

static void channel_list_build(void)
{
    size_t off = 0;
    for (size_t i = 0; i < N_CHANNELS && off < sizeof channel_list; i++)
        off += (size_t)snprintf(channel_list + off, sizeof channel_list - off, "%s%s",
                                i ? ", " : "", channels[i].name);
}

const char *cascade_recall_channel_list(void)
{
    pthread_once(&channel_list_once, channel_list_build);
    return channel_list;
}

static int channel_index(const char *name)
{
    for (size_t i = 0; i < N_CHANNELS; i++)
        if (strcmp(channels[i].name, name) == 0)
            return (int)i;
    return -1;
}

int cascade_recall__store_error(cascade_redis *redis, int rc, const char *channel, char *err,
                                size_t errlen)
{
    if (rc == CASCADE_ENOMEM) {
        snprintf(err, errlen, "%s: out of memory", channel);
        return rc;
    }
    snprintf(err, errlen, "%s: %s", channel,
             redis && cascade_redis_error(redis)[0] ? cascade_redis_error(redis)
                                                    : cascade_strerror(rc));
    return CASCADE_EUNAVAILABLE;
}

/* ------------------------------------------------------------------ lifecycle */

static int recall_read_config(cascade_recall *r, const cascade_config *cfg, char *err,
                              size_t errlen)
{
    int64_t v;
    int rc;
    if ((rc = cascade_config_int(cfg, "recall.max_quota", 5000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_quota = (uint32_t)v;
    if ((rc = cascade_config_int(cfg, "recall.itemcf.last_n", 50, 1, 1000, &v, err, errlen)))
        return rc;
    r->itemcf_last_n = (uint32_t)v;
    if ((rc = cascade_config_int(cfg, "recall.itemcf.neighbours", 50, 1, 200, &v, err, errlen)))
        return rc;
    r->itemcf_neighbours = (uint32_t)v;
    for (size_t i = 0; i < N_CHANNELS; i++) {
        char path[128];
        snprintf(path, sizeof path, "recall.channels.%s.enabled", channels[i].name);
        if ((rc = cascade_config_bool(cfg, path, true, &r->enabled[i], err, errlen)))
            return rc;
    }
    return 0;
}

cascade_recall *cascade_recall_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, char *err, size_t errlen)
{
    cascade_recall *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "recall: out of memory");
        goto fail;
    }
    if (!ns || !ns[0] || strlen(ns) >= sizeof r->ns) {
        snprintf(err, errlen, "recall: namespace must be 1..%zu characters", sizeof r->ns - 1);
        goto fail;
    }
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    r->redis = redis;
    if (recall_read_config(r, cfg, err, errlen) != 0)
        goto fail;
    return r;
fail:
    free(r);
    return NULL;
}

void cascade_recall_destroy(cascade_recall *r)
{
    free(r);
}

/* ------------------------------------------------------------------ request */

/* Check the request; fill idx[0..n_channels) with registry indexes. */
static int recall_validate(const cascade_recall *r, const Cascade__V1__RecallRequest *req, int *idx,
                           char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc != 0)
        return rc;
    if (req->n_channels == 0) {
        snprintf(err, errlen, "channels is empty (known: %s)", cascade_recall_channel_list());
        return CASCADE_EINVAL;
    }
    if (req->n_channels > N_CHANNELS) {
        snprintf(err, errlen, "%zu channels requested, at most %zu distinct channels exist",
                 req->n_channels, N_CHANNELS);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < req->n_channels; i++) {
        const char *name = req->channels[i] ? req->channels[i] : "";
        idx[i] = channel_index(name);
        if (idx[i] < 0) {
            snprintf(err, errlen, "unknown channel \"%.64s\" (known: %s)", name,
                     cascade_recall_channel_list());
            return CASCADE_EINVAL;
        }
        if (!r->enabled[idx[i]]) {
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

static Cascade__V1__ChannelHit *make_hit(cascade_arena *arena, const char *channel, float score,
                                         uint32_t rank)
{
    Cascade__V1__ChannelHit *h = cascade_arena_alloc(arena, sizeof *h);
    if (!h)
        return NULL;
    cascade__v1__channel_hit__init(h);
    h->channel = (char *)channel; /* static registry string; only read when packing */
    h->score = score;
    h->rank = rank;
    return h;
}

/* One candidate per item, in order of first appearance (channel order, then
 * channel rank); a later channel's hit on the same item is appended to it. */
static int recall_merge(cascade_arena *arena, const int *idx,
                        const struct cascade_recall_hits *hits, size_t n_channels,
                        Cascade__V1__RecallResponse *resp)
{
    size_t total = 0;
    for (size_t c = 0; c < n_channels; c++)
        total += hits[c].count;
    cascade_idmap byid;
    resp->candidates = cascade_arena_calloc(arena, total + 1, sizeof *resp->candidates);
    if (!resp->candidates || cascade_idmap_init(&byid, arena, total) != 0)
        return CASCADE_ENOMEM;
    for (size_t c = 0; c < n_channels; c++) {
        for (size_t i = 0; i < hits[c].count; i++) {
            bool created;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&byid, hits[c].ids[i], &created);
            if (!e)
                return CASCADE_ENOMEM;
            Cascade__V1__Candidate *cand;
            if (created) {
                cand = cascade_arena_alloc(arena, sizeof *cand);
                if (!cand)
                    return CASCADE_ENOMEM;
                cascade__v1__candidate__init(cand);
                cand->item_id = hits[c].ids[i];
                cand->channels = cascade_arena_calloc(arena, n_channels, sizeof *cand->channels);
                if (!cand->channels)
                    return CASCADE_ENOMEM;
                e->index = (uint32_t)resp->n_candidates;
                resp->candidates[resp->n_candidates++] = cand;
            }
            cand = resp->candidates[e->index];
            cand->channels[cand->n_channels] =
                make_hit(arena, channels[idx[c]].name, hits[c].scores[i], (uint32_t)i);
            if (!cand->channels[cand->n_channels])
                return CASCADE_ENOMEM;
            cand->n_channels++;
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
        cr->channel = (char *)channels[idx[c]].name;
        cr->count = (uint32_t)hits[c].count;
        cr->latency_us = latency_us[c] > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us[c];
        resp->channels[resp->n_channels++] = cr;
    }
    return 0;
}

int cascade_recall_run(cascade_recall *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__RecallRequest *req, Cascade__V1__RecallResponse **out,
                       char *err, size_t errlen)
{
    int idx[CASCADE_RECALL_MAX_CHANNELS];
    struct cascade_recall_hits hits[CASCADE_RECALL_MAX_CHANNELS];
    int64_t latency_us[CASCADE_RECALL_MAX_CHANNELS];
    int rc = recall_validate(r, req, idx, err, errlen);
    if (rc != 0)
        return rc;
    cascade_redis *redis = cascade_redis_pool_get(r->redis);
    if (!redis) {
        snprintf(err, errlen, "recall: no Redis connection (out of memory)");
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
        .err = err,
        .errlen = errlen,
    };
    for (size_t c = 0; c < req->n_channels; c++) {
        if (cascade_now_ms() >= deadline_ms) {
            snprintf(err, errlen, "deadline exceeded before channel \"%s\"", channels[idx[c]].name);
            return CASCADE_ETIMEDOUT;
        }
        int64_t t0 = cascade_now_us();
        memset(&hits[c], 0, sizeof hits[c]);
        if ((rc = channels[idx[c]].fn(&args, &hits[c])) != 0)
            return rc;
        latency_us[c] = cascade_now_us() - t0;
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
