/* cascade-build train-two-tower: positives are the first interest event of
 * each (user, item) pair, with the user's earlier positives as history; held
 * out by time; negatives sampled ∝ clicks^0.75 plus in-batch ones, with
 * ranker rejects mixed in by --hard-ratio, never an item the user was exposed
 * to or interacted with. Layout in docs/twotower.md §5. */
#include "train_twotower.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_cli.h"
#include "clock.h"
#include "error.h"
#include "flags.h"
#include "latest_file.h"
#include "negsample.h"
#include "progress.h"
#include "online_items.h"
#include "redis.h"
#include "train_progress.h"
#include "train_warm.h"
#include "tt_warm.h"
#include "vindex.h"

void cascade_train_twotower_defaults(struct cascade_train_twotower_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = CASCADE_TWOTOWER_LISTWISE;
    o->epochs = 3;
    o->batch = 256;
    o->n_neg = 4;
    o->last_n = 20;
    o->lr = 0.005f;
    o->emb_dim = 16;
    o->hidden = 64;
    o->out_dim = 32;
    o->temperature = 0.05f;
    o->holdout_frac = 0.1;
    o->eval_k = 100;
    o->eval_users = 2000;
    cascade_behaviour_weights_default(&o->weights);
    o->seed = 1;
    o->warm_start = true;
    cascade_train_gate_defaults(&o->gate);
    o->gate.floor = 0; /* the gate uses at least chance, K / items */
}

/* ------------------------------------------------------------ dense maps */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and deduplicate vals[n] (non-zero values only) in place. */
static size_t uniq_nonzero(uint64_t *vals, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (vals[i] != 0)
            vals[m++] = vals[i];
    qsort(vals, m, sizeof(*vals), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (k == 0 || vals[k - 1] != vals[i])
            vals[k++] = vals[i];
    return k;
}

/* Row of v in a sorted unique table: index + 1, or 0 (unknown). */
static uint32_t dense_row(const uint64_t *uniq, size_t n, uint64_t v)
{
    if (v == 0)
        return 0;
    const uint64_t *p = bsearch(&v, uniq, n, sizeof(*uniq), cmp_u64);
    return p ? (uint32_t)(p - uniq) + 1 : 0;
}

/* ------------------------------------------------------------ examples */

struct tt_example {
    int64_t ts;
    uint32_t user, p; /* the user's p-th positive */
};

struct tt_data {
    const cascade_dataset *ds;
    uint64_t *authors, *cats, *cities; /* sorted unique raw values */
    size_t n_authors, n_cats, n_cities;
    uint32_t *item_author, *item_cat, *user_city; /* rows per dataset index */
    size_t *pos_off;                              /* [n_users + 1] */
    uint32_t *pos_item;                           /* item rows (index + 1), time order */
    int64_t *pos_ts;
    size_t *n_train_pos; /* [n_users]: train prefix of each user's positives */
    size_t *exc_off;     /* [n_users + 1]: exposures and positives before the split */
    uint32_t *exc;
    size_t *hard_off; /* [n_users + 1]: hard candidates that are never the user's positives */
    uint32_t *hard;
    size_t hard_users; /* training users with at least one */
    struct tt_example *ex;
    size_t n_ex, n_train;
    size_t first_train; /* incremental: the first example after since_ts, else 0 */
    int64_t split_ts;
};

static void data_free(struct tt_data *d)
{
    free(d->authors);
    free(d->cats);
    free(d->cities);
    free(d->item_author);
    free(d->item_cat);
    free(d->user_city);
    free(d->pos_off);
    free(d->pos_item);
    free(d->pos_ts);
    free(d->n_train_pos);
    free(d->exc_off);
    free(d->exc);
    free(d->hard_off);
    free(d->hard);
    free(d->ex);
}

static int build_maps(struct tt_data *d)
{
    const cascade_dataset *ds = d->ds;
    size_t ni = ds->n_items, nu = ds->n_users;
    d->authors = malloc((ni + 1) * sizeof(uint64_t));
    d->cats = malloc((ni + 1) * sizeof(uint64_t));
    d->cities = malloc((nu + 1) * sizeof(uint64_t));
    d->item_author = malloc((ni + 1) * sizeof(uint32_t));
    d->item_cat = malloc((ni + 1) * sizeof(uint32_t));
    d->user_city = malloc((nu + 1) * sizeof(uint32_t));
    if (!d->authors || !d->cats || !d->cities || !d->item_author || !d->item_cat || !d->user_city)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < ni; i++) {
        d->authors[i] = ds->items[i].author_id;
        d->cats[i] = ds->items[i].category;
    }
    for (size_t u = 0; u < nu; u++)
        d->cities[u] = ds->users[u].city;
    d->n_authors = uniq_nonzero(d->authors, ni);
    d->n_cats = uniq_nonzero(d->cats, ni);
    d->n_cities = uniq_nonzero(d->cities, nu);
    for (size_t i = 0; i < ni; i++) {
        d->item_author[i] = dense_row(d->authors, d->n_authors, ds->items[i].author_id);
        d->item_cat[i] = dense_row(d->cats, d->n_cats, ds->items[i].category);
    }
    for (size_t u = 0; u < nu; u++)
        d->user_city[u] = dense_row(d->cities, d->n_cities, ds->users[u].city);
    return 0;
}

static bool is_positive(const struct cascade_train_twotower_opts *o, uint32_t type)
{
    return type >= 1 && type <= CASCADE_EV_MAX && o->weights.w[type] > 0;
}

/* Per user, the first positive event of each item, in time order. */
static int build_positives(struct tt_data *d, const struct cascade_train_twotower_opts *o)
{
    const cascade_dataset *ds = d->ds;
    size_t nu = ds->n_users;
    int rc = CASCADE_ENOMEM;
    size_t *fill = calloc(nu + 1, sizeof(size_t));
    uint32_t *mark = calloc(ds->n_items + 1, sizeof(uint32_t));
    d->pos_off = calloc(nu + 1, sizeof(size_t));
    if (!fill || !mark || !d->pos_off)
        goto out;
    for (size_t e = 0; e < ds->n_events; e++)
        if (is_positive(o, ds->events[e].type))
            d->pos_off[ds->events[e].user + 1]++;
    for (size_t u = 0; u < nu; u++)
        d->pos_off[u + 1] += d->pos_off[u];
    d->pos_item = malloc((d->pos_off[nu] + 1) * sizeof(uint32_t));
    d->pos_ts = malloc((d->pos_off[nu] + 1) * sizeof(int64_t));
    if (!d->pos_item || !d->pos_ts)
        goto out;
    for (size_t e = 0; e < ds->n_events; e++) {
        const struct cascade_ds_event *ev = &ds->events[e];
        if (!is_positive(o, ev->type))
            continue;
        size_t at = d->pos_off[ev->user] + fill[ev->user]++;
        d->pos_item[at] = ev->item + 1;
        d->pos_ts[at] = ev->ts;
    }
    /* Keep each user's first positive of an item (mark[item] = user + 1). */
    size_t w = 0;
    for (size_t u = 0; u < nu; u++) {
        size_t start = w;
        for (size_t k = d->pos_off[u]; k < d->pos_off[u + 1]; k++) {
            uint32_t it = d->pos_item[k];
            if (mark[it] == u + 1)
                continue;
            mark[it] = (uint32_t)u + 1;
            d->pos_item[w] = it;
            d->pos_ts[w++] = d->pos_ts[k];
        }
        d->pos_off[u] = start;
    }
    d->pos_off[nu] = w;
    rc = 0;
out:
    free(fill);
    free(mark);
    return rc;
}

