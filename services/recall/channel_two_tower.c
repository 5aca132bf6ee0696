/* Recall channel "two_tower": the newest model published by cascade-build
 * train-two-tower (model-dir/two-tower.latest → model, id maps, item index),
 * reloaded when latest changes; per request the user vector from the profile
 * and the last-n items, an IVF search (exact when lists run short), the last-n
 * items excluded, cosine scores. Layout in docs/twotower.md §6.
 * Items added online (PutItems, {ns}:items:online) get a vector from the
 * loaded model's item tower (their id row is 0 unless the model knows them:
 * the cold-start path) and are searched exactly beside the index; they are
 * polled every reload_ms and recomputed for every new model version
 * (docs/closed-loop.md, "Item ingestion"). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "experiments.h"
#include "pinset.h"
#include "gate_record.h"
#include "hash.h"
#include "latest_file.h"
#include "log.h"
#include "recall_internal.h"
#include "store.h"
#include "twotower.h"
#include "twotower_maps.h"
#include "vindex.h"

/* The user tower's gender buckets; must match CASCADE_TT_GENDERS of
 * services/builder/train/train_twotower.h, which trained the model. The age
 * buckets are common/ml/twotower_maps.h's, shared with the trainer. */
#define TT_GENDERS 4

/* ------------------------------------------------------------ a loaded version */

/* Items added online ({ns}:items:online), with vectors of this version's
 * model; searched by an exact scan. The lock guards the arrays (requests
 * read, the poll writes); seen is the highest revision applied. */
struct tt_online {
    pthread_rwlock_t lock;
    uint64_t *ids;
    float *vecs; /* n × dim */
    size_t n, cap;
    uint64_t seen;
    /* The online items the index also holds (changed items the model
     * knows): their index copy is skipped. Usually few, so searched linearly. */
    uint64_t *known;
    size_t n_known, cap_known;
};

struct tt_snap {
    int refs; /* guarded by the channel state's mutex */
    char version[128];
    cascade_twotower *model;
    cascade_vindex *index;
    cascade_twotower_maps *maps; /* ids → embedding rows */
    struct tt_online online;
};

static void snap_free(struct tt_snap *s)
{
    if (!s)
        return;
    pthread_rwlock_destroy(&s->online.lock);
    free(s->online.ids);
    free(s->online.vecs);
    free(s->online.known);
    cascade_twotower_destroy(s->model);
    cascade_vindex_destroy(s->index);
    cascade_twotower_maps_destroy(s->maps);
    free(s);
}

/* Load version `version` from dir: model, maps and item index. */
static struct tt_snap *snap_load(const char *dir, const char *version, char *err, size_t errlen)
{
    char path[1200];
    struct tt_snap *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->refs = 1;
    pthread_rwlock_init(&s->online.lock, NULL);
    snprintf(s->version, sizeof(s->version), "%s", version);
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, version);
    if (cascade_twotower_load(path, &s->model, err, errlen) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/%s.items.safetensors", dir, version);
    if (!(s->index = cascade_vindex_load(path, err, errlen)))
        goto fail;
    if (cascade_vindex_dim(s->index) != cascade_twotower_config_get(s->model)->out_dim) {
        snprintf(err, errlen, "%s: vectors of width %zu, the model's are %zu", path,
                 cascade_vindex_dim(s->index), cascade_twotower_config_get(s->model)->out_dim);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/%s.maps.tsv", dir, version);
    if (cascade_twotower_maps_read(path, &s->maps, err, errlen) != 0)
        goto fail;
    return s;
fail:
    snap_free(s);
    return NULL;
}

/* ------------------------------------------------------------ channel state */

/* Versions experiments select (recall.two_tower.model_version), kept loaded. */
#define TT_MAX_PINNED 8
#define TT_VERSION_PARAM "recall.two_tower.model_version"

struct cascade_recall__two_tower {
    char dir[512]; /* "" = channel inactive */
    size_t nprobe; /* 0 = the index default */
    uint32_t last_n;
    int64_t reload_ms;
    size_t online_max;  /* most online items kept per version */
    pthread_mutex_t mu; /* guards everything below */
    struct tt_snap *cur;
    int64_t checked_ms;
    bool checked; /* latest was read at least once */
    bool loading;
    int64_t polled_ms;            /* last poll of {ns}:items:online */
    const struct tt_snap *polled; /* the version it was for (compared, never dereferenced) */
    bool polling;
    struct cascade_pinset pins; /* versions experiments name (common/pinset.h) */
};

static void snap_release(struct cascade_recall__two_tower *t, struct tt_snap *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&t->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last)
        snap_free(s);
}

