/* Rank model lifecycle: find the model named by <model_dir>/rank-mmoe.latest
 * (mmoe.h, plus the calibration and completion metadata train-mmoe writes)
 * or rank-lr.latest (lr.h), and swap it in under running requests (reference
 * counts: a request keeps the model it started with until it finishes). */
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

struct cascade_rank__model *cascade_rank__model_acquire(cascade_rank *r)
{
    pthread_mutex_lock(&r->model_lock);
    struct cascade_rank__model *m = r->model;
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->model_lock);
    return m;
}

void cascade_rank__model_release(struct cascade_rank__model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        cascade_lr_destroy(m->lr);
        cascade_mmoe_destroy(m->mmoe);
        cascade_gbdt_destroy(m->ltr);
        free(m);
    }
}

/* Install m (whose single reference becomes the holder's) and drop the old one. */
static void model_swap(cascade_rank *r, struct cascade_rank__model *m)
{
    pthread_mutex_lock(&r->model_lock);
    struct cascade_rank__model *old = r->model;
    r->model = m;
    pthread_mutex_unlock(&r->model_lock);
    cascade_rank__model_release(old);
}

const char *cascade_rank_model_version(cascade_rank *r, char *buf, size_t len)
{
    struct cascade_rank__model *m = cascade_rank__model_acquire(r);
    snprintf(buf, len, "%s", m ? m->version : r->heuristic_version);
    cascade_rank__model_release(m);
    return buf;
}

/* True when a and b are the same pointer file in the same state. */
static bool same_latest(const struct cascade_rank__latest_stat *a,
                        const struct cascade_rank__latest_stat *b)
{
    return a->kind == b->kind && cascade_latest_stat_same(&a->file, &b->file);
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

/* Load <model_dir>/<name> into a new holder entry. */
static int model_load(const cascade_rank *r, const char *name, enum cascade_rank__kind kind,
                      struct cascade_rank__model **out, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", r->model_dir, name);
    struct cascade_rank__model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    for (int k = 0; k < CASCADE_RANK__N_TASKS; k++)
        m->task[k] = -1;
    m->neg_rate = 1;
    snprintf(m->version, sizeof m->version, "%s", name);
    atomic_init(&m->refs, 1);
    int rc = kind == CASCADE_RANK__KIND_MMOE  ? mmoe_load(path, m, err, errlen)
             : kind == CASCADE_RANK__KIND_LTR ? ltr_load(path, m, err, errlen)
                                              : lr_load(path, m, err, errlen);
    if (rc != 0) {
        cascade_rank__model_release(m);
        return rc;
    }
    *out = m;
    return 0;
}

static const char *const latest_files[] = {
    [CASCADE_RANK__KIND_LTR] = CASCADE_RANK_LTR_LATEST_FILE,
    [CASCADE_RANK__KIND_MMOE] = CASCADE_RANK_MMOE_LATEST_FILE,
    [CASCADE_RANK__KIND_LR] = CASCADE_RANK_LATEST_FILE,
};

/* The pointer file to follow: the one rank.model names, or for auto the
 * first of rank-ltr, rank-mmoe and rank-lr .latest that exists (rank-ltr
 * when none does, so the warning names what to train). */
static enum cascade_rank__kind pick_latest(const cascade_rank *r, char *path, size_t len,
                                           struct cascade_rank__latest_stat *st)
{
    enum cascade_rank__kind only = r->choice == CASCADE_RANK__MMOE ? CASCADE_RANK__KIND_MMOE
                                   : r->choice == CASCADE_RANK__LR ? CASCADE_RANK__KIND_LR
                                                                   : CASCADE_RANK__KIND_LTR;
    enum cascade_rank__kind k = only;
    do {
        snprintf(path, len, "%s/%s", r->model_dir, latest_files[k]);
        cascade_latest_stat_get(path, &st->file);
        st->kind = k;
        if (st->file.exists || r->choice != CASCADE_RANK__AUTO)
            return k;
    } while (++k <= CASCADE_RANK__KIND_LR);
    snprintf(path, len, "%s/%s", r->model_dir, latest_files[only]);
    cascade_latest_stat_get(path, &st->file);
    st->kind = only;
    return only;
}

/* The body of a reload check; r->reload_lock is held, which also makes
 * reading r->model here safe (only this function replaces it). */
static int reload_locked(cascade_rank *r, bool force, char *err, size_t errlen)
{
    char path[1024], name[256];
    struct cascade_rank__latest_stat st;
    struct cascade_rank__model *m = NULL;
    if (r->choice == CASCADE_RANK__HEURISTIC)
        return 0;
    enum cascade_rank__kind kind = pick_latest(r, path, sizeof path, &st);
    if (!force && same_latest(&st, &r->latest))
        return 0;
    r->latest = st; /* remember it even if loading fails: one warning per change */
    if (!st.file.exists) {
        /* Keep a model already in service; a missing pointer file is not a reason to drop it. */
        if (!r->model && !atomic_exchange(&r->warned_no_model, true))
            CASCADE_WARN(NULL,
                         "rank: no %s in %s; scoring with the CTR heuristic until a model "
                         "appears",
                         latest_files[kind], r->model_dir);
        return 0;
    }
    int rc = cascade_latest_read(path, name, sizeof name, err, errlen);
    if (rc == 0)
        rc = model_load(r, name, kind, &m, err, errlen);
    if (rc != 0) {
        CASCADE_WARN(NULL,
                     "rank: cannot load the model named by %s: %s; keeping the current "
                     "scorer",
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
