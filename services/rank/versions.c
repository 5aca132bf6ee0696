/* Model versions per experiment arm: the files the config's experiments
 * name in rank.model_version stay loaded (pinned) beside the .latest models,
 * so two versions can serve side by side. The set is rebuilt from the config
 * at create and on every reload; a version still named keeps its loaded
 * model, a new one is loaded before anything changes. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "experiments.h"
#include "log.h"
#include "rank_internal.h"

#define VERSION_PARAM "rank.model_version"

/* The pinned model named `name` in set (n entries), or NULL. */
static struct cascade_rank__model *find(struct cascade_rank__model *const *set, size_t n,
                                        const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i]->version, name) == 0)
            return set[i];
    return NULL;
}

/* Add the version `name` (from experiment `who`) to next: the model already
 * pinned (another reference), or a fresh load. */
static int pin_one(cascade_rank *r, const char *name, const char *who,
                   struct cascade_rank__model **next, size_t *n, char *err, size_t errlen)
{
    enum cascade_rank__kind kind;
    char why[1200];
    if (find(next, *n, name))
        return 0;
    if (*n == CASCADE_RANK__MAX_PINNED) {
        snprintf(err, errlen, "rank: %s: more than %d model versions named by experiments", who,
                 CASCADE_RANK__MAX_PINNED);
        return CASCADE_EINVAL;
    }
    if (strchr(name, '/') || cascade_rank__kind_of_file(name, &kind) != 0) {
        snprintf(err, errlen,
                 "rank: %s: " VERSION_PARAM " \"%s\" must be a file name in the model directory "
                 "starting rank-ltr, rank-mmoe or rank-lr",
                 who, name);
        return CASCADE_EINVAL;
    }
    pthread_mutex_lock(&r->model_lock);
    struct cascade_rank__model *m = find(r->pinned, r->n_pinned, name);
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->model_lock);
    if (!m && cascade_rank__model_load(r, name, kind, &m, why, sizeof why) != 0) {
        snprintf(err, errlen, "rank: %s: " VERSION_PARAM " \"%s\": %s", who, name, why);
        return CASCADE_EINVAL;
    }
    next[(*n)++] = m;
    return 0;
}

struct collect_ctx {
    cascade_rank *r;
    struct cascade_rank__model **next;
    size_t *n;
};

static int collect_one(void *ctx, const json_t *v, const char *who, char *err, size_t errlen)
{
    struct collect_ctx *c = ctx;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "rank: %s: " VERSION_PARAM " must be a file name", who);
        return CASCADE_EINVAL;
    }
    return pin_one(c->r, json_string_value(v), who, c->next, c->n, err, errlen);
}

/* Every experiments.layers[].experiments[].params[rank.model_version]. */
static int collect(cascade_rank *r, const cascade_config *cfg, struct cascade_rank__model **next,
                   size_t *n, char *err, size_t errlen)
{
    struct collect_ctx c = {r, next, n};
    return cascade_experiments_each_param(cascade_config_get(cfg, "experiments"), VERSION_PARAM,
                                          collect_one, &c, err, errlen);
}

int cascade_rank_pin_versions(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen)
{
    struct cascade_rank__model *next[CASCADE_RANK__MAX_PINNED], *old[CASCADE_RANK__MAX_PINNED];
    size_t n = 0, n_old;
    int rc = collect(r, cfg, next, &n, err, errlen);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            cascade_rank__model_release(next[i]);
        return rc;
    }
    pthread_mutex_lock(&r->model_lock);
    n_old = r->n_pinned;
    memcpy(old, r->pinned, n_old * sizeof *old);
    memcpy(r->pinned, next, n * sizeof *next);
    r->n_pinned = n;
    pthread_mutex_unlock(&r->model_lock);
    for (size_t i = 0; i < n_old; i++) /* a request still scoring holds its own reference */
        cascade_rank__model_release(old[i]);
    for (size_t i = 0; i < n; i++)
        CASCADE_INFO(NULL, "rank: keeping model version %s loaded for experiments",
                     next[i]->version);
    return 0;
}

void cascade_rank__pinned_release(cascade_rank *r)
{
    for (size_t i = 0; i < r->n_pinned; i++)
        cascade_rank__model_release(r->pinned[i]);
    r->n_pinned = 0;
}