/* The version named by dir/two-tower.latest into buf; 0, or a negative code
 * when there is none or it cannot be read (latest_file.h). */
static int read_latest(const char *dir, char *buf, size_t len)
{
    char path[600], err[700];
    snprintf(path, sizeof(path), "%s/two-tower.latest", dir);
    return cascade_latest_read(path, buf, len, err, sizeof(err));
}

/* Load the latest version when it differs from the current one; a failed
 * load keeps serving the current version. Called by one thread at a time. */
static void maybe_reload(struct cascade_recall__two_tower *t)
{
    char version[128], err[2048];
    if (read_latest(t->dir, version, sizeof(version)) != 0)
        return;
    pthread_mutex_lock(&t->mu);
    bool same = t->cur && strcmp(t->cur->version, version) == 0;
    pthread_mutex_unlock(&t->mu);
    if (same)
        return;
    struct tt_snap *s = snap_load(t->dir, version, err, sizeof(err));
    if (!s) {
        cascade_log(CASCADE_LOG_WARN, NULL, "recall: two_tower: cannot load %s: %s", version, err);
        return;
    }
    pthread_mutex_lock(&t->mu);
    struct tt_snap *old = t->cur;
    t->cur = s;
    pthread_mutex_unlock(&t->mu);
    snap_release(t, old);
    char model_path[1200], gate[900];
    snprintf(model_path, sizeof(model_path), "%s/%s.safetensors", t->dir, version);
    cascade_gate_record_describe(model_path, gate, sizeof(gate));
    cascade_log(CASCADE_LOG_INFO, NULL, "recall: two_tower: serving %s (%zu items; %s)", version,
                cascade_vindex_size(s->index), gate);
}

