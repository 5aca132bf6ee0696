/* PutItems: online item ingestion (docs/closed-loop.md, "Item ingestion").
 * The request's bounds and their messages, and the one Lua script that
 * writes a batch of items into Redis: records, the current (and building)
 * generation of the new, geo, city and author lists, and {ns}:items:online
 * (item -> revision), which the two_tower recall channel polls to add item
 * vectors and the Recall list cache watches. Pure checks are thread-safe;
 * the writer borrows one Redis connection per call. */
#ifndef CASCADE_ORCH_PUT_ITEMS_H
#define CASCADE_ORCH_PUT_ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/recommender.pb-c.h"
#include "geohash.h"
#include "redis.h"
#include "store.h"

/* Most items in one PutItems call (more: RESOURCE_EXHAUSTED). */
#define CASCADE_PUT_ITEMS_MAX 100
/* Most tags per item (ItemRecord.tags holds 8). */
#define CASCADE_PUT_ITEMS_TAGS_MAX 8
/* Largest duration_s, and how far ahead of the server clock created_at_s may be. */
#define CASCADE_PUT_ITEMS_DURATION_MAX 86400.0
#define CASCADE_PUT_ITEMS_FUTURE_S 86400

/* Check a PutItems request against the bounds above, now_s being the server
 * clock (Unix s). Returns 0, CASCADE_ETOOBIG ("items: 101 items, at most
 * 100") or CASCADE_EINVAL naming the field ("items[2].geohash \"ab!\" is not
 * a geohash", "items[1].item_id 7 repeats items[0]"), message in err. */
int cascade_put_items_check(const Cascade__V1__PutItemsRequest *req, int64_t now_s, char *err,
                            size_t errlen);

/* One item as written: the record (stats kept from the previous record) and
 * the list memberships of the previous record, so a changed item leaves the
 * lists it no longer belongs to. */
struct cascade_put_item {
    cascade_v1_ItemRecord rec;
    bool had_record;
    uint64_t old_author;
    uint32_t old_city;
    char old_geohash[CASCADE_GEOHASH_MAX + 1];
};

/* The list caps kept on every online add (the build's caps). */
struct cascade_put_items_caps {
    uint32_t geo, city, author;
};

/* Write items[0..n) in one atomic script (EVALSHA through s): SET each record,
 * ZADD it to {ns}:new@{g} (when it is not older than the list's oldest entry,
 * i.e. within the build's window) with its live served impressions in
 * {ns}:new@{g}:impressions, to the geo cell (at the geo_precision of
 * {ns}:meta), city and author lists trimmed to caps, for g the current
 * generation of each family and the one being built, if any; ZREM it from the
 * lists of its previous cell, city and author; give it a new revision
 * (INCRBY {ns}:items:online:rev) in ZSET {ns}:items:online. *revision = the
 * last revision given. Returns 0 or a negative code with the message in
 * cascade_redis_error(r). */
int cascade_put_items_write(cascade_redis *r, const char *ns, const struct cascade_put_item *items,
                            size_t n, const struct cascade_put_items_caps *caps,
                            struct cascade_store_script *s, uint64_t *revision);

#endif
