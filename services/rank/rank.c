/* Rank stage: request validation, record fetch, prediction (learned ranker,
 * MMoE, LR model or CTR heuristic), fusion, attributes, sort. Model loading lives in model.c,
 * fusion formulas in fusion.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibration.h"
#include "clock.h"
#include "error.h"
#include "experiments.h"
#include "ltr_features.h"
#include "rank_features.h"
#include "rank_internal.h"
#include "request.h"
#include "stage_reads.h"
#include "store.h"
#include "user_online.h"

/* Item records per MGET. */
#define RANK_CHUNK 512

/* ------------------------------------------------------------------ lifecycle */

static int rank_read_fusion(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen)
{
    struct cascade_rank_fusion_params *p = &r->fusion_params;
    const char *formula;
    int rc;
    if ((rc = cascade_config_string(cfg, "rank.fusion.formula", "weighted_sum", &formula, err,
                                    errlen)))
        return rc;
    if (!(r->fusion = cascade_rank_fusion_find(formula))) {
        snprintf(err, errlen, "%s: rank.fusion.formula: unknown formula \"%.64s\" (known: %s)",
                 cascade_config_source(cfg), formula, cascade_rank_fusion_list());
        return CASCADE_EINVAL;
    }
    if ((rc = cascade_config_double(cfg, "rank.fusion.weights.click", 1.0, -1e6, 1e6, &p->w_click,
                                    err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.weights.like", 0, -1e6, 1e6, &p->w_like, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.weights.collect", 0, -1e6, 1e6, &p->w_collect,
                                    err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.weights.share", 0, -1e6, 1e6, &p->w_share,
                                    err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.weights.watch_time", 0, -1e6, 1e6,
                                    &p->w_watch_time, err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.weights.complete", 0, -1e6, 1e6,
                                    &p->w_complete, err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.rank_alpha", 1.0, 0, 100, &p->rank_alpha, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "rank.fusion.rank_beta", 10.0, 0, 1e9, &p->rank_beta, err,
                                    errlen)) ||
        (rc = cascade_config_bool(cfg, "rank.fusion.complete_adjust", true, &r->complete_adjust,
                                  err, errlen)))
        return rc;
    return 0;
}

static int rank_read_choice(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen)
{
    const char *v;
    int rc = cascade_config_string(cfg, "rank.model", "auto", &v, err, errlen);
    if (rc != 0 || cascade_rank__choice_parse(v, &r->choice) == 0)
        return rc;
    snprintf(err, errlen, "%s: rank.model: unknown model \"%.64s\" (known: %s)",
             cascade_config_source(cfg), v, cascade_rank__choice_list());
    return CASCADE_EINVAL;
}

