/* Recommend: validate, assign experiments, fan Recall out to every channel and
 * merge, then filter → pre-rank → rank → re-rank with a budget per stage,
 * degrading (previous order kept, reason recorded) instead of failing, and
 * finally record exposure of the returned items so they are not shown again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cascade/v1/filter.pb-c.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/rank.pb-c.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/rerank.pb-c.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "merge.h"
#include "orch_internal.h"
#include "report.h"
#include "request.h"
#include "store.h"

/* State of one Recommend call. */
struct rq {
    cascade_orch *o;
    const struct cascade_orch_call *call;
    cascade_arena *arena;
    int64_t start_us;
    int64_t deadline_ms;
    uint32_t count;
    Cascade__V1__UserContext *user; /* the caller's context with request_id filled */
    Cascade__V1__ExperimentContext *exp;
    struct cascade_orch_report report;
    Cascade__V1__Candidate **cands;
    size_t n;
    enum cascade_score_kind source; /* the stage that produced the current order */
    bool used_fallback;
};

static int validate(const struct cascade_orch_call *call, const Cascade__V1__RecommendRequest *req)
{
    int rc = cascade_request_check_user(req->user, call->err, call->errlen);
    if (rc)
        return rc;
    if (req->count < 1 || req->count > CASCADE_ORCH_MAX_COUNT)
        return cascade_orch__fail(call, CASCADE_EINVAL, "count must be in 1..%d, got %u",
                                  CASCADE_ORCH_MAX_COUNT, req->count);
    return 0;
}

/* The request id: the caller's (message, then metadata) or a fresh one. */
static const char *request_id(struct rq *rq, const Cascade__V1__UserContext *user)
{
    if (user->request_id && user->request_id[0])
        return user->request_id;
    if (rq->call->request_id && rq->call->request_id[0])
        return rq->call->request_id;
    struct {
        int64_t wall_s, now_us;
        uint64_t seq;
        int64_t pid;
    } seed = {cascade_wall_s(), cascade_now_us(), atomic_fetch_add(&rq->o->request_seq, 1),
              (int64_t)getpid()};
    return cascade_arena_printf(rq->arena, "%016llx",
                                (unsigned long long)cascade_hash64(&seed, sizeof seed, 0x5eed));
}