/* The current version with a reference held (NULL when none is loaded). */
static struct tt_snap *snap_acquire(struct cascade_recall__two_tower *t)
{
    int64_t now = cascade_now_ms();
    pthread_mutex_lock(&t->mu);
    bool check = !t->loading && (!t->checked || now - t->checked_ms >= t->reload_ms);
    if (check) {
        t->loading = true;
        t->checked = true;
        t->checked_ms = now;
    }
    pthread_mutex_unlock(&t->mu);
    if (check)
        maybe_reload(t);
    pthread_mutex_lock(&t->mu);
    if (check)
        t->loading = false;
    struct tt_snap *s = t->cur;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

/* The snapshot a request is served with: the pinned version its arm names
 * (an experiment's recall.two_tower.model_version) when it is pinned, else
 * the current one. A reference is held; NULL when none is loaded. */
static struct tt_snap *snap_acquire_for(struct cascade_recall__two_tower *t, const char *want)
{
    struct tt_snap *s = snap_acquire(t);
    if (!want)
        return s;
    pthread_mutex_lock(&t->mu);
    struct tt_snap *p = cascade_pinset_find_locked(&t->pins, want);
    if (p)
        p->refs++;
    pthread_mutex_unlock(&t->mu);
    if (!p)
        return s;
    snap_release(t, s);
    return p;
}

/* How the pin set (common/pinset.h) checks, loads and references a version. */
static int pin_check(void *ctx, const char *name, char *why, size_t len)
{
    const struct cascade_recall__two_tower *t = ctx;
    if (strchr(name, '/') || strlen(name) >= sizeof(((struct tt_snap *)0)->version)) {
        snprintf(why, len,
                 "must be a version name in the two_tower model directory (as two-tower.latest "
                 "names one)");
        return CASCADE_EINVAL;
    }
    if (!t->dir[0]) {
        snprintf(why, len, "needs the two_tower channel's model directory");
        return CASCADE_EINVAL;
    }
    return 0;
}

static int pin_load(void *ctx, const char *name, void **out, char *why, size_t len)
{
    const struct cascade_recall__two_tower *t = ctx;
    *out = snap_load(t->dir, name, why, len);
    return *out ? 0 : CASCADE_EINVAL;
}

static void pin_ref(void *ctx, void *obj)
{
    (void)ctx;
    ((struct tt_snap *)obj)->refs++; /* t->mu is held */
}

static void pin_release(void *ctx, void *obj)
{
    snap_release(ctx, obj);
}

static const struct cascade_pinset_ops pin_ops = {
    .what = "recall",
    .key = TT_VERSION_PARAM,
    .check = pin_check,
    .load = pin_load,
    .ref = pin_ref,
    .release = pin_release,
};

int cascade_recall_pin_versions(cascade_recall *r, const cascade_config *cfg, char *err,
                                size_t errlen)
{
    if (!r->two_tower) { /* only a failed create leaves none */
        snprintf(err, errlen, "recall: the two_tower channel was not set up");
        return CASCADE_EINVAL;
    }
    return cascade_pinset_update(&r->two_tower->pins, cascade_config_get(cfg, "experiments"), err,
                                 errlen);
}

int cascade_recall__two_tower_create(cascade_recall *r, const cascade_config *cfg, char *err,
                                     size_t errlen)
{
    const char *dir = NULL, *service_dir = getenv("CASCADE_MODEL_DIR");
    int64_t nprobe, last_n, reload_ms, online_max;
    int rc;
    /* The service's model directory (env, then config model_dir, then
     * "models", as common/service.h) unless the channel names its own. */
    if (!service_dir || !service_dir[0])
        service_dir = NULL;
    if ((!service_dir &&
         (rc = cascade_config_string(cfg, "model_dir", "models", &service_dir, err, errlen))) ||
        (rc = cascade_config_string(cfg, "recall.channels.two_tower.model_dir", service_dir, &dir,
                                    err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.channels.two_tower.nprobe", 0, 0, 1 << 20, &nprobe,
                                 err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.channels.two_tower.last_n", 20, 0, 10000, &last_n,
                                 err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.channels.two_tower.reload_ms", 1000, 0, 86400000,
                                 &reload_ms, err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.channels.two_tower.online_max", 20000, 0, 10000000,
                                 &online_max, err, errlen)))
        return rc;
    if (strlen(dir) >= sizeof(r->two_tower->dir)) {
        snprintf(err, errlen, "recall.channels.two_tower.model_dir: longer than %zu characters",
                 sizeof(r->two_tower->dir) - 1);
        return CASCADE_EINVAL;
    }
    struct cascade_recall__two_tower *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "recall: out of memory");
        return CASCADE_ENOMEM;
    }
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
    t->nprobe = (size_t)nprobe;
    t->last_n = (uint32_t)last_n;
    t->reload_ms = reload_ms;
    t->online_max = (size_t)online_max;
    pthread_mutex_init(&t->mu, NULL);
    cascade_pinset_init(&t->pins, &pin_ops, t, &t->mu, TT_MAX_PINNED);
    r->two_tower = t;
    if (t->dir[0])
        snap_release(t, snap_acquire(t)); /* load now so the first request does not */
    return 0;
}