static int cmp_example(const void *a, const void *b)
{
    const struct tt_example *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* Examples in time order and the time split. */
static int build_examples(struct tt_data *d, const struct cascade_train_twotower_opts *o)
{
    size_t nu = d->ds->n_users;
    d->n_ex = d->pos_off[nu];
    d->ex = malloc((d->n_ex + 1) * sizeof(*d->ex));
    d->n_train_pos = calloc(nu + 1, sizeof(size_t));
    if (!d->ex || !d->n_train_pos)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t u = 0; u < nu; u++)
        for (size_t k = d->pos_off[u]; k < d->pos_off[u + 1]; k++)
            d->ex[n++] =
                (struct tt_example){d->pos_ts[k], (uint32_t)u, (uint32_t)(k - d->pos_off[u])};
    qsort(d->ex, n, sizeof(*d->ex), cmp_example);
    /* Incremental: the older examples are history only; the new ones are
     * trained on and the newest of them held out. */
    d->first_train = 0;
    while (o->incremental && d->first_train < n && d->ex[d->first_train].ts <= o->since_ts)
        d->first_train++;
    size_t hold = (size_t)llround((double)(n - d->first_train) * o->holdout_frac);
    d->n_train = n - hold;
    d->split_ts = hold ? d->ex[d->n_train].ts : INT64_MAX;
    for (size_t i = 0; i < d->n_train; i++)
        d->n_train_pos[d->ex[i].user]++;
    return 0;
}

/* Per user, the distinct items exposed or positive before the split. */
static int build_exclusions(struct tt_data *d, const struct cascade_train_twotower_opts *o)
{
    const cascade_dataset *ds = d->ds;
    size_t nu = ds->n_users;
    struct cascade_user_events ue = {0};
    int rc = CASCADE_ENOMEM;
    uint32_t *mark = calloc(ds->n_items + 1, sizeof(uint32_t));
    d->exc_off = calloc(nu + 1, sizeof(size_t));
    if (!mark || !d->exc_off || cascade_user_events_build(ds, &ue) != 0)
        goto out;
    d->exc = malloc((ds->n_events + 1) * sizeof(uint32_t));
    if (!d->exc)
        goto out;
    size_t w = 0;
    for (size_t u = 0; u < nu; u++) {
        d->exc_off[u] = w;
        for (size_t k = ue.off[u]; k < ue.off[u + 1]; k++) {
            const struct cascade_ds_event *ev = &ds->events[ue.idx[k]];
            if (ev->ts >= d->split_ts ||
                !(ev->type == CASCADE_EV_IMPRESSION || is_positive(o, ev->type)))
                continue;
            if (mark[ev->item + 1] == u + 1)
                continue;
            mark[ev->item + 1] = (uint32_t)u + 1;
            d->exc[w++] = ev->item + 1;
        }
    }
    d->exc_off[nu] = w;
    rc = 0;
out:
    cascade_user_events_free(&ue);
    free(mark);
    return rc;
}

/* Per user, the hard candidates minus its exclusions (exposures and
 * positives before the split, which the sampler would reject anyway) and
 * minus every later positive too (an item the user clicks is never a
 * negative, and the held-out recall stays fair). */
static int build_hard(struct tt_data *d, const struct cascade_train_twotower_opts *o)
{
    size_t nu = d->ds->n_users, w = 0;
    if (!o->hard)
        return 0;
    uint32_t *mark = calloc(d->ds->n_items + 1, sizeof(uint32_t));
    d->hard_off = calloc(nu + 1, sizeof(size_t));
    d->hard = malloc((o->hard->off ? o->hard->off[o->hard->n_users] : 0) * sizeof(uint32_t) + 1);
    if (!mark || !d->hard_off || !d->hard) {
        free(mark);
        return CASCADE_ENOMEM;
    }
    for (size_t u = 0; u < nu; u++) {
        size_t n;
        const uint32_t *cand = cascade_tt_hardneg_of(o->hard, (uint32_t)u, &n);
        d->hard_off[u] = w;
        for (size_t k = d->pos_off[u]; k < d->pos_off[u + 1]; k++)
            mark[d->pos_item[k]] = (uint32_t)u + 1;
        for (size_t k = d->exc_off[u]; k < d->exc_off[u + 1]; k++)
            mark[d->exc[k]] = (uint32_t)u + 1;
        for (size_t k = 0; k < n; k++)
            if (cand[k] <= d->ds->n_items && mark[cand[k]] != u + 1)
                d->hard[w++] = cand[k];
        d->hard_users += w > d->hard_off[u] && d->n_train_pos[u] > 0;
    }
    d->hard_off[nu] = w;
    free(mark);
    return 0;
}

/* ------------------------------------------------------------ features */

static struct cascade_twotower_user user_features(const struct tt_data *d, uint32_t u,
                                                  size_t n_hist, size_t last_n)
{
    const struct cascade_ds_user *du = &d->ds->users[u];
    size_t start = n_hist > last_n ? n_hist - last_n : 0;
    return (struct cascade_twotower_user){
        .user_id = u + 1,
        .age_bucket = cascade_twotower_user_age_bucket(du->age),
        .gender = du->gender < CASCADE_TT_GENDERS ? du->gender : 0,
        .city = d->user_city[u],
        .history = d->pos_item + d->pos_off[u] + start,
        .n_history = n_hist - start,
    };
}

static struct cascade_twotower_item item_features(const struct tt_data *d, uint32_t row,
                                                  int64_t now)
{
    if (row == 0)
        return (struct cascade_twotower_item){0, 0, 0, 0};
    const struct cascade_ds_item *it = &d->ds->items[row - 1];
    return (struct cascade_twotower_item){
        .item_id = row,
        .author = d->item_author[row - 1],
        .category = d->item_cat[row - 1],
        .age_bucket = cascade_twotower_item_age_bucket(it->created_at, now),
    };
}

/* ------------------------------------------------------------ training */

struct tt_batch_buf {
    struct cascade_twotower_user *users;
    struct cascade_twotower_item *pos, *neg;
    float *pos_logq, *neg_logq;
    uint32_t *neg_rows;
    enum cascade_negsample_kind *neg_kind;
    const uint32_t **exclude;
    size_t *n_exclude;
    uint32_t *exc_buf; /* [batch × batch]: exclusions that are batch positives */
    uint32_t *stamp;   /* [n_items + 1]: batch number + 1 of item rows that are positives */
};

