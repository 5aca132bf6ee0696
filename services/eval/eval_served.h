/* The served-list evaluation (cascade-eval --served, docs/eval.md): the
 * train part of a split goes through the real pipeline — written as a
 * Cascade TSV dataset, built and trained with cascade-build's own jobs,
 * served by a stack (scripts/stack.sh, or one already running) — and every
 * test user's Recommend answer (count K, debug on) is scored, with the
 * order of each stage taken from the debug trace (StageTrace.item_ids): the
 * waterfall. One pass per configuration; not thread-safe. */
#ifndef CASCADE_EVAL_SERVED_H
#define CASCADE_EVAL_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eval_metrics.h"
#include "eval_split.h"

/* Waterfall rows, in pipeline order: the trace stages, then the answer. */
enum {
    CASCADE_EVAL_STAGE_MERGE, /* "merge", or "fallback" when recall found nothing */
    CASCADE_EVAL_STAGE_FILTER,
    CASCADE_EVAL_STAGE_PRERANK,
    CASCADE_EVAL_STAGE_RANK,
    CASCADE_EVAL_STAGE_RERANK,
    CASCADE_EVAL_STAGE_SERVED, /* RecommendResponse.items */
    CASCADE_EVAL_N_STAGES
};

/* Row names: "merged_recall", "filter", "prerank", "rank", "rerank", "served". */
extern const char *const cascade_eval_stage_names[CASCADE_EVAL_N_STAGES];

/* The trainers run by default (cascade-build train MODEL), in order; a
 * comma-separated list, so a new trainer is one more word. */
#define CASCADE_EVAL_DEFAULT_MODELS "two-tower,ltr,prerank,mmoe"

struct cascade_eval_served_opts {
    const char *config;   /* config file for the stack (and the build); required */
    const char *work_dir; /* train TSVs, stack data, logs; created */
    const char *bin_dir;  /* cascade-* binaries */
    const char *stack_sh; /* scripts/stack.sh */
    int port_base;        /* own stack: orchestrator port, stages +1..+5, redis +9 */
    const char *models;   /* trainers to run, comma-separated ("" = none) */
    /* An already running stack instead of an own one (all four or none). */
    const char *target, *redis, *ns, *model_dir;
    bool explore_cost;  /* second pass with orchestrator.exploration.new_share=0 */
    bool keep_stack;    /* leave the own stack running at the end */
    size_t k;           /* list length asked for and scored, default 10 */
    int64_t timeout_ms; /* per Recommend call, default 5000 */
    bool quiet;
};

struct cascade_eval_served_pass {
    struct cascade_eval_list_acc acc[CASCADE_EVAL_N_STAGES];
    size_t missing[CASCADE_EVAL_N_STAGES]; /* answers without this stage's ids (order carried on) */
    size_t failed;                         /* Recommend calls that failed (scored as empty) */
    size_t degraded;                       /* answers flagged degraded */
    double seconds;
};

struct cascade_eval_served_result {
    struct cascade_eval_served_pass with;    /* as configured */
    struct cascade_eval_served_pass without; /* exploration off (explore_cost) */
    bool has_without;
    char trained[256], skipped[256]; /* models trained / skipped ("data does not support") */
    double build_s, train_s, stack_s;
};

/* Run the served evaluation of split (its train part is what is built);
 * pct (borrowed) gives the popularity-bias column. Returns 0 or a negative
 * code with err saying which step failed; *res is freed with
 * cascade_eval_served_free also after a failure. */
int cascade_eval_served_run(const struct cascade_eval_split *split, const double *pct,
                            const struct cascade_eval_served_opts *o,
                            struct cascade_eval_served_result *res, char *err, size_t errlen);
void cascade_eval_served_free(struct cascade_eval_served_result *res);

/* Score one answer: ids[0..n) are public item ids, mapped to train's item
 * indices (unknown ids dropped), the user's train items seen[0..n_seen)
 * (sorted) removed, the first acc->k kept, into acc against rel. */
void cascade_eval_served_score(const cascade_dataset *train, const uint64_t *ids, size_t n,
                               const uint32_t *seen, size_t n_seen, const uint32_t *rel,
                               size_t n_rel, struct cascade_eval_list_acc *acc);

#endif
