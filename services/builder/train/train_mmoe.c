/* cascade-build train-mmoe: multi-task labels from the event log, negative
 * down-sampling, warm start, Adam training of the MMoE ranker with per-epoch
 * progress, held-out AUC / log loss / ECE per task and the oracle AUC, and
 * publication of rank-mmoe-<UTC>.safetensors plus rank-mmoe.latest. */
#include "train_mmoe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build_cli.h"
#include "calibration.h"
#include "clock.h"
#include "error.h"
#include "events.h"
#include "flags.h"
#include "idmap.h"
#include "lr.h"
#include "rank_features.h"
#include "safetensors.h"
#include "train_progress.h"
#include "train_warm.h"

#define NO_ROW UINT32_MAX
#define LABEL_WATCH (-2)
#define LABEL_COMPLETE (-3)
#define D CASCADE_RANK_FEATURES

void cascade_train_mmoe_defaults(struct cascade_train_mmoe_opts *o)
{
    memset(o, 0, sizeof(*o));
    cascade_train_rank_defaults(&o->rank);
    o->epochs = 3;
    o->batch = 256;
    o->lr = 1e-3f;
    o->n_experts = 4;
    o->expert_hidden = 32;
    o->tower_hidden = 16;
    o->expert_dropout = 0.1f;
    o->complete_frac = 0.8;
    o->seed = 1;
    o->neg_sample_rate = 1;
    o->warm_start = true;
    cascade_train_gate_defaults(&o->gate);
}

/* ---- labels ---- */

/* The event type that labels a task, LABEL_WATCH / LABEL_COMPLETE, or 0. */
static int task_source(const char *name)
{
    static const struct {
        const char *name;
        int source;
    } map[] = {{"click", CASCADE_EV_CLICK},     {"like", CASCADE_EV_LIKE},
               {"collect", CASCADE_EV_COLLECT}, {"share", CASCADE_EV_SHARE},
               {"watch_time", LABEL_WATCH},     {"complete", LABEL_COMPLETE}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, name) == 0)
            return map[i].source;
    return 0;
}

/* played[r] = seconds played after example r's impression; labels of the
 * event-sourced tasks set to 1. */
static int scan_events(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                       const int *source, size_t T, float *labels, float *played)
{
    size_t impressions = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        impressions += ds->events[i].type == CASCADE_EV_IMPRESSION;
    /* (user, item) → example row of the pair's latest impression (NO_ROW when
     * that impression is not an example). */
    cascade_idmap p;
    if (cascade_idmap_init(&p, NULL, impressions) != 0)
        return CASCADE_ENOMEM;
    uint32_t *row_of = malloc((ds->n_events + 1) * sizeof(uint32_t));
    int rc = CASCADE_ENOMEM;
    if (!row_of)
        goto out;
    for (size_t i = 0; i < ds->n_events; i++)
        row_of[i] = NO_ROW;
    for (size_t r = 0; r < ex->n; r++)
        row_of[ex->event[r]] = (uint32_t)r;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        uint64_t key = (uint64_t)e->user * ds->n_items + e->item + 1;
        if (e->type == CASCADE_EV_IMPRESSION) {
            struct cascade_idmap_entry *en = cascade_idmap_upsert(&p, key, NULL);
            if (!en)
                goto out;
            en->index = row_of[i];
            continue;
        }
        const struct cascade_idmap_entry *en = cascade_idmap_find(&p, key);
        if (!en || en->index == NO_ROW)
            continue;
        if (e->type == CASCADE_EV_PLAY && e->value > 0)
            played[en->index] += e->value;
        for (size_t t = 0; t < T; t++)
            if (source[t] == (int)e->type)
                labels[(size_t)en->index * T + t] = 1.0f;
    }
    rc = 0;
out:
    cascade_idmap_release(&p);
    free(row_of);
    return rc;
}

int cascade_mmoe_labels_build(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                              const struct cascade_mmoe_config *c, double complete_frac,
                              float *labels, float *weights, char *err, size_t errlen)
{
    size_t T = c->n_tasks;
    int source[CASCADE_MMOE_MAX_TASKS];
    for (size_t t = 0; t < T; t++) {
        source[t] = task_source(c->tasks[t].name);
        if (source[t] == 0) {
            snprintf(err, errlen,
                     "no label for task '%s' (known: click, like, collect, share, "
                     "watch_time, complete)",
                     c->tasks[t].name);
            return CASCADE_EINVAL;
        }
    }
    float *played = calloc(ex->n + 1, sizeof(float));
    if (!played) {
        snprintf(err, errlen, "out of memory for %zu examples", ex->n);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < ex->n * T; i++) {
        labels[i] = 0.0f;
        weights[i] = 1.0f;
    }
    int rc = scan_events(ds, ex, source, T, labels, played);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory for the labels");
        goto out;
    }
    for (size_t r = 0; r < ex->n; r++) {
        float duration = ds->items[ds->events[ex->event[r]].item].duration_s;
        for (size_t t = 0; t < T; t++) {
            if (source[t] == LABEL_WATCH) {
                labels[r * T + t] = played[r];
            } else if (source[t] == LABEL_COMPLETE) {
                labels[r * T + t] =
                    duration > 0 && played[r] >= complete_frac * duration ? 1.0f : 0.0f;
                weights[r * T + t] = duration > 0 ? 1.0f : 0.0f;
            }
        }
    }