static void batch_free(struct tt_batch_buf *b)
{
    free(b->users);
    free(b->pos);
    free(b->neg);
    free(b->pos_logq);
    free(b->neg_logq);
    free(b->neg_rows);
    free(b->neg_kind);
    free(b->exclude);
    free(b->n_exclude);
    free(b->exc_buf);
    free(b->stamp);
}

static int batch_alloc(struct tt_batch_buf *b, size_t batch, size_t n_neg, size_t n_items)
{
    size_t nn = batch * n_neg + 1;
    b->users = calloc(batch, sizeof(*b->users));
    b->pos = calloc(batch, sizeof(*b->pos));
    b->neg = calloc(nn, sizeof(*b->neg));
    b->pos_logq = calloc(batch, sizeof(float));
    b->neg_logq = calloc(nn, sizeof(float));
    b->neg_rows = calloc(nn, sizeof(uint32_t));
    b->neg_kind = calloc(nn, sizeof(*b->neg_kind));
    b->exclude = calloc(batch, sizeof(*b->exclude));
    b->n_exclude = calloc(batch, sizeof(size_t));
    b->exc_buf = calloc(batch * batch, sizeof(uint32_t));
    b->stamp = calloc(n_items + 1, sizeof(uint32_t));
    return b->users && b->pos && b->neg && b->pos_logq && b->neg_logq && b->neg_rows &&
                   b->neg_kind && b->exclude && b->n_exclude && b->exc_buf && b->stamp
               ? 0
               : CASCADE_ENOMEM;
}

struct tt_trainer {
    const struct tt_data *d;
    const struct cascade_train_twotower_opts *o;
    cascade_twotower *m;
    cascade_negsample *ns;
    struct cascade_nn_optim opt;
    struct cascade_rng rng;
    struct tt_batch_buf b;
    uint32_t *order; /* n_order example indexes trained on */
    size_t n_order;
    uint32_t batch_no;
    size_t hard_drawn;
};

/* Fill the batch of examples order[from, from + n) and take one step. */
static int train_batch(struct tt_trainer *t, size_t from, size_t n, double *loss, char *err,
                       size_t errlen)
{
    const struct tt_data *d = t->d;
    const struct cascade_train_twotower_opts *o = t->o;
    struct tt_batch_buf *b = &t->b;
    bool listwise = o->mode == CASCADE_TWOTOWER_LISTWISE;
    t->batch_no++;
    for (size_t i = 0; i < n; i++) {
        const struct tt_example *ex = &d->ex[t->order[from + i]];
        uint32_t row = d->pos_item[d->pos_off[ex->user] + ex->p];
        b->users[i] = user_features(d, ex->user, ex->p, o->last_n);
        b->pos[i] = item_features(d, row, ex->ts);
        b->pos_logq[i] = (float)cascade_negsample_logq_inbatch(t->ns, row);
        b->stamp[row] = t->batch_no;
    }
    for (size_t i = 0; i < n; i++) {
        const struct tt_example *ex = &d->ex[t->order[from + i]];
        const uint32_t *exc = d->exc + d->exc_off[ex->user];
        size_t n_exc = d->exc_off[ex->user + 1] - d->exc_off[ex->user];
        struct cascade_negsample_request req = {exc, n_exc, NULL, 0};
        if (d->hard_off) {
            req.hard = d->hard + d->hard_off[ex->user];
            req.n_hard = d->hard_off[ex->user + 1] - d->hard_off[ex->user];
        }
        uint32_t *rows = b->neg_rows + i * o->n_neg;
        enum cascade_negsample_kind *kind = b->neg_kind + i * o->n_neg;
        size_t got = cascade_negsample_draw(t->ns, &t->rng, &req, o->n_neg, rows, kind,
                                            b->neg_logq + i * o->n_neg);
        for (size_t k = 0; k < got; k++)
            t->hard_drawn += kind[k] == CASCADE_NEGSAMPLE_HARD;
        float *logq = b->neg_logq + i * o->n_neg;
        for (size_t k = got; k < o->n_neg; k++) { /* rejection ran out: reuse a draw */
            if (got) { /* with its own log q: a hard one may have no clicks (q = 0) */
                rows[k] = rows[k % got];
                logq[k] = logq[k % got];
            } else {
                rows[k] = cascade_negsample_easy(t->ns, &t->rng);
                logq[k] = (float)cascade_negsample_logq(t->ns, rows[k]);
            }
        }
        for (size_t k = 0; k < o->n_neg; k++)
            b->neg[i * o->n_neg + k] = item_features(d, rows[k], ex->ts);
        /* In-batch masking only needs the exclusions that are batch positives. */
        uint32_t *keep = b->exc_buf + i * o->batch;
        size_t nk = 0;
        for (size_t k = 0; k < n_exc && nk < o->batch; k++)
            if (b->stamp[exc[k]] == t->batch_no)
                keep[nk++] = exc[k];
        b->exclude[i] = keep;
        b->n_exclude[i] = nk;
    }
    struct cascade_twotower_batch bt = {
        .n = n,
        .users = b->users,
        .pos = b->pos,
        .n_neg = o->n_neg,
        .neg = b->neg,
        .pos_logq = listwise ? b->pos_logq : NULL,
        .neg_logq = listwise ? b->neg_logq : NULL,
        .in_batch = listwise,
        .exclude = listwise ? b->exclude : NULL,
        .n_exclude = listwise ? b->n_exclude : NULL,
    };
    return cascade_twotower_train_step(t->m, &t->opt, o->mode, &bt, loss, err, errlen);
}

static int evaluate(const cascade_twotower *m, const struct tt_data *d,
                    const struct cascade_train_twotower_opts *o,
                    struct cascade_train_twotower_summary *sum, char *err, size_t errlen);

/* Shuffled passes over the training positives. Unless quiet, each epoch
 * ends with the held-out recall@K (sum->recall_at_k, *evaluated set) and the
 * shared progress line. */
