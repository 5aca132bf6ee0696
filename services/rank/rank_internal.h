/* Internals shared by the Rank stage's files: the stage struct and the
 * reference-counted model holder (model.c). Not part of the stage API. */
#ifndef CASCADE_RANK_INTERNAL_H
#define CASCADE_RANK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "gbdt.h"
#include "item_cache.h"
#include "latest_file.h"
#include "lr.h"
#include "mmoe.h"
#include "rank.h"

/* Which model files the stage looks at (config rank.model). */
enum cascade_rank__choice {
    CASCADE_RANK__AUTO = 0,  /* the first of rank-ltr, rank-mmoe, rank-lr .latest that exists */
    CASCADE_RANK__MMOE,      /* rank-mmoe.latest only */
    CASCADE_RANK__LR,        /* rank-lr.latest only */
    CASCADE_RANK__HEURISTIC, /* never load a model */
    CASCADE_RANK__LTR,       /* rank-ltr.latest only */
};

/* The kinds of model file, in the order auto looks for them. */
enum cascade_rank__kind { CASCADE_RANK__KIND_LTR, CASCADE_RANK__KIND_MMOE, CASCADE_RANK__KIND_LR };

/* Served tasks in TaskScores order. */
enum { CASCADE_RANK__N_TASKS = 6, CASCADE_RANK__MAX_BUCKETS = 16 };

/* A loaded model. The holder owns one reference; each request using it
 * holds another, so a swap never frees a model a request is still using. */
struct cascade_rank__model {
    cascade_lr *lr;                  /* one of these */
    cascade_mmoe *mmoe;
    cascade_gbdt *ltr;               /* a learned ranker: its score is the rank score */
    int task[CASCADE_RANK__N_TASKS]; /* MMoE output of click..complete, -1 = not predicted */
    double neg_rate;                 /* α the click task was trained with (1 = none) */
    /* f(duration) for the completion adjustment: bucket b covers durations
     * below bucket_max[b] (and at least the previous one); rate 0 = unknown. */
    size_t n_buckets;
    float bucket_max[CASCADE_RANK__MAX_BUCKETS], bucket_rate[CASCADE_RANK__MAX_BUCKETS];
    char version[256]; /* file name */
    atomic_int refs;
};

/* Identity of the .latest file when last looked at, to notice changes. */
struct cascade_rank__latest_stat {
    struct cascade_latest_stat file;
    enum cascade_rank__kind kind; /* which pointer file it is */
};

struct cascade_rank {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    char model_dir[512];
    char heuristic_version[600];
    size_t max_candidates;
    enum cascade_rank__choice choice;
    cascade_rank_fusion_fn fusion;
    struct cascade_rank_fusion_params fusion_params;
    bool complete_adjust; /* fuse p_complete / f(duration) instead of p_complete */
    double prior_clicks, prior_impressions; /* heuristic CTR smoothing */
    bool heuristic_keep_order; /* no model: keep the incoming order (else the CTR heuristic) */
    cascade_item_cache *items;              /* item records read recently; NULL = off */

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
/* f(duration) of model m: the mean completion rate of its duration bucket
 * (1 when the model stored none). */
double cascade_rank__complete_rate(const struct cascade_rank__model *m, double duration_s);

#endif
