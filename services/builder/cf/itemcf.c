/* ItemCF neighbour lists: cosine similarity over behaviour-weighted user
 * vectors, computed item by item with a sparse accumulator (cost Σ_u |I_u|²,
 * memory O(items) per thread), spread over pthreads, top-k kept per item. */
#include "itemcf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_acc.h"
#include "cf_index.h"
#include "cf_run.h"
#include "clock.h"
#include "error.h"

#define MAX_K 200 /* NeighbourList bound in records.options */

void cascade_itemcf_defaults(struct cascade_itemcf_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_items_per_user = 200;
    o->top_k = 100;
    o->threads = 2;
    cascade_behaviour_weights_default(&o->weights);
}

struct itemcf_ctx {
    const cascade_dataset *ds;
    const struct cascade_cf_index *x;
    const double *norm; /* ||w_i|| over the capped data */
    struct cascade_cf_lists *res;
};

static void scratch_destroy(void *p)
{
    cascade_cf_acc_free(p);
    free(p);
}

/* The worker's accumulator over the items. */
static void *scratch_create(void *p)
{
    const struct itemcf_ctx *c = p;
    struct cascade_cf_acc *s = malloc(sizeof(*s));
    if (!s || cascade_cf_acc_init(s, c->x->n_items) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Neighbours of item i: accumulate Σ_u w_ui·w_uj over the users of i and
 * their items j, then normalise and keep the top k. */
static size_t itemcf_row(void *p, void *sp, size_t i)
{
    const struct itemcf_ctx *c = p;
    const struct cascade_cf_index *x = c->x;
    struct cascade_cf_acc *s = sp;
    for (size_t a = x->ioff[i]; a < x->ioff[i + 1]; a++) {
        uint32_t u = x->iuser[a];
        float wi = x->iw[a];
        for (size_t b = x->uoff[u]; b < x->uoff[u + 1]; b++) {
            uint32_t j = x->uitem[b];
            if (j != i)
                cascade_cf_acc_add(s, j, wi * x->uw[b]);
        }
    }
    size_t nt = s->n;
    for (size_t t = 0; t < nt; t++) {
        uint32_t j = s->touched[t];
        s->cand[t] = (struct cascade_scored){
            .score = s->sum[t] / (c->norm[i] * c->norm[j]), .id = c->ds->items[j].id, .idx = j};
    }
    cascade_cf_acc_reset(s);
    cascade_cf_lists_set_row(c->res, i, s->cand, nt);
    return nt;
}

static double *item_norms(const struct cascade_cf_index *x)
{
    double *norm = calloc(x->n_items + 1, sizeof(double));
    if (!norm)
        return NULL;
    for (size_t i = 0; i < x->n_items; i++) {
        double sq = 0;
        for (size_t a = x->ioff[i]; a < x->ioff[i + 1]; a++)
            sq += (double)x->iw[a] * x->iw[a];
        norm[i] = sqrt(sq);
    }
    return norm;
}

int cascade_itemcf_compute(const cascade_dataset *ds, const struct cascade_itemcf_opts *o,
                           struct cascade_cf_lists *res, char *err, size_t errlen)
{
    struct cascade_cf_index x = {0};
    struct cascade_cf_index_opts xo = {.weights = &o->weights,
                                       .max_items_per_user = o->max_items_per_user};
    double *norm = NULL;
    struct itemcf_ctx ctx = {.ds = ds, .x = &x, .res = res};
    struct cascade_cf_job job = {.name = "itemcf",
                                 .what = "items",
                                 .rows = ds->n_items,
                                 .threads = o->threads,
                                 .quiet = o->quiet,
                                 .ctx = &ctx,
                                 .scratch_create = scratch_create,
                                 .scratch_destroy = scratch_destroy,
                                 .row = itemcf_row};
    int64_t start_us = cascade_now_us();
    int rc;
    memset(res, 0, sizeof(*res));
    if (o->top_k == 0 || o->top_k > MAX_K) {
        snprintf(err, errlen, "itemcf: top-k must be in [1, %d], got %zu", MAX_K, o->top_k);
        return CASCADE_EINVAL;
    }
    if ((rc = cascade_cf_lists_alloc(res, ds->n_items, o->top_k)) == 0 &&
        (rc = cascade_cf_index_build(ds, &xo, &x)) == 0)
        rc = (ctx.norm = norm = item_norms(&x)) ? 0 : CASCADE_ENOMEM;
    rc = cascade_cf_run_lists(&job, rc, res, start_us, err, errlen);
    free(norm);
    cascade_cf_index_free(&x);
    return rc;
}
