/* Model versions per experiment arm for pre-rank: the files the config's
 * experiments name in prerank.model_version stay loaded (pinned) beside the
 * .latest model, as rank.model_version does for Rank (services/rank). The
 * set is rebuilt from the config at create and on every reload; a version
 * still named keeps its loaded model, a new one is loaded before anything
 * changes. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "experiments.h"
#include "log.h"
#include "prerank_internal.h"

#define VERSION_PARAM "prerank.model_version"

struct pin_set {
    cascade_prerank *p;
    struct cascade_prerank__model *next[CASCADE_PRERANK__MAX_PINNED];
    size_t n;
};

static struct cascade_prerank__model *find(struct cascade_prerank__model *const *set, size_t n,
                                           const char *file)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i]->file, file) == 0)
            return set[i];
    return NULL;
}

/* The kind of a version file by its name: prerank-ltr (learned ranker) or
 * prerank-lr (hashed LR). 0 or CASCADE_EINVAL. */
static int kind_of_file(const char *name, bool *ltr)
{
    if (strchr(name, '/') || !*name)
        return CASCADE_EINVAL;
    *ltr = strncmp(name, "prerank-ltr", 11) == 0;
    return *ltr || strncmp(name, "prerank-lr", 10) == 0 ? 0 : CASCADE_EINVAL;
}

/* Add the version named by one experiment (who) to the next set: the model
 * already pinned (another reference), or a fresh load. */
static int pin_one(void *ctx, const json_t *v, const char *who, char *err, size_t errlen)
{
    struct pin_set *s = ctx;
    char why[1200];
    bool ltr;
    const char *name = json_string_value(v);
    if (!name || kind_of_file(name, &ltr) != 0) {
        snprintf(err, errlen,
                 "prerank: %s: " VERSION_PARAM " must be a file name in the model directory "
                 "starting prerank-lr or prerank-ltr, got %s%.200s%s",
                 who, name ? "\"" : "", name ? name : "a non-string", name ? "\"" : "");
        return CASCADE_EINVAL;
    }
    if (find(s->next, s->n, name))
        return 0;
    if (s->n == CASCADE_PRERANK__MAX_PINNED) {
        snprintf(err, errlen, "prerank: %s: more than %d model versions named by experiments",
                 who, CASCADE_PRERANK__MAX_PINNED);
        return CASCADE_EINVAL;
    }
    if (!s->p->model_dir[0]) {
        snprintf(err, errlen, "prerank: %s: " VERSION_PARAM " \"%s\" needs a model directory",
                 who, name);
        return CASCADE_EINVAL;
    }
    pthread_mutex_lock(&s->p->model_lock);
    struct cascade_prerank__model *m = find(s->p->pinned, s->p->n_pinned, name);
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&s->p->model_lock);
    if (!m && cascade_prerank__model_load(s->p, name, ltr, &m, why, sizeof why) != 0) {
        snprintf(err, errlen, "prerank: %s: " VERSION_PARAM " \"%s\": %s", who, name, why);
        return CASCADE_EINVAL;
    }
    s->next[s->n++] = m;
    return 0;
}

int cascade_prerank_pin_versions(cascade_prerank *p, const cascade_config *cfg, char *err,
                                 size_t errlen)
{
    struct pin_set s = {.p = p};
    struct cascade_prerank__model *old[CASCADE_PRERANK__MAX_PINNED];
    int rc = cascade_experiments_each_param(cascade_config_get(cfg, "experiments"),
                                            VERSION_PARAM, pin_one, &s, err, errlen);
    if (rc) {
        for (size_t i = 0; i < s.n; i++)
            cascade_prerank__model_release(s.next[i]);
        return rc;
    }
    pthread_mutex_lock(&p->model_lock);
    size_t n_old = p->n_pinned;
    memcpy(old, p->pinned, n_old * sizeof *old);
    memcpy(p->pinned, s.next, s.n * sizeof *s.next);
    p->n_pinned = s.n;
    pthread_mutex_unlock(&p->model_lock);
    for (size_t i = 0; i < n_old; i++) /* a request still scoring holds its own reference */
        cascade_prerank__model_release(old[i]);
    for (size_t i = 0; i < s.n; i++)
        CASCADE_INFO(NULL, "prerank: keeping model version %s loaded for experiments",
                     s.next[i]->file);
    return 0;
}

void cascade_prerank__pinned_release(cascade_prerank *p)
{
    for (size_t i = 0; i < p->n_pinned; i++)
        cascade_prerank__model_release(p->pinned[i]);
    p->n_pinned = 0;
}
