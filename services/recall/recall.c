/* Recall stage: the channel registry, the stage's lifecycle (config, metric
 * series), the per-family generation cache and the small steps every channel
 * shares (profile, error messages, deadline). Running a request is in
 * recall_run.c. */
#include "recall.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "recall_internal.h"
#include "store.h"

/* The channel registry. Adding a channel: write its function and add a row;
 * recall.channels.<name>.enabled switches it. */
const struct cascade_recall__channel_def cascade_recall__channels[] = {
    {"hot", CASCADE_RECALL_FAM_HOT, cascade_recall__hot, 0},
    {"itemcf", CASCADE_RECALL_FAM_ITEMCF, cascade_recall__itemcf, CASCADE_RECALL_READS_LASTN},
    {"swing", CASCADE_RECALL_FAM_SWING, cascade_recall__itemcf, CASCADE_RECALL_READS_LASTN},
    {"ease", CASCADE_RECALL_FAM_EASE, cascade_recall__ease, CASCADE_RECALL_READS_LASTN},
    {"usercf", CASCADE_RECALL_FAM_USERCF, cascade_recall__usercf, CASCADE_RECALL_READS_USERCF},
    {"new", CASCADE_RECALL_FAM_NEW, cascade_recall__new, 0},
    {"geo", CASCADE_RECALL_FAM_GEO, cascade_recall__geo, CASCADE_RECALL_READS_PROFILE},
    {"city", CASCADE_RECALL_FAM_CITY, cascade_recall__city, CASCADE_RECALL_READS_PROFILE},
    {"follow_author", CASCADE_RECALL_FAM_AUTHORS, cascade_recall__follow_author, 0},
    {"interacted_author", CASCADE_RECALL_FAM_AUTHORS, cascade_recall__interacted_author,
     CASCADE_RECALL_READS_AUTHORS},
    {"similar_author", CASCADE_RECALL_FAM_AUTHORS, cascade_recall__similar_author,
     CASCADE_RECALL_READS_AUTHORS},
    {"cache", CASCADE_RECALL_FAM_NONE, cascade_recall__cache, CASCADE_RECALL_READS_CACHE},
    {"interest", CASCADE_RECALL_FAM_HOT, cascade_recall__interest, CASCADE_RECALL_READS_PROFILE},
    {"demo_hot", CASCADE_RECALL_FAM_HOT, cascade_recall__demo_hot, CASCADE_RECALL_READS_PROFILE},
    {"two_tower", CASCADE_RECALL_FAM_NONE, cascade_recall__two_tower, CASCADE_RECALL_READS_PROFILE},
};
const size_t cascade_recall__n_channels =
    sizeof cascade_recall__channels / sizeof cascade_recall__channels[0];
_Static_assert(sizeof cascade_recall__channels / sizeof cascade_recall__channels[0] <=
                   CASCADE_RECALL_MAX_CHANNELS,
               "raise CASCADE_RECALL_MAX_CHANNELS");

static const char *const family_names[CASCADE_RECALL_N_FAMILIES] = {
    "itemcf", "swing", "usercf", "authors", "hot", "new", "geo", "city", "ease",
};

const char *cascade_recall__family_name(enum cascade_recall__family f)
{
    return f >= 0 && f < CASCADE_RECALL_N_FAMILIES ? family_names[f] : "";
}

static char channel_list[512];
static pthread_once_t channel_list_once = PTHREAD_ONCE_INIT;

static void channel_list_build(void)
{
    size_t off = 0;
    for (size_t i = 0; i < cascade_recall__n_channels && off < sizeof channel_list; i++)
        off += (size_t)snprintf(channel_list + off, sizeof channel_list - off, "%s%s",
                                i ? ", " : "", cascade_recall__channels[i].name);
}

const char *cascade_recall_channel_list(void)
{
    pthread_once(&channel_list_once, channel_list_build);
    return channel_list;
}

uint32_t cascade_recall_age_bucket(uint32_t age)
{
    if (age == 0)
        return 0;
    if (age < 18)
        return 1;
    if (age < 25)
        return 2;
    if (age < 35)
        return 3;
    if (age < 45)
        return 4;
    if (age < 55)
        return 5;
    return 6;
}

/* ------------------------------------------------------------------ config */

#define CFG_OFF(field) offsetof(struct cascade_recall__channel_cfg, field)