static int train_epochs(struct tt_trainer *t, const struct tt_data *d,
                        struct cascade_train_twotower_summary *sum, bool *evaluated, char *err,
                        size_t errlen)
{
    const struct cascade_train_twotower_opts *o = t->o;
    size_t n = t->n_order, steps = 0;
    double train_s = 0; /* excludes the per-epoch evaluation */
    *evaluated = false;
    for (size_t ep = 0; ep < o->epochs; ep++) {
        int64_t t0 = cascade_now_us();
        /* The incremental update reads the new events as the time series they
         * are (the notes: no shuffle); the full retrain shuffles. */
        for (size_t i = o->incremental ? 0 : n; i > 1; i--) { /* Fisher-Yates, seeded */
            size_t j = (size_t)cascade_rng_below(&t->rng, i);
            uint32_t tmp = t->order[i - 1];
            t->order[i - 1] = t->order[j];
            t->order[j] = tmp;
        }
        struct cascade_progress pr;
        cascade_progress_start(&pr, "train-two-tower", "examples", n, o->quiet);
        double total = 0;
        size_t batches = 0;
        for (size_t from = 0; from < n; from += o->batch) {
            size_t bn = n - from < o->batch ? n - from : o->batch;
            double loss;
            int rc = train_batch(t, from, bn, &loss, err, errlen);
            if (rc != 0)
                return rc;
            total += loss;
            batches++;
            cascade_progress_update(&pr, from + bn);
        }
        train_s += (double)(cascade_now_us() - t0) / 1e6;
        steps += batches;
        sum->final_loss = batches ? total / (double)batches : 0;
        if (o->quiet)
            continue;
        char metrics[96] = "";
        if (d->n_ex > d->n_train) {
            int rc = evaluate(t->m, d, o, sum, err, errlen);
            if (rc != 0)
                return rc;
            *evaluated = true;
            snprintf(metrics, sizeof(metrics), "held-out recall@%zu %.4f", o->eval_k,
                     sum->recall_at_k);
        }
        struct cascade_train_epoch pe = {.job = "train-two-tower",
                                         .epoch = ep + 1,
                                         .epochs = o->epochs,
                                         .step = steps,
                                         .loss = sum->final_loss,
                                         .metrics = metrics[0] ? metrics : NULL,
                                         .examples = (ep + 1) * n,
                                         .elapsed_s = train_s};
        cascade_train_epoch_print(stderr, &pe);
    }
    return 0;
}

/* ------------------------------------------------------------ evaluation */

/* Every item's vector (rows 1..n_items) at time now into out [n_items, dim]. */
static int item_matrix(const cascade_twotower *m, const struct tt_data *d, int64_t now, float *out,
                       char *err, size_t errlen)
{
    size_t ni = d->ds->n_items, dim = cascade_twotower_config_get(m)->out_dim;
    struct cascade_twotower_item *its = malloc((ni + 1) * sizeof(*its));
    if (!its)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < ni; i++)
        its[i] = item_features(d, (uint32_t)i + 1, now);
    int rc = 0;
    for (size_t i = 0; i < ni && rc == 0; i += 4096) { /* chunks bound the scratch */
        size_t n = ni - i < 4096 ? ni - i : 4096;
        rc = cascade_twotower_item_vectors(m, its + i, n, out + i * dim, err, errlen);
    }
    free(its);
    return rc;
}

static float dot(const float *a, const float *b, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* recall@K of one user: share of its held-out items ranked in the top K
 * among items outside its train positives. */
static double user_recall(const struct tt_data *d, uint32_t u, const float *uv, const float *iv,
                          size_t dim, size_t k, float *scores, uint32_t *mark)
{
    size_t ni = d->ds->n_items, base = d->pos_off[u], ntr = d->n_train_pos[u];
    size_t nho = d->pos_off[u + 1] - base - ntr;
    for (size_t i = 0; i < ntr; i++)
        mark[d->pos_item[base + i]] = u + 1;
    for (size_t i = 0; i < ni; i++)
        scores[i] = mark[i + 1] == u + 1 ? -INFINITY : dot(uv, iv + i * dim, dim);
    size_t hits = 0;
    for (size_t h = 0; h < nho; h++) {
        float s = scores[d->pos_item[base + ntr + h] - 1];
        size_t above = 0;
        for (size_t i = 0; i < ni && above < k; i++)
            above += scores[i] > s;
        hits += above < k;
    }
    return (double)hits / (double)nho;
}

static int evaluate(const cascade_twotower *m, const struct tt_data *d,
                    const struct cascade_train_twotower_opts *o,
                    struct cascade_train_twotower_summary *sum, char *err, size_t errlen)
{
    size_t ni = d->ds->n_items, nu = d->ds->n_users;
    size_t dim = cascade_twotower_config_get(m)->out_dim;
    int rc = CASCADE_ENOMEM;
    float *iv = malloc((ni + 1) * dim * sizeof(float));
    float *scores = malloc((ni + 1) * sizeof(float));
    uint32_t *mark = calloc(ni + 1, sizeof(uint32_t));
    float *uv = malloc(dim * sizeof(float));
    double total = 0;
    size_t users = 0, eligible = 0;
    if (!iv || !scores || !mark || !uv)
        goto out;
    if ((rc = item_matrix(m, d, d->split_ts, iv, err, errlen)) != 0)
        goto out;
    for (size_t u = 0; u < nu; u++)
        eligible += d->pos_off[u + 1] - d->pos_off[u] > d->n_train_pos[u];
    size_t stride = eligible > o->eval_users ? (eligible + o->eval_users - 1) / o->eval_users : 1;
    for (size_t u = 0, seen = 0; u < nu; u++) {
        if (d->pos_off[u + 1] - d->pos_off[u] <= d->n_train_pos[u])
            continue;
        if (seen++ % stride != 0)
            continue;
        struct cascade_twotower_user f =
            user_features(d, (uint32_t)u, d->n_train_pos[u], o->last_n);
        if ((rc = cascade_twotower_user_vectors(m, &f, 1, uv, err, errlen)) != 0)
            goto out;
        total += user_recall(d, (uint32_t)u, uv, iv, dim, o->eval_k, scores, mark);
        users++;
    }
    sum->eval_users = users;
    sum->recall_at_k = users ? total / (double)users : 0;
    rc = 0;
out:
    free(iv);
    free(scores);
    free(mark);
    free(uv);
    return rc;
}

/* ------------------------------------------------------------ publishing */

static int write_maps(const struct tt_data *d, const char *path, int64_t ref_ts, char *err,
                      size_t errlen)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return CASCADE_EIO;
    }
    fprintf(f, "cascade-two-tower-maps\t1\nref_ts\t%" PRId64 "\n", ref_ts);
    for (size_t u = 0; u < d->ds->n_users; u++)
        fprintf(f, "user\t%s\t%zu\n", d->ds->users[u].id, u + 1);
    for (size_t i = 0; i < d->ds->n_items; i++)
        fprintf(f, "item\t%" PRIu64 "\t%zu\n", d->ds->items[i].id, i + 1);
    for (size_t i = 0; i < d->n_authors; i++)
        fprintf(f, "author\t%" PRIu64 "\t%zu\n", d->authors[i], i + 1);
    for (size_t i = 0; i < d->n_cats; i++)
        fprintf(f, "category\t%" PRIu64 "\t%zu\n", d->cats[i], i + 1);
    for (size_t i = 0; i < d->n_cities; i++)
        fprintf(f, "city\t%" PRIu64 "\t%zu\n", d->cities[i], i + 1);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return CASCADE_EIO;
    }
    return 0;
}

/* IVF recall@100 against the exact scan of the exported index, queried with
 * the vectors of up to 1000 users (an even stride) from their training
 * history: how much the default nprobe loses on these trained vectors. */
