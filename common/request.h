/* Checks every stage (and the orchestrator) applies to an incoming request —
 * the user context and the candidate list — with the messages the callers
 * see, and the one deterministic candidate order used wherever a stage sorts
 * by a score. Pure functions; thread-safe. */
#ifndef CASCADE_REQUEST_H
#define CASCADE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"
#include "geohash.h"

/* The bounds on every field of a stage or Recommend request, in one place
 * (docs/stages.md, "Request limits"). Lengths are in bytes. A field over its
 * bound is rejected with INVALID_ARGUMENT naming it ("user.device: 300 bytes,
 * at most 64"); every string id must also be valid UTF-8. The counts the
 * stages configure (max_candidates, quota, keep, count) are checked by the
 * stages against their own config. */

/* Longest user id (docs/redis-keys.md; UserRecord.user_id holds 64). */
#define CASCADE_USER_ID_MAX 64
/* Longest request id; a caller's id must also match [A-Za-z0-9._:-]. */
#define CASCADE_REQUEST_ID_MAX 64
/* Longest user.geohash (a geohash has at most 12 characters). */
#define CASCADE_REQUEST_GEOHASH_MAX CASCADE_GEOHASH_MAX
/* Longest user.device ("ios", "android", "web", ...). */
#define CASCADE_REQUEST_DEVICE_MAX 64
/* Longest recall channel name (RecallRequest.channels[i], ChannelHit.channel). */
#define CASCADE_REQUEST_CHANNEL_NAME_MAX 64
/* Most channel hits on one candidate (one per channel after the merge). */
#define CASCADE_REQUEST_CHANNEL_HITS_MAX 64
/* Most floats in one candidate's attrs.embedding. */
#define CASCADE_REQUEST_EMBEDDING_MAX 1024
/* ExperimentContext: layers, bucket count, names, parameters per layer and
 * the length of a parameter's key and value. */
#define CASCADE_REQUEST_EXP_LAYERS_MAX 32
#define CASCADE_REQUEST_EXP_BUCKETS_MAX 1000000
#define CASCADE_REQUEST_EXP_NAME_MAX 128
#define CASCADE_REQUEST_EXP_PARAMS_MAX 64
#define CASCADE_REQUEST_EXP_KEY_MAX 128
#define CASCADE_REQUEST_EXP_VALUE_MAX 256

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). protobuf-c does not check proto3
 * strings, so every string id goes through this. */
bool cascade_request_utf8_valid(const char *s, size_t len);

/* True when id is a request id we pass on: 1..CASCADE_REQUEST_ID_MAX bytes of
 * [A-Za-z0-9._:-]. Anything else a caller sends is replaced, never copied into
 * metadata, Redis keys or logs. NULL is not valid. */
bool cascade_request_id_valid(const char *id);

/* Check an optional string field: at most `max` bytes ("user.device: 300
 * bytes, at most 64") and valid UTF-8 ("user.device is not valid UTF-8").
 * NULL counts as "". Returns 0 or CASCADE_EINVAL with the message in err. */
int cascade_request_check_string(const char *field, const char *s, size_t max, char *err,
                                 size_t errlen);

/* Check a user id: non-empty, at most CASCADE_USER_ID_MAX bytes and valid
 * UTF-8. `field` names it in the message ("user_id is empty",
 * "events[2].user_id is longer than 64 bytes", "user_id is not valid UTF-8").
 * Returns 0 or CASCADE_EINVAL with the message in err. */
int cascade_request_check_user_id(const char *field, const char *user_id, char *err, size_t errlen);

/* Check a request's user context: present, user.user_id as above,
 * user.request_time_s not negative (0 means "server clock"), user.geohash and
 * user.device within their bounds and valid UTF-8, and user.request_id, when
 * set, a valid request id (cascade_request_id_valid). The orchestrator, which
 * replaces a bad request id instead of refusing it, checks a copy without
 * one. Returns 0 or CASCADE_EINVAL with "user.user_id is empty",
 * "user.request_time_s -5 is negative", "user.device: 300 bytes, at most 64"
 * and the like in err. */
int cascade_request_check_user(const Cascade__V1__UserContext *user, char *err, size_t errlen);