/* Integer settings: recall.channels.<channel>.<key>. */
static const struct {
    const char *channel, *key;
    size_t off;
    int64_t def, min, max;
} int_params[] = {
    {"itemcf", "last_n", CFG_OFF(last_n), 50, 1, 1000},
    {"itemcf", "neighbours", CFG_OFF(neighbours), 50, 1, 200},
    {"swing", "last_n", CFG_OFF(last_n), 50, 1, 1000},
    {"swing", "neighbours", CFG_OFF(neighbours), 50, 1, 200},
    /* EASE scores with the whole history; the default covers it for most users
     * (docs/benchmarks.md has the measurement). */
    {"ease", "last_n", CFG_OFF(last_n), 1000, 1, 1000},
    {"ease", "neighbours", CFG_OFF(neighbours), 200, 1, 200},
    {"usercf", "users", CFG_OFF(users), 30, 1, 100},
    {"usercf", "last_n", CFG_OFF(last_n), 20, 1, 1000},
    {"new", "max_impressions", CFG_OFF(max_impressions), 20, 0, 1000000000},
    {"new", "explore_pool", CFG_OFF(explore_pool), 8, 1, 1000},
    {"geo", "precision", CFG_OFF(precision), 5, 1, 12},
    {"geo", "per_cell", CFG_OFF(per_cell), 50, 1, 5000},
    {"follow_author", "max_authors", CFG_OFF(max_authors), 50, 1, 1000},
    {"follow_author", "per_author", CFG_OFF(per_author), 10, 1, 1000},
    {"interacted_author", "max_authors", CFG_OFF(max_authors), 20, 1, 200},
    {"interacted_author", "per_author", CFG_OFF(per_author), 10, 1, 1000},
    {"similar_author", "sources", CFG_OFF(sources), 20, 1, 200},
    {"similar_author", "neighbours", CFG_OFF(neighbours), 20, 1, 200},
    {"similar_author", "max_authors", CFG_OFF(max_authors), 20, 1, 1000},
    {"similar_author", "per_author", CFG_OFF(per_author), 10, 1, 1000},
};

/* Real settings; the stored value is the configured one times scale. */
static const struct {
    const char *channel, *key;
    size_t off;
    double def, min, max, scale;
} double_params[] = {
    {"new", "explore_share", CFG_OFF(explore_share), 0.3, 0.0, 1.0, 1.0},
    {"new", "half_life_hours", CFG_OFF(half_life_s), 24.0, 0.0, 1e6, 3600.0},
    {"geo", "half_life_hours", CFG_OFF(half_life_s), 24.0, 0.0, 1e6, 3600.0},
    {"city", "half_life_hours", CFG_OFF(half_life_s), 24.0, 0.0, 1e6, 3600.0},
    {"follow_author", "half_life_hours", CFG_OFF(half_life_s), 24.0, 0.0, 1e6, 3600.0},
};

