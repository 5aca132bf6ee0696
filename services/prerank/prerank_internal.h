/* PreRank internals shared by prerank.c (requests) and model.c (the model
 * holder: load, reference-counted swap under running requests, reload). */
#ifndef CASCADE_PRERANK_INTERNAL_H
#define CASCADE_PRERANK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "gbdt.h"
#include "hashlr.h"
#include "item_cache.h"
#include "latest_file.h"
#include "pinset.h"
#include "prerank.h"
#include "stage_reads.h"

#define CASCADE_PRERANK__MAX_PINNED 8

/* A loaded model; freed when the last request using it releases it. */
struct cascade_prerank__model {
    cascade_hashlr *lr; /* the hashed-cross LR, or */
    cascade_gbdt *ltr;  /* the learned ranker over ltr_features.h */
    char version[256];
    atomic_int refs;
};

struct cascade_prerank {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    char model_dir[512]; /* "" = heuristic only */
    uint32_t keep;       /* default keep */
    int model_choice;    /* prerank.model: 0 auto (ltr, then lr), 1 ltr, 2 lr, 3 heuristic */
    size_t max_candidates;
    struct cascade_prerank_weights weights;
    int64_t reload_interval_ms;
    char heuristic_version[600];
    pthread_mutex_t model_lock;           /* guards model and pinned */
    struct cascade_prerank__model *model; /* NULL = heuristic */
    /* Versions experiments select by file (prerank.model_version), kept
     * loaded while the config names them (versions.c). */
    struct cascade_pinset pins;
    pthread_mutex_t reload_lock; /* one reloader at a time; guards latest */
    struct cascade_latest_stat latest;
    atomic_llong next_check_ms;
    atomic_bool warned_no_model;
    cascade_item_cache *items; /* item records read recently; NULL = off */
    /* The online counters and user events (prerank.online_counters,
     * prerank.online_user; common/stage_reads.h, docs/closed-loop.md). */
    struct cascade_stage_online online;
};

/* Take a reference to the current model (NULL: heuristic). */
struct cascade_prerank__model *cascade_prerank__model_acquire(cascade_prerank *p);
/* Take a reference to the pinned version named `version` (an experiment's
 * prerank.model_version) when it is pinned, else to the current model
 * (NULL: heuristic). The caller releases it. Thread-safe. */
struct cascade_prerank__model *cascade_prerank__model_acquire_version(cascade_prerank *p,
                                                                      const char *version);
/* Load <model_dir>/<name>, a learned ranker when ltr, else the LR, into a new
 * entry holding one reference (the caller's). 0 or a negative code with err. */
int cascade_prerank__model_load(const cascade_prerank *p, const char *name, bool ltr,
                                struct cascade_prerank__model **out, char *err, size_t errlen);
/* The empty pinned set (after model_lock is initialised). */
void cascade_prerank__pins_init(cascade_prerank *p);
/* Release every pinned version (cascade_prerank_destroy). */
void cascade_prerank__pinned_release(cascade_prerank *p);
/* Drop a reference (NULL is a no-op). */
void cascade_prerank__model_release(struct cascade_prerank__model *m);
/* Reload when the interval has passed and .latest changed; never blocks on
 * another thread's reload. Failures are logged. */
void cascade_prerank__maybe_reload(cascade_prerank *p);

#endif