out:
    free(played);
    return rc;
}

/* ---- training ---- */

struct job {
    const struct cascade_train_mmoe_opts *o;
    cascade_mmoe *m;
    cascade_mmoe_scratch *s;
    size_t T, n, n_train;
    float *Xs; /* standardised features [n, D] */
    const float *X, *labels, *weights;
    float mean[D], std[D];
    uint32_t *rows; /* training rows after down-sampling */
    size_t n_rows;
    double alpha; /* negative keep rate */
    int click;    /* index of the click task, -1 = none */
};

/* mean/std of every feature over the training rows; Xs = (X − mean)/std. */
static void standardise(struct job *j)
{
    for (size_t d = 0; d < D; d++) {
        double s = 0, ss = 0;
        for (size_t r = 0; r < j->n_train; r++) {
            double v = j->X[r * D + d];
            s += v;
            ss += v * v;
        }
        double mu = s / (double)j->n_train, var = ss / (double)j->n_train - mu * mu;
        j->mean[d] = (float)mu;
        j->std[d] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
    for (size_t r = 0; r < j->n; r++)
        for (size_t d = 0; d < D; d++)
            j->Xs[r * D + d] = (j->X[r * D + d] - j->mean[d]) / j->std[d];
}

/* W·((x − mean)/std) + b = (W/std)·x + (b − W·(mean/std)): rewrite a first
 * layer so that it takes raw features. */
static int fold_layer(cascade_nn_params *ps, const char *prefix, const float *mean,
                      const float *std)
{
    char name[64];
    snprintf(name, sizeof(name), "%s.weight", prefix);
    struct cascade_nn_param *w = cascade_nn_params_find(ps, name);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    struct cascade_nn_param *b = cascade_nn_params_find(ps, name);
    if (!w || !b || w->cols != D)
        return CASCADE_EINTERNAL;
    for (size_t o = 0; o < w->rows; o++) {
        double shift = 0;
        for (size_t d = 0; d < D; d++) {
            shift += (double)w->value[o * D + d] * mean[d] / std[d];
            w->value[o * D + d] /= std[d];
        }
        b->value[o] = (float)(b->value[o] - shift);
    }
    return 0;
}

static int fold_standardisation(struct job *j)
{
    const struct cascade_mmoe_config *c = cascade_mmoe_config(j->m);
    cascade_nn_params *ps = cascade_mmoe_params(j->m);
    char prefix[48];
    int rc = 0;
    for (size_t e = 0; e < c->n_experts && rc == 0; e++) {
        snprintf(prefix, sizeof(prefix), "experts.%zu.0", e);
        rc = fold_layer(ps, prefix, j->mean, j->std);
    }
    for (size_t t = 0; t < c->n_tasks && rc == 0; t++) {
        snprintf(prefix, sizeof(prefix), "gates.%zu", t);
        rc = fold_layer(ps, prefix, j->mean, j->std);
    }
    return rc;
}

/* Held-out metrics of every task on features X [n, D] (rows [n_train, n)). */
static int evaluate(struct job *j, const float *X, struct cascade_train_mmoe_task_report *rep)
{
    const struct cascade_mmoe_config *c = cascade_mmoe_config(j->m);
    size_t nh = j->n - j->n_train, T = j->T;
    float *z = malloc(nh * T * sizeof(float));
    float *p = malloc(nh * sizeof(float)), *y = malloc(nh * sizeof(float));
    float *bin = malloc(nh * sizeof(float));
    int rc = CASCADE_ENOMEM;
    if (!z || !p || !y || !bin)
        goto out;
    if ((rc = cascade_mmoe_logits(j->m, j->s, X + j->n_train * D, nh, z)) != 0)
        goto out;
    for (size_t t = 0; t < T; t++) {
        size_t k = 0;
        double sum = 0, raw = 0, served = 0;
        bool calibrate = (int)t == j->click && j->alpha < 1;
        for (size_t r = 0; r < nh; r++) {
            size_t i = (j->n_train + r) * T + t;
            if (j->weights[i] <= 0)
                continue;
            p[k] = cascade_mmoe_serve(CASCADE_MMOE_BINARY, z[r * T + t]);
            raw += p[k];
            if (calibrate)
                p[k] = (float)cascade_calibrate_downsampled(p[k], j->alpha);
            served += p[k];
            y[k] = cascade_mmoe_target(c->tasks[t].kind, j->labels[i]);
            bin[k] = j->labels[i] > 0 ? 1.0f : 0.0f;
            sum += y[k++];
        }
        snprintf(rep[t].name, sizeof(rep[t].name), "%s", c->tasks[t].name);
        rep[t].labelled = k;
        rep[t].positive_rate = k ? sum / (double)k : NAN;
        rep[t].auc = k ? cascade_auc(p, bin, k) : NAN;
        rep[t].logloss = k ? cascade_logloss(p, y, k) : NAN;
        rep[t].ece = k ? cascade_ece(p, y, k, 10) : NAN;
        rep[t].mean_pred = k ? served / (double)k : NAN;
        rep[t].mean_raw = k ? raw / (double)k : NAN;
    }
    rc = 0;
out:
    free(z);
    free(p);
    free(y);
    free(bin);
    return rc;
}

static double now_s(void)
{
    return (double)cascade_now_us() / 1e6;
}

static void print_epoch(const struct job *j, size_t epoch, size_t step, double loss,
                        const struct cascade_train_mmoe_task_report *rep, double elapsed_s)
{
    char metrics[512] = "held-out AUC";
    size_t len = strlen(metrics);
    for (size_t t = 0; t < j->T && len < sizeof(metrics); t++)
        len += (size_t)snprintf(metrics + len, sizeof(metrics) - len, " %s %.4f", rep[t].name,
                                rep[t].auc);
    struct cascade_train_epoch e = {.job = "train-mmoe",
                                    .epoch = epoch,
                                    .epochs = j->o->epochs,
                                    .step = step,
                                    .loss = loss,
                                    .metrics = metrics,
                                    .examples = epoch * j->n_rows,
                                    .elapsed_s = elapsed_s};
    cascade_train_epoch_print(stderr, &e);
}

/* One shuffled pass per epoch over the training rows, in mini-batches. */
static int train_epochs(struct job *j, struct cascade_train_mmoe_task_report *rep, char *err,
                        size_t errlen)
{
    size_t B = j->o->batch, T = j->T;
    uint32_t *order = malloc((j->n_rows + 1) * sizeof(uint32_t));
    float *xb = malloc(B * D * sizeof(float)), *lb = malloc(B * T * sizeof(float));
    float *wb = malloc(B * T * sizeof(float));
    int rc = CASCADE_ENOMEM;
    if (!order || !xb || !lb || !wb) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct cascade_rng rng;
    cascade_rng_seed(&rng, j->o->seed ^ 0x5eed);
    struct cascade_nn_optim opt;
    cascade_nn_optim_adam(&opt, j->o->lr);
    memcpy(order, j->rows, j->n_rows * sizeof(uint32_t));
    size_t step = 0;
    double t0 = now_s();
    for (size_t ep = 1; ep <= j->o->epochs; ep++) {
        for (size_t i = j->n_rows; i > 1; i--) { /* Fisher-Yates */
            size_t k = (size_t)cascade_rng_below(&rng, i);
            uint32_t tmp = order[i - 1];
            order[i - 1] = order[k];
            order[k] = tmp;
        }
        double loss_sum = 0;
        size_t batches = 0;
        for (size_t start = 0; start < j->n_rows; start += B) {
            size_t b = j->n_rows - start < B ? j->n_rows - start : B;
            for (size_t r = 0; r < b; r++) {
                size_t row = order[start + r];
                memcpy(xb + r * D, j->Xs + row * D, D * sizeof(float));
                memcpy(lb + r * T, j->labels + row * T, T * sizeof(float));
                memcpy(wb + r * T, j->weights + row * T, T * sizeof(float));
            }
            cascade_mmoe_draw_dropout(j->m, j->s, &rng, b);
            double l = cascade_mmoe_backward(j->m, j->s, xb, lb, wb, b, true, NULL);
            if (isnan(l) || (rc = cascade_nn_optim_step(&opt, cascade_mmoe_params(j->m))) != 0) {
                snprintf(err, errlen, "training step %zu failed (loss %g)", step, l);
                rc = rc ? rc : CASCADE_EINTERNAL;
                goto out;
            }
            loss_sum += l;
            batches++;
            step++;
        }
        if ((rc = evaluate(j, j->Xs, rep)) != 0) {
            snprintf(err, errlen, "evaluation failed");
            goto out;
        }
        if (!j->o->quiet)
            print_epoch(j, ep, step, loss_sum / (double)batches, rep, now_s() - t0);
    }
    rc = 0;
out:
    free(order);
    free(xb);
    free(lb);
    free(wb);
    return rc;
}

/* ---- down-sampling, completion rates, warm start, oracle ---- */

/* The training rows after keeping examples without a click at rate α; the
 * kept negatives weigh 1/α in every task but click (which is calibrated at
 * serving instead). Seeded by o->seed. */
static int sample_rows(struct job *j, const struct cascade_rank_examples *ex, float *weights)
{
    struct cascade_rng rng;
    j->rows = malloc((j->n_train + 1) * sizeof(uint32_t));
    if (!j->rows)
        return CASCADE_ENOMEM;
    cascade_rng_seed(&rng, j->o->seed ^ 0x5a3b1e5ULL);
    for (size_t r = 0; r < j->n_train; r++) {
        bool neg = !(ex->y[r] > 0);
        if (neg && j->alpha < 1) {
            if (cascade_rng_uniform(&rng) >= j->alpha)
                continue;
            for (size_t t = 0; t < j->T; t++)
                if ((int)t != j->click)
                    weights[r * j->T + t] = (float)(weights[r * j->T + t] / j->alpha);
        }
        j->rows[j->n_rows++] = (uint32_t)r;
    }
    return 0;
}

/* f(duration) of the completion adjustment: the mean completion label of
 * the training videos per duration bucket (upper edges below; a bucket
 * without videos gets the overall mean), as "15:0.61,30:0.52,...,inf:0.2".
 * "" when the model has no complete task. */
static void complete_rates(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                           const struct job *j, char *out, size_t len)
{
    static const double edges[] = {15, 30, 60, 120, 300, INFINITY};
    enum { NB = sizeof(edges) / sizeof(edges[0]) };
    double pos[NB] = {0}, cnt[NB] = {0}, all_pos = 0, all = 0;
    const struct cascade_mmoe_config *c = cascade_mmoe_config(j->m);
    int t = cascade_mmoe_task_index(j->m, "complete");
    out[0] = '\0';
    if (t < 0 || c->tasks[t].kind != CASCADE_MMOE_BINARY)
        return;
    for (size_t r = 0; r < j->n_train; r++) {
        size_t i = r * j->T + (size_t)t;
        if (j->weights[i] <= 0)
            continue;
        double d = ds->items[ds->events[ex->event[r]].item].duration_s;
        size_t b = 0;
        while (b + 1 < NB && d >= edges[b])
            b++;
        pos[b] += j->labels[i];
        cnt[b] += 1;
        all_pos += j->labels[i];
        all += 1;
    }
    if (all == 0)
        return;
    size_t off = 0;
    for (size_t b = 0; b < NB && off < len; b++) {
        double rate = cnt[b] > 0 ? pos[b] / cnt[b] : all_pos / all;
        if (isinf(edges[b]))
            off += (size_t)snprintf(out + off, len - off, "%sinf:%.4f", b ? "," : "", rate);
        else
            off +=
                (size_t)snprintf(out + off, len - off, "%s%g:%.4f", b ? "," : "", edges[b], rate);
    }
}

static bool same_shape(const struct cascade_mmoe_config *a, const struct cascade_mmoe_config *b)
{
    if (a->input_dim != b->input_dim || a->n_experts != b->n_experts ||
        a->expert_hidden != b->expert_hidden || a->tower_hidden != b->tower_hidden ||
        a->n_tasks != b->n_tasks)
        return false;
    for (size_t t = 0; t < a->n_tasks; t++)
        if (strcmp(a->tasks[t].name, b->tasks[t].name) != 0 || a->tasks[t].kind != b->tasks[t].kind)
            return false;
    return true;
}

/* The inverse of fold_layer: W·x + b = (W·std)·((x − mean)/std) + (b + W·mean). */
static void unfold_layer(cascade_nn_params *ps, const char *prefix, const float *mean,
                         const float *std)
{
    char name[64];
    snprintf(name, sizeof(name), "%s.weight", prefix);
    struct cascade_nn_param *w = cascade_nn_params_find(ps, name);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    struct cascade_nn_param *b = cascade_nn_params_find(ps, name);
    if (!w || !b || w->cols != D)
        return;
    for (size_t o = 0; o < w->rows; o++) {
        double shift = 0;
        for (size_t d = 0; d < D; d++) {
            shift += (double)w->value[o * D + d] * mean[d];
            w->value[o * D + d] *= std[d];
        }
        b->value[o] = (float)(b->value[o] + shift);
    }
}

/* Start from the weights of the model named by model-dir/rank-mmoe.latest
 * when it has this model's shape and tasks (re-expressed for standardised
 * inputs; call after standardise). Anything else trains from scratch, with
 * the reason on stderr. from receives the file name used, "" when none. */
static int warm_apply(void *ctx, const char *dir, const char *name, const char *path, char *detail,
                      size_t detaillen, char *err, size_t errlen)
{
    (void)dir, (void)name, (void)detail, (void)detaillen;
    struct job *j = ctx;
    cascade_mmoe *prev = cascade_mmoe_load(path, err, errlen);
    if (!prev)
        return CASCADE_EIO;
    if (!same_shape(cascade_mmoe_config(prev), cascade_mmoe_config(j->m))) {
        snprintf(err, errlen, "different shape or tasks");
        cascade_mmoe_destroy(prev);
        return CASCADE_EINVAL;
    }
    cascade_nn_params *dst = cascade_mmoe_params(j->m), *src = cascade_mmoe_params(prev);
    for (size_t i = 0; i < cascade_nn_params_count(dst); i++) {
        struct cascade_nn_param *d = cascade_nn_params_at(dst, i);
        struct cascade_nn_param *s = cascade_nn_params_find(src, d->name);
        if (s && s->size == d->size)
            memcpy(d->value, s->value, d->size * sizeof(float));
    }
    cascade_mmoe_destroy(prev);
    const struct cascade_mmoe_config *c = cascade_mmoe_config(j->m);
    char prefix[48];
    for (size_t e = 0; e < c->n_experts; e++) {
        snprintf(prefix, sizeof(prefix), "experts.%zu.0", e);
        unfold_layer(dst, prefix, j->mean, j->std);
    }
    for (size_t t = 0; t < c->n_tasks; t++) {
        snprintf(prefix, sizeof(prefix), "gates.%zu", t);
        unfold_layer(dst, prefix, j->mean, j->std);
    }
    return 0;
}

/* AUC of the true p_click on the held-out examples: the best any model can do. */
static double oracle_auc(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                         const struct cascade_train_mmoe_opts *o)
{
    float *owned = o->true_p_click ? NULL : cascade_rank_truth_read(ds, o->rank.truth_path);
    double auc = cascade_rank_oracle_auc(o->true_p_click ? o->true_p_click : owned, ex);
    free(owned);
    return auc;
}

/* ---- publication ---- */

/* Rewrite the file cascade_mmoe_save wrote with train-mmoe's extra metadata
 * (neg_sample_rate, complete_rate_by_duration), atomically. */
static int add_metadata(const cascade_mmoe *m, const char *path, double alpha, const char *rates,
                        char *err, size_t errlen)
{
    static const char *const keys[] = {"format",
                                       "input_dim",
                                       "n_experts",
                                       "expert_hidden",
                                       "tower_hidden",
                                       "tasks",
                                       "expert_dropout",
                                       "seed",
                                       "version",
                                       "neg_sample_rate",
                                       "complete_rate_by_duration"};
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    const char *vals[NK];
    char alpha_s[32];
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return CASCADE_EIO;
    const cascade_nn_params *ps = cascade_mmoe_params((cascade_mmoe *)m);
    size_t n = cascade_nn_params_count(ps), nk = 0;
    struct cascade_tensor *t = calloc(n + 1, sizeof(*t));
    int rc = CASCADE_ENOMEM;
    if (!t)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct cascade_tensor *x =
            cascade_safetensors_find(st, cascade_nn_params_at(ps, i)->name);
        if (!x) {
            snprintf(err, errlen, "%s: tensor %s missing after save", path,
                     cascade_nn_params_at(ps, i)->name);
            rc = CASCADE_EINTERNAL;
            goto out;
        }
        t[i] = *x;
    }
    snprintf(alpha_s, sizeof(alpha_s), "%.17g", alpha);
    const char *const *k = keys;
    const char *kv[NK];
    for (size_t i = 0; i + 2 < NK; i++) {
        const char *v = cascade_safetensors_meta(st, k[i]);
        if (v) {
            kv[nk] = k[i];
            vals[nk++] = v;
        }
    }
    kv[nk] = "neg_sample_rate";
    vals[nk++] = alpha_s;
    if (rates[0]) {
        kv[nk] = "complete_rate_by_duration";
        vals[nk++] = rates;
    }
    rc = cascade_safetensors_write(path, t, n, kv, vals, nk, err, errlen);
out:
    free(t);
    cascade_safetensors_destroy(st);
    return rc;
}

