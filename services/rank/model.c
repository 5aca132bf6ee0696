/* Rank model lifecycle: find the model named by <model_dir>/rank-lr.latest,
 * load it with lr.h, and swap it in under running requests (reference
 * counts: a request keeps the model it started with until it finishes). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "error.h"
#include "rank_features.h"
#include "log.h"
#include "rank_internal.h"

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

static void stat_latest(const char *path, struct cascade_rank__latest_stat *st)
{
    struct stat sb;
    memset(st, 0, sizeof *st);
    if (stat(path, &sb) != 0)
        return;
    st->exists = true;
    st->mtime = sb.st_mtim;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
}

static bool same_stat(const struct cascade_rank__latest_stat *a,
                      const struct cascade_rank__latest_stat *b)
{
    return a->exists == b->exists && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ino == b->ino && a->size == b->size;
}

/* Read the model file name from the .latest file: one line, a plain file
 * name (no '/'), surrounding whitespace ignored. */
static int read_latest(const char *path, char *name, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? CASCADE_ENOTFOUND : CASCADE_EIO;
    }
    char line[512] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *s = line;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (!ok || n == 0 || n >= len || strchr(s, '/') || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0) {
        snprintf(err, errlen, "%s: expected one model file name (no directory), got \"%.64s\"",
                 path, s);
        return CASCADE_EFORMAT;
    }
    memcpy(name, s, n + 1);
    return 0;
}

/* Load <model_dir>/<name> into a new holder entry. */
static int model_load(const cascade_rank *r, const char *name, struct cascade_rank__model **out,
                      char *err, size_t errlen)
{
    char path[1024], lerr[512] = "";
    snprintf(path, sizeof path, "%s/%s", r->model_dir, name);
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
    struct cascade_rank__model *m = calloc(1, sizeof *m);
    if (!m) {
        cascade_lr_destroy(lr);
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    m->lr = lr;
    snprintf(m->version, sizeof m->version, "%s", name);
    atomic_init(&m->refs, 1);
    *out = m;
    return 0;
}

/* The body of a reload check; r->reload_lock is held, which also makes
 * reading r->model here safe (only this function replaces it). */
static int reload_locked(cascade_rank *r, bool force, char *err, size_t errlen)
{
    char path[1024], name[256];
    struct cascade_rank__latest_stat st;
    struct cascade_rank__model *m = NULL;
    snprintf(path, sizeof path, "%s/%s", r->model_dir, CASCADE_RANK_LATEST_FILE);
    stat_latest(path, &st);
    if (!force && same_stat(&st, &r->latest))
        return 0;
    r->latest = st; /* remember it even if loading fails: one warning per change */
    if (!st.exists) {
        /* Keep a model already in service; a missing pointer file is not a reason to drop it. */
        if (!r->model && !atomic_exchange(&r->warned_no_model, true))
            CASCADE_WARN(NULL,
                         "rank: no %s in %s; scoring with the CTR heuristic until a model "
                         "appears",
                         CASCADE_RANK_LATEST_FILE, r->model_dir);
        return 0;
    }
    int rc = read_latest(path, name, sizeof name, err, errlen);
    if (rc == 0)
        rc = model_load(r, name, &m, err, errlen);
    if (rc != 0) {
        CASCADE_WARN(NULL,
                     "rank: cannot load the model named by %s: %s; keeping the current "
                     "scorer",
                     path, err);
        return rc;
    }
    model_swap(r, m);
    CASCADE_INFO(NULL, "rank: serving model %s from %s", name, r->model_dir);
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
