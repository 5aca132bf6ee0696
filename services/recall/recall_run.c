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

/* What a validated request asks for: per channel (in request order) its
 * registry index, quota and time budget (0 = the call's deadline). A plain
 * request (`channels` + `quota`) gives every channel the same quota; a
 * batched one (`channel_specs`) gives each its own and reports a failing
 * channel in its ChannelResult instead of failing the call. */
struct recall_plan {
    size_t n;
    bool batched;
    bool lists; /* RecallRequest.lists: each channel's list in its ChannelResult */
    int idx[CASCADE_RECALL_MAX_CHANNELS];
    uint32_t quota[CASCADE_RECALL_MAX_CHANNELS];
    uint32_t timeout_ms[CASCADE_RECALL_MAX_CHANNELS];
    /* Batched: a channel the service does not know or has disabled is
     * reported in its own ChannelResult (idx -1, this name and message), so a
     * config mismatch costs that channel, not the whole call. */
    const char *name[CASCADE_RECALL_MAX_CHANNELS];
    char bad[CASCADE_RECALL_MAX_CHANNELS][320];
};

static int check_quota(const cascade_recall *r, const char *field, uint32_t quota, char *err,
                       size_t errlen)
{
    if (quota >= 1 && quota <= r->max_quota)
        return 0;
    snprintf(err, errlen, "%s %u out of range 1..%u", field, quota, r->max_quota);
    return CASCADE_EINVAL;
}

/* The channel names of either form, as one list: names[i] and the field it
 * came from (for messages). */
static const char *request_channel(const Cascade__V1__RecallRequest *req, size_t i, char *field,
                                   size_t fieldlen)
{
    const char *name;
    if (req->n_channel_specs > 0) {
        snprintf(field, fieldlen, "channel_specs[%zu].channel", i);
        name = req->channel_specs[i] ? req->channel_specs[i]->channel : NULL;
    } else {
        snprintf(field, fieldlen, "channels[%zu]", i);
        name = req->channels[i];
    }
    return name ? name : "";
}

