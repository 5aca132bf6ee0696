/* The registry of experiment parameters: every key an experiment's "params"
 * may set, the stage that owns it and the code that reads it, in one table
 * (exp_registry.c; docs/experiments.md lists it). cascade_experiments_create
 * checks every configured key against it, so a typo or a key set by the
 * wrong layer stops the service at start-up (or is refused by a reload)
 * instead of being silently ignored.
 *
 * Thread-safety: the table is constant; every function may be called from
 * any thread. */
#ifndef CASCADE_EXP_REGISTRY_H
#define CASCADE_EXP_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

struct cascade_exp_key {
    const char *key;    /* "rerank.lambda", or a prefix ending in '.' ("recall.weight.") */
    bool prefix;        /* key + a non-empty [a-z0-9_] suffix (a channel or task name) */
    const char *owner;  /* the stage that owns it: "recall", "prerank", "rank", "rerank" */
    const char *reader; /* where it is read: "orchestrator" or the stage service */
};

/* The entry that key matches, or NULL when the key is unknown. */
const struct cascade_exp_key *cascade_exp_registry_find(const char *key);

/* The whole table (n entries), for docs and tests. */
const struct cascade_exp_key *cascade_exp_registry_all(size_t *n);

/* True when a layer of this name is a stage's layer ("recall", "prerank",
 * "rank", "rerank"): such a layer may only set the keys its stage owns.
 * A layer of any other name (a cross-stage layer such as "explore") may set
 * any known key. */
bool cascade_exp_registry_is_stage(const char *layer);

/* Check that an experiment of `layer` may set `key`. Returns 0, or
 * CASCADE_EINVAL with a message in err ("unknown parameter \"rerank.lamda\"
 * (known: ...)" / "parameter \"rank.model\" belongs to stage \"rank\", not
 * to layer \"rerank\""); the caller prefixes the layer and experiment. */
int cascade_exp_registry_check(const char *layer, const char *key, char *err, size_t errlen);

#endif
