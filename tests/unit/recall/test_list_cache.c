/* The Recall list cache (services/recall/list_cache.h) on its own: hits and
 * misses by depth, LRU eviction order, the entry and byte bounds, a held list
 * surviving its eviction, replacement by longer lists only, a new generation
 * key, clear, metrics, and threads sharing one cache. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "error.h"
#include "list_cache.h"
#include "metrics.h"

/* ids base+i, scores 1000-i, for i < n (n <= 1000). Thread-safe. */
static int put_seq(cascade_list_cache *c, const char *key, uint64_t base, size_t n, bool complete)
{
    uint64_t ids[1000];
    double scores[1000];
    for (size_t i = 0; i < n; i++) {
        ids[i] = base + i;
        scores[i] = 1000.0 - (double)i;
    }
    return cascade_list_cache_put(c, key, ids, scores, n, complete);
}

static bool cached(cascade_list_cache *c, const char *key, size_t want)
{
    const struct cascade_list_cache_list *l = cascade_list_cache_get(c, key, want);
    cascade_list_cache_release(c, l);
    return l != NULL;
}

static void test_hit_miss(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(10, 1 << 20, NULL);
    assert_non_null(c);
    assert_null(cascade_list_cache_get(c, "t:hot@1", 1));
    assert_int_equal(put_seq(c, "t:hot@1", 100, 5, false), 0);
    const struct cascade_list_cache_list *l = cascade_list_cache_get(c, "t:hot@1", 3);
    assert_non_null(l);
    assert_int_equal(l->count, 5);
    assert_false(l->complete);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(l->ids[i], 100 + i);
        assert_float_equal(l->scores[i], 1000.0 - (double)i, 0);
    }
    cascade_list_cache_release(c, l);
    assert_true(cached(c, "t:hot@1", 5));
    /* A prefix of 5 cannot answer 6 ... */
    assert_false(cached(c, "t:hot@1", 6));
    /* ... but the whole list (3 entries) answers any depth. */
    assert_int_equal(put_seq(c, "t:city@1:7", 1, 3, true), 0);
    assert_true(cached(c, "t:city@1:7", 500));
    struct cascade_list_cache_stats s;
    cascade_list_cache_stats(c, &s);
    assert_int_equal(s.hits, 3);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 0);
    cascade_list_cache_destroy(c);
    cascade_list_cache_destroy(NULL);
}

/* Two entries at most: the least recently used goes first, and a get counts
 * as a use. */
static void test_lru_order(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(2, 1 << 20, NULL);
    assert_int_equal(put_seq(c, "a", 1, 4, true), 0);
    assert_int_equal(put_seq(c, "b", 2, 4, true), 0);
    assert_true(cached(c, "a", 1)); /* a is now the most recent */
    assert_int_equal(put_seq(c, "c", 3, 4, true), 0);
    assert_false(cached(c, "b", 1));
    assert_true(cached(c, "a", 1));
    assert_true(cached(c, "c", 1));
    assert_int_equal(put_seq(c, "d", 4, 4, true), 0); /* a was used before c */
    assert_false(cached(c, "a", 1));
    assert_true(cached(c, "c", 1));
    assert_true(cached(c, "d", 1));
    struct cascade_list_cache_stats s;
    cascade_list_cache_stats(c, &s);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 2);
    cascade_list_cache_destroy(c);
}

/* The byte budget holds after every put; a list larger than the whole budget
 * is refused. */
static void test_byte_bound(void **state)
{
    (void)state;
    const size_t budget = 8000; /* a 200-entry list takes 3200 B plus its header */
    cascade_list_cache *c = cascade_list_cache_create(1000, budget, NULL);
    struct cascade_list_cache_stats s;
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(put_seq(c, key, (uint64_t)i, 200, true), 0);
        cascade_list_cache_stats(c, &s);
        assert_true(s.bytes <= budget);
        assert_true(cached(c, key, 200)); /* the newest always fits */
    }
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 18);
    assert_int_equal(put_seq(c, "huge", 0, 1000, true), CASCADE_ETOOBIG);
    assert_false(cached(c, "huge", 1));
    assert_null(cascade_list_cache_create(0, budget, NULL));
    assert_null(cascade_list_cache_create(1, 0, NULL));
    cascade_list_cache_destroy(c);
}

/* A reader's list stays valid after its entry is evicted or replaced. */
static void test_held_list_survives_eviction(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(1, 1 << 20, NULL);
    assert_int_equal(put_seq(c, "a", 500, 100, true), 0);
    const struct cascade_list_cache_list *held = cascade_list_cache_get(c, "a", 100);
    assert_non_null(held);
    assert_int_equal(put_seq(c, "b", 7, 100, true), 0); /* evicts a */
    assert_false(cached(c, "a", 1));
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(held->ids[i], 500 + i);
    cascade_list_cache_release(c, held);
    cascade_list_cache_destroy(c);
}

