/* Item record cache (item_cache.h): item ids → decoded ItemRecords in a
 * record_cache, misses read with one MGET and then stored; with tracking, a
 * key_tracker's announcements drop records and switch the expiry. */
#include "item_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "record_cache.h"
#include "store.h"

#define ITEM_CACHE_DROP_MAX 256 /* ids dropped per lock */

struct cascade_item_cache {
    /* key = item id, value = cascade_v1_ItemRecord then derive->size bytes */
    cascade_record_cache *records;
    const struct cascade_item_derive *derive; /* NULL: records only */
    cascade_metric *hits, *misses;            /* NULL without a registry */
    /* Tracking (NULL tracker: records simply expire after ttl_ms). */
    cascade_key_tracker *tracker;
    int64_t ttl_ms, tracked_ttl_ms;
    char prefix[CASCADE_KEY_MAX]; /* "<ns>:item:" */
    size_t prefix_len;
    cascade_metric *invalidations, *tracking_lost, *tracking; /* NULL without a registry */
};

cascade_item_cache *cascade_item_cache_create(size_t slots, int64_t ttl_ms)
{
    return cascade_item_cache_create_derived(slots, ttl_ms, NULL);
}

cascade_item_cache *cascade_item_cache_create_derived(size_t slots, int64_t ttl_ms,
                                                      const struct cascade_item_derive *derive)
{
    if (derive && (derive->size == 0 || !derive->fn))
        derive = NULL;
    cascade_record_cache *r = cascade_record_cache_create(
        slots, sizeof(cascade_v1_ItemRecord) + (derive ? derive->size : 0), ttl_ms);
    cascade_item_cache *c = r ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        cascade_record_cache_destroy(r);
        return NULL;
    }
    c->records = r;
    c->derive = derive;
    c->ttl_ms = ttl_ms;
    return c;
}

size_t cascade_item_cache_derived_size(const cascade_item_cache *c)
{
    return c && c->derive ? c->derive->size : 0;
}

void cascade_item_cache_destroy(cascade_item_cache *c)
{
    if (!c)
        return;
    cascade_key_tracker_stop(c->tracker); /* first: its callbacks use the records */
    cascade_record_cache_destroy(c->records);
    free(c);
}

/* ---- tracking: the key tracker's callbacks (on its thread) ---- */

/* The item id of "<ns>:item:<id>"; 0 for any other key. */
static uint64_t item_id_of(const cascade_item_cache *c, const char *key, size_t len)
{
    uint64_t id = 0;
    if (len <= c->prefix_len || len - c->prefix_len > 20 ||
        memcmp(key, c->prefix, c->prefix_len) != 0)
        return 0;
    for (size_t i = c->prefix_len; i < len; i++) {
        if (key[i] < '0' || key[i] > '9' || id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t)(key[i] - '0');
    }
    return id;
}

static void on_keys_changed(void *ctx, const char *const *keys, const size_t *lens, size_t n)
{
    cascade_item_cache *c = ctx;
    uint64_t ids[ITEM_CACHE_DROP_MAX];
    size_t n_ids = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = item_id_of(c, keys[i], lens[i]);
        if (id != 0)
            ids[n_ids++] = id;
        if (n_ids == ITEM_CACHE_DROP_MAX || (i + 1 == n && n_ids > 0)) {
            cascade_record_cache_drop_many(c->records, ids, n_ids);
            if (c->invalidations)
                cascade_metric_add(c->invalidations, (double)n_ids);
            n_ids = 0;
        }
    }
}

static void on_flush(void *ctx)
{
    cascade_item_cache *c = ctx;
    cascade_record_cache_drop_all(c->records);
}

/* Records cached under the other regime cannot be trusted under this one:
 * empty the cache at every change (drop_all also refuses the reads in
 * flight), and only then let records live tracked_ttl_ms. */
static void on_tracking(void *ctx, bool on)
{
    cascade_item_cache *c = ctx;
    if (on) {
        cascade_record_cache_drop_all(c->records);
        cascade_record_cache_set_ttl(c->records, c->tracked_ttl_ms);
    } else {
        cascade_record_cache_set_ttl(c->records, c->ttl_ms);
        cascade_record_cache_drop_all(c->records);
        if (c->tracking_lost)
            cascade_metric_inc(c->tracking_lost);
    }
    if (c->tracking)
        cascade_metric_set(c->tracking, on ? 1 : 0);
}

