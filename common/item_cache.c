/* Item record cache (item_cache.h): a power-of-two array of slots indexed by
 * a hash of the id, each with the id, the time it was read and the record;
 * one mutex, held only while copying records in or out. */
#include "item_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "hash.h"
#include "store.h"

struct slot {
    uint64_t id; /* 0 = empty (item ids are never 0 in a slot: see put) */
    int64_t read_ms;
    bool found;
    cascade_v1_ItemRecord rec;
};

struct cascade_item_cache {
    pthread_mutex_t mu;
    struct slot *slots;
    size_t mask;
    int64_t ttl_ms;
};

cascade_item_cache *cascade_item_cache_create(size_t slots, int64_t ttl_ms)
{
    if (slots == 0 || ttl_ms <= 0)
        return NULL;
    size_t cap = 1;
    while (cap < slots)
        cap <<= 1;
    cascade_item_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->slots = calloc(cap, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->mask = cap - 1;
    c->ttl_ms = ttl_ms;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void cascade_item_cache_destroy(cascade_item_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
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

static struct slot *slot_of(const cascade_item_cache *c, uint64_t id)
{
    return &c->slots[cascade_hash64(&id, sizeof(id), 0x17e3) & c->mask];
}

/* Copy fresh cached records into recs/found; the positions of the others
 * into miss. Returns the number of misses. */
static size_t lookup(cascade_item_cache *c, const uint64_t *ids, size_t n,
                     cascade_v1_ItemRecord *recs, bool *found, size_t *miss, int64_t now)
{
    size_t n_miss = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        const struct slot *s = slot_of(c, ids[i]);
        if (ids[i] != 0 && s->id == ids[i] && now - s->read_ms < c->ttl_ms) {
            found[i] = s->found;
            if (s->found)
                recs[i] = s->rec;
            else
                memset(&recs[i], 0, sizeof(recs[i])); /* as cascade_store_get_items */
        } else {
            miss[n_miss++] = i;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n_miss;
}

static void put(cascade_item_cache *c, const uint64_t *ids, const size_t *miss, size_t n_miss,
                const cascade_v1_ItemRecord *got, const bool *got_found, int64_t now)
{
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < n_miss; k++) {
        uint64_t id = ids[miss[k]];
        if (id == 0)
            continue;
        struct slot *s = slot_of(c, id);
        s->id = id;
        s->read_ms = now;
        s->found = got_found[k];
        if (got_found[k])
            s->rec = got[k];
    }
    pthread_mutex_unlock(&c->mu);
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
    size_t n_miss = lookup(c, ids, n, recs, found, miss, now);
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
    put(c, ids, miss, n_miss, got, got_found, now);
out:
    free(miss);
    free(miss_ids);
    free(got);
    free(got_found);
    return rc;
}
