/* The learned rankers' training job (ltr_train.h): replay, two boosters in
 * cascade order, validation, gate, publish. */
#include "ltr_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "hash.h"
#include "latest_file.h"
#include "ltr_features.h"
#include "train_gate.h"

#define NDCG_K 10
#ifndef LTR_ETA
#define LTR_ETA 0.05
#define LTR_PATIENCE 30
#define LTR_RANK_DEPTH 6
#endif

void cascade_ltr_train_defaults(struct cascade_ltr_train_opts *o)
{
    memset(o, 0, sizeof *o);
    cascade_ltr_replay_defaults(&o->replay);
    cascade_ltr_xgb_defaults(&o->prerank);
    cascade_ltr_xgb_defaults(&o->rank);
    /* Chosen on the replay's validation users of a split carved from
     * ml-latest-small's train part (docs/stages.md, learned rankers). */
    o->prerank.max_depth = 4;
    o->prerank.rounds = 200;
    o->prerank.eta = o->rank.eta = LTR_ETA;
    o->prerank.patience = o->rank.patience = LTR_PATIENCE;
    o->rank.max_depth = LTR_RANK_DEPTH;
    o->rank_list = 300;
    o->valid_frac = 0.3;
    o->margin_scale = 0.3;
    /* The replay's validation lists are small and not quite the served ones:
     * a model must win clearly (measured: +0.003 on replay validation turned
     * into -0.012 served on a validation split of ml-latest-small). */
    o->min_gain = 0.01;
    o->tolerance = 0.002;
}

/* ------------------------------------------------------------ group sets */

/* A set of groups: rows copied out of the replay lists (owned), or a view
 * of a contiguous run of their groups (view: X and y borrowed, off owned). */
struct group_set {
    float *X, *y;
    size_t *off;
    size_t n_groups, n_rows;
    bool view;
};

static void set_free(struct group_set *s)
{
    if (!s->view) {
        free(s->X);
        free(s->y);
    }
    free(s->off);
    memset(s, 0, sizeof *s);
}

static struct cascade_ltr_set set_view(const struct group_set *s)
{
    return (struct cascade_ltr_set){
        .X = s->X, .y = s->y, .off = s->off, .n_groups = s->n_groups, .dim = CASCADE_LTR_FEATURES};
}

/* Copy the groups g with pick[g] set; rows[g] lists the rows of group g to
 * take, in order, count take[g]. */
static int set_build(const struct cascade_ltr_lists *l, const bool *pick, size_t *const *rows,
                     const size_t *take, struct group_set *s)
{
    size_t groups = 0, total = 0;
    memset(s, 0, sizeof *s);
    for (size_t g = 0; g < l->n_groups; g++)
        if (pick[g]) {
            groups++;
            total += take[g];
        }
    s->off = calloc(groups + 1, sizeof *s->off);
    s->X = malloc((total + 1) * CASCADE_LTR_FEATURES * sizeof *s->X);
    s->y = malloc((total + 1) * sizeof *s->y);
    if (!s->off || !s->X || !s->y) {
        set_free(s);
        return CASCADE_ENOMEM;
    }
    for (size_t g = 0; g < l->n_groups; g++) {
        if (!pick[g])
            continue;
        size_t n = take[g];
        for (size_t i = 0; i < n; i++) {
            size_t src = l->off[g] + rows[g][i];
            memcpy(s->X + s->n_rows * CASCADE_LTR_FEATURES, l->X + src * CASCADE_LTR_FEATURES,
                   CASCADE_LTR_FEATURES * sizeof *s->X);
            s->y[s->n_rows++] = l->y[src];
        }
        s->off[++s->n_groups] = s->n_rows;
    }
    return 0;
}

/* Groups [first, first + n) of l as a view (no row is copied). */
static int set_view_of(const struct cascade_ltr_lists *l, size_t first, size_t n,
                       struct group_set *s)
{
    size_t base = l->off[first];
    memset(s, 0, sizeof *s);
    if (!(s->off = malloc((n + 1) * sizeof *s->off)))
        return CASCADE_ENOMEM;
    for (size_t g = 0; g <= n; g++)
        s->off[g] = l->off[first + g] - base;
    s->X = l->X + base * CASCADE_LTR_FEATURES;
    s->y = l->y + base;
    s->n_groups = n;
    s->n_rows = s->off[n];
    s->view = true;
    return 0;
}

/* ------------------------------------------------------------ ordering */

struct scored {
    float score;
    size_t pos;
};

static int by_score_desc(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos; /* ties keep the incoming order */
}

