/* Pre-rank training: train-rank's labelled impressions re-described by the
 * hashed crosses of point-in-time records, Adagrad epochs over a shuffled
 * order with held-out AUC next to the heuristic's, and publishing. */
#include "train_prerank.h"

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
#include "interests.h"
#include "latest_file.h"
#include "lr.h"
#include "prerank_features.h"
#include "records.h"
#include "redis.h"
#include "rng.h"
#include "store.h"
#include "train_progress.h"
#include "train_replay.h"
#include "train_warm.h"

#define NF CASCADE_PRERANK_FEATURES

void cascade_train_prerank_defaults(struct cascade_train_prerank_opts *o)
{
    memset(o, 0, sizeof *o);
    cascade_train_rank_defaults(&o->examples);
    o->bits = 20;
    o->epochs = 3;
    o->seed = 1;
    cascade_hashlr_train_defaults(&o->lr);
    o->lr.learning_rate = 0.02f; /* best of 0.02/0.05/0.1 on the generated world */
    o->warm_start = true;
    cascade_train_gate_defaults(&o->gate);
}

/* Warm start (train_warm.h): the previous model fits with the same buckets
 * and features; its weights and bias are copied (Adagrad state starts fresh). */
static int prerank_warm_apply(void *ctx, const char *dir, const char *name, const char *path,
                              char *detail, size_t detaillen, char *err, size_t errlen)
{
    (void)dir, (void)name, (void)detail, (void)detaillen;
    cascade_hashlr *prev = cascade_hashlr_load(path, err, errlen);
    int rc = prev ? cascade_hashlr_copy_weights(ctx, prev, err, errlen) : CASCADE_EIO;
    cascade_hashlr_destroy(prev);
    return rc;
}

void cascade_prerank_examples_free(struct cascade_prerank_examples *ex)
{
    free(ex->idx);
    free(ex->y);
    free(ex->heuristic);
    memset(ex, 0, sizeof *ex);
}

/* ---- point-in-time replay ---- */

/* Features and heuristic score of impression e from the state before it. */
static void replay_example(const struct cascade_train_replay *rp, const struct cascade_ds_event *e,
                           unsigned bits, uint32_t *idx, float *heuristic)
{
    cascade_v1_UserRecord user;
    cascade_v1_ItemRecord item;
    struct cascade_prerank_user pu;
    struct cascade_prerank_weights hw;
    cascade_user_record_fill(&rp->ds->users[e->user], &rp->user_stats[e->user],
                             &rp->affinity[e->user], e->ts, rp->half_life_s, &user);
    cascade_item_record_fill(&rp->ds->items[e->item], &rp->item_stats[e->item], &item);
    cascade_prerank_user_prepare(&user, NULL, &pu);
    cascade_prerank_features(&pu, &item, e->ts, bits, idx);
    cascade_prerank_weights_default(&hw);
    *heuristic = cascade_prerank_score(&hw, item.has_stats ? &item.stats : NULL, 0);
}

int cascade_prerank_examples_build(const cascade_dataset *ds,
                                   const struct cascade_train_prerank_opts *o,
                                   struct cascade_prerank_examples *ex, char *err, size_t errlen)
{
    struct cascade_rank_examples rex;
    struct cascade_train_replay rp;
    memset(ex, 0, sizeof *ex);
    if (o->bits < CASCADE_HASHLR_MIN_BITS || o->bits > CASCADE_HASHLR_MAX_BITS) {
        snprintf(err, errlen, "bits %u out of range %d..%d", o->bits, CASCADE_HASHLR_MIN_BITS,
                 CASCADE_HASHLR_MAX_BITS);
        return CASCADE_EINVAL;
    }
    /* train-rank's examples give the labels, the split and the event of each. */
    struct cascade_train_rank_opts ro = o->examples;
    ro.quiet = ro.quiet || o->quiet;
    int rc = cascade_rank_examples_build(ds, &ro, &rex, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = cascade_train_replay_init(&rp, ds, &o->examples)) != 0)
        goto out;
    ex->n = rex.n;
    ex->n_train = rex.n_train;
    ex->idx = malloc((rex.n + 1) * NF * sizeof *ex->idx);
    ex->y = malloc((rex.n + 1) * sizeof *ex->y);
    ex->heuristic = malloc((rex.n + 1) * sizeof *ex->heuristic);
    if (!ex->idx || !ex->y || !ex->heuristic) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    memcpy(ex->y, rex.y, rex.n * sizeof *ex->y);
    size_t k = 0;
    for (size_t i = 0, end; i < ds->n_events && rc == 0; i = end) {
        /* A served list's rows all see the state before the list (as train-rank's). */
        end = cascade_dataset_request_end(ds, i);
        for (size_t j = i; j < end; j++)
            if (k < rex.n && rex.event[k] == j) {
                replay_example(&rp, &ds->events[j], o->bits, ex->idx + k * NF, &ex->heuristic[k]);
                k++;
            }
        for (size_t j = i; j < end && rc == 0; j++)
            rc = cascade_train_replay_apply(&rp, &ds->events[j]);
    }
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "out of memory for %zu examples", rex.n);
    if (rc != 0)
        cascade_prerank_examples_free(ex);
    cascade_train_replay_free(&rp);
    cascade_rank_examples_free(&rex);
    return rc;
}