int cascade_item_cache_track(cascade_item_cache *c, const struct cascade_redis_opts *opts,
                             const char *ns, const char *stage, int64_t tracked_ttl_ms, char *err,
                             size_t errlen)
{
    char name[96];
    if (c->tracker || tracked_ttl_ms <= 0) {
        snprintf(err, errlen, "%s: item cache tracking started twice or with a TTL <= 0", stage);
        return CASCADE_EINVAL;
    }
    /* The key of id 0 without its "0": the prefix every item key starts with. */
    cascade_key_item(c->prefix, ns, 0);
    c->prefix_len = strlen(c->prefix) - 1;
    c->prefix[c->prefix_len] = '\0';
    c->tracked_ttl_ms = tracked_ttl_ms;
    struct cascade_key_tracker_events ev = {
        .ctx = c, .keys = on_keys_changed, .flush = on_flush, .tracking = on_tracking};
    snprintf(name, sizeof name, "%s item cache", stage);
    if (!(c->tracker = cascade_key_tracker_start(opts, c->prefix, name, &ev, err, errlen)))
        return CASCADE_ENOMEM;
    return 0;
}

cascade_key_tracker *cascade_item_cache_tracker(cascade_item_cache *c)
{
    return c ? c->tracker : NULL;
}

/* The series cascade_<stage>_item_cache_<what> (a counter, or a gauge). */
static cascade_metric *cache_metric(struct cascade_metrics *m, const char *stage, const char *what,
                                    bool gauge, const char *help)
{
    char name[128];
    snprintf(name, sizeof name, "cascade_%s_item_cache_%s", stage, what);
    return cascade_metric_get(gauge ? cascade_metrics_gauge(m, name, help, NULL)
                                    : cascade_metrics_counter(m, name, help, NULL),
                              NULL);
}

void cascade_item_cache_set_metrics(cascade_item_cache *c, struct cascade_metrics *m,
                                    const char *stage)
{
    if (!c || !m)
        return;
    c->hits =
        cache_metric(m, stage, "hits_total", false, "Item records served from the item cache.");
    c->misses = cache_metric(m, stage, "misses_total", false,
                             "Item records read from Redis (then cached).");
    c->invalidations = cache_metric(m, stage, "invalidations_total", false,
                                    "Item records Redis announced as changed (dropped from the "
                                    "item cache; item_cache.tracking).");
    c->tracking_lost = cache_metric(m, stage, "tracking_lost_total", false,
                                    "Times the item cache lost Redis change tracking (emptied, "
                                    "then records kept ttl_ms until tracking is back).");
    c->tracking = cache_metric(m, stage, "tracking", true,
                               "1 while Redis announces item record changes to the item cache "
                               "(records kept tracked_ttl_ms), else 0.");
}

