/* Tests of the orchestrator pipeline against fake stage services served
 * in-process by the real RPC runtime (one server holds fake Recall, Filter,
 * PreRank, Rank and ReRank methods) and a private redis-server: the happy
 * path, no repeats through exposure, A/B parameters reaching the stages,
 * degraded channels and stages, validation, the hot-list fallback, the
 * cold-start channel mix, new-item exploration slots, recall cache writes,
 * the hard-negative log, the per-channel contribution trace, and Feedback
 * (stream, last-n, consumed, blocked items and authors, follows). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cascade/v1/filter.pb-c.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/rank.pb-c.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/rerank.pb-c.h"
#include "clock.h"
#include "error.h"
#include "experiments.h"
#include "hash.h"
#include "metrics.h"
#include "orchestrator.h"
#include "request.h"
#include "store.h"
#include "support.h"

/* ------------------------------------------------------------ fake stages */

#define MAX_EXPOSED 8192

struct fake {
    pthread_mutex_t mu;
    struct {
        char user[72];
        uint64_t item;
    } exposed[MAX_EXPOSED];
    size_t n_exposed;
    uint32_t last_prerank_keep;
    char last_rank_experiment[64];
    size_t filter_hits_seen;    /* channel hits the filter was sent, all calls */
    size_t prerank_hits_seen;   /* and the pre-ranker (in channels or as columns) */
    size_t prerank_column_hits; /* of those, sent as RecallSignals columns */
    size_t rank_column_hits;    /* hits the ranker was sent as columns */
    bool prerank_scores_only;   /* the last PreRank/Rank request's scores_only (or columns) */
    bool prerank_columns;       /* the last PreRank request came as item_ids */
    bool prerank_old;           /* the pre-rank ignores item_ids, as one older than them */
    bool rank_columns;          /* the last Rank request came as item_ids */
    bool rank_old;              /* the ranker ignores item_ids, as one older than them */
    bool rank_scores_only;
    uint64_t filter_inject; /* an id the filter adds to its answer (0 = none) */
    bool filter_ids_only;   /* the last Filter request's ids_only */
    bool filter_columns;    /* the last Filter request came as item_ids */
    bool filter_old;        /* the filter ignores item_ids, as one older than them */
    bool recall_lists;      /* the last batched Recall request's lists */
    bool filter_blind;      /* the filter passes exposed items (as before a concurrent
                               request's reservation) */
    size_t rerank_calls;
    size_t rerank_extras_seen;      /* channel hits and task scores the re-ranker was sent */
    size_t rerank_rank_scores;      /* candidates it was sent with their rank_score */
    uint64_t rerank_inject;         /* an id the re-ranker puts first in its answer (0 = none) */
    char rerank_md_request_id[128]; /* x-request-id of the last ReRank call */
    int rank_stall_ms;              /* the ranker answers this late (0 = at once)... */
    bool rank_released;             /* ...unless the test releases it first */
    pthread_cond_t rank_release;
    char rerank_user_request_id[128]; /* and its user.request_id */
};

static struct fake fake = {.mu = PTHREAD_MUTEX_INITIALIZER,
                           .rank_release = PTHREAD_COND_INITIALIZER};

static Cascade__V1__Candidate *new_candidate(cascade_arena *a, uint64_t id, const char *channel,
                                             float score)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
    Cascade__V1__ChannelHit *h = cascade_arena_alloc(a, sizeof *h);
    cascade__v1__candidate__init(c);
    cascade__v1__channel_hit__init(h);
    h->channel = cascade_arena_strdup(a, channel);
    h->score = score;
    c->item_id = id;
    c->channels = cascade_arena_alloc(a, sizeof *c->channels);
    c->channels[0] = h;
    c->n_channels = 1;
    return c;
}

/* "hot": items 1..60 (score 60..1); "itemcf": items 41..120 (score 80..1);
 * "new": items 901..920 (score 20..1); "coldmix": items 301..330 (score
 * 30..1); "empty": nothing; anything else: INVALID_ARGUMENT. A plain request
 * names one channel; a batched one (channel_specs, what the orchestrator
 * sends) any number, each answered in its ChannelResult, hits merged per item
 * as the real service does. */
static int fake_channel(const char *ch, uint64_t *first, uint64_t *n)
{
    *first = *n = 0;
    if (strcmp(ch, "hot") == 0)
        *first = 1, *n = 60;
    else if (strcmp(ch, "itemcf") == 0)
        *first = 41, *n = 80;
    else if (strcmp(ch, "new") == 0)
        *first = 901, *n = 20;
    else if (strcmp(ch, "coldmix") == 0)
        *first = 301, *n = 30;
    else if (strcmp(ch, "empty") != 0)
        return CASCADE_EINVAL;
    return 0;
}

/* Append channel ch's candidates (at most quota) to resp, one candidate per
 * item: an item already there gets one more hit. */
static void fake_answer(cascade_arena *a, Cascade__V1__RecallResponse *resp, size_t cap,
                        const char *ch, uint64_t first, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = new_candidate(a, first + i, ch, (float)(n - i));
        c->channels[0]->rank = (uint32_t)i;
        Cascade__V1__Candidate *have = NULL;
        for (size_t j = 0; j < resp->n_candidates && !have; j++)
            if (resp->candidates[j]->item_id == c->item_id)
                have = resp->candidates[j];
        if (have == NULL && resp->n_candidates < cap) {
            resp->candidates[resp->n_candidates++] = c;
            continue;
        }
        Cascade__V1__ChannelHit **hits =
            cascade_arena_alloc(a, (have->n_channels + 1) * sizeof *hits);
        memcpy(hits, have->channels, have->n_channels * sizeof *hits);
        hits[have->n_channels] = c->channels[0];
        have->channels = hits;
        have->n_channels++;
    }
}

/* RecallRequest.lists: each channel's list moves from the candidates' hits
 * into its ChannelResult's item_ids and scores (by hit rank), as the real
 * service answers, and the candidates go. */
static void fake_lists(cascade_arena *a, Cascade__V1__RecallResponse *resp)
{
    for (size_t s = 0; s < resp->n_channels; s++) {
        Cascade__V1__ChannelResult *cr = resp->channels[s];
        if (cr->count == 0)
            continue;
        cr->item_ids = cascade_arena_calloc(a, cr->count, sizeof *cr->item_ids);
        cr->scores = cascade_arena_calloc(a, cr->count, sizeof *cr->scores);
        cr->n_item_ids = cr->n_scores = cr->count;
        for (size_t i = 0; i < resp->n_candidates; i++)
            for (size_t h = 0; h < resp->candidates[i]->n_channels; h++) {
                const Cascade__V1__ChannelHit *hit = resp->candidates[i]->channels[h];
                if (strcmp(hit->channel, cr->channel) == 0 && hit->rank < cr->count) {
                    cr->item_ids[hit->rank] = resp->candidates[i]->item_id;
                    cr->scores[hit->rank] = hit->score;
                }
            }
    }
    resp->n_candidates = 0;
}

static int fake_recall(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                       ProtobufCMessage **response)
{
    (void)svc;
    const Cascade__V1__RecallRequest *req = (const void *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__RecallResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    cascade__v1__recall_response__init(resp);
    uint64_t first, n;
    if (req->n_channel_specs > 0) {
        size_t cap = 0;
        for (size_t s = 0; s < req->n_channel_specs; s++)
            cap += req->channel_specs[s]->quota < 200 ? req->channel_specs[s]->quota : 200;
        resp->candidates = cascade_arena_calloc(a, cap + 1, sizeof *resp->candidates);
        resp->channels = cascade_arena_calloc(a, req->n_channel_specs, sizeof *resp->channels);
        for (size_t s = 0; s < req->n_channel_specs; s++) {
            const Cascade__V1__ChannelSpec *spec = req->channel_specs[s];
            Cascade__V1__ChannelResult *cr = cascade_arena_alloc(a, sizeof *cr);
            cascade__v1__channel_result__init(cr);
            cr->channel = spec->channel;
            resp->channels[resp->n_channels++] = cr;
            if (fake_channel(spec->channel, &first, &n) != 0) {
                cr->status = GRPC_STATUS_INVALID_ARGUMENT;
                cr->message = cascade_arena_printf(a, "unknown channel \"%s\"", spec->channel);
                continue;
            }
            if (n > spec->quota)
                n = spec->quota;
            cr->count = (uint32_t)n;
            fake_answer(a, resp, cap, spec->channel, first, n);
        }
        if (req->lists)
            fake_lists(a, resp);
        pthread_mutex_lock(&fake.mu);
        fake.recall_lists = req->lists;
        pthread_mutex_unlock(&fake.mu);
        *response = &resp->base;
        return 0;
    }
    if (req->n_channels != 1)
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "one channel per call expected");
    const char *ch = req->channels[0];
    if (fake_channel(ch, &first, &n) != 0)
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "unknown channel \"%s\"", ch);
    if (n > req->quota)
        n = req->quota;
    resp->candidates = cascade_arena_calloc(a, n + 1, sizeof *resp->candidates);
    fake_answer(a, resp, n, ch, first, n);
    *response = &resp->base;
    return 0;
}

static bool is_exposed(const char *user, uint64_t item)
{
    for (size_t i = 0; i < fake.n_exposed; i++)
        if (fake.exposed[i].item == item && strcmp(fake.exposed[i].user, user) == 0)
            return true;
    return false;
}

static int fake_filter(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                       ProtobufCMessage **response)
{
    (void)svc;
    const Cascade__V1__FilterRequest *req = (const void *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__FilterResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    cascade__v1__filter_response__init(resp);
    pthread_mutex_lock(&fake.mu);
    /* In columns (item_ids) unless it plays a filter older than them. */
    size_t n = fake.filter_old ? req->n_candidates : req->n_candidates + req->n_item_ids;
    resp->candidates = cascade_arena_calloc(a, n + 2, sizeof *resp->candidates);
    Cascade__V1__DropCount *exposed = cascade_arena_alloc(a, sizeof *exposed);
    Cascade__V1__DropCount **drops = cascade_arena_alloc(a, sizeof *drops);
    cascade__v1__drop_count__init(exposed);
    drops[0] = exposed;
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c =
            req->n_candidates ? req->candidates[i] : new_candidate(a, req->item_ids[i], "x", 1);
        fake.filter_hits_seen += req->n_candidates ? c->n_channels : 0;
        if (fake.filter_blind || !is_exposed(req->user->user_id, c->item_id))
            resp->candidates[resp->n_candidates++] = c;
    }
    exposed->reason = "exposed";
    exposed->count = (uint32_t)(n - resp->n_candidates);
    resp->dropped = drops;
    resp->n_dropped = 1;
    if (fake.filter_inject)
        resp->candidates[resp->n_candidates++] = new_candidate(a, fake.filter_inject, "x", 1);
    fake.filter_ids_only = req->ids_only;
    fake.filter_columns = req->n_item_ids > 0;
    pthread_mutex_unlock(&fake.mu);
    /* ids_only: the survivors as kept_ids, as the real filter answers. */
    if (req->ids_only) {
        resp->kept_ids = cascade_arena_calloc(a, resp->n_candidates + 1, sizeof *resp->kept_ids);
        for (size_t i = 0; i < resp->n_candidates; i++)
            resp->kept_ids[resp->n_kept_ids++] = resp->candidates[i]->item_id;
        resp->n_candidates = 0;
    }
    *response = &resp->base;
    return 0;
}

static int fake_expose(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                       ProtobufCMessage **response)
{
    (void)svc;
    const Cascade__V1__RecordExposureRequest *req = (const void *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__RecordExposureResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    cascade__v1__record_exposure_response__init(resp);
    resp->item_ids = cascade_arena_calloc(a, req->n_item_ids + 1, sizeof *resp->item_ids);
    pthread_mutex_lock(&fake.mu);
    /* With reserve: the first `reserve` items not exposed yet (as the real filter). */
    for (size_t i = 0; i < req->n_item_ids && fake.n_exposed < MAX_EXPOSED; i++) {
        if (req->reserve &&
            (resp->recorded >= req->reserve || is_exposed(req->user_id, req->item_ids[i])))
            continue;
        snprintf(fake.exposed[fake.n_exposed].user, sizeof fake.exposed[0].user, "%s",
                 req->user_id);
        fake.exposed[fake.n_exposed++].item = req->item_ids[i];
        resp->item_ids[resp->n_item_ids++] = req->item_ids[i];
        resp->recorded++;
    }
    pthread_mutex_unlock(&fake.mu);
    *response = &resp->base;
    return 0;
}

static int by_prerank(const void *x, const void *y)
{
    const Cascade__V1__Candidate *a = *(Cascade__V1__Candidate *const *)x;
    const Cascade__V1__Candidate *b = *(Cascade__V1__Candidate *const *)y;
    return (a->prerank_score < b->prerank_score) - (a->prerank_score > b->prerank_score);
}

/* Pre-rank: score = recall_score, sort, keep. */
static int fake_prerank(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                        ProtobufCMessage **response)
{
    (void)svc;
    Cascade__V1__PreRankRequest *req = cascade_arena_alloc(cascade_rpc_ctx_arena(ctx), sizeof *req);
    *req = *(const Cascade__V1__PreRankRequest *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__PreRankResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    cascade__v1__pre_rank_response__init(resp);
    char err[256];
    pthread_mutex_lock(&fake.mu);
    bool old = fake.prerank_old, columns = req->n_item_ids > 0 && !old;
    pthread_mutex_unlock(&fake.mu);
    /* Candidates sent as item_ids columns are built, and hits sent as
     * columns given back to them, as the real stage does; one older than
     * item_ids sees no candidates. */
    if (columns && cascade_request_candidates_from_columns(
                       req->n_candidates, req->item_ids, req->n_item_ids, req->recall_scores,
                       req->n_recall_scores, 20000, a, &req->candidates, err, sizeof err))
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "%s", err);
    if (columns)
        req->n_candidates = req->n_item_ids;
    if (!old && cascade_request_expand_signals(req->recall_signals, req->candidates,
                                               req->n_candidates, a, err, sizeof err))
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "%s", err);
    pthread_mutex_lock(&fake.mu);
    fake.last_prerank_keep = req->keep;
    fake.prerank_scores_only = req->scores_only || columns;
    fake.prerank_columns = req->n_item_ids > 0;
    fake.prerank_column_hits += req->recall_signals ? req->recall_signals->n_hit_channel : 0;
    for (size_t i = 0; i < req->n_candidates; i++)
        fake.prerank_hits_seen += req->candidates[i]->n_channels;
    pthread_mutex_unlock(&fake.mu);
    for (size_t i = 0; i < req->n_candidates; i++)
        req->candidates[i]->prerank_score = req->candidates[i]->recall_score;
    if (req->n_candidates > 0) /* an old pre-rank sent columns has none */
        qsort(req->candidates, req->n_candidates, sizeof *req->candidates, by_prerank);
    resp->candidates = req->candidates;
    resp->n_candidates = req->keep && req->keep < req->n_candidates ? req->keep : req->n_candidates;
    /* columns: scored_ids and scores, as the real stage answers. */
    if (columns) {
        resp->scored_ids = cascade_arena_calloc(a, resp->n_candidates + 1, sizeof(uint64_t));
        resp->scores = cascade_arena_calloc(a, resp->n_candidates + 1, sizeof(float));
        for (size_t i = 0; i < resp->n_candidates; i++) {
            resp->scored_ids[i] = resp->candidates[i]->item_id;
            resp->scores[i] = resp->candidates[i]->prerank_score;
        }
        resp->n_scored_ids = resp->n_scores = resp->n_candidates;
        resp->n_candidates = 0;
    }
    /* scores_only: item_id and prerank_score, as the real stage answers. */
    for (size_t i = 0; req->scores_only && i < resp->n_candidates; i++) {
        Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
        cascade__v1__candidate__init(c);
        c->item_id = resp->candidates[i]->item_id;
        c->prerank_score = resp->candidates[i]->prerank_score;
        resp->candidates[i] = c;
    }
    *response = &resp->base;
    return 0;
}

/* A user's taste for a new item (901..920), in [0, 1): what the fake ranker
 * gives "pick-*" users, so each of them prefers other new items. */
static double taste(const char *user, uint64_t item)
{
    return (double)(cascade_hash64(&item, sizeof item, cascade_hash_str(user, 7)) % 1000000) / 1e6;
}

static bool is_new_item(uint64_t id)
{
    return id >= 901 && id <= 920;
}

