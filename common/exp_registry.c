/* The one table of experiment parameter keys (see exp_registry.h). A key
 * added to a stage's cascade_exp_param* calls must be added here too, or no
 * experiment can set it; docs/experiments.md lists the same table. */
#include "exp_registry.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

static const struct cascade_exp_key registry[] = {
    /* Read by the orchestrator before and after the recall fan-out. */
    {"recall.channels", false, "recall", "orchestrator"},
    {"recall.weight.", true, "recall", "orchestrator"},
    {"recall.quota.", true, "recall", "orchestrator"},
    {"orchestrator.merge_max", false, "recall", "orchestrator"},
    /* Read by the recall service's two_tower channel. */
    {"recall.two_tower.model_version", false, "recall", "recall"},
    /* Pre-rank. */
    {"prerank.keep", false, "prerank", "orchestrator"},
    {"prerank.weights.clicks", false, "prerank", "prerank"},
    {"prerank.weights.ctr", false, "prerank", "prerank"},
    {"prerank.weights.recall", false, "prerank", "prerank"},
    {"prerank.model_version", false, "prerank", "prerank"},
    /* Rank. */
    {"rank.keep", false, "rank", "orchestrator"},
    {"rank.model", false, "rank", "rank"},
    {"rank.model_version", false, "rank", "rank"},
    {"rank.fusion.formula", false, "rank", "rank"},
    {"rank.fusion.weights.click", false, "rank", "rank"},
    {"rank.fusion.weights.like", false, "rank", "rank"},
    {"rank.fusion.weights.collect", false, "rank", "rank"},
    {"rank.fusion.weights.share", false, "rank", "rank"},
    {"rank.fusion.weights.watch_time", false, "rank", "rank"},
    {"rank.fusion.weights.complete", false, "rank", "rank"},
    {"rank.fusion.rank_alpha", false, "rank", "rank"},
    {"rank.fusion.rank_beta", false, "rank", "rank"},
    /* Re-rank and the final list (the orchestrator's exploration slots). */
    {"rerank.lambda", false, "rerank", "rerank"},
    {"rerank.method", false, "rerank", "rerank"},
    {"rerank.sim.category", false, "rerank", "rerank"},
    {"rerank.sim.author", false, "rerank", "rerank"},
    {"rerank.sim.embedding", false, "rerank", "rerank"},
    {"rerank.dpp.theta", false, "rerank", "rerank"},
    {"rerank.dpp.window", false, "rerank", "rerank"},
    {"rerank.scatter.window", false, "rerank", "rerank"},
    {"rerank.scatter.max_per_category", false, "rerank", "rerank"},
    {"rerank.scatter.max_per_author", false, "rerank", "rerank"},
    {"rerank.scatter.author_min_distance", false, "rerank", "rerank"},
    {"rerank.scatter.max_steps", false, "rerank", "rerank"},
    {"exploration.share", false, "rerank", "orchestrator"},
    {"exploration.position", false, "rerank", "orchestrator"},
    {"exploration.max_rank_share", false, "rerank", "orchestrator"},
    {"exploration.positions", false, "rerank", "orchestrator"},
};

#define N_KEYS (sizeof registry / sizeof registry[0])

static const char *const stages[] = {"recall", "prerank", "rank", "rerank"};

static bool valid_suffix(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

const struct cascade_exp_key *cascade_exp_registry_find(const char *key)
{
    if (!key)
        return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cascade_exp_key *k = &registry[i];
        size_t len = strlen(k->key);
        if (k->prefix ? strncmp(key, k->key, len) == 0 && valid_suffix(key + len)
                      : strcmp(key, k->key) == 0)
            return k;
    }
    return NULL;
}

const struct cascade_exp_key *cascade_exp_registry_all(size_t *n)
{
    if (n)
        *n = N_KEYS;
    return registry;
}

bool cascade_exp_registry_is_stage(const char *layer)
{
    for (size_t i = 0; layer && i < sizeof stages / sizeof stages[0]; i++)
        if (strcmp(layer, stages[i]) == 0)
            return true;
    return false;
}

/* "a, b, c<channel>" for the keys `layer` may set (every key for a
 * cross-stage layer), cut to fit len. */
static void known_keys(const char *layer, char *buf, size_t len)
{
    bool stage = cascade_exp_registry_is_stage(layer);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KEYS && used + 1 < len; i++) {
        if (stage && strcmp(registry[i].owner, layer) != 0)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s%s", used ? ", " : "", registry[i].key,
                         registry[i].prefix ? "<name>" : "");
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int cascade_exp_registry_check(const char *layer, const char *key, char *err, size_t errlen)
{
    const struct cascade_exp_key *k = cascade_exp_registry_find(key);
    char known[768];
    if (!k) {
        known_keys(layer, known, sizeof known);
        snprintf(err, errlen, "unknown parameter \"%s\" (known%s%s: %s)", key,
                 cascade_exp_registry_is_stage(layer) ? " for layer " : "",
                 cascade_exp_registry_is_stage(layer) ? layer : "", known);
        return CASCADE_EINVAL;
    }
    if (cascade_exp_registry_is_stage(layer) && strcmp(k->owner, layer) != 0) {
        snprintf(err, errlen,
                 "parameter \"%s\" belongs to stage \"%s\", not to layer \"%s\" (set it in "
                 "the \"%s\" layer or in a cross-stage layer)",
                 key, k->owner, layer, k->owner);
        return CASCADE_EINVAL;
    }
    return 0;
}