static int channel_index(const char *name)
{
    for (size_t i = 0; i < cascade_recall__n_channels; i++)
        if (strcmp(cascade_recall__channels[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int read_channel_params(cascade_recall *r, const cascade_config *cfg, char *err,
                               size_t errlen)
{
    char path[160];
    int rc;
    for (size_t i = 0; i < sizeof int_params / sizeof int_params[0]; i++) {
        int c = channel_index(int_params[i].channel);
        int64_t v;
        snprintf(path, sizeof path, "recall.channels.%s.%s", int_params[i].channel,
                 int_params[i].key);
        if ((rc = cascade_config_int(cfg, path, int_params[i].def, int_params[i].min,
                                     int_params[i].max, &v, err, errlen)))
            return rc;
        *(uint32_t *)((char *)&r->cfg[c] + int_params[i].off) = (uint32_t)v;
    }
    for (size_t i = 0; i < sizeof double_params / sizeof double_params[0]; i++) {
        int c = channel_index(double_params[i].channel);
        double v;
        snprintf(path, sizeof path, "recall.channels.%s.%s", double_params[i].channel,
                 double_params[i].key);
        if ((rc = cascade_config_double(cfg, path, double_params[i].def, double_params[i].min,
                                        double_params[i].max, &v, err, errlen)))
            return rc;
        *(double *)((char *)&r->cfg[c] + double_params[i].off) = v * double_params[i].scale;
    }
    return 0;
}

/* recall.list_cache.*: the switch and bounds cascade_recall_create needs. */
struct list_cache_cfg {
    bool enabled;
    int64_t max_entries, max_bytes;
};

static int read_list_cache_config(cascade_recall *r, const cascade_config *cfg,
                                  struct list_cache_cfg *lc, char *err, size_t errlen)
{
    int64_t v;
    int rc;
    if ((rc = cascade_config_bool(cfg, "recall.list_cache.enabled", true, &lc->enabled, err,
                                  errlen)) ||
        (rc = cascade_config_int(cfg, "recall.list_cache.max_entries", 100000, 1, 100000000,
                                 &lc->max_entries, err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.list_cache.max_bytes", 64 << 20, 4096,
                                 (int64_t)1 << 40, &lc->max_bytes, err, errlen)) ||
        (rc = cascade_config_int(cfg, "recall.list_cache.max_len", 1000, 1, 1000000, &v, err,
                                 errlen)))
        return rc;
    r->list_max_len = (size_t)v;
    return 0;
}

/* recall.profile_cache: user records reused for ttl_ms (0 = off, the
 * default; config/cascade.json sets 2000), in `slots` slots. */
static int create_profile_cache(cascade_recall *r, const cascade_config *cfg, char *err,
                                size_t errlen)
{
    int64_t ttl, slots;
    int rc;
    if ((rc = cascade_config_int(cfg, "recall.profile_cache.ttl_ms", 0, 0, 3600000, &ttl, err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "recall.profile_cache.slots", 16384, 1, 1 << 22, &slots, err,
                                 errlen)))
        return rc;
    if (ttl > 0 && !(r->profiles = cascade_record_cache_create(
                         (size_t)slots, sizeof(cascade_v1_UserRecord), ttl))) {
        snprintf(err, errlen, "recall: out of memory for the profile cache");
        return CASCADE_ENOMEM;
    }
    return 0;
}

static int recall_read_config(cascade_recall *r, const cascade_config *cfg,
                              struct list_cache_cfg *lc, char *err, size_t errlen)
{
    int64_t v;
    int rc;
    if ((rc = cascade_config_int(cfg, "recall.max_quota", 5000, 1, 1000000, &v, err, errlen)))
        return rc;
    r->max_quota = (uint32_t)v;
    if ((rc = cascade_config_int(cfg, "recall.generation_ttl_ms", 1000, 0, 3600000, &v, err,
                                 errlen)))
        return rc;
    r->gen_ttl_ms = v;
    if ((rc = read_list_cache_config(r, cfg, lc, err, errlen)))
        return rc;
    for (size_t i = 0; i < cascade_recall__n_channels; i++) {
        char path[128];
        snprintf(path, sizeof path, "recall.channels.%s.enabled", cascade_recall__channels[i].name);
        if ((rc = cascade_config_bool(cfg, path, true, &r->cfg[i].enabled, err, errlen)))
            return rc;
    }
    return read_channel_params(r, cfg, err, errlen);
}

/* ------------------------------------------------------------------ metrics */

/* Latency buckets (seconds): fine below 5 ms, where channels should be. */
static const double latency_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001,
                                         0.0015,  0.002,  0.003,   0.005,  0.01,    0.025,
                                         0.05,    0.1,    0.25,    0.5,    1.0};

/* The one series of a family without labels (a counter or a gauge). */
static cascade_metric *unlabelled(cascade_metrics *m, bool gauge, const char *name,
                                  const char *help)
{
    return cascade_metric_get(gauge ? cascade_metrics_gauge(m, name, help, NULL)
                                    : cascade_metrics_counter(m, name, help, NULL),
                              NULL);
}

static void register_metrics(cascade_recall *r, cascade_metrics *m)
{
    cascade_metric_family *req = cascade_metrics_counter(
        m, "cascade_recall_channel_requests_total", "Recall channel runs, by channel.", "channel");
    cascade_metric_family *cand =
        cascade_metrics_counter(m, "cascade_recall_channel_candidates_total",
                                "Candidates returned, by channel.", "channel");
    cascade_metric_family *errs =
        cascade_metrics_counter(m, "cascade_recall_channel_errors_total",
                                "Recall channel runs that failed, by channel.", "channel");
    cascade_metric_family *lat = cascade_metrics_histogram(
        m, "cascade_recall_channel_latency_seconds",
        "Time spent in a recall channel inside the service, by channel.", "channel",
        latency_buckets, sizeof latency_buckets / sizeof latency_buckets[0]);
    for (size_t i = 0; i < cascade_recall__n_channels; i++) {
        const char *labels[] = {cascade_recall__channels[i].name};
        r->metrics[i].requests = cascade_metric_get(req, labels);
        r->metrics[i].candidates = cascade_metric_get(cand, labels);
        r->metrics[i].errors = cascade_metric_get(errs, labels);
        r->metrics[i].latency = cascade_metric_get(lat, labels);
    }
    r->profile_hits = unlabelled(m, false, "cascade_recall_profile_cache_hits_total",
                                 "User profiles served from the profile cache.");
    r->profile_misses = unlabelled(m, false, "cascade_recall_profile_cache_misses_total",
                                   "User profiles read from Redis (the cache off or cold).");
    r->list_metrics = (struct cascade_list_cache_metrics){
        .hits = unlabelled(m, false, "cascade_recall_list_cache_hits_total",
                           "Generation lists served from the recall list cache."),
        .misses = unlabelled(m, false, "cascade_recall_list_cache_misses_total",
                             "Generation list lookups the list cache could not serve."),
        .evictions = unlabelled(m, false, "cascade_recall_list_cache_evictions_total",
                                "Lists evicted from the recall list cache (LRU)."),
        .entries = unlabelled(m, true, "cascade_recall_list_cache_entries",
                              "Lists held in the recall list cache."),
        .bytes = unlabelled(m, true, "cascade_recall_list_cache_bytes",
                            "Bytes held in the recall list cache."),
    };
}

/* ------------------------------------------------------------------ lifecycle */

cascade_recall *cascade_recall_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, cascade_metrics *metrics, char *err,
                                      size_t errlen)
{
    cascade_recall *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "recall: out of memory");
        return NULL;
    }
    for (size_t f = 0; f < CASCADE_RECALL_N_FAMILIES; f++)
        pthread_mutex_init(&r->gens[f].mu, NULL);
    pthread_mutex_init(&r->online_mu, NULL);
    if (!ns || !ns[0] || strlen(ns) >= sizeof r->ns) {
        snprintf(err, errlen, "recall: namespace must be 1..%zu characters", sizeof r->ns - 1);
        goto fail;
    }
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    r->redis = redis;
    struct list_cache_cfg lc;
    if (recall_read_config(r, cfg, &lc, err, errlen) != 0 ||
        create_profile_cache(r, cfg, err, errlen) != 0 ||
        cascade_recall__two_tower_create(r, cfg, err, errlen) != 0 ||
        cascade_recall_pin_versions(r, cfg, err, errlen) != 0)
        goto fail;
    register_metrics(r, metrics);
    if (lc.enabled && !(r->lists = cascade_list_cache_create(
                            (size_t)lc.max_entries, (size_t)lc.max_bytes, &r->list_metrics))) {
        snprintf(err, errlen, "recall: out of memory for the list cache");
        goto fail;
    }
    return r;
fail:
    cascade_recall_destroy(r);
    return NULL;
}

