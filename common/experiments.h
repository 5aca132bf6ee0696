/* Layered A/B experiments (SPEC §6). bucket = hash(user_id ‖ layer salt) mod B.
 * Experiments in one layer own disjoint bucket ranges (mutually exclusive);
 * different salts make layers orthogonal. A global holdout range gets baseline
 * in every layer. A launched experiment applies to every bucket of its layer
 * except its reverse (反转) range, which keeps the old strategy.
 *
 * Config ("experiments" section):
 * { "buckets": 1000, "holdout": [[0, 9]],
 *   "layers": [ { "name": "rerank", "salt": "rerank-2026",
 *                 "experiments": [ { "name": "mmr_07", "ranges": [[100, 199]],
 *                                    "params": { "rerank.lambda": 0.7 } },
 *                                  { "name": "mmr_05", "launched": true,
 *                                    "reverse": [[990, 999]], "params": {...} } ] } ] }
 * Immutable after creation; thread-safe to share. */
#ifndef CASCADE_EXPERIMENTS_H
#define CASCADE_EXPERIMENTS_H

#include <jansson.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

typedef struct cascade_experiments cascade_experiments;

/* Build from the "experiments" JSON object (NULL = no layers, B = 1000).
 * Overlapping ranges, ranges outside [0,B), duplicate layer names or salts
 * are rejected with a message naming the layer and experiment. */
cascade_experiments *cascade_experiments_create(const json_t *cfg, char *err, size_t errlen);
void cascade_experiments_destroy(cascade_experiments *e);

/* Assign user_id in every layer; the context and its strings are allocated in arena. */
int cascade_experiments_assign(const cascade_experiments *e, const char *user_id,
                               cascade_arena *arena, Cascade__V1__ExperimentContext **out);

/* One arm of a layer and the share of users the config sends to it. */
struct cascade_exp_arm {
    const char *name; /* "holdout", "baseline", "<name>", "<name>:reverse"; borrowed from e */
    double share;     /* in (0, 1]; the arms of a layer sum to 1 */
};

/* The arms of layer `layer` with their expected user shares, from the
 * bucket ranges: the holdout (share h = holdout buckets / B), baseline (the
 * free buckets, when nothing is launched), each experiment's ranges (a
 * launched one: the free buckets), each reverse range; every non-holdout
 * share is scaled by 1 - h. Arms with no bucket are left out. Writes at most
 * cap arms; returns how many there are, or CASCADE_EINVAL when e has no such
 * layer. For the readout's sample-ratio-mismatch test. Thread-safe. */
int cascade_experiments_arms(const cascade_experiments *e, const char *layer,
                             struct cascade_exp_arm *out, size_t cap);

/* Look up a parameter set by any layer's experiment; NULL when unset (ctx may be NULL). */
const char *cascade_exp_param(const Cascade__V1__ExperimentContext *ctx, const char *key);
double cascade_exp_param_double(const Cascade__V1__ExperimentContext *ctx, const char *key,
                                double def);

/* Call fn for every experiment of the "experiments" config section
 * (section may be NULL: no call) whose "params" set `key`, in config order,
 * with the value (borrowed JSON) and who = "layer \"L\" experiment \"X\"" for
 * messages. Stops at fn's first non-zero return and returns it; else 0.
 * For services that prepare what an arm names (model versions) at start-up
 * and on reload. Thread-safe on a section nobody modifies. */
typedef int (*cascade_exp_param_fn)(void *ctx, const json_t *value, const char *who, char *err,
                                    size_t errlen);
int cascade_experiments_each_param(const json_t *section, const char *key, cascade_exp_param_fn fn,
                                   void *ctx, char *err, size_t errlen);

#endif
