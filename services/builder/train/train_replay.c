/* The trainers' point-in-time replay state (train_replay.h). */
#include "train_replay.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "timescale.h"
#include "train_rank.h"

#define DAY_S 86400.0

int cascade_train_replay_init(struct cascade_train_replay *rp, const cascade_dataset *ds,
                              const struct cascade_train_rank_opts *o)
{
    memset(rp, 0, sizeof *rp);
    rp->ds = ds;
    rp->half_life_s =
        cascade_timescale_days(o->affinity_half_life_days, CASCADE_TIMESCALE_AFFINITY_SHARE,
                               cascade_timescale_span_days(ds)) *
        DAY_S;
    rp->w = &o->weights;
    rp->item_stats = calloc(ds->n_items + 1, sizeof *rp->item_stats);
    rp->user_stats = calloc(ds->n_users + 1, sizeof *rp->user_stats);
    rp->affinity = calloc(ds->n_users + 1, sizeof *rp->affinity);
    return rp->item_stats && rp->user_stats && rp->affinity ? 0 : CASCADE_ENOMEM;
}

int cascade_train_replay_apply(struct cascade_train_replay *rp, const struct cascade_ds_event *e)
{
    cascade_item_stats_add(&rp->item_stats[e->item], e);
    cascade_user_stats_add(&rp->user_stats[e->user], e);
    return cascade_affinity_observe(&rp->affinity[e->user], rp->ds, e, rp->w, rp->half_life_s);
}

void cascade_train_replay_free(struct cascade_train_replay *rp)
{
    if (rp->affinity)
        for (size_t u = 0; u < rp->ds->n_users; u++)
            cascade_affinity_free(&rp->affinity[u]);
    free(rp->affinity);
    free(rp->item_stats);
    free(rp->user_stats);
}
