/* Pre-rank stage (粗排): a light score from item statistics and the recall
 * score for thousands of candidates, keeping the best few hundred.
 * prerank_score = w_clicks·log1p(clicks) + w_ctr·smoothed_ctr + w_recall·recall_score,
 * smoothed_ctr = (clicks + prior_clicks) / (impressions + prior_impressions).
 * The handler wraps cascade_prerank_run, which tests call directly. */
#ifndef CASCADE_PRERANK_H
#define CASCADE_PRERANK_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "config.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_prerank cascade_prerank;

/* The score's parameters (config prerank.weights.* and prerank.ctr_prior.*). */
struct cascade_prerank_weights {
    double clicks;            /* weight of log1p(clicks) */
    double ctr;               /* weight of the smoothed CTR */
    double recall;            /* weight of the candidate's recall_score */
    double prior_clicks;      /* CTR smoothing: pseudo-clicks */
    double prior_impressions; /* CTR smoothing: pseudo-impressions (> 0) */
};

/* Create the stage from the "prerank" config section (cfg may be NULL).
 * Borrows `redis`; copies `ns`. NULL with a message in err on bad config. */
cascade_prerank *cascade_prerank_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                        const char *ns, char *err, size_t errlen);

/* NULL is a no-op. */
void cascade_prerank_destroy(cascade_prerank *p);

/* Score req's candidates (item records fetched with MGET in chunks), sort
 * them by prerank_score descending (ties: smaller item id first) and keep
 * the top N: req->keep, else experiment param "prerank.keep", else config
 * prerank.keep. The request's Candidate objects are updated and reused.
 * Returns 0 or EINVAL / ETOOBIG / EUNAVAILABLE / ETIMEDOUT / ENOMEM with err. */
int cascade_prerank_run(cascade_prerank *p, cascade_arena *arena, int64_t deadline_ms,
                        const Cascade__V1__PreRankRequest *req, Cascade__V1__PreRankResponse **out,
                        char *err, size_t errlen);

/* RPC handler for /cascade.v1.PreRank/Score (service = cascade_prerank *). */
int cascade_prerank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response);

/* The method table for cascade_service_run; *n is set to its length. Static. */
const struct cascade_rpc_method *cascade_prerank_methods(size_t *n);

/* The score of one item; stats may be NULL (unknown item: zero counters). */
float cascade_prerank_score(const struct cascade_prerank_weights *w,
                            const cascade_v1_ItemStats *stats, float recall_score);

#endif
