/* Swing neighbour lists. For each item i the sampled users S ⊆ U_i are
 * numbered 0..m-1 and every item j they touched gets the list L_j of those
 * users who have it. One pass over the L_j counts |I_u ∩ I_v| for every pair
 * of S (i itself is in every list, so each pair counts at least 1); a second
 * pass sums w_u·w_v / (α + |I_u ∩ I_v|) over the pairs of each L_j. Cost per
 * item is Σ_j |L_j|², bounded by the two caps; memory is O(items + cap²) per
 * thread. */
#include "swing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_acc.h"
#include "cf_index.h"
#include "cf_run.h"
#include "clock.h"
#include "error.h"

#define MAX_K 200          /* NeighbourList bound in records.options */
#define MAX_USERS_CAP 2000 /* local user numbers fit in uint16_t; cap² counters per thread */

void cascade_swing_defaults(struct cascade_swing_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->alpha = 1.0;
    o->alpha1 = 5.0;
    o->beta = 0.3;
    o->max_users_per_item = 100;
    o->max_items_per_user = 200;
    o->top_k = 100;
    o->seed = 1;
    o->threads = 2;
    cascade_behaviour_weights_default(&o->weights);
}

struct swing_ctx {
    const cascade_dataset *ds;
    const struct cascade_cf_index *x;
    const double *wu; /* (|I_u| + α₁)^−β per user */
    double alpha;
    size_t cap;         /* users per item */
    size_t max_members; /* largest Σ_{u∈S_i} |I_u| over the items */
    struct cascade_cf_lists *res;
};

struct swing_scratch {
    /* The items reached from the sampled users (acc.touched), each with the
     * length of its L_j (acc.count, then a fill cursor); the candidates. */
    struct cascade_cf_acc acc;
    uint32_t *off;     /* L_j of touched[t] is members[off[t] .. off[t+1]) */
    uint16_t *members; /* local user numbers, ascending within each L_j */
    uint32_t *inter;   /* inter[a*cap + b], a < b: |I_u ∩ I_v| */
};

static void scratch_destroy(void *p)
{
    struct swing_scratch *s = p;
    if (!s)
        return;
    cascade_cf_acc_free(&s->acc);
    free(s->off);
    free(s->members);
    free(s->inter);
    free(s);
}

static void *scratch_create(void *p)
{
    const struct swing_ctx *c = p;
    size_t n = c->x->n_items;
    struct swing_scratch *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    int rc = cascade_cf_acc_init(&s->acc, n);
    s->off = malloc((n + 2) * sizeof(uint32_t));
    s->members = malloc((c->max_members + 1) * sizeof(uint16_t));
    s->inter = calloc(c->cap * c->cap, sizeof(uint32_t));
    if (rc != 0 || !s->off || !s->members || !s->inter) {
        scratch_destroy(s);
        return NULL;
    }
    return s;
}

/* Build L_j for every item j touched by the sampled users S (m of them);
 * members has room for Σ_{u∈S} |I_u| (ctx->max_members). Returns the number
 * of touched items. */
static size_t gather_lists(const struct cascade_cf_index *x, struct swing_scratch *s,
                           const uint32_t *S, size_t m)
{
    struct cascade_cf_acc *acc = &s->acc;
    for (size_t a = 0; a < m; a++)
        for (size_t b = x->uoff[S[a]]; b < x->uoff[S[a] + 1]; b++)
            acc->count[cascade_cf_acc_touch(acc, x->uitem[b])]++;
    size_t nt = acc->n;
    s->off[0] = 0;
    for (size_t t = 0; t < nt; t++) { /* lengths into offsets; count becomes the fill cursor */
        s->off[t + 1] = s->off[t] + acc->count[t];
        acc->count[t] = s->off[t];
    }
    for (size_t a = 0; a < m; a++)
        for (size_t b = x->uoff[S[a]]; b < x->uoff[S[a] + 1]; b++)
            s->members[acc->count[acc->slot[x->uitem[b]]]++] = (uint16_t)a;
    return nt;
}

/* inter[a][b] = number of touched items both a and b have. */
static size_t count_intersections(struct swing_scratch *s, size_t nt, size_t cap)
{
    size_t pairs = 0;
    for (size_t t = 0; t < nt; t++) {
        const uint16_t *L = s->members + s->off[t];
        size_t len = s->off[t + 1] - s->off[t];
        for (size_t p = 0; p + 1 < len; p++)
            for (size_t q = p + 1; q < len; q++)
                s->inter[L[p] * cap + L[q]]++;
        pairs += len * (len - 1) / 2;
    }
    return pairs;
}

/* Score every touched j != i from the pairs of L_j into cand; returns the
 * number of candidates. */