static int setup(struct rq *rq, const Cascade__V1__RecommendRequest *req)
{
    const struct cascade_orch_call *call = rq->call;
    rq->user = cascade_arena_alloc(rq->arena, sizeof *rq->user);
    if (rq->user == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    *rq->user = *req->user;
    rq->user->request_id = (char *)request_id(rq, req->user);
    if (rq->user->request_id == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    rq->count = req->count;
    rq->deadline_ms = call->deadline_ms;
    if (rq->deadline_ms == INT64_MAX)
        rq->deadline_ms = cascade_now_ms() + rq->o->cfg.deadline_ms;
    cascade_orch_report_init(&rq->report, rq->arena, req->debug);
    int rc = cascade_experiments_assign(rq->o->experiments, rq->user->user_id, rq->arena, &rq->exp);
    if (rc)
        return cascade_orch__fail(call, rc, "experiment assignment failed: %s",
                                  cascade_strerror(rc));
    return 0;
}

static int64_t min_i64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Absolute deadline of a call with its own budget inside the request's. */
static int64_t budget_deadline(const struct rq *rq, int timeout_ms)
{
    return min_i64(rq->deadline_ms, cascade_now_ms() + timeout_ms);
}

static void report(struct rq *rq, const struct cascade_orch_outcome *o)
{
    if (cascade_orch_report_add(&rq->report, o))
        CASCADE_WARN(rq->user->request_id, "out of memory recording stage %s", o->stage);
}

/* ------------------------------------------------------------------ recall */

/* True when the experiment's "recall.channels" list (comma separated) is
 * absent or names the channel. */
static bool channel_selected(const struct rq *rq, const char *name)
{
    const char *list = cascade_exp_param(rq->exp, "recall.channels");
    if (list == NULL || list[0] == '\0')
        return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *stop = end;
        while (stop > p && stop[-1] == ' ')
            stop--;
        if ((size_t)(stop - p) == len && strncmp(p, name, len) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Channel weight and quota after experiment overrides. */
static void channel_params(const struct rq *rq, const struct cascade_orch_channel_cfg *ch,
                           double *weight, uint32_t *quota)
{
    char key[CASCADE_ORCH_NAME_MAX + 32];
    snprintf(key, sizeof key, "recall.weight.%s", ch->name);
    *weight = cascade_exp_param_double(rq->exp, key, ch->weight);
    if (!(*weight >= 0.0))
        *weight = 0.0;
    snprintf(key, sizeof key, "recall.quota.%s", ch->name);
    double q = cascade_exp_param_double(rq->exp, key, ch->quota);
    *quota = q < 1 ? 1 : q > 5000 ? 5000 : (uint32_t)q;
}

static Cascade__V1__RecallRequest *recall_request(struct rq *rq, const char *channel,
                                                  uint32_t quota)
{
    Cascade__V1__RecallRequest *req = cascade_arena_alloc(rq->arena, sizeof *req);
    char **names = cascade_arena_alloc(rq->arena, sizeof *names);
    if (req == NULL || names == NULL)
        return NULL;
    cascade__v1__recall_request__init(req);
    names[0] = (char *)channel;
    req->user = rq->user;
    req->n_channels = 1;
    req->channels = names;
    req->quota = quota;
    req->experiments = rq->exp;
    return req;
}

/* Record how each channel call went and collect the good ones for merging. */
static size_t collect_channels(struct rq *rq, struct cascade_rpc_call *calls,
                               struct cascade_merge_input *inputs, size_t k, size_t *total)
{
    size_t m = 0;
    *total = 0;
    for (size_t j = 0; j < k; j++) {
        Cascade__V1__RecallResponse *resp = (Cascade__V1__RecallResponse *)calls[j].response;
        bool ok = calls[j].status == GRPC_STATUS_OK && resp != NULL;
        size_t got = ok ? resp->n_candidates : 0;
        struct cascade_orch_outcome out = {
            .stage = cascade_arena_printf(rq->arena, "recall/%s", inputs[j].channel),
            .status = ok ? GRPC_STATUS_OK : calls[j].status,
            .message = ok ? "" : calls[j].status_message,
            .latency_us = calls[j].latency_us,
            .items_out = got,
            .degraded = !ok,
        };
        if (out.stage)
            report(rq, &out);
        if (!ok)
            continue;
        inputs[m] = inputs[j];
        inputs[m].candidates = resp->candidates;
        inputs[m].n_candidates = resp->n_candidates;
        *total += got;
        m++;
    }
    return m;
}

static int run_recall(struct rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    struct cascade_rpc_call *calls =
        cascade_arena_calloc(rq->arena, cfg->n_channels + 1, sizeof *calls);
    struct cascade_merge_input *inputs =
        cascade_arena_calloc(rq->arena, cfg->n_channels + 1, sizeof *inputs);
    size_t k = 0, total = 0;
    if (calls == NULL || inputs == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_channels; i++) {
        const struct cascade_orch_channel_cfg *ch = &cfg->channels[i];
        if (!channel_selected(rq, ch->name))
            continue;
        channel_params(rq, ch, &inputs[k].weight, &inputs[k].quota);
        inputs[k].channel = ch->name;
        Cascade__V1__RecallRequest *req = recall_request(rq, ch->name, inputs[k].quota);
        if (req == NULL)
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
        calls[k] = (struct cascade_rpc_call){
            .channel = rq->o->channel_of[i],
            .method = "/cascade.v1.Recall/Recall",
            .request = &req->base,
            .response_type = &cascade__v1__recall_response__descriptor,
            .deadline_ms = budget_deadline(rq, ch->timeout_ms),
            .request_id = rq->user->request_id,
        };
        k++;
    }
    if (k > 0)
        cascade_rpc_fanout(calls, k, rq->arena);
    int64_t t0 = cascade_now_us();
    size_t m = collect_channels(rq, calls, inputs, k, &total);
    uint32_t merge_max =
        (uint32_t)cascade_exp_param_double(rq->exp, "orchestrator.merge_max", cfg->merge_max);
    int rc = cascade_merge_channels(inputs, m, merge_max ? merge_max : cfg->merge_max, rq->arena,
                                    &rq->cands, &rq->n);
    if (rc)
        return cascade_orch__fail(rq->call, rc, "out of memory merging recall channels");
    rq->source = CASCADE_SCORE_RECALL;
    report(rq, &(struct cascade_orch_outcome){.stage = "merge",
                                              .latency_us = cascade_now_us() - t0,
                                              .items_in = total,
                                              .items_out = rq->n});
    return 0;
}

/* ---------------------------------------------------------------- fallback */

static Cascade__V1__Candidate *fallback_candidate(cascade_arena *arena, uint64_t id, double score,
                                                  uint32_t rank)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(arena, sizeof *c);
    Cascade__V1__ChannelHit *h = cascade_arena_alloc(arena, sizeof *h);
    Cascade__V1__ChannelHit **hits = cascade_arena_alloc(arena, sizeof *hits);
    if (c == NULL || h == NULL || hits == NULL)
        return NULL;
    cascade__v1__candidate__init(c);
    cascade__v1__channel_hit__init(h);
    h->channel = "hot_fallback";
    h->score = (float)score;
    h->rank = rank;
    hits[0] = h;
    c->item_id = id;
    c->channels = hits;
    c->n_channels = 1;
    c->recall_score = (float)score;
    return c;
}

/* No channel produced anything: serve the hot list straight from Redis. */
static int run_fallback(struct rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    char key[CASCADE_KEY_MAX];
    size_t got = 0;
    int64_t t0 = cascade_now_us();
    cascade_redis *r = rq->o->redis ? cascade_redis_pool_get(rq->o->redis) : NULL;
    uint64_t *ids = cascade_arena_calloc(rq->arena, cfg->fallback_max, sizeof *ids);
    double *scores = cascade_arena_calloc(rq->arena, cfg->fallback_max, sizeof *scores);
    rq->used_fallback = true;
    if (ids == NULL || scores == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    if (r == NULL)
        return cascade_orch__fail(
            rq->call, CASCADE_EUNAVAILABLE,
            "no candidates: every recall channel failed or came back empty, and no "
            "Redis is configured for the hot-list fallback");
    int rc = cascade_store_top_items(r, cascade_key_hot(key, rq->o->ns), cfg->fallback_max, ids,
                                     scores, &got);
    if (rc)
        return cascade_orch__fail(
            rq->call, CASCADE_EUNAVAILABLE,
            "no candidates: every recall channel failed or came back empty, and the "
            "hot-list fallback failed: %s",
            cascade_redis_error(r));
    rq->cands = cascade_arena_calloc(rq->arena, got + 1, sizeof *rq->cands);
    if (rq->cands == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (rq->n = 0; rq->n < got; rq->n++)
        if (!(rq->cands[rq->n] =
                  fallback_candidate(rq->arena, ids[rq->n], scores[rq->n], (uint32_t)rq->n)))
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    rq->source = CASCADE_SCORE_RECALL;
    report(rq, &(struct cascade_orch_outcome){
                   .stage = "fallback",
                   .message = "no candidates from any recall channel; serving the hot list",
                   .latency_us = cascade_now_us() - t0,
                   .items_out = rq->n,
                   .degraded = true});
    return 0;
}

/* ------------------------------------------------------------------ stages */

/* Call one stage within min(request deadline, now + its budget). Returns the
 * response, or NULL after recording a degraded outcome whose reason ends with
 * `consequence` (what the pipeline does without the stage). */
static ProtobufCMessage *stage_call(struct rq *rq, const char *stage,
                                    const struct cascade_orch_stage_cfg *st,
                                    cascade_rpc_channel *ch, const char *method,
                                    const ProtobufCMessage *req,
                                    const ProtobufCMessageDescriptor *resp_type,
                                    const char *consequence, int64_t *latency_us)
{
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = method,
        .request = req,
        .response_type = resp_type,
        .deadline_ms = budget_deadline(rq, st->timeout_ms),
        .request_id = rq->user->request_id,
    };
    struct cascade_orch_outcome out = {
        .stage = stage, .items_in = rq->n, .items_out = rq->n, .degraded = true};
    *latency_us = 0;
    if (cascade_ms_left(rq->deadline_ms) <= 0) {
        out.status = GRPC_STATUS_DEADLINE_EXCEEDED;
        out.message = cascade_arena_printf(rq->arena,
                                           "request deadline passed before the stage started "
                                           "(skipped: %s)",
                                           consequence);
        report(rq, &out);
        return NULL;
    }
    if (cascade_rpc_call_unary(&call, rq->arena) == 0 && call.response != NULL) {
        *latency_us = call.latency_us;
        return call.response;
    }
    out.status = call.status;
    out.latency_us = call.latency_us;
    out.message = cascade_arena_printf(rq->arena, "%s (skipped: %s)",
                                       call.status_message ? call.status_message : "", consequence);
    report(rq, &out);
    return NULL;
}

/* Trace a stage that ran and replace the candidate list with its output. */
static void stage_done(struct rq *rq, const char *stage, int64_t latency_us,
                       Cascade__V1__Candidate **cands, size_t n, enum cascade_score_kind source)
{
    report(rq, &(struct cascade_orch_outcome){
                   .stage = stage, .latency_us = latency_us, .items_in = rq->n, .items_out = n});
    rq->cands = cands;
    rq->n = n;
    rq->source = source;
}

static void truncate_to(struct rq *rq, size_t keep)
{
    if (keep > 0 && rq->n > keep)
        rq->n = keep;
}

static void run_filter(struct rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.filter;
    Cascade__V1__FilterRequest req = CASCADE__V1__FILTER_REQUEST__INIT;
    int64_t lat;
    if (!st->enabled || rq->n == 0)
        return;
    req.user = rq->user;
    req.candidates = rq->cands;
    req.n_candidates = rq->n;
    req.experiments = rq->exp;
    Cascade__V1__FilterResponse *resp = (Cascade__V1__FilterResponse *)stage_call(
        rq, "filter", st, rq->o->filter, "/cascade.v1.Filter/Filter", &req.base,
        &cascade__v1__filter_response__descriptor, "items already shown may repeat", &lat);
    if (resp != NULL)
        stage_done(rq, "filter", lat, resp->candidates, resp->n_candidates, rq->source);
}

static uint32_t param_keep(const struct rq *rq, const char *key, uint32_t def)
{
    double v = cascade_exp_param_double(rq->exp, key, def);
    return v < 0 ? 0 : v > 20000 ? 20000 : (uint32_t)v;
}

static void run_prerank(struct rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.prerank;
    Cascade__V1__PreRankRequest req = CASCADE__V1__PRE_RANK_REQUEST__INIT;
    uint32_t keep = param_keep(rq, "prerank.keep", st->keep);
    int64_t lat;
    if (!st->enabled || rq->n == 0) {
        truncate_to(rq, keep);
        return;
    }
    req.user = rq->user;
    req.candidates = rq->cands;
    req.n_candidates = rq->n;
    req.keep = keep;
    req.experiments = rq->exp;
    Cascade__V1__PreRankResponse *resp = (Cascade__V1__PreRankResponse *)stage_call(
        rq, "prerank", st, rq->o->prerank, "/cascade.v1.PreRank/Score", &req.base,
        &cascade__v1__pre_rank_response__descriptor, "recall order kept", &lat);
    if (resp != NULL)
        stage_done(rq, "prerank", lat, resp->candidates, resp->n_candidates, CASCADE_SCORE_PRERANK);
    truncate_to(rq, keep);
}

static void run_rank(struct rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.rank;
    Cascade__V1__RankRequest req = CASCADE__V1__RANK_REQUEST__INIT;
    uint32_t keep = param_keep(rq, "rank.keep", st->keep);
    int64_t lat;
    if (!st->enabled || rq->n == 0) {
        truncate_to(rq, keep);
        return;
    }
    req.user = rq->user;
    req.candidates = rq->cands;
    req.n_candidates = rq->n;
    req.keep = keep;
    req.experiments = rq->exp;
    Cascade__V1__RankResponse *resp = (Cascade__V1__RankResponse *)stage_call(
        rq, "rank", st, rq->o->rank, "/cascade.v1.Rank/Score", &req.base,
        &cascade__v1__rank_response__descriptor, "pre-rank order kept", &lat);
    if (resp != NULL)
        stage_done(rq, "rank", lat, resp->candidates, resp->n_candidates, CASCADE_SCORE_RANK);
    truncate_to(rq, keep);
}

static void run_rerank(struct rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.rerank;
    Cascade__V1__ReRankRequest req = CASCADE__V1__RE_RANK_REQUEST__INIT;
    int64_t lat;
    if (st->enabled && rq->n > 0) {
        req.user = rq->user;
        req.candidates = rq->cands;
        req.n_candidates = rq->n;
        req.count = rq->count;
        req.experiments = rq->exp;
        Cascade__V1__ReRankResponse *resp = (Cascade__V1__ReRankResponse *)stage_call(
            rq, "rerank", st, rq->o->rerank, "/cascade.v1.ReRank/ReRank", &req.base,
            &cascade__v1__re_rank_response__descriptor, "rank order kept", &lat);
        if (resp != NULL)
            stage_done(rq, "rerank", lat, resp->candidates, resp->n_candidates,
                       CASCADE_SCORE_RERANK);
    }
    truncate_to(rq, rq->count);
}

/* ---------------------------------------------------------------- response */

static Cascade__V1__RecommendedItem *make_item(struct rq *rq, const Cascade__V1__Candidate *c)
{
    Cascade__V1__RecommendedItem *it = cascade_arena_alloc(rq->arena, sizeof *it);
    char **names = cascade_arena_calloc(rq->arena, c->n_channels + 1, sizeof *names);
    if (it == NULL || names == NULL)
        return NULL;
    cascade__v1__recommended_item__init(it);
    it->item_id = c->item_id;
    it->score = cascade_request_candidate_score(c, rq->source);
    for (size_t i = 0; i < c->n_channels; i++)
        if (c->channels[i] && c->channels[i]->channel)
            names[it->n_channels++] = c->channels[i]->channel;
    it->channels = names;
    it->tasks = c->tasks;
    it->rank_score = c->rank_score;
    it->attrs = c->attrs;
    return it;
}

/* Tell the filter what is being shown so the next call does not repeat it. */
static void record_exposure(struct rq *rq, const Cascade__V1__RecommendResponse *resp)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    Cascade__V1__RecordExposureRequest req = CASCADE__V1__RECORD_EXPOSURE_REQUEST__INIT;
    struct cascade_orch_stage_cfg st = cfg->filter;
    int64_t lat;
    if (!st.enabled || resp->n_items == 0)
        return;
    st.timeout_ms = cfg->exposure_timeout_ms;
    req.user_id = rq->user->user_id;
    req.time_s = rq->user->request_time_s;
    req.item_ids = cascade_arena_calloc(rq->arena, resp->n_items, sizeof *req.item_ids);
    if (req.item_ids == NULL)
        return;
    for (size_t i = 0; i < resp->n_items; i++)
        req.item_ids[req.n_item_ids++] = resp->items[i]->item_id;
    size_t n_before = rq->n;
    rq->n = resp->n_items; /* items in/out of the exposure trace */
    Cascade__V1__RecordExposureResponse *ack = (Cascade__V1__RecordExposureResponse *)stage_call(
        rq, "exposure", &st, rq->o->filter, "/cascade.v1.Filter/RecordExposure", &req.base,
        &cascade__v1__record_exposure_response__descriptor, "these items may be shown again", &lat);
    if (ack != NULL)
        report(rq, &(struct cascade_orch_outcome){.stage = "exposure",
                                                  .latency_us = lat,
                                                  .items_in = resp->n_items,
                                                  .items_out = ack->recorded});
    rq->n = n_before;
}

static int build_response(struct rq *rq, Cascade__V1__RecommendResponse **out)
{
    Cascade__V1__RecommendResponse *resp = cascade_arena_alloc(rq->arena, sizeof *resp);
    size_t n = rq->n < rq->count ? rq->n : rq->count;
    if (resp == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__recommend_response__init(resp);
    resp->items = cascade_arena_calloc(rq->arena, n + 1, sizeof *resp->items);
    if (resp->items == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(resp->items[resp->n_items++] = make_item(rq, rq->cands[i])))
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    record_exposure(rq, resp);
    resp->experiments = rq->exp;
    resp->request_id = rq->user->request_id;
    resp->degraded = rq->report.degraded;
    resp->degraded_reasons = rq->report.reasons;
    resp->n_degraded_reasons = rq->report.n_reasons;
    if (rq->report.want_trace) {
        resp->trace = rq->report.trace;
        resp->n_trace = rq->report.n_trace;
    }
    *out = resp;
    return 0;
}

/* Recall (or the hot fallback) then the filter; when the filter leaves
 * nothing, the hot list gets one more chance through the filter. */
static int candidates_for_ranking(struct rq *rq)
{
    int rc = run_recall(rq);
    if (rc == 0 && rq->n == 0)
        rc = run_fallback(rq);
    if (rc)
        return rc;
    run_filter(rq);
    if (rq->n == 0 && !rq->used_fallback && (rc = run_fallback(rq)) == 0)
        run_filter(rq);
    return rc;
}

static void log_outcome(const struct rq *rq, const Cascade__V1__RecommendResponse *resp)
{
    long long us = (long long)(cascade_now_us() - rq->start_us);
    if (resp->degraded)
        CASCADE_WARN(rq->user->request_id,
                     "recommend user=%s count=%u items=%zu degraded (%s) %lldus", rq->user->user_id,
                     rq->count, resp->n_items,
                     resp->n_degraded_reasons ? resp->degraded_reasons[0] : "", us);
    else
        CASCADE_DEBUG(rq->user->request_id, "recommend user=%s count=%u items=%zu %lldus",
                      rq->user->user_id, rq->count, resp->n_items, us);
}

int cascade_orch_recommend(cascade_orch *o, const struct cascade_orch_call *call,
                           const Cascade__V1__RecommendRequest *req,
                           Cascade__V1__RecommendResponse **out)
{
    struct rq rq = {.o = o, .call = call, .arena = call->arena, .start_us = cascade_now_us()};
    int rc;
    *out = NULL;
    if ((rc = validate(call, req)) || (rc = setup(&rq, req)))
        return rc;
    if ((rc = candidates_for_ranking(&rq)))
        return rc;
    run_prerank(&rq);
    run_rank(&rq);
    run_rerank(&rq);
    if ((rc = build_response(&rq, out)))
        return rc;
    log_outcome(&rq, *out);
    return 0;
}