/* Positions 0..n-1 sorted by score descending (stable on ties). */
static void order_by(const float *score, size_t n, struct scored *tmp, size_t *order)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = (struct scored){.score = score ? score[i] : 0.0f, .pos = i};
    qsort(tmp, n, sizeof *tmp, by_score_desc);
    for (size_t i = 0; i < n; i++)
        order[i] = tmp[i].pos;
}

/* nDCG@K of labels y taken in `order` (binary relevance; the ideal list
 * puts every positive of the group first). */
static double ndcg_at(const float *y, const size_t *order, size_t n)
{
    double dcg = 0, idcg = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i] > 0;
    for (size_t r = 0; r < n && r < NDCG_K; r++) {
        if (y[order[r]] > 0)
            dcg += 1.0 / log2((double)r + 2.0);
        if (r < pos)
            idcg += 1.0 / log2((double)r + 2.0);
    }
    return idcg > 0 ? dcg / idcg : 0.0;
}

/* Mean nDCG@K over the set's groups in the order of model m, or (m NULL)
 * of feature column `feature` (descending, missing last), or (m NULL and
 * feature < 0) of the rows' own order. */
static int set_ndcg(const struct group_set *s, const cascade_gbdt *m, long feature, double *out)
{
    size_t maxn = 0;
    for (size_t g = 0; g < s->n_groups; g++)
        if (s->off[g + 1] - s->off[g] > maxn)
            maxn = s->off[g + 1] - s->off[g];
    float *score = malloc((maxn + 1) * sizeof *score);
    struct scored *tmp = malloc((maxn + 1) * sizeof *tmp);
    size_t *order = malloc((maxn + 1) * sizeof *order);
    double sum = 0;
    size_t present = 0;
    int rc = CASCADE_ENOMEM;
    if (!score || !tmp || !order)
        goto out;
    for (size_t g = 0; g < s->n_groups; g++) {
        size_t n = s->off[g + 1] - s->off[g];
        const float *X = s->X + s->off[g] * CASCADE_LTR_FEATURES;
        if (m)
            cascade_gbdt_predict(m, X, n, score);
        for (size_t i = 0; !m && feature >= 0 && i < n; i++) {
            float v = X[i * CASCADE_LTR_FEATURES + (size_t)feature];
            present += !isnan(v);
            score[i] = isnan(v) ? -INFINITY : v;
        }
        order_by(m || feature >= 0 ? score : NULL, n, tmp, order);
        sum += ndcg_at(s->y + s->off[g], order, n);
    }
    *out = s->n_groups ? sum / (double)s->n_groups : 0.0;
    if (!m && feature >= 0 && present == 0)
        *out = -1; /* a column that is missing everywhere orders nothing */
    rc = 0;
out:
    free(score);
    free(tmp);
    free(order);
    return rc;
}

/* For every group, the rows model m ranks highest (at most keep of them, in
 * m's order; m NULL: the recall order): what the pre-ranker hands the ranker. */
static int top_rows(const struct cascade_ltr_lists *l, const cascade_gbdt *m, size_t keep,
                    size_t ***rows_out, size_t **take_out)
{
    size_t **rows = calloc(l->n_groups + 1, sizeof *rows);
    size_t *take = calloc(l->n_groups + 1, sizeof *take);
    size_t maxn = 0;
    int rc = CASCADE_ENOMEM;
    for (size_t g = 0; g < l->n_groups; g++)
        if (l->off[g + 1] - l->off[g] > maxn)
            maxn = l->off[g + 1] - l->off[g];
    float *score = malloc((maxn + 1) * sizeof *score);
    struct scored *tmp = malloc((maxn + 1) * sizeof *tmp);
    if (!rows || !take || !score || !tmp)
        goto out;
    for (size_t g = 0; g < l->n_groups; g++) {
        size_t n = l->off[g + 1] - l->off[g];
        take[g] = n < keep ? n : keep;
        if (!(rows[g] = malloc((n + 1) * sizeof **rows)))
            goto out;
        if (m)
            cascade_gbdt_predict(m, l->X + l->off[g] * CASCADE_LTR_FEATURES, n, score);
        order_by(m ? score : NULL, n, tmp, rows[g]);
    }
    rc = 0;
out:
    free(score);
    free(tmp);
    if (rc) {
        for (size_t g = 0; rows && g < l->n_groups; g++)
            free(rows[g]);
        free(rows);
        free(take);
        return rc;
    }
    *rows_out = rows;
    *take_out = take;
    return 0;
}

static void rows_free(size_t **rows, size_t n)
{
    for (size_t g = 0; rows && g < n; g++)
        free(rows[g]);
    free(rows);
}