/* Stable sort by rank_score, best first (ties keep the pre-rank order). */
static void sort_by_rank_score(Cascade__V1__Candidate **c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Cascade__V1__Candidate *x = c[i];
        size_t j = i;
        for (; j > 0 && c[j - 1]->rank_score < x->rank_score; j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
}

/* Rank: p_click 0.5, attrs.category = id % 7, rank_score = recall_score (the fake pre-rank's
 * score), sorted. For "pick-*" users the new items score between the 20th and the 50th other
 * candidate, by the user's taste: all of them in the top half, none in the top 10. */
/* A stalled ranker: wait rank_stall_ms, or until the test releases it. */
static void fake_rank_stall(void)
{
    pthread_mutex_lock(&fake.mu);
    if (fake.rank_stall_ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += fake.rank_stall_ms / 1000;
        until.tv_nsec += (long)(fake.rank_stall_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!fake.rank_released &&
               pthread_cond_timedwait(&fake.rank_release, &fake.mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&fake.mu);
}

/* resp's candidates (each with tasks and attrs) as RankResponse columns. */
static void rank_answer_columns(cascade_arena *a, Cascade__V1__RankResponse *resp)
{
    size_t n = resp->n_candidates;
    resp->scored_ids = cascade_arena_calloc(a, n + 1, sizeof(uint64_t));
    resp->rank_scores = cascade_arena_calloc(a, n + 1, sizeof(float));
    resp->task_scores = cascade_arena_calloc(a, 6 * n + 1, sizeof(float));
    resp->author_ids = cascade_arena_calloc(a, n + 1, sizeof(uint64_t));
    resp->categories = cascade_arena_calloc(a, n + 1, sizeof(uint32_t));
    resp->created_at_s = cascade_arena_calloc(a, n + 1, sizeof(int64_t));
    resp->media_types = cascade_arena_calloc(a, n + 1, sizeof(uint32_t));
    resp->durations_s = cascade_arena_calloc(a, n + 1, sizeof(float));
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        resp->scored_ids[i] = c->item_id;
        resp->rank_scores[i] = c->rank_score;
        resp->task_scores[6 * i] = c->tasks->p_click;
        resp->task_scores[6 * i + 1] = c->tasks->p_like;
        resp->task_scores[6 * i + 2] = c->tasks->p_collect;
        resp->task_scores[6 * i + 3] = c->tasks->p_share;
        resp->task_scores[6 * i + 4] = c->tasks->watch_time_s;
        resp->task_scores[6 * i + 5] = c->tasks->p_complete;
        resp->author_ids[i] = c->attrs->author_id;
        resp->categories[i] = c->attrs->category;
        resp->created_at_s[i] = c->attrs->created_at_s;
        resp->media_types[i] = c->attrs->media_type;
        resp->durations_s[i] = c->attrs->duration_s;
    }
    resp->n_scored_ids = resp->n_rank_scores = resp->n_author_ids = resp->n_categories = n;
    resp->n_created_at_s = resp->n_media_types = resp->n_durations_s = n;
    resp->n_task_scores = 6 * n;
    resp->n_candidates = 0;
}

static int fake_rank(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                     ProtobufCMessage **response)
{
    (void)svc;
    fake_rank_stall();
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__RankRequest *req = cascade_arena_alloc(a, sizeof *req);
    *req = *(const Cascade__V1__RankRequest *)request;
    Cascade__V1__RankResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    char err[256];
    cascade__v1__rank_response__init(resp);
    pthread_mutex_lock(&fake.mu);
    bool old = fake.rank_old, columns = req->n_item_ids > 0 && !old;
    fake.rank_columns = req->n_item_ids > 0;
    pthread_mutex_unlock(&fake.mu);
    /* Candidates sent as item_ids columns are built, and hits sent as
     * columns given back to them, as the real stage does; one older than
     * item_ids sees no candidates. */
    if (columns && cascade_request_candidates_from_columns(
                       req->n_candidates, req->item_ids, req->n_item_ids, req->recall_scores,
                       req->n_recall_scores, 5000, a, &req->candidates, err, sizeof err))
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "%s", err);
    if (columns)
        req->n_candidates = req->n_item_ids;
    if (!old && cascade_request_expand_signals(req->recall_signals, req->candidates,
                                               req->n_candidates, a, err, sizeof err))
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "%s", err);
    for (size_t i = 0; i < req->n_candidates; i++) {
        Cascade__V1__Candidate *c = req->candidates[i];
        c->tasks = cascade_arena_alloc(a, sizeof *c->tasks);
        cascade__v1__task_scores__init(c->tasks);
        c->tasks->p_click = 0.5f;
        c->attrs = cascade_arena_alloc(a, sizeof *c->attrs);
        cascade__v1__item_attributes__init(c->attrs);
        c->attrs->category = (uint32_t)(c->item_id % 7);
        c->rank_score = c->recall_score; /* = the fake pre-rank's score */
    }
    sort_by_rank_score(req->candidates, req->n_candidates);
    const char *user = req->user && req->user->user_id ? req->user->user_id : "";
    if (strncmp(user, "pick-", 5) == 0) {
        float hi = 0, lo = 0;
        for (size_t i = 0, k = 0; i < req->n_candidates; i++)
            if (!is_new_item(req->candidates[i]->item_id) && ++k <= 50) {
                if (k == 20)
                    hi = req->candidates[i]->rank_score;
                lo = req->candidates[i]->rank_score;
            }
        for (size_t i = 0; i < req->n_candidates; i++) {
            Cascade__V1__Candidate *c = req->candidates[i];
            if (is_new_item(c->item_id))
                c->rank_score = lo + (hi - lo) * (float)taste(user, c->item_id);
        }
        sort_by_rank_score(req->candidates, req->n_candidates);
    }
    pthread_mutex_lock(&fake.mu);
    const char *exp = cascade_exp_param(req->experiments, "prerank.weights.ctr");
    snprintf(fake.last_rank_experiment, sizeof fake.last_rank_experiment, "%s", exp ? exp : "");
    fake.rank_scores_only = req->scores_only || columns;
    fake.rank_column_hits += req->recall_signals ? req->recall_signals->n_hit_channel : 0;
    pthread_mutex_unlock(&fake.mu);
    resp->candidates = req->candidates;
    resp->n_candidates = req->keep && req->keep < req->n_candidates ? req->keep : req->n_candidates;
    if (columns) /* the answer as columns, as the real stage */
        rank_answer_columns(a, resp);
    /* scores_only: item_id, tasks, rank_score, attrs, as the real stage. */
    for (size_t i = 0; req->scores_only && i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *full = resp->candidates[i];
        Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
        cascade__v1__candidate__init(c);
        c->item_id = full->item_id;
        c->tasks = full->tasks;
        c->rank_score = full->rank_score;
        c->attrs = full->attrs;
        resp->candidates[i] = c;
    }
    *response = &resp->base;
    return 0;
}

static int fake_rerank(void *svc, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                       ProtobufCMessage **response)
{
    (void)svc;
    const Cascade__V1__ReRankRequest *req = (const void *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    Cascade__V1__ReRankResponse *resp = cascade_arena_alloc(a, sizeof *resp);
    cascade__v1__re_rank_response__init(resp);
    const char *md = cascade_rpc_ctx_request_id(ctx);
    pthread_mutex_lock(&fake.mu);
    fake.rerank_calls++;
    snprintf(fake.rerank_md_request_id, sizeof fake.rerank_md_request_id, "%s", md ? md : "");
    snprintf(fake.rerank_user_request_id, sizeof fake.rerank_user_request_id, "%s",
             req->user && req->user->request_id ? req->user->request_id : "");
    for (size_t i = 0; i < req->n_candidates; i++) {
        fake.rerank_extras_seen +=
            req->candidates[i]->n_channels + (req->candidates[i]->tasks != 0);
        fake.rerank_rank_scores += req->candidates[i]->rank_score > 0.0f;
    }
    uint64_t inject = fake.rerank_inject;
    pthread_mutex_unlock(&fake.mu);
    resp->candidates = req->candidates;
    resp->n_candidates = req->count < req->n_candidates ? req->count : req->n_candidates;
    if (inject && resp->n_candidates > 0)
        resp->candidates[0]->item_id = inject;
    for (size_t i = 0; i < resp->n_candidates; i++)
        resp->candidates[i]->rerank_score = 1000.0f - (float)i;
    *response = &resp->base;
    return 0;
}

static const struct cascade_rpc_method fake_methods[] = {
    {"/cascade.v1.Recall/Recall", &cascade__v1__recall_request__descriptor,
     &cascade__v1__recall_response__descriptor, fake_recall},
    {"/cascade.v1.Filter/Filter", &cascade__v1__filter_request__descriptor,
     &cascade__v1__filter_response__descriptor, fake_filter},
    {"/cascade.v1.Filter/RecordExposure", &cascade__v1__record_exposure_request__descriptor,
     &cascade__v1__record_exposure_response__descriptor, fake_expose},
    {"/cascade.v1.PreRank/Score", &cascade__v1__pre_rank_request__descriptor,
     &cascade__v1__pre_rank_response__descriptor, fake_prerank},
    {"/cascade.v1.Rank/Score", &cascade__v1__rank_request__descriptor,
     &cascade__v1__rank_response__descriptor, fake_rank},
    {"/cascade.v1.ReRank/ReRank", &cascade__v1__re_rank_request__descriptor,
     &cascade__v1__re_rank_response__descriptor, fake_rerank},
};

/* ---------------------------------------------------------------- fixture */

struct fixture {
    cascade_rpc_server *server;
    int port;
    int dead_port;                   /* nothing listens there */
    cascade_rpc_server *slow_server; /* the same fakes, for a stage that stalls */
    int slow_port;
    struct test_redis redis;
    struct cascade_redis_opts ropts;
    cascade_redis_pool *pool;
    cascade_redis *r;
    cascade_arena *arena;
};

static struct fixture fx;

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    cascade_rpc_init();
    struct cascade_rpc_server_opts so = {
        .listen_addr = "127.0.0.1:0", .threads = 2, .service_name = "test.Fake"};
    fx.server = cascade_rpc_server_create(
        &so, fake_methods, sizeof fake_methods / sizeof fake_methods[0], &fake, err, sizeof err);
    if (fx.server == NULL || cascade_rpc_server_start(fx.server, err, sizeof err) != 0) {
        fprintf(stderr, "fake server: %s\n", err);
        return -1;
    }
    fx.port = cascade_rpc_server_port(fx.server);
    /* A second server for a stage that stalls: a handler that waits holds its
     * worker's queue, so the stall must not share the others' server. */
    fx.slow_server = cascade_rpc_server_create(
        &so, fake_methods, sizeof fake_methods / sizeof fake_methods[0], &fake, err, sizeof err);
    if (fx.slow_server == NULL || cascade_rpc_server_start(fx.slow_server, err, sizeof err) != 0) {
        fprintf(stderr, "fake server: %s\n", err);
        return -1;
    }
    fx.slow_port = cascade_rpc_server_port(fx.slow_server);
    fx.dead_port = test_dead_port(); /* reserved: nothing can listen there */
    if (test_redis_start(&fx.redis) != 0)
        return -1;
    fx.ropts = (struct cascade_redis_opts){.host = "127.0.0.1",
                                           .port = fx.redis.port,
                                           .connect_timeout_ms = 500,
                                           .command_timeout_ms = 1000};
    fx.pool = cascade_redis_pool_create(&fx.ropts);
    fx.r = cascade_redis_create(&fx.ropts);
    fx.arena = cascade_arena_create(0);
    return fx.pool && fx.r && fx.arena ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cascade_arena_destroy(fx.arena);
    cascade_redis_destroy(fx.r);
    cascade_redis_pool_destroy(fx.pool);
    test_redis_stop(&fx.redis);
    cascade_rpc_server_destroy(fx.server);
    cascade_rpc_server_destroy(fx.slow_server);
    cascade_rpc_shutdown();
    return 0;
}

/* An orchestrator whose every endpoint is the fake server, with extra JSON
 * members spliced into the "orchestrator" section; its metrics in m (may be
 * NULL). */
static cascade_orch *make_orch_metrics(const char *channels_json, const char *extra_json,
                                       const char *experiments_json, cascade_redis_pool *pool,
                                       cascade_metrics *m)
{
    char text[4096], err[512];
    snprintf(text, sizeof text,
             "{\"orchestrator\": {\"endpoints\": {\"recall\": \"127.0.0.1:%d\", "
             "\"filter\": \"127.0.0.1:%d\", \"prerank\": \"127.0.0.1:%d\", "
             "\"rank\": \"127.0.0.1:%d\", \"rerank\": \"127.0.0.1:%d\", "
             "\"dead\": \"127.0.0.1:%d\"}, \"channels\": %s, \"deadline_ms\": 5000 %s}, "
             "\"experiments\": %s}",
             fx.port, fx.port, fx.port, fx.port, fx.port, fx.dead_port, channels_json,
             extra_json ? extra_json : "", experiments_json ? experiments_json : "null");
    cascade_config *cfg = cascade_config_parse(text, "test.json", err, sizeof err);
    assert_non_null(cfg);
    cascade_orch *o = cascade_orch_create(cfg, pool, "t", m, err, sizeof err);
    if (o == NULL)
        fprintf(stderr, "orchestrator: %s\n", err);
    assert_non_null(o);
    cascade_config_destroy(cfg);
    return o;
}

static cascade_orch *make_orch(const char *channels_json, const char *extra_json,
                               const char *experiments_json, cascade_redis_pool *pool)
{
    return make_orch_metrics(channels_json, extra_json, experiments_json, pool, NULL);
}

static const char *two_channels =
    "[{\"name\": \"hot\", \"weight\": 1, \"quota\": 100, \"timeout_ms\": 2000},"
    " {\"name\": \"itemcf\", \"weight\": 2, \"quota\": 100, \"timeout_ms\": 2000}]";

/* The peer the tests call from unless they say otherwise: a loopback caller,
 * as cascade-cli and cascade-eval on the local stack are. */
#define LOCAL_PEER "ipv4:127.0.0.1:40000"

/* Recommend as a caller at `peer` sending x-debug-token `token` (either may
 * be NULL). */
static int recommend_slots_as(cascade_orch *o, const char *user, uint32_t count, bool debug,
                              Cascade__V1__Slot **slots, size_t n_slots, const char *peer,
                              const char *token, Cascade__V1__RecommendResponse **out, char *err,
                              size_t errlen)
{
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    u.user_id = (char *)user;
    req.user = user ? &u : NULL;
    req.count = count;
    req.debug = debug;
    req.slots = slots;
    req.n_slots = n_slots;
    cascade_arena_reset(fx.arena); /* the previous answer is no longer needed */
    struct cascade_orch_call call = {.arena = fx.arena,
                                     .deadline_ms = INT64_MAX,
                                     .peer = peer,
                                     .debug_token = token,
                                     .err = err,
                                     .errlen = errlen};
    err[0] = '\0';
    return cascade_orch_recommend(o, &call, &req, out);
}

static int recommend_as(cascade_orch *o, const char *user, uint32_t count, bool debug,
                        const char *peer, const char *token, Cascade__V1__RecommendResponse **out,
                        char *err, size_t errlen)
{
    return recommend_slots_as(o, user, count, debug, NULL, 0, peer, token, out, err, errlen);
}

static int recommend(cascade_orch *o, const char *user, uint32_t count, bool debug,
                     Cascade__V1__RecommendResponse **out, char *err, size_t errlen)
{
    return recommend_as(o, user, count, debug, LOCAL_PEER, NULL, out, err, errlen);
}

/* recommend() with a request id in the message and/or the call metadata. */
static int recommend_with_id(cascade_orch *o, const char *user, const char *msg_id,
                             const char *md_id, Cascade__V1__RecommendResponse **out, char *err,
                             size_t errlen)
{
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    u.user_id = (char *)user;
    u.request_id = (char *)msg_id;
    req.user = &u;
    req.count = 10;
    req.debug = true;
    cascade_arena_reset(fx.arena);
    struct cascade_orch_call call = {.arena = fx.arena,
                                     .deadline_ms = INT64_MAX,
                                     .err = err,
                                     .errlen = errlen,
                                     .request_id = md_id,
                                     .peer = LOCAL_PEER};
    err[0] = '\0';
    return cascade_orch_recommend(o, &call, &req, out);
}

