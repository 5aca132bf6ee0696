/* User-side online features: a user record's counts and category affinities
 * as of the request, continued from the state cascade-build load stored
 * beside the record ({ns}:user:{uid}:online, UserOnlineBase) with the user's
 * events applied by the stream consumer since load's snapshot
 * ({ns}:uev:{uid}, entries numbered after the record's online_seq). The continuation uses the
 * replay's own functions (common/affinity.h), so the Rank and PreRank user columns equal the
 * trainers' replay over the nightly log plus the new events, bit for bit (docs/closed-loop.md,
 * "User-side online features"). */
#ifndef CASCADE_USER_ONLINE_H
#define CASCADE_USER_ONLINE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/records.pb.h"
#include "metrics.h"
#include "redis.h"

/* The member of the trim marker in {ns}:uev:{uid}: its score is the highest
 * sequence number the consumer's cap dropped from the set. */
#define CASCADE_USER_ONLINE_TRIMMED "trim"

/* One event of {ns}:uev:{uid}: "<seq> <type> <item> <category> <ts>". */
struct cascade_user_event {
    uint64_t seq;
    uint32_t type; /* common/events.h */
    uint64_t item;
    uint32_t category;
    int64_t ts_s;
};

/* Parse a member of {ns}:uev:{uid} into *out. 0 or CASCADE_EFORMAT. */
int cascade_user_online_parse(const char *s, size_t len, struct cascade_user_event *out);

/* Continue rec with the user's online events: one round trip reads the
 * base {ns}:user:{uid}:online and {ns}:uev:{uid} (GET and ZRANGEBYSCORE
 * -inf +inf WITHSCORES, pipelined; the members above rec->online_seq are
 * kept, so the read needs no record first and can share a pipeline with it); the events are applied
 * in the replay's order (time, then sequence) to the base's state and the record's counts, and the
 * counts and the strongest affinities decayed to now_s are written into rec. *n_events (may be
 * NULL) gets the number of events applied. Returns 0; CASCADE_ENOTFOUND when the user has no base
 * (rec as it is); or a negative code with the reason in cascade_redis_error(r), rec unchanged:
 * Redis failed, CASCADE_EFORMAT (a malformed base or member), CASCADE_EDATA (the base is of another
 * load than rec, or the consumer's cap dropped events after it). Scratch from arena; thread-safe as
 * r (one connection per thread).
 * known false: rec is the zeroed record of a user without one (new since
 * the build); the base is {ns}:loop:user_online_new (load's: the snapshot's
 * sequence and half-life, no categories), and every event of the user above
 * its sequence is applied from the empty state, as the replay starts such
 * a user (rec->online_seq is set to the base's). */
int cascade_user_online_apply(cascade_redis *r, const char *ns, cascade_v1_UserRecord *rec,
                              bool known, int64_t now_s, cascade_arena *arena, size_t *n_events);

/* Internal, for one pipeline of several reads (common/stage_reads.c):
 * __append queues the CASCADE_USER_ONLINE_REPLIES reads of
 * cascade_user_online_apply for user_id (the user's base, the new users'
 * base, the events: the record need not be read first); __finish continues
 * rec from their replies (rep[], every one read without error) and returns
 * what cascade_user_online_apply returns. */
#define CASCADE_USER_ONLINE_REPLIES 3
int cascade_user_online__append(cascade_redis *r, const char *ns, const char *user_id);
int cascade_user_online__finish(cascade_redis *r, const char *ns, cascade_v1_UserRecord *rec,
                                bool known, redisReply *const rep[CASCADE_USER_ONLINE_REPLIES],
                                int64_t now_s, cascade_arena *arena, size_t *n_events);

/* The stage's side of the outcome rc of cascade_user_online_apply: no base
 * (CASCADE_ENOTFOUND) counts nothing, another failure is counted in
 * `failures` and logged (rate-limited) with the stage's name, success is
 * counted in `reads` (metrics may be NULL). Returns 0, or CASCADE_ENOMEM
 * when rc is (the caller fails). */
int cascade_user_online_report(cascade_redis *r, int rc, const char *stage, cascade_metric *reads,
                               cascade_metric *failures);

/* The pure part: continue rec from base with ev[0..n) (sorted here in place)
 * as of now_s. 0 or CASCADE_ENOMEM / CASCADE_EFORMAT (an event type out of
 * range), rec unchanged on error. */
int cascade_user_online_continue(cascade_v1_UserRecord *rec, const cascade_v1_UserOnlineBase *base,
                                 struct cascade_user_event *ev, size_t n, int64_t now_s);

#endif