/* Click AUC of model m on the held-out rows of j (raw features X): the gate's
 * metric. Logits rank like the calibrated probabilities, so they serve. */
static int click_auc(const struct job *j, const cascade_mmoe *m, const float *X, double *auc,
                     char *err, size_t errlen)
{
    int t = cascade_mmoe_task_index(m, "click");
    size_t nh = j->n - j->n_train, Tm = cascade_mmoe_config(m)->n_tasks, k = 0;
    if (t < 0 || j->click < 0 || cascade_mmoe_config(m)->input_dim != D) {
        snprintf(err, errlen, "no click task or not %d input features", D);
        return CASCADE_EINVAL;
    }
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 256);
    float *z = malloc((nh + 1) * Tm * sizeof(float)), *p = malloc((nh + 1) * sizeof(float));
    float *y = malloc((nh + 1) * sizeof(float));
    int rc = CASCADE_ENOMEM;
    if (!s || !z || !p || !y || (rc = cascade_mmoe_logits(m, s, X + j->n_train * D, nh, z)) != 0)
        goto out;
    for (size_t r = 0; r < nh; r++) {
        size_t i = (j->n_train + r) * j->T + (size_t)j->click;
        if (j->weights[i] <= 0)
            continue;
        p[k] = z[r * Tm + (size_t)t];
        y[k++] = j->labels[i] > 0 ? 1.0f : 0.0f;
    }
    *auc = cascade_auc(p, y, k);
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "out of memory");
    cascade_mmoe_scratch_destroy(s);
    free(z);
    free(p);
    free(y);
    return rc;
}

