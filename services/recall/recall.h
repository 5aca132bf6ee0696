/* Recall stage (召回): runs the channels a request names for one user and
 * returns their candidates with provenance (channel, channel score, rank).
 * Channels are entries of a registry table ({name, fn}), so a new channel is
 * one function and one table row. The handler wraps cascade_recall_run, which
 * tests call directly. */
#ifndef CASCADE_RECALL_H
#define CASCADE_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "config.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_recall cascade_recall;

/* Create the stage from the "recall" config section (cfg may be NULL for
 * defaults). Borrows `redis` (must outlive the stage); copies `ns`. Returns
 * NULL with a message in err when a config value is invalid. Thread-safe to
 * use from many worker threads once created. */
cascade_recall *cascade_recall_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, char *err, size_t errlen);

/* Free the stage. NULL is a no-op. */
void cascade_recall_destroy(cascade_recall *r);

/* Validate `req` and run its channels. The response and everything in it is
 * allocated from arena. deadline_ms is absolute on the cascade_now_ms clock
 * (INT64_MAX = none). Returns 0, or a negative CASCADE_E* code with a message
 * in err: EINVAL (bad request), EUNAVAILABLE (Redis), ETIMEDOUT, ENOMEM. */
int cascade_recall_run(cascade_recall *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__RecallRequest *req, Cascade__V1__RecallResponse **out,
                       char *err, size_t errlen);

/* The RPC handler for /cascade.v1.Recall/Recall (service = cascade_recall *). */
int cascade_recall_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response);

/* The method table to pass to cascade_service_run; *n is set to its length.
 * Static storage. */
const struct cascade_rpc_method *cascade_recall_methods(size_t *n);

/* What one channel returns: item ids and channel scores, best first. Arrays
 * are arena memory. */
struct cascade_recall_hits {
    uint64_t *ids;
    float *scores;
    size_t count;
};

/* Names of the registered channels, comma-separated ("hot, itemcf"). Static. */
const char *cascade_recall_channel_list(void);

/* ItemCF scoring over arrays, no Redis: the user's distinct recent items
 * src_ids[0..n_src) with interest weights src_weights, and for each a
 * neighbour list (lists[i], valid when found[i]). score(item) =
 * Σ_i src_weights[i] · sim(src_i, item) over the first k neighbours of each
 * list; source items themselves are excluded; the top `quota` items by score
 * (ties: smaller id first) go to out. Returns 0 or CASCADE_ENOMEM. */
int cascade_recall_itemcf_score(const uint64_t *src_ids, const float *src_weights, size_t n_src,
                                const cascade_v1_NeighbourList *lists, const bool *found, size_t k,
                                size_t quota, cascade_arena *arena,
                                struct cascade_recall_hits *out);

#endif
