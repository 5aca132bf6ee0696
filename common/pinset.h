/* Pinned versions per experiment arm: the objects (model versions) that the
 * experiments of a config name under one parameter key (rank.model_version,
 * prerank.model_version, recall.two_tower.model_version), each loaded once
 * and kept while some experiment names it, so two versions serve side by
 * side. The owner says how to check a name, load, reference and release an
 * object; the set is rebuilt from the config at start and on every reload:
 * a name still there keeps its object, a new one is loaded before anything
 * changes, and on any error nothing changes.
 *
 * Thread-safety: the entries are guarded by the owner's mutex (`lock`, the
 * one that guards its other models); cascade_pinset_update takes it only to
 * swap, and loads outside it. One updater at a time (the reload thread). */
#ifndef CASCADE_PINSET_H
#define CASCADE_PINSET_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#define CASCADE_PINSET_MAX 16
#define CASCADE_PINSET_NAME_MAX 256

struct cascade_pinset_ops {
    const char *what; /* message prefix: "rank", "prerank", "recall: two_tower" */
    const char *key;  /* the experiment parameter: "rank.model_version" */
    /* 0 when name may be loaded, else CASCADE_EINVAL with why (e.g. "must be
     * a file name in the model directory starting rank-lr"). May be NULL. */
    int (*check)(void *ctx, const char *name, char *why, size_t len);
    /* Load name into a new object holding one reference (the caller's). */
    int (*load)(void *ctx, const char *name, void **out, char *why, size_t len);
    /* Take one reference; called with the owner's lock held. */
    void (*ref)(void *ctx, void *obj);
    /* Drop one reference; called without the lock. */
    void (*release)(void *ctx, void *obj);
};

struct cascade_pinset {
    const struct cascade_pinset_ops *ops; /* borrowed, static */
    void *ctx;                            /* passed to every op */
    pthread_mutex_t *lock;                /* borrowed: the owner's */
    size_t cap;                           /* at most CASCADE_PINSET_MAX */
    size_t n;
    char names[CASCADE_PINSET_MAX][CASCADE_PINSET_NAME_MAX];
    void *objs[CASCADE_PINSET_MAX]; /* one reference each */
};

/* An empty set of at most cap (clamped to CASCADE_PINSET_MAX) objects. */
void cascade_pinset_init(struct cascade_pinset *s, const struct cascade_pinset_ops *ops, void *ctx,
                         pthread_mutex_t *lock, size_t cap);

/* Make the set what the "experiments" section (NULL: none) names under
 * ops->key. 0, or CASCADE_EINVAL with "<what>: layer \"L\" experiment \"X\":
 * <key> \"<name>\": <why>" in err and the set unchanged. */
int cascade_pinset_update(struct cascade_pinset *s, const json_t *experiments, char *err,
                          size_t errlen);

/* With the owner's lock held: the object pinned under name (NULL name or
 * not pinned: NULL). No reference is taken. */
void *cascade_pinset_find_locked(const struct cascade_pinset *s, const char *name);

/* Release every object (the owner's destroy). */
void cascade_pinset_clear(struct cascade_pinset *s);

#endif