/* This run's held-out data for the gate, and the summary whose metadata
 * goes into the saved model. */
struct mmoe_gate_ctx {
    const struct job *j;
    const float *X;
    const struct cascade_train_mmoe_summary *sum;
};

/* The gate's view of the published rank-mmoe model: its click AUC here. */
static int mmoe_gate_eval(void *ctx, const char *path, double *value, char *err, size_t errlen)
{
    const struct mmoe_gate_ctx *c = ctx;
    cascade_mmoe *prev = cascade_mmoe_load(path, err, errlen);
    int rc = prev ? click_auc(c->j, prev, c->X, value, err, errlen) : CASCADE_EIO;
    cascade_mmoe_destroy(prev);
    return rc;
}

/* The gate's save: this run's model at path with train-mmoe's metadata. */
static int mmoe_gate_save(void *ctx, const char *path, const char *version, char *err,
                          size_t errlen)
{
    const struct mmoe_gate_ctx *c = ctx;
    int rc = cascade_mmoe_save(c->j->m, path, version, err, errlen);
    if (rc != 0)
        return rc;
    return add_metadata(c->j->m, path, c->sum->neg_sample_rate, c->sum->complete_rates, err,
                        errlen);
}

/* Save the model under a new version and let the gate decide on
 * rank-mmoe.latest by held-out click AUC. */
