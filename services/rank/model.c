/* Rank model lifecycle: keep the model each pointer file names —
 * rank-ltr.latest (gbdt.h over ltr_features.h), rank-mmoe.latest (mmoe.h, plus
 * the calibration and completion metadata train-mmoe writes), rank-lr.latest
 * (lr.h) — swap each in under running requests (reference counts: a request
 * keeps the model it started with until it finishes), and pick the one a
 * request is scored with (config or experiment rank.model). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "gate_record.h"
#include "latest_file.h"
#include "ltr_features.h"
#include "rank_features.h"
#include "log.h"
#include "rank_internal.h"
#include "safetensors.h"

void cascade_rank__model_release(struct cascade_rank__model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        for (size_t i = 0; i < m->n_scratch; i++)
            cascade_mmoe_scratch_destroy(m->scratch[i]);
        pthread_mutex_destroy(&m->scratch_lock);
        cascade_lr_destroy(m->lr);
        cascade_mmoe_destroy(m->mmoe);
        cascade_gbdt_destroy(m->ltr);
        free(m);
    }
}

cascade_mmoe_scratch *cascade_rank__scratch_take(struct cascade_rank__model *m)
{
    cascade_mmoe_scratch *s = NULL;
    pthread_mutex_lock(&m->scratch_lock);
    if (m->n_scratch > 0)
        s = m->scratch[--m->n_scratch];
    pthread_mutex_unlock(&m->scratch_lock);
    return s ? s : cascade_mmoe_scratch_create(m->mmoe, CASCADE_RANK__SCRATCH_BATCH);
}

void cascade_rank__scratch_give(struct cascade_rank__model *m, cascade_mmoe_scratch *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&m->scratch_lock);
    if (m->n_scratch < CASCADE_RANK__SCRATCH_POOL) {
        m->scratch[m->n_scratch++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&m->scratch_lock);
    cascade_mmoe_scratch_destroy(s);
}

void cascade_rank__models_release(cascade_rank *r)
{
    for (int k = 0; k < CASCADE_RANK__N_KINDS; k++) {
        cascade_rank__model_release(r->models[k]);
        r->models[k] = NULL;
    }
}

/* An LR model of the rank features. */
static int lr_load(const char *path, struct cascade_rank__model *m, char *err, size_t errlen)
{
    char lerr[512] = "";
    cascade_lr *lr = cascade_lr_load(path, lerr, sizeof lerr);
    if (!lr) {
        snprintf(err, errlen, "%s", lerr[0] ? lerr : path);
        return CASCADE_EIO;
    }
    if (cascade_lr_dim(lr) != CASCADE_RANK_FEATURES) {
        snprintf(err, errlen, "%s: model has %zu inputs, the rank features are %d", path,
                 cascade_lr_dim(lr), CASCADE_RANK_FEATURES);
        cascade_lr_destroy(lr);
        return CASCADE_EFORMAT;
    }
    m->lr = lr;
    m->task[0] = 0;
    return 0;
}

/* "15:0.8,30:0.6,inf:0.2": upper duration edge and mean completion rate per
 * bucket, edges ascending. */
static int parse_buckets(const char *s, struct cascade_rank__model *m)
{
    m->n_buckets = 0;
    while (s && *s) {
        char *end;
        if (m->n_buckets == CASCADE_RANK__MAX_BUCKETS)
            return CASCADE_EFORMAT;
        double edge = strtod(s, &end);
        if (end == s || *end != ':')
            return CASCADE_EFORMAT;
        s = end + 1;
        double rate = strtod(s, &end);
        if (end == s || !(rate >= 0 && rate <= 1) || (*end && *end != ','))
            return CASCADE_EFORMAT;
        m->bucket_max[m->n_buckets] = (float)edge;
        m->bucket_rate[m->n_buckets++] = (float)rate;
        s = *end ? end + 1 : end;
    }
    return 0;
}

/* The metadata train-mmoe adds: neg_sample_rate (α of the click task) and
 * complete_rate_by_duration (f of the completion adjustment). Both optional. */