void cascade_recall__two_tower_destroy(struct cascade_recall__two_tower *t)
{
    if (!t)
        return;
    snap_free(t->cur);
    cascade_pinset_clear(&t->pins);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ------------------------------------------------------------ online items */

/* Most entries of {ns}:items:online read per poll. */
#define TT_ONLINE_BATCH 1000

static bool in_known(const struct tt_online *on, uint64_t id)
{
    for (size_t i = 0; i < on->n_known; i++)
        if (on->known[i] == id)
            return true;
    return false;
}

/* Put (id, vector) into the version's online set: replace a changed item's
 * vector, append a new one (dropped, with a warning, past online_max). */
static void online_put(struct tt_online *on, size_t dim, size_t max, uint64_t id, const float *v,
                       bool known)
{
    size_t i = 0;
    if (known && !in_known(on, id)) {
        if (on->n_known == on->cap_known) {
            size_t cap = on->cap_known ? 2 * on->cap_known : 16;
            uint64_t *k = realloc(on->known, cap * sizeof *k);
            if (!k) {
                CASCADE_WARN(NULL, "recall: two_tower: out of memory for online item %" PRIu64, id);
                return;
            }
            on->known = k;
            on->cap_known = cap;
        }
        on->known[on->n_known++] = id;
    }
    while (i < on->n && on->ids[i] != id)
        i++;
    if (i == on->n) {
        if (on->n >= max) {
            CASCADE_WARN(NULL,
                         "recall: two_tower: %zu online items (online_max); item %" PRIu64
                         " waits for the next model version",
                         max, id);
            return;
        }
        if (on->n == on->cap) {
            size_t cap = on->cap ? 2 * on->cap : 64;
            uint64_t *ids = realloc(on->ids, cap * sizeof *ids);
            if (ids)
                on->ids = ids;
            float *vecs = ids ? realloc(on->vecs, cap * dim * sizeof *vecs) : NULL;
            if (!vecs) {
                CASCADE_WARN(NULL, "recall: two_tower: out of memory for online item %" PRIu64, id);
                return;
            }
            on->vecs = vecs;
            on->cap = cap;
        }
        on->ids[on->n++] = id;
    }
    memcpy(on->vecs + i * dim, v, dim * sizeof *v);
}

/* The item tower's features of an item record: its id row when the model
 * knows it (a changed item), else row 0, the cold-start path. */
static struct cascade_twotower_item online_features(const struct tt_snap *s,
                                                    const cascade_v1_ItemRecord *rec)
{
    return (struct cascade_twotower_item){
        .item_id = cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_ITEM, rec->item_id),
        .author = cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_AUTHOR, rec->author_id),
        .category = cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_CATEGORY, rec->category),
        .age_bucket = cascade_twotower_item_age_bucket(rec->created_at_s,
                                                       cascade_twotower_maps_ref_ts(s->maps)),
    };
}

/* Read the items added since the last poll (revision > seen), their records
 * and vectors, into s->online. Returns 0 or a negative code with a message
 * in err; the set is unchanged on failure. */
static int online_poll(cascade_redis *r, const char *ns, struct tt_snap *s, size_t max, char *err,
                       size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    size_t dim = cascade_vindex_dim(s->index), m = 0;
    uint64_t *ids = NULL, top = 0;
    cascade_v1_ItemRecord *recs = NULL;
    bool *found = NULL;
    struct cascade_twotower_item *feat = NULL;
    float *vecs = NULL;
    pthread_rwlock_rdlock(&s->online.lock);
    uint64_t seen = s->online.seen;
    pthread_rwlock_unlock(&s->online.lock);
    snprintf(key, sizeof key, "%s:items:online", ns);
    int rc = cascade_redis_command(r, &rep, "ZRANGEBYSCORE %s (%llu +inf WITHSCORES LIMIT 0 %d",
                                   key, (unsigned long long)seen, TT_ONLINE_BATCH);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", key, cascade_redis_error(r));
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
        snprintf(err, errlen, "%s: not a sorted set", key);
        rc = CASCADE_EFORMAT;
        goto out;
    }
    m = rep->elements / 2;
    if (m == 0)
        goto out;
    ids = calloc(m, sizeof *ids);
    recs = calloc(m, sizeof *recs);
    found = calloc(m, sizeof *found);
    feat = calloc(m, sizeof *feat);
    vecs = calloc(m * dim, sizeof *vecs);
    if (!ids || !recs || !found || !feat || !vecs) {
        snprintf(err, errlen, "out of memory for %zu online items", m);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        const redisReply *id = rep->element[2 * i], *sc = rep->element[2 * i + 1];
        char *end;
        ids[i] = id->type == REDIS_REPLY_STRING ? strtoull(id->str, &end, 10) : 0;
        uint64_t rev = sc->type == REDIS_REPLY_STRING ? strtoull(sc->str, &end, 10) : 0;
        top = rev > top ? rev : top;
    }
    if ((rc = cascade_store_get_items(r, ns, ids, m, recs, found)) != 0) {
        snprintf(err, errlen, "online item records: %s", cascade_redis_error(r));
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (found[i] && ids[i])
            feat[k++] = online_features(s, &recs[i]);
    if (k && (rc = cascade_twotower_item_vectors(s->model, feat, k, vecs, err, errlen)) != 0)
        goto out;
    pthread_rwlock_wrlock(&s->online.lock);
    for (size_t i = 0, j = 0; i < m; i++)
        if (found[i] && ids[i]) {
            online_put(&s->online, dim, max, ids[i], vecs + j * dim, feat[j].item_id != 0);
            j++;
        }
    if (top > s->online.seen)
        s->online.seen = top;
    pthread_rwlock_unlock(&s->online.lock);
out:
    if (rep)
        freeReplyObject(rep);
    free(ids);
    free(recs);
    free(found);
    free(feat);
    free(vecs);
    return rc;
}

