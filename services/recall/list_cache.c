/* The Recall list cache: a chained hash table of entries (key, ids, scores in
 * one allocation) threaded on an LRU list, under one mutex held only for
 * lookups and pointer updates — copying and freeing happen outside it. A
 * reader's reference keeps an evicted entry alive until it is released. */
#include "list_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"

#define HASH_SEED 0x6c697374u /* "list" */
#define MAX_BUCKETS ((size_t)1 << 20)

struct entry {
    struct cascade_list_cache_list list; /* first: a held list is its entry */
    struct entry *hnext;                 /* hash chain */
    struct entry *prev, *next;           /* LRU order, most recent at the head */
    uint64_t hash;
    size_t bytes;
    unsigned refs; /* readers holding the list */
    bool linked;   /* still in the table (false once evicted or replaced) */
    char key[];
};

struct cascade_list_cache {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t n_buckets; /* a power of two */
    struct entry *head, *tail;
    size_t max_entries, max_bytes;
    size_t entries, bytes;
    uint64_t hits, misses, evictions;
    struct cascade_list_cache_metrics metrics;
};

cascade_list_cache *cascade_list_cache_create(size_t max_entries, size_t max_bytes,
                                              const struct cascade_list_cache_metrics *metrics)
{
    if (max_entries == 0 || max_bytes == 0)
        return NULL;
    cascade_list_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n_buckets = 16;
    while (c->n_buckets < max_entries && c->n_buckets < MAX_BUCKETS)
        c->n_buckets *= 2;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    if (metrics)
        c->metrics = *metrics;
    return c;
}

void cascade_list_cache_destroy(cascade_list_cache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ------------------------------------------------------------ table (locked) */

static struct entry **bucket_of(cascade_list_cache *c, uint64_t hash)
{
    return &c->buckets[hash & (c->n_buckets - 1)];
}

static struct entry *table_find(cascade_list_cache *c, const char *key, uint64_t hash)
{
    for (struct entry *e = *bucket_of(c, hash); e; e = e->hnext)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void lru_unlink(cascade_list_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(cascade_list_cache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Take e out of the table. It is returned for freeing (through *dead, a
 * chain on hnext) unless a reader still holds it; release frees it then. */
static void table_remove(cascade_list_cache *c, struct entry *e, struct entry **dead)
{
    struct entry **p = bucket_of(c, e->hash);
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(c, e);
    e->linked = false;
    c->entries--;
    c->bytes -= e->bytes;
    e->hnext = NULL;
    if (e->refs == 0) {
        e->hnext = *dead;
        *dead = e;
    }
}

static void table_insert(cascade_list_cache *c, struct entry *e)
{
    struct entry **b = bucket_of(c, e->hash);
    e->hnext = *b;
    *b = e;
    lru_push_front(c, e);
    e->linked = true;
    c->entries++;
    c->bytes += e->bytes;
}

static void update_gauges(cascade_list_cache *c)
{
    cascade_metric_set(c->metrics.entries, (double)c->entries);
    cascade_metric_set(c->metrics.bytes, (double)c->bytes);
}

static void free_chain(struct entry *e)
{
    for (struct entry *next; e; e = next) {
        next = e->hnext;
        free(e);
    }
}

/* ------------------------------------------------------------ API */

const struct cascade_list_cache_list *cascade_list_cache_get(cascade_list_cache *c, const char *key,
                                                             size_t want)
{
    uint64_t hash = cascade_hash_str(key, HASH_SEED);
    pthread_mutex_lock(&c->mu);
    struct entry *e = table_find(c, key, hash);
    if (e && (e->list.complete || e->list.count >= want)) {
        e->refs++;
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->hits++;
    } else {
        e = NULL;
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    cascade_metric_inc(e ? c->metrics.hits : c->metrics.misses);
    return e ? &e->list : NULL;
}

void cascade_list_cache_release(cascade_list_cache *c, const struct cascade_list_cache_list *l)
{
    if (!l)
        return;
    struct entry *e = (struct entry *)l;
    pthread_mutex_lock(&c->mu);
    bool dead = --e->refs == 0 && !e->linked;
    pthread_mutex_unlock(&c->mu);
    if (dead)
        free(e);
}

/* A new entry holding copies of key and the arrays (NULL on out of memory). */
static struct entry *entry_new(const char *key, uint64_t hash, const uint64_t *ids,
                               const double *scores, size_t count, bool complete)
{
    size_t klen = strlen(key) + 1;
    size_t head = (sizeof(struct entry) + klen + 7) & ~(size_t)7;
    size_t bytes = head + count * (sizeof *ids + sizeof *scores);
    struct entry *e = malloc(bytes);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    uint64_t *id_copy = (uint64_t *)((char *)e + head);
    double *score_copy = (double *)(id_copy + count);
    if (count) {
        memcpy(id_copy, ids, count * sizeof *ids);
        memcpy(score_copy, scores, count * sizeof *scores);
    }
    e->list.ids = id_copy;
    e->list.scores = score_copy;
    e->list.count = count;
    e->list.complete = complete;
    e->hash = hash;
    e->bytes = bytes;
    return e;
}

int cascade_list_cache_put(cascade_list_cache *c, const char *key, const uint64_t *ids,
                           const double *scores, size_t count, bool complete)
{
    uint64_t hash = cascade_hash_str(key, HASH_SEED);
    struct entry *e = entry_new(key, hash, ids, scores, count, complete);
    if (!e)
        return CASCADE_ENOMEM;
    if (e->bytes > c->max_bytes) {
        free(e);
        return CASCADE_ETOOBIG;
    }
    struct entry *dead = NULL;
    uint64_t evicted = 0;
    pthread_mutex_lock(&c->mu);
    struct entry *old = table_find(c, key, hash);
    if (old && (old->list.complete || (old->list.count >= count && !complete))) {
        e->hnext = dead; /* another thread stored at least as much first */
        dead = e;
    } else {
        if (old)
            table_remove(c, old, &dead);
        table_insert(c, e);
        while (c->entries > c->max_entries || c->bytes > c->max_bytes) {
            table_remove(c, c->tail, &dead);
            evicted++;
        }
        c->evictions += evicted;
        update_gauges(c);
    }
    pthread_mutex_unlock(&c->mu);
    free_chain(dead);
    cascade_metric_add(c->metrics.evictions, (double)evicted);
    return 0;
}

void cascade_list_cache_clear(cascade_list_cache *c)
{
    struct entry *dead = NULL;
    pthread_mutex_lock(&c->mu);
    while (c->tail)
        table_remove(c, c->tail, &dead);
    update_gauges(c);
    pthread_mutex_unlock(&c->mu);
    free_chain(dead);
}

void cascade_list_cache_stats(cascade_list_cache *c, struct cascade_list_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    out->entries = c->entries;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