static int mmoe_meta(const char *path, struct cascade_rank__model *m, char *err, size_t errlen)
{
    char lerr[512] = "";
    cascade_safetensors *st = cascade_safetensors_read(path, lerr, sizeof lerr);
    if (!st) {
        snprintf(err, errlen, "%s", lerr);
        return CASCADE_EIO;
    }
    int rc = 0;
    const char *alpha = cascade_safetensors_meta(st, "neg_sample_rate");
    const char *buckets = cascade_safetensors_meta(st, "complete_rate_by_duration");
    m->neg_rate = 1;
    if (alpha) {
        char *end;
        m->neg_rate = strtod(alpha, &end);
        if (*end || !(m->neg_rate > 0 && m->neg_rate <= 1)) {
            snprintf(err, errlen, "%s: metadata neg_sample_rate \"%.32s\" is not in (0, 1]", path,
                     alpha);
            rc = CASCADE_EFORMAT;
        }
    }
    if (rc == 0 && buckets && parse_buckets(buckets, m) != 0) {
        snprintf(err, errlen,
                 "%s: metadata complete_rate_by_duration \"%.64s\" is not edge:rate,...", path,
                 buckets);
        rc = CASCADE_EFORMAT;
    }
    cascade_safetensors_destroy(st);
    return rc;
}

static int mmoe_load(const char *path, struct cascade_rank__model *m, char *err, size_t errlen)
{
    static const char *const names[CASCADE_RANK__N_TASKS] = {"click", "like",       "collect",
                                                             "share", "watch_time", "complete"};
    char lerr[512] = "";
    cascade_mmoe *mm = cascade_mmoe_load(path, lerr, sizeof lerr);
    if (!mm) {
        snprintf(err, errlen, "%s", lerr[0] ? lerr : path);
        return CASCADE_EIO;
    }
    m->mmoe = mm;
    if (cascade_mmoe_config(mm)->input_dim != CASCADE_RANK_FEATURES) {
        snprintf(err, errlen, "%s: model has %zu inputs, the rank features are %d", path,
                 cascade_mmoe_config(mm)->input_dim, CASCADE_RANK_FEATURES);
        return CASCADE_EFORMAT;
    }
    for (int k = 0; k < CASCADE_RANK__N_TASKS; k++) {
        m->task[k] = cascade_mmoe_task_index(mm, names[k]);
        if (m->task[k] >= 0 && (cascade_mmoe_config(mm)->tasks[m->task[k]].kind ==
                                CASCADE_MMOE_WATCH_TIME) != (k == 4)) {
            snprintf(err, errlen, "%s: task %s has the wrong kind", path, names[k]);
            return CASCADE_EFORMAT;
        }
    }
    return mmoe_meta(path, m, err, errlen);
}

/* A learned ranker over the ltr features (ltr_features.h). */
static int ltr_load(const char *path, struct cascade_rank__model *m, char *err, size_t errlen)
{
    return cascade_ltr_model_load(path, &m->ltr, err, errlen);
}

double cascade_rank__complete_rate(const struct cascade_rank__model *m, double duration_s)
{
    for (size_t b = 0; m && b < m->n_buckets; b++)
        if (duration_s < m->bucket_max[b] || b + 1 == m->n_buckets)
            return m->bucket_rate[b] > 0.01f ? m->bucket_rate[b] : 0.01;
    return 1;
}

/* One row per kind of model: its rank.model name, its pointer file and its
 * loader (fills m from the file at path; 0 or a negative code with err). */
static const struct kind_desc {
    const char *name;
    const char *latest;
    int (*load)(const char *path, struct cascade_rank__model *m, char *err, size_t errlen);
} kinds[CASCADE_RANK__N_KINDS] = {
    [CASCADE_RANK__KIND_LTR] = {"ltr", CASCADE_RANK_LTR_LATEST_FILE, ltr_load},
    [CASCADE_RANK__KIND_MMOE] = {"mmoe", CASCADE_RANK_MMOE_LATEST_FILE, mmoe_load},
    [CASCADE_RANK__KIND_LR] = {"lr", CASCADE_RANK_LATEST_FILE, lr_load},
};

