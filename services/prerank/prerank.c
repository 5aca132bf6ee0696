/* Pre-rank stage: read the item records and, with a model, the user record
 * in one Redis pipeline (common/stage_reads.h); score with the learned
 * ranker, the hashed-feature LR or the heuristic, sort, keep the top N. */
#include "prerank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "ltr_features.h"
#include "experiments.h"
#include "log.h"
#include "request.h"
#include "stage_reads.h"
#include "prerank_internal.h"
#include "rank_features.h"
#include "store.h"
#include "user_online.h"

/* Item records per MGET. */
#define PRERANK_CHUNK 512

/* ------------------------------------------------------------------ lifecycle */

static int prerank_read_model(cascade_prerank *p, const cascade_config *cfg, char *err,
                              size_t errlen)
{
    static const char *const names[] = {"auto", "ltr", "lr", "heuristic"};
    const char *v;
    int rc = cascade_config_string(cfg, "prerank.model", "auto", &v, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(v, names[i]) == 0) {
            p->model_choice = (int)i;
            return 0;
        }
    snprintf(err, errlen,
             "%s: prerank.model: unknown model \"%.64s\" (known: auto, ltr, lr, "
             "heuristic)",
             cascade_config_source(cfg), v);
    return CASCADE_EINVAL;
}

static int prerank_read_config(cascade_prerank *p, const cascade_config *cfg, char *err,
                               size_t errlen)
{
    struct cascade_prerank_weights *w = &p->weights;
    int64_t v;
    int rc;
    if ((rc =
             cascade_config_int(cfg, "prerank.max_candidates", 20000, 1, 1000000, &v, err, errlen)))
        return rc;
    p->max_candidates = (size_t)v;
    if ((rc = cascade_config_int(cfg, "prerank.keep", 300, 1, (int64_t)p->max_candidates, &v, err,
                                 errlen)))
        return rc;
    p->keep = (uint32_t)v;
    if ((rc = cascade_config_double(cfg, "prerank.weights.clicks", 0.2, -1e6, 1e6, &w->clicks, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "prerank.weights.ctr", 4.0, -1e6, 1e6, &w->ctr, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "prerank.weights.recall", 1.0, -1e6, 1e6, &w->recall, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "prerank.ctr_prior.clicks", 1.0, 0, 1e9, &w->prior_clicks,
                                    err, errlen)) ||
        (rc = cascade_config_double(cfg, "prerank.ctr_prior.impressions", 20.0, 1e-6, 1e9,
                                    &w->prior_impressions, err, errlen)))
        return rc;
    if ((rc = prerank_read_model(p, cfg, err, errlen)) ||
        (rc = cascade_stage_online_config(&p->online, "prerank", cfg, err, errlen)))
        return rc;
    return cascade_config_int(cfg, "prerank.reload_interval_ms", 1000, 0, 3600000,
                              &p->reload_interval_ms, err, errlen);
}

static cascade_prerank *prerank_alloc(void)
{
    cascade_prerank *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->model_lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->reload_lock, NULL) != 0) {
        pthread_mutex_destroy(&p->model_lock);
        free(p);
        return NULL;
    }
    atomic_init(&p->next_check_ms, 0);
    atomic_init(&p->warned_no_model, false);
    cascade_prerank__pins_init(p);
    return p;
}

/* The stage's own metrics in m (NULL: none). */
static void register_metrics(cascade_prerank *p, cascade_metrics *m)
{
    if (!p || !m)
        return;
    cascade_stage_online_metrics(&p->online, m, "PreRank");
}