/* A key is replaced only by a longer (or complete) list. */
static void test_replace_longer_only(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(4, 1 << 20, NULL);
    assert_int_equal(put_seq(c, "a", 1, 2, false), 0);
    assert_int_equal(put_seq(c, "a", 1, 5, false), 0);
    assert_true(cached(c, "a", 5));
    assert_int_equal(put_seq(c, "a", 1, 3, false), 0);
    assert_true(cached(c, "a", 5));
    assert_int_equal(put_seq(c, "a", 1, 5, true), 0);
    assert_true(cached(c, "a", 50));
    struct cascade_list_cache_stats s;
    cascade_list_cache_stats(c, &s);
    assert_int_equal(s.entries, 1);
    cascade_list_cache_destroy(c);
}

/* A new generation is a new key: its list is served, not the old one. */
static void test_generation_switch(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(8, 1 << 20, NULL);
    assert_int_equal(put_seq(c, "t:hot@1", 10, 3, true), 0);
    assert_null(cascade_list_cache_get(c, "t:hot@2", 1));
    assert_int_equal(put_seq(c, "t:hot@2", 20, 3, true), 0);
    const struct cascade_list_cache_list *l = cascade_list_cache_get(c, "t:hot@2", 3);
    assert_non_null(l);
    assert_int_equal(l->ids[0], 20);
    cascade_list_cache_release(c, l);
    cascade_list_cache_destroy(c);
}

/* clear drops every list; one held across it stays readable. */
static void test_clear(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(8, 1 << 20, NULL);
    assert_int_equal(put_seq(c, "a", 1, 3, true), 0);
    assert_int_equal(put_seq(c, "b", 2, 3, true), 0);
    const struct cascade_list_cache_list *held = cascade_list_cache_get(c, "a", 3);
    cascade_list_cache_clear(c);
    assert_false(cached(c, "a", 1));
    assert_false(cached(c, "b", 1));
    assert_int_equal(held->ids[2], 3);
    cascade_list_cache_release(c, held);
    struct cascade_list_cache_stats s;
    cascade_list_cache_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    cascade_list_cache_destroy(c);
}

static void test_metrics(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    struct cascade_list_cache_metrics lm = {
        cascade_metric_get(cascade_metrics_counter(m, "hits_total", "h", NULL), NULL),
        cascade_metric_get(cascade_metrics_counter(m, "misses_total", "m", NULL), NULL),
        cascade_metric_get(cascade_metrics_counter(m, "evictions_total", "e", NULL), NULL),
        cascade_metric_get(cascade_metrics_gauge(m, "entries", "n", NULL), NULL),
        cascade_metric_get(cascade_metrics_gauge(m, "bytes", "b", NULL), NULL),
    };
    cascade_list_cache *c = cascade_list_cache_create(1, 1 << 20, &lm);
    assert_false(cached(c, "a", 1));
    assert_int_equal(put_seq(c, "a", 1, 3, true), 0);
    assert_true(cached(c, "a", 1));
    assert_true(cached(c, "a", 2));
    assert_int_equal(put_seq(c, "b", 1, 3, true), 0);
    assert_float_equal(cascade_metric_value(lm.hits), 2, 0);
    assert_float_equal(cascade_metric_value(lm.misses), 1, 0);
    assert_float_equal(cascade_metric_value(lm.evictions), 1, 0);
    assert_float_equal(cascade_metric_value(lm.entries), 1, 0);
    assert_true(cascade_metric_value(lm.bytes) > 48);
    cascade_list_cache_destroy(c);
    cascade_metrics_destroy(m);
}

struct worker {
    cascade_list_cache *cache;
    int id;
    int bad; /* lists whose contents were not their key's */
    int failed;
};

/* Key k holds ids k*1000 + i; 40 keys over a 16-entry cache, so threads hit,
 * miss, insert and evict all the time. Each key is asked for three times in a
 * row: a cyclic walk over 40 keys alone would never hit a 16-entry LRU, and
 * whether threads interleave enough to hit is up to the scheduler. */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20000; i++) {
        int k = ((i / 3) * 7 + w->id * 13) % 40;
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        const struct cascade_list_cache_list *l = cascade_list_cache_get(w->cache, key, 50);
        if (!l) {
            if (put_seq(w->cache, key, (uint64_t)k * 1000, 50 + (size_t)(i % 3), false) != 0)
                w->failed++;
            continue;
        }
        for (size_t j = 0; j < l->count; j++)
            if (l->ids[j] != (uint64_t)k * 1000 + j || l->scores[j] != 1000.0 - (double)j)
                w->bad++;
        cascade_list_cache_release(w->cache, l);
    }
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    (void)state;
    cascade_list_cache *c = cascade_list_cache_create(16, 1 << 20, NULL);
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){c, i, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
        assert_int_equal(w[i].failed, 0);
    }
    struct cascade_list_cache_stats s;
    cascade_list_cache_stats(c, &s);
    assert_true(s.entries <= 16);
    assert_true(s.hits > 0);
    assert_true(s.evictions > 0);
    cascade_list_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss),
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_held_list_survives_eviction),
        cmocka_unit_test(test_replace_longer_only),
        cmocka_unit_test(test_generation_switch),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_concurrent_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