static int rank_read_config(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen)
{
    int64_t v;
    int rc;
    if ((rc = cascade_config_int(cfg, "rank.max_candidates", 5000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_candidates = (size_t)v;
    if ((rc = cascade_config_int(cfg, "rank.reload_interval_ms", 1000, 0, 3600000,
                                 &r->reload_interval_ms, err, errlen)))
        return rc;
    if ((rc = cascade_config_double(cfg, "rank.heuristic.prior_clicks", 1.0, 0, 1e9,
                                    &r->prior_clicks, err, errlen)) ||
        (rc = cascade_config_double(cfg, "rank.heuristic.prior_impressions", 20.0, 1e-6, 1e9,
                                    &r->prior_impressions, err, errlen)))
        return rc;
    if ((rc = cascade_config_bool(cfg, "rank.heuristic.keep_order", false, &r->heuristic_keep_order,
                                  err, errlen)) ||
        (rc = cascade_stage_online_config(&r->online, "rank", cfg, err, errlen)))
        return rc;
    if ((rc = rank_read_choice(r, cfg, err, errlen)))
        return rc;
    return rank_read_fusion(r, cfg, err, errlen);
}

static cascade_rank *rank_alloc(void)
{
    cascade_rank *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->model_lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    if (pthread_mutex_init(&r->reload_lock, NULL) != 0) {
        pthread_mutex_destroy(&r->model_lock);
        free(r);
        return NULL;
    }
    atomic_init(&r->next_check_ms, 0);
    atomic_init(&r->warned_no_model, false);
    cascade_rank__pins_init(r);
    return r;
}

/* The stage's own metrics in m (NULL: none). */
static void register_metrics(cascade_rank *r, cascade_metrics *m)
{
    static const char *const labels[CASCADE_RANK__N_KINDS + 1] = {
        [CASCADE_RANK__KIND_LTR] = "ltr",
        [CASCADE_RANK__KIND_MMOE] = "mmoe",
        [CASCADE_RANK__KIND_LR] = "lr",
        [CASCADE_RANK__N_KINDS] = "heuristic",
    };
    if (!r)
        return;
    cascade_metric_family *f =
        cascade_metrics_counter(m, "cascade_rank_requests_by_model_total",
                                "Rank requests by the kind of model that scored them "
                                "(heuristic: no model).",
                                "model");
    for (int k = 0; k <= CASCADE_RANK__N_KINDS; k++)
        r->scored[k] = cascade_metric_get(f, &labels[k]);
    cascade_stage_online_metrics(&r->online, m, "Rank");
}

cascade_rank *cascade_rank_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                  const char *ns, const char *model_dir, cascade_metrics *metrics,
                                  char *err, size_t errlen)
{
    char lerr[512];
    cascade_rank *r = rank_alloc();
    if (!r) {
        snprintf(err, errlen, "rank: out of memory");
        goto fail;
    }
    if (!ns || !ns[0] || strlen(ns) >= sizeof r->ns) {
        snprintf(err, errlen, "rank: namespace must be 1..%zu characters", sizeof r->ns - 1);
        goto fail;
    }
    if (!model_dir || !model_dir[0] || strlen(model_dir) >= sizeof r->model_dir) {
        snprintf(err, errlen, "rank: model directory must be 1..%zu characters",
                 sizeof r->model_dir - 1);
        goto fail;
    }
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->model_dir, sizeof r->model_dir, "%s", model_dir);
    snprintf(r->heuristic_version, sizeof r->heuristic_version, "heuristic: no model in %s",
             model_dir);
    r->redis = redis;
    if (rank_read_config(r, cfg, err, errlen) != 0 ||
        cascade_item_cache_from_config(cfg, "rank", redis, ns, &cascade_rank_item_derive, metrics,
                                       &r->items, err, errlen) != 0)
        goto fail;
    (void)cascade_rank_reload(r, true, lerr, sizeof lerr); /* failures are logged; heuristic */
    if (cascade_rank_pin_versions(r, cfg, err, errlen) != 0)
        goto fail;
    register_metrics(r, metrics);
    return r;
fail:
    cascade_rank_destroy(r);
    return NULL;
}

void cascade_rank_destroy(cascade_rank *r)
{
    if (!r)
        return;
    cascade_rank__models_release(r);
    cascade_rank__pinned_release(r);
    cascade_item_cache_destroy(r->items);
    cascade_stage_online_release(&r->online);
    pthread_mutex_destroy(&r->reload_lock);
    pthread_mutex_destroy(&r->model_lock);
    free(r);
}

/* ------------------------------------------------------------------ request */

/* The request as the stage reads it: *view is req itself, or, when the
 * candidates came as item_ids columns, a shallow copy of it (in *copy) whose
 * candidates are built from them, so everything after this reads one form. */
static int rank_view(const cascade_rank *r, cascade_arena *arena,
                     const Cascade__V1__RankRequest *req, Cascade__V1__RankRequest *copy,
                     const Cascade__V1__RankRequest **view, char *err, size_t errlen)
{
    *view = req;
    if (req->n_item_ids == 0 && req->n_recall_scores == 0)
        return 0;
    *copy = *req;
    int rc = cascade_request_candidates_from_columns(
        req->n_candidates, req->item_ids, req->n_item_ids, req->recall_scores, req->n_recall_scores,
        r->max_candidates, arena, &copy->candidates, err, errlen);
    if (rc)
        return rc;
    copy->n_candidates = req->n_item_ids;
    *view = copy;
    return 0;
}

/* Checks the request, giving the candidates their hits first when they came
 * as recall_signals columns. */
static int rank_validate(const cascade_rank *r, cascade_arena *arena,
                         const Cascade__V1__RankRequest *req, char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0 && req->n_candidates <= r->max_candidates)
        rc = cascade_request_expand_signals(req->recall_signals, req->candidates, req->n_candidates,
                                            arena, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_candidates(req->candidates, req->n_candidates, r->max_candidates,
                                              err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    if (rc != 0)
        return rc;
    if (req->keep > r->max_candidates) {
        snprintf(err, errlen, "keep %u out of range 0..%zu (0 = all)", req->keep,
                 r->max_candidates);
        return CASCADE_EINVAL;
    }
    return 0;
}

static int store_failure(cascade_redis *redis, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == CASCADE_ENOMEM) {
        snprintf(err, errlen, "rank: %s: out of memory", what);
        return rc;
    }
    snprintf(err, errlen, "rank: %s: %s", what,
             cascade_redis_error(redis)[0] ? cascade_redis_error(redis) : cascade_strerror(rc));
    return rc == CASCADE_ETIMEDOUT ? rc : CASCADE_EUNAVAILABLE; /* deadline passed: not sent */
}

/* The user's record (zeroed with the id filled in when the user is unknown),
 * continued with the user's events since the build as of now_s, and the
 * item records of ids[0..n) (found[i] false when absent), their statistics
 * with the online counters' change added: one round trip
 * (common/stage_reads.h). A failed online read only degrades to the nightly
 * data, counted and logged (cascade_stage_online_report, common/stage_reads.h).
 * derived (n of them, or NULL) receives what the item cache derived from each
 * record when it derives them (rank_derived). */
static int rank_fetch(const cascade_rank *r, cascade_redis *redis, cascade_arena *arena,
                      const char *user_id, const uint64_t *ids, size_t n, int64_t now_s,
                      cascade_v1_UserRecord *user, cascade_v1_ItemRecord *items,
                      struct cascade_rank_item *derived, bool *found, char *err, size_t errlen)
{
    struct cascade_stage_reads q = {.ns = r->ns,
                                    .user_id = user_id,
                                    .online_user = r->online.user,
                                    .online_counters = r->online.counters,
                                    .ids = ids,
                                    .n = n,
                                    .cache = r->items,
                                    .counters_cache = r->online.counters_cache,
                                    .now_s = now_s,
                                    .user = user,
                                    .items = items,
                                    .derived = derived,
                                    .found = found};
    int rc = cascade_stage_reads_run(redis, arena, &q);
    if (rc == 0)
        rc = cascade_stage_online_report(&r->online, redis, &q);
    if (rc != 0)
        return store_failure(redis, rc, "user and item records", err, errlen);
    return 0;
}

/* MMoE predictions into pred [n, CASCADE_RANK__N_TASKS] (TaskScores order;
 * tasks the model lacks stay 0), p_click calibrated for down-sampling. */
static int predict_mmoe(struct cascade_rank__model *m, const float *X, size_t n, float *pred,
                        cascade_arena *arena)
{
    size_t T = cascade_mmoe_config(m->mmoe)->n_tasks;
    float *out = cascade_arena_calloc(arena, n * T + 1, sizeof *out);
    cascade_mmoe_scratch *s = cascade_rank__scratch_take(m);
    int rc = CASCADE_ENOMEM;
    if (!out || !s)
        goto out;
    if ((rc = cascade_mmoe_predict(m->mmoe, s, X, n, out)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < CASCADE_RANK__N_TASKS; k++)
            if (m->task[k] >= 0)
                pred[i * CASCADE_RANK__N_TASKS + k] = out[i * T + (size_t)m->task[k]];
    if (m->neg_rate < 1)
        for (size_t i = 0; i < n; i++)
            pred[i * CASCADE_RANK__N_TASKS] =
                (float)cascade_calibrate_downsampled(pred[i * CASCADE_RANK__N_TASKS], m->neg_rate);
out:
    cascade_rank__scratch_give(m, s);
    return rc;
}

/* Room for n of what the item cache derives from each record (the item
 * part of the features), or NULL when it derives none. *nomem is set when
 * the arena is out of memory. */
static struct cascade_rank_item *rank_derived(const cascade_rank *r, cascade_arena *arena, size_t n,
                                              bool *nomem)
{
    struct cascade_rank_item *d = NULL;
    if (cascade_item_cache_derived_size(r->items) == sizeof *d)
        *nomem = !(d = cascade_arena_alloc(arena, (n + 1) * sizeof *d));
    return d;
}

/* The learned ranker's score of every candidate into score [n]. */
static int predict_ltr(const struct cascade_rank__model *m, cascade_arena *arena, int64_t now_s,
                       const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *items,
                       const struct cascade_rank_item *derived, const Cascade__V1__RankRequest *req,
                       float *score)
{
    size_t n = req->n_candidates;
    float *X = cascade_arena_alloc(arena, (n * CASCADE_LTR_FEATURES + 1) * sizeof *X);
    if (!X)
        return CASCADE_ENOMEM;
    struct cascade_rank_user u; /* the user's side, once for all candidates */
    cascade_rank_user_prepare(user, &u);
    for (size_t i = 0; i < n; i++)
        cascade_ltr_features_from(&u, &items[i], derived ? &derived[i] : NULL, req->candidates[i],
                                  now_s, X + i * CASCADE_LTR_FEATURES);
    cascade_gbdt_predict(m->ltr, X, n, score);
    return 0;
}

/* Predictions pred [n, CASCADE_RANK__N_TASKS] for every candidate: the model
 * the request is scored with (experiment param rank.model, else the configured
 * choice; LR: p_click only), else the smoothed CTR; f(duration) into
 * f_complete [n]. A learned ranker predicts no task: its score goes to
 * *ltr_score (else left NULL). Copies the version used into the arena and
 * counts the request under the kind used. */
static int rank_predict(cascade_rank *r, cascade_arena *arena, const Cascade__V1__RankRequest *req,
                        int64_t now_s, const cascade_v1_UserRecord *user,
                        const cascade_v1_ItemRecord *items, const struct cascade_rank_item *derived,
                        float *pred, float *f_complete, float **ltr_score, char **version)
{
    size_t n = req->n_candidates;
    struct cascade_rank__model *m =
        cascade_rank__model_acquire(r, cascade_exp_param(req->experiments, "rank.model"),
                                    cascade_exp_param(req->experiments, "rank.model_version"));
    int rc = 0;
    cascade_metric_inc(r->scored[m ? m->kind : CASCADE_RANK__N_KINDS]);
    *ltr_score = NULL;
    *version = cascade_arena_strdup(arena, m ? m->version : r->heuristic_version);
    if (!*version) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        f_complete[i] = (float)cascade_rank__complete_rate(m, items[i].duration_s);
    if (m && m->ltr && n > 0) {
        if (!(*ltr_score = cascade_arena_calloc(arena, n + 1, sizeof **ltr_score)))
            rc = CASCADE_ENOMEM;
        else
            rc = predict_ltr(m, arena, now_s, user, items, derived, req, *ltr_score);
    } else if (!m && r->heuristic_keep_order && n > 0) {
        /* No model: keep the order the candidates arrive in (the
         * pre-ranker's), which a CTR guess on data without impressions
         * would only scramble. */
        if (!(*ltr_score = cascade_arena_calloc(arena, n + 1, sizeof **ltr_score)))
            rc = CASCADE_ENOMEM;
        for (size_t i = 0; rc == 0 && i < n; i++)
            (*ltr_score)[i] = (float)(n - i);
    } else if (m && n > 0) {
        /* Not zeroed: each row is written whole. */
        float *X = cascade_arena_alloc(arena, (n * CASCADE_RANK_FEATURES + 1) * sizeof *X);
        float *p = cascade_arena_calloc(arena, n + 1, sizeof *p);
        if (!X || !p) {
            rc = CASCADE_ENOMEM;
            goto out;
        }
        struct cascade_rank_user u;
        cascade_rank_user_prepare(user, &u);
        for (size_t i = 0; i < n; i++)
            cascade_features_rank_from(&u, &items[i], derived ? &derived[i] : NULL, now_s,
                                       X + i * CASCADE_RANK_FEATURES);
        if (m->mmoe) {
            rc = predict_mmoe(m, X, n, pred, arena);
        } else {
            cascade_lr_predict(m->lr, X, n, p);
            for (size_t i = 0; i < n; i++)
                pred[i * CASCADE_RANK__N_TASKS] = p[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            double clicks = items[i].stats.clicks, imps = items[i].stats.impressions;
            double p = (clicks + r->prior_clicks) / (imps + r->prior_impressions);
            pred[i * CASCADE_RANK__N_TASKS] = (float)(p > 1 ? 1 : p);
        }
    }
out:
    cascade_rank__model_release(m);
    return rc;
}

static struct cascade_rank_fusion_params fusion_params(const cascade_rank *r,
                                                       const Cascade__V1__ExperimentContext *exp)
{
    struct cascade_rank_fusion_params p = r->fusion_params;
    p.w_click = cascade_exp_param_double(exp, "rank.fusion.weights.click", p.w_click);
    p.w_like = cascade_exp_param_double(exp, "rank.fusion.weights.like", p.w_like);
    p.w_collect = cascade_exp_param_double(exp, "rank.fusion.weights.collect", p.w_collect);
    p.w_share = cascade_exp_param_double(exp, "rank.fusion.weights.share", p.w_share);
    p.w_watch_time =
        cascade_exp_param_double(exp, "rank.fusion.weights.watch_time", p.w_watch_time);
    p.w_complete = cascade_exp_param_double(exp, "rank.fusion.weights.complete", p.w_complete);
    p.rank_alpha = cascade_exp_param_double(exp, "rank.fusion.rank_alpha", p.rank_alpha);
    p.rank_beta = cascade_exp_param_double(exp, "rank.fusion.rank_beta", p.rank_beta);
    return p;
}

/* Set tasks and attrs on every candidate; an embedding the caller sent along
 * in attrs is kept. */
static int rank_annotate(cascade_arena *arena, const Cascade__V1__RankRequest *req,
                         const cascade_v1_ItemRecord *items, const bool *found, const float *pred)
{
    for (size_t i = 0; i < req->n_candidates; i++) {
        Cascade__V1__Candidate *c = req->candidates[i];
        Cascade__V1__TaskScores *t = cascade_arena_alloc(arena, sizeof *t);
        Cascade__V1__ItemAttributes *a = cascade_arena_alloc(arena, sizeof *a);
        if (!t || !a)
            return CASCADE_ENOMEM;
        cascade__v1__task_scores__init(t);
        const float *v = pred + i * CASCADE_RANK__N_TASKS;
        t->p_click = isfinite(v[0]) ? v[0] : 0;
        t->p_like = isfinite(v[1]) ? v[1] : 0;
        t->p_collect = isfinite(v[2]) ? v[2] : 0;
        t->p_share = isfinite(v[3]) ? v[3] : 0;
        t->watch_time_s = isfinite(v[4]) ? v[4] : 0;
        t->p_complete = isfinite(v[5]) ? v[5] : 0;
        cascade__v1__item_attributes__init(a);
        if (c->attrs) {
            a->n_embedding = c->attrs->n_embedding;
            a->embedding = c->attrs->embedding;
        }
        if (found[i]) {
            a->author_id = items[i].author_id;
            a->category = items[i].category;
            a->created_at_s = items[i].created_at_s;
            a->media_type = items[i].media_type;
            a->duration_s = items[i].duration_s;
        }
        c->tasks = t;
        c->attrs = a;
    }
    return 0;
}

/* The formula of this request: experiment param rank.fusion.formula when it
 * names a known formula, else the configured one. */
static cascade_rank_fusion_fn fusion_formula(const cascade_rank *r,
                                             const Cascade__V1__ExperimentContext *exp)
{
    const char *name = exp ? cascade_exp_param(exp, "rank.fusion.formula") : NULL;
    cascade_rank_fusion_fn fn = name ? cascade_rank_fusion_find(name) : NULL;
    return fn ? fn : r->fusion;
}

/* Fuse (with p_complete / f(duration) when complete_adjust is on) or take
 * the learned ranker's score (ltr_score, when not NULL), then write the
 * sorted candidates to out[0..n). */
static int rank_fuse_sort(const cascade_rank *r, cascade_arena *arena,
                          const Cascade__V1__RankRequest *req, const float *f_complete,
                          const float *ltr_score, Cascade__V1__Candidate **out)
{
    size_t n = req->n_candidates;
    struct cascade_rank_fusion_params p = fusion_params(r, req->experiments);
    const Cascade__V1__TaskScores **tasks = cascade_arena_calloc(arena, n + 1, sizeof *tasks);
    Cascade__V1__TaskScores *adj = cascade_arena_calloc(arena, n + 1, sizeof *adj);
    float *fused = cascade_arena_calloc(arena, n + 1, sizeof *fused);
    if (!tasks || !fused || !adj)
        return CASCADE_ENOMEM;
    if (ltr_score) {
        memcpy(fused, ltr_score, n * sizeof *fused);
        goto sort;
    }
    for (size_t i = 0; i < n; i++) {
        tasks[i] = req->candidates[i]->tasks;
        if (r->complete_adjust) {
            adj[i] = *tasks[i];
            adj[i].p_complete = (float)(adj[i].p_complete / f_complete[i]);
            tasks[i] = &adj[i];
        }
    }
    int rc = fusion_formula(r, req->experiments)(&p, (const Cascade__V1__TaskScores *const *)tasks,
                                                 n, fused, arena);
    if (rc != 0)
        return rc;
sort:
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = req->candidates[i];
        c->rank_score = isfinite(fused[i]) ? fused[i] : 0;
        out[i] = c;
    }
    return cascade_request_sort_candidates(out, n, CASCADE_SCORE_RANK, arena);
}

/* The answer's candidates out[0..n) as scores only (RankRequest.scores_only):
 * item_id, tasks, rank_score and attrs without the embedding the caller sent. */
static int scores_only(cascade_arena *arena, Cascade__V1__Candidate **out, size_t n)
{
    Cascade__V1__Candidate *slim = cascade_arena_alloc(arena, (n + 1) * sizeof *slim);
    Cascade__V1__ItemAttributes *attrs = cascade_arena_alloc(arena, (n + 1) * sizeof *attrs);
    if (!slim || !attrs)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&slim[i]);
        slim[i].item_id = out[i]->item_id;
        slim[i].tasks = out[i]->tasks;
        slim[i].rank_score = out[i]->rank_score;
        if (out[i]->attrs) {
            attrs[i] = *out[i]->attrs;
            attrs[i].n_embedding = 0;
            attrs[i].embedding = NULL;
            slim[i].attrs = &attrs[i];
        }
        out[i] = &slim[i];
    }
    return 0;
}