cascade_prerank *cascade_prerank_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                        const char *ns, const char *model_dir,
                                        cascade_metrics *metrics, char *err, size_t errlen)
{
    char lerr[512];
    cascade_prerank *p = prerank_alloc();
    if (!p) {
        snprintf(err, errlen, "prerank: out of memory");
        goto fail;
    }
    if (!ns || !ns[0] || strlen(ns) >= sizeof p->ns) {
        snprintf(err, errlen, "prerank: namespace must be 1..%zu characters", sizeof p->ns - 1);
        goto fail;
    }
    if (model_dir && strlen(model_dir) >= sizeof p->model_dir) {
        snprintf(err, errlen, "prerank: model directory must be at most %zu characters",
                 sizeof p->model_dir - 1);
        goto fail;
    }
    snprintf(p->ns, sizeof p->ns, "%s", ns);
    snprintf(p->model_dir, sizeof p->model_dir, "%s", model_dir ? model_dir : "");
    if (p->model_dir[0])
        snprintf(p->heuristic_version, sizeof p->heuristic_version,
                 "prerank-heuristic-v1 (no model in %s)", p->model_dir);
    else
        snprintf(p->heuristic_version, sizeof p->heuristic_version, "prerank-heuristic-v1");
    p->redis = redis;
    if (prerank_read_config(p, cfg, err, errlen) != 0 ||
        cascade_item_cache_from_config(cfg, "prerank", redis, ns, &cascade_rank_item_derive,
                                       metrics, &p->items, err, errlen) != 0)
        goto fail;
    (void)cascade_prerank_reload(p, true, lerr, sizeof lerr); /* logged; heuristic meanwhile */
    register_metrics(p, metrics);
    if (cascade_prerank_pin_versions(p, cfg, err, errlen) != 0)
        goto fail;
    return p;
fail:
    cascade_prerank_destroy(p);
    return NULL;
}

void cascade_prerank_destroy(cascade_prerank *p)
{
    if (!p)
        return;
    cascade_prerank__model_release(p->model);
    cascade_prerank__pinned_release(p);
    cascade_item_cache_destroy(p->items);
    cascade_stage_online_release(&p->online);
    pthread_mutex_destroy(&p->model_lock);
    pthread_mutex_destroy(&p->reload_lock);
    free(p);
}

/* ------------------------------------------------------------------ request */

/* Resolve how many to keep: request, then experiment param, then config. */
static int prerank_keep(const cascade_prerank *p, const Cascade__V1__PreRankRequest *req,
                        size_t *keep, char *err, size_t errlen)
{
    if (req->keep != 0) {
        if (req->keep > p->max_candidates) {
            snprintf(err, errlen, "keep %u out of range 1..%zu (0 = default %u)", req->keep,
                     p->max_candidates, p->keep);
            return CASCADE_EINVAL;
        }
        *keep = req->keep;
        return 0;
    }
    double v = cascade_exp_param_double(req->experiments, "prerank.keep", p->keep);
    if (!(v >= 1 && v <= (double)p->max_candidates)) {
        snprintf(err, errlen, "experiment param prerank.keep=%g out of range 1..%zu", v,
                 p->max_candidates);
        return CASCADE_EINVAL;
    }
    *keep = (size_t)v;
    return 0;
}

/* The request as the stage reads it: *view is req itself, or, when the
 * candidates came as item_ids columns, a shallow copy of it (in *copy) whose
 * candidates are built from them, so everything after this reads one form. */
static int prerank_view(const cascade_prerank *p, cascade_arena *arena,
                        const Cascade__V1__PreRankRequest *req, Cascade__V1__PreRankRequest *copy,
                        const Cascade__V1__PreRankRequest **view, char *err, size_t errlen)
{
    *view = req;
    if (req->n_item_ids == 0 && req->n_recall_scores == 0)
        return 0;
    *copy = *req;
    int rc = cascade_request_candidates_from_columns(
        req->n_candidates, req->item_ids, req->n_item_ids, req->recall_scores, req->n_recall_scores,
        p->max_candidates, arena, &copy->candidates, err, errlen);
    if (rc)
        return rc;
    copy->n_candidates = req->n_item_ids;
    *view = copy;
    return 0;
}

/* Checks the request, giving the candidates their hits first when they came
 * as recall_signals columns. */
