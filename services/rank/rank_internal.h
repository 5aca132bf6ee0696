/* Internals shared by the Rank stage's files: the stage struct and the
 * reference-counted model holder (model.c). Not part of the stage API. */
#ifndef CASCADE_RANK_INTERNAL_H
#define CASCADE_RANK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "arena.h"
#include "gbdt.h"
#include "item_cache.h"
#include "latest_file.h"
#include "lr.h"
#include "mmoe.h"
#include "pinset.h"
#include "rank.h"
#include "stage_reads.h"

/* The kinds of model file, in the order auto looks for them (one row each
 * in model.c's table of kinds). */
enum cascade_rank__kind {
    CASCADE_RANK__KIND_LTR,
    CASCADE_RANK__KIND_MMOE,
    CASCADE_RANK__KIND_LR,
    CASCADE_RANK__N_KINDS
};

/* What scores a request (config rank.model, experiment param rank.model):
 * one kind of model (the values of enum cascade_rank__kind), the first kind
 * loaded, or never a model. */
enum cascade_rank__choice {
    CASCADE_RANK__LTR = CASCADE_RANK__KIND_LTR,   /* rank-ltr.latest only */
    CASCADE_RANK__MMOE = CASCADE_RANK__KIND_MMOE, /* rank-mmoe.latest only */
    CASCADE_RANK__LR = CASCADE_RANK__KIND_LR,     /* rank-lr.latest only */
    CASCADE_RANK__AUTO = CASCADE_RANK__N_KINDS,   /* the first of ltr, mmoe, lr loaded */
    CASCADE_RANK__HEURISTIC,                      /* no model: CTR heuristic or keep order */
};

/* Most model versions experiments may keep loaded at once. */
#define CASCADE_RANK__MAX_PINNED 16

/* Served tasks in TaskScores order. */
enum { CASCADE_RANK__N_TASKS = 6, CASCADE_RANK__MAX_BUCKETS = 16 };

/* MMoE scratch buffers a model keeps between requests (model.c). */
#define CASCADE_RANK__SCRATCH_POOL 8
#define CASCADE_RANK__SCRATCH_BATCH 256

/* A loaded model. The holder owns one reference; each request using it
 * holds another, so a swap never frees a model a request is still using. */
struct cascade_rank__model {
    cascade_lr *lr; /* one of these */
    cascade_mmoe *mmoe;
    cascade_gbdt *ltr;               /* a learned ranker: its score is the rank score */
    int task[CASCADE_RANK__N_TASKS]; /* MMoE output of click..complete, -1 = not predicted */
    double neg_rate;                 /* α the click task was trained with (1 = none) */
    /* f(duration) for the completion adjustment: bucket b covers durations
     * below bucket_max[b] (and at least the previous one); rate 0 = unknown. */
    size_t n_buckets;
    float bucket_max[CASCADE_RANK__MAX_BUCKETS], bucket_rate[CASCADE_RANK__MAX_BUCKETS];
    char version[256]; /* file name */
    enum cascade_rank__kind kind;
    atomic_int refs;
    /* The MMoE's forward buffers of earlier requests, for the next ones
     * (allocating and zeroing them per request cost ~10 % of Rank). */
    pthread_mutex_t scratch_lock; /* guards scratch and n_scratch */
    cascade_mmoe_scratch *scratch[CASCADE_RANK__SCRATCH_POOL];
    size_t n_scratch;
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
    cascade_item_cache *items; /* item records read recently; NULL = off */

    pthread_mutex_t model_lock; /* guards models and pinned */
    /* Versions experiments select by file (rank.model_version), kept
     * loaded while the config names them (versions.c). */
    struct cascade_pinset pins;
    /* The model of each kind whose pointer file named a loadable one; NULL = none. */
    struct cascade_rank__model *models[CASCADE_RANK__N_KINDS];
    pthread_mutex_t reload_lock; /* one reloader at a time; guards latest */
    struct cascade_latest_stat latest[CASCADE_RANK__N_KINDS]; /* pointer files last seen */
    /* Requests scored per kind, [CASCADE_RANK__N_KINDS] = no model; NULL = no registry. */
    cascade_metric *scored[CASCADE_RANK__N_KINDS + 1];
    /* The online counters and user events (rank.online_counters,
     * rank.online_user; common/stage_reads.h, docs/closed-loop.md). */
    struct cascade_stage_online online;
    int64_t reload_interval_ms;
    _Atomic int64_t next_check_ms;
    atomic_bool warned_no_model;
};

/* Parse a rank.model value ("auto", "ltr", "mmoe", "lr", "heuristic") into
 * *out. 0, or CASCADE_EINVAL for any other name (NULL included). */
int cascade_rank__choice_parse(const char *name, enum cascade_rank__choice *out);

/* Names cascade_rank__choice_parse accepts, comma-separated. Static. */
const char *cascade_rank__choice_list(void);
/* Take a reference to the model a request is scored with (NULL = no model):
 * the pinned version named by `version` (an experiment's rank.model_version,
 * or NULL) when it is pinned; else the one `requested` (an experiment's
 * rank.model, or NULL) names when it
 * parses and resolves to a loaded model (or is "heuristic"), else the one the
 * configured choice resolves to. The caller releases it. Thread-safe. */
struct cascade_rank__model *cascade_rank__model_acquire(cascade_rank *r, const char *requested,
                                                        const char *version);

/* The kind of a model file by its name's prefix (rank-ltr, rank-mmoe,
 * rank-lr). 0 or CASCADE_EINVAL. */
int cascade_rank__kind_of_file(const char *name, enum cascade_rank__kind *out);

/* Load <model_dir>/<name> as a model of kind into a new holder entry (one
 * reference, the caller's). 0, or a negative code with err. */
int cascade_rank__model_load(const cascade_rank *r, const char *name, enum cascade_rank__kind kind,
                             struct cascade_rank__model **out, char *err, size_t errlen);

/* The empty pinned set (rank_alloc, after model_lock is initialised). */
void cascade_rank__pins_init(cascade_rank *r);
/* Release every pinned version (destroy). */
void cascade_rank__pinned_release(cascade_rank *r);
/* A scratch of CASCADE_RANK__SCRATCH_BATCH rows for m's MMoE (m->mmoe set):
 * one an earlier request gave back, else a new one; NULL when out of
 * memory. The caller owns it until cascade_rank__scratch_give. Thread-safe. */
cascade_mmoe_scratch *cascade_rank__scratch_take(struct cascade_rank__model *m);
/* Give s (NULL: no-op) back to m's pool, or free it when the pool is full.
 * The forward pass overwrites every buffer it reads, so a reused scratch
 * scores as a new one. Thread-safe. */
void cascade_rank__scratch_give(struct cascade_rank__model *m, cascade_mmoe_scratch *s);
/* Drop a reference; the last one frees the model. NULL is a no-op. */
void cascade_rank__model_release(struct cascade_rank__model *m);
/* Release every loaded model (cascade_rank_destroy). */
void cascade_rank__models_release(cascade_rank *r);
/* Reload when the reload interval has passed and .latest changed; failures
 * are logged (the old model stays). */
void cascade_rank__maybe_reload(cascade_rank *r);
/* f(duration) of model m: the mean completion rate of its duration bucket
 * (1 when the model stored none). */
double cascade_rank__complete_rate(const struct cascade_rank__model *m, double duration_s);

#endif