/* The answer's candidates as columns (the request came as item_ids): ids,
 * rank scores, six task scores each and the attributes without embedding;
 * no candidates. CASCADE_ENOMEM when out of memory. */
static int answer_columns(cascade_arena *arena, Cascade__V1__RankResponse *resp)
{
    size_t n = resp->n_candidates;
    resp->scored_ids = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->scored_ids);
    resp->rank_scores = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->rank_scores);
    resp->task_scores =
        cascade_arena_alloc(arena, (n * CASCADE_RANK__N_TASKS + 1) * sizeof *resp->task_scores);
    resp->author_ids = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->author_ids);
    resp->categories = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->categories);
    resp->created_at_s = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->created_at_s);
    resp->media_types = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->media_types);
    resp->durations_s = cascade_arena_alloc(arena, (n + 1) * sizeof *resp->durations_s);
    if (!resp->scored_ids || !resp->rank_scores || !resp->task_scores || !resp->author_ids ||
        !resp->categories || !resp->created_at_s || !resp->media_types || !resp->durations_s)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        const Cascade__V1__TaskScores *t = c->tasks; /* rank_annotate set tasks and attrs */
        float *v = resp->task_scores + i * CASCADE_RANK__N_TASKS;
        resp->scored_ids[i] = c->item_id;
        resp->rank_scores[i] = c->rank_score;
        v[0] = t->p_click, v[1] = t->p_like, v[2] = t->p_collect, v[3] = t->p_share;
        v[4] = t->watch_time_s, v[5] = t->p_complete;
        resp->author_ids[i] = c->attrs->author_id;
        resp->categories[i] = c->attrs->category;
        resp->created_at_s[i] = c->attrs->created_at_s;
        resp->media_types[i] = c->attrs->media_type;
        resp->durations_s[i] = c->attrs->duration_s;
    }
    resp->n_scored_ids = resp->n_rank_scores = resp->n_author_ids = resp->n_categories = n;
    resp->n_created_at_s = resp->n_media_types = resp->n_durations_s = n;
    resp->n_task_scores = n * CASCADE_RANK__N_TASKS;
    resp->candidates = NULL;
    resp->n_candidates = 0;
    return 0;
}

