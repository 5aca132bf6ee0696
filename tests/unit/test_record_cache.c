/* Unit tests for common/record_cache.c: the direct-mapped rules single-
 * threaded (hits within the TTL, key 0, a colliding key replaces the slot),
 * then threads hammering one small cache with gets and puts at once: every
 * value a get returns is one some thread wrote for that key, whole (no torn
 * copy), with that key's found flag; and after concurrent puts of disjoint
 * keys no entry is lost beyond what the slot rule replaces; drops (one key,
 * every key) and the epoch that refuses a put read before a drop. Run under
 * TSan by scripts/tsan.sh. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "record_cache.h"
#include "rng.h"
#include "support.h"

#define THREADS 8
#define KEYS 512     /* keys 1..KEYS */
#define SLOTS 128    /* fewer slots than keys: evictions all the time */
#define ROUNDS 20000 /* batches per thread */
#define BATCH 16
#define FILL 12
#define TTL_MS 3600000 /* nothing expires during the test */
#define NOW_MS 1000

/* A value that carries who wrote it and a check over all of it, so a copy
 * torn between two writers (or two keys) is seen. */
struct val {
    uint64_t key, writer, seq;
    uint64_t fill[FILL];
    uint64_t check;
};

static uint64_t val_check(const struct val *v)
{
    uint64_t h = v->key * 0x9e3779b97f4a7c15ULL ^ v->writer * 0xbf58476d1ce4e5b9ULL ^ v->seq;
    for (int i = 0; i < FILL; i++)
        h = (h ^ v->fill[i]) * 0x94d049bb133111ebULL;
    return h;
}

static struct val make_val(uint64_t key, uint64_t writer, uint64_t seq)
{
    struct val v = {.key = key, .writer = writer, .seq = seq};
    for (int i = 0; i < FILL; i++)
        v.fill[i] = key + writer * 1000003 + seq * 7 + (uint64_t)i;
    v.check = val_check(&v);
    return v;
}

/* Each key's found flag is fixed, so a hit must carry the key's own. */
static bool key_found(uint64_t key)
{
    return key % 3 != 0;
}

static void test_single_thread_rules(void **state)
{
    (void)state;
    assert_null(cascade_record_cache_create(0, sizeof(struct val), 10));
    assert_null(cascade_record_cache_create(4, 0, 10));
    assert_null(cascade_record_cache_create(4, sizeof(struct val), 0));
    cascade_record_cache_destroy(NULL);

    cascade_record_cache *c = cascade_record_cache_create(64, sizeof(struct val), 100);
    assert_non_null(c);
    uint64_t keys[3] = {5, 0, 9};
    size_t idx[3] = {0, 1, 2}, miss[3];
    struct val in[3] = {make_val(5, 0, 1), make_val(0, 0, 1), make_val(9, 0, 1)}, out[3];
    bool found_in[3] = {true, true, false}, found[3];
    assert_int_equal(cascade_record_cache_get_many(c, keys, 3, out, found, miss, NOW_MS), 3);
    cascade_record_cache_put_many(c, keys, idx, 3, in, found_in, NOW_MS, 0);
    /* Key 0 is never stored; 5 and 9 hit with their flags, until the TTL. */
    assert_int_equal(cascade_record_cache_get_many(c, keys, 3, out, found, miss, NOW_MS + 99), 1);
    assert_int_equal(miss[0], 1);
    assert_true(found[0] && !found[2]);
    assert_true(out[0].key == 5 && out[2].key == 9 && out[2].check == val_check(&out[2]));
    assert_int_equal(cascade_record_cache_get_many(c, keys, 3, out, found, miss, NOW_MS + 100), 3);
    cascade_record_cache_destroy(c);

    /* One slot: the last key put replaces the one before. */
    c = cascade_record_cache_create(1, sizeof(struct val), 100);
    cascade_record_cache_put_many(c, keys, idx, 1, in, found_in, NOW_MS, 0);
    cascade_record_cache_put_many(c, keys + 2, idx, 1, in + 2, found_in + 2, NOW_MS, 0);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 1, out, found, miss, NOW_MS), 1);
    assert_int_equal(cascade_record_cache_get_many(c, keys + 2, 1, out, found, miss, NOW_MS), 0);
    cascade_record_cache_destroy(c);
}