/* Poll when reload_ms has passed since the last poll (one thread at a time;
 * the others go on with the set they have). A failure is logged: the index
 * still serves, and the next poll tries again. */
static void online_maybe_poll(struct cascade_recall__two_tower *t,
                              const struct cascade_recall__channel_args *a, struct tt_snap *s)
{
    int64_t now = cascade_now_ms();
    pthread_mutex_lock(&t->mu);
    bool due =
        !t->polling && (t->polled != s || t->polled_ms == 0 || now - t->polled_ms >= t->reload_ms);
    if (due) {
        t->polling = true;
        t->polled_ms = now;
        t->polled = s; /* a new version reads every online item at once */
    }
    pthread_mutex_unlock(&t->mu);
    if (!due)
        return;
    char err[512];
    if (online_poll(a->redis, a->recall->ns, s, t->online_max, err, sizeof err) != 0)
        CASCADE_WARN(NULL, "recall: two_tower: online items: %s", err);
    pthread_mutex_lock(&t->mu);
    t->polling = false;
    pthread_mutex_unlock(&t->mu);
}

/* ------------------------------------------------------------ the channel */

/* The user's features: profile buckets and the last-n items known to the model. */
static int user_features(const struct cascade_recall__channel_args *a, const struct tt_snap *s,
                         const struct cascade_recall_hits *lastn, uint32_t last_n,
                         struct cascade_twotower_user *u)
{
    const cascade_v1_UserRecord *p = NULL;
    bool found = false;
    int rc = cascade_recall__profile(a, &p, &found);
    if (rc != 0)
        return rc;
    memset(u, 0, sizeof(*u));
    u->user_id = cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_USER,
                                           cascade_twotower_user_key(a->user_id));
    if (found) {
        u->age_bucket = cascade_twotower_user_age_bucket(p->age);
        u->gender = p->gender < TT_GENDERS ? p->gender : 0;
        u->city = p->city ? cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_CITY, p->city) : 0;
    }
    uint32_t *hist = cascade_arena_alloc(a->arena, (lastn->count + 1) * sizeof(*hist));
    if (!hist)
        return cascade_recall__nomem(a);
    size_t n = 0;
    for (size_t i = 0; i < lastn->count && n < last_n; i++) {
        uint32_t row = cascade_twotower_maps_row(s->maps, CASCADE_TT_MAP_ITEM, lastn->ids[i]);
        if (row)
            hist[n++] = row;
    }
    u->history = hist;
    u->n_history = n;
    return 0;
}

static bool in_list(const struct cascade_recall_hits *h, uint64_t id)
{
    for (size_t i = 0; i < h->count; i++)
        if (h->ids[i] == id)
            return true;
    return false;
}

struct tt_hit {
    uint64_t id;
    float score;
};

