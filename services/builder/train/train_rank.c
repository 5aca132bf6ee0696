/* Ranking training set from the event log (point-in-time features, click
 * labels), logistic regression training with held-out evaluation per epoch,
 * and publishing the model file plus its rank-lr.latest pointer. */
#include "train_rank.h"
#include "train_replay.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "rank_features.h"
#include "hash.h"
#include "idmap.h"
#include "interests.h"
#include "latest_file.h"
#include "progress.h"
#include "records.h"
#include "timescale.h"
#include "train_progress.h"
#include "train_warm.h"

#define NO_EVENT UINT32_MAX
#define MIN_STEPS 100 /* Adam steps per epoch, at least */
#define MIN_BATCH 32

void cascade_train_rank_defaults(struct cascade_train_rank_opts *o)
{
    memset(o, 0, sizeof(*o));
    cascade_train_gate_defaults(&o->gate);
    o->warmup_frac = 0.3;
    o->warm_start = true;
    o->holdout_frac = 0.1;
    o->affinity_half_life_days = CASCADE_TIMESCALE_AUTO;
    cascade_behaviour_weights_default(&o->weights);
    o->lr.epochs = 5;
    o->lr.batch_size = 1024;
    o->lr.learning_rate = 0.01f;
    o->lr.l2 = 1e-5f;
    o->lr.seed = 1;
}

/* ---- labels ---- */

static uint64_t pair_key(const cascade_dataset *ds, uint32_t user, uint32_t item)
{
    return (uint64_t)user * ds->n_items + item + 1;
}

/* label[e] = 1 for impression events followed by a click on the same pair
 * before that pair's next impression. */
static int click_labels(const cascade_dataset *ds, size_t impressions, uint8_t *label)
{
    /* (user, item) -> the pair's latest impression event (index). */
    cascade_idmap m;
    if (cascade_idmap_init(&m, NULL, impressions) != 0)
        return CASCADE_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        label[i] = 0;
        if (e->type != CASCADE_EV_IMPRESSION && e->type != CASCADE_EV_CLICK)
            continue;
        uint64_t key = pair_key(ds, e->user, e->item);
        if (e->type == CASCADE_EV_IMPRESSION) {
            struct cascade_idmap_entry *en = cascade_idmap_upsert(&m, key, NULL);
            if (!en) {
                rc = CASCADE_ENOMEM;
                goto out;
            }
            en->index = (uint32_t)i;
            continue;
        }
        struct cascade_idmap_entry *en = cascade_idmap_find(&m, key);
        if (en && en->index != NO_EVENT) {
            label[en->index] = 1;
            en->index = NO_EVENT; /* one click labels one impression */
        }
    }
out:
    cascade_idmap_release(&m);
    return rc;
}

/* ---- point-in-time replay ---- */

static void replay_features(const struct cascade_train_replay *rp, const struct cascade_ds_event *e,
                            float *x)
{
    cascade_v1_UserRecord user;
    cascade_v1_ItemRecord item;
    cascade_user_record_fill(&rp->ds->users[e->user], &rp->user_stats[e->user],
                             &rp->affinity[e->user], e->ts, rp->half_life_s, &user);
    cascade_item_record_fill(&rp->ds->items[e->item], &rp->item_stats[e->item], &item);
    cascade_features_rank(&user, &item, e->ts, x);
}

void cascade_rank_examples_free(struct cascade_rank_examples *ex)
{
    free(ex->X);
    free(ex->y);
    free(ex->event);
    memset(ex, 0, sizeof(*ex));
}

int cascade_rank_examples_build(const cascade_dataset *ds, const struct cascade_train_rank_opts *o,
                                struct cascade_rank_examples *ex, char *err, size_t errlen)
{
    struct cascade_train_replay rp;
    uint8_t *label = NULL;
    size_t impressions = 0, seen = 0, warmup;
    int rc = CASCADE_ENOMEM;
    struct cascade_progress prog;

