/* The serve log: one entry per Recommend that returned items, XADDed to the
 * stream {ns}:serves after the answer is final. It is the server-side
 * impression and assignment record (docs/closed-loop.md, "Serve records"):
 * request id, user, server time, each layer's experiment and bucket, the
 * per-stage canary track, the degraded flag and every returned item with its
 * position, why it is there and its stage scores. Feedback events join to it
 * by (rid, user, item). The field format is a contract shared with the A/B
 * readout; change it only together with its readers. Stateless, thread-safe. */
#ifndef CASCADE_ORCH_SERVE_LOG_H
#define CASCADE_ORCH_SERVE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"
#include "redis.h"

/* Why an item is in the served list (the `reason` of an `items` entry). */
#define CASCADE_SERVE_REASON_RANKED 'r'   /* chosen by the ranking pipeline */
#define CASCADE_SERVE_REASON_EXPLORED 'e' /* inserted by the exploration share */
#define CASCADE_SERVE_REASON_INSERTED 'i' /* inserted by a fixed slot (ads, operations) */

/* One served item, at its position in the list. */
struct cascade_serve_item {
    uint64_t item_id;
    char reason; /* CASCADE_SERVE_REASON_* */
    float rank_score;
    float rerank_score;
};

/* One served answer (all borrowed). */
struct cascade_serve_record {
    const char *request_id;
    const char *user_id;
    int64_t ts_ms;                             /* server wall time, Unix milliseconds */
    const Cascade__V1__ExperimentContext *exp; /* may be NULL: exp is "" */
    const char *track;                         /* "stage=track;..." or NULL for "" */
    bool degraded;
    const struct cascade_serve_item *items; /* in served order */
    size_t n_items;
};

/* The `exp` field: "layer=experiment@bucket" per layer, in the context's
 * order, joined by ';' ("" for NULL or no layers). Allocated in arena;
 * NULL when out of memory. */
char *cascade_serve_log_format_exp(const Cascade__V1__ExperimentContext *exp, cascade_arena *arena);

/* The `items` field: "item_id:position:reason:rank_score:rerank_score" per
 * item (position 0-based, scores "%.6g"), joined by ','. Allocated in arena;
 * NULL when out of memory. */
char *cascade_serve_log_format_items(const struct cascade_serve_item *items, size_t n,
                                     cascade_arena *arena);

/* Queue XADD {ns}:serves MAXLEN ~ max_len * with the fields rid, user,
 * ts_ms, exp, track, deg, items (read its reply with cascade_redis_get_reply,
 * or cascade_user_list_read(r, *sent)); *sent is 1 when queued. Nothing is
 * queued for a record without items (returns 0). scratch holds the
 * formatted fields (the caller's request arena). Returns 0 or a negative
 * code (CASCADE_EUNAVAILABLE, CASCADE_ENOMEM, CASCADE_EINVAL for max_len 0)
 * with the message in cascade_redis_error(r). */
int cascade_serve_log_append(cascade_redis *r, const char *ns,
                             const struct cascade_serve_record *rec, uint32_t max_len,
                             cascade_arena *scratch, size_t *sent);

#endif
