/* Tests of Recall's selection helpers (recall_select.c) against the full
 * sort they replace: cascade_recall__top_scores and cascade_recall__newest
 * select and sort only the best `quota`; on random inputs with many tied
 * scores and repeated items, their lists must equal those of sorting
 * everything (larger score first, ties by smaller id) and keeping the first
 * quota (newest: the first occurrence of each item), score for score; a
 * NaN score (corrupt data) ranks after every number. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "idmap.h"
#include "recall_internal.h"

struct entry {
    uint64_t id;
    double key;
};

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (isnan(a->key) != isnan(b->key)) /* a NaN score after every number */
        return isnan(a->key) ? 1 : -1;
    if (!isnan(a->key) && a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* The reference: sort all n, keep the first occurrence of each id, at most
 * quota; scores as newest() or top_scores() give them. */
static size_t reference(struct entry *e, size_t n, size_t quota, bool recency, double half_life_s,
                        uint64_t *ids, float *scores)
{
    qsort(e, n, sizeof *e, entry_cmp);
    size_t count = 0;
    for (size_t i = 0; i < n && count < quota; i++) {
        bool dup = false;
        for (size_t j = 0; j < count && !dup; j++)
            dup = ids[j] == e[i].id;
        if (dup)
            continue;
        ids[count] = e[i].id;
        scores[count++] = !recency          ? (float)e[i].key
                          : half_life_s > 0 ? (float)exp2(-(e[0].key - e[i].key) / half_life_s)
                                            : 1.0f;
    }
    return count;
}

static void assert_same(const struct cascade_recall_hits *got, const uint64_t *ids,
                        const float *scores, size_t count)
{
    assert_int_equal(got->count, count);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(got->ids[i], ids[i]);
        assert_memory_equal(&got->scores[i], &scores[i], sizeof(float)); /* bit for bit */
    }
}

static void test_top_scores_equal_full_sort(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(1 << 16);
    uint64_t seed = 42;
    const size_t sizes[] = {0, 1, 2, 15, 16, 17, 100, 999, 3000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int round = 0; round < 20; round++) {
            size_t n = sizes[s];
            cascade_idmap m;
            assert_int_equal(cascade_idmap_init(&m, arena, n), 0);
            struct entry *e = malloc((n + 1) * sizeof *e);
            uint64_t *ids = malloc((n + 1) * sizeof *ids);
            float *scores = malloc((n + 1) * sizeof *scores);
            size_t distinct = 0;
            for (size_t i = 0; i < n; i++) {
                bool created;
                uint64_t id = 1 + rng_next(&seed) % (2 * n + 1);
                struct cascade_idmap_entry *x = cascade_idmap_upsert(&m, id, &created);
                /* Few distinct scores: ties everywhere. */
                x->score += (double)(rng_next(&seed) % (round % 2 ? 5 : 1000)) / 4.0;
                if (round % 5 == 4 && rng_next(&seed) % 10 == 0)
                    x->score = NAN; /* a corrupt similarity: ranks last */
                if (created)
                    distinct++;
            }
            size_t k = 0;
            for (size_t slot = 0; slot < m.cap; slot++)
                if (m.slots[slot].used)
                    e[k++] = (struct entry){m.slots[slot].key, m.slots[slot].score};
            assert_int_equal(k, distinct);
            const size_t quotas[] = {0, 1, 7, distinct / 2, distinct, distinct + 3};
            for (size_t q = 0; q < sizeof quotas / sizeof quotas[0]; q++) {
                struct entry *copy = malloc((distinct + 1) * sizeof *copy);
                memcpy(copy, e, distinct * sizeof *e);
                size_t want = reference(copy, distinct, quotas[q], false, 0, ids, scores);
                struct cascade_recall_hits got;
                assert_int_equal(cascade_recall__top_scores(&m, quotas[q], arena, &got), 0);
                assert_same(&got, ids, scores, want);
                free(copy);
            }
            free(e);
            free(ids);
            free(scores);
            cascade_arena_reset(arena);
        }
    cascade_arena_destroy(arena);
}

static void test_newest_equals_full_sort(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(1 << 16);
    uint64_t seed = 7;
    for (int round = 0; round < 300; round++) {
        size_t n_lists = 1 + rng_next(&seed) % 9, total = 0;
        struct cascade_recall__zlist lists[9];
        for (size_t l = 0; l < n_lists; l++) {
            size_t count = rng_next(&seed) % (round < 100 ? 8 : 300);
            lists[l].ids = cascade_arena_alloc(arena, (count + 1) * sizeof(uint64_t));
            lists[l].scores = cascade_arena_alloc(arena, (count + 1) * sizeof(double));
            lists[l].count = count;
            for (size_t i = 0; i < count; i++) {
                /* Items repeat across lists (cells, authors), times tie. */
                lists[l].ids[i] = 1 + rng_next(&seed) % (round % 3 == 0 ? 20 : 2000);
                lists[l].scores[i] = 1.7e9 + (double)(rng_next(&seed) % 500) * 3600.0;
            }
            total += count;
        }
        struct entry *e = malloc((total + 1) * sizeof *e);
        uint64_t *ids = malloc((total + 1) * sizeof *ids);
        float *scores = malloc((total + 1) * sizeof *scores);
        const size_t quotas[] = {0, 1, 10, 100, total};
        const double half_lives[] = {0, 86400.0, 3600.0};
        for (size_t q = 0; q < sizeof quotas / sizeof quotas[0]; q++) {
            size_t k = 0;
            for (size_t l = 0; l < n_lists; l++)
                for (size_t i = 0; i < lists[l].count; i++)
                    e[k++] = (struct entry){lists[l].ids[i], lists[l].scores[i]};
            double hl = half_lives[(size_t)round % 3];
            size_t want = reference(e, total, quotas[q], true, hl, ids, scores);
            struct cascade_recall_hits got;
            assert_int_equal(cascade_recall__newest(lists, n_lists, quotas[q], hl, arena, &got), 0);
            assert_same(&got, ids, scores, want);
        }
        free(e);
        free(ids);
        free(scores);
        cascade_arena_reset(arena);
    }
    cascade_arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_scores_equal_full_sort),
        cmocka_unit_test(test_newest_equals_full_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