    memset(ex, 0, sizeof(*ex));
    for (size_t i = 0; i < ds->n_events; i++)
        impressions += ds->events[i].type == CASCADE_EV_IMPRESSION;
    warmup = (size_t)(o->warmup_frac * (double)impressions);
    if (impressions <= warmup) {
        snprintf(err, errlen,
                 "no examples: %zu impressions in the log, %zu used for warm-up; "
                 "the data does not support this model",
                 impressions, warmup);
        return CASCADE_EDATA;
    }
    size_t cap = impressions - warmup;
    label = malloc(ds->n_events + 1);
    ex->X = malloc(cap * CASCADE_RANK_FEATURES * sizeof(float));
    ex->y = malloc(cap * sizeof(float));
    ex->event = malloc(cap * sizeof(uint32_t));
    if (cascade_train_replay_init(&rp, ds, o) != 0 || !label || !ex->X || !ex->y || !ex->event)
        goto out;
    if ((rc = click_labels(ds, impressions, label)) != 0)
        goto out;
    cascade_progress_start(&prog, "train-rank", "events replayed", ds->n_events, o->quiet);
    for (size_t i = 0, end; i < ds->n_events; i = end) {
        /* A served list's rows all see the state before the list. */
        end = cascade_dataset_request_end(ds, i);
        for (size_t j = i; j < end; j++) {
            const struct cascade_ds_event *e = &ds->events[j];
            if (e->type == CASCADE_EV_IMPRESSION && seen++ >= warmup) {
                replay_features(&rp, e, ex->X + ex->n * CASCADE_RANK_FEATURES);
                ex->y[ex->n] = label[j];
                ex->event[ex->n++] = (uint32_t)j;
            }
        }
        for (size_t j = i; j < end; j++)
            if ((rc = cascade_train_replay_apply(&rp, &ds->events[j])) != 0)
                goto out;
        if ((i >> 16) != (end >> 16))
            cascade_progress_update(&prog, end);
    }
    cascade_progress_finish(&prog, ds->n_events);
    ex->n_train = ex->n - (size_t)(o->holdout_frac * (double)ex->n);
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "out of memory for %zu examples", cap);
    if (rc != 0)
        cascade_rank_examples_free(ex);
    free(label);
    cascade_train_replay_free(&rp);
    return rc;
}

/* ---- oracle AUC from truth.tsv ---- */

float *cascade_rank_truth_read(const cascade_dataset *ds, const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    float *p = f ? malloc((ds->n_events + 1) * sizeof(float)) : NULL;
    char line[512];
    size_t ev = 0;
    bool ok = p && fgets(line, sizeof(line), f) != NULL; /* header */
    for (size_t i = 0; p && i < ds->n_events; i++)
        p[i] = -1;
    while (ok && fgets(line, sizeof(line), f)) {
        char uid[128];
        long long ts;
        unsigned long long item;
        double prob;
        if (sscanf(line, "%lld\t%127s\t%llu\t%lf", &ts, uid, &item, &prob) != 4) {
            ok = false;
            break;
        }
        while (ev < ds->n_events && ds->events[ev].type != CASCADE_EV_IMPRESSION)
            ev++;
        const struct cascade_ds_event *e = ev < ds->n_events ? &ds->events[ev] : NULL;
        if (!e || e->ts != ts || ds->items[e->item].id != item ||
            strcmp(ds->users[e->user].id, uid) != 0) {
            ok = false;
            break;
        }
        p[ev++] = (float)prob;
    }
    if (f)
        fclose(f);
    if (!ok) {
        free(p);
        return NULL;
    }
    return p;
}

double cascade_rank_oracle_auc(const float *truth, const struct cascade_rank_examples *ex)
{
    size_t nh = ex->n - ex->n_train;
    float *p = truth ? malloc((nh + 1) * sizeof(float)) : NULL;
    double auc = NAN;
    if (p) {
        bool ok = true;
        for (size_t k = 0; k < nh && ok; k++) {
            p[k] = truth[ex->event[ex->n_train + k]];
            ok = p[k] >= 0;
        }
        if (ok)
            auc = cascade_auc(p, ex->y + ex->n_train, nh);
    }
    free(p);
    return auc;
}

