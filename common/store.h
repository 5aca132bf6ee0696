/* The Redis data model: every key Cascade reads or writes is built here (and
 * documented in docs/redis-keys.md), and the nanopb records stored under them
 * are encoded and decoded here. Functions take a cascade_redis (one per
 * thread) and a key namespace `ns` ("cascade" by default). */
#ifndef CASCADE_STORE_H
#define CASCADE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/records.pb.h"
#include "redis.h"

#define CASCADE_KEY_MAX 256

/* Key builders: write the key into buf (CASCADE_KEY_MAX bytes) and return buf. */
char *cascade_key_item(char *buf, const char *ns, uint64_t item_id);    /* {ns}:item:{id} */
char *cascade_key_user(char *buf, const char *ns, const char *user_id); /* {ns}:user:{uid} */
char *cascade_key_user_online_base(char *buf, const char *ns,
                                   const char *user_id); /* {ns}:user:{uid}:online */
char *cascade_key_user_lastn(char *buf, const char *ns,
                             const char *user_id); /* {ns}:user:{uid}:lastn */
char *cascade_key_user_consumed(char *buf, const char *ns,
                                const char *user_id); /* {ns}:user:{uid}:consumed */
char *cascade_key_exposure(char *buf, const char *ns, const char *user_id,
                           int64_t window); /* {ns}:expo:{uid}:{window} */
char *
cascade_key_user_follows(char *buf, const char *ns,
                         const char *user_id); /* {ns}:user:{uid}:follows (SET of author ids) */
char *cascade_key_user_cache(
    char *buf, const char *ns,
    const char *user_id); /* {ns}:user:{uid}:cache (LIST of item ids, newest first) */
char *cascade_key_user_blocked_items(char *buf, const char *ns,
                                     const char *user_id); /* {ns}:user:{uid}:blocked_items (SET) */
char *cascade_key_user_hardneg(char *buf, const char *ns,
                               const char *user_id); /* {ns}:user:{uid}:hardneg (LIST of item ids
                                                        the ranker cut, newest first) */
char *
cascade_key_user_blocked_authors(char *buf, const char *ns,
                                 const char *user_id); /* {ns}:user:{uid}:blocked_authors (SET) */
char *cascade_key_user_feedback_seen(
    char *buf, const char *ns,
    const char *user_id); /* {ns}:user:{uid}:fb_seen (ZSET event id -> record time ms) */
char *cascade_key_events(char *buf, const char *ns); /* {ns}:events */
char *cascade_key_serves(char *buf, const char *ns); /* {ns}:serves (orchestrator serve log) */
/* Online counters of the stream consumer (docs/closed-loop.md). */
char *cascade_key_item_counters(char *buf, const char *ns,
                                uint64_t item_id); /* {ns}:ictr:{id} (HASH) */
/* The {ns}:ictr:{id} fields that count what ItemStats counts, in the order
 * impression, click, like, collect, share, play, play_s (docs/closed-loop.md). */
#define CASCADE_ITEM_COUNTER_FIELDS 7
/* Field i (< CASCADE_ITEM_COUNTER_FIELDS) of that list; static string. */
const char *cascade_store_item_counter_field(size_t i);
/* An HMGET reply of those fields, in that order, as ItemStats (a nil or
 * non-numeric field is 0). CASCADE_EFORMAT when rep is not such an array
 * (out zeroed). Pure; thread-safe. */
int cascade_store_item_counters_parse(const redisReply *rep, cascade_v1_ItemStats *out);
/* stats += now − base, field by field; a field that went down (counters
 * reset after the base was taken) adds 0. Pure; thread-safe. */
void cascade_store_item_counters_add_delta(cascade_v1_ItemStats *stats,
                                           const cascade_v1_ItemStats *now,
                                           const cascade_v1_ItemStats *base);
/* {ns}:ictr:totals (HASH): field = decimal item id, value = the item's
 * counter fields above, in that order, space-separated, as the consumer's
 * script copies them from {ns}:ictr:{id} (docs/closed-loop.md). */
