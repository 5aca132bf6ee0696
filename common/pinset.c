/* Pinned versions per experiment arm (see pinset.h). */
#include "pinset.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "experiments.h"
#include "log.h"

struct next_set {
    struct cascade_pinset *s;
    size_t n;
    char names[CASCADE_PINSET_MAX][CASCADE_PINSET_NAME_MAX];
    void *objs[CASCADE_PINSET_MAX];
};

static void *find_in(char (*names)[CASCADE_PINSET_NAME_MAX], void *const *objs, size_t n,
                     const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return objs[i];
    return NULL;
}

void *cascade_pinset_find_locked(const struct cascade_pinset *s, const char *name)
{
    return find_in((char(*)[CASCADE_PINSET_NAME_MAX])s->names, s->objs, s->n, name);
}

/* Add what one experiment (who) names to the next set: the object already
 * pinned (another reference) or a fresh load. */
static int pin_one(void *ctx, const json_t *v, const char *who, char *err, size_t errlen)
{
    struct next_set *x = ctx;
    struct cascade_pinset *s = x->s;
    const struct cascade_pinset_ops *ops = s->ops;
    const char *name = json_string_value(v);
    char why[1500] = "";
    if (!name || !name[0] || strlen(name) >= CASCADE_PINSET_NAME_MAX) {
        snprintf(err, errlen, "%s: %s: %s must be a version name of 1..%d characters", ops->what,
                 who, ops->key, CASCADE_PINSET_NAME_MAX - 1);
        return CASCADE_EINVAL;
    }
    if (ops->check && ops->check(s->ctx, name, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s: %s \"%s\" %s", ops->what, who, ops->key, name, why);
        return CASCADE_EINVAL;
    }
    if (find_in(x->names, x->objs, x->n, name))
        return 0;
    if (x->n == s->cap) {
        snprintf(err, errlen, "%s: %s: more than %zu versions named by experiments (%s)", ops->what,
                 who, s->cap, ops->key);
        return CASCADE_EINVAL;
    }
    pthread_mutex_lock(s->lock);
    void *obj = cascade_pinset_find_locked(s, name);
    if (obj)
        ops->ref(s->ctx, obj);
    pthread_mutex_unlock(s->lock);
    if (!obj && ops->load(s->ctx, name, &obj, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s: %s \"%s\": %s", ops->what, who, ops->key, name, why);
        return CASCADE_EINVAL;
    }
    snprintf(x->names[x->n], CASCADE_PINSET_NAME_MAX, "%s", name);
    x->objs[x->n++] = obj;
    return 0;
}

int cascade_pinset_update(struct cascade_pinset *s, const json_t *experiments, char *err,
                          size_t errlen)
{
    struct next_set x = {.s = s}; /* about 4 KiB */
    void *old[CASCADE_PINSET_MAX];
    int rc = cascade_experiments_each_param(experiments, s->ops->key, pin_one, &x, err, errlen);
    if (rc) {
        for (size_t i = 0; i < x.n; i++)
            s->ops->release(s->ctx, x.objs[i]);
        return rc;
    }
    pthread_mutex_lock(s->lock);
    size_t n_old = s->n;
    memcpy(old, s->objs, n_old * sizeof *old);
    memcpy(s->names, x.names, x.n * sizeof x.names[0]);
    memcpy(s->objs, x.objs, x.n * sizeof x.objs[0]);
    s->n = x.n;
    pthread_mutex_unlock(s->lock);
    for (size_t i = 0; i < n_old; i++) /* a request still using one holds its own reference */
        s->ops->release(s->ctx, old[i]);
    for (size_t i = 0; i < x.n; i++)
        CASCADE_INFO(NULL, "%s: keeping version %s loaded for experiments (%s)", s->ops->what,
                     x.names[i], s->ops->key);
    return 0;
}

void cascade_pinset_init(struct cascade_pinset *s, const struct cascade_pinset_ops *ops, void *ctx,
                         pthread_mutex_t *lock, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->ctx = ctx;
    s->lock = lock;
    s->cap = cap < CASCADE_PINSET_MAX ? cap : CASCADE_PINSET_MAX;
}

void cascade_pinset_clear(struct cascade_pinset *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->ops->release(s->ctx, s->objs[i]);
    s->n = 0;
}