/* ---- training ---- */

/* Warm start (train_warm.h): the previous model fits with the same feature
 * count; its weights and bias are copied. */
static int lr_warm_apply(void *ctx, const char *dir, const char *name, const char *path,
                         char *detail, size_t detaillen, char *err, size_t errlen)
{
    (void)dir, (void)name, (void)detail, (void)detaillen;
    cascade_lr *m = ctx, *prev = cascade_lr_load(path, err, errlen);
    int rc = prev ? 0 : CASCADE_EIO;
    if (prev && cascade_lr_dim(prev) != cascade_lr_dim(m)) {
        snprintf(err, errlen, "%zu features, need %zu", cascade_lr_dim(prev), cascade_lr_dim(m));
        rc = CASCADE_EINVAL;
    } else if (prev) {
        float bias;
        const float *w = cascade_lr_weights(prev, &bias);
        cascade_lr_set_weights(m, w, bias);
    }
    cascade_lr_destroy(prev);
    return rc;
}

/* What cascade_lr_fit reports after each epoch. */
struct epoch_report {
    double loss, rate;
};

static void on_epoch(void *ud, int epoch, double loss, double examples_per_s)
{
    struct epoch_report *r = ud;
    (void)epoch;
    r->loss = loss;
    r->rate = examples_per_s;
}

