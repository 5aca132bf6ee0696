/* Item record cache (item_cache.h): item ids → decoded ItemRecords in a
 * record_cache, misses read with one MGET and then stored. */
#include "item_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "metrics.h"
#include "record_cache.h"
#include "store.h"

struct cascade_item_cache {
    cascade_record_cache *records; /* key = item id, value = cascade_v1_ItemRecord */
    cascade_metric *hits, *misses; /* NULL without a registry */
};

cascade_item_cache *cascade_item_cache_create(size_t slots, int64_t ttl_ms)
{
    cascade_record_cache *r =
        cascade_record_cache_create(slots, sizeof(cascade_v1_ItemRecord), ttl_ms);
    cascade_item_cache *c = r ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        cascade_record_cache_destroy(r);
        return NULL;
    }
    c->records = r;
    return c;
}

void cascade_item_cache_destroy(cascade_item_cache *c)
{
    if (!c)
        return;
    cascade_record_cache_destroy(c->records);
    free(c);
}

void cascade_item_cache_set_metrics(cascade_item_cache *c, struct cascade_metrics *m,
                                    const char *stage)
{
    char name[128];
    if (!c || !m)
        return;
    snprintf(name, sizeof name, "cascade_%s_item_cache_hits_total", stage);
    c->hits = cascade_metric_get(
        cascade_metrics_counter(m, name, "Item records served from the item cache.", NULL), NULL);
    snprintf(name, sizeof name, "cascade_%s_item_cache_misses_total", stage);
    c->misses = cascade_metric_get(
        cascade_metrics_counter(m, name, "Item records read from Redis (then cached).", NULL),
        NULL);
}

int cascade_item_cache_from_config(const struct cascade_config *cfg, const char *stage,
                                   cascade_item_cache **out, char *err, size_t errlen)
{
    char path[96];
    int64_t ttl, slots;
    int rc;
    *out = NULL;
    snprintf(path, sizeof path, "%s.item_cache.ttl_ms", stage);
    if ((rc = cascade_config_int(cfg, path, 0, 0, 3600000, &ttl, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof path, "%s.item_cache.slots", stage);
    if ((rc = cascade_config_int(cfg, path, 65536, 1, 1 << 24, &slots, err, errlen)) != 0)
        return rc;
    if (ttl == 0)
        return 0;
    if (!(*out = cascade_item_cache_create((size_t)slots, ttl))) {
        snprintf(err, errlen, "%s: out of memory for %lld cached item records", stage,
                 (long long)slots);
        return CASCADE_ENOMEM;
    }
    return 0;
}

size_t cascade_item_cache_lookup(cascade_item_cache *c, const uint64_t *ids, size_t n,
                                 cascade_v1_ItemRecord *recs, bool *found, size_t *miss,
                                 int64_t now_ms)
{
    if (!c) {
        for (size_t i = 0; i < n; i++)
            miss[i] = i;
        return n;
    }
    /* A missing record is cached zeroed, as cascade_store_get_items returns it. */
    size_t n_miss = cascade_record_cache_get_many(c->records, ids, n, recs, found, miss, now_ms);
    if (c->hits)
        cascade_metric_add(c->hits, (double)(n - n_miss));
    if (c->misses)
        cascade_metric_add(c->misses, (double)n_miss);
    return n_miss;
}

void cascade_item_cache_store(cascade_item_cache *c, const uint64_t *ids, const size_t *miss,
                              size_t n_miss, const cascade_v1_ItemRecord *got,
                              const bool *got_found, int64_t now_ms)
{
    if (c && n_miss > 0)
        cascade_record_cache_put_many(c->records, ids, miss, n_miss, got, got_found, now_ms);
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
    size_t n_miss = cascade_item_cache_lookup(c, ids, n, recs, found, miss, now);
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
    cascade_item_cache_store(c, ids, miss, n_miss, got, got_found, now);
out:
    free(miss);
    free(miss_ids);
    free(got);
    free(got_found);
    return rc;
}
