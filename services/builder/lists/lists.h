/* cascade-build lists: the non-personalised item lists, each published as a
 * generation of its own family (common/store.h):
 *   hot  — {ns}:hot@{gen}: time-decayed interaction counts, top N; and
 *          {ns}:hot@{gen}:demo:{age_bucket}:{gender}: the same per demographic cell;
 *   new  — {ns}:new@{gen}: items created within a window before as_of, by
 *          created_at; {ns}:new@{gen}:impressions: the same items -> impressions;
 *   geo  — {ns}:geo@{gen}:{cell}: items per geohash cell, newest first, capped;
 *   city — {ns}:city@{gen}:{city}: items per city, newest first, capped.
 * Formulas and defaults are documented in docs/data.md ("Lists"). */
#ifndef CASCADE_BUILDER_LISTS_H
#define CASCADE_BUILDER_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "redis.h"

/* Families, for cascade_lists_opts.families. */
#define CASCADE_LISTS_HOT 1u
#define CASCADE_LISTS_NEW 2u
#define CASCADE_LISTS_GEO 4u
#define CASCADE_LISTS_CITY 8u
#define CASCADE_LISTS_ALL 15u

/* Demographic cells of the demographic hot lists: 7 age buckets x 4 genders. */
#define CASCADE_AGE_BUCKETS 7
#define CASCADE_GENDERS 4

struct cascade_lists_opts {
    const char *ns;    /* key namespace, default "cascade" */
    int64_t as_of;     /* "now" for decays and windows, Unix s; 0 = last event time */
    unsigned families; /* CASCADE_LISTS_* bits, default all */
    struct cascade_behaviour_weights weights;
    size_t hot_size;           /* build.hot.size: items in the hot list, default 1000 */
    double hot_half_life_days; /* build.hot.half_life_days (0 = no decay); default derived
                                * from the log's span (CASCADE_TIMESCALE_AUTO, timescale.h) */
    size_t hot_demo_size; /* build.hot.demo_size: per demographic cell, default 200 (0 = none) */
    size_t hot_category_size; /* build.hot.category_size: per category, default 200 (0 = none) */
    double new_window_days;   /* build.new.window_days: default derived from the span */
    int geo_precision;        /* build.geo.precision: geohash characters, default 5 */
    size_t geo_cap;           /* build.geo.cap: items per cell, default 500 */
    size_t city_cap;          /* build.city.cap: items per city, default 1000 */
    size_t pipeline;          /* Redis commands per round trip, default 2000 */
    bool quiet;
};

struct cascade_lists_summary {
    int64_t as_of;
    double span_days;                            /* the log's span (timescale.h) */
    double hot_half_life_days, new_window_days;  /* the ones used (set or derived) */
    int64_t gen_hot, gen_new, gen_geo, gen_city; /* published generations (0 = not built) */
    size_t hot, demo_lists, demo_items;
    size_t category_lists, category_items;
    size_t new_items;
    size_t geo_cells, geo_items, geo_skipped; /* skipped: no geohash or a shorter one */
    size_t cities, city_items;
    size_t commands;
    double seconds;
};

void cascade_lists_defaults(struct cascade_lists_opts *o);

/* Override defaults from the "build" section of a config (build.hot.size,
 * build.hot.half_life_days, build.hot.demo_size, build.new.window_days,
 * build.geo.precision, build.geo.cap, build.city.cap). Returns 0 or
 * CASCADE_EINVAL with "file:line:col: path: expected ..." in err. */
int cascade_lists_config(const cascade_config *c, struct cascade_lists_opts *o, char *err,
                         size_t errlen);

/* Build and publish the selected families from ds through r. Returns 0 or a
 * negative code with err. A failed family leaves the previous generation current. */
int cascade_lists_run(const cascade_dataset *ds, cascade_redis *r,
                      const struct cascade_lists_opts *o, struct cascade_lists_summary *sum,
                      char *err, size_t errlen);

/* Hot scores: Σ weight(type)·2^(−(as_of − ts)/half_life) over events up to
 * as_of, one per item (scores[n_items], caller-allocated). */
void cascade_hot_scores(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                        int64_t as_of, double half_life_s, double *scores);

/* Age bucket of the demographic lists: 0 unknown (age 0), 1 <18, 2 18-24,
 * 3 25-34, 4 35-44, 5 45-54, 6 55+. */
int cascade_age_bucket(uint32_t age);

#endif