static int publish(const struct job *j, const float *X, const char *dir,
                   struct cascade_train_mmoe_summary *sum, char *err, size_t errlen)
{
    struct mmoe_gate_ctx ctx = {j, X, sum};
    struct cascade_train_gate g;
    cascade_train_gate_init(&g, "train-mmoe", "rank-mmoe", "click_auc", &j->o->gate,
                            j->n - j->n_train, j->click >= 0 ? sum->tasks[j->click].auc : NAN);
    struct cascade_train_gate_target t = {.dir = dir,
                                          .latest = CASCADE_TRAIN_MMOE_LATEST,
                                          .eval = mmoe_gate_eval,
                                          .save = mmoe_gate_save,
                                          .ctx = &ctx,
                                          .quiet = j->o->quiet};
    return cascade_train_gate_publish(&g, &t, sum->model_path, sizeof(sum->model_path),
                                      sum->version, sizeof(sum->version), &sum->gate, err, errlen);
}

static cascade_mmoe *new_model(const struct cascade_train_mmoe_opts *o, char *err, size_t errlen)
{
    struct cascade_mmoe_config c;
    cascade_mmoe_config_default(&c, D);
    if (o->tasks && cascade_mmoe_config_set_tasks(&c, o->tasks, err, errlen) != 0)
        return NULL;
    c.n_experts = o->n_experts;
    c.expert_hidden = o->expert_hidden;
    c.tower_hidden = o->tower_hidden;
    c.expert_dropout = o->expert_dropout;
    c.seed = o->seed;
    return cascade_mmoe_create(&c, err, errlen);
}

