/* Publishing CF neighbour lists as a new generation of their family
 * (family.h, common/store.h): every non-empty list is written under
 * {ns}:{family}@{gen}:{id} (pipelined SETs; rows without neighbours get no
 * key), then the generation is made current with one SET and generation
 * gen-2 is deleted. Serving therefore never sees a half-written set of lists. */
#ifndef CASCADE_BUILDER_CF_PUBLISH_H
#define CASCADE_BUILDER_CF_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_lists.h"
#include "dataset.h"
#include "redis.h"

struct cascade_cf_publish_opts {
    const char *ns;     /* key namespace (borrowed) */
    const char *family; /* "itemcf", "swing", "usercf" (borrowed) */
    size_t pipeline;    /* commands per round trip; 0 = default */
    bool quiet;         /* no progress lines */
};

struct cascade_cf_publish_summary {
    int64_t gen;    /* the generation now current */
    size_t written; /* lists stored */
    size_t empty;   /* rows without neighbours (no key) */
    double seconds; /* writing and publishing */
};

/* Item -> item lists (rows and neighbours are item indices of ds) as
 * NeighbourList at {ns}:{family}@{gen}:{item_id}. Returns 0 or a negative
 * code with err naming the Redis failure. */
int cascade_cf_publish_items(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                             cascade_redis *r, const struct cascade_cf_publish_opts *o,
                             struct cascade_cf_publish_summary *s, char *err, size_t errlen);

/* User -> user lists (user indices of ds) as UserNeighbourList at
 * {ns}:{family}@{gen}:{user_id}. */
int cascade_cf_publish_users(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                             cascade_redis *r, const struct cascade_cf_publish_opts *o,
                             struct cascade_cf_publish_summary *s, char *err, size_t errlen);

#endif