char *cascade_key_item_totals(char *buf, const char *ns);
/* A {ns}:ictr:totals value (len bytes at s) as ItemStats, with the same
 * conversions as cascade_store_item_counters_parse gives the per-item hash.
 * CASCADE_EFORMAT when it is not CASCADE_ITEM_COUNTER_FIELDS numbers (out
 * zeroed). Pure; thread-safe. */
int cascade_store_item_totals_parse(const char *s, size_t len, cascade_v1_ItemStats *out);
/* Add to items[i].stats, for every found[i] record with an online_base, the
 * online counters' change since that base (max(0, counter − base) per
 * field; an item without totals adds 0): one HMGET of {ns}:ictr:totals for
 * all of them. Nothing is added unless the whole reply is read and parsed.
 * Returns 0, or a negative code with the reason in cascade_redis_error(r)
 * (CASCADE_EFORMAT: a malformed value). Scratch from arena; thread-safe as
 * r (one connection per thread). */
int cascade_store_online_deltas_add(cascade_redis *r, const char *ns, cascade_v1_ItemRecord *items,
                                    const bool *found, size_t n, cascade_arena *arena);
/* Internal, for one pipeline of several reads (common/stage_reads.c):
 * queue HMGET {ns}:ictr:totals for ids[0..n) (scratch from arena); then
 * parse its reply into now[0..n_asked), the totals of the k-th id asked in
 * now[k] (zero for an id without totals). 0, or CASCADE_EFORMAT with the
 * reason in cascade_redis_error(r) (now then partly written). */
int cascade_store__totals_append(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                                 cascade_arena *arena);
int cascade_store__totals_parse(cascade_redis *r, const redisReply *rep, size_t n_asked,
                                cascade_v1_ItemStats *now);
char *cascade_key_user_counters(char *buf, const char *ns,
                                const char *user_id); /* {ns}:uctr:{uid} (HASH) */
char *cascade_key_user_affinity(
    char *buf, const char *ns,
    const char *user_id); /* {ns}:uaff:{uid} (HASH category -> decayed weight) */
char *cascade_key_user_events(char *buf, const char *ns,
                              const char *user_id); /* {ns}:uev:{uid} (ZSET seq -> event) */
char *cascade_key_user_events_seq(char *buf, const char *ns); /* {ns}:loop:user_seq (INCR) */
/* {ns}:loop:user_online_new: the base of users without a record (new since the build) */
char *cascade_key_user_online_new(char *buf, const char *ns);
char *
cascade_key_loop_applied(char *buf, const char *ns, const char *stream,
                         int64_t hour); /* {ns}:loop:applied:{stream}:{hour} (HASH entry id -> 1) */
char *cascade_key_loop_partitions(
    char *buf, const char *ns); /* {ns}:loop:partitions (HASH YYYY-MM-DD -> committed bytes) */
char *cascade_key_meta(char *buf, const char *ns); /* {ns}:meta */

/* ------------------------------------------------------------ generations
 * Everything cascade-build derives (CF lists, hot/new/geo/city/author lists) is
 * published atomically per family: the builder writes a whole new generation
 * under keys {ns}:{family}@{gen}[:suffix], then makes it current with one SET
 * of {ns}:gen:{family}, then deletes generation gen-2 (readers may still hold
 * gen-1 for a moment). Serving resolves the current generation first (and may
 * cache it for about a second). Families: "itemcf", "swing", "usercf",
 * "authors", "hot", "new", "geo", "city". */

/* {ns}:gen:{family} */
char *cascade_key_generation(char *buf, const char *ns, const char *family);

/* {ns}:{family}@{gen} when suffix is NULL or "", else {ns}:{family}@{gen}:{suffix}. */
char *cascade_key_artefact(char *buf, const char *ns, const char *family, int64_t gen,
                           const char *suffix);

/* {ns}:gen:{family}:building — holds the generation a build is writing, from
 * its first write until it is published; a build that finds it set to the
 * generation it is about to write deletes that generation's leftovers first. */
char *cascade_key_building(char *buf, const char *ns, const char *family);