static int ivf_recall(const cascade_twotower *m, const struct tt_data *d,
                      const struct cascade_train_twotower_opts *o, const cascade_vindex *ix,
                      double *recall, char *err, size_t errlen)
{
    size_t nu = d->ds->n_users, nq = nu < 1000 ? nu : 1000, dim = cascade_vindex_dim(ix);
    float *q = malloc((nq + 1) * dim * sizeof(float));
    int rc = q ? 0 : CASCADE_ENOMEM;
    for (size_t i = 0; i < nq && rc == 0; i++) {
        uint32_t u = (uint32_t)(i * nu / nq);
        struct cascade_twotower_user f = user_features(d, u, d->n_train_pos[u], o->last_n);
        rc = cascade_twotower_user_vectors(m, &f, 1, q + i * dim, err, errlen);
    }
    if (rc == 0)
        rc = cascade_vindex_recall_vs_exact(ix, q, nq, dim, 100, 0, recall, err, errlen);
    free(q);
    return rc;
}

static int write_items(const cascade_twotower *m, const struct tt_data *d,
                       const struct cascade_train_twotower_opts *o, const char *path,
                       const char *version, int64_t ref_ts,
                       struct cascade_train_twotower_summary *sum, char *err, size_t errlen)
{
    size_t ni = d->ds->n_items, dim = cascade_twotower_config_get(m)->out_dim;
    cascade_vindex *ix = NULL;
    int rc = CASCADE_ENOMEM;
    float *iv = malloc((ni + 1) * dim * sizeof(float));
    uint64_t *ids = malloc((ni + 1) * sizeof(uint64_t));
    if (!iv || !ids)
        goto out;
    if ((rc = item_matrix(m, d, ref_ts, iv, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < ni; i++)
        ids[i] = d->ds->items[i].id;
    struct cascade_vindex_opts vo = {.metric = CASCADE_VINDEX_COSINE, .seed = o->seed};
    if (!(ix = cascade_vindex_build(iv, ids, ni, dim, &vo, err, errlen))) {
        rc = CASCADE_EINVAL;
        goto out;
    }
    if ((rc = ivf_recall(m, d, o, ix, &sum->ivf_recall, err, errlen)) != 0)
        goto out;
    sum->ivf_nlist = cascade_vindex_nlist(ix);
    sum->ivf_nprobe = cascade_vindex_nprobe(ix);
    rc = cascade_vindex_save(ix, path, version, err, errlen);
out:
    cascade_vindex_destroy(ix);
    free(iv);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------ run */

/* Warm start (train_warm.h, tt_warm.h): the previous version fits with the
 * same widths; embedding rows are carried over by id. */
struct tt_warm_ctx {
    cascade_twotower *m;
    const struct tt_data *d;
    struct cascade_train_twotower_summary *sum;
};

static int warm_apply(void *ctx, const char *dir, const char *version, const char *path,
                      char *detail, size_t detaillen, char *err, size_t errlen)
{
    (void)path;
    struct tt_warm_ctx *w = ctx;
    const cascade_dataset *ds = w->d->ds;
    uint64_t *users = malloc((ds->n_users + 1) * sizeof(*users));
    uint64_t *items = malloc((ds->n_items + 1) * sizeof(*items));
    if (!users || !items) {
        free(users);
        free(items);
        return CASCADE_ENOMEM;
    }
    for (size_t u = 0; u < ds->n_users; u++)
        users[u] = cascade_twotower_user_key(ds->users[u].id);
    for (size_t i = 0; i < ds->n_items; i++)
        items[i] = ds->items[i].id;
    struct cascade_tt_ids ids = {
        .keys = {users, items, w->d->authors, w->d->cats, w->d->cities},
        .n = {ds->n_users, ds->n_items, w->d->n_authors, w->d->n_cats, w->d->n_cities}};
    struct cascade_tt_warm_report rep;
    int rc = cascade_tt_warm_start(w->m, &ids, dir, version, &rep, err, errlen);
    free(users);
    free(items);
    if (rc != 0)
        return rc;
    w->sum->warm_rows_carried = rep.rows_carried;
    w->sum->warm_rows_fresh = rep.rows_fresh;
    snprintf(detail, detaillen,
             "%zu tensors copied, %zu embedding rows carried over by id, %zu new", rep.tensors,
             rep.rows_carried, rep.rows_fresh);
    return 0;
}

static int new_model(const struct tt_data *d, const struct cascade_train_twotower_opts *o,
                     cascade_twotower **m, char *err, size_t errlen)
{
    struct cascade_twotower_config c;
    cascade_twotower_config_default(&c);
    c.n_users = d->ds->n_users + 1;
    c.n_items = d->ds->n_items + 1;
    c.n_authors = d->n_authors + 1;
    c.n_categories = d->n_cats + 1;
    c.n_user_age_buckets = CASCADE_TT_USER_AGE_BUCKETS;
    c.n_genders = CASCADE_TT_GENDERS;
    c.n_cities = d->n_cities + 1;
    c.n_item_age_buckets = CASCADE_TT_ITEM_AGE_BUCKETS;
    c.emb_dim = o->emb_dim;
    c.hidden = o->hidden;
    c.out_dim = o->out_dim;
    c.temperature = o->temperature;
    c.seed = o->seed;
    return cascade_twotower_create(&c, m, err, errlen);
}

static int new_sampler(const struct tt_data *d, const struct cascade_train_twotower_opts *o,
                       cascade_negsample **ns, char *err, size_t errlen)
{
    size_t ni = d->ds->n_items + 1;
    double *clicks = calloc(ni, sizeof(double));
    if (!clicks)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < d->n_train; i++)
        clicks[d->pos_item[d->pos_off[d->ex[i].user] + d->ex[i].p]] += 1;
    struct cascade_negsample_config c;
    cascade_negsample_config_default(&c);
    c.hard_ratio = o->hard ? o->hard_ratio : 0.0;
    int rc = cascade_negsample_create(clicks, ni, &c, ns, err, errlen);
    free(clicks);
    return rc;
}

/* This run's data for the gate's look at the published version, and the
 * model and summary the gate's save writes. */
struct tt_gate_ctx {
    const struct tt_data *d;
    const struct cascade_train_twotower_opts *o;
    const cascade_twotower *m;
    struct cascade_train_twotower_summary *sum;
};

/* The gate's view of the published two-tower version: its held-out
 * recall@K on this run's split, with its embedding rows carried over by id
 * into a model of this run's shape (as the warm start does; ids it did not
 * know get fresh rows). */
static int tt_gate_eval(void *ctx, const char *path, double *value, char *err, size_t errlen)
{
    const struct tt_gate_ctx *c = ctx;
    const char *slash = strrchr(path, '/');
    char dir[1024];
    struct cascade_train_twotower_summary s;
    cascade_twotower *m = NULL;
    memset(&s, 0, sizeof s);
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    int rc = new_model(c->d, c->o, &m, err, errlen);
    struct tt_warm_ctx w = {m, c->d, &s};
    char detail[256];
    if (rc == 0)
        rc =
            warm_apply(&w, dir, slash ? slash + 1 : path, path, detail, sizeof detail, err, errlen);
    if (rc == 0)
        rc = evaluate(m, c->d, c->o, &s, err, errlen);
    if (rc == 0)
        *value = s.recall_at_k;
    cascade_twotower_destroy(m);
    return rc;
}

/* The gate's save: items, maps and model under one new version, beside
 * the model file at path (two-tower.latest untouched). */
static int tt_gate_save(void *ctx, const char *path, const char *version, char *err, size_t errlen)
{
    const struct tt_gate_ctx *c = ctx;
    struct cascade_train_twotower_summary *sum = c->sum;
    const char *dir = c->o->model_dir;
    snprintf(sum->items_path, sizeof(sum->items_path), "%s/%s.items.safetensors", dir, version);
    snprintf(sum->maps_path, sizeof(sum->maps_path), "%s/%s.maps.tsv", dir, version);
    int64_t ref_ts = cascade_dataset_last_ts(c->d->ds);
    int rc = write_items(c->m, c->d, c->o, sum->items_path, version, ref_ts, sum, err, errlen);
    if (rc == 0)
        rc = write_maps(c->d, sum->maps_path, ref_ts, err, errlen);
    if (rc == 0)
        rc = cascade_twotower_save(c->m, path, err, errlen);
    return rc;
}

/* Save the version and let the gate decide on two-tower.latest by held-out
 * recall@K; the floor is at least chance, K / items. */
static int publish(const cascade_twotower *m, const struct tt_data *d,
                   const struct cascade_train_twotower_opts *o,
                   struct cascade_train_twotower_summary *sum, char *err, size_t errlen)
{
    char metric[64];
    double chance = (double)o->eval_k / (double)d->ds->n_items;
    struct tt_gate_ctx ctx = {d, o, m, sum};
    snprintf(metric, sizeof metric, "recall@%zu", o->eval_k);
    struct cascade_train_gate g;
    cascade_train_gate_init(&g, "train-two-tower", "two-tower", metric, &o->gate, sum->eval_users,
                            sum->recall_at_k);
    g.floor = o->gate.floor > chance ? o->gate.floor : chance;
    struct cascade_train_gate_target t = {.dir = o->model_dir,
                                          .latest = "two-tower.latest",
                                          .latest_names_version = true,
                                          .eval = tt_gate_eval,
                                          .save = tt_gate_save,
                                          .ctx = &ctx,
                                          .quiet = o->quiet};
    return cascade_train_gate_publish(&g, &t, sum->model_path, sizeof(sum->model_path),
                                      sum->version, sizeof(sum->version), &sum->gate, err, errlen);
}

static int check_opts(const cascade_dataset *ds, const struct cascade_train_twotower_opts *o,
                      char *err, size_t errlen)
{
    if (o->mode != CASCADE_TWOTOWER_LISTWISE && o->n_neg == 0) {
        snprintf(err, errlen, "--negatives must be ≥ 1 unless --mode listwise");
        return CASCADE_EINVAL;
    }
    if (o->batch == 0 || o->epochs == 0 || o->eval_k == 0) {
        snprintf(err, errlen, "--batch-size, --epochs and --k must be ≥ 1");
        return CASCADE_EINVAL;
    }
    if (!(o->hard_ratio >= 0.0 && o->hard_ratio <= 1.0)) {
        snprintf(err, errlen, "--hard-ratio must be in [0, 1], got %g", o->hard_ratio);
        return CASCADE_EINVAL;
    }
    if (ds->n_items == 0 || ds->n_users == 0) {
        snprintf(err, errlen, "the data set has no users or no items");
        return CASCADE_EINVAL;
    }
    return 0;
}

static int run(const cascade_dataset *ds, const struct cascade_train_twotower_opts *o,
               struct cascade_train_twotower_summary *sum, cascade_twotower **model, char *err,
               size_t errlen)
{
    struct tt_data d = {.ds = ds};
    struct tt_trainer t = {.d = &d, .o = o};
    int64_t t0 = cascade_now_us();
    memset(sum, 0, sizeof(*sum));
    if (model)
        *model = NULL;
    int rc = check_opts(ds, o, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = build_maps(&d)) != 0 || (rc = build_positives(&d, o)) != 0 ||
        (rc = build_examples(&d, o)) != 0 || (rc = build_exclusions(&d, o)) != 0 ||
        (rc = build_hard(&d, o)) != 0)
        goto nomem;
    sum->hard_users = d.hard_users;
    sum->examples = d.n_ex;
    sum->train = d.n_train;
    sum->holdout = d.n_ex - d.n_train;
    sum->since_ts = o->incremental ? o->since_ts : 0;
    sum->new_examples = d.n_ex - d.first_train;
    if (o->incremental && d.n_train == d.first_train) {
        snprintf(err, errlen,
                 "train-two-tower: --incremental: %zu positive events after %" PRId64
                 " (the published version's newest), too few to train on and hold out; "
                 "nothing to update",
                 d.n_ex - d.first_train, o->since_ts);
        rc = CASCADE_EDATA;
        goto out;
    }
    if (d.n_train == 0) {
        snprintf(err, errlen,
                 "no positive events to train on (weights > 0); the data does "
                 "not support this model");
        rc = CASCADE_EDATA;
        goto out;
    }
    if (o->model_dir && sum->holdout == 0 && !o->gate.force) {
        snprintf(err, errlen,
                 "no held-out positives (%zu in all, --holdout-frac %g), so "
                 "the gate cannot measure the model; the data does not support it",
                 d.n_ex, o->holdout_frac);
        rc = CASCADE_EDATA;
        goto out;
    }
    if ((rc = new_model(&d, o, &t.m, err, errlen)) != 0 ||
        (rc = new_sampler(&d, o, &t.ns, err, errlen)) != 0)
        goto out;
    struct tt_warm_ctx warm = {t.m, &d, sum};
    if (o->warm_start && (rc = cascade_train_warm_start(
                              "train-two-tower", o->model_dir, "two-tower.latest", o->quiet,
                              warm_apply, &warm, sum->warm_from, sizeof(sum->warm_from))) != 0)
        goto nomem;
    if (o->incremental) {
        if (sum->warm_from[0] == '\0') {
            snprintf(err, errlen,
                     "train-two-tower: --incremental: the published version in %s could not "
                     "be loaded (see above); run a full train-two-tower first",
                     o->model_dir);
            rc = CASCADE_EINVAL;
            goto out;
        }
        sum->frozen_params = cascade_tt_freeze_dense(t.m);
    }
    t.n_order = d.n_train - d.first_train;
    if (batch_alloc(&t.b, o->batch, o->n_neg, ds->n_items) != 0 ||
        !(t.order = malloc((t.n_order + 1) * sizeof(uint32_t)))) {
        rc = CASCADE_ENOMEM;
        goto nomem;
    }
    for (size_t i = 0; i < t.n_order; i++)
        t.order[i] = (uint32_t)(d.first_train + i);
    cascade_nn_optim_adam(&t.opt, o->lr);
    cascade_rng_seed(&t.rng, o->seed ^ 0x7477u);
    bool evaluated;
    rc = train_epochs(&t, &d, sum, &evaluated, err, errlen);
    sum->hard_drawn = t.hard_drawn;
    if (rc != 0)
        goto out;
    if (sum->holdout && !evaluated && (rc = evaluate(t.m, &d, o, sum, err, errlen)) != 0)
        goto out;
    if (o->model_dir && (rc = publish(t.m, &d, o, sum, err, errlen)) != 0)
        goto out;
    sum->seconds = (double)(cascade_now_us() - t0) / 1e6;
    if (model) {
        *model = t.m;
        t.m = NULL;
    }
    goto out;
nomem:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "out of memory");
out:
    batch_free(&t.b);
    free(t.order);
    cascade_negsample_destroy(t.ns);
    cascade_twotower_destroy(t.m);
    data_free(&d);
    return rc;
}

