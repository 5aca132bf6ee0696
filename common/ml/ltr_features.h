/* Learning-to-rank features: what the pre-rank and rank learned rankers
 * (cascade-build train ltr, the PreRank and Rank services) see of one
 * candidate. They extend the rank features (rank_features.h: item, user and
 * user×category statistics) with the recall signals the candidate arrived
 * with: each channel's normalised score (ChannelHit.norm_score: the score
 * over the channel's best for this request, which unlike the raw score does
 * not shift with the size of the data) and rank for it, how many channels
 * found it and its merged recall score. A channel that did not find the candidate
 * gives NaN ("missing"), which the tree models route by their learned
 * default branch. Training and serving call this one function, so the same
 * (user, item, candidate) gives the same vector; pure and thread-safe. */
#ifndef CASCADE_LTR_FEATURES_H
#define CASCADE_LTR_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/common.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "gbdt.h"
#include "rank_features.h"

/* The recall channels with a feature pair of their own, in feature order;
 * hits from any other channel count only in the channel count. */
#define CASCADE_LTR_CHANNELS 15
/* rank features, then per channel (norm_score, log2(2 + rank)), then
 * channel count, recall score, log1p(item clicks). */
#define CASCADE_LTR_FEATURES (CASCADE_RANK_FEATURES + 2 * CASCADE_LTR_CHANNELS + 3)
/* The column holding the merged recall score: the learned rankers boost
 * from it (gbdt.h margin), so a model with no tree is the recall order. */
#define CASCADE_LTR_RECALL_SCORE (CASCADE_RANK_FEATURES + 2 * CASCADE_LTR_CHANNELS + 1)
/* Names the feature layout; stored in every model and checked on load. */
#define CASCADE_LTR_SPEC "ltr-v2"

/* Fill out[0..CASCADE_LTR_FEATURES) for candidate cand (its channel hits and
 * recall score; borrowed) of user at time now_s (Unix seconds). user and item
 * are the records the stores hold (zeroed records for unknown ones). */
void cascade_ltr_features(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                          const Cascade__V1__Candidate *cand, int64_t now_s, float *out);

/* The same for the user u was prepared for (rank_features.h), which keeps
 * what depends on the user alone between the calls of one request. */
void cascade_ltr_features_for(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                              const Cascade__V1__Candidate *cand, int64_t now_s, float *out);

/* The same with the item's own part from ri when it was prepared from item's
 * current fields (rank_features.h cascade_rank_item_matches; ri may be NULL):
 * the same floats, fewer logarithms. */
void cascade_ltr_features_from(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                               const struct cascade_rank_item *ri,
                               const Cascade__V1__Candidate *cand, int64_t now_s, float *out);

/* Load a learned ranker (gbdt.h) saved by cascade-build train ltr and check
 * that it reads these features (metadata "features" = CASCADE_LTR_SPEC and
 * CASCADE_LTR_FEATURES inputs). 0 with *out set (caller destroys), or
 * CASCADE_EIO / CASCADE_EFORMAT with a message naming the file. */
int cascade_ltr_model_load(const char *path, cascade_gbdt **out, char *err, size_t errlen);

/* Name of feature i ("unknown" past the end), for reports and model files. */
const char *cascade_ltr_feature_name(size_t i);

/* Name of channel slot i (< CASCADE_LTR_CHANNELS). */
const char *cascade_ltr_channel_name(size_t i);

#endif