/* ------------------------------------------------------------ gate, publish */

/* The published model of a stage (its file name into name), if any, and if
 * it reads these features. */
static cascade_gbdt *current_model(const char *dir, const char *latest, char *name, size_t len)
{
    char path[1024], err[512];
    cascade_gbdt *m = NULL;
    name[0] = '\0';
    if (cascade_latest_current(dir, latest, name, len, path, sizeof path, err, sizeof err) != 0 ||
        cascade_ltr_model_load(path, &m, err, sizeof err) != 0) {
        name[0] = '\0';
        return NULL;
    }
    return m;
}

/* What one stage's gate looks at: the model must beat the order it replaces
 * (the gate's floor, plus min_gain) and lose at most the tolerance to the
 * published model on the same validation lists (train_gate.h). */
struct stage_gate {
    const char *stage;      /* "prerank" / "rank" */
    const char *latest;     /* pointer file name */
    double ndcg, base_ndcg; /* validation nDCG@10 of the model and of the order it replaces */
    double current_ndcg;    /* the published model on the same lists; -1 = none */
    const char *current;    /* its file name; NULL = none published */
};

/* Save m as a new version of the stage and let the project's gate decide
 * (it writes <file>.gate.json and moves the pointer when it publishes).
 * Not beating the order it replaces refuses this stage's model only. */
static int publish(const cascade_gbdt *m, const struct stage_gate *sg,
                   const struct cascade_ltr_train_opts *o, size_t holdout, bool *published,
                   char *version, size_t vlen, char *reason, size_t rlen, char *err, size_t errlen)
{
    char prefix[64], kind[64], path[1024], value[32];
    struct cascade_train_gate_decision d;
    snprintf(prefix, sizeof prefix, "%s-ltr", sg->stage);
    snprintf(kind, sizeof kind, "%s-ltr", sg->stage);
    cascade_latest_version_new(o->model_dir, prefix, version, vlen, path, sizeof path);
    snprintf(value, sizeof value, "%.6f", sg->ndcg);
    const char *keys[] = {"features", "version", "valid_ndcg@10"};
    const char *vals[] = {CASCADE_LTR_SPEC, version, value};
    int rc = cascade_gbdt_save(m, path, keys, vals, 3, err, errlen);
    if (rc)
        return rc;
    struct cascade_train_gate g = {.job = "train-ltr",
                                   .kind = kind,
                                   .metric = "ndcg@10",
                                   .higher_is_better = true,
                                   .floor = sg->base_ndcg + o->min_gain,
                                   .tolerance = o->tolerance,
                                   .holdout = holdout,
                                   .value = sg->ndcg,
                                   .has_current = sg->current_ndcg >= 0,
                                   .current_value = sg->current_ndcg,
                                   .current = sg->current,
                                   .current_note = sg->current ? NULL : "none published",
                                   .force = o->force};
    const char *base = strrchr(path, '/');
    rc = cascade_train_gate_apply(&g, path, o->model_dir, sg->latest, base ? base + 1 : path,
                                  version, o->replay.quiet, &d, err, errlen);
    *published = d.publish;
    snprintf(reason, rlen, "%.500s", d.message);
    return rc == CASCADE_EDATA ? 0 : rc;
}

/* ------------------------------------------------------------ the job */

static void on_round(void *ud, int round, double v, double best, int best_round)
{
    const char *stage = ud;
    if (round % 25 == 0)
        fprintf(stderr, "train ltr: %s round %d valid ndcg@10 %.4f (best %.4f at %d)\n", stage,
                round, v, best, best_round);
}

struct job {
    const struct cascade_ltr_train_opts *o;
    struct cascade_ltr_train_summary *s;
    struct cascade_ltr_lists lists;
    bool *valid, *train;
    struct group_set pre_train, pre_valid, rank_train, rank_valid;
    size_t **rows, *take;
    cascade_gbdt *pre, *rank, *pre_cur, *rank_cur;
    char pre_cur_name[256], rank_cur_name[256];
    bool pre_serves; /* the new pre-ranker will pass its gate: its top rows reach the ranker */
};

static void job_free(struct job *j)
{
    rows_free(j->rows, j->lists.n_groups);
    cascade_ltr_lists_free(&j->lists);
    free(j->valid);
    free(j->train);
    set_free(&j->pre_train);
    set_free(&j->pre_valid);
    set_free(&j->rank_train);
    set_free(&j->rank_valid);
    free(j->take);
    cascade_gbdt_destroy(j->pre);
    cascade_gbdt_destroy(j->rank);
    cascade_gbdt_destroy(j->pre_cur);
    cascade_gbdt_destroy(j->rank_cur);
}