static int prerank_validate(const cascade_prerank *p, cascade_arena *arena,
                            const Cascade__V1__PreRankRequest *req, char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0 && req->n_candidates <= p->max_candidates)
        rc = cascade_request_expand_signals(req->recall_signals, req->candidates, req->n_candidates,
                                            arena, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_candidates(req->candidates, req->n_candidates, p->max_candidates,
                                              err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    return rc;
}

/* Per-request weights: the config's, with any experiment overrides. */
static struct cascade_prerank_weights prerank_weights(const cascade_prerank *p,
                                                      const Cascade__V1__ExperimentContext *exp)
{
    struct cascade_prerank_weights w = p->weights;
    w.clicks = cascade_exp_param_double(exp, "prerank.weights.clicks", w.clicks);
    w.ctr = cascade_exp_param_double(exp, "prerank.weights.ctr", w.ctr);
    w.recall = cascade_exp_param_double(exp, "prerank.weights.recall", w.recall);
    return w;
}

/* The scorer of one request: the model with the user's features, or the
 * heuristic weights when model is NULL. */
struct scorer {
    struct cascade_prerank__model *model;
    struct cascade_prerank_user user;
    /* The learned ranker's user side of the features (the user's record,
     * zeroed when unknown), kept for the request's candidates. */
    struct cascade_rank_user *rank_user;
    int64_t now_s;
    struct cascade_prerank_weights w;
};

/* The hashed-cross LR's or the heuristic's score of one candidate. */
static float score_one(const struct scorer *s, const cascade_v1_ItemRecord *rec, bool found,
                       const Cascade__V1__Candidate *c)
{
    if (!s->model)
        return cascade_prerank_score(&s->w, found && rec->has_stats ? &rec->stats : NULL,
                                     c->recall_score);
    cascade_v1_ItemRecord unknown = cascade_v1_ItemRecord_init_zero;
    unknown.item_id = c->item_id;
    uint32_t idx[CASCADE_PRERANK_FEATURES];
    cascade_prerank_features(&s->user, found ? rec : &unknown, s->now_s,
                             cascade_hashlr_bits(s->model->lr), idx);
    return cascade_hashlr_predict(s->model->lr, idx, CASCADE_PRERANK_FEATURES);
}

/* Score cands[0..n) (n <= PRERANK_CHUNK) with their records (and what the
 * item cache derived from them, NULL: none): the learned ranker over the n
 * feature rows in one call (gbdt.h walks eight rows at a time; X and score
 * hold n rows), the others one by one. */
static void score_chunk(const struct scorer *s, const cascade_v1_ItemRecord *recs,
                        const struct cascade_rank_item *derived, const bool *found,
                        Cascade__V1__Candidate *const *cands, size_t n, float *X, float *score)
{
    if (!s->model || !s->model->ltr) {
        for (size_t i = 0; i < n; i++)
            cands[i]->prerank_score = score_one(s, &recs[i], found[i], cands[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cascade_v1_ItemRecord unknown = cascade_v1_ItemRecord_init_zero;
        unknown.item_id = cands[i]->item_id;
        cascade_ltr_features_from(s->rank_user, found[i] ? &recs[i] : &unknown,
                                  derived ? &derived[i] : NULL, cands[i], s->now_s,
                                  X + i * CASCADE_LTR_FEATURES);
    }
    cascade_gbdt_predict(s->model->ltr, X, n, score);
    for (size_t i = 0; i < n; i++)
        cands[i]->prerank_score = score[i];
}

/* The request's reads (common/stage_reads.h: one round trip): the user's
 * record when q->user_id is set, continued with the user's events, and the
 * item records with the online counters' change. A failed online read is
 * counted, logged and leaves the nightly data (docs/closed-loop.md). */
static int prerank_read(const cascade_prerank *p, cascade_redis *redis, cascade_arena *arena,
                        struct cascade_stage_reads *q, char *err, size_t errlen)
{
    q->ns = p->ns;
    q->online_user = p->online.user;
    q->online_counters = p->online.counters;
    q->cache = p->items;
    q->counters_cache = p->online.counters_cache;
    int rc = cascade_stage_reads_run(redis, arena, q);
    if (rc == 0)
        rc = cascade_stage_online_report(&p->online, redis, q);
    if (rc == CASCADE_ENOMEM) {
        snprintf(err, errlen, "prerank: out of request memory");
        return rc;
    }
    if (rc != 0) {
        snprintf(err, errlen, "prerank: %s: %s",
                 q->user_id ? "user and item records" : "item records",
                 cascade_redis_error(redis)[0] ? cascade_redis_error(redis) : cascade_strerror(rc));
        return rc == CASCADE_ETIMEDOUT ? rc : CASCADE_EUNAVAILABLE;
    }
    return 0;
}

/* Score every candidate with its record, PRERANK_CHUNK at a time. */
static int prerank_score_all(cascade_arena *arena, int64_t deadline_ms,
                             const Cascade__V1__PreRankRequest *req, const struct scorer *s,
                             const cascade_v1_ItemRecord *recs,
                             const struct cascade_rank_item *derived, const bool *found, char *err,
                             size_t errlen)
{
    float score[PRERANK_CHUNK], *X = NULL;
    if (s->model && s->model->ltr &&
        !(X = cascade_arena_alloc(
              arena, (req->n_candidates < PRERANK_CHUNK ? req->n_candidates + 1 : PRERANK_CHUNK) *
                         CASCADE_LTR_FEATURES * sizeof *X))) {
        snprintf(err, errlen, "prerank: out of request memory");
        return CASCADE_ENOMEM;
    }
    for (size_t off = 0; off < req->n_candidates; off += PRERANK_CHUNK) {
        if (cascade_now_ms() >= deadline_ms) {
            snprintf(err, errlen, "prerank: deadline exceeded after %zu of %zu candidates", off,
                     req->n_candidates);
            return CASCADE_ETIMEDOUT;
        }
        size_t n =
            req->n_candidates - off < PRERANK_CHUNK ? req->n_candidates - off : PRERANK_CHUNK;
        score_chunk(s, recs + off, derived ? derived + off : NULL, found + off,
                    req->candidates + off, n, X, score);
    }
    return 0;
}

/* Read what the request needs and score every candidate: with a model, the
 * user's record (absent = anonymous user) and the time first. */
static int prerank_score(const cascade_prerank *p, cascade_redis *redis, cascade_arena *arena,
                         int64_t deadline_ms, const Cascade__V1__PreRankRequest *req,
                         struct scorer *s, char *err, size_t errlen)
{
    size_t n = req->n_candidates;
    struct cascade_stage_reads q = {
        .user_id = s->model ? req->user->user_id : NULL,
        .ids = cascade_arena_alloc(arena, (n + 1) * sizeof(uint64_t)), /* filled below */
        .n = n,
        .user = cascade_arena_calloc(arena, 1, sizeof(cascade_v1_UserRecord)),
        /* Not zeroed: cascade_stage_reads_run writes every record. */
        .items = cascade_arena_alloc(arena, (n + 1) * sizeof(cascade_v1_ItemRecord)),
        .found = cascade_arena_calloc(arena, n + 1, sizeof(bool)),
        /* What the item cache derived from each record, for the learned
         * ranker's features (not zeroed: the reads write every entry). */
        .derived = cascade_item_cache_derived_size(p->items) == sizeof(struct cascade_rank_item)
                       ? cascade_arena_alloc(arena, (n + 1) * sizeof(struct cascade_rank_item))
                       : NULL,
    };
    if (!q.ids || !q.user || !q.items || !q.found ||
        (!q.derived && cascade_item_cache_derived_size(p->items) > 0)) {
        snprintf(err, errlen, "prerank: out of request memory");
        return CASCADE_ENOMEM;
    }
    uint64_t *ids = (uint64_t *)q.ids;
    for (size_t i = 0; i < n; i++)
        ids[i] = req->candidates[i]->item_id;
    /* Wall time: the features decay and age against the events' times. */
    s->now_s = req->user->request_time_s > 0 ? req->user->request_time_s : cascade_wall_s();
    q.now_s = s->now_s;
    int rc = prerank_read(p, redis, arena, &q, err, errlen);
    if (rc != 0)
        return rc;
    if (s->model) {
        cascade_prerank_user_prepare(q.user_found ? q.user : NULL, req->user->user_id, &s->user);
        if (s->model->ltr) {
            if (!(s->rank_user = cascade_arena_alloc(arena, sizeof *s->rank_user))) {
                snprintf(err, errlen, "prerank: out of request memory");
                return CASCADE_ENOMEM;
            }
            cascade_rank_user_prepare(q.user, s->rank_user);
        }
    }
    return prerank_score_all(arena, deadline_ms, req, s, q.items, q.derived, q.found, err, errlen);
}

/* The kept candidates as a scores-only answer: item_id and prerank_score. */
static Cascade__V1__Candidate **scores_only(cascade_arena *arena, Cascade__V1__Candidate **cands,
                                            size_t n)
{
    Cascade__V1__Candidate *slim = cascade_arena_alloc(arena, (n + 1) * sizeof *slim);
    if (!slim)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&slim[i]);
        slim[i].item_id = cands[i]->item_id;
        slim[i].prerank_score = cands[i]->prerank_score;
        cands[i] = &slim[i];
    }
    return cands;
}

/* The kept candidates as answer columns (the request came as item_ids):
 * their ids and scores in order, no candidates. false when out of memory. */
static bool answer_columns(cascade_arena *arena, Cascade__V1__PreRankResponse *resp)
{
    size_t n = resp->n_candidates;
    resp->scored_ids = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->scored_ids);
    resp->scores = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->scores);
    if (!resp->scored_ids || !resp->scores)
        return false;
    for (size_t i = 0; i < n; i++) {
        resp->scored_ids[i] = resp->candidates[i]->item_id;
        resp->scores[i] = resp->candidates[i]->prerank_score;
    }
    resp->n_scored_ids = resp->n_scores = n;
    resp->candidates = NULL;
    resp->n_candidates = 0;
    return true;
}