static double mean(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

static int train_epochs(cascade_lr *m, const struct cascade_rank_examples *ex,
                        const struct cascade_train_rank_opts *o,
                        struct cascade_train_rank_summary *sum, char *err, size_t errlen)
{
    size_t nh = ex->n - ex->n_train;
    const float *Xh = ex->X + ex->n_train * CASCADE_RANK_FEATURES, *yh = ex->y + ex->n_train;
    float *ph = malloc((nh + 1) * sizeof(float));
    struct epoch_report rep = {0, 0};
    struct cascade_lr_train_opts lo = o->lr;
    int epochs = lo.epochs > 0 ? lo.epochs : 5, rc = 0;
    if (!ph) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    lo.epochs = 1;
    lo.on_epoch = on_epoch;
    /* Small training sets get smaller batches so that an epoch still has
     * MIN_STEPS Adam steps; with 1024-example batches a 20k-example set
     * would see only 20 steps per epoch and stay undertrained. */
    if (lo.batch_size == 0)
        lo.batch_size = 1024;
    size_t fit_batch = ex->n_train / MIN_STEPS < MIN_BATCH ? MIN_BATCH : ex->n_train / MIN_STEPS;
    if (fit_batch < lo.batch_size) {
        if (!o->quiet)
            fprintf(stderr,
                    "train-rank: batch size %zu instead of %zu (at least %d steps per epoch)\n",
                    fit_batch, lo.batch_size, MIN_STEPS);
        lo.batch_size = fit_batch;
    }
    lo.ud = &rep;
    size_t steps_per_epoch = (ex->n_train + lo.batch_size - 1) / lo.batch_size;
    int64_t t0_us = cascade_now_us();
    for (int e = 1; e <= epochs && rc == 0; e++) {
        if ((rc = cascade_lr_fit(m, ex->X, ex->y, ex->n_train, &lo, err, errlen)) != 0)
            break;
        double elapsed = (double)(cascade_now_us() - t0_us) / 1e6;
        cascade_lr_predict(m, Xh, nh, ph);
        sum->auc = cascade_auc(ph, yh, nh);
        sum->logloss = cascade_logloss(ph, yh, nh);
        if (!o->quiet) {
            char metrics[96];
            snprintf(metrics, sizeof(metrics), "held-out AUC %.4f logloss %.4f", sum->auc,
                     sum->logloss);
            struct cascade_train_epoch pe = {.job = "train-rank",
                                             .epoch = (size_t)e,
                                             .epochs = (size_t)epochs,
                                             .step = (size_t)e * steps_per_epoch,
                                             .loss = rep.loss,
                                             .metrics = metrics,
                                             .examples = (size_t)e * ex->n_train,
                                             .elapsed_s = elapsed};
            cascade_train_epoch_print(stderr, &pe);
        }
    }
    free(ph);
    return rc;
}

static void print_weights(const cascade_lr *m)
{
    float bias;
    const float *w = cascade_lr_weights(m, &bias);
    fprintf(stderr, "train-rank: weights (bias %+.3f):", bias);
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        fprintf(stderr, "%s %s %+.3f", i % 4 == 0 ? "\n   " : " ", cascade_features_rank_name(i),
                w[i]);
    fputc('\n', stderr);
}

/* Save m as dir/rank-lr-<UTC time>.safetensors; path/version receive it. */
static int rank_model_save(const cascade_lr *m, const char *dir, char *path, size_t pathlen,
                           char *version, size_t versionlen, char *err, size_t errlen)
{
    int rc = cascade_mkdir_p(dir, err, errlen);
    if (rc != 0)
        return rc;
    cascade_latest_version_new(dir, "rank-lr", version, versionlen, path, pathlen);
    return cascade_lr_save(m, path, version, err, errlen);
}

int cascade_rank_model_publish(const cascade_lr *m, const char *dir, char *path, size_t pathlen,
                               char *version, size_t versionlen, char *err, size_t errlen)
{
    char latest[4096], file[512];
    int rc = rank_model_save(m, dir, path, pathlen, version, versionlen, err, errlen);
    if (rc != 0)
        return rc;
    snprintf(latest, sizeof(latest), "%s/rank-lr.latest", dir);
    snprintf(file, sizeof(file), "%s.safetensors", version);
    return cascade_latest_write(latest, file, err, errlen);
}

/* This run's model and its examples, for the gate. */
struct rank_gate_ctx {
    const cascade_lr *m;
    const struct cascade_rank_examples *ex;
};

/* The gate's view of the published rank-lr model: its held-out AUC on the
 * examples of this run (train_gate.h). */
static int lr_gate_eval(void *ctx, const char *path, double *value, char *err, size_t errlen)
{
    const struct cascade_rank_examples *ex = ((const struct rank_gate_ctx *)ctx)->ex;
    size_t nh = ex->n - ex->n_train;
    cascade_lr *prev = cascade_lr_load(path, err, errlen);
    float *p = prev ? malloc((nh + 1) * sizeof(float)) : NULL;
    int rc = prev ? CASCADE_ENOMEM : CASCADE_EIO;
    if (prev && cascade_lr_dim(prev) != CASCADE_RANK_FEATURES) {
        snprintf(err, errlen, "%zu features, this run has %d", cascade_lr_dim(prev),
                 CASCADE_RANK_FEATURES);
        rc = CASCADE_EINVAL;
    } else if (p) {
        cascade_lr_predict(prev, ex->X + ex->n_train * CASCADE_RANK_FEATURES, nh, p);
        *value = cascade_auc(p, ex->y + ex->n_train, nh);
        rc = 0;
    }
    free(p);
    cascade_lr_destroy(prev);
    return rc;
}

/* The gate's save: this run's model at path. */
static int lr_gate_save(void *ctx, const char *path, const char *version, char *err, size_t errlen)
{
    return cascade_lr_save(((const struct rank_gate_ctx *)ctx)->m, path, version, err, errlen);
}

/* Save m under a new version and let the gate decide on rank-lr.latest. */
static int rank_gate(const cascade_lr *m, const struct cascade_rank_examples *ex,
                     const struct cascade_train_rank_opts *o,
                     struct cascade_train_rank_summary *sum, char *err, size_t errlen)
{
    struct cascade_train_gate g;
    cascade_train_gate_init(&g, "train-rank", "rank-lr", "auc", &o->gate, ex->n - ex->n_train,
                            sum->auc);
    struct rank_gate_ctx ctx = {m, ex};
    struct cascade_train_gate_target t = {.dir = o->model_dir,
                                          .latest = "rank-lr.latest",
                                          .eval = lr_gate_eval,
                                          .save = lr_gate_save,
                                          .ctx = &ctx,
                                          .quiet = o->quiet};
    return cascade_train_gate_publish(&g, &t, sum->model_path, sizeof(sum->model_path),
                                      sum->version, sizeof(sum->version), &sum->gate, err, errlen);
}

int cascade_train_rank_run(const cascade_dataset *ds, const struct cascade_train_rank_opts *o,
                           struct cascade_train_rank_summary *sum, cascade_lr **model, char *err,
                           size_t errlen)
{
    struct cascade_rank_examples ex;
    struct cascade_train_rank_summary local;
    int64_t t0_us = cascade_now_us();
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof(*sum));
    if (model)
        *model = NULL;
    int rc = cascade_rank_examples_build(ds, o, &ex, err, errlen);
    if (rc != 0)
        return rc;
    rc = cascade_train_rank_fit(ds, &ex, o, sum, model, err, errlen);
    sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    cascade_rank_examples_free(&ex);
    return rc;
}

