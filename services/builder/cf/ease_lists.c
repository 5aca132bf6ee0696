/* EASE neighbour lists (ease_lists.h): the interaction index of the CF
 * builders (whole histories, binary), the closed form of common/ml/ease.c, then
 * each covered item's best weights extracted on the CF worker threads. */
#include "ease_lists.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cf_index.h"
#include "cf_run.h"
#include "clock.h"
#include "ease.h"
#include "error.h"

#define MAX_NEIGHBOURS 200 /* NeighbourList bound in records.options */

void cascade_ease_lists_defaults(struct cascade_ease_lists_opts *o)
{
    struct cascade_ease_opts e;
    cascade_ease_opts_default(&e);
    memset(o, 0, sizeof(*o));
    o->lambda = e.lambda;
    o->max_items = e.max_items;
    o->neighbours = MAX_NEIGHBOURS;
    o->threads = 2;
    cascade_behaviour_weights_default(&o->weights);
}

struct phase_log {
    bool quiet;
    int64_t start_us;
    size_t covered;
};

/* "ease: cholesky (9724 items) at 1.2s" on stderr as each phase starts. */
static void log_phase(void *ud, const char *phase)
{
    const struct phase_log *p = ud;
    if (!p->quiet)
        fprintf(stderr, "ease: %s at %.1fs\n", phase,
                (double)(cascade_now_us() - p->start_us) / 1e6);
}

struct rows_ctx {
    const cascade_ease *m;
    struct cascade_cf_lists *res;
    atomic_int failed; /* a row could not allocate its selection scratch */
};

/* The lists need no per-thread scratch: the context stands in for it. */
static void *no_scratch(void *ctx)
{
    return ctx;
}

static void no_scratch_destroy(void *scratch)
{
    (void)scratch;
}

static size_t ease_row(void *p, void *scratch, size_t row)
{
    struct rows_ctx *c = p;
    struct cascade_cf_lists *l = c->res;
    (void)scratch;
    long n = cascade_ease_neighbours(c->m, (uint32_t)row, l->k, l->nbr + row * l->k,
                                     l->score + row * l->k);
    if (n < 0) {
        atomic_store(&c->failed, 1);
        n = 0;
    }
    l->count[row] = (uint32_t)n;
    return cascade_ease_covers(c->m, (uint32_t)row) ? cascade_ease_n_covered(c->m) : 0;
}

/* The model's input: the index's user -> items lists, uncapped. */
static int build_model(const cascade_dataset *ds, const struct cascade_ease_lists_opts *o,
                       struct phase_log *log, cascade_ease **m, char *err, size_t errlen)
{
    struct cascade_cf_index x = {0};
    struct cascade_cf_index_opts xo = {.weights = &o->weights, .max_items_per_user = 0};
    struct cascade_ease_opts eo;
    int rc = cascade_cf_index_build(ds, &xo, &x);
    if (rc != 0) {
        snprintf(err, errlen, "ease: out of memory for the interaction index");
        return rc;
    }
    if (x.entries == 0) {
        snprintf(err, errlen,
                 "ease: no interactions: none of the %zu events has a behaviour with a positive "
                 "weight (see --weights)",
                 ds->n_events);
        cascade_cf_index_free(&x);
        return CASCADE_EINVAL;
    }
    struct cascade_ease_input in = {
        .n_users = x.n_users, .n_items = x.n_items, .off = x.uoff, .item = x.uitem};
    cascade_ease_opts_default(&eo);
    eo.lambda = o->lambda;
    eo.max_items = o->max_items;
    eo.on_phase = log_phase;
    eo.ud = log;
    if (!log->quiet)
        fprintf(stderr, "ease: %zu users, %zu interactions, lambda %g, item cap %zu\n", x.n_users,
                x.entries, o->lambda, o->max_items);
    *m = cascade_ease_build(&in, &eo, err, errlen);
    cascade_cf_index_free(&x);
    return *m ? 0 : CASCADE_EINVAL; /* the message says which */
}

int cascade_ease_lists_compute(const cascade_dataset *ds, const struct cascade_ease_lists_opts *o,
                               struct cascade_cf_lists *res, size_t *covered, char *err,
                               size_t errlen)
{
    struct phase_log log = {.quiet = o->quiet, .start_us = cascade_now_us()};
    cascade_ease *m = NULL;
    struct rows_ctx ctx = {.res = res};
    struct cascade_cf_job job = {.name = "ease",
                                 .what = "items",
                                 .rows = ds->n_items,
                                 .threads = o->threads,
                                 .quiet = o->quiet,
                                 .ctx = &ctx,
                                 .scratch_create = no_scratch,
                                 .scratch_destroy = no_scratch_destroy,
                                 .row = ease_row};
    int rc;
    memset(res, 0, sizeof(*res));
    if (o->neighbours == 0 || o->neighbours > MAX_NEIGHBOURS) {
        snprintf(err, errlen, "ease: neighbours must be in [1, %d], got %zu", MAX_NEIGHBOURS,
                 o->neighbours);
        return CASCADE_EINVAL;
    }
    if ((rc = build_model(ds, o, &log, &m, err, errlen)) != 0)
        return rc;
    if (!log.quiet)
        fprintf(stderr, "ease: model covers %zu of %zu items (%.0f MB)\n",
                cascade_ease_n_covered(m), ds->n_items,
                (double)cascade_ease_n_covered(m) * (double)cascade_ease_n_covered(m) * 4.0 / 1e6);
    ctx.m = m;
    rc = cascade_cf_lists_alloc(res, ds->n_items, o->neighbours);
    rc = cascade_cf_run_lists(&job, rc, res, log.start_us, err, errlen);
    if (rc == 0 && atomic_load(&ctx.failed)) {
        snprintf(err, errlen, "ease: out of memory while selecting neighbours");
        cascade_cf_lists_free(res);
        rc = CASCADE_ENOMEM;
    }
    if (rc == 0 && covered)
        *covered = cascade_ease_n_covered(m);
    cascade_ease_destroy(m);
    return rc;
}
