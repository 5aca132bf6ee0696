/* What users are interested in, derived from their behaviour: per-user item
 * interest lists (one entry per item: the summed weights of the distinct
 * behaviours, newest first) for last-n lists, consumed sets and ItemCF; and
 * time-decayed per-category affinities for user records and ranking features. */
#ifndef CASCADE_BUILDER_INTERESTS_H
#define CASCADE_BUILDER_INTERESTS_H

#include <stddef.h>
#include <stdint.h>

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

/* Account event e (time order per user) in its user's affinity a: its
 * behaviour weight w->w[e->type] when positive, and impressions and clicks
 * of the item's category. Other events leave a unchanged. Returns 0 or
 * CASCADE_ENOMEM. */
int cascade_affinity_observe(struct cascade_affinity *a, const cascade_dataset *ds,
                             const struct cascade_ds_event *e,
                             const struct cascade_behaviour_weights *w, double half_life_s);
/* Write the strongest categories (at most the record's 16: by weight, then
 * by impressions), decayed to now, into rec->affinities. */
void cascade_affinity_to_record(const struct cascade_affinity *a, int64_t now, double half_life_s,
                                cascade_v1_UserRecord *rec);
void cascade_affinity_free(struct cascade_affinity *a);

/* 2^(−age/half_life); 1 when half_life <= 0 (no decay) or age <= 0. */
double cascade_decay(int64_t age_s, double half_life_s);

#endif
