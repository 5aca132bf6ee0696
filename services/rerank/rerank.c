/* Re-rank stage: request validation and MMR selection (greedy, keeping each
 * remaining item's max similarity to the selected set up to date, so a pick
 * costs O(n) similarity evaluations). */
#include "rerank.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "experiments.h"
#include "item_vectors.h"
#include "request.h"
#include "rerank_internal.h"

/* The stage's numeric parameters, each a config key and an experiment
 * param of the same name (the table below). */
struct rerank_numbers {
    double lambda, sim_category, sim_author, sim_embedding;
    double dpp_theta, dpp_window;
    double scatter_window, scatter_category, scatter_author, scatter_distance, scatter_steps;
};

struct rerank_param {
    const char *key;
    size_t offset;
    double def, lo, hi;
    bool integer;
};

#define RP(key, field, def, lo, hi, integer)                                                       \
    {                                                                                              \
        key, offsetof(struct rerank_numbers, field), def, lo, hi, integer                          \
    }
static const struct rerank_param params[] = {
    RP("rerank.lambda", lambda, 0.7, 0, 1, false),
    RP("rerank.sim.category", sim_category, 0.7, 0, 1e6, false),
    RP("rerank.sim.author", sim_author, 0.3, 0, 1e6, false),
    RP("rerank.sim.embedding", sim_embedding, 1.0, 0, 1e6, false),
    RP("rerank.dpp.theta", dpp_theta, 0.7, 0, 1, false),
    RP("rerank.dpp.window", dpp_window, 0, 0, 1000, true),
    RP("rerank.scatter.window", scatter_window, 0, 0, 1000, true),
    RP("rerank.scatter.max_per_category", scatter_category, 0, 0, 1000, true),
    RP("rerank.scatter.max_per_author", scatter_author, 0, 0, 1000, true),
    RP("rerank.scatter.author_min_distance", scatter_distance, 0, 0, 1000, true),
    RP("rerank.scatter.max_steps", scatter_steps, 1000000, 1, 1e9, true),
};
#define N_PARAMS (sizeof params / sizeof params[0])

enum rerank_method { RERANK_MMR, RERANK_DPP };

struct cascade_rerank {
    struct rerank_numbers num; /* config values (experiment params override) */
    enum rerank_method method;
    size_t max_candidates;
    uint32_t max_count;
    cascade_rerank_vectors *vectors; /* NULL = candidates' own embeddings only */
};

static double *num_field(struct rerank_numbers *n, const struct rerank_param *p)
{
    return (double *)((char *)n + p->offset);
}

/* ------------------------------------------------------------------ lifecycle */

static int parse_method(const char *text, enum rerank_method *m)
{
    if (strcmp(text, "mmr") == 0)
        *m = RERANK_MMR;
    else if (strcmp(text, "dpp") == 0)
        *m = RERANK_DPP;
    else
        return CASCADE_EINVAL;
    return 0;
}

