/* Re-rank stage: request validation and MMR selection (greedy, keeping each
 * remaining item's max similarity to the selected set up to date, so a pick
 * costs O(n) similarity evaluations). */
#include "rerank.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "experiments.h"
#include "request.h"

struct cascade_rerank {
    struct cascade_mmr_opts mmr; /* lambda here is the config default */
    size_t max_candidates;
    uint32_t max_count;
};

/* ------------------------------------------------------------------ lifecycle */

static int rerank_read_config(cascade_rerank *r, const cascade_config *cfg, char *err,
                              size_t errlen)
{
    int64_t v;
    int rc;
    if ((rc =
             cascade_config_double(cfg, "rerank.lambda", 0.7, 0, 1, &r->mmr.lambda, err, errlen)) ||
        (rc = cascade_config_double(cfg, "rerank.sim.category", 0.7, 0, 1e6, &r->mmr.sim_category,
                                    err, errlen)) ||
        (rc = cascade_config_double(cfg, "rerank.sim.author", 0.3, 0, 1e6, &r->mmr.sim_author, err,
                                    errlen)) ||
        (rc = cascade_config_double(cfg, "rerank.sim.embedding", 1.0, 0, 1e6, &r->mmr.sim_embedding,
                                    err, errlen)))
        return rc;
    if ((rc = cascade_config_int(cfg, "rerank.max_candidates", 5000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_candidates = (size_t)v;
    if ((rc = cascade_config_int(cfg, "rerank.max_count", 1000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_count = (uint32_t)v;
    return 0;
}

cascade_rerank *cascade_rerank_create(const cascade_config *cfg, char *err, size_t errlen)
{
    cascade_rerank *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "rerank: out of memory");
        goto fail;
    }
    if (rerank_read_config(r, cfg, err, errlen) != 0)
        goto fail;
    return r;
fail:
    free(r);
    return NULL;
}

void cascade_rerank_destroy(cascade_rerank *r)
{
    free(r);
}

/* ------------------------------------------------------------------ MMR */

static double cosine(const float *a, const float *b, size_t dim)
{
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < dim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (na <= 0 || nb <= 0)
        return 0;
    double c = dot / sqrt(na * nb);
    return isfinite(c) ? c : 0;
}

double cascade_rerank_similarity(const struct cascade_mmr_opts *o, const struct cascade_mmr_item *a,
                                 const struct cascade_mmr_item *b)
{
    double s = 0;
    if (a->category != 0 && a->category == b->category)
        s += o->sim_category;
    if (a->author_id != 0 && a->author_id == b->author_id)
        s += o->sim_author;
    if (a->embedding && b->embedding && a->dim > 0 && a->dim == b->dim)
        s += o->sim_embedding * cosine(a->embedding, b->embedding, a->dim);
    return s;
}

/* rel[i] = (x_i − min) / (max − min); all 1 when every score is equal.
 * Non-finite scores count as the minimum. */
static void normalise(const struct cascade_mmr_item *items, size_t n, double *rel)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double x = items[i].relevance;
        if (isfinite(x)) {
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
    }
    for (size_t i = 0; i < n; i++) {
        double x = items[i].relevance;
        if (!(hi > lo))
            rel[i] = 1.0;
        else
            rel[i] = isfinite(x) ? (x - lo) / (hi - lo) : 0.0;
    }
}

int cascade_rerank_mmr(const struct cascade_mmr_item *items, size_t n, size_t count,
                       const struct cascade_mmr_opts *opts, cascade_arena *arena,
                       int64_t deadline_ms, size_t *order, float *values, size_t *n_out)
{
    double lambda = opts->lambda;
    double *rel = cascade_arena_calloc(arena, n + 1, sizeof *rel);
    double *maxsim = cascade_arena_calloc(arena, n + 1, sizeof *maxsim);
    bool *taken = cascade_arena_calloc(arena, n + 1, sizeof *taken);
    *n_out = 0;
    if (!rel || !maxsim || !taken)
        return CASCADE_ENOMEM;
    normalise(items, n, rel);
    if (count > n)
        count = n;
    for (size_t t = 0; t < count; t++) {
        if (t % 16 == 15 && cascade_now_ms() >= deadline_ms)
            return CASCADE_ETIMEDOUT;
        size_t best = n;
        double best_v = 0;
        for (size_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            /* max over the empty set is taken as 0 for the first pick */
            double v = lambda * rel[i] - (1.0 - lambda) * (t == 0 ? 0.0 : maxsim[i]);
            if (best == n || v > best_v) {
                best = i;
                best_v = v;
            }
        }
        taken[best] = true;
        order[t] = best;
        values[t] = (float)best_v;
        *n_out = t + 1;
        for (size_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            double s = cascade_rerank_similarity(opts, &items[i], &items[best]);
            if (t == 0 || s > maxsim[i])
                maxsim[i] = s;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ request */

static int rerank_validate(const cascade_rerank *r, const Cascade__V1__ReRankRequest *req,
                           char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    if (rc != 0)
        return rc;
    if (req->count < 1 || req->count > r->max_count) {
        snprintf(err, errlen, "count %u out of range 1..%u", req->count, r->max_count);
        return CASCADE_EINVAL;
    }
    return cascade_request_check_candidates(req->candidates, req->n_candidates, r->max_candidates,
                                            err, errlen);
}

/* The request's MMR parameters: config defaults, λ from the experiment. */
static int rerank_opts(const cascade_rerank *r, const Cascade__V1__ReRankRequest *req,
                       struct cascade_mmr_opts *o, char *err, size_t errlen)
{
    *o = r->mmr;
    o->lambda = cascade_exp_param_double(req->experiments, "rerank.lambda", r->mmr.lambda);
    if (!(o->lambda >= 0 && o->lambda <= 1)) {
        snprintf(err, errlen, "experiment param rerank.lambda=%g out of range [0, 1]", o->lambda);
        return CASCADE_EINVAL;
    }
    return 0;
}

static void mmr_item_from(const Cascade__V1__Candidate *c, struct cascade_mmr_item *it)
{
    memset(it, 0, sizeof *it);
    it->relevance = c->rank_score;
    if (c->attrs) {
        it->category = c->attrs->category;
        it->author_id = c->attrs->author_id;
        it->embedding = c->attrs->n_embedding ? c->attrs->embedding : NULL;
        it->dim = c->attrs->n_embedding;
    }
}

int cascade_rerank_run(cascade_rerank *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__ReRankRequest *req, Cascade__V1__ReRankResponse **out,
                       char *err, size_t errlen)
{
    struct cascade_mmr_opts o;
    size_t n = req->n_candidates, picked = 0;
    int rc = rerank_validate(r, req, err, errlen);
    if (rc == 0)
        rc = rerank_opts(r, req, &o, err, errlen);
    if (rc != 0)
        return rc;
    struct cascade_mmr_item *items = cascade_arena_calloc(arena, n + 1, sizeof *items);
    size_t *order = cascade_arena_calloc(arena, n + 1, sizeof *order);
    float *values = cascade_arena_calloc(arena, n + 1, sizeof *values);
    Cascade__V1__ReRankResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    Cascade__V1__Candidate **cands = cascade_arena_calloc(arena, n + 1, sizeof *cands);
    if (!items || !order || !values || !resp || !cands)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        mmr_item_from(req->candidates[i], &items[i]);
    rc = cascade_rerank_mmr(items, n, req->count, &o, arena, deadline_ms, order, values, &picked);
    if (rc == CASCADE_ETIMEDOUT) {
        snprintf(err, errlen, "rerank: deadline exceeded after %zu of %u picks", picked,
                 req->count);
        return rc;
    }
    if (rc != 0)
        goto nomem;
    for (size_t t = 0; t < picked; t++) {
        cands[t] = req->candidates[order[t]];
        cands[t]->rerank_score = values[t];
    }
    cascade__v1__re_rank_response__init(resp);
    resp->candidates = cands;
    resp->n_candidates = picked;
    *out = resp;
    return 0;
nomem:
    snprintf(err, errlen, "rerank: out of request memory");
    return CASCADE_ENOMEM;
}

/* ------------------------------------------------------------------ rpc */

int cascade_rerank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__ReRankResponse *resp = NULL;
    int rc =
        cascade_rerank_run(service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
                           (const Cascade__V1__ReRankRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

const struct cascade_rpc_method *cascade_rerank_methods(size_t *n)
{
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.ReRank/ReRank", &cascade__v1__re_rank_request__descriptor,
         &cascade__v1__re_rank_response__descriptor, cascade_rerank_handle},
    };
    *n = sizeof methods / sizeof methods[0];
    return methods;
}
