/* A user's state as the trainers' replay keeps it (the behaviour counts and
 * the time-decayed per-category affinities), in one place for the builder
 * (cascade-build load, train-rank, train-prerank: services/builder/lists/
 * interests.h) and the serving stages that continue it with the events since
 * the nightly build (common/user_online.h). One code path, so a stage's user
 * columns equal the replay's bit for bit (docs/closed-loop.md, "User-side
 * online features"). Plain data: a state is owned by one thread at a time. */
#ifndef CASCADE_AFFINITY_H
#define CASCADE_AFFINITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"
#include "events.h"

/* Interest weight of each behaviour (SPEC §5 ItemCF) for one build: indexed
 * by event type (common/events.h); 0 means "not an interest signal". */
struct cascade_behaviour_weights {
    float w[CASCADE_EV_MAX + 1];
};

/* A user's behaviour counts as the records hold them. */
struct cascade_user_stats {
    uint32_t impressions, clicks, interactions; /* interactions: non-impression events */
};

/* Count one event of type `type` into a user's counters. */
void cascade_user_stats_observe(struct cascade_user_stats *st, uint32_t type);

/* A user's category affinities: behaviour weight decayed with a half-life,
 * weight(t) = Σ w_e · 2^(−(t − ts_e)/half_life), and the impressions and
 * clicks the user had in the category, decayed the same way. */
struct cascade_cat_weight {
    uint32_t category;
    double weight; /* values as of ts */
    double impressions, clicks;
    int64_t ts;
};
struct cascade_affinity {
    struct cascade_cat_weight *v;
    uint32_t n, cap;
};

/* Account an event (type, at ts, on an item of `category`; time order per
 * user) in the affinity a: its behaviour weight w->w[type] when positive, and
 * impressions and clicks of the category. Other events leave a unchanged.
 * Returns 0 or CASCADE_ENOMEM (a unchanged). */
int cascade_affinity_add(struct cascade_affinity *a, uint32_t category, uint32_t type, int64_t ts,
                         const struct cascade_behaviour_weights *w, double half_life_s);

/* Write the strongest categories (at most the record's 16: by weight, then
 * by impressions), decayed to now, into rec->affinities. */
void cascade_affinity_to_record(const struct cascade_affinity *a, int64_t now, double half_life_s,
                                cascade_v1_UserRecord *rec);

/* Copy a's whole state into base->affinity. Returns false (base->affinity
 * left empty) when a has more categories than the record holds. */
bool cascade_affinity_to_base(const struct cascade_affinity *a, cascade_v1_UserOnlineBase *base);

/* Replace a's state with base->affinity's (a is reset first). 0 or
 * CASCADE_ENOMEM. */
int cascade_affinity_from_base(struct cascade_affinity *a, const cascade_v1_UserOnlineBase *base);

/* NULL-safe; leaves a empty. */
void cascade_affinity_free(struct cascade_affinity *a);

/* 2^(−age/half_life); 1 when half_life <= 0 (no decay) or age <= 0. */
double cascade_decay(int64_t age_s, double half_life_s);

#endif