/* A value in two parts (a record and what was derived from it): the head
 * comes back at the record's stride, the rest at its own; the rest is put
 * from the request's position (idx[k]) like the key; a put without the rest
 * stores it zeroed; a get without it copies only the heads. */
static void test_two_parts(void **state)
{
    (void)state;
    struct tag {
        uint64_t key, n;
    };
    cascade_record_cache *c =
        cascade_record_cache_create(64, sizeof(struct val) + sizeof(struct tag), 100);
    assert_non_null(c);
    uint64_t keys[3] = {7, 11, 13};
    size_t idx[2] = {2, 0}, miss[3];
    struct val in[2] = {make_val(13, 0, 1), make_val(7, 0, 1)}, out[3];
    struct tag rest_in[3] = {{7, 70}, {0, 0}, {13, 130}}, rest_out[3];
    bool found_in[2] = {true, false}, found[3];
    cascade_record_cache_put_many_parts(c, keys, idx, 2, sizeof(struct val), in, rest_in, found_in,
                                        NOW_MS, 0);
    memset(rest_out, 0xab, sizeof rest_out);
    assert_int_equal(cascade_record_cache_get_many_parts(c, keys, 3, sizeof(struct val), out,
                                                         rest_out, found, miss, NOW_MS),
                     1);
    assert_int_equal(miss[0], 1);
    assert_true(out[0].key == 7 && !found[0] && out[0].check == val_check(&out[0]));
    assert_true(out[2].key == 13 && found[2] && out[2].check == val_check(&out[2]));
    assert_true(rest_out[0].key == 7 && rest_out[0].n == 70);
    assert_true(rest_out[2].key == 13 && rest_out[2].n == 130);
    /* Heads only: the rest is not written. */
    memset(rest_out, 0xab, sizeof rest_out);
    assert_int_equal(cascade_record_cache_get_many_parts(c, keys, 3, sizeof(struct val), out, NULL,
                                                         found, miss, NOW_MS),
                     1);
    assert_true(out[2].key == 13 && rest_out[2].n == 0xababababababababULL);
    /* A put without the rest: that entry's rest reads back zeroed. */
    struct val again = make_val(13, 1, 2);
    size_t at = 2;
    cascade_record_cache_put_many_parts(c, keys, &at, 1, sizeof(struct val), &again, NULL, found_in,
                                        NOW_MS, 0);
    assert_int_equal(cascade_record_cache_get_many_parts(c, keys, 3, sizeof(struct val), out,
                                                         rest_out, found, miss, NOW_MS),
                     1);
    assert_true(out[2].writer == 1 && rest_out[2].key == 0 && rest_out[2].n == 0);
    assert_true(rest_out[0].key == 7 && rest_out[0].n == 70);
    cascade_record_cache_destroy(c);
}

/* A dropped key misses at once; a put whose read began before a drop of its
 * key (or of every key) is refused, one that began after is kept; a longer
 * TTL applies to entries already stored. */
