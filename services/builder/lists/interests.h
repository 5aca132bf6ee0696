/* What users are interested in, derived from their behaviour: per-user item
 * interest lists (one entry per item: the summed weights of the distinct
 * behaviours, newest first) for last-n lists, consumed sets and ItemCF; and
 * time-decayed per-category affinities for user records and ranking features. */
#ifndef CASCADE_BUILDER_INTERESTS_H
#define CASCADE_BUILDER_INTERESTS_H

#include <stddef.h>
#include <stdint.h>

#include "affinity.h"
#include "cascade/v1/records.pb.h"
#include "dataset.h"

struct cascade_ui_entry {
    uint32_t item;   /* index into ds->items */
    uint32_t type;   /* strongest behaviour seen (highest weight) */
    float weight;    /* sum of the weights of the distinct behaviour types seen */
    int64_t last_ts; /* latest interest event on the item */
};

/* CSR: the entries of user u are e[off[u] .. off[u+1]), newest first. */
struct cascade_ui {
    size_t n_users;
    size_t *off;
    struct cascade_ui_entry *e;
};

/* Build the user->items interest lists from events with a positive weight.
 * Each behaviour type counts once per (user, item), so ten clicks weigh as
 * one. cap > 0 keeps only each user's cap most recent items. */
int cascade_ui_build(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                     size_t cap, struct cascade_ui *out);
void cascade_ui_free(struct cascade_ui *ui);

/* Account event e (time order per user) in its user's affinity a
 * (common/affinity.h: cascade_affinity_add with the category of e's item). */
int cascade_affinity_observe(struct cascade_affinity *a, const cascade_dataset *ds,
                             const struct cascade_ds_event *e,
                             const struct cascade_behaviour_weights *w, double half_life_s);

#endif