static size_t score_items(const struct swing_ctx *c, struct swing_scratch *s, size_t nt, size_t i,
                          const uint32_t *S, size_t m)
{
    double w[MAX_USERS_CAP];
    size_t nc = 0;
    for (size_t a = 0; a < m; a++)
        w[a] = c->wu[S[a]];
    for (size_t t = 0; t < nt; t++) {
        uint32_t j = s->acc.touched[t];
        size_t len = s->off[t + 1] - s->off[t];
        if (j == i || len < 2)
            continue;
        const uint16_t *L = s->members + s->off[t];
        double sim = 0;
        for (size_t p = 0; p + 1 < len; p++) {
            const uint32_t *row = s->inter + (size_t)L[p] * c->cap;
            for (size_t q = p + 1; q < len; q++)
                sim += w[L[p]] * w[L[q]] / (c->alpha + row[L[q]]);
        }
        s->acc.cand[nc++] =
            (struct cascade_scored){.score = sim, .id = c->ds->items[j].id, .idx = j};
    }
    return nc;
}

static void reset(struct swing_scratch *s, size_t m, size_t cap)
{
    cascade_cf_acc_reset(&s->acc);
    for (size_t a = 0; a + 1 < m; a++)
        memset(s->inter + a * cap + a + 1, 0, (m - a - 1) * sizeof(uint32_t));
}

static size_t swing_row(void *p, void *sp, size_t i)
{
    const struct swing_ctx *c = p;
    const struct cascade_cf_index *x = c->x;
    struct swing_scratch *s = sp;
    const uint32_t *S = x->suser + x->soff[i];
    size_t m = cascade_cf_sample_len(x, i);
    if (m < 2) {
        c->res->count[i] = 0; /* no pair of users: no neighbours */
        return 0;
    }
    size_t nt = gather_lists(x, s, S, m);
    size_t pairs = count_intersections(s, nt, c->cap);
    size_t nc = score_items(c, s, nt, i, S, m);
    cascade_cf_lists_set_row(c->res, i, s->acc.cand, nc);
    reset(s, m, c->cap);
    return pairs;
}

static int check_opts(const struct cascade_swing_opts *o, char *err, size_t errlen)
{
    if (o->top_k == 0 || o->top_k > MAX_K) {
        snprintf(err, errlen, "swing: top-k must be in [1, %d], got %zu", MAX_K, o->top_k);
        return CASCADE_EINVAL;
    }
    if (o->max_users_per_item < 2 || o->max_users_per_item > MAX_USERS_CAP) {
        snprintf(err, errlen, "swing: users per item must be in [2, %d], got %zu", MAX_USERS_CAP,
                 o->max_users_per_item);
        return CASCADE_EINVAL;
    }
    if (!(o->alpha >= 0) || !(o->alpha1 >= 0) || !(o->beta >= 0) || !isfinite(o->alpha) ||
        !isfinite(o->alpha1) || !isfinite(o->beta)) {
        snprintf(err, errlen, "swing: alpha, alpha1 and beta must be finite and >= 0");
        return CASCADE_EINVAL;
    }
    return 0;
}

/* The most list entries one item's sampled users bring (sizes the scratch). */
static size_t max_members(const struct cascade_cf_index *x)
{
    size_t best = 0;
    for (size_t i = 0; i < x->n_items; i++) {
        size_t sum = 0;
        for (size_t a = x->soff[i]; a < x->soff[i + 1]; a++)
            sum += cascade_cf_user_len(x, x->suser[a]);
        if (sum > best)
            best = sum;
    }
    return best;
}

static double *user_weights(const struct cascade_cf_index *x, double alpha1, double beta)
{
    double *wu = malloc((x->n_users + 1) * sizeof(double));
    if (!wu)
        return NULL;
    for (size_t u = 0; u < x->n_users; u++) {
        double base = (double)cascade_cf_user_len(x, u) + alpha1;
        wu[u] = base > 0 ? pow(base, -beta) : 0;
    }
    return wu;
}

int cascade_swing_compute(const cascade_dataset *ds, const struct cascade_swing_opts *o,
                          struct cascade_cf_lists *res, char *err, size_t errlen)
{
    struct cascade_cf_index x = {0};
    struct cascade_cf_index_opts xo = {.weights = &o->weights,
                                       .max_items_per_user = o->max_items_per_user,
                                       .max_users_per_item = o->max_users_per_item,
                                       .seed = o->seed};
    double *wu = NULL;
    struct swing_ctx ctx = {
        .ds = ds, .x = &x, .alpha = o->alpha, .cap = o->max_users_per_item, .res = res};
    struct cascade_cf_job job = {.name = "swing",
                                 .what = "items",
                                 .rows = ds->n_items,
                                 .threads = o->threads,
                                 .quiet = o->quiet,
                                 .ctx = &ctx,
                                 .scratch_create = scratch_create,
                                 .scratch_destroy = scratch_destroy,
                                 .row = swing_row};
    int64_t start_us = cascade_now_us();
    memset(res, 0, sizeof(*res));
    int rc = check_opts(o, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = cascade_cf_lists_alloc(res, ds->n_items, o->top_k)) == 0 &&
        (rc = cascade_cf_index_build(ds, &xo, &x)) == 0) {
        ctx.max_members = max_members(&x);
        rc = (ctx.wu = wu = user_weights(&x, o->alpha1, o->beta)) ? 0 : CASCADE_ENOMEM;
    }
    rc = cascade_cf_run_lists(&job, rc, res, start_us, err, errlen);
    free(wu);
    cascade_cf_index_free(&x);
    return rc;
}