static void test_drops_and_epochs(void **state)
{
    (void)state;
    cascade_record_cache *c = cascade_record_cache_create(64, sizeof(struct val), 100);
    assert_non_null(c);
    uint64_t keys[2] = {5, 9};
    size_t idx[2] = {0, 1}, miss[2];
    struct val in[2] = {make_val(5, 0, 1), make_val(9, 0, 1)}, out[2];
    bool found_in[2] = {true, true}, found[2];
    uint64_t before = cascade_record_cache_epoch(c);
    cascade_record_cache_put_many(c, keys, idx, 2, in, found_in, NOW_MS, before);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 0);
    cascade_record_cache_drop_many(c, keys, 1); /* 5 changed */
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 1);
    assert_int_equal(miss[0], 0);
    /* 5 read before the drop: refused; read after it: kept. 9 is untouched. */
    cascade_record_cache_put_many(c, keys, idx, 2, in, found_in, NOW_MS, before);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 1);
    uint64_t after = cascade_record_cache_epoch(c);
    assert_true(after > before);
    cascade_record_cache_put_many(c, keys, idx, 1, in, found_in, NOW_MS, after);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 0);
    /* Everything dropped: all miss, and nothing read before it is stored. */
    cascade_record_cache_drop_all(c);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 2);
    cascade_record_cache_put_many(c, keys, idx, 2, in, found_in, NOW_MS, after);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS), 2);
    cascade_record_cache_put_many(c, keys, idx, 2, in, found_in, NOW_MS,
                                  cascade_record_cache_epoch(c));
    /* TTL 100 → 1000: the stored entries live on past 100 ms. */
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS + 500), 2);
    cascade_record_cache_set_ttl(c, 1000);
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS + 500), 0);
    cascade_record_cache_set_ttl(c, 0); /* ignored */
    assert_int_equal(cascade_record_cache_get_many(c, keys, 2, out, found, miss, NOW_MS + 999), 0);
    cascade_record_cache_destroy(c);
}

/* ------------------------------------------------------------ threaded */

struct hammer {
    cascade_record_cache *cache;
    _Atomic uint64_t published[THREADS]; /* highest seq each writer has started to put */
    struct test_violations bad;
    atomic_long hits, lookups;
};

struct worker {
    struct hammer *h;
    int id;
};

/* Every hit: the requested key's value, whole, from a writer that had
 * started writing it, with the key's found flag. Misses: in order, in range. */
static void check_get(struct hammer *h, const uint64_t *keys, size_t n, const struct val *out,
                      const bool *found, const size_t *miss, size_t n_miss)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m < n_miss && miss[m] == i) {
            m++;
            continue;
        }
        const struct val *v = &out[i];
        if (keys[i] == 0)
            test_violation(&h->bad, "key 0 hit");
        else if (v->key != keys[i])
            test_violation(&h->bad, "key %llu returned the value of key %llu",
                           (unsigned long long)keys[i], (unsigned long long)v->key);
        else if (v->check != val_check(v))
            test_violation(&h->bad, "key %llu: torn value", (unsigned long long)keys[i]);
        else if (v->writer >= THREADS || v->seq > atomic_load(&h->published[v->writer]))
            test_violation(&h->bad, "key %llu: a value nobody wrote (writer %llu seq %llu)",
                           (unsigned long long)keys[i], (unsigned long long)v->writer,
                           (unsigned long long)v->seq);
        else if (found[i] != key_found(keys[i]))
            test_violation(&h->bad, "key %llu: found flag %d", (unsigned long long)keys[i],
                           found[i]);
    }
    if (m != n_miss)
        test_violation(&h->bad, "miss positions out of order or out of range");
    atomic_fetch_add(&h->hits, (long)(n - n_miss));
    atomic_fetch_add(&h->lookups, (long)n);
}

static void *hammer_main(void *arg)
{
    struct worker *w = arg;
    struct hammer *h = w->h;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 0x5eed + (uint64_t)w->id);
    uint64_t seq = 0, keys[BATCH];
    size_t idx[BATCH], miss[BATCH];
    struct val vals[BATCH];
    bool found[BATCH];
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < BATCH; i++) {
            keys[i] = cascade_rng_below(&rng, KEYS + 1); /* 0 now and then */
            idx[i] = i;
        }
        if (cascade_rng_below(&rng, 2) == 0) {
            seq++;
            atomic_store(&h->published[w->id], seq);
            for (size_t i = 0; i < BATCH; i++) {
                vals[i] = make_val(keys[i], (uint64_t)w->id, seq);
                found[i] = key_found(keys[i]);
            }
            cascade_record_cache_put_many(h->cache, keys, idx, BATCH, vals, found, NOW_MS, 0);
        } else {
            size_t n_miss =
                cascade_record_cache_get_many(h->cache, keys, BATCH, vals, found, miss, NOW_MS);
            check_get(h, keys, BATCH, vals, found, miss, n_miss);
        }
    }
    return NULL;
}