int cascade_train_rank_fit(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                           const struct cascade_train_rank_opts *o,
                           struct cascade_train_rank_summary *sum, cascade_lr **model, char *err,
                           size_t errlen)
{
    int64_t t0_us = cascade_now_us();
    cascade_lr *m = NULL;
    int rc = 0;
    memset(sum, 0, sizeof(*sum));
    if (model)
        *model = NULL;
    size_t nh = ex->n - ex->n_train;
    sum->examples = ex->n;
    sum->train = ex->n_train;
    sum->holdout = nh;
    sum->train_ctr = mean(ex->y, ex->n_train);
    sum->holdout_ctr = mean(ex->y + ex->n_train, nh);
    if (ex->n_train == 0 || nh == 0) {
        snprintf(err, errlen, "%zu training and %zu held-out examples; need both", ex->n_train, nh);
        rc = CASCADE_EDATA;
        goto out;
    }
    if ((rc = cascade_train_gate_check_labels(ex->y, ex->n_train, ex->n, err, errlen)) != 0)
        goto out;
    double c =
        sum->train_ctr < 1e-6 ? 1e-6 : (sum->train_ctr > 1 - 1e-6 ? 1 - 1e-6 : sum->train_ctr);
    sum->base_logloss = -(sum->holdout_ctr * log(c) + (1 - sum->holdout_ctr) * log(1 - c));
    float *truth = cascade_rank_truth_read(ds, o->truth_path);
    sum->oracle_auc = cascade_rank_oracle_auc(truth, ex);
    free(truth);
    if (!o->quiet)
        fprintf(stderr, "train-rank: %zu examples (%zu train, CTR %.4f; %zu held out, CTR %.4f)\n",
                ex->n, ex->n_train, sum->train_ctr, nh, sum->holdout_ctr);
    if (!(m = cascade_lr_create(CASCADE_RANK_FEATURES))) {
        snprintf(err, errlen, "out of memory");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    cascade_lr_init_bias(m, ex->y, ex->n_train);
    if (o->warm_start && (rc = cascade_train_warm_start(
                              "train-rank", o->model_dir, "rank-lr.latest", o->quiet, lr_warm_apply,
                              m, sum->warm_from, sizeof sum->warm_from)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((rc = train_epochs(m, ex, o, sum, err, errlen)) != 0)
        goto out;
    if (!o->quiet)
        print_weights(m);
    if (o->model_dir && (rc = rank_gate(m, ex, o, sum, err, errlen)) != 0)
        goto out;
out:
    sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    if (rc == 0 && model)
        *model = m;
    else
        cascade_lr_destroy(m);
    return rc;
}