/* Check the request and fill the plan. */
static int recall_validate(const cascade_recall *r, const Cascade__V1__RecallRequest *req,
                           struct recall_plan *plan, char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    if (rc != 0)
        return rc;
    if (req->n_channel_specs > 0 && req->n_channels > 0) {
        snprintf(err, errlen, "give either channels (with quota) or channel_specs, not both");
        return CASCADE_EINVAL;
    }
    plan->batched = req->n_channel_specs > 0;
    plan->lists = req->lists;
    plan->n = plan->batched ? req->n_channel_specs : req->n_channels;
    int *idx = plan->idx;
    if (plan->n == 0) {
        snprintf(err, errlen, "channels is empty (known: %s)", cascade_recall_channel_list());
        return CASCADE_EINVAL;
    }
    if (plan->n > cascade_recall__n_channels) {
        snprintf(err, errlen, "%zu channels requested, at most %zu distinct channels exist",
                 plan->n, cascade_recall__n_channels);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < plan->n; i++) {
        char field[48];
        const char *name = request_channel(req, i, field, sizeof field);
        if ((rc = cascade_request_check_string(field, name, CASCADE_REQUEST_CHANNEL_NAME_MAX, err,
                                               errlen)))
            return rc;
        idx[i] = -1;
        plan->name[i] = name;
        for (size_t c = 0; c < cascade_recall__n_channels; c++)
            if (strcmp(cascade_recall__channels[c].name, name) == 0)
                idx[i] = (int)c;
        char *msg = plan->batched ? plan->bad[i] : err;
        size_t msglen = plan->batched ? sizeof plan->bad[i] : errlen;
        if (idx[i] < 0)
            snprintf(msg, msglen, "unknown channel \"%.64s\" (known: %s)", name,
                     cascade_recall_channel_list());
        else if (!r->cfg[idx[i]].enabled)
            snprintf(msg, msglen, "channel \"%s\" is disabled (recall.channels.%s.enabled)", name,
                     name);
        if (idx[i] < 0 || !r->cfg[idx[i]].enabled) {
            if (!plan->batched)
                return CASCADE_EINVAL;
            idx[i] = -1;
            plan->quota[i] = plan->timeout_ms[i] = 0;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (idx[j] == idx[i]) {
                snprintf(err, errlen, "channel \"%s\" is requested twice", name);
                return CASCADE_EINVAL;
            }
        if (plan->batched) {
            snprintf(field, sizeof field, "channel_specs[%zu].quota", i);
            if ((rc = check_quota(r, field, req->channel_specs[i]->quota, err, errlen)))
                return rc;
            plan->quota[i] = req->channel_specs[i]->quota;
            plan->timeout_ms[i] = req->channel_specs[i]->timeout_ms;
        } else {
            plan->quota[i] = req->quota;
            plan->timeout_ms[i] = 0;
        }
    }
    return plan->batched ? 0 : check_quota(r, "quota", req->quota, err, errlen);
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

/* One ChannelResult per planned channel; status/message are what each
 * channel's outcome was (only a batched call has non-OK ones). */
static int recall_results(cascade_arena *arena, const struct recall_plan *plan,
                          const struct cascade_recall_hits *hits, const int64_t *latency_us,
                          const int *status, char *const *message,
                          Cascade__V1__RecallResponse *resp)
{
    resp->channels = cascade_arena_calloc(arena, plan->n, sizeof *resp->channels);
    Cascade__V1__ChannelResult *slab = cascade_arena_calloc(arena, plan->n, sizeof *slab);
    if (!resp->channels || !slab)
        return CASCADE_ENOMEM;
    for (size_t c = 0; c < plan->n; c++) {
        Cascade__V1__ChannelResult *cr = &slab[c];
        cascade__v1__channel_result__init(cr);
        cr->channel = plan->idx[c] >= 0 ? (char *)cascade_recall__channels[plan->idx[c]].name
                                        : message[c + plan->n]; /* the requested name */
        cr->count = (uint32_t)hits[c].count;
        if (plan->lists && hits[c].count > 0) {
            /* Copied: a channel's hits may point into a shared cache. */
            size_t n = hits[c].count;
            cr->item_ids = cascade_arena_alloc(arena, n * sizeof *cr->item_ids);
            cr->scores = cascade_arena_alloc(arena, n * sizeof *cr->scores);
            if (!cr->item_ids || !cr->scores)
                return CASCADE_ENOMEM;
            memcpy(cr->item_ids, hits[c].ids, n * sizeof *cr->item_ids);
            memcpy(cr->scores, hits[c].scores, n * sizeof *cr->scores);
            cr->n_item_ids = cr->n_scores = n;
        }
        cr->latency_us = latency_us[c] > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us[c];
        cr->status = (uint32_t)status[c];
        if (message[c])
            cr->message = message[c];
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
        memset(hits, 0, sizeof *hits); /* a failed channel contributes nothing */
        return rc;
    }
    if (hits->count > args->quota)
        hits->count = args->quota; /* a channel never returns more than asked */
    cascade_metric_add(m->candidates, (double)hits->count);
    return 0;
}

/* The absolute deadline of planned channel c: its budget counted from the
 * call's start, never past the call's own deadline. */
static int64_t channel_deadline(const struct recall_plan *plan, size_t c, int64_t start_ms,
                                int64_t deadline_ms)
{
    if (plan->timeout_ms[c] == 0)
        return deadline_ms;
    int64_t own = start_ms + (int64_t)plan->timeout_ms[c];
    return own < deadline_ms ? own : deadline_ms;
}

/* Run the channels of a validated request on this thread's Redis handle. A
 * plain request fails at its first failing channel; a batched one records the
 * failure (gRPC status and message) and goes on with the next channel. */
static int recall_run_channels(cascade_recall *r, cascade_redis *redis, cascade_arena *arena,
                               const int64_t *deadlines, const Cascade__V1__RecallRequest *req,
                               const struct recall_plan *plan,
                               struct cascade_recall__request_state *state,
                               Cascade__V1__RecallResponse **out, char *err, size_t errlen)
{
    struct cascade_recall_hits hits[CASCADE_RECALL_MAX_CHANNELS];
    int64_t latency_us[CASCADE_RECALL_MAX_CHANNELS];
    int status[CASCADE_RECALL_MAX_CHANNELS];
    char *message[2 * CASCADE_RECALL_MAX_CHANNELS]; /* then the names of unusable channels */
    int rc;
    struct cascade_recall__channel_args args = {
        .recall = r,
        .redis = redis,
        .arena = arena,
        .req = req,
        .user_id = req->user->user_id,
        .state = state,
        .err = err,
        .errlen = errlen,
    };
    /* One round trip for the user's own keys several channels read. */
    cascade_recall__prefetch(&args, plan->idx, plan->quota, deadlines, plan->n);
    /* And one for the neighbour lists of itemcf, swing and ease. */
    cascade_recall__neighbours_prefetch(&args, plan->idx, deadlines, plan->n);
    for (size_t c = 0; c < plan->n; c++) {
        args.deadline_ms = deadlines[c];
        args.quota = plan->quota[c];
        status[c] = GRPC_STATUS_OK;
        message[c] = message[c + plan->n] = NULL;
        latency_us[c] = 0;
        if (plan->idx[c] < 0) { /* batched: unknown or disabled */
            memset(&hits[c], 0, sizeof hits[c]);
            status[c] = GRPC_STATUS_INVALID_ARGUMENT;
            if (!(message[c] = cascade_arena_strdup(arena, plan->bad[c])) ||
                !(message[c + plan->n] = cascade_arena_strdup(arena, plan->name[c])))
                goto nomem;
            continue;
        }
        const char *name = cascade_recall__channels[plan->idx[c]].name;
        if (cascade_now_ms() >= args.deadline_ms) {
            memset(&hits[c], 0, sizeof hits[c]);
            snprintf(err, errlen, "deadline exceeded before channel \"%s\"", name);
            rc = CASCADE_ETIMEDOUT;
        } else {
            cascade_redis_set_deadline(redis, args.deadline_ms);
            rc = run_channel(r, plan->idx[c], &args, &hits[c], &latency_us[c]);
        }
        if (rc == 0)
            continue;
        if (!plan->batched || rc == CASCADE_ENOMEM)
            return rc;
        status[c] = (int)cascade_error_to_grpc(rc);
        if ((message[c] = cascade_arena_strdup(arena, err)) == NULL)
            goto nomem;
        err[0] = '\0';
    }
    Cascade__V1__RecallResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    if (!resp)
        goto nomem;
    cascade__v1__recall_response__init(resp);
    if ((!plan->lists && recall_merge(arena, plan->idx, hits, plan->n, resp) != 0) ||
        recall_results(arena, plan, hits, latency_us, status, message, resp) != 0)
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
    struct recall_plan plan;
    int rc = recall_validate(r, req, &plan, err, errlen);
    if (rc != 0)
        return rc;
    /* Every Redis command of this request waits at most until its channel's
     * deadline; the handle is the thread's, so the bound is lifted again
     * afterwards. */
    cascade_redis *redis = cascade_redis_pool_get(r->redis);
    struct cascade_recall__request_state *state = cascade_arena_calloc(arena, 1, sizeof *state);
    if (!redis || !state) {
        snprintf(err, errlen, "recall: out of memory");
        return CASCADE_ENOMEM;
    }
    int64_t start_ms = cascade_now_ms();
    int64_t deadlines[CASCADE_RECALL_MAX_CHANNELS];
    for (size_t c = 0; c < plan.n; c++)
        deadlines[c] = channel_deadline(&plan, c, start_ms, deadline_ms);
    rc = recall_run_channels(r, redis, arena, deadlines, req, &plan, state, out, err, errlen);
    cascade_recall__prefetch_release(state);
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