/* The incremental update's settings: the published version's widths and
 * temperature, and since_ts from its data unless given. */
static int incremental_opts(struct cascade_train_twotower_opts *o, char *err, size_t errlen)
{
    char name[256], path[1300], why[512];
    struct cascade_twotower_config c;
    int64_t ref_ts = 0;
    if (!o->model_dir) {
        snprintf(err, errlen, "train-two-tower: --incremental needs --model-dir");
        return CASCADE_EINVAL;
    }
    int rc = cascade_latest_current(o->model_dir, "two-tower.latest", name, sizeof(name), path,
                                    sizeof(path), why, sizeof(why));
    if (rc == 0)
        rc = cascade_tt_version_info(o->model_dir, name, &c, &ref_ts, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen,
                 "train-two-tower: --incremental needs a published two-tower version in %s "
                 "(run a full train-two-tower first): %s",
                 o->model_dir, why);
        return rc == CASCADE_ENOTFOUND ? CASCADE_EINVAL : rc;
    }
    o->emb_dim = c.emb_dim;
    o->hidden = c.hidden;
    o->out_dim = c.out_dim;
    o->temperature = c.temperature;
    o->warm_start = true;
    if (o->since_ts == 0)
        o->since_ts = ref_ts;
    return 0;
}

int cascade_train_twotower_run(const cascade_dataset *ds,
                               const struct cascade_train_twotower_opts *o,
                               struct cascade_train_twotower_summary *sum, cascade_twotower **model,
                               char *err, size_t errlen)
{
    struct cascade_train_twotower_opts lo = *o;
    if (o->incremental) {
        memset(sum, 0, sizeof(*sum));
        if (model)
            *model = NULL;
        int rc = incremental_opts(&lo, err, errlen);
        if (rc != 0)
            return rc;
    }
    return run(ds, &lo, sum, model, err, errlen);
}

