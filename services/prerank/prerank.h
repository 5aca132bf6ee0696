/* Pre-rank stage (粗排): a light score for thousands of candidates, keeping
 * the best few hundred. With a model (<model_dir>/prerank-lr.latest, a
 * hashed-feature LR, common/ml/hashlr.h) the score is its p_click over the
 * user×item crosses of common/ml/prerank_features.h; without one, the heuristic
 * w_clicks·log1p(clicks) + w_ctr·smoothed_ctr + w_recall·recall_score.
 * The handler wraps cascade_prerank_run, which tests call directly. */
#ifndef CASCADE_PRERANK_H
#define CASCADE_PRERANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "config.h"
#include "metrics.h"
#include "prerank_features.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_prerank cascade_prerank;

/* The pointer file naming the current model in the model directory. */
#define CASCADE_PRERANK_LATEST_FILE "prerank-lr.latest"
/* The learned pre-ranker (cascade-build train ltr). */
#define CASCADE_PRERANK_LTR_LATEST_FILE "prerank-ltr.latest"

/* Create the stage from the "prerank" config section (cfg may be NULL).
 * Borrows `redis`; copies `ns` and `model_dir` (NULL or "": heuristic only,
 * no model is looked for). The newest model is loaded now and reloaded when
 * the .latest file changes (checked every prerank.reload_interval_ms).
 * Registers the item cache's cascade_prerank_item_cache_* metrics
 * (item_cache.h) in `metrics` (borrowed, must outlive the stage; NULL: none);
 * with prerank.item_cache.tracking, a thread tracks item record changes on
 * redis's server until the stage is destroyed.
 * NULL with a message in err on bad config. */
cascade_prerank *cascade_prerank_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                        const char *ns, const char *model_dir,
                                        cascade_metrics *metrics, char *err, size_t errlen);

/* Check the .latest file now (force: reload even when unchanged). Returns 0
 * (also when there is no model: the heuristic serves) or the load error;
 * the current scorer is kept on failure. */
int cascade_prerank_reload(cascade_prerank *p, bool force, char *err, size_t errlen);

/* The version being served: the model's, or "prerank-heuristic-v1" plus why. */
const char *cascade_prerank_model_version(cascade_prerank *p, char *buf, size_t len);

/* Model versions per experiment arm: load every file the config's
 * experiments name in prerank.model_version (a file name in the model
 * directory starting prerank-lr or prerank-ltr) and keep it loaded beside
 * the .latest model; release the versions no longer named. A request whose
 * arm names a pinned version is scored with it, any other with the latest
 * (a version no experiment names is never loaded on demand). Called at
 * create and on reload (SIGHUP); on error (a file that does not load, more
 * than 8 versions) nothing changes. 0 or CASCADE_EINVAL with err. */
int cascade_prerank_pin_versions(cascade_prerank *p, const cascade_config *cfg, char *err,
                                 size_t errlen);

/* NULL is a no-op. */
void cascade_prerank_destroy(cascade_prerank *p);

/* Score req's candidates (item records fetched with MGET in chunks), sort
 * them by prerank_score descending (ties: smaller item id first) and keep
 * the top N: req->keep, else experiment param "prerank.keep", else config
 * prerank.keep. The request's Candidate objects are updated and reused.
 * Candidates sent as item_ids (and recall_scores) columns are built in arena
 * and answered as scored_ids and scores (prerank.proto), with the same
 * checks and scores as the same candidates sent as messages. Returns 0 or EINVAL / ETOOBIG /
 * EUNAVAILABLE / ETIMEDOUT / ENOMEM with err. */
int cascade_prerank_run(cascade_prerank *p, cascade_arena *arena, int64_t deadline_ms,
                        const Cascade__V1__PreRankRequest *req, Cascade__V1__PreRankResponse **out,
                        char *err, size_t errlen);

/* The hashed features (CASCADE_PRERANK_FEATURES bucket indices < 2^bits per
 * item, into idx [n × CASCADE_PRERANK_FEATURES]) and the default-weight
 * heuristic score with recall score 0 (into heuristic [n]) of items ids[0..n)
 * for user user_id at now_s, through the reads Score makes (user record, item
 * records, the online counters' change: docs/closed-loop.md) and the same
 * functions. For parity tests and debugging; thread-safe as Score. Returns
 * 0 or EUNAVAILABLE / ETIMEDOUT / ENOMEM with err. */
int cascade_prerank_features_of(cascade_prerank *p, cascade_arena *arena, int64_t deadline_ms,
                                const char *user_id, const uint64_t *ids, size_t n, int64_t now_s,
                                unsigned bits, uint32_t *idx, float *heuristic, char *err,
                                size_t errlen);

/* RPC handler for /cascade.v1.PreRank/Score (service = cascade_prerank *). */
int cascade_prerank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response);

/* The method table for cascade_service_run; *n is set to its length. Static. */
const struct cascade_rpc_method *cascade_prerank_methods(size_t *n);

#endif
