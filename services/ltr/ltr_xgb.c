/* LambdaMART through libxgboost (ltr_xgb.h). */
#include "ltr_xgb.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "error.h"

void cascade_ltr_xgb_defaults(struct cascade_ltr_xgb_opts *o)
{
    memset(o, 0, sizeof *o);
    o->objective = "rank:ndcg";
    o->rounds = 300;
    o->patience = 30;
    o->min_rounds = 20;
    o->max_depth = 6;
    o->eta = 0.05;
    o->subsample = 0.8;
    o->colsample = 0.8;
    o->min_child_weight = 1;
    o->ndcg_k = 10;
    o->margin_feature = -1;
    o->margin_scale = 1.0f;
    o->baseline_ndcg = -1;
    o->threads = 2;
    o->seed = 1;
}

static int xgb_fail(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "xgboost: %s: %s", what, XGBGetLastError());
    return CASCADE_EINVAL;
}

static int make_dmatrix(const struct cascade_ltr_set *s, const struct cascade_ltr_xgb_opts *o,
                        DMatrixHandle *out, char *err, size_t errlen)
{
    size_t rows = s->off[s->n_groups];
    unsigned *groups = calloc(s->n_groups + 1, sizeof *groups);
    int rc = 0;
    *out = NULL;
    if (!groups) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    for (size_t g = 0; g < s->n_groups; g++)
        groups[g] = (unsigned)(s->off[g + 1] - s->off[g]);
    if (XGDMatrixCreateFromMat(s->X, rows, s->dim, NAN, out) != 0)
        rc = xgb_fail("matrix", err, errlen);
    else if (XGDMatrixSetFloatInfo(*out, "label", s->y, rows) != 0 ||
             XGDMatrixSetUIntInfo(*out, "group", groups, s->n_groups) != 0)
        rc = xgb_fail("labels and groups", err, errlen);
    if (rc == 0 && o->margin_feature >= 0) {
        float *margin = malloc((rows + 1) * sizeof *margin);
        if (!margin) {
            snprintf(err, errlen, "out of memory");
            rc = CASCADE_ENOMEM;
        } else {
            for (size_t i = 0; i < rows; i++) {
                float v = s->X[i * s->dim + (size_t)o->margin_feature];
                margin[i] = isfinite(v) ? o->margin_scale * v : 0.0f;
            }
            if (XGDMatrixSetFloatInfo(*out, "base_margin", margin, rows) != 0)
                rc = xgb_fail("base margin", err, errlen);
            free(margin);
        }
    }
    free(groups);
    return rc;
}

