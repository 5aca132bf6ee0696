/* cascade-datagen: a seeded synthetic world (users with latent category
 * interests, cities and circles; items with authors, categories, tags,
 * creation times, media types and power-law popularity; an impression log
 * with click/like/collect/share/follow/play/dislike labels drawn from known
 * probabilities). The model is described in docs/data.md. The same options
 * and seed always give the same files. */
#ifndef CASCADE_BUILDER_DATAGEN_H
#define CASCADE_BUILDER_DATAGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "flags.h"
#include "geohash.h" /* cascade_geohash_encode: the generator's geohashes */

struct cascade_datagen_opts {
    size_t users;        /* default 10000 */
    size_t items;        /* default 2000 */
    size_t events;       /* impressions to draw, default 300000 */
    uint32_t categories; /* default 20 */
    uint32_t authors;    /* default 200 */
    uint32_t cities;     /* default 10 */
    uint32_t days;       /* length of the log, default 30 */
    uint64_t seed;       /* default 1 */
    int64_t end_ts;      /* end of the log (Unix s); 0 = today 00:00 UTC */
    bool truth;          /* also write truth.tsv (default true) */
    bool truth_terms;    /* truth.tsv also gets the click logit's terms (default false) */
    /* Also write the click model's parameters (truth_users.tsv, truth_items.tsv,
     * docs/data.md), so that a simulator can draw clicks for any (user, item,
     * time), e.g. tests/integration/loop_world.py (default false). */
    bool truth_model;
    bool quiet; /* no progress lines */
};

struct cascade_datagen_summary {
    size_t users, items, events, circles;
    size_t by_type[CASCADE_EV_MAX + 1]; /* event counts per type */
    double ctr;                         /* clicks / impressions */
    double mean_p_click;                /* mean true click probability */
    int64_t start_ts, end_ts;
    double seconds;
};

void cascade_datagen_defaults(struct cascade_datagen_opts *o);

/* Generate the world in memory. *out receives the dataset (events sorted by
 * time); when p_click is non-NULL it receives a malloc'd array parallel to
 * the events holding the true click probability of each impression (and -1
 * for other events). Returns 0 or a negative code with err. */
int cascade_datagen_generate(const struct cascade_datagen_opts *o, cascade_dataset **out,
                             float **p_click, struct cascade_datagen_summary *sum, char *err,
                             size_t errlen);

/* The click logit is CASCADE_DATAGEN_INTERCEPT plus CASCADE_DATAGEN_TERMS
 * terms: 0.65·ln(K·θ_u,c + 0.05), item quality, user bias, −0.02·age in
 * days, 0.3 when user and item share a city, 0.9 for a circle favourite. */
#define CASCADE_DATAGEN_INTERCEPT (-3.4)
#define CASCADE_DATAGEN_TERMS 6

/* cascade_datagen_generate, and when terms is non-NULL a malloc'd array of
 * CASCADE_DATAGEN_TERMS floats per event (zeros for non-impressions): the
 * terms of each impression's click logit. */
int cascade_datagen_generate_terms(const struct cascade_datagen_opts *o, cascade_dataset **out,
                                   float **p_click, float **terms,
                                   struct cascade_datagen_summary *sum, char *err, size_t errlen);

/* Generate and write users.tsv, items.tsv, events.tsv (and truth.tsv) into
 * out_dir, creating it if needed. */
int cascade_datagen_run(const struct cascade_datagen_opts *o, const char *out_dir,
                        struct cascade_datagen_summary *sum, char *err, size_t errlen);

/* The world's ground truth (users, items and the true click model) without
 * drawing a log, for the closed-loop simulator (services/sim). The same
 * options as a cascade_datagen_run give the same users, items and click
 * probabilities; o->events, truth and quiet do not matter. Returns NULL with
 * a message in err. Read-only after creation: the functions below may be
 * called from several threads. Free with cascade_datagen_truth_destroy
 * (NULL-safe). */
typedef struct cascade_datagen_truth cascade_datagen_truth;
cascade_datagen_truth *cascade_datagen_truth_create(const struct cascade_datagen_opts *o, char *err,
                                                    size_t errlen);
void cascade_datagen_truth_destroy(cascade_datagen_truth *t);
/* The users and items (borrowed; find ids with cascade_dataset_find_user/_item). */
const cascade_dataset *cascade_datagen_truth_dataset(const cascade_datagen_truth *t);
/* True click probability of the item (index) shown to the user (index) at ts,
 * the same formula as every impression in truth.tsv. */
double cascade_datagen_truth_p_click(const cascade_datagen_truth *t, size_t user, size_t item,
                                     int64_t ts);

/* The flags that describe a world (--users --items --events --categories
 * --authors --cities --days --seed --end-ts), for cascade-datagen and the
 * tools that regenerate its truth from the same flags (cascade-sim). Writes
 * CASCADE_DATAGEN_WORLD_FLAGS entries to out pointing into v and o (defaults:
 * o's values) and returns that count; after cascade_flags_parse, call
 * cascade_datagen_world_flags_apply to copy v into o. */
#define CASCADE_DATAGEN_WORLD_FLAGS 9
struct cascade_datagen_world_flags {
    uint64_t users, items, events, categories, authors, cities, days;
};
size_t cascade_datagen_world_flags(struct cascade_datagen_opts *o,
                                   struct cascade_datagen_world_flags *v, struct cascade_flag *out);
void cascade_datagen_world_flags_apply(const struct cascade_datagen_world_flags *v,
                                       struct cascade_datagen_opts *o);

#endif
