/* Rank stage (精排): per-task predictions for a few hundred candidates and a
 * fused rank_score. Predictions come from the learned ranker named by
 * <model_dir>/rank-ltr.latest (a score, no tasks), the MMoE named by
 * rank-mmoe.latest (every task), the logistic-regression model named by
 * rank-lr.latest (p_click only), or a smoothed-CTR heuristic. Every kind
 * published is kept; config rank.model (auto, ltr, mmoe, lr, heuristic)
 * picks the one that scores, and the experiment param rank.model overrides it
 * per request when it names a loaded kind. Each model is reloaded atomically
 * when its .latest file changes (checked at most once per reload interval). Fusion formulas are a
 * table selected by config or experiment param rank.fusion.formula. The handler wraps
 * cascade_rank_run. */
#ifndef CASCADE_RANK_H
#define CASCADE_RANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/rank.pb-c.h"
#include "config.h"
#include "metrics.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_rank cascade_rank;

/* Name of the pointer file in the model directory; it holds the file name
 * (no directory) of the current model, e.g. "rank-lr-1764355582.safetensors". */
#define CASCADE_RANK_LATEST_FILE "rank-lr.latest"
/* The same for the MMoE ("rank-mmoe-20261128T210000Z.safetensors"). */
#define CASCADE_RANK_MMOE_LATEST_FILE "rank-mmoe.latest"
/* The learned ranker (cascade-build train ltr; gbdt.h over ltr_features.h). */
#define CASCADE_RANK_LTR_LATEST_FILE "rank-ltr.latest"

/* Create the stage from the "rank" config section (cfg may be NULL), loading
 * the current model from model_dir if there is one (a missing or unloadable
 * model is logged and the heuristic used; it is not an error). Borrows
 * `redis`; copies ns and model_dir. Registers the stage's metrics in `metrics`
 * (borrowed, must outlive the stage; NULL: none): the item cache's
 * cascade_rank_item_cache_* (item_cache.h) and
 * cascade_rank_requests_by_model_total{model}; with rank.item_cache.tracking,
 * a thread tracks item record changes on redis's server until the stage is
 * destroyed. NULL with a message in err on
 * bad config. Thread-safe once created; models are swapped under running
 * requests. */
cascade_rank *cascade_rank_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                  const char *ns, const char *model_dir, cascade_metrics *metrics,
                                  char *err, size_t errlen);

/* NULL is a no-op. Call after all requests finished. */
void cascade_rank_destroy(cascade_rank *r);

/* Check every kind's .latest file (rank-ltr, rank-mmoe, rank-lr) now (ignoring
 * the reload interval) and load and swap in the model each names when the file
 * changed or `force` is set. Returns 0 (loaded, or nothing to do) or the first
 * failure's negative code with err when a named model cannot be loaded (the
 * previous model of that kind stays in service). */
/* Keep loaded every model version that the config's experiments select by
 * file name (param rank.model_version, e.g. "rank-mmoe-20261201.safetensors"
 * in model_dir; kind by prefix rank-ltr / rank-mmoe / rank-lr): a request
 * whose experiment names a pinned version is scored with it, any other with
 * the rank.model choice. Replaces the pinned set; versions no longer named
 * are freed once no request uses them. At create and on SIGHUP reload.
 * Returns 0, or CASCADE_EINVAL naming the experiment and the file that
 * cannot be loaded (nothing changed then). Thread-safe against requests. */
int cascade_rank_pin_versions(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen);

int cascade_rank_reload(cascade_rank *r, bool force, char *err, size_t errlen);

/* The version requests without an experiment rank.model are scored with
 * right now: the model's file name or "heuristic: no model in <dir>". Copied
 * into buf (returned). */
const char *cascade_rank_model_version(cascade_rank *r, char *buf, size_t len);

/* The rank features (rank_features.h) Score computes for items ids[0..n)
 * of user user_id at now_s (Unix s), through the same reads (user record,
 * item records, the online counters' change: docs/closed-loop.md) and the
 * same function, into out [n × CASCADE_RANK_FEATURES]. For parity tests and
 * debugging; thread-safe as Score. Returns 0 or EUNAVAILABLE / ETIMEDOUT /
 * ENOMEM with err. */
