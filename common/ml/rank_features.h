/* Ranking features computed the same way offline (training in cascade-build)
 * and online (the Rank service): one dense float vector per (user, item).
 * Pure functions, thread-safe. */

#ifndef CASCADE_RANK_FEATURES_H
#define CASCADE_RANK_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"

#define CASCADE_RANK_FEATURES 19

/* Fill out[0..CASCADE_RANK_FEATURES) for a user/item pair at time now_s
 * (Unix seconds). Item statistics are smoothed so new items get
 * finite, sensible values. The feature list is in docs/data.md. */
void cascade_features_rank(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                           int64_t now_s, float *out);

/* Categories whose user×category features one cascade_rank_user keeps. */
#define CASCADE_RANK_USER_CATEGORIES 64

/* One user's side of the rank features, for scoring many items of one
 * request: the user features, and the user×category ones of each category
 * met so far (computed on first use; beyond CASCADE_RANK_USER_CATEGORIES
 * categories they are computed every time). Not thread-safe: one per
 * request. Borrows the user record, which must outlive it. */
struct cascade_rank_user {
    const cascade_v1_UserRecord *user;
    float user_part[2]; /* features 12, 13 */
    bool used[CASCADE_RANK_USER_CATEGORIES];
    uint32_t category[CASCADE_RANK_USER_CATEGORIES];
    float part[CASCADE_RANK_USER_CATEGORIES][7]; /* features 6, 7, 8, 15, 16, 17, 18 */
};

/* Prepare u for user (borrowed). */
void cascade_rank_user_prepare(const cascade_v1_UserRecord *user, struct cascade_rank_user *u);

/* cascade_features_rank(u->user, item, now_s, out), the same floats. */
void cascade_features_rank_for(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                               int64_t now_s, float *out);

/* The part of the features that depends on the item record alone (not the
 * user, not the time): the rank features 0-5, 10, 11 and the learned
 * rankers' log1p(clicks) (ltr_features.h), with the record fields they were
 * computed from. Computed once when a record enters a stage's item cache
 * (cascade_rank_item_derive) and copied out with it; the features use it only
 * when those fields still match the record they score (the online counters
 * change the statistics after the cache), else compute afresh, so the floats
 * are the same either way. */
struct cascade_rank_item {
    cascade_v1_ItemStats stats; /* the record's, as derived from */
    uint32_t media_type;
    float duration_s;
    bool ready;       /* false (zeroed): not derived, compute */
    float item[8];    /* features 0-5, 10, 11 */
    float log_clicks; /* log1p(stats.clicks) */
};

/* Fill *out from item (a zeroed record for an unknown item). */
void cascade_rank_item_prepare(const cascade_v1_ItemRecord *item, struct cascade_rank_item *out);

/* The stages' item caches keep one struct cascade_rank_item beside each
 * record (common/item_cache.h; fn = cascade_rank_item_prepare). */
struct cascade_item_derive;
extern const struct cascade_item_derive cascade_rank_item_derive;

/* Whether ri was prepared from item's current fields (stats, media type,
 * duration): NULL or not ready gives false. */
bool cascade_rank_item_matches(const struct cascade_rank_item *ri,
                               const cascade_v1_ItemRecord *item);

/* cascade_features_rank_for with the item part from ri when it matches item
 * (cascade_rank_item_matches; ri may be NULL), the same floats. */
void cascade_features_rank_from(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                                const struct cascade_rank_item *ri, int64_t now_s, float *out);

/* Human-readable name of feature i (for reports and the model file); "unknown"
 * when i >= CASCADE_RANK_FEATURES. */
const char *cascade_features_rank_name(size_t i);

#endif
