/* Pre-rank features and the pre-rank heuristic, shared by the PreRank
 * service and cascade-build train-prerank so that training and serving hash
 * the same crosses. Each (user, item) pair gives CASCADE_PRERANK_FEATURES
 * hashed binary features (spec CASCADE_PRERANK_SPEC, see docs/stages.md):
 * item id, author, category, user×category, age×category, gender×category,
 * user city×item city, affinity rank×category, affinity share, interest
 * match×category, popularity, smoothed CTR, item age×media type, user
 * activity×CTR, user×author, age×media type. */
#ifndef CASCADE_PRERANK_FEATURES_H
#define CASCADE_PRERANK_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"

#define CASCADE_PRERANK_FEATURES 16
#define CASCADE_PRERANK_SPEC "prerank-hash-v1"

/* The heuristic's parameters (config prerank.weights.* and prerank.ctr_prior.*). */
struct cascade_prerank_weights {
    double clicks;            /* weight of log1p(clicks) */
    double ctr;               /* weight of the smoothed CTR */
    double recall;            /* weight of the candidate's recall_score */
    double prior_clicks;      /* CTR smoothing: pseudo-clicks */
    double prior_impressions; /* CTR smoothing: pseudo-impressions (> 0) */
};

/* clicks 0.2, ctr 4.0, recall 1.0, prior 1 click / 20 impressions. */
void cascade_prerank_weights_default(struct cascade_prerank_weights *w);

/* The heuristic score of one item; stats may be NULL (zero counters):
 * w.clicks·log1p(clicks) + w.ctr·(clicks + prior_clicks)/(impressions +
 * prior_impressions) + w.recall·recall_score (0 when not finite). */
float cascade_prerank_score(const struct cascade_prerank_weights *w,
                            const cascade_v1_ItemStats *stats, float recall_score);

/* The per-request part of the features, computed once per user. */
struct cascade_prerank_user {
    const cascade_v1_UserRecord *rec; /* borrowed; NULL = unknown user */
    uint64_t uid;                     /* hash of the user id */
    uint32_t age_bucket, gender, city, activity_bucket;
    float affinity_sum;
};

/* Prepare user features from rec (NULL or absent: an anonymous user whose
 * crosses fall into shared "unknown" buckets); user_id names the user when
 * rec is NULL (may be NULL too). */
void cascade_prerank_user_prepare(const cascade_v1_UserRecord *rec, const char *user_id,
                                  struct cascade_prerank_user *u);

/* The CASCADE_PRERANK_FEATURES bucket indices (< 2^bits) of (u, item) at
 * time now_s. item must have item_id set; a zeroed record is an unknown item. */
void cascade_prerank_features(const struct cascade_prerank_user *u,
                              const cascade_v1_ItemRecord *item, int64_t now_s, unsigned bits,
                              uint32_t *idx);

#endif