int cascade_rank__choice_parse(const char *name, enum cascade_rank__choice *out)
{
    if (!name)
        return CASCADE_EINVAL;
    for (int k = 0; k < CASCADE_RANK__N_KINDS; k++)
        if (strcmp(name, kinds[k].name) == 0) {
            *out = (enum cascade_rank__choice)k;
            return 0;
        }
    if (strcmp(name, "auto") == 0)
        *out = CASCADE_RANK__AUTO;
    else if (strcmp(name, "heuristic") == 0)
        *out = CASCADE_RANK__HEURISTIC;
    else
        return CASCADE_EINVAL;
    return 0;
}

const char *cascade_rank__choice_list(void)
{
    return "auto, ltr, mmoe, lr, heuristic";
}

/* The loaded model choice c resolves to (NULL = none). model_lock held, or
 * reload_lock (only the reloader replaces models). */
static struct cascade_rank__model *resolve_locked(const cascade_rank *r,
                                                  enum cascade_rank__choice c)
{
    if (c < CASCADE_RANK__AUTO) /* one kind */
        return r->models[c];
    for (int k = 0; c == CASCADE_RANK__AUTO && k < CASCADE_RANK__N_KINDS; k++)
        if (r->models[k])
            return r->models[k];
    return NULL;
}

struct cascade_rank__model *cascade_rank__model_acquire(cascade_rank *r, const char *requested,
                                                        const char *version)
{
    enum cascade_rank__choice c;
    pthread_mutex_lock(&r->model_lock);
    struct cascade_rank__model *p = cascade_pinset_find_locked(&r->pins, version);
    if (p) {
        atomic_fetch_add(&p->refs, 1);
        pthread_mutex_unlock(&r->model_lock);
        return p;
    }
    struct cascade_rank__model *m = resolve_locked(r, r->choice);
    /* A request's choice counts when it names something there is; else the configured one. */
    if (cascade_rank__choice_parse(requested, &c) == 0 &&
        (c == CASCADE_RANK__HEURISTIC || resolve_locked(r, c)))
        m = resolve_locked(r, c);
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->model_lock);
    return m;
}

const char *cascade_rank_model_version(cascade_rank *r, char *buf, size_t len)
{
    struct cascade_rank__model *m = cascade_rank__model_acquire(r, NULL, NULL);
    snprintf(buf, len, "%s", m ? m->version : r->heuristic_version);
    cascade_rank__model_release(m);
    return buf;
}

/* Install m (whose single reference becomes the holder's) as the model of
 * its kind and drop the one it replaces. */
static void model_swap(cascade_rank *r, struct cascade_rank__model *m)
{
    pthread_mutex_lock(&r->model_lock);
    struct cascade_rank__model *old = r->models[m->kind];
    r->models[m->kind] = m;
    pthread_mutex_unlock(&r->model_lock);
    cascade_rank__model_release(old);
}

int cascade_rank__kind_of_file(const char *name, enum cascade_rank__kind *out)
{
    /* Compare with the separator, so rank-lr does not take rank-ltr files. */
    static const char *const prefixes[CASCADE_RANK__N_KINDS] = {
        [CASCADE_RANK__KIND_LTR] = "rank-ltr",
        [CASCADE_RANK__KIND_MMOE] = "rank-mmoe",
        [CASCADE_RANK__KIND_LR] = "rank-lr"};
    for (int k = 0; name && k < CASCADE_RANK__N_KINDS; k++) {
        size_t n = strlen(prefixes[k]);
        if (strncmp(name, prefixes[k], n) == 0 && (name[n] == '-' || name[n] == '.')) {
            *out = (enum cascade_rank__kind)k;
            return 0;
        }
    }
    return CASCADE_EINVAL;
}

