/* Item vectors for ReRank: one loaded version of the published two-tower
 * item index plus an id map (idmap.h) from each id to its row, so a lookup
 * is one probe instead of a binary search over every id. Requests hold a read
 * lock while they use a version; a reload builds the new version outside
 * the lock and swaps it in under the write lock, so the old one is freed
 * only when no request reads it. */
#include "item_vectors.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "idmap.h"
#include "latest_file.h"
#include "log.h"
#include "vindex.h"

struct cascade_rerank_vecset {
    char version[128];
    cascade_vindex *index;
    cascade_idmap rows; /* id -> index row (entry.index); heap-backed */
    size_t n, dim;
};

struct cascade_rerank_vectors {
    char dir[512];
    int64_t reload_ms;
    pthread_rwlock_t lock; /* guards cur */
    struct cascade_rerank_vecset *cur;
    atomic_bool loading;
    _Atomic int64_t checked_ms; /* INT64_MIN until the first check */
};

static void vecset_free(struct cascade_rerank_vecset *s)
{
    if (!s)
        return;
    cascade_vindex_destroy(s->index);
    cascade_idmap_release(&s->rows);
    free(s);
}

/* Map every id of the index to its row. An id the index holds twice maps
 * to its first row. */
static int vecset_map(struct cascade_rerank_vecset *s)
{
    const uint64_t *ids = cascade_vindex_ids(s->index);
    if (cascade_idmap_init(&s->rows, NULL, s->n) != 0)
        return -1;
    for (size_t r = 0; r < s->n; r++) {
        bool created;
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&s->rows, ids[r], &created);
        if (!e)
            return -1;
        if (created)
            e->index = (uint32_t)r;
    }
    return 0;
}

static struct cascade_rerank_vecset *vecset_load(const char *dir, const char *version, char *err,
                                                 size_t errlen)
{
    char path[1200];
    struct cascade_rerank_vecset *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->version, sizeof s->version, "%s", version);
    snprintf(path, sizeof path, "%s/%s.items.safetensors", dir, version);
    if (!(s->index = cascade_vindex_load(path, err, errlen)))
        goto fail;
    s->n = cascade_vindex_size(s->index);
    s->dim = cascade_vindex_dim(s->index);
    if (s->n > UINT32_MAX) {
        snprintf(err, errlen, "%s: %zu items, more than a ReRank lookup holds", path, s->n);
        goto fail;
    }
    if (vecset_map(s) != 0) {
        snprintf(err, errlen, "%s: out of memory mapping %zu ids", path, s->n);
        goto fail;
    }
    return s;
fail:
    vecset_free(s);
    return NULL;
}

/* Load the version two-tower.latest names when it is not the current one;
 * a failure keeps the current version. One thread at a time. */
static void maybe_reload(cascade_rerank_vectors *v)
{
    char version[128], path[600], err[2048];
    snprintf(path, sizeof path, "%s/two-tower.latest", v->dir);
    if (cascade_latest_read(path, version, sizeof version, err, sizeof err) != 0)
        return;
    pthread_rwlock_rdlock(&v->lock);
    bool same = v->cur && strcmp(v->cur->version, version) == 0;
    pthread_rwlock_unlock(&v->lock);
    if (same)
        return;
    struct cascade_rerank_vecset *s = vecset_load(v->dir, version, err, sizeof err);
    if (!s) {
        cascade_log(CASCADE_LOG_WARN, NULL, "rerank: item vectors: cannot load %s: %s", version,
                    err);
        return;
    }
    pthread_rwlock_wrlock(&v->lock);
    struct cascade_rerank_vecset *old = v->cur;
    v->cur = s;
    pthread_rwlock_unlock(&v->lock);
    vecset_free(old);
    cascade_log(CASCADE_LOG_INFO, NULL, "rerank: item vectors: serving %s (%zu items, dim %zu)",
                version, s->n, s->dim);
}

cascade_rerank_vectors *cascade_rerank_vectors_create(const char *dir, int64_t reload_ms)
{
    cascade_rerank_vectors *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    snprintf(v->dir, sizeof v->dir, "%s", dir ? dir : "");
    v->reload_ms = reload_ms;
    atomic_init(&v->loading, false);
    atomic_init(&v->checked_ms, INT64_MIN);
    /* Writer preference: a reload waits only for the requests already
     * reading, instead of for a moment when no request reads at all. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&v->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(v);
        return NULL;
    }
    cascade_rerank_vectors_release(v, cascade_rerank_vectors_acquire(v));
    return v;
}

void cascade_rerank_vectors_destroy(cascade_rerank_vectors *v)
{
    if (!v)
        return;
    vecset_free(v->cur);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

const struct cascade_rerank_vecset *cascade_rerank_vectors_acquire(cascade_rerank_vectors *v)
{
    if (!v || !v->dir[0])
        return NULL;
    int64_t now = cascade_now_ms(), last = atomic_load(&v->checked_ms);
    if ((last == INT64_MIN || now - last >= v->reload_ms) && !atomic_exchange(&v->loading, true)) {
        atomic_store(&v->checked_ms, now);
        maybe_reload(v);
        atomic_store(&v->loading, false);
    }
    pthread_rwlock_rdlock(&v->lock);
    if (!v->cur) {
        pthread_rwlock_unlock(&v->lock);
        return NULL;
    }
    return v->cur;
}

void cascade_rerank_vectors_release(cascade_rerank_vectors *v,
                                    const struct cascade_rerank_vecset *set)
{
    if (v && set)
        pthread_rwlock_unlock(&v->lock);
}

const float *cascade_rerank_vectors_find(const struct cascade_rerank_vecset *set, uint64_t id,
                                         size_t *dim)
{
    if (!set)
        return NULL;
    const struct cascade_idmap_entry *e = cascade_idmap_find(&set->rows, id);
    if (!e)
        return NULL;
    *dim = set->dim;
    return cascade_vindex_vectors(set->index) + (size_t)e->index * set->dim;
}

const char *cascade_rerank_vectors_version(const struct cascade_rerank_vecset *set)
{
    return set ? set->version : "";
}

size_t cascade_rerank_vectors_count(const struct cascade_rerank_vecset *set)
{
    return set ? set->n : 0;
}