int cascade_rank_run(cascade_rank *r, cascade_arena *arena, int64_t deadline_ms,
                     const Cascade__V1__RankRequest *sent, Cascade__V1__RankResponse **out,
                     char *err, size_t errlen)
{
    Cascade__V1__RankRequest copy;
    const Cascade__V1__RankRequest *req = sent;
    int rc = rank_view(r, arena, sent, &copy, &req, err, errlen);
    if (rc == 0)
        rc = rank_validate(r, arena, req, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = req->n_candidates;
    cascade_rank__maybe_reload(r);
    int64_t now_s = req->user->request_time_s > 0 ? req->user->request_time_s : cascade_wall_s();
    cascade_redis *redis = cascade_redis_pool_get(r->redis);
    cascade_redis_set_deadline(redis, deadline_ms);
    cascade_v1_UserRecord *user = cascade_arena_calloc(arena, 1, sizeof *user);
    /* Not zeroed: the reads write every record, and ids are filled below. */
    cascade_v1_ItemRecord *items = cascade_arena_alloc(arena, (n + 1) * sizeof *items);
    bool *found = cascade_arena_calloc(arena, n + 1, sizeof *found);
    uint64_t *ids = cascade_arena_alloc(arena, (n + 1) * sizeof *ids);
    float *pred = cascade_arena_calloc(arena, n * CASCADE_RANK__N_TASKS + 1, sizeof *pred);
    float *f_complete = cascade_arena_calloc(arena, n + 1, sizeof *f_complete);
    Cascade__V1__RankResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    Cascade__V1__Candidate **sorted = cascade_arena_calloc(arena, n + 1, sizeof *sorted);
    char *version = NULL;
    float *ltr_score = NULL;
    bool nomem = false;
    struct cascade_rank_item *derived = rank_derived(r, arena, n, &nomem);
    if (!redis || !user || !items || !found || !ids || !pred || !f_complete || !resp || !sorted ||
        nomem)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        ids[i] = req->candidates[i]->item_id;
    if ((rc = rank_fetch(r, redis, arena, req->user->user_id, ids, n, now_s, user, items, derived,
                         found, err, errlen)))
        return rc;
    if (cascade_now_ms() >= deadline_ms) {
        snprintf(err, errlen, "rank: deadline exceeded before scoring");
        return CASCADE_ETIMEDOUT;
    }
    if (rank_predict(r, arena, req, now_s, user, items, derived, pred, f_complete, &ltr_score,
                     &version) != 0 ||
        rank_annotate(arena, req, items, found, pred) != 0 ||
        rank_fuse_sort(r, arena, req, f_complete, ltr_score, sorted) != 0)
        goto nomem;
    cascade__v1__rank_response__init(resp);
    resp->candidates = sorted;
    resp->n_candidates = req->keep != 0 && req->keep < n ? req->keep : n;
    resp->model_version = version;
    if (req != sent ? answer_columns(arena, resp) != 0
                    : req->scores_only && scores_only(arena, sorted, resp->n_candidates) != 0)
        goto nomem;
    *out = resp;
    return 0;
nomem:
    snprintf(err, errlen, "rank: out of request memory");
    return CASCADE_ENOMEM;
}

int cascade_rank_features(cascade_rank *r, cascade_arena *arena, int64_t deadline_ms,
                          const char *user_id, const uint64_t *ids, size_t n, int64_t now_s,
                          float *out, char *err, size_t errlen)
{
    cascade_redis *redis = cascade_redis_pool_get(r->redis);
    cascade_v1_UserRecord *user = cascade_arena_calloc(arena, 1, sizeof *user);
    cascade_v1_ItemRecord *items = cascade_arena_calloc(arena, n + 1, sizeof *items);
    bool *found = cascade_arena_calloc(arena, n + 1, sizeof *found);
    if (!redis || !user || !items || !found) {
        snprintf(err, errlen, "rank: out of request memory");
        return CASCADE_ENOMEM;
    }
    cascade_redis_set_deadline(redis, deadline_ms);
    int rc =
        rank_fetch(r, redis, arena, user_id, ids, n, now_s, user, items, NULL, found, err, errlen);
    struct cascade_rank_user u;
    cascade_rank_user_prepare(user, &u);
    for (size_t i = 0; rc == 0 && i < n; i++)
        cascade_features_rank_for(&u, &items[i], now_s, out + i * CASCADE_RANK_FEATURES);
    return rc;
}

/* ------------------------------------------------------------------ rpc */

int cascade_rank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                        ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__RankResponse *resp = NULL;
    int rc = cascade_rank_run(service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
                              (const Cascade__V1__RankRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

const struct cascade_rpc_method *cascade_rank_methods(size_t *n)
{
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.Rank/Score", &cascade__v1__rank_request__descriptor,
         &cascade__v1__rank_response__descriptor, cascade_rank_handle},
    };
    *n = sizeof methods / sizeof methods[0];
    return methods;
}