/* Sort, keep the first `keep` and answer them: as columns when the request
 * came as columns, else as candidates (slim ones with scores_only). */
static int prerank_sort_keep(cascade_arena *arena, const Cascade__V1__PreRankRequest *req,
                             bool columns, size_t keep, const char *version,
                             Cascade__V1__PreRankResponse **out)
{
    Cascade__V1__PreRankResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    Cascade__V1__Candidate **cands =
        cascade_arena_calloc(arena, req->n_candidates + 1, sizeof *cands);
    char *v = cascade_arena_strdup(arena, version);
    if (!resp || !cands || !v)
        return CASCADE_ENOMEM;
    /* An empty list arrives as candidates == NULL, which memcpy must not see
     * even for 0 bytes (found by tests/fuzz, prerank_request). */
    if (req->n_candidates > 0)
        memcpy(cands, req->candidates, req->n_candidates * sizeof *cands);
    /* Only the first keep are answered: select them, sort only them. */
    if (cascade_request_sort_top(cands, req->n_candidates, keep, CASCADE_SCORE_PRERANK, arena) != 0)
        return CASCADE_ENOMEM;
    cascade__v1__pre_rank_response__init(resp);
    resp->candidates = cands;
    resp->n_candidates = req->n_candidates < keep ? req->n_candidates : keep;
    resp->model_version = v;
    if (columns ? !answer_columns(arena, resp)
                : req->scores_only && !scores_only(arena, cands, resp->n_candidates))
        return CASCADE_ENOMEM;
    *out = resp;
    return 0;
}

