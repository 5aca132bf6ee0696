/* cascade-build train ltr: the learned rankers of PreRank and Rank.
 * Replays recall on the data (ltr_replay.h), trains a LambdaMART pre-ranker
 * on every user's whole candidate list, then a LambdaMART ranker on the
 * lists the pre-ranker keeps (the cascade as served), both through
 * ltr_xgb.h, and measures on validation users (a seeded share of the
 * replayed users that neither model trained on) the nDCG@10 of the recall
 * order, of the pre-ranker and of the ranker after it. A model is published
 * (model-dir/<stage>-ltr-<UTC>.safetensors named by <stage>-ltr.latest) only
 * when it passes the project's gate (train_gate.h): it beats the order it
 * replaces on validation (the floor) and is no worse than the model
 * currently published, measured on the same validation lists. The decision
 * is written beside the model as <file>.gate.json. */
#ifndef CASCADE_LTR_TRAIN_H
#define CASCADE_LTR_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "ltr_replay.h"
#include "ltr_xgb.h"

#define CASCADE_LTR_PRERANK_LATEST "prerank-ltr.latest"
#define CASCADE_LTR_RANK_LATEST "rank-ltr.latest"

struct cascade_ltr_train_opts {
    struct cascade_ltr_replay_opts replay;
    struct cascade_ltr_xgb_opts prerank, rank; /* per-stage booster settings */
    size_t rank_list;    /* candidates the pre-ranker keeps for the ranker, default 300 */
    double valid_frac;   /* share of replayed users kept for validation, default 0.3 */
    double margin_scale; /* boost from margin_scale · recall score; 0 = from nothing */
    double min_gain;  /* a model must beat the order it replaces by this much nDCG, default 0.01 */
    double tolerance; /* ... and lose at most this much to the published model, default 0.002 */
    bool force;       /* publish even when the gate says no */
    const char *model_dir;
};

/* Validation nDCG@10 of each order and what the gate decided. */
struct cascade_ltr_train_summary {
    size_t groups, rows, positives, valid_groups;
    double ndcg_recall, ndcg_prerank, ndcg_rank; /* the cascade on validation users */
    double ndcg_rank_base; /* the order reaching the ranker, on its (cut) lists */
    double ndcg_prerank_current, ndcg_rank_current; /* published models, -1 = none */
    double best_channel_ndcg; /* the best single channel's order on the same lists */
    char best_channel[64];
    int prerank_rounds, rank_rounds;
    bool prerank_published, rank_published;
    char prerank_version[256], rank_version[256];
    char prerank_reason[512], rank_reason[512];
    double replay_s, train_s;
};

void cascade_ltr_train_defaults(struct cascade_ltr_train_opts *o);

/* Replay, train, gate and publish. Returns 0 (also when the gate kept a
 * model back: see the summary), CASCADE_EDATA with a message when the
 * data cannot support a learned ranker, or another negative code with err. */
int cascade_ltr_train_run(const cascade_dataset *ds, cascade_redis *r, cascade_redis_pool *pool,
                          const struct cascade_ltr_train_opts *o,
                          struct cascade_ltr_train_summary *s, char *err, size_t errlen);

/* Main of `cascade-ltr` and `cascade-build train ltr`: flags, then the run;
 * exit status 0, 1 (failure), 2 (bad flags) or 3 (the data does not support
 * a learned ranker). */
int cascade_ltr_main(int argc, char **argv);

#endif