void cascade_recall_destroy(cascade_recall *r)
{
    if (!r)
        return;
    for (size_t f = 0; f < CASCADE_RECALL_N_FAMILIES; f++)
        pthread_mutex_destroy(&r->gens[f].mu);
    pthread_mutex_destroy(&r->online_mu);
    cascade_recall__two_tower_destroy(r->two_tower);
    cascade_list_cache_destroy(r->lists);
    cascade_record_cache_destroy(r->profiles);
    free(r);
}

/* ------------------------------------------------------------------ shared steps */

int cascade_recall__fail(const struct cascade_recall__channel_args *a, int rc, const char *step,
                         const char *message)
{
    snprintf(a->err, a->errlen, "%s: %s: %s", a->name, step,
             message && message[0] ? message : cascade_strerror(rc));
    return rc == CASCADE_ENOMEM || rc == CASCADE_ETIMEDOUT ? rc : CASCADE_EUNAVAILABLE;
}

int cascade_recall__nomem(const struct cascade_recall__channel_args *a)
{
    snprintf(a->err, a->errlen, "%s: out of request memory", a->name);
    return CASCADE_ENOMEM;
}

int cascade_recall__deadline(const struct cascade_recall__channel_args *a, const char *step)
{
    if (cascade_now_ms() < a->deadline_ms)
        return 0;
    snprintf(a->err, a->errlen, "%s: deadline exceeded after %s", a->name, step);
    return CASCADE_ETIMEDOUT;
}