int cascade_prerank_run(cascade_prerank *p, cascade_arena *arena, int64_t deadline_ms,
                        const Cascade__V1__PreRankRequest *sent, Cascade__V1__PreRankResponse **out,
                        char *err, size_t errlen)
{
    Cascade__V1__PreRankRequest copy;
    const Cascade__V1__PreRankRequest *req = sent;
    size_t keep = 0;
    int rc = prerank_view(p, arena, sent, &copy, &req, err, errlen);
    if (rc == 0)
        rc = prerank_validate(p, arena, req, err, errlen);
    if (rc == 0)
        rc = prerank_keep(p, req, &keep, err, errlen);
    if (rc != 0)
        return rc;
    cascade_prerank__maybe_reload(p);
    struct scorer s = {.model = cascade_prerank__model_acquire_version(
                           p, cascade_exp_param(req->experiments, "prerank.model_version")),
                       .w = prerank_weights(p, req->experiments)};
    cascade_redis *redis = cascade_redis_pool_get(p->redis);
    cascade_redis_set_deadline(redis, deadline_ms);
    if (!redis) {
        rc = CASCADE_ENOMEM;
        snprintf(err, errlen, "prerank: out of memory for a Redis connection");
        goto out;
    }
    if ((rc = prerank_score(p, redis, arena, deadline_ms, req, &s, err, errlen)) != 0)
        goto out;
    rc = prerank_sort_keep(arena, req, req != sent, keep,
                           s.model ? s.model->version : p->heuristic_version, out);
    if (rc != 0)
        snprintf(err, errlen, "prerank: out of request memory");
out:
    cascade_prerank__model_release(s.model);
    return rc;
}