/* Best first; ties: lower id first (the index's order). */
static int hit_cmp(const void *pa, const void *pb)
{
    const struct tt_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Search k items (IVF, then exact when the probed lists held fewer than k),
 * score every online item exactly (an online copy replaces the index's), and
 * keep the quota best outside the last-n. */
static int search(const struct cascade_recall__channel_args *a, struct tt_snap *s, size_t nprobe,
                  const float *uv, const struct cascade_recall_hits *lastn,
                  struct cascade_recall_hits *out)
{
    size_t dim = cascade_vindex_dim(s->index), size = cascade_vindex_size(s->index);
    size_t k = a->quota + lastn->count;
    k = k < size ? k : size;
    uint64_t *ids = cascade_arena_alloc(a->arena, k * sizeof(*ids));
    float *scores = cascade_arena_alloc(a->arena, k * sizeof(*scores));
    out->ids = cascade_arena_alloc(a->arena, (a->quota + 1) * sizeof(*out->ids));
    out->scores = cascade_arena_alloc(a->arena, (a->quota + 1) * sizeof(*out->scores));
    if (!ids || !scores || !out->ids || !out->scores)
        return cascade_recall__nomem(a);
    char msg[256];
    int rc = cascade_vindex_search(s->index, uv, 1, dim, k, nprobe, ids, scores, msg, sizeof(msg));
    if (rc == 0 && ids[k - 1] == CASCADE_VINDEX_NO_ID)
        rc = cascade_vindex_search_exact(s->index, uv, 1, dim, k, ids, scores, msg, sizeof(msg));
    if (rc != 0)
        return cascade_recall__fail(a, rc, "search", msg);
    pthread_rwlock_rdlock(&s->online.lock);
    const struct tt_online *on = &s->online;
    struct tt_hit *hits = cascade_arena_alloc(a->arena, (k + on->n + 1) * sizeof(*hits));
    size_t n = 0;
    if (hits) {
        for (size_t i = 0; i < k; i++)
            if (ids[i] != CASCADE_VINDEX_NO_ID && !in_list(lastn, ids[i]) && !in_known(on, ids[i]))
                hits[n++] = (struct tt_hit){ids[i], scores[i]};
        for (size_t j = 0; j < on->n; j++) {
            if (in_list(lastn, on->ids[j]))
                continue;
            float dot = 0.0f;
            for (size_t d = 0; d < dim; d++)
                dot += uv[d] * on->vecs[j * dim + d];
            hits[n++] = (struct tt_hit){on->ids[j], dot};
        }
    }
    pthread_rwlock_unlock(&s->online.lock);
    if (!hits)
        return cascade_recall__nomem(a);
    qsort(hits, n, sizeof(*hits), hit_cmp);
    out->count = 0;
    for (size_t i = 0; i < n && out->count < a->quota; i++) {
        out->ids[out->count] = hits[i].id;
        out->scores[out->count++] = hits[i].score;
    }
    return 0;
}

int cascade_recall__two_tower(const struct cascade_recall__channel_args *a,
                              struct cascade_recall_hits *out)
{
    struct cascade_recall__two_tower *t = a->recall->two_tower;
    out->count = 0;
    if (!t || !t->dir[0] || a->quota == 0)
        return 0; /* not configured: nothing, not an error */
    struct tt_snap *s =
        snap_acquire_for(t, cascade_exp_param(a->req->experiments, TT_VERSION_PARAM));
    if (!s)
        return 0; /* nothing published yet */
    online_maybe_poll(t, a, s);
    struct cascade_recall_hits lastn = {0};
    struct cascade_twotower_user u;
    char msg[256];
    float *uv = cascade_arena_alloc(a->arena, cascade_vindex_dim(s->index) * sizeof(float));
    int rc = uv ? 0 : cascade_recall__nomem(a);
    if (rc == 0 && t->last_n > 0)
        rc = cascade_recall__user_lastn(a, t->last_n, &lastn);
    if (rc == 0)
        rc = user_features(a, s, &lastn, t->last_n, &u);
    if (rc == 0 && (rc = cascade_twotower_user_vectors(s->model, &u, 1, uv, msg, sizeof(msg))) != 0)
        rc = cascade_recall__fail(a, rc, "user vector", msg);
    if (rc == 0)
        rc = search(a, s, t->nprobe, uv, &lastn, out);
    snap_release(t, s);
    return rc;
}
