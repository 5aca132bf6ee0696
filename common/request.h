/* Checks every stage (and the orchestrator) applies to an incoming request —
 * the user context and the candidate list — with the messages the callers
 * see, and the one deterministic candidate order used wherever a stage sorts
 * by a score. Pure functions; thread-safe. */
#ifndef CASCADE_REQUEST_H
#define CASCADE_REQUEST_H

#include <stddef.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

/* Longest user id accepted, in bytes (docs/redis-keys.md; UserRecord.user_id
 * holds 64). */
#define CASCADE_USER_ID_MAX 64

/* Check a user id: non-empty and at most CASCADE_USER_ID_MAX bytes. `field`
 * names it in the message ("user_id is empty", "events[2].user_id is longer
 * than 64 bytes"). Returns 0 or CASCADE_EINVAL with the message in err. */
int cascade_request_check_user_id(const char *field, const char *user_id, char *err, size_t errlen);

/* Check a request's user context: present, user.user_id as above, and
 * user.request_time_s not negative (0 means "server clock"). Returns 0 or
 * CASCADE_EINVAL with "user.user_id is empty", "user.user_id is longer than
 * 64 bytes" or "user.request_time_s -5 is negative" in err. */
int cascade_request_check_user(const Cascade__V1__UserContext *user, char *err, size_t errlen);

/* Check a candidate list: at most `max` entries (else CASCADE_ETOOBIG, "7
 * candidates exceed the limit of 5") and none of them NULL (else
 * CASCADE_EINVAL, "candidates[3] is missing"). */
int cascade_request_check_candidates(Cascade__V1__Candidate *const *candidates, size_t n,
                                     size_t max, char *err, size_t errlen);

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

#endif
