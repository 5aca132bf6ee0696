/* LambdaMART training through libxgboost's C API (objective rank:ndcg):
 * grouped examples in, a cascade_gbdt out (gbdt.h), so serving never links
 * xgboost. Rounds stop early when the validation nDCG@K has not improved for
 * `patience` rounds, and the model is cut back to its best round. */
#ifndef CASCADE_LTR_XGB_H
#define CASCADE_LTR_XGB_H

#include <stddef.h>
#include <stdint.h>

#include "gbdt.h"

/* Rows grouped by request: group g is rows [off[g], off[g+1]). */
struct cascade_ltr_set {
    const float *X; /* rows × dim, NaN = missing */
    const float *y; /* relevance (0/1) */
    const size_t *off;
    size_t n_groups, dim;
};

struct cascade_ltr_xgb_opts {
    const char
        *objective;   /* xgboost objective: rank:ndcg (default), rank:pairwise, binary:logistic */
    int rounds;       /* most boosting rounds, default 300 */
    int patience;     /* stop after this many rounds without a better validation nDCG, default 30 */
    int min_rounds;   /* the kept model has at least this many rounds, default 20 */
    int max_depth;    /* default 6 */
    double eta;       /* learning rate, default 0.05 */
    double subsample; /* row share per tree, default 0.8 */
    double colsample; /* feature share per tree, default 0.8 */
    double min_child_weight; /* default 1 */
    int ndcg_k;              /* the validation metric's cut-off, default 10 */
    /* Boost from a margin: every row starts at margin_scale · X[margin_feature]
     * (xgboost's base_margin) and the trees learn corrections; the returned
     * model keeps the margin (gbdt.h). -1 = none (default). With a margin,
     * baseline_ndcg is the validation nDCG@K of the margin alone, a round
     * must beat it, and a model with no tree (the margin) is a valid result. */
    long margin_feature;
    float margin_scale;
    double baseline_ndcg;
    int threads;   /* default 2 */
    uint64_t seed; /* default 1 */
    /* Called after each round (may be NULL). */
    void (*on_round)(void *ud, int round, double valid_ndcg, double best, int best_round);
    void *ud;
};

struct cascade_ltr_xgb_result {
    int best_round;   /* rounds kept (1-based count; 0 = the margin alone) */
    double best_ndcg; /* xgboost's validation nDCG@K at that round */
};

void cascade_ltr_xgb_defaults(struct cascade_ltr_xgb_opts *o);

/* Train on `train`, choose the round count on `valid`. NULL with a message
 * in err on failure (xgboost's own message included). */
cascade_gbdt *cascade_ltr_xgb_train(const struct cascade_ltr_set *train,
                                    const struct cascade_ltr_set *valid,
                                    const struct cascade_ltr_xgb_opts *o,
                                    struct cascade_ltr_xgb_result *res, char *err, size_t errlen);

#endif
