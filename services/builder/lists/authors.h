/* cascade-build authors: the author indexes behind the author recall
 * channels, published together as one generation of the "authors" family:
 *   {ns}:authors@{gen}:items:{aid}      ZSET item -> created_at, newest first, capped;
 *   {ns}:authors@{gen}:interacted:{uid} NeighbourList of author ids, by the user's
 *                                       time-decayed interest in each author;
 *   {ns}:authors@{gen}:similar:{aid}    NeighbourList of author ids: ItemCF at
 *                                       author level (cosine of users' author-interest vectors).
 * (user -> followed authors is a live key written by load; see load.h.)
 * Formulas and defaults: docs/data.md ("Authors"). */
#ifndef CASCADE_BUILDER_AUTHORS_H
#define CASCADE_BUILDER_AUTHORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "redis.h"

struct cascade_authors_opts {
    const char *ns; /* key namespace, default "cascade" */
    int64_t as_of;  /* "now" for the interest decay, Unix s; 0 = last event time */
    struct cascade_behaviour_weights weights;
    size_t items_cap;            /* build.authors.items_cap: items per author, default 200 */
    size_t interacted_top_k;     /* build.authors.interacted_top_k: default 50 (<= 200) */
    double half_life_days;       /* build.authors.half_life_days: interest decay; default derived
                                  * from the log's span (CASCADE_TIMESCALE_AUTO, timescale.h) */
    size_t similar_top_k;        /* build.authors.similar_top_k: default 50 (<= 200) */
    size_t max_authors_per_user; /* build.authors.max_authors_per_user: strongest authors of a
                                    user used for similarity, default 100 (0 = all) */
    size_t pipeline;             /* Redis commands per round trip, default 2000 */
    bool quiet;
};

struct cascade_authors_summary {
    int64_t as_of;
    int64_t gen; /* published generation */
    size_t authors, item_lists, items;
    size_t interacted_lists, similar_lists;
    size_t pairs;          /* co-occurring author pairs scored */
    double half_life_days; /* the one used (set or derived, timescale.h) */
    size_t commands;
    double seconds;
};

void cascade_authors_defaults(struct cascade_authors_opts *o);

/* Override defaults from build.authors.* of a config. Returns 0 or
 * CASCADE_EINVAL with "file:line:col: path: expected ..." in err. */
int cascade_authors_config(const cascade_config *c, struct cascade_authors_opts *o, char *err,
                           size_t errlen);

/* Build and publish the authors family from ds through r. Returns 0 or a
 * negative code with err; on failure the previous generation stays current. */
int cascade_authors_run(const cascade_dataset *ds, cascade_redis *r,
                        const struct cascade_authors_opts *o, struct cascade_authors_summary *sum,
                        char *err, size_t errlen);

#endif