/* Thread w puts its own keys (k ≡ w mod THREADS) once, all threads at once. */
static void *disjoint_main(void *arg)
{
    struct worker *w = arg;
    for (uint64_t k = (uint64_t)w->id + 1; k <= KEYS; k += THREADS) {
        struct val v = make_val(k, (uint64_t)w->id, 1);
        bool f = key_found(k);
        size_t zero = 0;
        cascade_record_cache_put_many(w->h->cache, &k, &zero, 1, &v, &f, NOW_MS, 0);
    }
    return NULL;
}

static void run_threads(struct hammer *h, void *(*fn)(void *))
{
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.h = h, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, fn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

/* Hits when every key 1..KEYS is looked up in c. */
static size_t hits_of_all(cascade_record_cache *c, struct val *out)
{
    uint64_t keys[KEYS];
    size_t miss[KEYS];
    bool found[KEYS];
    for (size_t i = 0; i < KEYS; i++)
        keys[i] = i + 1;
    return KEYS - cascade_record_cache_get_many(c, keys, KEYS, out, found, miss, NOW_MS);
}

static void test_threads_get_put(void **state)
{
    (void)state;
    static struct hammer h;
    memset(&h, 0, sizeof h);
    h.cache = cascade_record_cache_create(SLOTS, sizeof(struct val), TTL_MS);
    assert_non_null(h.cache);
    run_threads(&h, hammer_main);
    if (atomic_load(&h.bad.count) != 0)
        fail_msg("%ld violations; first: %s", atomic_load(&h.bad.count), h.bad.first);
    /* The threads both hit and missed (the test exercised both paths). */
    assert_true(atomic_load(&h.hits) > 0);
    assert_true(atomic_load(&h.hits) < atomic_load(&h.lookups));
    cascade_record_cache_destroy(h.cache);
}

static void test_threads_no_lost_entries(void **state)
{
    (void)state;
    static struct hammer h;
    static struct val out[KEYS];
    memset(&h, 0, sizeof h);
    /* The slots the keys fill, found single-threaded: each slot touched
     * holds exactly one key afterwards, whatever the order of the puts. */
    cascade_record_cache *ref = cascade_record_cache_create(SLOTS, sizeof(struct val), TTL_MS);
    assert_non_null(ref);
    for (uint64_t k = 1; k <= KEYS; k++) {
        struct val v = make_val(k, 0, 1);
        bool f = key_found(k);
        size_t zero = 0;
        cascade_record_cache_put_many(ref, &k, &zero, 1, &v, &f, NOW_MS, 0);
    }
    size_t slots_used = hits_of_all(ref, out);
    cascade_record_cache_destroy(ref);
    assert_true(slots_used > SLOTS / 2 && slots_used <= SLOTS);

    h.cache = cascade_record_cache_create(SLOTS, sizeof(struct val), TTL_MS);
    assert_non_null(h.cache);
    run_threads(&h, disjoint_main);
    assert_int_equal(hits_of_all(h.cache, out), slots_used);
    /* Every survivor is its own key's, from the thread that owns the key. */
    uint64_t keys[KEYS];
    size_t miss[KEYS];
    bool found[KEYS];
    for (size_t i = 0; i < KEYS; i++)
        keys[i] = i + 1;
    size_t n_miss = cascade_record_cache_get_many(h.cache, keys, KEYS, out, found, miss, NOW_MS);
    for (size_t i = 0, m = 0; i < KEYS; i++) {
        if (m < n_miss && miss[m] == i) {
            m++;
            continue;
        }
        assert_int_equal(out[i].key, keys[i]);
        assert_int_equal(out[i].writer, (keys[i] - 1) % THREADS);
        assert_int_equal(out[i].check, val_check(&out[i]));
        assert_int_equal(found[i], key_found(keys[i]));
    }
    cascade_record_cache_destroy(h.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_rules),
        cmocka_unit_test(test_drops_and_epochs),
        cmocka_unit_test(test_two_parts),
        cmocka_unit_test(test_threads_get_put),
        cmocka_unit_test(test_threads_no_lost_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
