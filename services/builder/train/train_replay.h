/* The point-in-time replay the rankers' trainers share (train-rank,
 * train-mmoe through its examples, train-prerank): the log is replayed in
 * time order while each item's statistics, each user's counts and decayed
 * category affinities are updated event by event, so a row is computed from
 * the state before its event (docs/data.md, "No label leakage"). */
#ifndef CASCADE_BUILDER_TRAIN_REPLAY_H
#define CASCADE_BUILDER_TRAIN_REPLAY_H

#include "affinity.h"
#include "dataset.h"
#include "events.h"
#include "records.h"

struct cascade_train_rank_opts;

struct cascade_train_replay {
    const cascade_dataset *ds;
    double half_life_s; /* the affinities' half-life (opts' days, or derived from the log) */
    const struct cascade_behaviour_weights *w;
    cascade_v1_ItemStats *item_stats;      /* per item */
    struct cascade_user_stats *user_stats; /* per user */
    struct cascade_affinity *affinity;     /* per user */
};

/* Empty state for ds with o's half-life and weights (o must outlive rp).
 * 0 or CASCADE_ENOMEM (rp is then safe to free). */
int cascade_train_replay_init(struct cascade_train_replay *rp, const cascade_dataset *ds,
                              const struct cascade_train_rank_opts *o);

/* Apply event e to the state. 0 or a negative code (affinity growth). */
int cascade_train_replay_apply(struct cascade_train_replay *rp, const struct cascade_ds_event *e);

/* Free the state (NULL-safe members; init must have run). */
void cascade_train_replay_free(struct cascade_train_replay *rp);

#endif
