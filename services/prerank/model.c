/* PreRank model lifecycle: the hashed-feature LR named by
 * <model_dir>/prerank-lr.latest (common/latest_file.h), swapped in under
 * running requests with reference counts, as the Rank service does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "gate_record.h"
#include "log.h"
#include "ltr_features.h"
#include "prerank_internal.h"

struct cascade_prerank__model *cascade_prerank__model_acquire(cascade_prerank *p)
{
    pthread_mutex_lock(&p->model_lock);
    struct cascade_prerank__model *m = p->model;
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&p->model_lock);
    return m;
}

struct cascade_prerank__model *cascade_prerank__model_acquire_version(cascade_prerank *p,
                                                                      const char *version)
{
    pthread_mutex_lock(&p->model_lock);
    struct cascade_prerank__model *m = cascade_pinset_find_locked(&p->pins, version);
    if (!m)
        m = p->model;
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&p->model_lock);
    return m;
}

void cascade_prerank__model_release(struct cascade_prerank__model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        cascade_hashlr_destroy(m->lr);
        cascade_gbdt_destroy(m->ltr);
        free(m);
    }
}

static void model_swap(cascade_prerank *p, struct cascade_prerank__model *m)
{
    pthread_mutex_lock(&p->model_lock);
    struct cascade_prerank__model *old = p->model;
    p->model = m;
    pthread_mutex_unlock(&p->model_lock);
    cascade_prerank__model_release(old);
}

const char *cascade_prerank_model_version(cascade_prerank *p, char *buf, size_t len)
{
    struct cascade_prerank__model *m = cascade_prerank__model_acquire(p);
    snprintf(buf, len, "%s", m ? m->version : p->heuristic_version);
    cascade_prerank__model_release(m);
    return buf;
}

/* The hashed-cross LR at path; its feature spec must be the one we compute. */
static int lr_load(const char *path, struct cascade_prerank__model *m, char *err, size_t errlen)
{
    cascade_hashlr *lr = cascade_hashlr_load(path, err, errlen);
    if (!lr)
        return CASCADE_EIO;
    if (strcmp(cascade_hashlr_spec(lr), CASCADE_PRERANK_SPEC) != 0) {
        snprintf(err, errlen, "%s: feature spec \"%s\", this server computes \"%s\"", path,
                 cascade_hashlr_spec(lr), CASCADE_PRERANK_SPEC);
        cascade_hashlr_destroy(lr);
        return CASCADE_EFORMAT;
    }
    m->lr = lr;
    return 0;
}

int cascade_prerank__model_load(const cascade_prerank *p, const char *name, bool ltr,
                                struct cascade_prerank__model **out, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", p->model_dir, name);
    struct cascade_prerank__model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    int rc =
        ltr ? cascade_ltr_model_load(path, &m->ltr, err, errlen) : lr_load(path, m, err, errlen);
    if (rc != 0) {
        free(m);
        return rc;
    }
    snprintf(m->version, sizeof m->version, "%s", ltr ? name : cascade_hashlr_version(m->lr));
    atomic_init(&m->refs, 1);
    *out = m;
    return 0;
}

/* The pointer file prerank.model names; for auto prerank-ltr.latest when it
 * exists, else prerank-lr.latest. *ltr says which kind it is. */
static void pick_latest(const cascade_prerank *p, char *path, size_t len,
                        struct cascade_latest_stat *st, bool *ltr)
{
    *ltr = p->model_choice != 2;
    snprintf(path, len, "%s/%s", p->model_dir,
             *ltr ? CASCADE_PRERANK_LTR_LATEST_FILE : CASCADE_PRERANK_LATEST_FILE);
    cascade_latest_stat_get(path, st);
    if (p->model_choice == 0 && !st->exists) {
        *ltr = false;
        snprintf(path, len, "%s/%s", p->model_dir, CASCADE_PRERANK_LATEST_FILE);
        cascade_latest_stat_get(path, st);
    }
}

/* One reload check with reload_lock held (only this replaces p->model). */
static int reload_locked(cascade_prerank *p, bool force, char *err, size_t errlen)
{
    char path[1024], name[256];
    struct cascade_latest_stat st;
    struct cascade_prerank__model *m = NULL;
    bool ltr;
    if (!p->model_dir[0] || p->model_choice == 3)
        return 0;
    pick_latest(p, path, sizeof path, &st, &ltr);
    if (!force && cascade_latest_stat_same(&st, &p->latest))
        return 0;
    p->latest = st; /* remember it even if loading fails: one warning per change */
    if (!st.exists) {
        if (!p->model && !atomic_exchange(&p->warned_no_model, true))
            CASCADE_WARN(NULL,
                         "prerank: no %s in %s; scoring with the heuristic until a model "
                         "appears",
                         ltr ? CASCADE_PRERANK_LTR_LATEST_FILE : CASCADE_PRERANK_LATEST_FILE,
                         p->model_dir);
        return 0;
    }
    int rc = cascade_latest_read(path, name, sizeof name, err, errlen);
    if (rc == 0)
        rc = cascade_prerank__model_load(p, name, ltr, &m, err, errlen);
    if (rc != 0) {
        CASCADE_WARN(NULL,
                     "prerank: cannot load the model named by %s: %s; keeping the current "
                     "scorer",
                     path, err);
        return rc;
    }
    model_swap(p, m);
    char model_path[1400], gate[900];
    snprintf(model_path, sizeof model_path, "%s/%s", p->model_dir, name);
    cascade_gate_record_describe(model_path, gate, sizeof gate);
    CASCADE_INFO(NULL, "prerank: serving model %s from %s (%s)", name, p->model_dir, gate);
    return 0;
}

int cascade_prerank_reload(cascade_prerank *p, bool force, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->reload_lock);
    atomic_store(&p->next_check_ms, cascade_now_ms() + p->reload_interval_ms);
    int rc = reload_locked(p, force, err, errlen);
    pthread_mutex_unlock(&p->reload_lock);
    return rc;
}

void cascade_prerank__maybe_reload(cascade_prerank *p)
{
    char err[512];
    int64_t now = cascade_now_ms();
    if (!p->model_dir[0] || now < atomic_load(&p->next_check_ms))
        return;
    if (pthread_mutex_trylock(&p->reload_lock) != 0)
        return;
    atomic_store(&p->next_check_ms, now + p->reload_interval_ms);
    (void)reload_locked(p, false, err, sizeof err);
    pthread_mutex_unlock(&p->reload_lock);
}