int cascade_train_mmoe_run(const cascade_dataset *ds, const struct cascade_train_mmoe_opts *o,
                           struct cascade_train_mmoe_summary *sum, cascade_mmoe **model, char *err,
                           size_t errlen)
{
    struct cascade_train_mmoe_summary local;
    struct cascade_rank_examples ex;
    struct job j = {.o = o};
    float *labels = NULL, *weights = NULL;
    double t0 = now_s();
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof(*sum));
    sum->oracle_auc = NAN;
    memset(&ex, 0, sizeof(ex));
    if (model)
        *model = NULL;
    if (o->batch == 0 || o->epochs == 0) {
        snprintf(err, errlen, "--epochs and --batch must be at least 1");
        return CASCADE_EINVAL;
    }
    if (!(o->neg_sample_rate > 0 && o->neg_sample_rate <= 1)) {
        snprintf(err, errlen, "--neg-sample-rate %g is not in (0, 1]", o->neg_sample_rate);
        return CASCADE_EINVAL;
    }
    if (!(j.m = new_model(o, err, errlen)))
        return CASCADE_EINVAL;
    j.T = cascade_mmoe_config(j.m)->n_tasks;
    for (size_t t = 0; t < j.T; t++) { /* fail before the (long) replay */
        const char *name = cascade_mmoe_config(j.m)->tasks[t].name;
        if (task_source(name) == 0) {
            snprintf(err, errlen,
                     "no label for task '%s' (known: click, like, collect, share, "
                     "watch_time, complete)",
                     name);
            cascade_mmoe_destroy(j.m);
            return CASCADE_EINVAL;
        }
    }
    struct cascade_train_rank_opts rank = o->rank;
    rank.quiet = rank.quiet || o->quiet;
    int rc = cascade_rank_examples_build(ds, &rank, &ex, err, errlen);
    if (rc != 0)
        goto out;
    j.n = ex.n;
    j.n_train = ex.n_train;
    sum->examples = ex.n;
    sum->train = ex.n_train;
    sum->holdout = ex.n - ex.n_train;
    sum->n_tasks = j.T;
    if (ex.n_train == 0 || ex.n == ex.n_train) {
        snprintf(err, errlen, "%zu training and %zu held-out examples; need both", ex.n_train,
                 ex.n - ex.n_train);
        rc = CASCADE_EDATA;
        goto out;
    }
    /* The click labels are the examples' (train-rank's); the gate needs both classes. */
    if (cascade_mmoe_task_index(j.m, "click") >= 0 &&
        (rc = cascade_train_gate_check_labels(ex.y, ex.n_train, ex.n, err, errlen)) != 0)
        goto out;
    labels = malloc(ex.n * j.T * sizeof(float));
    weights = malloc(ex.n * j.T * sizeof(float));
    j.Xs = malloc(ex.n * D * sizeof(float));
    j.s = cascade_mmoe_scratch_create(j.m, o->batch);
    if (!labels || !weights || !j.Xs || !j.s) {
        snprintf(err, errlen, "out of memory for %zu examples", ex.n);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    rc = cascade_mmoe_labels_build(ds, &ex, cascade_mmoe_config(j.m), o->complete_frac, labels,
                                   weights, err, errlen);
    if (rc != 0)
        goto out;
    j.X = ex.X;
    j.labels = labels;
    j.weights = weights;
    standardise(&j);
    j.click = cascade_mmoe_task_index(j.m, "click");
    j.alpha = o->neg_sample_rate;
    sum->neg_sample_rate = j.alpha;
    complete_rates(ds, &ex, &j, sum->complete_rates, sizeof(sum->complete_rates));
    if ((rc = sample_rows(&j, &ex, weights)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    sum->sampled_train = j.n_rows;
    if (j.n_rows == 0) {
        snprintf(err, errlen, "no training example left after down-sampling");
        rc = CASCADE_EINVAL;
        goto out;
    }
    if (o->warm_start && (rc = cascade_train_warm_start(
                              "train-mmoe", o->model_dir, CASCADE_TRAIN_MMOE_LATEST, o->quiet,
                              warm_apply, &j, sum->warm_from, sizeof(sum->warm_from))) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    sum->oracle_auc = oracle_auc(ds, &ex, o);
    if ((rc = train_epochs(&j, sum->tasks, err, errlen)) != 0)
        goto out;
    /* The saved model takes raw features, like the Rank service computes them. */
    if ((rc = fold_standardisation(&j)) != 0 || (rc = evaluate(&j, ex.X, sum->tasks)) != 0 ||
        (rc = cascade_mmoe_gate_stats(j.m, j.s, ex.X + ex.n_train * D, ex.n - ex.n_train, NULL,
                                      sum->gate_entropy)) != 0) {
        snprintf(err, errlen, "final evaluation failed");
        goto out;
    }
    if (o->model_dir && (rc = publish(&j, ex.X, o->model_dir, sum, err, errlen)) != 0)
        goto out;
out:
    sum->seconds = now_s() - t0;
    cascade_rank_examples_free(&ex);
    cascade_mmoe_scratch_destroy(j.s);
    free(j.rows);
    free(j.Xs);
    free(labels);
    free(weights);
    if (rc == 0 && model)
        *model = j.m;
    else
        cascade_mmoe_destroy(j.m);
    return rc;
}

/* ---- the subcommand ---- */

static void print_summary(const struct cascade_train_mmoe_summary *s)
{
    printf("train-mmoe: %zu examples (%zu train, %zu held out); %.2fs\n", s->examples, s->train,
           s->holdout, s->seconds);
    for (size_t t = 0; t < s->n_tasks; t++) {
        const struct cascade_train_mmoe_task_report *r = &s->tasks[t];
        printf("train-mmoe: %-10s held-out AUC %.4f logloss %.4f ECE %.4f (rate %.4f, n %zu); "
               "gate entropy %.3f\n",
               r->name, r->auc, r->logloss, r->ece, r->positive_rate, r->labelled,
               s->gate_entropy[t]);
    }
    if (s->neg_sample_rate < 1)
        printf("train-mmoe: negatives kept at rate %g: %zu of %zu training examples; click "
               "calibrated p = a*q/(1-q+a*q): held-out mean %.4f (uncalibrated %.4f)\n",
               s->neg_sample_rate, s->sampled_train, s->train, s->tasks[0].mean_pred,
               s->tasks[0].mean_raw);
    for (size_t t = 0; t < s->n_tasks; t++)
        if (strcmp(s->tasks[t].name, "click") == 0 && !isnan(s->oracle_auc))
            printf("train-mmoe: click held-out AUC %.4f, oracle AUC (true p_click) %.4f, gap "
                   "%.4f\n",
                   s->tasks[t].auc, s->oracle_auc, s->oracle_auc - s->tasks[t].auc);
    if (s->complete_rates[0])
        printf("train-mmoe: completion rate by duration (f of p_complete/f): %s\n",
               s->complete_rates);
    printf("train-mmoe: %s%s\n", s->warm_from[0] ? "warm start from " : "fresh initialisation",
           s->warm_from);
    if (s->model_path[0])
        printf("train-mmoe: model %s (version %s), %s: %s\n", s->model_path, s->version,
               s->gate.publish ? CASCADE_TRAIN_MMOE_LATEST " updated" : "not published",
               s->gate.message);
}

int cascade_train_mmoe_command(int argc, char **argv)
{
    struct cascade_train_mmoe_opts o;
    const char *data = NULL;
    char err[1024];
    cascade_train_mmoe_defaults(&o);
    double lr = o.lr, dropout = o.expert_dropout;
    bool warm = false, cold = false;
    char truth[4096];
    const struct cascade_flag flags[] = {
        {"data", CASCADE_FLAG_STRING, &data, "directory of users/items/events.tsv; required", 0, 0},
        {"model-dir", CASCADE_FLAG_STRING, &o.model_dir,
         "where rank-mmoe-<time>.safetensors goes; required", 0, 0},
        {"tasks", CASCADE_FLAG_STRING, &o.tasks,
         "comma-separated tasks (default click,like,collect,share,watch_time,complete)", 0, 0},
        {"epochs", CASCADE_FLAG_SIZE, &o.epochs, "training epochs", 1, 1000},
        {"batch-size", CASCADE_FLAG_SIZE, &o.batch, "mini-batch size", 1, 1 << 20},
        {"learning-rate", CASCADE_FLAG_DOUBLE, &lr, "Adam step size", 1e-7, 10},
        {"experts", CASCADE_FLAG_SIZE, &o.n_experts, "shared experts", 1, CASCADE_MMOE_MAX_EXPERTS},
        {"expert-hidden", CASCADE_FLAG_SIZE, &o.expert_hidden, "expert width", 1, 4096},
        {"tower-hidden", CASCADE_FLAG_SIZE, &o.tower_hidden, "tower hidden width", 1, 4096},
        {"expert-dropout", CASCADE_FLAG_DOUBLE, &dropout, "expert dropout rate in training", 0,
         0.95},
        {"complete-frac", CASCADE_FLAG_DOUBLE, &o.complete_frac,
         "share of a video played that counts as complete", 0.01, 1},
        {"seed", CASCADE_FLAG_U64, &o.seed, "initialisation, shuffling and dropout seed", 0, 0},
        {"warmup-frac", CASCADE_FLAG_DOUBLE, &o.rank.warmup_frac,
         "share of impressions that only build feature state", 0, 0.95},
        {"holdout-frac", CASCADE_FLAG_DOUBLE, &o.rank.holdout_frac,
         "share of examples (the latest) held out", 0.001, 0.9},
        {"neg-sample-rate", CASCADE_FLAG_DOUBLE, &o.neg_sample_rate,
         "keep examples without a click at this rate (click calibrated back)", 1e-4, 1},
        {"warm-start", CASCADE_FLAG_BOOL, &warm,
         "start from model-dir/rank-mmoe.latest when it has the same shape (the default)", 0, 0},
        {"no-warm-start", CASCADE_FLAG_BOOL, &cold, "always start from a fresh initialisation", 0,
         0},
        {"truth", CASCADE_FLAG_STRING, &o.rank.truth_path,
         "generator truth.tsv for the oracle AUC (default DATA/truth.tsv when present)", 0, 0},
        CASCADE_TRAIN_GATE_FLAG_FLOOR(&o.gate),
        CASCADE_TRAIN_GATE_FLAG_TOLERANCE(&o.gate),
        CASCADE_TRAIN_GATE_FLAG_FORCE(&o.gate),
        {"quiet", CASCADE_FLAG_BOOL, &o.quiet, "no progress on stderr", 0, 0},
    };
    size_t n = sizeof(flags) / sizeof(flags[0]);
    int rc = cascade_flags_parse(argc, argv, 2, flags, n, err, sizeof(err));
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(
            stdout, "cascade-build train-mmoe --data DIR --model-dir DIR [flags]",
            "Train the MMoE multi-task ranker on the event log (the train-rank "
            "examples, one label per task)\nand publish "
            "model-dir/rank-mmoe-<time>.safetensors and point model-dir/rank-mmoe.latest at it.\n"
            "The gate's metric is the held-out click AUC." CASCADE_TRAIN_GATE_HELP,
            flags, n);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (rc == 0 && (!data || !o.model_dir)) {
        snprintf(err, sizeof(err), "--data and --model-dir are required");
        rc = CASCADE_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "cascade-build train-mmoe: %s\n", err);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    o.lr = (float)lr;
    o.expert_dropout = (float)dropout;
    o.warm_start = !cold;
    (void)warm;
    snprintf(truth, sizeof(truth), "%s/truth.tsv", data);
    if (!o.rank.truth_path && access(truth, R_OK) == 0)
        o.rank.truth_path = truth;
    cascade_dataset *ds = NULL;
    struct cascade_train_mmoe_summary s;
    if ((rc = cascade_dataset_read(data, &ds, err, sizeof(err))) == 0)
        rc = cascade_train_mmoe_run(ds, &o, &s, NULL, err, sizeof(err));
    cascade_dataset_destroy(ds);
    if (rc != 0) {
        fprintf(stderr, "cascade-build train-mmoe: %s\n", err);
        return cascade_train_gate_exit_status(rc, false);
    }
    print_summary(&s);
    return cascade_train_gate_exit_status(rc, s.gate.publish);
}
