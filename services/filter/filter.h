/* Filter stage (过滤): drops candidates the user has already been shown
 * (per-user exposure Bloom filters in Redis, one per time window, so entries
 * older than windows × window_seconds fall out), already consumed, blocked
 * (the user's dislikes: blocked items and blocked authors) or listed twice,
 * and records new exposures. The handlers wrap cascade_filter_run and
 * cascade_filter_record, which tests call directly. */
#ifndef CASCADE_FILTER_H
#define CASCADE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "bloom.h"
#include "cascade/v1/filter.pb-c.h"
#include "config.h"
#include "metrics.h"
#include "redis.h"
#include "rpc.h"

typedef struct cascade_filter cascade_filter;

/* Create the stage from the "filter" config section (cfg may be NULL for
 * defaults). Borrows `redis` and `metrics` (the process's registry, where the
 * counter cascade_filter_dropped_total{reason} is registered; NULL = no
 * metrics); both must outlive the stage. Copies `ns`. NULL with a message in
 * err on an invalid config value. Thread-safe once created. */
cascade_filter *cascade_filter_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, cascade_metrics *metrics, char *err,
                                      size_t errlen);

/* NULL is a no-op. */
void cascade_filter_destroy(cascade_filter *f);

/* Filter req's candidates — the Candidate messages, or the packed columns
 * item_ids (+ author_ids), not both: survivors keep their order (the
 * Candidate pointers of the request are reused; with ids_only or columns
 * they come back as kept_ids), and `dropped` always lists the
 * reasons "exposed", "consumed", "blocked_item", "blocked_author",
 * "duplicate" in that order (counts may be 0); each dropped candidate counts
 * under one reason: a repeat is a duplicate, otherwise the first of exposed,
 * consumed, blocked_item, blocked_author that applies. Item records are read
 * (for authors) only when the user has blocked authors and only for
 * candidates whose attrs (or author_ids) carry no author. Allocates from arena. Returns 0 or
 * EINVAL / ETOOBIG / EUNAVAILABLE / ETIMEDOUT / ENOMEM with a message in err. */
int cascade_filter_run(cascade_filter *f, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__FilterRequest *req, Cascade__V1__FilterResponse **out,
                       char *err, size_t errlen);

/* Record req's items as exposed in the current window of the server's clock
 * (req->time_s is ignored): with req->reserve == 0, SETBIT of each item's
 * Bloom positions, EXPIRE windows × window_seconds; with req->reserve = N > 0,
 * a reservation, atomic per user (the windows read under WATCH, the current
 * one written in MULTI/EXEC, retried when another reservation changed them
 * in between), takes the first N items in order that no window of the
 * user's filters holds and records only those. (*out)->item_ids lists the
 * items recorded, in request order. Returns 0 or EINVAL / ETOOBIG /
 * EUNAVAILABLE (also after 16 attempts lost to other reservations) /
 * ETIMEDOUT / ENOMEM with a message in err. Thread-safe. */
int cascade_filter_record(cascade_filter *f, cascade_arena *arena, int64_t deadline_ms,
                          const Cascade__V1__RecordExposureRequest *req,
                          Cascade__V1__RecordExposureResponse **out, char *err, size_t errlen);

/* RPC handlers for /cascade.v1.Filter/Filter and /cascade.v1.Filter/RecordExposure
 * (service = cascade_filter *). */
int cascade_filter_handle_filter(void *service, cascade_rpc_ctx *ctx,
                                 const ProtobufCMessage *request, ProtobufCMessage **response);
int cascade_filter_handle_record(void *service, cascade_rpc_ctx *ctx,
                                 const ProtobufCMessage *request, ProtobufCMessage **response);

/* The method table for cascade_service_run; *n is set to its length. Static. */
const struct cascade_rpc_method *cascade_filter_methods(size_t *n);

/* The time window a Unix time falls in: floor(time_s / window_seconds). */
int64_t cascade_filter_window(int64_t time_s, int64_t window_seconds);

/* Replace the server clock (Unix seconds) that picks the exposure windows;
 * NULL restores cascade_wall_s. For tests (window rotation); call before the
 * stage is shared between threads. */
void cascade_filter_set_clock(cascade_filter *f, int64_t (*wall_s)(void));

/* The Bloom parameters exposures are written with (from the config). */
struct cascade_bloom_params cascade_filter_bloom_params(const cascade_filter *f);

#endif