/* Delete every key of one generation of a family ({ns}:{family}@{gen} and
 * {ns}:{family}@{gen}:*), SCANning the keyspace. */
int cascade_store_unlink_generation(cascade_redis *r, const char *ns, const char *family,
                                    int64_t gen);

/* The current generation of a family; *gen = 0 when it was never published. */
int cascade_store_get_generation(cascade_redis *r, const char *ns, const char *family,
                                 int64_t *gen);

/* The generation a new build should write: current + 1. */
int cascade_store_next_generation(cascade_redis *r, const char *ns, const char *family,
                                  int64_t *gen);

/* Make gen current (SET {ns}:gen:{family}) and delete every key of generation
 * gen-2 (SCAN MATCH + UNLINK). Returns 0 or a negative code. */
int cascade_store_publish_generation(cascade_redis *r, const char *ns, const char *family,
                                     int64_t gen);

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

/* The user record (as cascade_store_get_user) and the user's interest
 * interactions counted online by the stream consumer (HGET {ns}:uctr:{uid}
 * interactions; *online 0 when absent), in one round trip. Returns the
 * record's result; *online_rc is the count's (0, or a negative code with
 * the reason in cascade_redis_error(r) when the record read succeeded). */
int cascade_store_get_user_and_interactions(cascade_redis *r, const char *ns, const char *user_id,
                                            cascade_v1_UserRecord *out, bool *found,
                                            uint32_t *online, int *online_rc);

/* Internal, for one pipeline of several reads: queue the MGETs of
 * cascade_store_get_items for ids[0..n) (n > 0), later read their replies
 * with cascade_store__items_read, which reads every one of them whatever
 * an earlier one said (the connection stays in step) and returns the first
 * failure. */
int cascade_store__items_append(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n);
int cascade_store__items_read(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                              cascade_v1_ItemRecord *out, bool *found);

/* GET one user record; *found false (and *out zeroed) when absent. */
int cascade_store_get_user(cascade_redis *r, const char *ns, const char *user_id,
                           cascade_v1_UserRecord *out, bool *found);

/* Internal: the reply rep to GET {ns}:user:{uid} as cascade_store_get_user
 * answers it. */
int cascade_store__user_reply(cascade_redis *r, const char *ns, const char *user_id,
                              const redisReply *rep, cascade_v1_UserRecord *out, bool *found);

/* The user's newest interactions, newest first, at most max. */
int cascade_store_get_lastn(cascade_redis *r, const char *ns, const char *user_id, size_t max,
                            cascade_v1_Interaction *out, size_t *count);

/* Neighbour lists {ns}:{family}@{gen}:{id} for n ids (pipelined GETs) of a
 * family such as "itemcf", "swing" or "authors" (with ids prefixed by the
 * caller's suffix convention, see docs/redis-keys.md); found[i] false when
 * absent. gen <= 0 reads the family's current generation first. */