/* Clear the list cache when PutItems changed generation lists since the
 * last look ({ns}:items:online:rev, docs/closed-loop.md): their cached
 * copies would hide the new items. Read with every generation refresh; a
 * failed read changes nothing (the generation read reports Redis errors). */
static void check_online_rev(const struct cascade_recall__channel_args *a)
{
    cascade_recall *r = a->recall;
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    if (!r->lists)
        return;
    snprintf(key, sizeof key, "%s:items:online:rev", r->ns);
    if (cascade_redis_command(a->redis, &rep, "GET %s", key) != 0)
        return;
    int64_t rev = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
    freeReplyObject(rep);
    pthread_mutex_lock(&r->online_mu);
    bool changed = rev != r->online_rev;
    r->online_rev = rev;
    pthread_mutex_unlock(&r->online_mu);
    if (changed)
        cascade_list_cache_clear(r->lists);
}

int cascade_recall__generation(const struct cascade_recall__channel_args *a, int64_t *gen)
{
    cascade_recall *r = a->recall;
    if (a->family < 0 || a->family >= CASCADE_RECALL_N_FAMILIES) {
        snprintf(a->err, a->errlen, "%s: channel has no builder family", a->name);
        return CASCADE_EINTERNAL;
    }
    struct cascade_recall__gen_slot *s = &r->gens[a->family];
    int64_t now = cascade_now_ms();
    if (r->gen_ttl_ms > 0) {
        pthread_mutex_lock(&s->mu);
        bool fresh = s->valid && now - s->fetched_ms < r->gen_ttl_ms;
        int64_t cached = s->gen;
        pthread_mutex_unlock(&s->mu);
        if (fresh) {
            *gen = cached;
            return 0;
        }
    }
    const char *family = cascade_recall__family_name(a->family);
    int rc = cascade_store_get_generation(a->redis, r->ns, family, gen);
    if (rc == 0)
        check_online_rev(a);
    if (rc != 0) {
        char step[64];
        snprintf(step, sizeof step, "generation of %s", family);
        return cascade_recall__fail(a, rc, step, cascade_redis_error(a->redis));
    }
    pthread_mutex_lock(&s->mu);
    bool backwards = s->valid && *gen < s->gen;
    s->valid = true;
    s->gen = *gen;
    s->fetched_ms = now;
    pthread_mutex_unlock(&s->mu);
    /* Generations only grow, unless Redis was wiped and is being rebuilt:
     * then key names of the old generations come back with new contents. */
    if (backwards && r->lists) {
        CASCADE_WARN(NULL, "recall: generation of %s went back to %" PRId64 "; list cache cleared",
                     family, *gen);
        cascade_list_cache_clear(r->lists);
    }
    return 0;
}

char *cascade_recall__key(const struct cascade_recall__channel_args *a, int64_t gen,
                          const char *suffix)
{
    char *key = cascade_arena_alloc(a->arena, CASCADE_KEY_MAX);
    return key ? cascade_key_artefact(key, a->recall->ns, cascade_recall__family_name(a->family),
                                      gen, suffix)
               : NULL;
}

/* The profile cache is keyed by a hash of the user id; a hit counts only
 * when the cached record names the same user (absent users are cached as an
 * empty record with the id filled in for that check). */
static uint64_t profile_key(const char *user_id)
{
    return cascade_hash_str(user_id, 0x9f0f11e5u);
}

static bool profile_cached(const struct cascade_recall__channel_args *a,
                           struct cascade_recall__request_state *st)
{
    size_t miss;
    uint64_t key = profile_key(a->user_id);
    if (!a->recall->profiles ||
        cascade_record_cache_get_many(a->recall->profiles, &key, 1, &st->profile,
                                      &st->profile_found, &miss, cascade_now_ms()) != 0)
        return false;
    if (strcmp(st->profile.user_id, a->user_id) == 0) {
        cascade_metric_inc(a->recall->profile_hits);
        return true;
    }
    memset(&st->profile, 0, sizeof st->profile); /* another user's record: a miss */
    st->profile_found = false;
    return false;
}