/* Give each of candidates[0..n) the channel hits the columns sig describe
 * (RecallSignals in common.proto; ChannelHit.score stays 0, the channel
 * names are borrowed from sig, the hits come from arena), so a stage reads
 * them as if the candidates had been sent with `channels`. NULL sig (or one
 * with no column set) changes nothing. Checks the columns first and returns
 * CASCADE_EINVAL with the field named when they do not describe n candidates
 * ("recall_signals.hit_count: 3 entries for 4 candidates"), a column's
 * length differs from the hits counted, a channel index is out of range, a
 * candidate has more hits than CASCADE_REQUEST_CHANNEL_HITS_MAX, a channel
 * name is over its bound or not UTF-8, or a candidate also carries
 * `channels` or is missing; CASCADE_ENOMEM when the arena is exhausted. Call
 * it before cascade_request_check_candidates. */
int cascade_request_expand_signals(const Cascade__V1__RecallSignals *sig,
                                   Cascade__V1__Candidate *const *candidates, size_t n,
                                   cascade_arena *arena, char *err, size_t errlen);

/* The candidates a request sent as packed columns (PreRankRequest and
 * RankRequest item_ids and recall_scores): *out = n_ids candidates built in arena, each with only
 * its item_id and recall_score set (0 when recall_scores is empty), in id
 * order, for the stage to read, score and sort as if they had been sent as
 * `candidates`. n_candidates is how many the request also sent as messages.
 * Refuses, with the field named in err: both forms set (CASCADE_EINVAL,
 * "item_ids and candidates are both set; send one"), more ids than max
 * (CASCADE_ETOOBIG, as cascade_request_check_candidates: "7 item_ids exceed
 * the limit of 5"), recall_scores neither empty nor one per id
 * (CASCADE_EINVAL, "recall_scores: 3 entries for 4 item_ids ..."); arena
 * exhausted: CASCADE_ENOMEM. n_ids 0 gives *out NULL. */
int cascade_request_candidates_from_columns(size_t n_candidates, const uint64_t *ids, size_t n_ids,
                                            const float *recall_scores, size_t n_recall_scores,
                                            size_t max, cascade_arena *arena,
                                            Cascade__V1__Candidate ***out, char *err,
                                            size_t errlen);

/* Check a candidate list: at most `max` entries (else CASCADE_ETOOBIG, "7
 * candidates exceed the limit of 5"), none of them NULL (else CASCADE_EINVAL,
 * "candidates[3] is missing"), and each within the bounds above: channel hits
 * ("candidates[3].channels: 70 entries, at most 64"), each hit present with
 * its channel name bounded and valid UTF-8, attrs.embedding length and
 * finite values, attrs.duration_s finite and not negative. */
int cascade_request_check_candidates(Cascade__V1__Candidate *const *candidates, size_t n,
                                     size_t max, char *err, size_t errlen);

/* Check an optional experiment context (NULL is fine): bucket_count, layer
 * count, every layer present with its bucket below bucket_count, layer and
 * experiment names, and each layer's parameters (count, key and value length,
 * UTF-8). Returns 0 or CASCADE_EINVAL naming the field
 * ("experiments.layers[1].params[2].value: 300 bytes, at most 256"). */
int cascade_request_check_experiments(const Cascade__V1__ExperimentContext *exp, char *err,
                                      size_t errlen);

/* The per-stage scores a Candidate carries (common.proto). */
enum cascade_score_kind {
    CASCADE_SCORE_RECALL,
    CASCADE_SCORE_PRERANK,
    CASCADE_SCORE_RANK,
    CASCADE_SCORE_RERANK,
};

/* The candidate's score of the given kind. */
float cascade_request_candidate_score(const Cascade__V1__Candidate *c, enum cascade_score_kind by);

/* Sort c[0..n) in place by the `by` score descending, ties by item id
 * ascending, then by input position, so the same input always gives the same
 * order (qsort alone is not stable); a NaN score sorts after every number.
 * Scratch comes from arena. Returns 0 or CASCADE_ENOMEM (c is then
 * unchanged). */
int cascade_request_sort_candidates(Cascade__V1__Candidate **c, size_t n,
                                    enum cascade_score_kind by, cascade_arena *arena);

/* The first `top` of c[0..n) as cascade_request_sort_candidates would order
 * them (the same candidates in the same order), the others after them in no
 * particular order: for a stage that keeps only the top of a long list
 * (selects, then sorts top; O(n + top·log top)). Scratch from arena. 0 or
 * CASCADE_ENOMEM (c is then unchanged). */
int cascade_request_sort_top(Cascade__V1__Candidate **c, size_t n, size_t top,
                             enum cascade_score_kind by, cascade_arena *arena);

#endif