int cascade_prerank_features_of(cascade_prerank *p, cascade_arena *arena, int64_t deadline_ms,
                                const char *user_id, const uint64_t *ids, size_t n, int64_t now_s,
                                unsigned bits, uint32_t *idx, float *heuristic, char *err,
                                size_t errlen)
{
    cascade_redis *redis = cascade_redis_pool_get(p->redis);
    struct cascade_stage_reads q = {
        .user_id = user_id,
        .ids = ids,
        .n = n,
        .now_s = now_s,
        .user = cascade_arena_calloc(arena, 1, sizeof(cascade_v1_UserRecord)),
        .items = cascade_arena_calloc(arena, n + 1, sizeof(cascade_v1_ItemRecord)),
        .found = cascade_arena_calloc(arena, n + 1, sizeof(bool)),
    };
    struct cascade_prerank_user pu;
    struct cascade_prerank_weights hw;
    if (!redis || !q.user || !q.items || !q.found) {
        snprintf(err, errlen, "prerank: out of request memory");
        return CASCADE_ENOMEM;
    }
    cascade_redis_set_deadline(redis, deadline_ms);
    int rc = prerank_read(p, redis, arena, &q, err, errlen);
    if (rc != 0)
        return rc;
    cascade_prerank_user_prepare(q.user_found ? q.user : NULL, user_id, &pu);
    cascade_prerank_weights_default(&hw);
    for (size_t i = 0; i < n; i++) {
        if (!q.found[i]) {
            memset(&q.items[i], 0, sizeof q.items[i]);
            q.items[i].item_id = ids[i];
        }
        cascade_prerank_features(&pu, &q.items[i], now_s, bits, idx + i * CASCADE_PRERANK_FEATURES);
        heuristic[i] =
            cascade_prerank_score(&hw, q.items[i].has_stats ? &q.items[i].stats : NULL, 0);
    }
    return 0;
}

/* ------------------------------------------------------------------ rpc */

int cascade_prerank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    int rc =
        cascade_prerank_run(service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
                            (const Cascade__V1__PreRankRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

const struct cascade_rpc_method *cascade_prerank_methods(size_t *n)
{
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.PreRank/Score", &cascade__v1__pre_rank_request__descriptor,
         &cascade__v1__pre_rank_response__descriptor, cascade_prerank_handle},
    };
    *n = sizeof methods / sizeof methods[0];
    return methods;
}
