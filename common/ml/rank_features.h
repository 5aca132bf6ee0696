/* Ranking features computed the same way offline (training in cascade-build)
 * and online (the Rank service): one dense float vector per (user, item).
 * Pure functions, thread-safe. */

#ifndef CASCADE_RANK_FEATURES_H
#define CASCADE_RANK_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"

#define CASCADE_RANK_FEATURES 19

/* Fill out[0..CASCADE_RANK_FEATURES) for a user/item pair at time now_s
 * (Unix seconds). Item statistics are smoothed so new items get
 * finite, sensible values. The feature list is in docs/data.md. */
void cascade_features_rank(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                           int64_t now_s, float *out);

/* Human-readable name of feature i (for reports and the model file); "unknown"
 * when i >= CASCADE_RANK_FEATURES. */
const char *cascade_features_rank_name(size_t i);

#endif
