/* The hard-negative log (困难负样本): items the rank stage scored but cut
 * (below rank.keep, so never re-ranked, cached or shown) are pushed per user
 * to the LIST {ns}:user:{uid}:hardneg, newest first, capped, with an expiry.
 * `cascade-build train-two-tower --hard-ratio` reads them back as the hard
 * negatives of the two-tower model (docs/twotower.md). Stateless. */
#ifndef CASCADE_ORCH_HARDNEG_LOG_H
#define CASCADE_ORCH_HARDNEG_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/common.pb-c.h"
#include "redis.h"

/* What the rank stage saw and kept for one request (all borrowed). */
struct cascade_hardneg_cut {
    Cascade__V1__Candidate *const *scored; /* the candidates sent to the rank stage */
    size_t n_scored;
    Cascade__V1__Candidate *const *ranked; /* its response, best first */
    size_t n_ranked;
    size_t kept;           /* ranked[0..kept) went on to re-rank */
    const uint64_t *shown; /* the final list (exploration may show a cut item) */
    size_t n_shown;
};

/* Write into ids (room for max) the items of c that were scored but cut,
 * hardest first: ranked[kept..) in the ranker's order, then the scored items
 * the stage did not return (when it truncated to keep itself), in the order
 * they were sent. Items in ranked[0..kept) or shown are never selected, nor
 * any item twice. Returns the count (<= max), or 0 when out of memory. */
size_t cascade_hardneg_select(const struct cascade_hardneg_cut *c, uint64_t *ids, size_t max);

/* Queue LPUSH (ids[0] at the head), LTRIM to cap entries and EXPIRE ttl_s
 * (0 = none) on {ns}:user:{user_id}:hardneg; *sent counts the commands
 * queued, also after a failure. Nothing is queued for n == 0. Returns 0 or a
 * negative code with the message in cascade_redis_error(r). */
int cascade_hardneg_log_append(cascade_redis *r, const char *ns, const char *user_id,
                               const uint64_t *ids, size_t n, uint32_t cap, int64_t ttl_s,
                               size_t *sent);

/* Read the `sent` replies queued by cascade_hardneg_log_append. Returns 0 or
 * the first failure (CASCADE_EUNAVAILABLE, CASCADE_EIO). */
int cascade_hardneg_log_read(cascade_redis *r, size_t sent);

/* Append then read: one round trip. */
int cascade_hardneg_log_write(cascade_redis *r, const char *ns, const char *user_id,
                              const uint64_t *ids, size_t n, uint32_t cap, int64_t ttl_s);

#endif
