/* The record cache (record_cache.h): one array of slots, each its key, read
 * time, found flag and the epoch it was last dropped at, followed by its
 * value bytes, so a lookup touches one stretch of memory (with parallel
 * arrays each lookup missed the CPU cache once per array: the copy out of a
 * large table is bound by those misses); one mutex held only while copying. */
#include "record_cache.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct slot {
    uint64_t key; /* 0 = empty */
    int64_t read_ms;
    /* The epoch at which this slot was last dropped (see below). */
    uint64_t dropped_at;
    bool found;
    /* value_size bytes follow, at offsetof(struct slot, value) */
    alignas(8) unsigned char value[];
};

struct cascade_record_cache {
    pthread_mutex_t mu;
    unsigned char *slots; /* mask + 1 of them, stride bytes each */
    /* Epochs (under mu): a drop advances epoch and marks the slots it touched
     * (dropped_at) or the whole cache (flushed_at), so a put that read its
     * record at an earlier epoch can tell the record may be stale. */
    uint64_t epoch, flushed_at;
    size_t value_size, stride, mask;
    _Atomic int64_t ttl_ms;
};

static struct slot *slot_at(const cascade_record_cache *c, size_t s)
{
    return (struct slot *)(c->slots + s * c->stride);
}

cascade_record_cache *cascade_record_cache_create(size_t slots, size_t value_size, int64_t ttl_ms)
{
    if (slots == 0 || value_size == 0 || ttl_ms <= 0)
        return NULL;
    size_t cap = 1;
    while (cap < slots)
        cap <<= 1;
    /* A whole number of 8-byte words per slot keeps every slot's header aligned. */
    size_t stride = (sizeof(struct slot) + value_size + 7) & ~(size_t)7;
    cascade_record_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->slots = cap <= SIZE_MAX / stride ? calloc(cap, stride) : NULL;
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->value_size = value_size;
    c->stride = stride;
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
    free(c->slots);
    free(c);
}

static struct slot *slot_of(const cascade_record_cache *c, uint64_t key)
{
    return slot_at(c, (size_t)cascade_hash64(&key, sizeof(key), 0x17e3) & c->mask);
}

/* Lookups per batch whose slots are asked of memory together: a large table
 * misses the CPU cache on nearly every lookup, and the misses of a batch then
 * overlap instead of coming one after another. */
#define LOOKUP_BATCH 16

/* The slots of keys[0..m) into batch, each one's bytes prefetched. */
static void slots_prefetch(const cascade_record_cache *c, const uint64_t *keys, size_t m,
                           struct slot **batch)
{
    for (size_t j = 0; j < m; j++) {
        batch[j] = slot_of(c, keys[j]);
        for (size_t off = 0; off < c->stride; off += 64)
            __builtin_prefetch((const unsigned char *)batch[j] + off);
    }
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
    struct slot *batch[LOOKUP_BATCH];
    pthread_mutex_lock(&c->mu);
    for (size_t b = 0; b < n; b += LOOKUP_BATCH) {
        size_t m = n - b < LOOKUP_BATCH ? n - b : LOOKUP_BATCH;
        slots_prefetch(c, keys + b, m, batch);
        for (size_t j = 0; j < m; j++) {
            size_t i = b + j;
            struct slot *sl = batch[j];
            if (keys[i] != 0 && sl->key == keys[i] && now_ms - sl->read_ms < ttl_ms) {
                found[i] = sl->found;
                memcpy(out + i * head_size, sl->value, head_size);
                if (out_rest && rs > 0)
                    memcpy(out_rest + i * rs, sl->value + head_size, rs);
            } else {
                miss[n_miss++] = i;
            }
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
        struct slot *sl = slot_of(c, key);
        if (sl->dropped_at > read_epoch)
            continue; /* dropped while this record was being read */
        sl->key = key;
        sl->read_ms = now_ms;
        sl->found = found[k];
        memcpy(sl->value, in + k * head_size, head_size);
        if (rs > 0) {
            if (in_rest)
                memcpy(sl->value + head_size, in_rest + idx[k] * rs, rs);
            else
                memset(sl->value + head_size, 0, rs);
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
        struct slot *sl = slot_of(c, keys[k]);
        if (sl->key == keys[k])
            sl->key = 0;
        sl->dropped_at = c->epoch; /* also when not cached: a put may be on its way */
    }
    pthread_mutex_unlock(&c->mu);
}

void cascade_record_cache_drop_all(cascade_record_cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->flushed_at = ++c->epoch;
    for (size_t s = 0; s <= c->mask; s++) /* rare (FLUSHDB, tracking lost or back) */
        slot_at(c, s)->key = 0;
    pthread_mutex_unlock(&c->mu);
}

void cascade_record_cache_set_ttl(cascade_record_cache *c, int64_t ttl_ms)
{
    if (ttl_ms > 0)
        atomic_store_explicit(&c->ttl_ms, ttl_ms, memory_order_relaxed);
}
