/* The record cache (record_cache.h): parallel arrays of keys, read times,
 * found flags, value bytes and the epoch each slot was last dropped at; one
 * mutex held only while copying. */
#include "record_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct cascade_record_cache {
    pthread_mutex_t mu;
    uint64_t *keys; /* 0 = empty */
    int64_t *read_ms;
    bool *found;
    unsigned char *values;
    /* Epochs (under mu): a drop advances epoch and marks the slots it touched
     * (dropped_at) or the whole cache (flushed_at), so a put that read its
     * record at an earlier epoch can tell the record may be stale. */
    uint64_t *dropped_at;
    uint64_t epoch, flushed_at;
    size_t value_size, mask;
    _Atomic int64_t ttl_ms;
};

cascade_record_cache *cascade_record_cache_create(size_t slots, size_t value_size, int64_t ttl_ms)
{
    if (slots == 0 || value_size == 0 || ttl_ms <= 0)
        return NULL;
    size_t cap = 1;
    while (cap < slots)
        cap <<= 1;
    cascade_record_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->keys = calloc(cap, sizeof(*c->keys));
    c->read_ms = calloc(cap, sizeof(*c->read_ms));
    c->found = calloc(cap, sizeof(*c->found));
    c->values = calloc(cap, value_size);
    c->dropped_at = calloc(cap, sizeof(*c->dropped_at));
    if (!c->keys || !c->read_ms || !c->found || !c->values || !c->dropped_at) {
        free(c->dropped_at);
        free(c->keys);
        free(c->read_ms);
        free(c->found);
        free(c->values);
        free(c);
        return NULL;
    }
    c->value_size = value_size;
    c->mask = cap - 1;
    atomic_init(&c->ttl_ms, ttl_ms);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void cascade_record_cache_destroy(cascade_record_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->keys);
    free(c->read_ms);
    free(c->found);
    free(c->values);
    free(c->dropped_at);
    free(c);
}

static size_t slot_of(const cascade_record_cache *c, uint64_t key)
{
    return (size_t)cascade_hash64(&key, sizeof(key), 0x17e3) & c->mask;
}

size_t cascade_record_cache_get_many(cascade_record_cache *c, const uint64_t *keys, size_t n,
                                     void *values, bool *found, size_t *miss, int64_t now_ms)
{
    return cascade_record_cache_get_many_parts(c, keys, n, c->value_size, values, NULL, found, miss,
                                               now_ms);
}

size_t cascade_record_cache_get_many_parts(cascade_record_cache *c, const uint64_t *keys, size_t n,
                                           size_t head_size, void *values, void *rest, bool *found,
                                           size_t *miss, int64_t now_ms)
{
    size_t n_miss = 0, vs = c->value_size, rs = vs - head_size;
    unsigned char *out = values, *out_rest = rest;
    int64_t ttl_ms = atomic_load_explicit(&c->ttl_ms, memory_order_relaxed);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        size_t s = slot_of(c, keys[i]);
        if (keys[i] != 0 && c->keys[s] == keys[i] && now_ms - c->read_ms[s] < ttl_ms) {
            found[i] = c->found[s];
            memcpy(out + i * head_size, c->values + s * vs, head_size);
            if (out_rest && rs > 0)
                memcpy(out_rest + i * rs, c->values + s * vs + head_size, rs);
        } else {
            miss[n_miss++] = i;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n_miss;
}

void cascade_record_cache_put_many(cascade_record_cache *c, const uint64_t *keys, const size_t *idx,
                                   size_t n, const void *values, const bool *found, int64_t now_ms,
                                   uint64_t read_epoch)
{
    cascade_record_cache_put_many_parts(c, keys, idx, n, c->value_size, values, NULL, found, now_ms,
                                        read_epoch);
}

void cascade_record_cache_put_many_parts(cascade_record_cache *c, const uint64_t *keys,
                                         const size_t *idx, size_t n, size_t head_size,
                                         const void *values, const void *rest, const bool *found,
                                         int64_t now_ms, uint64_t read_epoch)
{
    size_t vs = c->value_size, rs = vs - head_size;
    const unsigned char *in = values, *in_rest = rest;
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < n && c->flushed_at <= read_epoch; k++) {
        uint64_t key = keys[idx[k]];
        if (key == 0)
            continue;
        size_t s = slot_of(c, key);
        if (c->dropped_at[s] > read_epoch)
            continue; /* dropped while this record was being read */
        c->keys[s] = key;
        c->read_ms[s] = now_ms;
        c->found[s] = found[k];
        memcpy(c->values + s * vs, in + k * head_size, head_size);
        if (rs > 0) {
            if (in_rest)
                memcpy(c->values + s * vs + head_size, in_rest + idx[k] * rs, rs);
            else
                memset(c->values + s * vs + head_size, 0, rs);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

uint64_t cascade_record_cache_epoch(cascade_record_cache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t e = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return e;
}

void cascade_record_cache_drop_many(cascade_record_cache *c, const uint64_t *keys, size_t n)
{
    pthread_mutex_lock(&c->mu);
    c->epoch++;
    for (size_t k = 0; k < n; k++) {
        size_t s = slot_of(c, keys[k]);
        if (c->keys[s] == keys[k])
            c->keys[s] = 0;
        c->dropped_at[s] = c->epoch; /* also when not cached: a put may be on its way */
    }
    pthread_mutex_unlock(&c->mu);
}

void cascade_record_cache_drop_all(cascade_record_cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->flushed_at = ++c->epoch;
    memset(c->keys, 0, (c->mask + 1) * sizeof(*c->keys));
    pthread_mutex_unlock(&c->mu);
}

void cascade_record_cache_set_ttl(cascade_record_cache *c, int64_t ttl_ms)
{
    if (ttl_ms > 0)
        atomic_store_explicit(&c->ttl_ms, ttl_ms, memory_order_relaxed);
}