static bool has_reason(const Cascade__V1__RecommendResponse *r, const char *prefix)
{
    for (size_t i = 0; i < r->n_degraded_reasons; i++)
        if (strncmp(r->degraded_reasons[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static const Cascade__V1__StageTrace *trace_of(const Cascade__V1__RecommendResponse *r,
                                               const char *stage)
{
    for (size_t i = 0; i < r->n_trace; i++)
        if (strcmp(r->trace[i]->stage, stage) == 0)
            return r->trace[i];
    return NULL;
}

/* Each stage's trace carries its output order: as many ids as it kept, each
 * later stage's ids a subset of the earlier one's, and the rerank order is
 * what was served. */
static void assert_ids_in_stage_order(const Cascade__V1__RecommendResponse *r)
{
    const char *order[] = {"merge", "filter", "prerank", "rank", "rerank"};
    const Cascade__V1__StageTrace *prev = NULL;
    for (size_t s = 0; s < sizeof order / sizeof order[0]; s++) {
        const Cascade__V1__StageTrace *t = trace_of(r, order[s]);
        assert_non_null(t);
        assert_int_equal(t->n_item_ids, t->items_out < 200 ? t->items_out : 200);
        for (size_t i = 0; prev && i < t->n_item_ids; i++) {
            bool found = false;
            for (size_t j = 0; j < prev->n_item_ids && !found; j++)
                found = prev->item_ids[j] == t->item_ids[i];
            assert_true(found);
        }
        prev = t;
    }
    assert_true(prev->n_item_ids >= r->n_items);
    for (size_t i = 0; i < r->n_items; i++)
        assert_int_equal(prev->item_ids[i], r->items[i]->item_id);
}

/* ------------------------------------------------------------------ tests */

static void test_happy_path(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "happy", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_false(r->degraded);
    assert_int_equal(r->n_degraded_reasons, 0);
    assert_true(strlen(r->request_id) > 0);
    assert_non_null(r->experiments);
    /* Merged: items 41..60 are in both channels and lead; the top one carries
     * both channels as provenance. */
    assert_int_equal(r->items[0]->n_channels, 2);
    for (size_t i = 0; i < r->n_items; i++) {
        assert_non_null(r->items[i]->tasks);
        assert_non_null(r->items[i]->attrs);
        assert_int_equal(r->items[i]->attrs->category, r->items[i]->item_id % 7);
        /* Honest fields: score is the fused rank score (the fake ranker's
         * rank_score = recall score, > 0), the re-ranker's selection value is
         * rerank_score, position is the index, every item was ranked. */
        assert_true(r->items[i]->rank_score > 0.0f);
        assert_float_equal(r->items[i]->score, r->items[i]->rank_score, 0);
        assert_float_equal(r->items[i]->rerank_score, 1000.0f - (float)i, 1e-3);
        assert_int_equal(r->items[i]->position, i);
        assert_int_equal(r->items[i]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED);
        assert_string_equal(r->items[i]->source, "");
        for (size_t j = 0; j < i; j++)
            assert_true(r->items[i]->item_id != r->items[j]->item_id);
    }
    const char *stages[] = {"recall/hot", "recall/itemcf", "merge",  "filter",
                            "prerank",    "rank",          "rerank", "exposure"};
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        const Cascade__V1__StageTrace *t = trace_of(r, stages[i]);
        assert_non_null(t);
        assert_int_equal(t->status_code, 0);
        assert_false(t->degraded);
    }
    assert_int_equal(trace_of(r, "recall/hot")->items_out, 60);
    assert_int_equal(trace_of(r, "merge")->items_in, 140);
    assert_int_equal(trace_of(r, "merge")->items_out, 120);
    assert_int_equal(trace_of(r, "exposure")->items_out, 10);
    assert_int_equal(trace_of(r, "exposure")->n_item_ids, 0);
    assert_ids_in_stage_order(r);
    /* Without debug there is no trace, so no ids either. */
    assert_int_equal(recommend(o, "happy-nodebug", 5, false, &r, err, sizeof err), 0);
    assert_int_equal(r->n_trace, 0);
    cascade_orch_destroy(o);
}

static void test_no_repeats(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    uint64_t seen[30];
    size_t n_seen = 0;
    char err[512];
    for (int call = 0; call < 3; call++) {
        Cascade__V1__RecommendResponse *r;
        assert_int_equal(recommend(o, "repeat-user", 10, false, &r, err, sizeof err), 0);
        assert_int_equal(r->n_items, 10);
        for (size_t i = 0; i < r->n_items; i++) {
            for (size_t j = 0; j < n_seen; j++)
                assert_true(r->items[i]->item_id != seen[j]);
            seen[n_seen++] = r->items[i]->item_id;
        }
    }
    cascade_orch_destroy(o);
}

/* The filter's blindness, set under the fake's lock: the fake serves on the
 * RPC server's threads (scripts/tsan.sh). */
static void set_filter_blind(bool on)
{
    pthread_mutex_lock(&fake.mu);
    fake.filter_blind = on;
    pthread_mutex_unlock(&fake.mu);
}

/* Items a concurrent request reserved after this one's filter ran are not
 * shown again: the reservation skips them and the answer fills up from the
 * re-ranked order behind the final list. */
static void test_reservation_fills_from_spares(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    uint64_t first[10];
    char err[512];
    Cascade__V1__RecommendResponse *r;
    assert_int_equal(recommend(o, "racing-user", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    for (size_t i = 0; i < 10; i++)
        first[i] = r->items[i]->item_id;
    set_filter_blind(true); /* the same final list again, as if both ran at once */
    assert_int_equal(recommend(o, "racing-user", 10, true, &r, err, sizeof err), 0);
    set_filter_blind(false);
    assert_int_equal(r->n_items, 10);
    assert_false(r->degraded);
    for (size_t i = 0; i < r->n_items; i++)
        for (size_t j = 0; j < 10; j++)
            if (r->items[i]->item_id == first[j])
                fail_msg("item %llu shown twice", (unsigned long long)first[j]);
    assert_true(trace_of(r, "exposure")->items_in > 10);
    assert_int_equal(trace_of(r, "exposure")->items_out, 10);
    cascade_orch_destroy(o);
}

/* Many racing requests for one user on a small catalogue: when the first
 * round's offer (4 × count) is all taken by the others, a second round over
 * the rest of the ranker's order still fills the answer, and no two answers
 * share an item. */
static void test_reservation_second_round(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    uint64_t seen[60];
    size_t n_seen = 0;
    char err[512];
    Cascade__V1__RecommendResponse *r;
    set_filter_blind(true); /* every request sees the same final list, as if all raced */
    for (int k = 0; k < 6; k++) {
        assert_int_equal(recommend(o, "crowded-user", 10, true, &r, err, sizeof err), 0);
        assert_int_equal(r->n_items, 10);
        assert_false(r->degraded);
        for (size_t i = 0; i < r->n_items; i++) {
            for (size_t j = 0; j < n_seen; j++)
                if (r->items[i]->item_id == seen[j])
                    fail_msg("item %llu in two answers", (unsigned long long)seen[j]);
            seen[n_seen++] = r->items[i]->item_id;
        }
    }
    set_filter_blind(false);
    /* The last answer needed the second round: it was offered more than 4 × 10. */
    assert_true(trace_of(r, "exposure")->items_in > 40);
    cascade_orch_destroy(o);
}

/* A ranker that answers after the caller's deadline, with its own budget
 * longer than that deadline: the orchestrator cuts rank early enough that
 * re-rank and the exposure reservation (their min_ms, here 300 ms each) still
 * run, and the answer is degraded by rank alone. Without the reserve, rank
 * would use the whole deadline and both later steps would be skipped. */
static void test_stalled_rank_leaves_time_for_later_stages(void **state)
{
    (void)state;
    char extra[256];
    snprintf(extra, sizeof extra,
             ", \"stages\": {\"rank\": {\"endpoint\": \"127.0.0.1:%d\", \"timeout_ms\": 60000},"
             " \"rerank\": {\"min_ms\": 300}}, \"exposure\": {\"min_ms\": 300}",
             fx.slow_port);
    cascade_orch *o = make_orch(two_channels, extra, NULL, fx.pool);
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    Cascade__V1__RecommendResponse *r = NULL;
    char err[512] = "";
    u.user_id = "stalled-rank-user";
    req.user = &u;
    req.count = 10;
    req.debug = true;
    cascade_arena_reset(fx.arena);
    pthread_mutex_lock(&fake.mu);
    size_t reranks_before = fake.rerank_calls;
    fake.rank_stall_ms = 30000;
    fake.rank_released = false;
    pthread_mutex_unlock(&fake.mu);
    struct cascade_orch_call call = {.arena = fx.arena,
                                     .deadline_ms = cascade_now_ms() + 1500,
                                     .peer = LOCAL_PEER,
                                     .err = err,
                                     .errlen = sizeof err};
    int rc = cascade_orch_recommend(o, &call, &req, &r);
    pthread_mutex_lock(&fake.mu); /* let the stalled ranker go before any assertion */
    fake.rank_stall_ms = 0;
    fake.rank_released = true;
    pthread_cond_broadcast(&fake.rank_release);
    size_t reranks = fake.rerank_calls - reranks_before;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(rc, 0);
    assert_true(r->degraded);
    assert_true(has_reason(r, "rank: DEADLINE_EXCEEDED"));
    assert_int_equal(r->n_degraded_reasons, 1);
    assert_int_equal(reranks, 1);
    assert_int_equal(trace_of(r, "exposure")->status_code, 0);
    assert_int_equal(trace_of(r, "exposure")->items_out, 10);
    assert_int_equal(r->n_items, 10);
    cascade_orch_destroy(o);
}

static void test_validation(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "", 10, false, &r, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    assert_int_equal(recommend(o, NULL, 10, false, &r, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    assert_int_equal(recommend(o, "u", 0, false, &r, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "1..200"));
    assert_int_equal(recommend(o, "u", 201, false, &r, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "got 201"));
    assert_int_equal(recommend(o, "u\xff", 10, false, &r, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is not valid UTF-8");
    assert_int_equal(recommend(o, "u", 200, false, &r, err, sizeof err), 0);
    cascade_orch_destroy(o);
}

/* Run one Recommend with the given ids; every stage call must succeed and
 * the id the answer carries is the one ReRank received, in its metadata and
 * in user.request_id. Returns the answer's id (in fx.arena). */
static const char *served_request_id(cascade_orch *o, const char *msg_id, const char *md_id)
{
    Cascade__V1__RecommendResponse *r;
    char err[512];
    size_t calls = fake.rerank_calls;
    char user[32]; /* a fresh user each time, so exposure never runs the lists dry */
    snprintf(user, sizeof user, "rid-user-%zu", calls);
    assert_int_equal(recommend_with_id(o, user, msg_id, md_id, &r, err, sizeof err), 0);
    assert_false(r->degraded);
    assert_int_equal(r->n_items, 10);
    for (size_t i = 0; i < r->n_trace; i++)
        assert_int_equal(r->trace[i]->status_code, 0);
    assert_int_equal(fake.rerank_calls, calls + 1);
    assert_string_equal(fake.rerank_md_request_id, r->request_id);
    assert_string_equal(fake.rerank_user_request_id, r->request_id);
    assert_true(cascade_request_id_valid(r->request_id));
    return r->request_id;
}

/* A caller's request id is used only when it is 1..64 characters of
 * [A-Za-z0-9._:-]; anything else (a control character, a 20 KB id, bytes
 * that are not UTF-8) is replaced by a generated id, never sent on to the
 * stages or echoed, and the stage calls still succeed. */
static void test_request_id_sanitised(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    static char huge[20 * 1024 + 1];
    memset(huge, 'a', sizeof huge - 1);
    const char *bad[] = {"abc\x01"
                         "def",
                         "line\nERROR forged",
                         huge,
                         "\xff\xfe\xfd",
                         "caf\xc3\xa9",
                         "has space"};
    assert_string_equal(served_request_id(o, "req-42.a:b_c", NULL), "req-42.a:b_c");
    assert_string_equal(served_request_id(o, NULL, "md-7"), "md-7");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *id = served_request_id(o, bad[i], NULL);
        assert_string_not_equal(id, bad[i]);
        assert_int_equal(strlen(id), 16); /* a generated one */
        id = served_request_id(o, NULL, bad[i]);
        assert_string_not_equal(id, bad[i]);
        assert_int_equal(strlen(id), 16);
    }
    /* A bad message id falls back to a good metadata id. */
    assert_string_equal(served_request_id(o, huge, "md-8"), "md-8");
    cascade_orch_destroy(o);
}

/* A channel on a dead endpoint is dropped; the answer is complete but flagged. */
static void test_dead_channel(void **state)
{
    (void)state;
    const char *channels = "[{\"name\": \"hot\", \"timeout_ms\": 2000},"
                           " {\"name\": \"itemcf\", \"endpoint\": \"dead\", \"timeout_ms\": 2000}]";
    cascade_orch *o = make_orch(channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "dead-channel", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(r->degraded);
    assert_true(has_reason(r, "recall/itemcf: UNAVAILABLE"));
    assert_false(has_reason(r, "recall/hot"));
    assert_true(trace_of(r, "recall/itemcf")->degraded);
    for (size_t i = 0; i < r->n_items; i++)
        assert_string_equal(r->items[i]->channels[0], "hot");
    cascade_orch_destroy(o);
}

/* A dead pre-rank is skipped and the recall order kept; rank still runs. */
static void test_dead_stage(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(
        two_channels, ", \"stages\": {\"prerank\": {\"endpoint\": \"dead\"}}", NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "dead-stage", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(r->degraded);
    assert_true(has_reason(r, "prerank: UNAVAILABLE"));
    assert_non_null(strstr(trace_of(r, "prerank")->message, "recall order kept"));
    assert_non_null(r->items[0]->tasks); /* rank ran after the skipped stage */
    cascade_orch_destroy(o);
}

/* orchestrator.compact_stage_calls false: the pre-ranker and the ranker are
 * sent every hit in the candidates' channels and answer whole candidates;
 * the answer is the same as with the compact calls (the default): same items
 * in the same order with the same scores, tasks, attributes and channels. */
/* What the comparison keeps of an answer (recommend() reuses its arena). */
struct answer_copy {
    size_t n;
    struct {
        uint64_t id;
        float score, rank_score, rerank_score, p_click;
        uint32_t category;
        char channels[64];
    } item[10];
    size_t n_order[2];
    uint64_t order[2][200]; /* the prerank and rank traces */
};

static void copy_answer(const Cascade__V1__RecommendResponse *r, struct answer_copy *c)
{
    assert_false(r->degraded);
    assert_true(r->n_items <= 10);
    c->n = r->n_items;
    for (size_t i = 0; i < r->n_items; i++) {
        const Cascade__V1__RecommendedItem *x = r->items[i];
        assert_non_null(x->tasks);
        assert_non_null(x->attrs);
        assert_true(x->n_channels >= 1);
        c->item[i].id = x->item_id;
        c->item[i].score = x->score;
        c->item[i].rank_score = x->rank_score;
        c->item[i].rerank_score = x->rerank_score;
        c->item[i].p_click = x->tasks->p_click;
        c->item[i].category = x->attrs->category;
        c->item[i].channels[0] = '\0';
        for (size_t h = 0; h < x->n_channels; h++)
            snprintf(c->item[i].channels + strlen(c->item[i].channels),
                     sizeof c->item[i].channels - strlen(c->item[i].channels), "%s,",
                     x->channels[h]);
    }
    const char *stages[2] = {"prerank", "rank"};
    for (int s = 0; s < 2; s++) {
        const Cascade__V1__StageTrace *t = trace_of(r, stages[s]);
        assert_non_null(t);
        assert_true(t->n_item_ids <= 200);
        c->n_order[s] = t->n_item_ids;
        memcpy(c->order[s], t->item_ids, t->n_item_ids * sizeof *t->item_ids);
    }
}

/* orchestrator.compact_stage_calls false: the pre-ranker and the ranker are
 * sent every hit in the candidates' channels and answer whole candidates;
 * the answer is the same as with the compact calls (the default): same items
 * in the same order with the same scores, tasks, attributes and channels. */
static void test_compact_stage_calls_same_answer(void **state)
{
    (void)state;
    cascade_orch *compact = make_orch(two_channels, NULL, NULL, fx.pool);
    cascade_orch *whole =
        make_orch(two_channels, ", \"compact_stage_calls\": false", NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    static struct answer_copy a, b;
    char err[512];
    pthread_mutex_lock(&fake.mu);
    fake.prerank_column_hits = fake.rank_column_hits = fake.prerank_hits_seen = 0;
    fake.rerank_extras_seen = fake.rerank_rank_scores = 0;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(recommend(whole, "compact-off", 10, true, &r, err, sizeof err), 0);
    copy_answer(r, &b);
    pthread_mutex_lock(&fake.mu);
    assert_int_equal(fake.prerank_column_hits + fake.rank_column_hits, 0);
    assert_false(fake.prerank_columns);
    assert_false(fake.rank_columns);
    assert_false(fake.recall_lists);
    assert_true(fake.prerank_hits_seen > 0);
    assert_false(fake.prerank_scores_only);
    assert_false(fake.rank_scores_only);
    assert_true(fake.rerank_extras_seen > 0); /* whole candidates: hits and tasks */
    size_t whole_rank_scores = fake.rerank_rank_scores;
    fake.rerank_extras_seen = fake.rerank_rank_scores = 0;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(recommend(compact, "compact-on", 10, true, &r, err, sizeof err), 0);
    copy_answer(r, &a);
    pthread_mutex_lock(&fake.mu);
    assert_true(fake.prerank_column_hits > 0 && fake.rank_column_hits > 0);
    assert_true(fake.prerank_scores_only && fake.rank_scores_only);
    /* The re-ranker got slim copies: no hits, no tasks, but every rank score. */
    assert_int_equal(fake.rerank_extras_seen, 0);
    assert_true(whole_rank_scores > 0);
    assert_int_equal(fake.rerank_rank_scores, whole_rank_scores);
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(a.n, 10);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.item[i].id, b.item[i].id);
        assert_float_equal(a.item[i].score, b.item[i].score, 0);
        assert_float_equal(a.item[i].rank_score, b.item[i].rank_score, 0);
        assert_float_equal(a.item[i].rerank_score, b.item[i].rerank_score, 0);
        assert_float_equal(a.item[i].rerank_score, 1000.0f - (float)i, 0);
        assert_float_equal(a.item[i].p_click, b.item[i].p_click, 0);
        assert_int_equal(a.item[i].category, b.item[i].category);
        assert_int_equal(a.item[i].category, a.item[i].id % 7); /* the ranker's attrs */
        assert_string_equal(a.item[i].channels, b.item[i].channels);
    }
    for (int s = 0; s < 2; s++) {
        assert_int_equal(a.n_order[s], b.n_order[s]);
        for (size_t i = 0; i < a.n_order[s]; i++)
            assert_int_equal(a.order[s][i], b.order[s][i]);
    }
    cascade_orch_destroy(compact);
    cascade_orch_destroy(whole);
}

/* The filter and the pre-ranker are sent slim candidates (the filter ids
 * and attributes, no channel hits; the pre-ranker also the hits, which its
 * learned model reads) and the kept ones come back with all their
 * provenance; a filter answer with an id it was not sent is not trusted:
 * the stage is skipped, flagged. */
static void test_filter_sees_slim_candidates(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    pthread_mutex_lock(&fake.mu);
    fake.filter_hits_seen = fake.prerank_hits_seen = 0;
    fake.prerank_column_hits = fake.rank_column_hits = 0;
    pthread_mutex_unlock(&fake.mu);
    for (int call = 0; call < 2; call++) { /* the second call has exposures to drop */
        assert_int_equal(recommend(o, "slim-user", 10, true, &r, err, sizeof err), 0);
        assert_int_equal(r->n_items, 10);
        assert_false(r->degraded);
        for (size_t i = 0; i < r->n_items; i++)
            assert_true(r->items[i]->n_channels >= 1);
    }
    assert_int_equal(trace_of(r, "filter")->items_in, 120);
    assert_int_equal(trace_of(r, "filter")->items_out, 110); /* the 10 shown first */
    pthread_mutex_lock(&fake.mu);
    int filter_hits = fake.filter_hits_seen, prerank_hits = fake.prerank_hits_seen;
    size_t prerank_columns = fake.prerank_column_hits, rank_columns = fake.rank_column_hits;
    bool prerank_slim_answer = fake.prerank_scores_only, rank_slim_answer = fake.rank_scores_only;
    fake.filter_inject = 777777;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(filter_hits, 0);
    assert_true(prerank_hits > 0);
    /* orchestrator.compact_stage_calls (default): every hit the pre-ranker
     * saw came as RecallSignals columns (none in the candidates' channels),
     * the ranker got its hits the same way, and both answered scores only —
     * yet the items above carry their channels, and (checked below) tasks and
     * attributes. */
    assert_int_equal(prerank_columns, prerank_hits);
    assert_true(rank_columns > 0);
    assert_true(prerank_slim_answer);
    assert_true(rank_slim_answer);
    assert_true(fake.prerank_columns); /* the pre-ranker got item_ids columns */
    assert_true(fake.rank_columns);    /* and the ranker */
    assert_true(fake.filter_ids_only); /* and the filter answered ids */
    assert_true(fake.filter_columns);  /* to ids sent as packed columns */
    assert_true(fake.recall_lists);    /* and recall its lists in columns */
    assert_int_equal(recommend(o, "slim-inject", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(has_reason(r, "filter: INTERNAL"));
    for (size_t i = 0; i < r->n_items; i++)
        assert_true(r->items[i]->item_id != 777777);
    pthread_mutex_lock(&fake.mu);
    fake.filter_inject = 0;
    fake.filter_old = true; /* sees no candidates in item_ids: keeps and drops nothing */
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(recommend(o, "slim-old-filter", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(has_reason(r, "filter: INTERNAL"));
    assert_non_null(strstr(trace_of(r, "filter")->message, "did not account for every candidate"));
    pthread_mutex_lock(&fake.mu);
    fake.filter_old = false;
    pthread_mutex_unlock(&fake.mu);
    cascade_orch_destroy(o);
}

/* Teardown of the old-stage tests: the stages answer columns again even
 * when an assertion failed with them playing old ones. */
static int stages_current(void **state)
{
    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.prerank_old = fake.rank_old = false;
    pthread_mutex_unlock(&fake.mu);
    return 0;
}

/* A stage older than the columns (its `old` flag set in the fake) sees no
 * candidates and answers none: with compact calls the orchestrator skips
 * it, flagged "<stage>: INTERNAL" with `kept` in the trace, and the rest of
 * the pipeline runs; with compact_stage_calls off the same stage gets
 * messages (its `columns` flag stays false) and answers OK. check_skipped
 * checks the skipped case's answer further (before the next call reuses the
 * arena); the compact-calls-off answer is returned (valid until the next
 * call). */
static Cascade__V1__RecommendResponse *
old_stage_case(bool *old, const bool *columns, const char *stage, const char *kept,
               void (*check_skipped)(const Cascade__V1__RecommendResponse *))
{
    Cascade__V1__RecommendResponse *r, *whole_r;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    cascade_orch *whole =
        make_orch(two_channels, ", \"compact_stage_calls\": false", NULL, fx.pool);
    char err[512], reason[64], user[64];
    snprintf(reason, sizeof reason, "%s: INTERNAL", stage);
    pthread_mutex_lock(&fake.mu);
    *old = true;
    pthread_mutex_unlock(&fake.mu);
    snprintf(user, sizeof user, "old-%s", stage);
    int rc = recommend(o, user, 10, true, &r, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n_items, 10);
    assert_true(r->degraded);
    assert_true(has_reason(r, reason));
    const Cascade__V1__StageTrace *t = trace_of(r, stage);
    assert_non_null(strstr(t->message, "answered no scored_ids"));
    assert_non_null(strstr(t->message, kept));
    assert_true(t->degraded);
    check_skipped(r);
    snprintf(user, sizeof user, "old-%s-whole", stage);
    rc = recommend(whole, user, 10, true, &whole_r, err, sizeof err);
    pthread_mutex_lock(&fake.mu);
    *old = false;
    bool sent_columns = *columns;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(rc, 0);
    assert_false(sent_columns);
    assert_false(has_reason(whole_r, reason));
    assert_int_equal(trace_of(whole_r, stage)->status_code, 0);
    cascade_orch_destroy(o);
    cascade_orch_destroy(whole);
    return whole_r;
}

/* A pre-rank older than PreRankRequest.item_ids: skipped, flagged, the
 * recall order served on; with compact_stage_calls off it scores. */
static void rank_ran(const Cascade__V1__RecommendResponse *r)
{
    assert_non_null(trace_of(r, "rank")); /* the rest of the pipeline ran */
}

static void test_old_prerank_not_trusted_with_columns(void **state)
{
    (void)state;
    Cascade__V1__RecommendResponse *whole = old_stage_case(
        &fake.prerank_old, &fake.prerank_columns, "prerank", "recall order kept", rank_ran);
    assert_false(trace_of(whole, "prerank")->degraded);
}

/* The same for a ranker older than RankRequest.item_ids: skipped, flagged,
 * the pre-rank order served; with compact_stage_calls off it ranks. */
static void prerank_not_skipped(const Cascade__V1__RecommendResponse *r)
{
    assert_false(has_reason(r, "prerank: INTERNAL"));
}

static void test_old_rank_not_trusted_with_columns(void **state)
{
    (void)state;
    Cascade__V1__RecommendResponse *whole = old_stage_case(
        &fake.rank_old, &fake.rank_columns, "rank", "pre-rank order kept", prerank_not_skipped);
    assert_false(whole->degraded);
    for (size_t i = 0; i < whole->n_items; i++) /* the ranker's attributes */
        assert_int_equal(whole->items[i]->attrs->category, whole->items[i]->item_id % 7);
}

/* A re-ranker whose answer names an item it was not sent (its slim copies
 * are matched back by id) is not trusted: the rank order is served, flagged. */
static void test_rerank_unknown_item_not_trusted(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    pthread_mutex_lock(&fake.mu);
    fake.rerank_inject = 888888;
    pthread_mutex_unlock(&fake.mu);
    int rc = recommend(o, "rerank-inject", 10, true, &r, err, sizeof err);
    pthread_mutex_lock(&fake.mu);
    fake.rerank_inject = 0;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n_items, 10);
    assert_true(has_reason(r, "rerank: INTERNAL"));
    assert_non_null(strstr(trace_of(r, "rerank")->message, "rank order kept"));
    for (size_t i = 0; i < r->n_items; i++) {
        assert_true(r->items[i]->item_id != 888888);
        assert_true(r->items[i]->n_channels >= 1);
        assert_non_null(r->items[i]->tasks);
    }
    cascade_orch_destroy(o);
}

/* A dead filter: items still come back, flagged with the consequence. */
static void test_dead_filter(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(
        two_channels, ", \"stages\": {\"filter\": {\"endpoint\": \"dead\"}}", NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "dead-filter", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(has_reason(r, "filter: UNAVAILABLE"));
    assert_true(has_reason(r, "exposure: UNAVAILABLE"));
    cascade_orch_destroy(o);
}

/* The config text of make_orch, for reloads. */
static cascade_config *orch_config(const char *experiments_json, int merge_max)
{
    char text[4096], err[512];
    snprintf(text, sizeof text,
             "{\"orchestrator\": {\"endpoints\": {\"recall\": \"127.0.0.1:%d\", "
             "\"filter\": \"127.0.0.1:%d\", \"prerank\": \"127.0.0.1:%d\", "
             "\"rank\": \"127.0.0.1:%d\", \"rerank\": \"127.0.0.1:%d\"}, \"channels\": %s, "
             "\"deadline_ms\": 5000, \"merge_max\": %d}, \"experiments\": %s}",
             fx.port, fx.port, fx.port, fx.port, fx.port, two_channels, merge_max,
             experiments_json);
    cascade_config *cfg = cascade_config_parse(text, "reload.json", err, sizeof err);
    assert_non_null(cfg);
    return cfg;
}

static const char *const live_exp =
    "{\"layers\": [{\"name\": \"rerank\", \"salt\": \"r\", \"experiments\": [{\"name\": "
    "\"live\", \"ranges\": [[0, 999]], \"params\": {\"rerank.lambda\": 0.5}}]}]}";

struct reload_worker {
    cascade_orch *o;
    char versions[2][200]; /* the trace message of each config */
    int mismatches, calls;
};

/* Recommend in a loop while the main thread reloads: each answer's
 * assignment and its trace's config identity must come from one table. */
static void *reload_worker_run(void *arg)
{
    struct reload_worker *w = arg;
    cascade_arena *arena = cascade_arena_create(0);
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    u.user_id = "reload-worker";
    req.user = &u;
    req.count = 5;
    req.debug = true;
    for (int i = 0; i < 40; i++) {
        char err[512];
        Cascade__V1__RecommendResponse *r;
        cascade_arena_reset(arena);
        struct cascade_orch_call call = {.arena = arena,
                                         .deadline_ms = INT64_MAX,
                                         .peer = LOCAL_PEER,
                                         .err = err,
                                         .errlen = sizeof err};
        if (cascade_orch_recommend(w->o, &call, &req, &r) != 0) {
            w->mismatches++;
            continue;
        }
        bool live = r->experiments->n_layers == 1;
        const Cascade__V1__StageTrace *t = trace_of(r, "config");
        if (!t || strcmp(t->message, w->versions[live]) != 0)
            w->mismatches++;
        w->calls++;
    }
    cascade_arena_destroy(arena);
    return NULL;
}

/* cascade_orch_reload: a good config starts an experiment in the running
 * orchestrator and the trace names the new config; a bad one is refused
 * with its reason and the old table keeps serving; reloads under
 * concurrent requests never mix an assignment and an identity. */
static void test_reload(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    cascade_config *none = orch_config("null", 2000), *live = orch_config(live_exp, 2000);
    cascade_config *bad =
        orch_config("{\"layers\": [{\"name\": \"rank\", \"experiments\": [{\"name\": \"x\", "
                    "\"ranges\": [[0, 9]], \"params\": {\"rerank.lambda\": 1}}]}]}",
                    2000);
    Cascade__V1__RecommendResponse *r;
    char err[512], version[128], hash[17], want[200];
    struct reload_worker w = {.o = o};
    for (int i = 0; i < 2; i++) {
        cascade_config_identity(i ? live : none, version, sizeof version, hash, sizeof hash);
        snprintf(w.versions[i], sizeof w.versions[i], "version %s hash %s", version, hash);
    }
    assert_int_equal(recommend(o, "reload-user", 5, true, &r, err, sizeof err), 0);
    assert_int_equal(r->experiments->n_layers, 0);

    assert_int_equal(cascade_orch_reload(o, live, err, sizeof err), 0);
    assert_int_equal(recommend(o, "reload-user", 5, true, &r, err, sizeof err), 0);
    assert_int_equal(r->experiments->n_layers, 1);
    assert_string_equal(r->experiments->layers[0]->experiment, "live");
    assert_string_equal(trace_of(r, "config")->message, w.versions[1]);
    cascade_config_identity(live, version, sizeof version, hash, sizeof hash);
    snprintf(want, sizeof want, "version none hash %s", hash);
    assert_string_equal(w.versions[1], want);

    assert_int_equal(cascade_orch_reload(o, bad, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "parameter \"rerank.lambda\" belongs to stage \"rerank\""));
    assert_int_equal(recommend(o, "reload-user", 5, true, &r, err, sizeof err), 0);
    assert_string_equal(r->experiments->layers[0]->experiment, "live");
    assert_string_equal(trace_of(r, "config")->message, w.versions[1]);

    pthread_t threads[2];
    struct reload_worker ws[2] = {w, w};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reload_worker_run, &ws[i]), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(cascade_orch_reload(o, i % 2 ? live : none, err, sizeof err), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(ws[i].mismatches, 0);
        assert_int_equal(ws[i].calls, 40);
    }
    cascade_config_destroy(none);
    cascade_config_destroy(live);
    cascade_config_destroy(bad);
    cascade_orch_destroy(o);
}

/* Experiment parameters reach the stages and change the orchestrator's own
 * behaviour (prerank.keep); the assignment comes back in the response. */
static void test_experiment_params(void **state)
{
    (void)state;
    const char *experiments =
        "{\"buckets\": 1000, \"layers\": [{\"name\": \"prerank\", \"salt\": \"p1\","
        " \"experiments\": [{\"name\": \"keep20\", \"ranges\": [[0, 999]],"
        " \"params\": {\"prerank.keep\": 20, \"prerank.weights.ctr\": \"0.25\"}}]}]}";
    cascade_orch *o = make_orch(two_channels, NULL, experiments, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "exp-user", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->experiments->n_layers, 1);
    assert_string_equal(r->experiments->layers[0]->layer, "prerank");
    assert_string_equal(r->experiments->layers[0]->experiment, "keep20");
    assert_int_equal(fake.last_prerank_keep, 20);
    assert_string_equal(fake.last_rank_experiment, "0.25");
    assert_int_equal(trace_of(r, "prerank")->items_out, 20);
    cascade_orch_destroy(o);
}

/* "recall.channels" narrows the fan-out to the listed channels, and
 * "recall.weight.<channel>" changes the merge weight. */
static void test_experiment_channel_params(void **state)
{
    (void)state;
    const char *only_hot =
        "{\"layers\": [{\"name\": \"recall\", \"salt\": \"r1\", \"experiments\": [{\"name\": "
        "\"hot_only\", \"ranges\": [[0, 999]], \"params\": {\"recall.channels\": \" hot , "
        "nonexistent\"}}]}]}";
    cascade_orch *o = make_orch(two_channels, NULL, only_hot, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "exp-channels", 10, true, &r, err, sizeof err), 0);
    assert_non_null(trace_of(r, "recall/hot"));
    assert_null(trace_of(r, "recall/itemcf"));
    assert_int_equal(trace_of(r, "merge")->items_in, 60);
    cascade_orch_destroy(o);

    /* With itemcf weighted 0, the items found by both channels (41..60) no
     * longer outrank hot's best one: the top item is hot's first, item 1. */
    const char *no_itemcf =
        "{\"layers\": [{\"name\": \"recall\", \"salt\": \"r1\", \"experiments\": [{\"name\": "
        "\"w0\", \"ranges\": [[0, 999]], \"params\": {\"recall.weight.itemcf\": 0}}]}]}";
    o = make_orch(two_channels, NULL, no_itemcf, fx.pool);
    assert_int_equal(recommend(o, "exp-weights", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->items[0]->item_id, 1);
    cascade_orch_destroy(o);
    o = make_orch(two_channels, NULL, NULL, fx.pool);
    assert_int_equal(recommend(o, "exp-weights-control", 10, true, &r, err, sizeof err), 0);
    assert_true(r->items[0]->item_id >= 41 && r->items[0]->item_id <= 60);
    cascade_orch_destroy(o);
}

/* Publish generation 1 of the hot family: {ns}:hot@1 with items first.. */
static void zadd_hot(const char *ns, uint64_t first, uint64_t n)
{
    char key[CASCADE_KEY_MAX];
    redisReply *set = NULL;
    assert_int_equal(
        cascade_redis_command(fx.r, &set, "SET %s 1", cascade_key_generation(key, ns, "hot")), 0);
    freeReplyObject(set);
    cascade_key_artefact(key, ns, "hot", 1, NULL);
    for (uint64_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        assert_int_equal(cascade_redis_command(fx.r, &reply, "ZADD %s %f %llu", key,
                                               (double)(n - i), (unsigned long long)(first + i)),
                         0);
        freeReplyObject(reply);
    }
}

/* Every channel empty: the hot list from Redis is served, through the filter. */
static void test_hot_fallback(void **state)
{
    (void)state;
    zadd_hot("t", 500, 30);
    cascade_orch *o = make_orch("[{\"name\": \"empty\"}]", NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "fallback-user", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_true(r->degraded);
    assert_true(has_reason(r, "fallback: "));
    for (size_t i = 0; i < r->n_items; i++) {
        assert_true(r->items[i]->item_id >= 500 && r->items[i]->item_id < 530);
        assert_string_equal(r->items[i]->channels[0], "hot_fallback");
    }
    /* Second call: the exposed ones are filtered out of the fallback too. */
    uint64_t first = r->items[0]->item_id;
    assert_int_equal(recommend(o, "fallback-user", 10, false, &r, err, sizeof err), 0);
    for (size_t i = 0; i < r->n_items; i++)
        assert_true(r->items[i]->item_id != first);
    cascade_orch_destroy(o);

    /* No Redis at all: nothing useful remains, the call fails UNAVAILABLE. */
    o = make_orch("[{\"name\": \"itemcf\", \"endpoint\": \"dead\"}]", NULL, NULL, NULL);
    assert_int_equal(recommend(o, "fallback-user", 10, false, &r, err, sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "no candidates"));
    cascade_orch_destroy(o);
}

/* ------------------------------------------------- cold start, exploration */

static void put_user(const char *user, uint32_t interactions)
{
    cascade_v1_UserRecord rec = cascade_v1_UserRecord_init_zero;
    snprintf(rec.user_id, sizeof rec.user_id, "%s", user);
    rec.interactions = interactions;
    assert_int_equal(cascade_store_put_user(fx.r, "t", &rec), 0);
}

static size_t count_channel(const Cascade__V1__RecommendResponse *r, const char *channel)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        for (size_t j = 0; j < r->items[i]->n_channels; j++)
            if (strcmp(r->items[i]->channels[j], channel) == 0) {
                n++;
                break;
            }
    return n;
}

static const char *cold_config =
    ", \"cold_start\": {\"min_interactions\": 5, \"channels\": [{\"name\": \"coldmix\", "
    "\"timeout_ms\": 2000}, {\"name\": \"hot\", \"weight\": 0.1, \"timeout_ms\": 2000}]}";

/* Users below cold_start.min_interactions (or without a record) get the
 * cold-start mix; the trace says which mix was used. */
static void test_cold_start_switch(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, cold_config, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    put_user("cold-few", 4);
    put_user("warm", 5);
    const char *cold_users[] = {"cold-none", "cold-few"};
    for (size_t u = 0; u < 2; u++) {
        assert_int_equal(recommend(o, cold_users[u], 10, true, &r, err, sizeof err), 0);
        assert_int_equal(r->n_items, 10);
        assert_non_null(trace_of(r, "recall/coldmix"));
        assert_non_null(trace_of(r, "recall/hot"));
        assert_null(trace_of(r, "recall/itemcf"));
        assert_non_null(strstr(trace_of(r, "mix")->message, "cold_start"));
        assert_non_null(strstr(trace_of(r, "merge/coldmix")->message, "mix=cold_start"));
        /* coldmix (weight 1) outweighs hot (0.1): its items lead. */
        assert_true(r->items[0]->item_id >= 301 && r->items[0]->item_id <= 330);
        assert_false(r->degraded);
    }
    assert_string_equal(trace_of(r, "mix")->message,
                        "cold_start: 4 interactions (cold start below 5)");
    assert_int_equal(recommend(o, "warm", 10, true, &r, err, sizeof err), 0);
    assert_null(trace_of(r, "recall/coldmix"));
    assert_non_null(trace_of(r, "recall/itemcf"));
    assert_string_equal(trace_of(r, "mix")->message, "normal: 5 interactions (cold start below 5)");
    assert_int_equal(count_channel(r, "coldmix"), 0);

    /* The stream consumer's live count lifts a user out of cold start before
     * the nightly record does: 4 online stays cold, 5 leaves; a record of 4
     * with 5 online leaves too (the larger count). */
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    const char *online_users[] = {"online-4", "online-5", "cold-few"};
    const int online_counts[] = {4, 5, 5};
    for (size_t u = 0; u < 3; u++) {
        assert_int_equal(cascade_redis_command(fx.r, &rep, "HSET %s interactions %d",
                                               cascade_key_user_counters(key, "t", online_users[u]),
                                               online_counts[u]),
                         0);
        freeReplyObject(rep);
    }
    assert_int_equal(recommend(o, "online-4", 10, true, &r, err, sizeof err), 0);
    assert_string_equal(trace_of(r, "mix")->message,
                        "cold_start: 4 interactions (online) (cold start below 5)");
    assert_non_null(trace_of(r, "recall/coldmix"));
    assert_int_equal(recommend(o, "online-5", 10, true, &r, err, sizeof err), 0);
    assert_string_equal(trace_of(r, "mix")->message,
                        "normal: 5 interactions (online) (cold start below 5)");
    assert_null(trace_of(r, "recall/coldmix"));
    assert_non_null(trace_of(r, "recall/itemcf"));
    assert_int_equal(recommend(o, "cold-few", 10, true, &r, err, sizeof err), 0);
    assert_non_null(strstr(trace_of(r, "mix")->message, "normal: 5 interactions"));
    cascade_orch_destroy(o);

    /* Redis unreachable: the user record cannot be read, the normal mix is
     * used and the answer says why. */
    struct cascade_redis_opts dead = {.host = "127.0.0.1",
                                      .port = fx.dead_port,
                                      .connect_timeout_ms = 200,
                                      .command_timeout_ms = 200};
    cascade_redis_pool *pool = cascade_redis_pool_create(&dead);
    o = make_orch(two_channels, cold_config, NULL, pool);
    assert_int_equal(recommend(o, "cold-none", 10, true, &r, err, sizeof err), 0);
    assert_true(has_reason(r, "mix: UNAVAILABLE"));
    assert_non_null(strstr(trace_of(r, "mix")->message, "user record"));
    assert_non_null(trace_of(r, "recall/itemcf"));
    cascade_orch_destroy(o);
    cascade_redis_pool_destroy(pool);
}

static const char *three_channels =
    "[{\"name\": \"hot\", \"weight\": 1, \"quota\": 100, \"timeout_ms\": 2000},"
    " {\"name\": \"itemcf\", \"weight\": 2, \"quota\": 100, \"timeout_ms\": 2000},"
    " {\"name\": \"new\", \"weight\": 0.01, \"quota\": 20, \"timeout_ms\": 2000}]";

/* The position of the only item of `channel` in r, or -1. */
static long channel_position(const Cascade__V1__RecommendResponse *r, const char *channel)
{
    long at = -1;
    for (size_t i = 0; i < r->n_items; i++)
        for (size_t j = 0; j < r->items[i]->n_channels; j++)
            if (strcmp(r->items[i]->channels[j], channel) == 0) {
                assert_int_equal(at, -1);
                at = (long)i;
            }
    return at;
}

/* The new item "pick-*" user prefers (what the fake ranker scores highest). */
static uint64_t favourite_new_item(const char *user)
{
    uint64_t best = 0;
    for (uint64_t id = 901; id <= 920; id++)
        if (best == 0 || taste(user, id) > taste(user, best))
            best = id;
    return best;
}

/* Each user's exploration slot (one of 10, at position 8 by default) goes to
 * the new item the ranker scores highest for that user: across 40 users the
 * picks follow their tastes and are not all one item. The ranker scored it
 * although it ranks below rank.keep. */
static void test_exploration_per_user_pick(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(three_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512], user[32];
    uint64_t first = 0;
    bool differ = false;
    for (int u = 0; u < 40; u++) {
        snprintf(user, sizeof user, "pick-%02d", u);
        assert_int_equal(recommend(o, user, 10, true, &r, err, sizeof err), 0);
        assert_int_equal(r->n_items, 10);
        assert_int_equal(channel_position(r, "new"), 8);
        assert_int_equal(r->items[8]->item_id, favourite_new_item(user));
        assert_non_null(r->items[8]->tasks); /* the ranker's copy */
        assert_non_null(r->items[8]->attrs);
        /* Inserted through an exploration slot: its reason and source, its
         * rank score as its score, no re-rank selection score. */
        assert_int_equal(r->items[8]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION);
        assert_string_equal(r->items[8]->source, "exploration");
        assert_int_equal(r->items[8]->position, 8);
        assert_true(r->items[8]->score > 0.0f);
        assert_float_equal(r->items[8]->score, r->items[8]->rank_score, 0);
        assert_float_equal(r->items[8]->rerank_score, 0.0f, 0);
        for (size_t i = 0; i < r->n_items; i++)
            if (i != 8)
                assert_int_equal(r->items[i]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED);
        assert_int_equal(trace_of(r, "rank")->items_out, 100);
        assert_int_equal(trace_of(r, "exploration")->items_out, 1);
        assert_non_null(strstr(trace_of(r, "exploration")->message, "positions=8 order=rank "));
        if (u == 0)
            first = r->items[8]->item_id;
        differ |= r->items[8]->item_id != first;
    }
    assert_true(differ);
    /* A second request: the favourite was shown and filtered, the next best
     * takes the slot. */
    assert_int_equal(recommend(o, "pick-00", 10, true, &r, err, sizeof err), 0);
    assert_int_not_equal(r->items[8]->item_id, favourite_new_item("pick-00"));
    assert_int_equal(channel_position(r, "new"), 8);
    /* Below 5 items the default 5% share reserves nothing. */
    assert_int_equal(recommend(o, "pick-small", 4, true, &r, err, sizeof err), 0);
    assert_int_equal(count_channel(r, "new"), 0);
    assert_null(trace_of(r, "exploration"));
    cascade_orch_destroy(o);
}

/* ------------------------------------------------------------------ slots */

static Cascade__V1__Slot *slot(uint32_t position, uint64_t item, const char *source)
{
    Cascade__V1__Slot *s = cascade_arena_alloc(fx.arena, sizeof *s);
    cascade__v1__slot__init(s);
    s->position = position;
    s->item_id = item;
    s->source = (char *)source;
    return s;
}

/* The request's slots: each item at its position with its reason and source
 * (an item nobody recalled, and a recalled one, which appears once), the
 * ranked items around them in the re-ranker's order; a slot item the user
 * was already shown is filtered out and its position goes to the ranked
 * list. */
static void test_request_slots(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    Cascade__V1__Slot *slots[2];
    char err[512];
    /* recommend_slots_as resets fx.arena: the slots live in a second arena. */
    cascade_arena *keep = fx.arena;
    cascade_arena *own = cascade_arena_create(0);
    fx.arena = own;
    slots[0] = slot(0, 7001, "ads");
    slots[1] = slot(5, 50, "ops:spring");
    fx.arena = keep;
    assert_int_equal(recommend_slots_as(o, "slot-user", 10, true, slots, 2, LOCAL_PEER, NULL, &r,
                                        err, sizeof err),
                     0);
    assert_int_equal(r->n_items, 10);
    assert_false(r->degraded);
    assert_int_equal(r->items[0]->item_id, 7001);
    assert_int_equal(r->items[0]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED);
    assert_string_equal(r->items[0]->source, "ads");
    assert_null(r->items[0]->tasks); /* nobody scored it */
    assert_float_equal(r->items[0]->score, 0.0f, 0);
    assert_int_equal(r->items[5]->item_id, 50);
    assert_int_equal(r->items[5]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED);
    assert_string_equal(r->items[5]->source, "ops:spring");
    assert_non_null(r->items[5]->tasks); /* the ranker's copy of a recalled item */
    float prev = 2000.0f;
    for (size_t i = 0; i < r->n_items; i++) {
        assert_int_equal(r->items[i]->position, i);
        for (size_t j = 0; j < i; j++)
            assert_true(r->items[i]->item_id != r->items[j]->item_id);
        if (i == 0 || i == 5)
            continue;
        assert_int_equal(r->items[i]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED);
        assert_true(r->items[i]->rerank_score < prev); /* the re-ranker's order */
        prev = r->items[i]->rerank_score;
    }
    const Cascade__V1__StageTrace *t = trace_of(r, "slots");
    assert_non_null(t);
    assert_string_equal(t->message, "request=2 config=0 filtered_out=0 positions=0,5");
    /* The filter saw the slot item, but its trace lists recalled items only. */
    for (size_t i = 0; i < trace_of(r, "filter")->n_item_ids; i++)
        assert_true(trace_of(r, "filter")->item_ids[i] != 7001);

    /* 7001 was shown: the filter drops it, position 0 goes to a ranked item;
     * a new slot item is served at its position. */
    fx.arena = own;
    slots[1] = slot(3, 7002, "ads");
    fx.arena = keep;
    assert_int_equal(recommend_slots_as(o, "slot-user", 10, true, slots, 2, LOCAL_PEER, NULL, &r,
                                        err, sizeof err),
                     0);
    assert_int_equal(r->n_items, 10);
    for (size_t i = 0; i < r->n_items; i++)
        assert_true(r->items[i]->item_id != 7001);
    assert_int_equal(r->items[0]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED);
    assert_int_equal(r->items[3]->item_id, 7002);
    assert_int_equal(r->items[3]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED);
    assert_string_equal(trace_of(r, "slots")->message,
                        "request=2 config=0 filtered_out=1 positions=3");
    cascade_arena_destroy(own);
    cascade_orch_destroy(o);
}

/* orchestrator.slots: an item pinned at position 0 and the exploration slot
 * moved to position 3, both honoured; a list too short for the exploration
 * position has none; the pinned item is filtered once shown. */
static void test_config_slots(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(three_channels,
                                ", \"slots\": [{\"position\": 0, \"item_id\": 7100, "
                                "\"source\": \"ops:launch\"}, {\"position\": 3, "
                                "\"source\": \"exploration\"}]",
                                NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "pick-slots", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_int_equal(r->items[0]->item_id, 7100);
    assert_int_equal(r->items[0]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED);
    assert_string_equal(r->items[0]->source, "ops:launch");
    assert_int_equal(r->items[3]->item_id, favourite_new_item("pick-slots"));
    assert_int_equal(r->items[3]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION);
    assert_int_equal(channel_position(r, "new"), 3);
    assert_non_null(strstr(trace_of(r, "exploration")->message, "slots=1 positions=3 "));
    assert_string_equal(trace_of(r, "slots")->message,
                        "request=0 config=1 filtered_out=0 positions=0");
    /* Shown once, the pinned item is filtered out for this user. */
    assert_int_equal(recommend(o, "pick-slots", 10, true, &r, err, sizeof err), 0);
    for (size_t i = 0; i < r->n_items; i++)
        assert_true(r->items[i]->item_id != 7100);
    assert_string_equal(trace_of(r, "slots")->message,
                        "request=0 config=1 filtered_out=1 positions=");
    /* Three items: position 3 is outside the list, so no exploration. */
    assert_int_equal(recommend(o, "pick-short", 3, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 3);
    assert_int_equal(r->items[0]->item_id, 7100);
    assert_null(trace_of(r, "exploration"));
    cascade_orch_destroy(o);
}

/* exploration.positions per experiment overrides the config's exploration
 * slots (position 3 here): "2,30" puts the slot at 2 (30 is outside a list
 * of 10); a malformed list is ignored. */
static void test_exploration_experiment_positions(void **state)
{
    (void)state;
    const char *exps = "{\"layers\": [{\"name\": \"explore\", \"salt\": \"x2\", \"experiments\": ["
                       "{\"name\": \"moved\", \"ranges\": [[0, 399]], \"params\": "
                       "{\"exploration.positions\": \"2,30\"}},"
                       "{\"name\": \"broken\", \"ranges\": [[400, 699]], \"params\": "
                       "{\"exploration.positions\": \"2;x\"}}]}]}";
    cascade_orch *o =
        make_orch(three_channels, ", \"slots\": [{\"position\": 3, \"source\": \"exploration\"}]",
                  exps, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512], user[32];
    bool seen[3] = {false, false, false};
    for (int u = 0; u < 200 && !(seen[0] && seen[1] && seen[2]); u++) {
        snprintf(user, sizeof user, "pick-pos-%03d", u);
        assert_int_equal(recommend(o, user, 10, true, &r, err, sizeof err), 0);
        const char *exp = NULL;
        for (size_t l = 0; l < r->experiments->n_layers; l++)
            if (strcmp(r->experiments->layers[l]->layer, "explore") == 0)
                exp = r->experiments->layers[l]->experiment;
        assert_non_null(exp);
        size_t at = strcmp(exp, "moved") == 0 ? 2 : 3;
        seen[strcmp(exp, "moved") == 0 ? 0 : strcmp(exp, "broken") == 0 ? 1 : 2] = true;
        assert_int_equal(channel_position(r, "new"), (long)at);
        assert_int_equal(r->items[at]->item_id, favourite_new_item(user));
        assert_int_equal(r->items[at]->reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    cascade_orch_destroy(o);
}

/* Bad slots are refused with INVALID_ARGUMENT naming the field. */
static void test_slot_validation(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    cascade_arena *keep = fx.arena;
    cascade_arena *own = cascade_arena_create(0);
    fx.arena = own;
    Cascade__V1__Slot *slots[2] = {slot(2, 11, "ads"), slot(10, 12, "ads")};
    Cascade__V1__Slot *bad_source[1] = {slot(2, 11, "ads campaign")};
    fx.arena = keep;
    assert_int_equal(
        recommend_slots_as(o, "u", 10, false, slots, 2, LOCAL_PEER, NULL, &r, err, sizeof err),
        CASCADE_EINVAL);
    assert_string_equal(err, "slots[1].position 10 is outside the list (count 10)");
    assert_int_equal(cascade_error_to_grpc(CASCADE_EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(
        recommend_slots_as(o, "u", 10, false, bad_source, 1, LOCAL_PEER, NULL, &r, err, sizeof err),
        CASCADE_EINVAL);
    assert_string_equal(err, "slots[0].source is not 1..64 characters of [A-Za-z0-9._:-]");
    assert_int_equal(
        recommend_slots_as(o, "u", 11, false, slots, 2, LOCAL_PEER, NULL, &r, err, sizeof err), 0);
    cascade_arena_destroy(own);
    cascade_orch_destroy(o);
}

/* New items the ranker puts in its bottom half (the plain fake ranker keeps
 * their tiny merge weight) are not shown: the slot stays with the ranked list. */
static void test_exploration_needs_a_good_score(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(three_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "explorer-low", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_int_equal(count_channel(r, "new"), 0);
    assert_int_equal(trace_of(r, "exploration")->items_out, 0);
    assert_non_null(strstr(trace_of(r, "exploration")->message, "best_rank=none"));
    for (size_t i = 0; i < 10; i++) /* the ranker's top 10 unchanged */
        assert_false(is_new_item(r->items[i]->item_id));
    cascade_orch_destroy(o);

    /* Without the ranker there is no score to judge by: the channel's own
     * order fills the slot (the degraded path keeps new items exposed). */
    o = make_orch(three_channels, ", \"stages\": {\"rank\": {\"endpoint\": \"dead\"}}", NULL,
                  fx.pool);
    assert_int_equal(recommend(o, "explorer-norank", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->items[8]->item_id, 901);
    assert_non_null(strstr(trace_of(r, "exploration")->message, "order=channel"));
    cascade_orch_destroy(o);
}

/* With an impression target the guarantee serves new items the ranker puts
 * in its bottom half for this user (orchestrator.exploration.
 * guarantee_deficit): records of 901..920 created almost a window ago are
 * each owed ~3 impressions; with the impressions counted as the consumer
 * would ({ns}:ictr), every one reaches the target of 3 and then stops,
 * though the plain fake ranker never lets one pass the bar (as for
 * "explorer-low" above). With the guarantee off, none is served (as
 * without a target). */
static void test_exploration_guarantee(void **state)
{
    (void)state;
    const int64_t now = cascade_wall_s();
    for (uint64_t id = 901; id <= 920; id++) {
        cascade_v1_ItemRecord item = cascade_v1_ItemRecord_init_zero;
        item.item_id = id;
        item.created_at_s = now - 86000; /* 3 * 86000 / 86400 = 2.99 due */
        assert_int_equal(cascade_store_put_item(fx.r, "t", &item), 0);
        redisReply *rep = NULL;
        assert_int_equal(
            cascade_redis_command(fx.r, &rep, "DEL t:ictr:%llu", (unsigned long long)id), 0);
        freeReplyObject(rep);
    }
    Cascade__V1__RecommendResponse *r;
    char err[512];
    cascade_orch *o = make_orch(three_channels,
                                ", \"exploration\": {\"target_impressions\": 3, "
                                "\"guarantee_deficit\": 0}",
                                NULL, fx.pool);
    assert_int_equal(recommend(o, "explorer-low", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(count_channel(r, "new"), 0);
    cascade_orch_destroy(o);

    o = make_orch(three_channels, ", \"exploration\": {\"target_impressions\": 3}", NULL, fx.pool);
    int served[21] = {0};
    for (int k = 0; k < 80; k++) { /* new users: no exposure filter in the way */
        char user[32];
        snprintf(user, sizeof user, "explorer-low-%02d", k);
        assert_int_equal(recommend(o, user, 10, true, &r, err, sizeof err), 0);
        for (size_t i = 0; i < r->n_items; i++) {
            uint64_t id = r->items[i]->item_id;
            if (!is_new_item(id))
                continue;
            assert_string_equal(r->items[i]->source, "exploration");
            assert_non_null(strstr(trace_of(r, "exploration")->message, "guaranteed="));
            served[id - 900]++;
            redisReply *rep = NULL;
            assert_int_equal(cascade_redis_command(fx.r, &rep, "HINCRBY t:ictr:%llu impression 1",
                                                   (unsigned long long)id),
                             0);
            freeReplyObject(rep);
        }
    }
    for (int i = 1; i <= 20; i++)
        assert_int_equal(served[i], 3); /* the target, then never again */
    cascade_orch_destroy(o);
}

/* Share, position and the rank bar are per-experiment parameters: an
 * experiment moves the slot to position 3, another turns exploration off
 * (share 0), another raises the bar so no new item qualifies; two slots of 20
 * at position 0.5 go to 10 and 15 with the user's two favourites. */
static void test_exploration_experiment_params(void **state)
{
    (void)state;
    const char *exps = "{\"layers\": [{\"name\": \"explore\", \"salt\": \"x1\", \"experiments\": ["
                       "{\"name\": \"early\", \"ranges\": [[0, 249]], \"params\": "
                       "{\"exploration.position\": 0.3}},"
                       "{\"name\": \"off\", \"ranges\": [[250, 499]], \"params\": "
                       "{\"exploration.share\": 0}},"
                       "{\"name\": \"strict\", \"ranges\": [[500, 749]], \"params\": "
                       "{\"exploration.max_rank_share\": 0.01}},"
                       "{\"name\": \"two\", \"ranges\": [[750, 999]], \"params\": "
                       "{\"exploration.share\": 0.1, \"exploration.position\": 0.5}}]}]}";
    cascade_orch *o = make_orch(three_channels, NULL, exps, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512], user[32];
    bool seen[4] = {false, false, false, false};
    for (int u = 0; u < 200 && !(seen[0] && seen[1] && seen[2] && seen[3]); u++) {
        snprintf(user, sizeof user, "pick-exp-%03d", u);
        uint32_t count = 10 + 10 * (u % 2); /* 10 and 20 */
        assert_int_equal(recommend(o, user, count, true, &r, err, sizeof err), 0);
        const char *exp = NULL;
        for (size_t l = 0; l < r->experiments->n_layers; l++)
            if (strcmp(r->experiments->layers[l]->layer, "explore") == 0)
                exp = r->experiments->layers[l]->experiment;
        assert_non_null(exp);
        if (strcmp(exp, "early") == 0) {
            assert_int_equal(channel_position(r, "new"), (long)count * 3 / 10);
            assert_int_equal(r->items[count * 3 / 10]->item_id, favourite_new_item(user));
            seen[0] = true;
        } else if (strcmp(exp, "off") == 0) {
            assert_int_equal(count_channel(r, "new"), 0);
            assert_null(trace_of(r, "exploration"));
            seen[1] = true;
        } else if (strcmp(exp, "strict") == 0) {
            assert_int_equal(count_channel(r, "new"), 0);
            assert_non_null(strstr(trace_of(r, "exploration")->message, "best_rank=none"));
            seen[2] = true;
        } else if (strcmp(exp, "two") == 0 && count == 20) {
            assert_int_equal(count_channel(r, "new"), 2);
            uint64_t best = favourite_new_item(user);
            assert_int_equal(r->items[10]->item_id, best);
            assert_true(is_new_item(r->items[15]->item_id));
            assert_true(taste(user, r->items[15]->item_id) < taste(user, best));
            for (uint64_t id = 901; id <= 920; id++) /* the second best */
                if (id != best)
                    assert_true(taste(user, id) <= taste(user, r->items[15]->item_id));
            seen[3] = true;
        }
    }
    for (int k = 0; k < 4; k++)
        assert_true(seen[k]);
    cascade_orch_destroy(o);
}

/* ------------------------------------------------------------ recall cache */

/* A list of item ids, head first. */
static size_t read_list(const char *key, uint64_t *out, size_t max)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx.r, &rep, "LRANGE %s 0 -1", key), 0);
    size_t n = rep->elements < max ? rep->elements : max;
    for (size_t i = 0; i < n; i++)
        out[i] = strtoull(rep->element[i]->str, NULL, 10);
    freeReplyObject(rep);
    return n;
}

/* The user's cache list, head first. */
static size_t read_cache(const char *user, uint64_t *out, size_t max)
{
    char key[CASCADE_KEY_MAX];
    return read_list(cascade_key_user_cache(key, "t", user), out, max);
}

static bool in_ids(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void assert_no_shown_no_dups(const Cascade__V1__RecommendResponse *r, const uint64_t *cache,
                                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_false(in_ids(cache + i + 1, n - i - 1, cache[i]));
        for (size_t j = 0; j < r->n_items; j++)
            assert_true(cache[i] != r->items[j]->item_id);
    }
}

/* What the ranker scored (rank keep 100) but the final list did not show goes
 * to the cache; the shown items of a later request leave it. */
static void test_cache_writes(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    uint64_t cache[512];
    char err[512];
    assert_int_equal(recommend(o, "cache-user", 10, true, &r, err, sizeof err), 0);
    size_t n = read_cache("cache-user", cache, 512);
    assert_int_equal(n, 90);
    assert_no_shown_no_dups(r, cache, n);
    assert_int_equal(trace_of(r, "cache")->items_out, 90);
    /* The cache holds the ranker's next best: the first cached item is ranked
     * right after the shown ones, i.e. not below any other cached item. */
    assert_int_equal(recommend(o, "cache-user", 10, false, &r, err, sizeof err), 0);
    uint64_t first_cached = cache[0];
    assert_int_equal(r->items[0]->item_id, first_cached);
    n = read_cache("cache-user", cache, 512);
    assert_no_shown_no_dups(r, cache, n);
    assert_true(n <= 200);
    cascade_orch_destroy(o);

    /* Capacity 30: the list is trimmed, the best unshown items kept. */
    o = make_orch(two_channels, ", \"cache\": {\"capacity\": 30}", NULL, fx.pool);
    assert_int_equal(recommend(o, "cache-small", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(read_cache("cache-small", cache, 512), 30);
    assert_int_equal(recommend(o, "cache-small", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(r->items[0]->item_id, cache[0]);
    n = read_cache("cache-small", cache, 512);
    assert_int_equal(n, 30);
    assert_no_shown_no_dups(r, cache, n);
    cascade_orch_destroy(o);

    /* Rank down: nothing was scored by the ranker, so nothing enters, but the
     * shown items still leave the cache. */
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_key_user_cache(key, "t", "cache-norank");
    for (uint64_t id = 1; id <= 120; id++) {
        assert_int_equal(
            cascade_redis_command(fx.r, &rep, "RPUSH %s %llu", key, (unsigned long long)id), 0);
        freeReplyObject(rep);
    }
    o = make_orch(two_channels, ", \"stages\": {\"rank\": {\"endpoint\": \"dead\"}}", NULL,
                  fx.pool);
    assert_int_equal(recommend(o, "cache-norank", 10, true, &r, err, sizeof err), 0);
    n = read_cache("cache-norank", cache, 512);
    assert_int_equal(n, 110);
    assert_no_shown_no_dups(r, cache, n);
    assert_int_equal(trace_of(r, "cache")->items_out, 0);
    cascade_orch_destroy(o);

    /* cache.enabled = false: no writes. */
    o = make_orch(two_channels, ", \"cache\": {\"enabled\": false}", NULL, fx.pool);
    assert_int_equal(recommend(o, "cache-off", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(read_cache("cache-off", cache, 512), 0);
    assert_null(trace_of(r, "cache"));
    cascade_orch_destroy(o);
}

/* ---------------------------------------------------------- hard negatives */

static size_t read_hardneg(const char *user, uint64_t *out, size_t max)
{
    char key[CASCADE_KEY_MAX];
    return read_list(cascade_key_user_hardneg(key, "t", user), out, max);
}

static bool shown_in(const Cascade__V1__RecommendResponse *r, uint64_t id)
{
    for (size_t j = 0; j < r->n_items; j++)
        if (r->items[j]->item_id == id)
            return true;
    return false;
}

/* The 120 merged items (hot 1..60, itemcf 41..120) all reach the ranker, which
 * keeps 100: the 20 it cut, and only those, are logged as hard negatives —
 * none shown, none in the recall cache, and together the three lists are
 * every scored item exactly once. */
static void test_hard_negatives(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    uint64_t hard[256], cache[256], cut[32];
    char err[512];
    assert_int_equal(recommend(o, "hn-user", 10, true, &r, err, sizeof err), 0);
    size_t nh = read_hardneg("hn-user", hard, 256), nc = read_cache("hn-user", cache, 256);
    assert_int_equal(nh, 20);
    assert_int_equal(nc, 90);
    assert_int_equal(r->n_items, 10);
    assert_no_shown_no_dups(r, hard, nh);
    for (uint64_t id = 1; id <= 120; id++)
        assert_int_equal(in_ids(hard, nh, id) + in_ids(cache, nc, id) + shown_in(r, id), 1);
    assert_int_equal(trace_of(r, "hardneg")->items_out, 20);
    assert_false(r->degraded);
    memcpy(cut, hard, sizeof cut[0] * nh);
    cascade_orch_destroy(o);

    /* per_request 5, cap 8: five of the same cut items per request, the list
     * trimmed to 8 after the second request, never a shown item. */
    o = make_orch(two_channels, ", \"hard_negatives\": {\"per_request\": 5, \"cap\": 8}", NULL,
                  fx.pool);
    assert_int_equal(recommend(o, "hn-capped", 10, false, &r, err, sizeof err), 0);
    nh = read_hardneg("hn-capped", hard, 256);
    assert_int_equal(nh, 5);
    for (size_t i = 0; i < nh; i++)
        assert_true(in_ids(cut, 20, hard[i]));
    assert_int_equal(recommend(o, "hn-capped", 10, false, &r, err, sizeof err), 0);
    nh = read_hardneg("hn-capped", hard, 256);
    assert_int_equal(nh, 8);
    for (size_t i = 0; i < nh; i++)
        assert_false(shown_in(r, hard[i]));
    cascade_orch_destroy(o);

    /* Off, or no ranker scores (rank stage down): nothing is logged. */
    o = make_orch(two_channels, ", \"hard_negatives\": {\"enabled\": false}", NULL, fx.pool);
    assert_int_equal(recommend(o, "hn-off", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(read_hardneg("hn-off", hard, 256), 0);
    assert_null(trace_of(r, "hardneg"));
    cascade_orch_destroy(o);
    o = make_orch(two_channels, ", \"stages\": {\"rank\": {\"endpoint\": \"dead\"}}", NULL,
                  fx.pool);
    assert_int_equal(recommend(o, "hn-norank", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(read_hardneg("hn-norank", hard, 256), 0);
    cascade_orch_destroy(o);
}

/* Redis lost the cache script (SCRIPT FLUSH, as after a restart) between two
 * Recommends: the second one's EVALSHA answers NOSCRIPT, the hard-negative log
 * sharing its pipeline is written anyway, and the cache update is sent again
 * by EVAL, so both lists are as without the flush and nothing is degraded.
 * The third Recommend goes by EVALSHA alone. */
static void test_cache_script_flushed(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    uint64_t hard[256], cache[256];
    redisReply *rep = NULL;
    char err[512];
    assert_int_equal(recommend(o, "flush-a", 10, true, &r, err, sizeof err), 0);
    long long evalsha = test_redis_command_calls(fx.r, "evalsha");
    long long eval = test_redis_command_calls(fx.r, "eval");
    assert_int_equal(cascade_redis_command(fx.r, &rep, "SCRIPT FLUSH"), 0);
    freeReplyObject(rep);
    assert_int_equal(recommend(o, "flush-b", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(test_redis_command_calls(fx.r, "evalsha"), evalsha + 1);
    assert_int_equal(test_redis_command_calls(fx.r, "eval"), eval + 1);
    size_t nh = read_hardneg("flush-b", hard, 256), nc = read_cache("flush-b", cache, 256);
    assert_int_equal(nh, 20);
    assert_int_equal(nc, 90);
    for (uint64_t id = 1; id <= 120; id++)
        assert_int_equal(in_ids(hard, nh, id) + in_ids(cache, nc, id) + shown_in(r, id), 1);
    assert_int_equal(trace_of(r, "cache")->status_code, GRPC_STATUS_OK);
    assert_int_equal(trace_of(r, "cache")->items_out, 90);
    assert_false(r->degraded);
    assert_int_equal(recommend(o, "flush-c", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(test_redis_command_calls(fx.r, "evalsha"), evalsha + 2);
    assert_int_equal(test_redis_command_calls(fx.r, "eval"), eval + 1);
    assert_int_equal(read_cache("flush-c", cache, 256), 90);
    cascade_orch_destroy(o);
}

/* Redis down: the hard-negative write fails, which is counted and traced but
 * neither fails nor degrades the answer. */
static void test_hard_negatives_redis_down(void **state)
{
    (void)state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_metrics *m = cascade_metrics_create();
    cascade_orch *o =
        make_orch_metrics(two_channels, ", \"cache\": {\"enabled\": false}", NULL, dead, m);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "hn-down", 10, true, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    const Cascade__V1__StageTrace *t = trace_of(r, "hardneg");
    assert_non_null(t);
    assert_int_equal(t->items_out, 0);
    assert_int_equal(t->status_code, GRPC_STATUS_UNAVAILABLE);
    assert_false(t->degraded);
    assert_false(has_reason(r, "hardneg"));
    cascade_metric *failures = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_hardneg_write_failures_total", "", NULL),
        NULL);
    assert_true(cascade_metric_value(failures) == 1.0);
    cascade_orch_destroy(o);
    cascade_metrics_destroy(m);
    cascade_redis_pool_destroy(dead);
}

/* ------------------------------------------------------------- serve log */

/* One {t}:serves entry, its fields copied out. */
struct serve_entry {
    char rid[80], user[80], exp[256], track[64], deg[4], items[2048];
    long long ts_ms;
};

static void copy_field(char *dst, size_t len, const redisReply *v)
{
    assert_true(v->len < len);
    memcpy(dst, v->str, v->len);
    dst[v->len] = '\0';
}

/* Every entry of the serve stream, oldest first, into out (at most max). */
static size_t read_serves(struct serve_entry *out, size_t max)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(fx.r, &rep, "XRANGE %s - +", cascade_key_serves(key, "t")), 0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_true(rep->elements <= max);
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *f = rep->element[i]->element[1];
        struct serve_entry *e = &out[i];
        memset(e, 0, sizeof *e);
        assert_int_equal(f->elements, 14); /* seven fields, no more */
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str;
            const redisReply *v = f->element[k + 1];
            if (strcmp(name, "rid") == 0)
                copy_field(e->rid, sizeof e->rid, v);
            else if (strcmp(name, "user") == 0)
                copy_field(e->user, sizeof e->user, v);
            else if (strcmp(name, "ts_ms") == 0)
                e->ts_ms = strtoll(v->str, NULL, 10);
            else if (strcmp(name, "exp") == 0)
                copy_field(e->exp, sizeof e->exp, v);
            else if (strcmp(name, "track") == 0)
                copy_field(e->track, sizeof e->track, v);
            else if (strcmp(name, "deg") == 0)
                copy_field(e->deg, sizeof e->deg, v);
            else if (strcmp(name, "items") == 0)
                copy_field(e->items, sizeof e->items, v);
            else
                fail_msg("unexpected serve record field %s", name);
        }
    }
    size_t n = rep->elements;
    freeReplyObject(rep);
    return n;
}

/* The entry with request id rid among the n read, or NULL. */
static const struct serve_entry *serve_of(const struct serve_entry *e, size_t n, const char *rid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].rid, rid) == 0)
            return &e[i];
    return NULL;
}

/* The items field of a serve record against the answer it logged: every
 * item in served order, its 0-based position, the reason ('e' only at
 * explored_at, -1 = none), the rank score and the fake re-ranker's score
 * 1000 − (its position in the re-ranker's answer). */
static void assert_serve_items(const char *items, const Cascade__V1__RecommendResponse *r,
                               long explored_at)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", items);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save), n++) {
        unsigned long long id;
        size_t pos;
        char reason;
        double rank, rerank;
        assert_int_equal(sscanf(tok, "%llu:%zu:%c:%lf:%lf", &id, &pos, &reason, &rank, &rerank), 5);
        assert_true(n < r->n_items);
        assert_int_equal(id, r->items[n]->item_id);
        assert_int_equal(pos, n);
        assert_int_equal(reason, (long)n == explored_at ? 'e' : 'r');
        assert_float_equal(rank, r->items[n]->rank_score, 1e-5 * (1 + fabs(rank)));
        /* The re-ranker's position of an item: the inserted one pushed the
         * items after it down by one, and never went through the re-ranker. */
        long rerank_pos = (long)n - (explored_at >= 0 && (long)n > explored_at);
        if ((long)n != explored_at)
            assert_float_equal(rerank, 1000.0 - (double)rerank_pos, 1e-9);
    }
    assert_int_equal(n, r->n_items);
}

/* Every answer with items leaves one serve record, in request order: rid and
 * user as answered, server time, the assignment of every layer in config
 * order, no canary track, deg 0, and the served list with positions, reasons
 * (the exploration slot at 8 is 'e') and scores. Off: nothing is written. */
static void test_serve_log(void **state)
{
    (void)state;
    const char *experiments =
        "{\"buckets\": 1000, \"layers\": ["
        "{\"name\": \"rank\", \"salt\": \"r1\", \"experiments\": [{\"name\": \"lr_v2\","
        " \"ranges\": [[0, 999]], \"params\": {\"rank.model\": \"lr\"}}]},"
        "{\"name\": \"rerank\", \"salt\": \"q1\", \"experiments\": []}]}";
    cascade_orch *o = make_orch(three_channels, NULL, experiments, fx.pool);
    Cascade__V1__RecommendResponse *r;
    static struct serve_entry e[64];
    char err[512], rid1[80], exp[256], key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    /* The earlier tests' records go: this test reads the whole stream. */
    assert_int_equal(cascade_redis_command(fx.r, &rep, "DEL %s", cascade_key_serves(key, "t")), 0);
    freeReplyObject(rep);
    size_t before = read_serves(e, 64);
    assert_int_equal(before, 0);
    long long t0 = cascade_wall_ms();
    assert_int_equal(recommend(o, "pick-serve", 10, true, &r, err, sizeof err), 0);
    long long t1 = cascade_wall_ms();
    assert_int_equal(channel_position(r, "new"), 8);
    assert_int_equal(trace_of(r, "exploration")->items_out, 1);
    snprintf(rid1, sizeof rid1, "%s", r->request_id);
    size_t n = read_serves(e, 64);
    assert_int_equal(n, before + 1);
    const struct serve_entry *s = &e[n - 1];
    assert_string_equal(s->rid, r->request_id);
    assert_string_equal(s->user, "pick-serve");
    assert_true(s->ts_ms >= t0 && s->ts_ms <= t1);
    assert_int_equal(r->experiments->n_layers, 2);
    snprintf(exp, sizeof exp, "rank=lr_v2@%u;rerank=baseline@%u",
             (unsigned)r->experiments->layers[0]->bucket,
             (unsigned)r->experiments->layers[1]->bucket);
    assert_string_equal(s->exp, exp);
    assert_string_equal(s->track, "");
    assert_string_equal(s->deg, "0");
    assert_serve_items(s->items, r, 8);

    /* A second request comes after the first; a degraded answer says so. */
    cascade_orch_destroy(o);
    o = make_orch(three_channels, ", \"stages\": {\"prerank\": {\"endpoint\": \"dead\"}}",
                  experiments, fx.pool);
    assert_int_equal(recommend(o, "serve-2", 5, false, &r, err, sizeof err), 0);
    assert_true(r->degraded);
    n = read_serves(e, 64);
    assert_int_equal(n, before + 2);
    assert_string_equal(e[n - 2].rid, rid1);
    assert_string_equal(e[n - 1].rid, r->request_id);
    assert_string_equal(e[n - 1].deg, "1");
    assert_non_null(serve_of(e, n, rid1));
    cascade_orch_destroy(o);

    /* Off: no record. The record rides the pipeline of the recall cache and
     * hard-negative writes: with it on, a Recommend (on this thread's pooled
     * connection) makes no more round trips than with it off. */
    cascade_redis *conn = cascade_redis_pool_get(fx.pool);
    uint64_t trips = cascade_redis_round_trips(conn);
    o = make_orch(three_channels, ", \"serve_log\": {\"enabled\": false}", NULL, fx.pool);
    assert_int_equal(recommend(o, "serve-off", 10, false, &r, err, sizeof err), 0);
    uint64_t trips_off = cascade_redis_round_trips(conn) - trips;
    assert_int_equal(r->n_items, 10);
    assert_int_equal(read_serves(e, 64), before + 2);
    cascade_orch_destroy(o);
    o = make_orch(three_channels, NULL, NULL, fx.pool);
    trips = cascade_redis_round_trips(conn);
    assert_int_equal(recommend(o, "serve-on", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(cascade_redis_round_trips(conn) - trips, trips_off);
    assert_true(trips_off > 0);
    n = read_serves(e, 64);
    assert_int_equal(n, before + 3);
    assert_string_equal(e[n - 1].user, "serve-on");
    cascade_orch_destroy(o);
}

/* An item a request slot inserted is logged with reason 'i', at its slot. */
static void test_serve_log_inserted(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    Cascade__V1__Slot *slots[1];
    static struct serve_entry e[64];
    char err[512], want[64];
    cascade_arena *keep = fx.arena, *own = cascade_arena_create(0);
    fx.arena = own; /* recommend_slots_as resets fx.arena: the slot lives in its own */
    slots[0] = slot(3, 7002, "ads");
    fx.arena = keep;
    assert_int_equal(recommend_slots_as(o, "serve-slot", 10, false, slots, 1, LOCAL_PEER, NULL, &r,
                                        err, sizeof err),
                     0);
    assert_int_equal(r->items[3]->item_id, 7002);
    size_t n = read_serves(e, 64);
    const struct serve_entry *s = serve_of(e, n, r->request_id);
    assert_non_null(s);
    snprintf(want, sizeof want, ",7002:3:i:");
    assert_non_null(strstr(s->items, want));
    assert_null(strstr(s->items, ":e:"));
    cascade_arena_destroy(own);
    cascade_orch_destroy(o);
}

/* Redis down: the serve record is lost, which is counted, but the answer is
 * served and not degraded by it. */
static void test_serve_log_redis_down(void **state)
{
    (void)state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_metrics *m = cascade_metrics_create();
    cascade_orch *o = make_orch_metrics(two_channels,
                                        ", \"cache\": {\"enabled\": false},"
                                        " \"hard_negatives\": {\"enabled\": false}",
                                        NULL, dead, m);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "serve-down", 10, false, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 10);
    assert_false(r->degraded);
    cascade_metric *failures = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_serve_log_failures_total", "", NULL),
        NULL);
    cascade_metric *written = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_orchestrator_serve_log_written_total", "", NULL), NULL);
    assert_true(cascade_metric_value(failures) == 1.0);
    assert_true(cascade_metric_value(written) == 0.0);
    cascade_orch_destroy(o);
    cascade_metrics_destroy(m);
    cascade_redis_pool_destroy(dead);
}

/* ------------------------------------------------------------ contribution */

static size_t trace_number(const Cascade__V1__StageTrace *t, const char *field)
{
    char needle[32];
    snprintf(needle, sizeof needle, "%s=", field);
    const char *p = strstr(t->message, needle);
    assert_non_null(p);
    return (size_t)strtoull(p + strlen(needle), NULL, 10);
}

/* merge/<channel> says, per channel, what Recall returned (within the
 * quota), what the merge kept (after dedupe and merge_max) and what reached
 * the final list; an unknown channel is a degraded channel. */
static void test_contribution_trace(void **state)
{
    (void)state;
    const char *channels =
        "[{\"name\": \"hot\", \"weight\": 1, \"quota\": 30, \"timeout_ms\": 2000},"
        " {\"name\": \"itemcf\", \"weight\": 2, \"quota\": 100, \"timeout_ms\": 2000},"
        " {\"name\": \"bogus\", \"timeout_ms\": 2000}]";
    cascade_orch *o = make_orch(channels, ", \"merge_max\": 50", NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "contrib", 10, true, &r, err, sizeof err), 0);
    const Cascade__V1__StageTrace *hot = trace_of(r, "merge/hot");
    const Cascade__V1__StageTrace *cf = trace_of(r, "merge/itemcf");
    assert_non_null(hot);
    assert_non_null(cf);
    assert_int_equal(trace_number(hot, "returned"), 30); /* the quota reached Recall */
    assert_int_equal(hot->items_in, 30);
    assert_int_equal(trace_number(cf, "returned"), 80);
    assert_int_equal(trace_number(hot, "quota"), 30);
    /* hot 1..30 and itemcf 41..120 are disjoint: merge_max 50 splits between them. */
    assert_int_equal(trace_number(hot, "kept") + trace_number(cf, "kept"), 50);
    assert_int_equal(hot->items_out, trace_number(hot, "kept"));
    assert_int_equal(trace_number(hot, "final"), count_channel(r, "hot"));
    assert_int_equal(trace_number(cf, "final"), count_channel(r, "itemcf"));
    assert_int_equal(trace_number(hot, "final") + trace_number(cf, "final"), 10);
    assert_non_null(strstr(cf->message, "weight=2 "));
    /* The unknown channel degrades the answer and contributes nothing. */
    assert_true(has_reason(r, "recall/bogus: INVALID_ARGUMENT"));
    assert_int_equal(trace_number(trace_of(r, "merge/bogus"), "returned"), 0);
    assert_int_equal(trace_number(trace_of(r, "merge/bogus"), "final"), 0);
    cascade_orch_destroy(o);
}

static int feedback(cascade_orch *o, Cascade__V1__Event **events, size_t n,
                    Cascade__V1__FeedbackResponse **out, char *err, size_t errlen)
{
    Cascade__V1__FeedbackRequest req = CASCADE__V1__FEEDBACK_REQUEST__INIT;
    req.events = events;
    req.n_events = n;
    struct cascade_orch_call call = {
        .arena = fx.arena, .deadline_ms = INT64_MAX, .err = err, .errlen = errlen};
    err[0] = '\0';
    return cascade_orch_feedback(o, &call, &req, out);
}

static long long stream_length(const char *ns)
{
    char key[CASCADE_KEY_MAX];
    redisReply *reply = NULL;
    assert_int_equal(cascade_redis_command(fx.r, &reply, "XLEN %s", cascade_key_events(key, ns)),
                     0);
    long long n = reply->integer;
    freeReplyObject(reply);
    return n;
}

static void test_feedback(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__Event click = CASCADE__V1__EVENT__INIT, seen = CASCADE__V1__EVENT__INIT;
    Cascade__V1__Event *events[2] = {&click, &seen};
    Cascade__V1__FeedbackResponse *resp;
    char err[512];
    click.user_id = "fb-user";
    click.item_id = 77;
    click.type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_LIKE;
    seen.user_id = "fb-user";
    seen.item_id = 78;
    seen.type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_IMPRESSION;
    long long before = stream_length("t");
    assert_int_equal(feedback(o, events, 2, &resp, err, sizeof err), 0);
    assert_int_equal(resp->accepted, 2);
    assert_int_equal(stream_length("t"), before + 2);
    /* The like is in last-n with its weight; the impression is not. */
    cascade_v1_Interaction lastn[8];
    size_t n = 0;
    assert_int_equal(cascade_store_get_lastn(fx.r, "t", "fb-user", 8, lastn, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lastn[0].item_id, 77);
    assert_float_equal(lastn[0].weight, 2.0f, 0);
    bool consumed[2];
    const uint64_t ids[2] = {77, 78};
    assert_int_equal(cascade_store_consumed(fx.r, "t", "fb-user", ids, 2, consumed), 0);
    assert_true(consumed[0]);
    assert_false(consumed[1]);

    /* Invalid events are rejected with the index and nothing is written. */
    seen.item_id = 0;
    assert_int_equal(feedback(o, events, 2, &resp, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "events[1].item_id is 0");
    seen.item_id = 78;
    seen.type = (Cascade__V1__EventType)42;
    assert_int_equal(feedback(o, events, 2, &resp, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "events[1].type"));
    seen.type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_CLICK;
    seen.user_id = "";
    assert_int_equal(feedback(o, events, 2, &resp, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "events[1].user_id is empty");
    assert_int_equal(stream_length("t"), before + 2);
    cascade_orch_destroy(o);
}

static bool set_has(const char *key, uint64_t member)
{
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(fx.r, &rep, "SISMEMBER %s %llu", key, (unsigned long long)member), 0);
    bool yes = rep->integer == 1;
    freeReplyObject(rep);
    return yes;
}

static long long set_size(const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx.r, &rep, "SCARD %s", key), 0);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

/* dislike blocks the item, hide_author the item's author, follow follows
 * the author; an item without a record is only logged. */
static void test_feedback_user_sets(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    cascade_v1_ItemRecord item = cascade_v1_ItemRecord_init_zero;
    item.item_id = 501;
    item.author_id = 77;
    assert_int_equal(cascade_store_put_item(fx.r, "t", &item), 0);
    item.item_id = 502;
    item.author_id = 88;
    assert_int_equal(cascade_store_put_item(fx.r, "t", &item), 0);
    Cascade__V1__Event ev[4] = {CASCADE__V1__EVENT__INIT, CASCADE__V1__EVENT__INIT,
                                CASCADE__V1__EVENT__INIT, CASCADE__V1__EVENT__INIT};
    Cascade__V1__Event *events[4] = {&ev[0], &ev[1], &ev[2], &ev[3]};
    const uint64_t items[4] = {600, 501, 502, 999 /* no record */};
    const Cascade__V1__EventType types[4] = {CASCADE__V1__EVENT_TYPE__EVENT_TYPE_DISLIKE,
                                             CASCADE__V1__EVENT_TYPE__EVENT_TYPE_HIDE_AUTHOR,
                                             CASCADE__V1__EVENT_TYPE__EVENT_TYPE_FOLLOW,
                                             CASCADE__V1__EVENT_TYPE__EVENT_TYPE_HIDE_AUTHOR};
    for (size_t i = 0; i < 4; i++) {
        ev[i].user_id = "fb-sets";
        ev[i].item_id = items[i];
        ev[i].type = types[i];
    }
    Cascade__V1__FeedbackResponse *resp;
    char err[512], blocked_items[CASCADE_KEY_MAX], blocked_authors[CASCADE_KEY_MAX],
        follows[CASCADE_KEY_MAX];
    long long before = stream_length("t");
    assert_int_equal(feedback(o, events, 4, &resp, err, sizeof err), 0);
    assert_int_equal(resp->accepted, 4);
    assert_int_equal(stream_length("t"), before + 4);
    cascade_key_user_blocked_items(blocked_items, "t", "fb-sets");
    cascade_key_user_blocked_authors(blocked_authors, "t", "fb-sets");
    cascade_key_user_follows(follows, "t", "fb-sets");
    assert_true(set_has(blocked_items, 600));
    assert_int_equal(set_size(blocked_items), 1);
    assert_true(set_has(blocked_authors, 77));
    assert_int_equal(set_size(blocked_authors), 1); /* item 999 has no author to block */
    assert_true(set_has(follows, 88));
    assert_int_equal(set_size(follows), 1);
    /* A dislike is not an interest: no last-n entry; the follow is (weight 4). */
    cascade_v1_Interaction lastn[8];
    size_t n = 0;
    assert_int_equal(cascade_store_get_lastn(fx.r, "t", "fb-sets", 8, lastn, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lastn[0].item_id, 502);
    cascade_orch_destroy(o);
}

static void test_feedback_redis_down(void **state)
{
    (void)state;
    struct cascade_redis_opts dead = {.host = "127.0.0.1",
                                      .port = fx.dead_port,
                                      .connect_timeout_ms = 200,
                                      .command_timeout_ms = 200};
    cascade_redis_pool *pool = cascade_redis_pool_create(&dead);
    cascade_orch *o = make_orch(two_channels, NULL, NULL, pool);
    Cascade__V1__Event click = CASCADE__V1__EVENT__INIT;
    Cascade__V1__Event *events[1] = {&click};
    Cascade__V1__FeedbackResponse *resp;
    char err[512];
    click.user_id = "u";
    click.item_id = 1;
    click.type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_CLICK;
    assert_int_equal(feedback(o, events, 1, &resp, err, sizeof err), CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "feedback"));
    cascade_orch_destroy(o);
    cascade_redis_pool_destroy(pool);
}

/* A play goes to the event stream (with its lower-case type name) but, like
 * an impression, has interest weight 0 (common/events.h), so it enters
 * neither last-n nor the consumed set — the same as cascade-build counts it. */
static void test_feedback_play(void **state)
{
    (void)state;
    cascade_orch *o = make_orch(two_channels, NULL, NULL, fx.pool);
    Cascade__V1__Event play = CASCADE__V1__EVENT__INIT;
    Cascade__V1__Event *events[1] = {&play};
    Cascade__V1__FeedbackResponse *resp;
    char err[512], key[CASCADE_KEY_MAX];
    play.user_id = "fb-player";
    play.item_id = 91;
    play.type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_PLAY;
    play.value = 12.5f;
    assert_int_equal(feedback(o, events, 1, &resp, err, sizeof err), 0);

    redisReply *reply = NULL;
    assert_int_equal(cascade_redis_command(fx.r, &reply, "XREVRANGE %s + - COUNT 1",
                                           cascade_key_events(key, "t")),
                     0);
    assert_int_equal(reply->elements, 1);
    const redisReply *fields = reply->element[0]->element[1];
    const char *user = NULL, *type = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, "user") == 0)
            user = fields->element[i + 1]->str;
        if (strcmp(fields->element[i]->str, "type") == 0)
            type = fields->element[i + 1]->str;
    }
    assert_non_null(user);
    assert_string_equal(user, "fb-player");
    assert_non_null(type);
    assert_string_equal(type, "play");
    freeReplyObject(reply);

    cascade_v1_Interaction lastn[4];
    size_t n = 99;
    bool consumed = true;
    assert_int_equal(cascade_store_get_lastn(fx.r, "t", "fb-player", 4, lastn, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cascade_store_consumed(fx.r, "t", "fb-player", &play.item_id, 1, &consumed),
                     0);
    assert_false(consumed);
    cascade_orch_destroy(o);
}

/* True when s reads "<stage>: <CODE>": a lower-case stage or stage/channel
 * name, then one upper-case gRPC status name or a lower-case fixed code. */
static bool is_stable_reason(const char *s)
{
    const char *colon = strstr(s, ": ");
    if (colon == NULL || colon == s)
        return false;
    for (const char *c = s; c < colon; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '/' || *c == '_'))
            return false;
    const char *code = colon + 2;
    if (*code == '\0')
        return false;
    bool upper = *code >= 'A' && *code <= 'Z';
    for (const char *c = code; *c; c++)
        if (!(*c == '_' || (upper ? (*c >= 'A' && *c <= 'Z') : (*c >= 'a' && *c <= 'z'))))
            return false;
    return true;
}

/* Degrade reasons carry stable codes only: a dead channel, a dead stage and
 * an unreachable Redis (user record, recall cache) degrade the answer, and
 * no reason names an address, a port or Redis; the details are in the trace. */
static void test_reasons_hide_internals(void **state)
{
    (void)state;
    const char *channels = "[{\"name\": \"hot\", \"timeout_ms\": 2000},"
                           " {\"name\": \"itemcf\", \"endpoint\": \"dead\", \"timeout_ms\": 2000}]";
    char extra[512], port[16], err[512];
    snprintf(extra, sizeof extra, "%s, \"stages\": {\"prerank\": {\"endpoint\": \"dead\"}}",
             cold_config);
    snprintf(port, sizeof port, "%d", fx.dead_port);
    struct cascade_redis_opts dead = {.host = "127.0.0.1",
                                      .port = fx.dead_port,
                                      .connect_timeout_ms = 200,
                                      .command_timeout_ms = 200};
    cascade_redis_pool *pool = cascade_redis_pool_create(&dead);
    cascade_orch *o = make_orch(channels, extra, NULL, pool);
    Cascade__V1__RecommendResponse *r;
    assert_int_equal(recommend(o, "leak-check", 10, true, &r, err, sizeof err), 0);
    assert_true(r->degraded);
    assert_true(has_reason(r, "recall/itemcf: UNAVAILABLE"));
    assert_true(has_reason(r, "prerank: UNAVAILABLE"));
    assert_true(has_reason(r, "mix: UNAVAILABLE"));
    for (size_t i = 0; i < r->n_degraded_reasons; i++) {
        const char *reason = r->degraded_reasons[i];
        assert_true(is_stable_reason(reason));
        assert_null(strstr(reason, "127.0.0.1"));
        assert_null(strstr(reason, port));
        assert_null(strcasestr(reason, "redis"));
    }
    /* The details are not lost: they are in the trace (and the log). */
    assert_non_null(strstr(trace_of(r, "mix")->message, port));
    assert_true(trace_of(r, "recall/itemcf")->message[0] != '\0');
    cascade_orch_destroy(o);
    cascade_redis_pool_destroy(pool);
}

/* The hot-list fallback is reported as "fallback: hot". */
static void test_fallback_reason(void **state)
{
    (void)state;
    const char *channels = "[{\"name\": \"itemcf\", \"endpoint\": \"dead\", \"timeout_ms\": 2000}]";
    cascade_orch *o = make_orch(channels, NULL, NULL, fx.pool);
    Cascade__V1__RecommendResponse *r;
    char err[512];
    assert_int_equal(recommend(o, "fallback-reason", 10, false, &r, err, sizeof err), 0);
    assert_true(has_reason(r, "fallback: hot"));
    for (size_t i = 0; i < r->n_degraded_reasons; i++)
        assert_true(is_stable_reason(r->degraded_reasons[i]));
    cascade_orch_destroy(o);
}

/* The debug trace goes only to callers allowed to have it: on loopback, or
 * with the configured x-debug-token; never when debug is disabled. The
 * answer itself is the same either way. */
static void test_trace_gate(void **state)
{
    (void)state;
    const char *remote = "ipv4:10.1.2.3:5555";
    Cascade__V1__RecommendResponse *r;
    char err[512];
    cascade_orch *o =
        make_orch(two_channels, ", \"debug\": {\"token\": \"s3cret-token\"}", NULL, fx.pool);
    assert_int_equal(recommend_as(o, "gate", 5, true, remote, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 5);
    assert_int_equal(r->n_trace, 0);
    assert_int_equal(recommend_as(o, "gate", 5, true, remote, "wrong", &r, err, sizeof err), 0);
    assert_int_equal(r->n_trace, 0);
    assert_int_equal(recommend_as(o, "gate", 5, true, remote, "s3cret-toke", &r, err, sizeof err),
                     0);
    assert_int_equal(r->n_trace, 0);
    assert_int_equal(recommend_as(o, "gate", 5, true, NULL, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r->n_trace, 0);
    assert_int_equal(recommend_as(o, "gate", 5, true, remote, "s3cret-token", &r, err, sizeof err),
                     0);
    assert_non_null(trace_of(r, "rerank"));
    assert_int_equal(
        recommend_as(o, "gate", 5, true, "ipv6:%5B::1%5D:4000", NULL, &r, err, sizeof err), 0);
    assert_non_null(trace_of(r, "rerank"));
    cascade_orch_destroy(o);

    /* Loopback switched off: only the token opens it. Debug off: nothing does. */
    o = make_orch(two_channels, ", \"debug\": {\"loopback\": false, \"token\": \"t0k\"}", NULL,
                  fx.pool);
    assert_int_equal(recommend_as(o, "gate", 5, true, LOCAL_PEER, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r->n_trace, 0);
    assert_int_equal(recommend_as(o, "gate", 5, true, LOCAL_PEER, "t0k", &r, err, sizeof err), 0);
    assert_non_null(trace_of(r, "rerank"));
    cascade_orch_destroy(o);
    o = make_orch(two_channels, ", \"debug\": {\"enabled\": false, \"token\": \"t0k\"}", NULL,
                  fx.pool);
    assert_int_equal(recommend_as(o, "gate", 5, true, LOCAL_PEER, "t0k", &r, err, sizeof err), 0);
    assert_int_equal(r->n_items, 5);
    assert_int_equal(r->n_trace, 0);
    cascade_orch_destroy(o);
}

int main(void)
{
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_no_repeats),
        cmocka_unit_test(test_reservation_fills_from_spares),
        cmocka_unit_test(test_reservation_second_round),
        cmocka_unit_test(test_stalled_rank_leaves_time_for_later_stages),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_request_id_sanitised),
        cmocka_unit_test(test_dead_channel),
        cmocka_unit_test(test_dead_stage),
        cmocka_unit_test(test_filter_sees_slim_candidates),
        cmocka_unit_test_teardown(test_old_prerank_not_trusted_with_columns, stages_current),
        cmocka_unit_test_teardown(test_old_rank_not_trusted_with_columns, stages_current),
        cmocka_unit_test(test_compact_stage_calls_same_answer),
        cmocka_unit_test(test_rerank_unknown_item_not_trusted),
        cmocka_unit_test(test_dead_filter),
        cmocka_unit_test(test_experiment_params),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_experiment_channel_params),
        cmocka_unit_test(test_hot_fallback),
        cmocka_unit_test(test_cold_start_switch),
        cmocka_unit_test(test_exploration_per_user_pick),
        cmocka_unit_test(test_exploration_needs_a_good_score),
        cmocka_unit_test(test_exploration_guarantee),
        cmocka_unit_test(test_exploration_experiment_params),
        cmocka_unit_test(test_request_slots),
        cmocka_unit_test(test_config_slots),
        cmocka_unit_test(test_exploration_experiment_positions),
        cmocka_unit_test(test_slot_validation),
        cmocka_unit_test(test_cache_writes),
        cmocka_unit_test(test_hard_negatives),
        cmocka_unit_test(test_hard_negatives_redis_down),
        cmocka_unit_test(test_cache_script_flushed),
        cmocka_unit_test(test_serve_log),
        cmocka_unit_test(test_serve_log_inserted),
        cmocka_unit_test(test_serve_log_redis_down),
        cmocka_unit_test(test_contribution_trace),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_feedback_user_sets),
        cmocka_unit_test(test_feedback_redis_down),
        cmocka_unit_test(test_feedback_play),
        cmocka_unit_test(test_reasons_hide_internals),
        cmocka_unit_test(test_fallback_reason),
        cmocka_unit_test(test_trace_gate),
    };
    // clang-format on
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
