/* The Redis data model: every key Cascade reads or writes is built here (and
 * documented in docs/redis-keys.md), and the nanopb records stored under them
 * are encoded and decoded here. Functions take a cascade_redis (one per
 * thread) and a key namespace `ns` ("cascade" by default). */
#ifndef CASCADE_STORE_H
#define CASCADE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/records.pb.h"
#include "redis.h"

#define CASCADE_KEY_MAX 256

/* Key builders: write the key into buf (CASCADE_KEY_MAX bytes) and return buf. */
char *cascade_key_item(char *buf, const char *ns, uint64_t item_id);          /* {ns}:item:{id} */
char *cascade_key_user(char *buf, const char *ns, const char *user_id);       /* {ns}:user:{uid} */
char *cascade_key_user_lastn(char *buf, const char *ns, const char *user_id); /* {ns}:user:{uid}:lastn */
char *cascade_key_user_consumed(char *buf, const char *ns, const char *user_id); /* {ns}:user:{uid}:consumed */
char *cascade_key_hot(char *buf, const char *ns);                             /* {ns}:hot */
char *cascade_key_i2i(char *buf, const char *ns, const char *algo, uint64_t item_id); /* {ns}:i2i:{algo}:{id} */
char *cascade_key_author_items(char *buf, const char *ns, uint64_t author_id); /* {ns}:author:{id}:items */
char *cascade_key_city_items(char *buf, const char *ns, uint32_t city);       /* {ns}:city:{c}:items */
char *cascade_key_exposure(char *buf, const char *ns, const char *user_id, int64_t window); /* {ns}:expo:{uid}:{window} */
char *cascade_key_events(char *buf, const char *ns);                          /* {ns}:events */
char *cascade_key_meta(char *buf, const char *ns);                            /* {ns}:meta */

/* nanopb codecs. encode returns 0 and *len, or CASCADE_ETOOBIG; decode returns
 * 0 or CASCADE_EFORMAT. */
int cascade_record_encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap,
                          size_t *len);
int cascade_record_decode(const pb_msgdesc_t *fields, void *msg, const uint8_t *buf, size_t len);

/* MGET item records for ids[0..n). found[i] is false for ids with no record
 * (out[i] is then zeroed). Returns 0 or a negative code (redis error text in
 * cascade_redis_error). */
int cascade_store_get_items(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                            cascade_v1_ItemRecord *out, bool *found);

/* GET one user record; *found false (and *out zeroed) when absent. */
int cascade_store_get_user(cascade_redis *r, const char *ns, const char *user_id,
                           cascade_v1_UserRecord *out, bool *found);

/* The user's newest interactions, newest first, at most max. */
int cascade_store_get_lastn(cascade_redis *r, const char *ns, const char *user_id, size_t max,
                            cascade_v1_Interaction *out, size_t *count);

/* Neighbour lists for n items (pipelined); found[i] false when absent. */
int cascade_store_get_neighbours(cascade_redis *r, const char *ns, const char *algo,
                                 const uint64_t *ids, size_t n, cascade_v1_NeighbourList *out,
                                 bool *found);

/* ZREVRANGE key 0 max-1 WITHSCORES on a sorted set of item ids. scores may be NULL. */
int cascade_store_top_items(cascade_redis *r, const char *key, size_t max, uint64_t *ids,
                            double *scores, size_t *count);

/* Which of ids[0..n) are in the user's consumed set (SMISMEMBER). */
int cascade_store_consumed(cascade_redis *r, const char *ns, const char *user_id,
                           const uint64_t *ids, size_t n, bool *consumed);

/* Writers (SET key value) — used by cascade-build and the orchestrator's Feedback. */
int cascade_store_put_item(cascade_redis *r, const char *ns, const cascade_v1_ItemRecord *rec);
int cascade_store_put_user(cascade_redis *r, const char *ns, const cascade_v1_UserRecord *rec);

/* Append one interaction to the user's last-n list (LPUSH + LTRIM to keep_max)
 * and add the item to the consumed set, in one MULTI/EXEC. */
int cascade_store_push_interaction(cascade_redis *r, const char *ns, const char *user_id,
                                   const cascade_v1_Interaction *it, size_t keep_max);

#endif