static void profile_store(const struct cascade_recall__channel_args *a,
                          const struct cascade_recall__request_state *st)
{
    cascade_metric_inc(a->recall->profile_misses);
    if (!a->recall->profiles)
        return;
    cascade_v1_UserRecord rec = st->profile;
    if (st->profile_found && strcmp(rec.user_id, a->user_id) != 0)
        return; /* a record under another id could never be checked on a hit */
    if (!st->profile_found) {
        memset(&rec, 0, sizeof rec);
        snprintf(rec.user_id, sizeof rec.user_id, "%s", a->user_id);
    }
    uint64_t key = profile_key(a->user_id);
    size_t idx = 0;
    /* Epoch 0: nothing ever drops a profile, so the epoch never moves. */
    cascade_record_cache_put_many(a->recall->profiles, &key, &idx, 1, &rec, &st->profile_found,
                                  cascade_now_ms(), 0);
}

bool cascade_recall__lastn_covered(const struct cascade_recall__channel_args *a, size_t n)
{
    const struct cascade_recall__request_state *st = a->state;
    return st->lastn_loaded && (n <= st->lastn_asked || st->lastn.count < st->lastn_asked);
}

int cascade_recall__user_lastn(const struct cascade_recall__channel_args *a, size_t n,
                               struct cascade_recall_hits *out)
{
    struct cascade_recall__request_state *st = a->state;
    memset(out, 0, sizeof *out);
    if (!cascade_recall__lastn_covered(a, n)) {
        char key[CASCADE_KEY_MAX];
        struct cascade_recall_hits got;
        struct cascade_recall__pipe p;
        cascade_recall__pipe_init(&p, a->redis);
        cascade_key_user_lastn(key, a->recall->ns, a->user_id);
        cascade_recall__pipe_lrange(&p, key, 0, (long long)n - 1);
        cascade_recall__read_interactions(&p, a->arena, key, &got);
        int rc = cascade_recall__pipe_end(&p);
        if (rc != 0)
            return cascade_recall__fail(a, rc, "last-n", p.msg);
        st->lastn = got;
        st->lastn_asked = n;
        st->lastn_loaded = true;
    }
    size_t m = n < st->lastn.count ? n : st->lastn.count;
    out->ids = cascade_arena_alloc(a->arena, (m + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(a->arena, (m + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores)
        return cascade_recall__nomem(a);
    if (m > 0) {
        memcpy(out->ids, st->lastn.ids, m * sizeof *out->ids);
        memcpy(out->scores, st->lastn.scores, m * sizeof *out->scores);
    }
    out->count = m;
    return 0;
}

bool cascade_recall__profile_wanted(const struct cascade_recall__channel_args *a)
{
    struct cascade_recall__request_state *st = a->state;
    if (!st->profile_loaded && profile_cached(a, st))
        st->profile_loaded = true;
    return !st->profile_loaded;
}

int cascade_recall__profile_take(const struct cascade_recall__channel_args *a,
                                 const redisReply *rep)
{
    struct cascade_recall__request_state *st = a->state;
    memset(&st->profile, 0, sizeof st->profile);
    st->profile_found = false;
    if (rep->type != REDIS_REPLY_NIL) {
        /* As cascade_store_get_user decodes it; a bad record is left to the
         * channel's own read, which reports it. */
        if (rep->type != REDIS_REPLY_STRING ||
            cascade_record_decode(cascade_v1_UserRecord_fields, &st->profile,
                                  (const uint8_t *)rep->str, rep->len) != 0) {
            memset(&st->profile, 0, sizeof st->profile);
            return CASCADE_EFORMAT;
        }
        st->profile_found = true;
    }
    profile_store(a, st);
    st->profile_loaded = true;
    return 0;
}

int cascade_recall__profile(const struct cascade_recall__channel_args *a,
                            const cascade_v1_UserRecord **profile, bool *found)
{
    struct cascade_recall__request_state *st = a->state;
    if (!st->profile_loaded && !profile_cached(a, st)) {
        int rc = cascade_store_get_user(a->redis, a->recall->ns, a->user_id, &st->profile,
                                        &st->profile_found);
        if (rc != 0)
            return cascade_recall__fail(a, rc, "profile", cascade_redis_error(a->redis));
        profile_store(a, st);
    }
    st->profile_loaded = true;
    *profile = &st->profile;
    *found = st->profile_found;
    return 0;
}
