/* Internals shared by the Rank stage's files: the stage struct and the
 * reference-counted model holder (model.c). Not part of the stage API. */
#ifndef CASCADE_RANK_INTERNAL_H
#define CASCADE_RANK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "lr.h"
#include "rank.h"

/* A loaded model. The holder owns one reference; each request using it
 * holds another, so a swap never frees a model a request is still using. */
struct cascade_rank__model {
    cascade_lr *lr;
    char version[256]; /* file name */
    atomic_int refs;
};

/* Identity of the .latest file when last looked at, to notice changes. */
struct cascade_rank__latest_stat {
    bool exists;
    struct timespec mtime;
    ino_t ino;
    off_t size;
};

struct cascade_rank {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    char model_dir[512];
    char heuristic_version[600];
    size_t max_candidates;
    cascade_rank_fusion_fn fusion;
    struct cascade_rank_fusion_params fusion_params;
    double prior_clicks, prior_impressions; /* heuristic CTR smoothing */

    pthread_mutex_t model_lock;        /* guards model */
    struct cascade_rank__model *model; /* NULL = heuristic */
    pthread_mutex_t reload_lock;       /* one reloader at a time; guards latest */
    struct cascade_rank__latest_stat latest;
    int64_t reload_interval_ms;
    _Atomic int64_t next_check_ms;
    atomic_bool warned_no_model;
};

/* Take a reference to the current model (NULL = heuristic). */
struct cascade_rank__model *cascade_rank__model_acquire(cascade_rank *r);
/* Drop a reference; the last one frees the model. NULL is a no-op. */
void cascade_rank__model_release(struct cascade_rank__model *m);
/* Reload when the reload interval has passed and .latest changed; failures
 * are logged (the old model stays). */
void cascade_rank__maybe_reload(cascade_rank *r);

#endif
