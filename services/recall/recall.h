/* Recall stage (召回): runs the channels a request names for one user and
 * returns their candidates with provenance (channel, channel score, rank).
 * Channels are entries of a registry table ({name, family, fn}), so a new
 * channel is one function and one table row. Every channel reads the current
 * generation of its builder family (cached for recall.generation_ttl_ms) and
 * records its own metrics. The handler wraps cascade_recall_run, which tests
 * call directly. */
#ifndef CASCADE_RECALL_H
#define CASCADE_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "config.h"
#include "metrics.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_recall cascade_recall;

/* Create the stage from the "recall" config section (cfg may be NULL for
 * defaults). Borrows `redis` and `metrics` (the process's registry, where the
 * per-channel families cascade_recall_channel_* are registered; NULL = no
 * metrics); both must outlive the stage. Copies `ns`. Returns NULL with a
 * message in err when a config value is invalid. Thread-safe to use from many
 * worker threads once created. */
cascade_recall *cascade_recall_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, cascade_metrics *metrics, char *err,
                                      size_t errlen);

/* Two-tower versions per experiment arm: load every version the config's
 * experiments name in recall.two_tower.model_version (a version name in the
 * two_tower channel's model directory, as two-tower.latest names one: its
 * model, item index and id maps) and keep it loaded beside the latest;
 * release the versions no longer named. A request whose arm names a pinned
 * version searches with it, any other with the latest (a version no
 * experiment names is never loaded on demand). Called by create and on
 * reload (SIGHUP); on error (a version that does not load, more than 8,
 * no two_tower model directory) nothing changes. 0 or CASCADE_EINVAL. */
int cascade_recall_pin_versions(cascade_recall *r, const cascade_config *cfg, char *err,
                                size_t errlen);

/* Free the stage. NULL is a no-op. */
void cascade_recall_destroy(cascade_recall *r);

/* Validate `req` and run its channels. The response and everything in it is
 * allocated from arena. deadline_ms is absolute on the cascade_now_ms clock
 * (INT64_MAX = none). Returns 0, or a negative CASCADE_E* code with a message
 * in err: EINVAL (bad request, unknown or disabled channel), EUNAVAILABLE
 * (Redis), ETIMEDOUT, ENOMEM. */
int cascade_recall_run(cascade_recall *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__RecallRequest *req, Cascade__V1__RecallResponse **out,
                       char *err, size_t errlen);

/* The RPC handler for /cascade.v1.Recall/Recall (service = cascade_recall *). */
int cascade_recall_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response);

/* The method table to pass to cascade_service_run; *n is set to its length.
 * Static storage. */
const struct cascade_rpc_method *cascade_recall_methods(size_t *n);

/* A list of item ids with scores, best first: what a channel returns, and a
 * neighbour list as the scorers read it. Arrays are arena memory. */
struct cascade_recall_hits {
    uint64_t *ids;
    float *scores;
    size_t count;
};

/* Names of the registered channels, comma-separated ("hot, itemcf, ...").
 * Static. */
const char *cascade_recall_channel_list(void);

/* CF scoring over arrays, no Redis (ItemCF and Swing): the user's distinct
 * recent items src_ids[0..n_src) with interest weights src_weights, and for
 * each its neighbour list lists[i] (count 0 when absent). score(item) =
 * Σ_i src_weights[i] · sim(src_i, item) over the first k neighbours of each
 * list; source items themselves and sources with a weight <= 0 are skipped;
 * the top `quota` items by score (ties: smaller id first) go to out. Returns 0
 * or CASCADE_ENOMEM. */
int cascade_recall_itemcf_score(const uint64_t *src_ids, const float *src_weights, size_t n_src,
                                const struct cascade_recall_hits *lists, size_t k, size_t quota,
                                cascade_arena *arena, struct cascade_recall_hits *out);

/* Decode a serialized NeighbourList (records.proto) without nanopb: at most
 * `max` entries, in stored order, into ids[]/scores[] (max slots each); the
 * rest of the buffer is not parsed. Unknown fields are skipped. Returns 0 and
 * *count, or CASCADE_EFORMAT for bytes that are not a NeighbourList. */
int cascade_recall_decode_neighbours(const uint8_t *buf, size_t len, size_t max, uint64_t *ids,
                                     float *scores, size_t *count);

/* Demographic age bucket of an age in years: 0 unknown (age 0), 1 under 18,
 * 2 18-24, 3 25-34, 4 35-44, 5 45-54, 6 55 and over. */
uint32_t cascade_recall_age_bucket(uint32_t age);

#endif