int cascade_store_get_neighbours(cascade_redis *r, const char *ns, const char *family, int64_t gen,
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

/* UserCF similar users of one user: GET {ns}:usercf@{gen}:{user_id}
 * (UserNeighbourList, best first). gen <= 0 resolves the current generation
 * first (cascade_store_get_generation). *found is false (and *out zeroed)
 * when no generation was published or the user has no list. */
int cascade_store_get_user_neighbours(cascade_redis *r, const char *ns, int64_t gen,
                                      const char *user_id, cascade_v1_UserNeighbourList *out,
                                      bool *found);

/* ------------------------------------------------------------ feedback events
 * The Feedback write path (common/store_events.c). */

/* The user set an event adds its member to, besides last-n and consumed. */
enum cascade_store_live_set {
    CASCADE_LIVE_SET_NONE,
    CASCADE_LIVE_SET_BLOCKED_ITEMS,   /* {ns}:user:{uid}:blocked_items */
    CASCADE_LIVE_SET_BLOCKED_AUTHORS, /* {ns}:user:{uid}:blocked_authors */
    CASCADE_LIVE_SET_FOLLOWS,         /* {ns}:user:{uid}:follows */
};

/* One validated event as it is recorded. Strings are borrowed. */
struct cascade_store_event {
    const char *event_id; /* dedupe id (the caller's rule; docs/redis-keys.md) */
    const char *user_id;
    uint64_t item_id;
    const char *type; /* lower-case type name (common/events.h) */
    float value;
    int64_t time_s;         /* event time, Unix seconds */
    const char *request_id; /* NULL or "" = none */
    bool interest;          /* push `interaction` to last-n and the item to consumed */
    cascade_v1_Interaction interaction;
    enum cascade_store_live_set live_set;
    uint64_t live_set_member; /* item or author id for live_set */
};

struct cascade_store_event_limits {
    uint32_t events_maxlen;   /* XADD MAXLEN ~ of {ns}:events */
    uint32_t lastn_max;       /* last-n length kept (>= 1) */
    int64_t dedupe_window_ms; /* how long an event id is remembered (> 0) */
    uint32_t dedupe_max;      /* most ids remembered per user (>= 1) */
    int64_t not_after_ms;     /* Unix ms after which Redis must not record the batch; 0 = none */
};

/* The record script's sha, shared by the threads of one process; initialise
 * with CASCADE_STORE_SCRIPT_INIT. The lock makes it thread-safe. */
struct cascade_store_script {
    pthread_mutex_t lock;
    char sha[41]; /* "" until SCRIPT LOAD answered */
};
#define CASCADE_STORE_SCRIPT_INIT                                                                  \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, ""                                                              \
    }

/* The SHA1 of the Lua script `text` as Redis names it (40 hex digits and a
 * NUL into sha): s's copy, or SCRIPT LOAD on r the first time (a blocking
 * round trip, so nothing may be queued on r then; thread-safe). For callers
 * that pipeline EVALSHA themselves and handle NOSCRIPT (Redis restarted or
 * its script cache flushed: one EVAL of `text` puts the script back under the
 * same sha). Returns 0 or a negative code with the message in
 * cascade_redis_error(r). */
int cascade_store_script_sha(cascade_redis *r, struct cascade_store_script *s, const char *text,
                             char sha[41]);

/* True when r's last failure was Redis's NOSCRIPT reply to an EVALSHA. */
bool cascade_store_noscript(const cascade_redis *r);

/* Run the Lua script `text` with EVALSHA (SCRIPT LOAD the first time, the sha
 * kept in s; thread-safe), or EVAL when Redis lost it (restart, SCRIPT
 * FLUSH). argv[0] and argv[1] are filled here (the caller leaves them free,
 * argv must be writable); argv[2..argc) are numkeys, the keys and the
 * arguments. On success *reply is the script's reply (caller frees with
 * freeReplyObject). Returns 0 or a negative code with the message in
 * cascade_redis_error(r). */
int cascade_store_eval(cascade_redis *r, struct cascade_store_script *s, const char *text, int argc,
                       const char **argv, size_t *argvlen, redisReply **reply);

/* Record a batch of events atomically and idempotently in one Lua script
 * (EVALSHA, EVAL when Redis lost the script): for every event whose id is not
 * in its user's {ns}:user:{uid}:fb_seen, XADD it to {ns}:events (fields user,
 * item, type, value, ts, rid, eid), push its interaction to last-n (trimmed
 * to lastn_max) and its item to consumed when `interest`, add the live-set
 * member, and mark the id seen (entries older than dedupe_window_ms or beyond
 * dedupe_max per user fall out). Either the whole batch is applied or nothing:
 * a key of the wrong type, or the script starting after not_after_ms (the
 * caller has given up), fails before the first write. *recorded = events
 * newly recorded (n minus duplicates). Returns 0, CASCADE_EUNAVAILABLE,
 * CASCADE_EIO (error reply, message in cascade_redis_error) or CASCADE_ENOMEM. */
int cascade_store_record_events(cascade_redis *r, const char *ns,
                                const struct cascade_store_event *events, size_t n,
                                const struct cascade_store_event_limits *lim,
                                struct cascade_store_script *script, size_t *recorded);

#endif