static int rerank_read_config(cascade_rerank *r, const cascade_config *cfg, char *err,
                              size_t errlen)
{
    int64_t v;
    int rc;
    const char *method;
    for (size_t i = 0; i < N_PARAMS; i++) {
        const struct rerank_param *p = &params[i];
        if (p->integer) {
            rc = cascade_config_int(cfg, p->key, (int64_t)p->def, (int64_t)p->lo, (int64_t)p->hi,
                                    &v, err, errlen);
            *num_field(&r->num, p) = (double)v;
        } else {
            rc = cascade_config_double(cfg, p->key, p->def, p->lo, p->hi, num_field(&r->num, p),
                                       err, errlen);
        }
        if (rc)
            return rc;
    }
    if ((rc = cascade_config_string(cfg, "rerank.method", "mmr", &method, err, errlen)))
        return rc;
    if (parse_method(method, &r->method) != 0) {
        snprintf(err, errlen, "%s: rerank.method: expected \"mmr\" or \"dpp\", got \"%.32s\"",
                 cascade_config_source(cfg), method);
        return CASCADE_EINVAL;
    }
    if ((rc = cascade_config_int(cfg, "rerank.max_candidates", 5000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_candidates = (size_t)v;
    if ((rc = cascade_config_int(cfg, "rerank.max_count", 1000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_count = (uint32_t)v;
    return 0;
}

/* The item vectors from rerank.item_vectors.* (model_dir defaults to the
 * service's); none when disabled or no directory is known. */
static int rerank_open_vectors(cascade_rerank *r, const cascade_config *cfg, const char *model_dir,
                               char *err, size_t errlen)
{
    bool enabled;
    const char *dir;
    int64_t reload_ms;
    int rc;
    if ((rc = cascade_config_bool(cfg, "rerank.item_vectors.enabled", true, &enabled, err,
                                  errlen)) ||
        (rc = cascade_config_string(cfg, "rerank.item_vectors.model_dir",
                                    model_dir ? model_dir : "", &dir, err, errlen)) ||
        (rc = cascade_config_int(cfg, "rerank.item_vectors.reload_ms", 1000, 0, 86400000,
                                 &reload_ms, err, errlen)))
        return rc;
    if (!enabled || !dir[0])
        return 0;
    if (strlen(dir) >= 500) {
        snprintf(err, errlen, "rerank.item_vectors.model_dir: longer than 499 characters");
        return CASCADE_EINVAL;
    }
    if (!(r->vectors = cascade_rerank_vectors_create(dir, reload_ms))) {
        snprintf(err, errlen, "rerank: out of memory");
        return CASCADE_ENOMEM;
    }
    return 0;
}

cascade_rerank *cascade_rerank_create_dir(const cascade_config *cfg, const char *model_dir,
                                          char *err, size_t errlen)
{
    cascade_rerank *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "rerank: out of memory");
        goto fail;
    }
    if (rerank_read_config(r, cfg, err, errlen) != 0 ||
        rerank_open_vectors(r, cfg, model_dir, err, errlen) != 0)
        goto fail;
    return r;
fail:
    cascade_rerank_destroy(r);
    return NULL;
}

cascade_rerank *cascade_rerank_create(const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_rerank_create_dir(cfg, NULL, err, errlen);
}

void cascade_rerank_destroy(cascade_rerank *r)
{
    if (!r)
        return;
    cascade_rerank_vectors_destroy(r->vectors);
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

void cascade_rerank__normalise(const struct cascade_mmr_item *items, size_t n, double *rel)
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

/* 1/‖embedding‖ per item (0 = no usable embedding), so that MMR's cosines
 * cost one dot product each. */
static void inverse_norms(const struct cascade_mmr_item *items, size_t n, float *inv)
{
    for (size_t i = 0; i < n; i++) {
        const struct cascade_mmr_item *it = &items[i];
        if (!it->embedding || it->dim == 0)
            continue;
        double norm = cblas_sdot((int)it->dim, it->embedding, 1, it->embedding, 1);
        inv[i] = norm > 0 && isfinite(norm) ? (float)(1.0 / sqrt(norm)) : 0.0f;
    }
}

/* cascade_rerank_similarity of items i and j with the norms precomputed. */
static double mmr_similarity(const struct cascade_mmr_opts *o, const struct cascade_mmr_item *items,
                             const float *inv, size_t i, size_t j)
{
    const struct cascade_mmr_item *a = &items[i], *b = &items[j];
    double s = 0;
    if (a->category != 0 && a->category == b->category)
        s += o->sim_category;
    if (a->author_id != 0 && a->author_id == b->author_id)
        s += o->sim_author;
    if (inv[i] > 0 && inv[j] > 0 && a->dim == b->dim) {
        double c =
            (double)cblas_sdot((int)a->dim, a->embedding, 1, b->embedding, 1) * inv[i] * inv[j];
        s += o->sim_embedding * (isfinite(c) ? c : 0);
    }
    return s;
}

int cascade_rerank_mmr(const struct cascade_mmr_item *items, size_t n, size_t count,
                       const struct cascade_mmr_opts *opts, cascade_arena *arena,
                       int64_t deadline_ms, size_t *order, float *values, size_t *n_out)
{
    double lambda = opts->lambda;
    double *rel = cascade_arena_calloc(arena, n + 1, sizeof *rel);
    double *maxsim = cascade_arena_calloc(arena, n + 1, sizeof *maxsim);
    bool *taken = cascade_arena_calloc(arena, n + 1, sizeof *taken);
    float *inv_norm = cascade_arena_calloc(arena, n + 1, sizeof *inv_norm);
    *n_out = 0;
    if (!rel || !maxsim || !taken || !inv_norm)
        return CASCADE_ENOMEM;
    inverse_norms(items, n, inv_norm);
    cascade_rerank__normalise(items, n, rel);
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
            double s = mmr_similarity(opts, items, inv_norm, i, best);
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

/* The request's parameters: config values, each overridden by an
 * experiment param of the same key. */
struct rerank_request_opts {
    enum rerank_method method;
    struct cascade_mmr_opts mmr;
    struct cascade_dpp_opts dpp;
    struct cascade_scatter_rules scatter;
};

static int rerank_opts(const cascade_rerank *r, const Cascade__V1__ReRankRequest *req,
                       struct rerank_request_opts *o, char *err, size_t errlen)
{
    struct rerank_numbers num = r->num;
    for (size_t i = 0; i < N_PARAMS; i++) {
        const struct rerank_param *p = &params[i];
        const char *text = cascade_exp_param(req->experiments, p->key);
        if (!text || !*text)
            continue;
        char *end;
        double v = strtod(text, &end);
        if (*end || !(v >= p->lo && v <= p->hi) || (p->integer && v != floor(v))) {
            snprintf(err, errlen, "experiment param %s=%.32s out of range [%g, %g]%s", p->key, text,
                     p->lo, p->hi, p->integer ? " (an integer)" : "");
            return CASCADE_EINVAL;
        }
        *num_field(&num, p) = v;
    }
    o->method = r->method;
    const char *method = cascade_exp_param(req->experiments, "rerank.method");
    if (method && *method && parse_method(method, &o->method) != 0) {
        snprintf(err, errlen, "experiment param rerank.method=%.32s: expected mmr or dpp", method);
        return CASCADE_EINVAL;
    }
    o->mmr = (struct cascade_mmr_opts){.lambda = num.lambda,
                                       .sim_category = num.sim_category,
                                       .sim_author = num.sim_author,
                                       .sim_embedding = num.sim_embedding};
    o->dpp = (struct cascade_dpp_opts){.theta = num.dpp_theta,
                                       .window = (size_t)num.dpp_window,
                                       .sim_category = num.sim_category,
                                       .sim_author = num.sim_author,
                                       .sim_embedding = num.sim_embedding};
    o->scatter = (struct cascade_scatter_rules){.window = (size_t)num.scatter_window,
                                                .max_per_category = (size_t)num.scatter_category,
                                                .max_per_author = (size_t)num.scatter_author,
                                                .author_min_distance = (size_t)num.scatter_distance,
                                                .max_steps = (size_t)num.scatter_steps};
    return 0;
}

/* A candidate as the selection sees it; its embedding is its own when it
 * carries one, else the published item vector (borrowed from vecs). */
static void mmr_item_from(const Cascade__V1__Candidate *c, const struct cascade_rerank_vecset *vecs,
                          struct cascade_mmr_item *it)
{
    memset(it, 0, sizeof *it);
    it->relevance = c->rank_score;
    if (c->attrs) {
        it->category = c->attrs->category;
        it->author_id = c->attrs->author_id;
        it->embedding = c->attrs->n_embedding ? c->attrs->embedding : NULL;
        it->dim = c->attrs->n_embedding;
    }
    if (!it->embedding && vecs)
        it->embedding = cascade_rerank_vectors_find(vecs, c->item_id, &it->dim);
}

/* The scatter rules over the selection: the preference order is the
 * selection, then the other candidates in ranked (request) order. Picks
 * keep their selection values; an item the repair brings in from outside
 * the selection has none and carries 0. */
static int apply_scatter(const struct cascade_mmr_item *items, size_t n, size_t count,
                         const struct cascade_scatter_rules *rules, cascade_arena *arena,
                         int64_t deadline_ms, size_t *order, float *values, size_t *picked)
{
    size_t *pref = cascade_arena_calloc(arena, n + 1, sizeof *pref);
    size_t *out = cascade_arena_calloc(arena, count + 1, sizeof *out);
    float *val_of = cascade_arena_calloc(arena, n + 1, sizeof *val_of);
    bool *in = cascade_arena_calloc(arena, n + 1, sizeof *in);
    size_t n_pref = 0, n_out = 0;
    int satisfied;
    if (!pref || !out || !val_of || !in)
        return CASCADE_ENOMEM;
    for (size_t t = 0; t < *picked; t++) {
        pref[n_pref++] = order[t];
        in[order[t]] = true;
        val_of[order[t]] = values[t];
    }
    for (size_t i = 0; i < n; i++)
        if (!in[i])
            pref[n_pref++] = i;
    int rc = cascade_rerank_scatter(items, n, pref, n_pref, count, rules, arena, deadline_ms, out,
                                    &n_out, &satisfied);
    if (rc != 0)
        return rc;
    for (size_t t = 0; t < n_out; t++) {
        order[t] = out[t];
        values[t] = val_of[out[t]];
    }
    *picked = n_out;
    return 0;
}

/* Select with the request's method, then apply the scatter rules. */
static int rerank_select(const struct rerank_request_opts *o, const struct cascade_mmr_item *items,
                         size_t n, size_t count, cascade_arena *arena, int64_t deadline_ms,
                         size_t *order, float *values, size_t *picked)
{
    int rc = o->method == RERANK_DPP ? cascade_rerank_dpp(items, n, count, &o->dpp, arena,
                                                          deadline_ms, order, values, picked)
                                     : cascade_rerank_mmr(items, n, count, &o->mmr, arena,
                                                          deadline_ms, order, values, picked);
    if (rc != 0 || !cascade_scatter_active(&o->scatter))
        return rc;
    return apply_scatter(items, n, count < n ? count : n, &o->scatter, arena, deadline_ms, order,
                         values, picked);
}

int cascade_rerank_run(cascade_rerank *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__ReRankRequest *req, Cascade__V1__ReRankResponse **out,
                       char *err, size_t errlen)
{
    struct rerank_request_opts o;
    const struct cascade_rerank_vecset *vecs = NULL;
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
    if (!items || !order || !values || !resp || !cands) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    vecs = cascade_rerank_vectors_acquire(r->vectors);
    for (size_t i = 0; i < n; i++)
        mmr_item_from(req->candidates[i], vecs, &items[i]);
    rc = rerank_select(&o, items, n, req->count, arena, deadline_ms, order, values, &picked);
    if (rc != 0)
        goto out;
    for (size_t t = 0; t < picked; t++) {
        cands[t] = req->candidates[order[t]];
        cands[t]->rerank_score = values[t];
    }
    cascade__v1__re_rank_response__init(resp);
    resp->candidates = cands;
    resp->n_candidates = picked;
    *out = resp;
out:
    cascade_rerank_vectors_release(r->vectors, vecs);
    if (rc == CASCADE_ETIMEDOUT)
        snprintf(err, errlen, "rerank: deadline exceeded after %zu of %u picks%s", picked,
                 req->count, picked == req->count || picked == n ? " (in the scatter rules)" : "");
    else if (rc != 0)
        snprintf(err, errlen, "rerank: out of request memory");
    return rc;
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
