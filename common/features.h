/* Ranking features computed the same way offline (training in cascade-build)
 * and online (the Rank service): one dense float vector per (user, item).
 * Pure functions, thread-safe. */

/* This file's name clashes with glibc's <features.h>, and common/ is on every
 * target's -I path, so system headers that include <features.h> arrive here.
 * Forward them to the real one first, and keep the declarations below free of
 * includes so they are safe to read at that point (inside <stdint.h>, before
 * int64_t exists): the record types are forward-declared and the integer
 * types spelled with the compiler's builtin names, which are the same types
 * as int64_t / size_t. Renaming the header would make this unnecessary. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winclude-next-absolute-path"
#endif
#include_next <features.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#ifndef CASCADE_FEATURES_H
#define CASCADE_FEATURES_H

#define CASCADE_RANK_FEATURES 16

/* The nanopb records from cascade/v1/records.pb.h (include it to use them). */
typedef struct _cascade_v1_UserRecord cascade_v1_UserRecord;
typedef struct _cascade_v1_ItemRecord cascade_v1_ItemRecord;

/* Fill out[0..CASCADE_RANK_FEATURES) for a user/item pair at time now_s
 * (Unix seconds; an int64_t). Item statistics are smoothed so new items get
 * finite, sensible values. The feature list is in docs/data.md. */
void cascade_features_rank(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                           __INT64_TYPE__ now_s, float *out);

/* Human-readable name of feature i (for reports and the model file); "unknown"
 * when i >= CASCADE_RANK_FEATURES. i is a size_t. */
const char *cascade_features_rank_name(__SIZE_TYPE__ i);

#endif