int cascade_rank_features(cascade_rank *r, cascade_arena *arena, int64_t deadline_ms,
                          const char *user_id, const uint64_t *ids, size_t n, int64_t now_s,
                          float *out, char *err, size_t errlen);

/* Score req's candidates: fetch the user and item records, predict, fuse,
 * fill tasks and attrs, sort by rank_score descending (ties: smaller item id)
 * and keep req->keep (0 = all). The request's Candidate objects are reused.
 * Candidates sent as item_ids (and recall_scores) columns are built in arena
 * and answered as the RankResponse columns (scored_ids, rank_scores,
 * task_scores, attributes; rank.proto), with the same checks and scores as
 * the same candidates sent as messages. Returns 0 or EINVAL / ETOOBIG / EUNAVAILABLE / ETIMEDOUT /
 * ENOMEM with err. */
int cascade_rank_run(cascade_rank *r, cascade_arena *arena, int64_t deadline_ms,
                     const Cascade__V1__RankRequest *req, Cascade__V1__RankResponse **out,
                     char *err, size_t errlen);

/* RPC handler for /cascade.v1.Rank/Score (service = cascade_rank *). */
int cascade_rank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                        ProtobufCMessage **response);

/* The method table for cascade_service_run; *n is set to its length. Static. */
const struct cascade_rpc_method *cascade_rank_methods(size_t *n);

/* ------------------------------------------------------------------ fusion */

/* Parameters of the fusion formulas (config rank.fusion.*; the weights can
 * be overridden per request by experiment params "rank.fusion.weights.<task>"). */
struct cascade_rank_fusion_params {
    double w_click, w_like, w_collect, w_share, w_watch_time, w_complete;
    double rank_alpha, rank_beta; /* rank_based: w / (rank^alpha + beta); default 1, 10 */
};

/* A fusion formula: out[i] = fused score of tasks[i] for i in [0,n). Formulas
 * see the whole list so rank-based ones can be added; scratch from arena.
 * Returns 0 or CASCADE_ENOMEM. */
typedef int (*cascade_rank_fusion_fn)(const struct cascade_rank_fusion_params *p,
                                      const Cascade__V1__TaskScores *const *tasks, size_t n,
                                      float *out, cascade_arena *arena);

/* The formula registered under name ("weighted_sum"), or NULL. */
cascade_rank_fusion_fn cascade_rank_fusion_find(const char *name);

/* Registered formula names, comma-separated. Static. */
const char *cascade_rank_fusion_list(void);

/* weighted_sum: Σ_k w_k · prediction_k (watch time in seconds). */
int cascade_rank_fusion_weighted_sum(const struct cascade_rank_fusion_params *p,
                                     const Cascade__V1__TaskScores *const *tasks, size_t n,
                                     float *out, cascade_arena *arena);
/* click_boost: p_click · (1 + Σ_{k ≠ click} w_k · prediction_k). */
int cascade_rank_fusion_click_boost(const struct cascade_rank_fusion_params *p,
                                    const Cascade__V1__TaskScores *const *tasks, size_t n,
                                    float *out, cascade_arena *arena);
/* rank_based: Σ_k w_k / (rank_k^alpha + beta), rank_k the 1-based rank of the
 * item among the n candidates by task k (ties share the better rank); tasks
 * with w_k = 0 are skipped. arena may be NULL (heap scratch). */
int cascade_rank_fusion_rank_based(const struct cascade_rank_fusion_params *p,
                                   const Cascade__V1__TaskScores *const *tasks, size_t n,
                                   float *out, cascade_arena *arena);
/* product: Π_{w_k ≠ 0} max(prediction_k, 1e-6)^w_k. */
int cascade_rank_fusion_product(const struct cascade_rank_fusion_params *p,
                                const Cascade__V1__TaskScores *const *tasks, size_t n, float *out,
                                cascade_arena *arena);

#endif
