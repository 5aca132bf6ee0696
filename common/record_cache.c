/* The record cache (record_cache.h): parallel arrays of keys, read times,
 * found flags and value bytes; one mutex held only while copying. */
#include "record_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct cascade_record_cache {
    pthread_mutex_t mu;
    uint64_t *keys; /* 0 = empty */
    int64_t *read_ms;
    bool *found;
    unsigned char *values;
    size_t value_size, mask;
    int64_t ttl_ms;
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
    if (!c->keys || !c->read_ms || !c->found || !c->values) {
        free(c->keys);
        free(c->read_ms);
        free(c->found);
        free(c->values);
        free(c);
        return NULL;
    }
    c->value_size = value_size;
    c->mask = cap - 1;
    c->ttl_ms = ttl_ms;
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
    free(c);
}

static size_t slot_of(const cascade_record_cache *c, uint64_t key)
{
    return (size_t)cascade_hash64(&key, sizeof(key), 0x17e3) & c->mask;
}

size_t cascade_record_cache_get_many(cascade_record_cache *c, const uint64_t *keys, size_t n,
                                     void *values, bool *found, size_t *miss, int64_t now_ms)
{
    size_t n_miss = 0, vs = c->value_size;
    unsigned char *out = values;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        size_t s = slot_of(c, keys[i]);
        if (keys[i] != 0 && c->keys[s] == keys[i] && now_ms - c->read_ms[s] < c->ttl_ms) {
            found[i] = c->found[s];
            memcpy(out + i * vs, c->values + s * vs, vs);
        } else {
            miss[n_miss++] = i;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n_miss;
}

void cascade_record_cache_put_many(cascade_record_cache *c, const uint64_t *keys, const size_t *idx,
                                   size_t n, const void *values, const bool *found, int64_t now_ms)
{
    size_t vs = c->value_size;
    const unsigned char *in = values;
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < n; k++) {
        uint64_t key = keys[idx[k]];
        if (key == 0)
            continue;
        size_t s = slot_of(c, key);
        c->keys[s] = key;
        c->read_ms[s] = now_ms;
        c->found[s] = found[k];
        memcpy(c->values + s * vs, in + k * vs, vs);
    }
    pthread_mutex_unlock(&c->mu);
}