int cascade_rank__model_load(const cascade_rank *r, const char *name, enum cascade_rank__kind kind,
                             struct cascade_rank__model **out, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", r->model_dir, name);
    struct cascade_rank__model *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->scratch_lock, NULL) != 0) {
        free(m);
        m = NULL;
    }
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    for (int k = 0; k < CASCADE_RANK__N_TASKS; k++)
        m->task[k] = -1;
    m->neg_rate = 1;
    snprintf(m->version, sizeof m->version, "%s", name);
    m->kind = kind;
    atomic_init(&m->refs, 1);
    int rc = kinds[kind].load(path, m, err, errlen);
    if (rc != 0) {
        cascade_rank__model_release(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Check the pointer file of one kind and load the model it names when it
 * changed (or force). A missing pointer file keeps the model already loaded:
 * it is no reason to drop one. 0, or a negative code with err (the previous
 * model of that kind stays). reload_lock held. */
static int reload_kind(cascade_rank *r, enum cascade_rank__kind kind, bool force, char *err,
                       size_t errlen)
{
    char path[1024], name[256];
    struct cascade_latest_stat st;
    struct cascade_rank__model *m = NULL;
    snprintf(path, sizeof path, "%s/%s", r->model_dir, kinds[kind].latest);
    cascade_latest_stat_get(path, &st);
    if (!force && cascade_latest_stat_same(&st, &r->latest[kind]))
        return 0;
    r->latest[kind] = st; /* remember it even if loading fails: one warning per change */
    if (!st.exists)
        return 0;
    int rc = cascade_latest_read(path, name, sizeof name, err, errlen);
    if (rc == 0)
        rc = cascade_rank__model_load(r, name, kind, &m, err, errlen);
    if (rc != 0) {
        CASCADE_WARN(NULL, "rank: cannot load the model named by %s: %s; keeping the current one",
                     path, err);
        return rc;
    }
    model_swap(r, m);
    char model_path[1400], gate[900];
    snprintf(model_path, sizeof model_path, "%s/%s", r->model_dir, name);
    cascade_gate_record_describe(model_path, gate, sizeof gate);
    CASCADE_INFO(NULL, "rank: serving model %s from %s (%s)", name, r->model_dir, gate);
    return 0;
}

/* The body of a reload check: every kind, so an experiment can pick any
 * model published (rank.model = heuristic included). Returns the first
 * failure. reload_lock held, which also makes reading r->models here safe
 * (only reload_kind replaces them). */
static int reload_locked(cascade_rank *r, bool force, char *err, size_t errlen)
{
    int first = 0;
    for (int k = 0; k < CASCADE_RANK__N_KINDS; k++) {
        char kerr[1200] = ""; /* room for a model path (1023) and the reason */
        int rc = reload_kind(r, (enum cascade_rank__kind)k, force, kerr, sizeof kerr);
        if (rc != 0 && first == 0) {
            first = rc;
            snprintf(err, errlen, "%s", kerr);
        }
    }
    /* The configured choice has nothing to score with: say what to train,
     * once (for auto the first kind it looks for). */
    if (r->choice != CASCADE_RANK__HEURISTIC && !resolve_locked(r, r->choice) &&
        !atomic_exchange(&r->warned_no_model, true))
        CASCADE_WARN(
            NULL, "rank: no %s in %s; scoring with the heuristic until a model appears",
            kinds[r->choice == CASCADE_RANK__AUTO ? CASCADE_RANK__KIND_LTR : r->choice].latest,
            r->model_dir);
    return first;
}

int cascade_rank_reload(cascade_rank *r, bool force, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->reload_lock);
    atomic_store(&r->next_check_ms, cascade_now_ms() + r->reload_interval_ms);
    int rc = reload_locked(r, force, err, errlen);
    pthread_mutex_unlock(&r->reload_lock);
    return rc;
}

void cascade_rank__maybe_reload(cascade_rank *r)
{
    char err[512];
    int64_t now = cascade_now_ms();
    if (now < atomic_load(&r->next_check_ms))
        return;
    /* Another thread is already checking: carry on with the current model. */
    if (pthread_mutex_trylock(&r->reload_lock) != 0)
        return;
    atomic_store(&r->next_check_ms, now + r->reload_interval_ms);
    (void)reload_locked(r, false, err, sizeof err);
    pthread_mutex_unlock(&r->reload_lock);
}