/* ------------------------------------------------------------ command */

static int parse_mode(const char *s, enum cascade_twotower_objective *out)
{
    static const struct {
        const char *name;
        enum cascade_twotower_objective obj;
    } modes[] = {{"listwise", CASCADE_TWOTOWER_LISTWISE},
                 {"pointwise", CASCADE_TWOTOWER_POINTWISE},
                 {"hinge", CASCADE_TWOTOWER_TRIPLET_HINGE},
                 {"log", CASCADE_TWOTOWER_TRIPLET_LOG}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(s, modes[i].name) == 0) {
            *out = modes[i].obj;
            return 0;
        }
    return CASCADE_EINVAL;
}

#define TT_HARD_REDIS_BATCH 512 /* users per LRANGE round trip */
#define TT_HARD_DEFAULT_RATIO 0.25

/* The command's hard-negative sources. */
struct tt_hard_cli {
    const char *file, *redis, *ns;
    double ratio; /* < 0: not given (TT_HARD_DEFAULT_RATIO with a source, else 0) */
};

static int read_hard_redis(struct cascade_tt_hardneg *h, const cascade_dataset *ds,
                           const struct tt_hard_cli *c, char *err, size_t errlen)
{
    cascade_redis *r = cascade_build_redis_connect(c->redis, err, errlen);
    if (!r)
        return CASCADE_EUNAVAILABLE;
    int rc = cascade_tt_hardneg_read_redis(h, ds, r, c->ns, TT_HARD_REDIS_BATCH, err, errlen);
    cascade_redis_destroy(r);
    return rc;
}

/* With --redis: the items put online join the data first (online_items.h),
 * as in every Redis job of the build, so that the 15-minute incremental
 * update learns rows for the items put since the nightly build. */
static int export_online_items(const struct tt_hard_cli *c, const char *data, bool quiet, char *err,
                               size_t errlen)
{
    if (!c->redis)
        return 0;
    size_t n = 0;
    cascade_redis *r = cascade_build_redis_connect(c->redis, err, errlen);
    if (!r)
        return CASCADE_EUNAVAILABLE;
    int rc = cascade_online_items_export(r, c->ns, data, &n, err, errlen);
    cascade_redis_destroy(r);
    if (rc == 0 && n && !quiet)
        fprintf(stderr, "data: %zu items added online exported from %s:items:online to %s/%s\n", n,
                c->ns, data, CASCADE_DS_ONLINE_ITEMS);
    return rc;
}

/* Read the hard candidates of --hard-negatives and/or --redis into h and
 * point o at them. Nothing to do without a source. */