/* Validation users: a seeded hash share of the replayed groups. */
static int pick_validation(struct job *j, char *err, size_t errlen)
{
    const struct cascade_ltr_lists *l = &j->lists;
    j->valid = calloc(l->n_groups + 1, sizeof *j->valid);
    j->train = calloc(l->n_groups + 1, sizeof *j->train);
    size_t nv = 0;
    if (!j->valid || !j->train) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    for (size_t g = 0; g < l->n_groups; g++) {
        uint64_t h = cascade_hash64(&l->user[g], sizeof l->user[g], j->o->replay.seed ^ 0x1717);
        j->valid[g] = (double)(h >> 11) / 9007199254740992.0 < j->o->valid_frac;
        j->train[g] = !j->valid[g];
        nv += j->valid[g];
    }
    j->s->valid_groups = nv;
    if (nv == 0 || nv == l->n_groups) {
        snprintf(err, errlen,
                 "%zu replayed users with a held-out item among their candidates: too few to "
                 "train and validate a learned ranker",
                 l->n_groups);
        return CASCADE_EDATA;
    }
    return 0;
}

/* Both boosters start from the merged recall order (scaled recall score as
 * xgboost's base margin): the trees learn corrections to it, and a model
 * whose trees do not beat it on validation is the recall order itself. */
static void boost_from_recall(const struct cascade_ltr_train_opts *o,
                              struct cascade_ltr_xgb_opts *xo, double margin_ndcg)
{
    if (!(o->margin_scale > 0))
        return;
    xo->margin_feature = CASCADE_LTR_RECALL_SCORE;
    xo->margin_scale = (float)o->margin_scale;
    xo->baseline_ndcg = margin_ndcg;
}

static int train_prerank(struct job *j, char *err, size_t errlen)
{
    struct cascade_ltr_xgb_result res;
    struct cascade_ltr_xgb_opts xo = j->o->prerank;
    size_t n_train = 0;
    if (cascade_ltr_lists_partition(&j->lists, j->train, &n_train) ||
        set_view_of(&j->lists, 0, n_train, &j->pre_train) ||
        set_view_of(&j->lists, n_train, j->lists.n_groups - n_train, &j->pre_valid)) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    for (size_t g = 0; g < j->lists.n_groups; g++)
        j->valid[g] = !j->train[g];
    struct cascade_ltr_set tr = set_view(&j->pre_train), va = set_view(&j->pre_valid);
    xo.on_round = j->o->replay.quiet ? NULL : on_round;
    xo.ud = "prerank";
    if (set_ndcg(&j->pre_valid, NULL, -1, &j->s->ndcg_recall)) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    boost_from_recall(j->o, &xo, j->s->ndcg_recall);
    if (!(j->pre = cascade_ltr_xgb_train(&tr, &va, &xo, &res, err, errlen)))
        return CASCADE_EINVAL;
    j->s->prerank_rounds = res.best_round;
    return 0;
}

/* The ranker is trained on what will reach it: the new pre-ranker's top
 * rows when its gate will pass, else the recall order's (the pre-rank stage
 * then keeps the order it is given). */
static int train_rank(struct job *j, char *err, size_t errlen)
{
    struct cascade_ltr_xgb_result res;
    struct cascade_ltr_xgb_opts xo = j->o->rank;
    struct cascade_ltr_train_summary *s = j->s;
    if (set_ndcg(&j->pre_valid, j->pre, -1, &s->ndcg_prerank)) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    j->pre_serves = j->o->force || s->ndcg_prerank > s->ndcg_recall + j->o->min_gain;
    if (top_rows(&j->lists, j->pre_serves ? j->pre : NULL, j->o->rank_list, &j->rows, &j->take) ||
        set_build(&j->lists, j->train, j->rows, j->take, &j->rank_train) ||
        set_build(&j->lists, j->valid, j->rows, j->take, &j->rank_valid)) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    struct cascade_ltr_set tr = set_view(&j->rank_train), va = set_view(&j->rank_valid);
    xo.on_round = j->o->replay.quiet ? NULL : on_round;
    xo.ud = "rank";
    double margin_ndcg = 0;
    if (set_ndcg(&j->rank_valid, NULL, CASCADE_LTR_RECALL_SCORE, &margin_ndcg)) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    boost_from_recall(j->o, &xo, margin_ndcg);
    if (!(j->rank = cascade_ltr_xgb_train(&tr, &va, &xo, &res, err, errlen)))
        return CASCADE_EINVAL;
    j->s->rank_rounds = res.best_round;
    return 0;
}