/* ---- training ---- */

static void shuffle(uint32_t *order, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(cascade_rng_splitmix64(rng) % i);
        uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static double mean(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

static void evaluate(const cascade_hashlr *m, const struct cascade_prerank_examples *ex, float *p,
                     struct cascade_train_prerank_summary *sum)
{
    size_t nh = ex->n - ex->n_train;
    for (size_t i = 0; i < nh; i++)
        p[i] = cascade_hashlr_predict(m, ex->idx + (ex->n_train + i) * NF, NF);
    sum->auc = cascade_auc(p, ex->y + ex->n_train, nh);
    sum->logloss = cascade_logloss(p, ex->y + ex->n_train, nh);
}

static int train_epochs(cascade_hashlr *m, const struct cascade_prerank_examples *ex,
                        const struct cascade_train_prerank_opts *o,
                        struct cascade_train_prerank_summary *sum, char *err, size_t errlen)
{
    size_t nh = ex->n - ex->n_train;
    uint32_t *order = malloc((ex->n_train + 1) * sizeof *order);
    float *p = malloc((nh + 1) * sizeof *p);
    uint64_t rng = o->seed;
    int epochs = o->epochs > 0 ? o->epochs : 3;
    if (!order || !p) {
        free(order);
        free(p);
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < ex->n_train; i++)
        order[i] = (uint32_t)i;
    double train_s = 0; /* excludes the held-out evaluation */
    for (int e = 1; e <= epochs; e++) {
        int64_t t0_us;
        double loss = 0;
        t0_us = cascade_now_us();
        shuffle(order, ex->n_train, &rng);
        for (size_t i = 0; i < ex->n_train; i++)
            loss += cascade_hashlr_update(m, ex->idx + (size_t)order[i] * NF, NF, ex->y[order[i]],
                                          &o->lr);
        train_s += (double)(cascade_now_us() - t0_us) / 1e6;
        evaluate(m, ex, p, sum);
        if (!o->quiet) {
            char metrics[128];
            snprintf(metrics, sizeof(metrics), "held-out AUC %.4f (heuristic %.4f) logloss %.4f",
                     sum->auc, sum->heuristic_auc, sum->logloss);
            /* One Adagrad step per example. */
            struct cascade_train_epoch pe = {.job = "train-prerank",
                                             .epoch = (size_t)e,
                                             .epochs = (size_t)epochs,
                                             .step = (size_t)e * ex->n_train,
                                             .loss = loss / (double)ex->n_train,
                                             .metrics = metrics,
                                             .examples = (size_t)e * ex->n_train,
                                             .elapsed_s = train_s};
            cascade_train_epoch_print(stderr, &pe);
        }
    }
    free(order);
    free(p);
    return 0;
}

/* Save m as dir/prerank-lr-<UTC time>.safetensors; path/version receive it. */
static int prerank_model_save(const cascade_hashlr *m, const char *dir, char *path, size_t pathlen,
                              char *version, size_t versionlen, char *err, size_t errlen)
{
    int rc = cascade_mkdir_p(dir, err, errlen);
    if (rc != 0)
        return rc;
    cascade_latest_version_new(dir, "prerank-lr", version, versionlen, path, pathlen);
    return cascade_hashlr_save(m, path, version, err, errlen);
}

int cascade_prerank_model_publish(const cascade_hashlr *m, const char *dir, char *path,
                                  size_t pathlen, char *version, size_t versionlen, char *err,
                                  size_t errlen)
{
    char latest[4096], name[300];
    int rc = prerank_model_save(m, dir, path, pathlen, version, versionlen, err, errlen);
    if (rc != 0)
        return rc;
    snprintf(latest, sizeof latest, "%s/prerank-lr.latest", dir);
    snprintf(name, sizeof name, "%s.safetensors", version);
    return cascade_latest_write(latest, name, err, errlen);
}

/* This run's model, and its held-out examples hashed into 2^bits buckets. */
struct prerank_gate_ctx {
    const cascade_hashlr *m;
    const struct cascade_prerank_examples *ex;
    unsigned bits;
};

/* The gate's view of the published prerank-lr model: its held-out AUC on
 * this run's examples, when it hashes into the same buckets. */
static int prerank_gate_eval(void *ctx, const char *path, double *value, char *err, size_t errlen)
{
    const struct prerank_gate_ctx *c = ctx;
    const struct cascade_prerank_examples *ex = c->ex;
    struct cascade_train_prerank_summary s;
    cascade_hashlr *prev = cascade_hashlr_load(path, err, errlen);
    int rc = prev ? CASCADE_ENOMEM : CASCADE_EIO;
    float *p = prev ? malloc((ex->n - ex->n_train + 1) * sizeof *p) : NULL;
    if (prev && (cascade_hashlr_bits(prev) != c->bits ||
                 strcmp(cascade_hashlr_spec(prev), CASCADE_PRERANK_SPEC) != 0)) {
        snprintf(err, errlen, "2^%u buckets of spec %s, this run has 2^%u of %s",
                 cascade_hashlr_bits(prev), cascade_hashlr_spec(prev), c->bits,
                 CASCADE_PRERANK_SPEC);
        rc = CASCADE_EINVAL;
    } else if (p) {
        evaluate(prev, ex, p, &s);
        *value = s.auc;
        rc = 0;
    }
    free(p);
    cascade_hashlr_destroy(prev);
    return rc;
}

/* The gate's save: this run's model m at path. */
static int prerank_gate_save(void *ctx, const char *path, const char *version, char *err,
                             size_t errlen)
{
    const struct prerank_gate_ctx *c = ctx;
    return cascade_hashlr_save(c->m, path, version, err, errlen);
}

/* Save m under a new version and let the gate decide on prerank-lr.latest. */
static int prerank_gate(const cascade_hashlr *m, const struct cascade_prerank_examples *ex,
                        const struct cascade_train_prerank_opts *o,
                        struct cascade_train_prerank_summary *sum, char *err, size_t errlen)
{
    struct cascade_train_gate g;
    cascade_train_gate_init(&g, "train-prerank", "prerank-lr", "auc", &o->gate, ex->n - ex->n_train,
                            sum->auc);
    struct prerank_gate_ctx ctx = {m, ex, o->bits};
    struct cascade_train_gate_target t = {.dir = o->model_dir,
                                          .latest = "prerank-lr.latest",
                                          .eval = prerank_gate_eval,
                                          .save = prerank_gate_save,
                                          .ctx = &ctx,
                                          .quiet = o->quiet};
    return cascade_train_gate_publish(&g, &t, sum->model_path, sizeof sum->model_path, sum->version,
                                      sizeof sum->version, &sum->gate, err, errlen);
}

/* Counts, CTRs, constant-prediction log loss and the heuristic's AUC. */
static int summarise(const struct cascade_prerank_examples *ex,
                     struct cascade_train_prerank_summary *sum, char *err, size_t errlen)
{
    size_t nh = ex->n - ex->n_train;
    sum->examples = ex->n;
    sum->train = ex->n_train;
    sum->holdout = nh;
    if (ex->n_train == 0 || nh == 0) {
        snprintf(err, errlen, "%zu training and %zu held-out examples; need both", ex->n_train, nh);
        return CASCADE_EDATA;
    }
    int rc = cascade_train_gate_check_labels(ex->y, ex->n_train, ex->n, err, errlen);
    if (rc != 0)
        return rc;
    sum->train_ctr = mean(ex->y, ex->n_train);
    sum->holdout_ctr = mean(ex->y + ex->n_train, nh);
    double c =
        sum->train_ctr < 1e-6 ? 1e-6 : (sum->train_ctr > 1 - 1e-6 ? 1 - 1e-6 : sum->train_ctr);
    sum->base_logloss = -(sum->holdout_ctr * log(c) + (1 - sum->holdout_ctr) * log(1 - c));
    sum->heuristic_auc = cascade_auc(ex->heuristic + ex->n_train, ex->y + ex->n_train, nh);
    return 0;
}

int cascade_train_prerank_run(const cascade_dataset *ds, const struct cascade_train_prerank_opts *o,
                              struct cascade_train_prerank_summary *sum, cascade_hashlr **model,
                              char *err, size_t errlen)
{
    struct cascade_prerank_examples ex;
    struct cascade_train_prerank_summary local;
    int64_t t0_us;
    cascade_hashlr *m = NULL;
    t0_us = cascade_now_us();
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof *sum);
    if (model)
        *model = NULL;
    int rc = cascade_prerank_examples_build(ds, o, &ex, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = summarise(&ex, sum, err, errlen)) != 0)
        goto out;
    if (!o->quiet)
        fprintf(stderr,
                "train-prerank: %zu examples (%zu train, CTR %.4f; %zu held out, CTR %.4f), "
                "%d hashed features into 2^%u buckets\n",
                ex.n, ex.n_train, sum->train_ctr, sum->holdout, sum->holdout_ctr, NF, o->bits);
    if (!(m = cascade_hashlr_create(o->bits, CASCADE_PRERANK_SPEC))) {
        snprintf(err, errlen, "out of memory for 2^%u weights", o->bits);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    double c =
        sum->train_ctr < 1e-4 ? 1e-4 : (sum->train_ctr > 1 - 1e-4 ? 1 - 1e-4 : sum->train_ctr);
    cascade_hashlr_set_bias(m, (float)log(c / (1 - c)));
    if (o->warm_start && cascade_train_warm_start("train-prerank", o->model_dir,
                                                  "prerank-lr.latest", o->quiet, prerank_warm_apply,
                                                  m, sum->warm_from, sizeof sum->warm_from) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    if ((rc = train_epochs(m, &ex, o, sum, err, errlen)) != 0)
        goto out;
    if (o->model_dir && (rc = prerank_gate(m, &ex, o, sum, err, errlen)) != 0)
        goto out;
out:
    sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    cascade_prerank_examples_free(&ex);
    if (rc == 0 && model)
        *model = m;
    else
        cascade_hashlr_destroy(m);
    return rc;
}

/* ---- the subcommand ---- */

/* Record the model in {ns}:meta (prerank_model, prerank_auc). */
static int record_meta(const char *addr, const char *ns,
                       const struct cascade_train_prerank_summary *s, char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX], auc[32];
    redisReply *rep = NULL;
    cascade_redis *r = cascade_build_redis_connect(addr, err, errlen);
    if (!r)
        return CASCADE_EUNAVAILABLE;
    snprintf(auc, sizeof auc, "%.6f", s->auc);
    int rc = cascade_redis_command(r, &rep, "HSET %s prerank_model %s prerank_auc %s",
                                   cascade_key_meta(key, ns), s->version, auc);
    if (rc != 0)
        snprintf(err, errlen, "redis %s: %s", addr, cascade_redis_error(r));
    if (rep)
        freeReplyObject(rep);
    cascade_redis_destroy(r);
    return rc;
}

struct prerank_cli {
    const char *data, *redis, *ns;
    int bits;
    double learning_rate, l2;
    bool cold; /* --no-warm-start */
    struct cascade_train_prerank_opts o;
};

static int cli_run(struct prerank_cli *c, bool *published, char *err, size_t errlen)
{
    cascade_dataset *ds = NULL;
    struct cascade_train_prerank_summary s;
    c->o.bits = (unsigned)c->bits;
    c->o.lr.learning_rate = (float)c->learning_rate;
    c->o.lr.l2 = (float)c->l2;
    c->o.examples.quiet = c->o.quiet;
    int rc = cascade_dataset_read(c->data, &ds, err, errlen);
    if (rc == 0)
        rc = cascade_train_prerank_run(ds, &c->o, &s, NULL, err, errlen);
    cascade_dataset_destroy(ds);
    if (rc != 0)
        return rc;
    printf("train-prerank: %zu examples (%zu train, %zu held out); held-out AUC %.4f "
           "(heuristic %.4f), logloss %.4f (constant %.4f); %.2fs\n",
           s.examples, s.train, s.holdout, s.auc, s.heuristic_auc, s.logloss, s.base_logloss,
           s.seconds);
    printf("train-prerank: model %s (version %s), %s: %s\n", s.model_path, s.version,
           s.gate.publish ? "prerank-lr.latest updated" : "not published", s.gate.message);
    *published = s.gate.publish;
    return c->redis && s.gate.publish ? record_meta(c->redis, c->ns, &s, err, errlen) : 0;
}

int cascade_train_prerank_command(int argc, char **argv)
{
    struct prerank_cli c = {.ns = "cascade"};
    char err[1024];
    cascade_train_prerank_defaults(&c.o);
    c.bits = (int)c.o.bits;
    c.learning_rate = c.o.lr.learning_rate;
    c.l2 = c.o.lr.l2;
    const struct cascade_flag flags[] = {
        {"data", CASCADE_FLAG_STRING, &c.data, "directory of users/items/events.tsv; required", 0,
         0},
        {"model-dir", CASCADE_FLAG_STRING, &c.o.model_dir,
         "where prerank-lr-<time>.safetensors and prerank-lr.latest go; required", 0, 0},
        {"redis", CASCADE_FLAG_STRING, &c.redis,
         "Redis HOST:PORT; when given, the model is recorded in {ns}:meta", 0, 0},
        {"namespace", CASCADE_FLAG_STRING, &c.ns, "Redis key namespace", 0, 0},
        {"bits", CASCADE_FLAG_INT, &c.bits, "hash buckets = 2^bits", CASCADE_HASHLR_MIN_BITS,
         CASCADE_HASHLR_MAX_BITS},
        {"epochs", CASCADE_FLAG_INT, &c.o.epochs, "passes over the training examples", 1, 1000},
        {"learning-rate", CASCADE_FLAG_DOUBLE, &c.learning_rate, "Adagrad step size", 1e-6, 10},
        {"l2", CASCADE_FLAG_DOUBLE, &c.l2, "L2 penalty on the active weights", 0, 100},
        {"seed", CASCADE_FLAG_U64, &c.o.seed, "shuffling seed", 0, 0},
        {"warmup-frac", CASCADE_FLAG_DOUBLE, &c.o.examples.warmup_frac,
         "share of impressions that only build feature state", 0, 0.95},
        {"holdout-frac", CASCADE_FLAG_DOUBLE, &c.o.examples.holdout_frac,
         "share of examples (the latest) held out", 0.001, 0.9},
        {"no-warm-start", CASCADE_FLAG_BOOL, &c.cold,
         "train from zero weights, not from model-dir's current version", 0, 0},
        CASCADE_TRAIN_GATE_FLAG_FLOOR(&c.o.gate),
        CASCADE_TRAIN_GATE_FLAG_TOLERANCE(&c.o.gate),
        CASCADE_TRAIN_GATE_FLAG_FORCE(&c.o.gate),
        {"quiet", CASCADE_FLAG_BOOL, &c.o.quiet, "no progress on stderr", 0, 0},
    };
    size_t n = sizeof flags / sizeof flags[0];
    int rc = cascade_flags_parse(argc, argv, 2, flags, n, err, sizeof err);
    c.o.warm_start = !c.cold;
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(stdout,
                            "cascade-build train-prerank --data DIR --model-dir DIR [flags]",
                            "Train the pre-rank model (logistic regression over hashed user×item "
                            "crosses) on the event log\nand publish "
                            "model-dir/prerank-lr-<time>.safetensors + "
                            "prerank-lr.latest." CASCADE_TRAIN_GATE_HELP,
                            flags, n);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (rc == 0 && (!c.data || !c.o.model_dir)) {
        snprintf(err, sizeof err, "--data and --model-dir are required");
        rc = CASCADE_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "cascade-build train-prerank: %s\n", err);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    bool published = false;
    if ((rc = cli_run(&c, &published, err, sizeof err)) != 0) {
        fprintf(stderr, "cascade-build train-prerank: %s\n", err);
    }
    return cascade_train_gate_exit_status(rc, published);
}