static int load_hard(const cascade_dataset *ds, const struct tt_hard_cli *c,
                     struct cascade_tt_hardneg *h, struct cascade_train_twotower_opts *o, char *err,
                     size_t errlen)
{
    int rc = 0;
    if (!c->file && !c->redis)
        return 0;
    if (c->file && (rc = cascade_tt_hardneg_read_file(h, ds, c->file, err, errlen)) != 0)
        return rc;
    if (c->redis && (rc = read_hard_redis(h, ds, c, err, errlen)) != 0)
        return rc;
    if ((rc = cascade_tt_hardneg_finish(h, ds)) != 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    o->hard = h;
    o->hard_ratio = c->ratio < 0 ? TT_HARD_DEFAULT_RATIO : c->ratio;
    return 0;
}

static void print_summary(const struct cascade_train_twotower_opts *o,
                          const struct cascade_train_twotower_summary *s,
                          const struct cascade_tt_hardneg *h)
{
    printf("train-two-tower: %zu positives (%zu train, %zu held out); final loss %.4f\n",
           s->examples, s->train, s->holdout, s->final_loss);
    if (o->hard)
        printf("train-two-tower: hard negatives: %zu read (%zu unknown users, %zu unknown items "
               "skipped), %zu training users with candidates, %zu drawn (ratio %.2f)\n",
               h->read, h->unknown_users, h->unknown_items, s->hard_users, s->hard_drawn,
               o->hard_ratio);
    if (o->incremental)
        printf("train-two-tower: incremental from %s: %zu positives after %" PRId64
               ", %zu parameters frozen (only id embeddings trained)\n",
               s->warm_from, s->new_examples, s->since_ts, s->frozen_params);
    printf("train-two-tower: held-out recall@%zu %.4f over %zu users\n", o->eval_k, s->recall_at_k,
           s->eval_users);
    printf("train-two-tower: item index: %zu lists, default nprobe %zu, IVF recall@100 vs exact "
           "%.4f (queries: up to 1000 users' vectors)\n",
           s->ivf_nlist, s->ivf_nprobe, s->ivf_recall);
    printf("train-two-tower: model %s, items %s (version %s) in %.1fs\n", s->model_path,
           s->items_path, s->version, s->seconds);
    printf("train-two-tower: %s: %s\n",
           s->gate.publish ? "two-tower.latest updated" : "not published", s->gate.message);
}

int cascade_train_twotower_command(int argc, char **argv)
{
    struct cascade_train_twotower_opts o;
    struct tt_hard_cli hc = {.ns = "cascade", .ratio = -1};
    struct cascade_tt_hardneg h = {0};
    const char *data = NULL, *mode = "listwise", *weights = NULL;
    char err[1024];
    cascade_train_twotower_defaults(&o);
    double lr = o.lr, temp = o.temperature;
    bool cold = false;
    const struct cascade_flag flags[] = {
        {"data", CASCADE_FLAG_STRING, &data, "directory of users/items/events.tsv; required", 0, 0},
        {"model-dir", CASCADE_FLAG_STRING, &o.model_dir,
         "where two-tower-<time>.* and two-tower.latest go; required", 0, 0},
        {"mode", CASCADE_FLAG_STRING, &mode, "objective: listwise, pointwise, hinge or log", 0, 0},
        {"epochs", CASCADE_FLAG_SIZE, &o.epochs, "training epochs", 1, 1000},
        {"batch-size", CASCADE_FLAG_SIZE, &o.batch, "mini-batch size", 1, 8192},
        {"negatives", CASCADE_FLAG_SIZE, &o.n_neg, "sampled negatives per example", 0, 1024},
        {"last-n", CASCADE_FLAG_SIZE, &o.last_n, "history items pooled by the user tower", 0,
         10000},
        {"learning-rate", CASCADE_FLAG_DOUBLE, &lr, "Adam step size", 1e-7, 10},
        {"emb-dim", CASCADE_FLAG_SIZE, &o.emb_dim, "feature embedding width", 1, 1024},
        {"hidden", CASCADE_FLAG_SIZE, &o.hidden, "hidden layer width (0 = linear towers)", 0, 4096},
        {"out-dim", CASCADE_FLAG_SIZE, &o.out_dim, "user/item vector width", 1, 1024},
        {"temperature", CASCADE_FLAG_DOUBLE, &temp, "softmax temperature", 1e-4, 10},
        {"holdout-frac", CASCADE_FLAG_DOUBLE, &o.holdout_frac,
         "share of positives (the latest) held out", 0, 0.9},
        {"k", CASCADE_FLAG_SIZE, &o.eval_k, "K of the held-out recall@K", 1, 100000},
        {"eval-users", CASCADE_FLAG_SIZE, &o.eval_users, "held-out users evaluated at most", 1,
         1e9},
        {"weights", CASCADE_FLAG_STRING, &weights,
         "positive event types, e.g. click=1,like=2 (0 = not a positive)", 0, 0},
        {"hard-ratio", CASCADE_FLAG_DOUBLE, &hc.ratio,
         "share of --negatives drawn from the user's hard negatives (-1 = 0.25 with a source, "
         "else 0)",
         -1, 1},
        {"hard-negatives", CASCADE_FLAG_STRING, &hc.file,
         "TSV of user_id<TAB>item_id hard negatives (items the ranker cut)", 0, 0},
        {"redis", CASCADE_FLAG_STRING, &hc.redis,
         "Redis HOST:PORT: export {ns}:items:online into DATA/items.online.tsv first, and read "
         "hard negatives from {ns}:user:{uid}:hardneg",
         0, 0},
        {"namespace", CASCADE_FLAG_STRING, &hc.ns, "Redis key namespace", 0, 0},
        {"seed", CASCADE_FLAG_U64, &o.seed, "initialisation, shuffling and sampling seed", 0, 0},
        {"no-warm-start", CASCADE_FLAG_BOOL, &cold,
         "train from a fresh initialisation, not from model-dir's current version", 0, 0},
        {"incremental", CASCADE_FLAG_BOOL, &o.incremental,
         "incremental update: from the published version, train only the id embeddings on the "
         "events after --since, in time order (docs/closed-loop.md)",
         0, 0},
        {"since", CASCADE_FLAG_I64, &o.since_ts,
         "with --incremental: the events after this Unix time are new (0 = after the published "
         "version's newest event)",
         0, 1e12},
        CASCADE_TRAIN_GATE_FLAG_FLOOR(&o.gate),
        CASCADE_TRAIN_GATE_FLAG_TOLERANCE(&o.gate),
        CASCADE_TRAIN_GATE_FLAG_FORCE(&o.gate),
        {"quiet", CASCADE_FLAG_BOOL, &o.quiet, "no progress on stderr", 0, 0},
    };
    size_t n = sizeof(flags) / sizeof(flags[0]);
    int rc = cascade_flags_parse(argc, argv, 2, flags, n, err, sizeof(err));
    o.warm_start = !cold;
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(stdout,
                            "cascade-build train-two-tower --data DIR --model-dir DIR [flags]",
                            "Train the two-tower retrieval model on the event log, report held-out "
                            "recall@K on a time split,\nand publish model, id maps and item index "
                            "as model-dir/two-tower-<time>.* (docs/twotower.md).\nThe gate's "
                            "metric is the held-out recall@K; its floor is at least chance, K / "
                            "items." CASCADE_TRAIN_GATE_HELP,
                            flags, n);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (rc == 0 && cold && o.incremental) {
        snprintf(err, sizeof(err),
                 "--incremental starts from the published version; it cannot "
                 "be combined with --no-warm-start");
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && (!data || !o.model_dir)) {
        snprintf(err, sizeof(err), "--data and --model-dir are required");
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && hc.ratio > 0 && !hc.file && !hc.redis) {
        snprintf(err, sizeof(err), "--hard-ratio needs --hard-negatives FILE or --redis HOST:PORT");
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && parse_mode(mode, &o.mode) != 0) {
        snprintf(err, sizeof(err), "--mode: expected listwise, pointwise, hinge or log, got '%s'",
                 mode);
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && weights)
        rc = cascade_behaviour_weights_parse(&o.weights, weights, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "cascade-build train-two-tower: %s\n", err);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    o.lr = (float)lr;
    o.temperature = (float)temp;
    cascade_dataset *ds = NULL;
    struct cascade_train_twotower_summary s;
    if ((rc = export_online_items(&hc, data, o.quiet, err, sizeof(err))) == 0 &&
        (rc = cascade_dataset_read(data, &ds, err, sizeof(err))) == 0 &&
        (rc = load_hard(ds, &hc, &h, &o, err, sizeof(err))) == 0)
        rc = cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err));
    cascade_dataset_destroy(ds);
    if (rc == 0)
        print_summary(&o, &s, &h);
    cascade_tt_hardneg_free(&h);
    if (rc != 0) {
        fprintf(stderr, "cascade-build train-two-tower: %s\n", err);
    }
    return cascade_train_gate_exit_status(rc, rc == 0 && s.gate.publish);
}