static int set_params(BoosterHandle b, const struct cascade_ltr_xgb_opts *o, char *err,
                      size_t errlen)
{
    char v[8][64];
    snprintf(v[0], sizeof v[0], "%d", o->max_depth);
    snprintf(v[1], sizeof v[1], "%g", o->eta);
    snprintf(v[2], sizeof v[2], "%g", o->subsample);
    snprintf(v[3], sizeof v[3], "%g", o->colsample);
    snprintf(v[4], sizeof v[4], "%g", o->min_child_weight);
    /* "-": a group without a positive scores 0, as ltr_train.c counts it. */
    snprintf(v[5], sizeof v[5], "ndcg@%d-", o->ndcg_k);
    snprintf(v[6], sizeof v[6], "%d", o->threads);
    snprintf(v[7], sizeof v[7], "%llu", (unsigned long long)(o->seed & 0x7fffffff));
    const char *params[][2] = {
        {"objective", o->objective}, {"tree_method", "hist"},
        {"max_depth", v[0]},         {"eta", v[1]},
        {"subsample", v[2]},         {"colsample_bytree", v[3]},
        {"min_child_weight", v[4]},  {"eval_metric", v[5]},
        {"nthread", v[6]},           {"seed", v[7]},
        {"verbosity", "0"},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (XGBoosterSetParam(b, params[i][0], params[i][1]) != 0)
            return xgb_fail(params[i][0], err, errlen);
    return 0;
}

/* The number after the last ':' of "[3]\tvalid-ndcg@10:0.41". */
static double eval_value(const char *s)
{
    const char *c = strrchr(s, ':');
    return c ? strtod(c + 1, NULL) : NAN;
}

static cascade_gbdt *to_gbdt(BoosterHandle b, int rounds, size_t dim, char *err, size_t errlen)
{
    BoosterHandle cut = NULL;
    bst_ulong len = 0;
    const char *json = NULL;
    cascade_gbdt *m = NULL;
    if (XGBoosterSlice(b, 0, rounds, 1, &cut) != 0) {
        xgb_fail("slice", err, errlen);
        return NULL;
    }
    if (XGBoosterSaveModelToBuffer(cut, "{\"format\": \"json\"}", &len, &json) != 0)
        xgb_fail("save", err, errlen);
    else
        m = cascade_gbdt_from_xgboost_json(json, len, dim, err, errlen);
    XGBoosterFree(cut);
    return m;
}

cascade_gbdt *cascade_ltr_xgb_train(const struct cascade_ltr_set *train,
                                    const struct cascade_ltr_set *valid,
                                    const struct cascade_ltr_xgb_opts *o,
                                    struct cascade_ltr_xgb_result *res, char *err, size_t errlen)
{
    DMatrixHandle dm[2] = {NULL, NULL};
    BoosterHandle b = NULL;
    cascade_gbdt *m = NULL;
    const char *names[1] = {"valid"};
    memset(res, 0, sizeof *res);
    res->best_ndcg = -1;
    bool margin = o->margin_feature >= 0;
    if (margin && (size_t)o->margin_feature >= train->dim) {
        snprintf(err, errlen, "margin feature %ld out of range", o->margin_feature);
        goto out;
    }
    if (make_dmatrix(train, o, &dm[0], err, errlen) || make_dmatrix(valid, o, &dm[1], err, errlen))
        goto out;
    /* Boosting from a margin: the margin alone is round 0, the one to beat. */
    if (margin)
        res->best_ndcg = o->baseline_ndcg;
    int min_rounds = margin ? 0 : o->min_rounds;
    if (XGBoosterCreate(dm, 2, &b) != 0) {
        xgb_fail("booster", err, errlen);
        goto out;
    }
    if (set_params(b, o, err, errlen))
        goto out;
    for (int it = 0; it < o->rounds; it++) {
        const char *ev = NULL;
        if (XGBoosterUpdateOneIter(b, it, dm[0]) != 0) {
            xgb_fail("round", err, errlen);
            goto out;
        }
        if (XGBoosterEvalOneIter(b, it, &dm[1], names, 1, &ev) != 0) {
            xgb_fail("evaluation", err, errlen);
            goto out;
        }
        double v = eval_value(ev);
        /* A few rounds that happen to score well on a small validation set
         * are not a model: the best round is chosen from min_rounds on. */
        if (it + 1 >= min_rounds && v > res->best_ndcg) {
            res->best_ndcg = v;
            res->best_round = it + 1;
        }
        if (o->on_round)
            o->on_round(o->ud, it + 1, v, res->best_ndcg, res->best_round);
        if (it + 1 >= min_rounds && it + 1 - res->best_round >= o->patience)
            break;
    }
    if (res->best_round == 0 && margin) {
        /* No round beat the margin alone: the model is the margin. */
        if (!(m = cascade_gbdt_margin_only(train->dim, (size_t)o->margin_feature, o->margin_scale)))
            snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (res->best_round == 0) /* fewer rounds than min_rounds were asked for: keep them all */
        res->best_round = o->rounds < o->min_rounds ? o->rounds : o->min_rounds;
    m = to_gbdt(b, res->best_round, train->dim, err, errlen);
    if (m && margin && cascade_gbdt_set_margin(m, (size_t)o->margin_feature, o->margin_scale)) {
        cascade_gbdt_destroy(m);
        m = NULL;
        snprintf(err, errlen, "margin feature out of range");
    }
out:
    if (b)
        XGBoosterFree(b);
    for (int i = 0; i < 2; i++)
        if (dm[i])
            XGDMatrixFree(dm[i]);
    return m;
}