/* Validation nDCG of the models and the published ones on the same lists
 * (the recall and pre-rank orders were measured by train_rank). The rank
 * lists are the top rows of the order that reaches the ranker. */
static int validate(struct job *j)
{
    struct cascade_ltr_train_summary *s = j->s;
    j->pre_cur = current_model(j->o->model_dir, CASCADE_LTR_PRERANK_LATEST, j->pre_cur_name,
                               sizeof j->pre_cur_name);
    j->rank_cur = current_model(j->o->model_dir, CASCADE_LTR_RANK_LATEST, j->rank_cur_name,
                                sizeof j->rank_cur_name);
    s->ndcg_prerank_current = s->ndcg_rank_current = -1;
    int rc = set_ndcg(&j->rank_valid, j->rank, -1, &s->ndcg_rank);
    /* What the ranker replaces, on the same (cut) lists: their own order. */
    if (!rc)
        rc = set_ndcg(&j->rank_valid, NULL, -1, &s->ndcg_rank_base);
    if (!rc && j->pre_cur)
        rc = set_ndcg(&j->pre_valid, j->pre_cur, -1, &s->ndcg_prerank_current);
    if (!rc && j->rank_cur)
        rc = set_ndcg(&j->rank_valid, j->rank_cur, -1, &s->ndcg_rank_current);
    /* The best single channel order, for the report: what a learned model
     * should at least match. */
    s->best_channel_ndcg = -1;
    for (size_t c = 0; !rc && c < CASCADE_LTR_CHANNELS; c++) {
        double v;
        rc = set_ndcg(&j->pre_valid, NULL, (long)(CASCADE_RANK_FEATURES + 2 * c), &v);
        if (!rc && v > s->best_channel_ndcg) {
            s->best_channel_ndcg = v;
            snprintf(s->best_channel, sizeof s->best_channel, "%s", cascade_ltr_channel_name(c));
        }
    }
    return rc;
}

static int publish_both(struct job *j, char *err, size_t errlen)
{
    struct cascade_ltr_train_summary *s = j->s;
    struct stage_gate pg = {.stage = "prerank",
                            .latest = CASCADE_LTR_PRERANK_LATEST,
                            .ndcg = s->ndcg_prerank,
                            .base_ndcg = s->ndcg_recall,
                            .current_ndcg = s->ndcg_prerank_current,
                            .current = j->pre_cur ? j->pre_cur_name : NULL};
    struct stage_gate rg = {.stage = "rank",
                            .latest = CASCADE_LTR_RANK_LATEST,
                            .ndcg = s->ndcg_rank,
                            .base_ndcg = s->ndcg_rank_base,
                            .current_ndcg = s->ndcg_rank_current,
                            .current = j->rank_cur ? j->rank_cur_name : NULL};
    int rc = publish(j->pre, &pg, j->o, s->valid_groups, &s->prerank_published, s->prerank_version,
                     sizeof s->prerank_version, s->prerank_reason, sizeof s->prerank_reason, err,
                     errlen);
    if (!rc)
        rc = publish(j->rank, &rg, j->o, s->valid_groups, &s->rank_published, s->rank_version,
                     sizeof s->rank_version, s->rank_reason, sizeof s->rank_reason, err, errlen);
    return rc;
}

int cascade_ltr_train_run(const cascade_dataset *ds, cascade_redis *r, cascade_redis_pool *pool,
                          const struct cascade_ltr_train_opts *o,
                          struct cascade_ltr_train_summary *s, char *err, size_t errlen)
{
    struct job j = {.o = o, .s = s};
    memset(s, 0, sizeof *s);
    int rc = cascade_ltr_replay_run(ds, r, pool, &o->replay, &j.lists, err, errlen);
    if (rc)
        goto out;
    s->groups = j.lists.n_groups;
    s->rows = j.lists.n_rows;
    s->positives = j.lists.positives;
    s->replay_s = j.lists.build_s + j.lists.replay_s;
    if (!o->replay.quiet)
        fprintf(stderr, "train ltr: %zu lists, %zu candidates, %zu positives (%zu held out)\n",
                s->groups, s->rows, s->positives, j.lists.held_out);
    int64_t t0 = cascade_now_us();
    if ((rc = pick_validation(&j, err, errlen)) || (rc = train_prerank(&j, err, errlen)) ||
        (rc = train_rank(&j, err, errlen)))
        goto out;
    s->train_s = (double)(cascade_now_us() - t0) / 1e6;
    if ((rc = validate(&j))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (o->model_dir)
        rc = publish_both(&j, err, errlen);
out:
    job_free(&j);
    return rc;
}