int cascade_item_cache_from_config(const struct cascade_config *cfg, const char *stage,
                                   cascade_redis_pool *redis, const char *ns,
                                   const struct cascade_item_derive *derive,
                                   struct cascade_metrics *m, cascade_item_cache **out, char *err,
                                   size_t errlen)
{
    char path[96];
    int64_t ttl, slots, tracked_ttl;
    bool tracking;
    int rc;
    *out = NULL;
    snprintf(path, sizeof path, "%s.item_cache.ttl_ms", stage);
    if ((rc = cascade_config_int(cfg, path, 0, 0, 3600000, &ttl, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof path, "%s.item_cache.slots", stage);
    if ((rc = cascade_config_int(cfg, path, 65536, 1, 1 << 24, &slots, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof path, "%s.item_cache.tracking", stage);
    if ((rc = cascade_config_bool(cfg, path, false, &tracking, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof path, "%s.item_cache.tracked_ttl_ms", stage);
    if ((rc = cascade_config_int(cfg, path, 600000, 1, 86400000, &tracked_ttl, err, errlen)) != 0)
        return rc;
    if (ttl == 0)
        return 0;
    if (!(*out = cascade_item_cache_create_derived((size_t)slots, ttl, derive))) {
        snprintf(err, errlen, "%s: out of memory for %lld cached item records", stage,
                 (long long)slots);
        return CASCADE_ENOMEM;
    }
    cascade_item_cache_set_metrics(*out, m, stage);
    if (tracking && redis &&
        (rc = cascade_item_cache_track(*out, cascade_redis_pool_opts(redis), ns, stage, tracked_ttl,
                                       err, errlen)) != 0) {
        cascade_item_cache_destroy(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

size_t cascade_item_cache_lookup(cascade_item_cache *c, const uint64_t *ids, size_t n,
                                 cascade_v1_ItemRecord *recs, void *derived, bool *found,
                                 size_t *miss, int64_t now_ms, uint64_t *epoch)
{
    *epoch = 0;
    if (!c) {
        for (size_t i = 0; i < n; i++)
            miss[i] = i;
        return n;
    }
    /* Before anything is read: a drop from now on refuses the misses' records. */
    *epoch = cascade_record_cache_epoch(c->records);
    /* A missing record is cached zeroed, as cascade_store_get_items returns it. */
    size_t n_miss = cascade_record_cache_get_many_parts(
        c->records, ids, n, sizeof *recs, recs, c->derive ? derived : NULL, found, miss, now_ms);
    if (c->hits)
        cascade_metric_add(c->hits, (double)(n - n_miss));
    if (c->misses)
        cascade_metric_add(c->misses, (double)n_miss);
    return n_miss;
}

void cascade_item_cache_store(cascade_item_cache *c, const uint64_t *ids, const size_t *miss,
                              size_t n_miss, const cascade_v1_ItemRecord *got,
                              const bool *got_found, void *derived, int64_t now_ms, uint64_t epoch)
{
    if (!c || n_miss == 0)
        return;
    if (c->derive && derived) {
        /* Derived from the record as read (an absent one zeroed with its id),
         * before it is cached: every cached entry carries its own. */
        for (size_t k = 0; k < n_miss; k++) {
            cascade_v1_ItemRecord unknown = cascade_v1_ItemRecord_init_zero;
            unknown.item_id = ids[miss[k]];
            c->derive->fn(got_found[k] ? &got[k] : &unknown,
                          (unsigned char *)derived + miss[k] * c->derive->size);
        }
    }
    cascade_record_cache_put_many_parts(c->records, ids, miss, n_miss, sizeof *got, got,
                                        c->derive ? derived : NULL, got_found, now_ms, epoch);
}

int cascade_item_cache_get(cascade_item_cache *c, cascade_redis *r, const char *ns,
                           const uint64_t *ids, size_t n, cascade_v1_ItemRecord *recs, bool *found,
                           size_t *hits)
{
    if (hits)
        *hits = 0;
    if (!c || n == 0)
        return cascade_store_get_items(r, ns, ids, n, recs, found);
    int64_t now = cascade_now_ms();
    size_t *miss = malloc(n * sizeof(*miss));
    uint64_t *miss_ids = malloc(n * sizeof(*miss_ids));
    cascade_v1_ItemRecord *got = malloc(n * sizeof(*got));
    bool *got_found = malloc(n * sizeof(*got_found));
    int rc = CASCADE_ENOMEM;
    if (!miss || !miss_ids || !got || !got_found)
        goto out;
    uint64_t epoch;
    size_t n_miss = cascade_item_cache_lookup(c, ids, n, recs, NULL, found, miss, now, &epoch);
    if (hits)
        *hits = n - n_miss;
    rc = 0;
    if (n_miss == 0)
        goto out;
    for (size_t k = 0; k < n_miss; k++)
        miss_ids[k] = ids[miss[k]];
    if ((rc = cascade_store_get_items(r, ns, miss_ids, n_miss, got, got_found)) != 0)
        goto out;
    for (size_t k = 0; k < n_miss; k++) {
        found[miss[k]] = got_found[k];
        recs[miss[k]] = got[k];
    }
    cascade_item_cache_store(c, ids, miss, n_miss, got, got_found, NULL, now, epoch);
out:
    free(miss);
    free(miss_ids);
    free(got);
    free(got_found);
    return rc;
}
