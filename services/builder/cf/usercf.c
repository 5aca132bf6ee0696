/* UserCF lists: for each user u, walk u's items and each item's (sampled)
 * users with a sparse accumulator of Σ 1/ln(1 + n_i) per candidate user,
 * normalise by sqrt(|I_u|·|I_v|) and keep the top k. Cost Σ_u Σ_{i∈I_u}
 * min(n_i, cap); memory O(users) per thread. */
#include "usercf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_acc.h"
#include "cf_index.h"
#include "cf_run.h"
#include "clock.h"
#include "error.h"

#define MAX_K 100 /* UserNeighbourList bound in records.options */

void cascade_usercf_defaults(struct cascade_usercf_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_users_per_item = 100;
    o->max_items_per_user = 200;
    o->top_k = 50;
    o->seed = 1;
    o->threads = 2;
    cascade_behaviour_weights_default(&o->weights);
}

struct usercf_ctx {
    const struct cascade_cf_index *x;
    const size_t *off; /* item -> users considered: sample or all */
    const uint32_t *users;
    const double *idf; /* 1/ln(1 + n_i) per item */
    struct cascade_cf_lists *res;
};

static void scratch_destroy(void *p)
{
    cascade_cf_acc_free(p);
    free(p);
}

/* The worker's accumulator over the users. */
static void *scratch_create(void *p)
{
    const struct usercf_ctx *c = p;
    struct cascade_cf_acc *s = malloc(sizeof(*s));
    if (!s || cascade_cf_acc_init(s, c->x->n_users) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static size_t usercf_row(void *p, void *sp, size_t u)
{
    const struct usercf_ctx *c = p;
    const struct cascade_cf_index *x = c->x;
    struct cascade_cf_acc *s = sp;
    for (size_t a = x->uoff[u]; a < x->uoff[u + 1]; a++) {
        uint32_t i = x->uitem[a];
        double w = c->idf[i];
        for (size_t b = c->off[i]; b < c->off[i + 1]; b++) {
            uint32_t v = c->users[b];
            if (v != u)
                cascade_cf_acc_add(s, v, w);
        }
    }
    double len_u = (double)cascade_cf_user_len(x, u);
    size_t nt = s->n;
    for (size_t t = 0; t < nt; t++) {
        uint32_t v = s->touched[t];
        double sim = s->sum[t] / sqrt(len_u * (double)cascade_cf_user_len(x, v));
        s->cand[t] = (struct cascade_scored){.score = sim, .id = v, .idx = v};
    }
    cascade_cf_acc_reset(s);
    cascade_cf_lists_set_row(c->res, u, s->cand, nt);
    return nt;
}

/* 1/ln(1 + n_i); n_i >= 1 for every item that has users. */
static double *item_idf(const struct cascade_cf_index *x)
{
    double *idf = malloc((x->n_items + 1) * sizeof(double));
    if (!idf)
        return NULL;
    for (size_t i = 0; i < x->n_items; i++)
        idf[i] = x->item_popularity[i] ? 1.0 / log1p((double)x->item_popularity[i]) : 0;
    return idf;
}

int cascade_usercf_compute(const cascade_dataset *ds, const struct cascade_usercf_opts *o,
                           struct cascade_cf_lists *res, char *err, size_t errlen)
{
    struct cascade_cf_index x = {0};
    struct cascade_cf_index_opts xo = {.weights = &o->weights,
                                       .max_items_per_user = o->max_items_per_user,
                                       .max_users_per_item = o->max_users_per_item,
                                       .seed = o->seed};
    double *idf = NULL;
    struct usercf_ctx ctx = {.x = &x, .res = res};
    struct cascade_cf_job job = {.name = "usercf",
                                 .what = "users",
                                 .rows = ds->n_users,
                                 .threads = o->threads,
                                 .quiet = o->quiet,
                                 .ctx = &ctx,
                                 .scratch_create = scratch_create,
                                 .scratch_destroy = scratch_destroy,
                                 .row = usercf_row};
    int64_t start_us = cascade_now_us();
    int rc;
    memset(res, 0, sizeof(*res));
    if (o->top_k == 0 || o->top_k > MAX_K) {
        snprintf(err, errlen, "usercf: top-k must be in [1, %d], got %zu", MAX_K, o->top_k);
        return CASCADE_EINVAL;
    }
    if ((rc = cascade_cf_lists_alloc(res, ds->n_users, o->top_k)) == 0 &&
        (rc = cascade_cf_index_build(ds, &xo, &x)) == 0) {
        ctx.off = x.soff ? x.soff : x.ioff;
        ctx.users = x.soff ? x.suser : x.iuser;
        rc = (ctx.idf = idf = item_idf(&x)) ? 0 : CASCADE_ENOMEM;
    }
    rc = cascade_cf_run_lists(&job, rc, res, start_us, err, errlen);
    free(idf);
    cascade_cf_index_free(&x);
    return rc;
}
