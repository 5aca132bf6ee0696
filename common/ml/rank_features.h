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

/* Human-readable name of feature i (for reports and the model file); "unknown"
 * when i >= CASCADE_RANK_FEATURES. */
const char *cascade_features_rank_name(size_t i);

#endif
