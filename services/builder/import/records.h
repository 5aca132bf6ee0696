/* Building the Redis records (records.proto) from the data set: item
 * statistics counted from events, item records, and user records with
 * behaviour statistics and decayed category affinities. Shared by the load
 * job (whole log) and ranking training (point-in-time state), so both see
 * features computed the same way. */
#ifndef CASCADE_BUILDER_RECORDS_H
#define CASCADE_BUILDER_RECORDS_H

#include <stdint.h>

#include "cascade/v1/records.pb.h"
#include "dataset.h"
#include "interests.h"

/* Behaviour counters of one user. */
/* struct cascade_user_stats: common/affinity.h. */
/* Count one event into an item's statistics / a user's counters. */
void cascade_item_stats_add(cascade_v1_ItemStats *st, const struct cascade_ds_event *e);
void cascade_user_stats_add(struct cascade_user_stats *st, const struct cascade_ds_event *e);

/* Fill rec from a data set item and its statistics (copied). */
void cascade_item_record_fill(const struct cascade_ds_item *it, const cascade_v1_ItemStats *st,
                              cascade_v1_ItemRecord *rec);

/* Fill rec from a data set user, counters and affinities (decayed to now). */
void cascade_user_record_fill(const struct cascade_ds_user *u, const struct cascade_user_stats *st,
                              const struct cascade_affinity *aff, int64_t now, double half_life_s,
                              cascade_v1_UserRecord *rec);

#endif
