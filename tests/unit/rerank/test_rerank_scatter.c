/* Tests of the scatter rules (cascade_rerank_scatter): on every small case
 * drawn (up to 7 items, random categories, authors and rules) the answer is
 * checked against an exhaustive enumeration of the ordered selections:
 * whenever a valid order exists the answer is valid and is the first valid
 * one in preference order; when none exists the answer is still a list of
 * distinct items and says so. Also the request path: rules from an
 * experiment param, and rules that are off leave the selection alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "messages.h"
#include "rerank.h"
#include "rerank_test.h"

#define MAXN 7

static uint64_t rng = 99;

static size_t pick(size_t k)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (size_t)((rng >> 33) % k);
}

/* The rules, as docs/stages.md states them, on a complete list. */
static bool valid(const struct cascade_mmr_item *items, const size_t *list, size_t len,
                  const struct cascade_scatter_rules *r)
{
    for (size_t a = 0; a < len; a++) {
        for (size_t b = a + 1; b < len; b++) {
            const struct cascade_mmr_item *x = &items[list[a]], *y = &items[list[b]];
            if (x->author_id != 0 && x->author_id == y->author_id && r->author_min_distance > 1 &&
                b - a < r->author_min_distance)
                return false;
        }
        if (r->window == 0)
            continue;
        /* the window of w positions starting at a */
        size_t end = a + r->window < len ? a + r->window : len;
        for (size_t b = a; b < end; b++) {
            size_t cat = 0, author = 0;
            for (size_t c = a; c < end; c++) {
                cat += items[list[c]].category != 0 &&
                       items[list[c]].category == items[list[b]].category;
                author += items[list[c]].author_id != 0 &&
                          items[list[c]].author_id == items[list[b]].author_id;
            }
            if ((r->max_per_category && cat > r->max_per_category) ||
                (r->max_per_author && author > r->max_per_author))
                return false;
        }
    }
    return true;
}

struct enumeration {
    const struct cascade_mmr_item *items;
    const size_t *pref;
    size_t n, count;
    const struct cascade_scatter_rules *r;
    size_t cur[MAXN];
    bool used[MAXN];
    bool found;
    size_t first[MAXN];
};

/* Ordered selections of `count` pref ranks, in lexicographic order of ranks:
 * the first valid one is the best. */
static void enumerate(struct enumeration *e, size_t depth)
{
    /* depth never passes count <= n <= MAXN; the bound also tells gcc -O3 so. */
    if (e->found || depth > MAXN || e->count > MAXN)
        return;
    if (depth == e->count) {
        size_t list[MAXN];
        for (size_t i = 0; i < depth; i++)
            list[i] = e->pref[e->cur[i]];
        if (valid(e->items, list, depth, e->r)) {
            e->found = true;
            memcpy(e->first, list, depth * sizeof *list);
        }
        return;
    }
    if (depth == MAXN)
        return;
    for (size_t k = 0; k < e->n && k < MAXN && !e->found; k++) {
        if (e->used[k])
            continue;
        e->used[k] = true;
        e->cur[depth] = k;
        enumerate(e, depth + 1);
        e->used[k] = false;
    }
}

static void test_exhaustive(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    int feasible = 0, infeasible = 0, reordered = 0;
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 2 + pick(MAXN - 1), count = 1 + pick(n);
        struct cascade_mmr_item items[MAXN];
        size_t pref[MAXN];
        for (size_t i = 0; i < n; i++) {
            items[i] =
                (struct cascade_mmr_item){.category = (uint32_t)pick(3), .author_id = pick(4)};
            pref[i] = i;
        }
        for (size_t i = n - 1; i > 0; i--) { /* a random preference order */
            size_t j = pick(i + 1), t = pref[i];
            pref[i] = pref[j];
            pref[j] = t;
        }
        struct cascade_scatter_rules r = {.window = pick(4),
                                          .max_per_category = pick(3),
                                          .max_per_author = pick(3),
                                          .author_min_distance = pick(4)};
        struct enumeration e = {.items = items, .pref = pref, .n = n, .count = count, .r = &r};
        enumerate(&e, 0);
        size_t out[MAXN], n_out = 0;
        int ok = -1;
        cascade_arena_reset(arena);
        assert_int_equal(cascade_rerank_scatter(items, n, pref, n, count, &r, arena, INT64_MAX, out,
                                                &n_out, &ok),
                         0);
        assert_int_equal(n_out, count);
        bool seen[MAXN] = {false};
        for (size_t t = 0; t < n_out; t++) {
            assert_true(out[t] < n);
            assert_false(seen[out[t]]);
            seen[out[t]] = true;
        }
        if (e.found) {
            feasible++;
            if (!valid(items, out, n_out, &r) || !ok)
                fail_msg("trial %d: a valid order exists but the answer breaks a rule", trial);
            /* The first valid order in preference order. */
            for (size_t t = 0; t < count; t++)
                assert_int_equal(out[t], e.first[t]);
            for (size_t t = 0; t < count; t++)
                if (out[t] != pref[t]) {
                    reordered++;
                    break;
                }
        } else {
            infeasible++;
            assert_int_equal(ok, 0);
        }
    }
    /* The draw covers all three kinds of case. */
    assert_true(feasible > 500);
    assert_true(infeasible > 50);
    assert_true(reordered > 200);
    cascade_arena_destroy(arena);
}

/* Three of category 1 then two of category 2, at most 1 per category in
 * any 2 positions: 1 2 1 2 1 — the repair interleaves. Author distance 3
 * keeps one author's two items 3 apart. */
static void test_small_examples(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    const struct cascade_mmr_item items[5] = {
        {.category = 1, .author_id = 1}, {.category = 1, .author_id = 2},
        {.category = 1, .author_id = 3}, {.category = 2, .author_id = 4},
        {.category = 2, .author_id = 5},
    };
    const size_t pref[5] = {0, 1, 2, 3, 4};
    size_t out[5], n = 0;
    int ok = 0;
    struct cascade_scatter_rules r = {.window = 2, .max_per_category = 1};
    assert_true(cascade_scatter_active(&r));
    assert_int_equal(
        cascade_rerank_scatter(items, 5, pref, 5, 5, &r, arena, INT64_MAX, out, &n, &ok), 0);
    assert_true(ok);
    const size_t want[5] = {0, 3, 1, 4, 2};
    for (size_t t = 0; t < 5; t++)
        assert_int_equal(out[t], want[t]);

    const struct cascade_mmr_item authors[4] = {
        {.author_id = 7}, {.author_id = 7}, {.author_id = 8}, {.author_id = 9}};
    struct cascade_scatter_rules d = {.author_min_distance = 3};
    assert_int_equal(
        cascade_rerank_scatter(authors, 4, pref, 4, 4, &d, arena, INT64_MAX, out, &n, &ok), 0);
    assert_true(ok);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[3], 1); /* positions 0 and 3 */

    struct cascade_scatter_rules off = {.window = 5};
    assert_false(cascade_scatter_active(&off));
    cascade_arena_destroy(arena);
}

/* 2,000 items of one category by 2,000 authors, one per category in any 3
 * positions: no valid order of 50, and the search would try every pair of
 * first positions. A passed deadline stops it; the default budget ends it
 * with the closest order otherwise. */
static void test_deadline_and_budget(void **state)
{
    (void)state;
    enum { BIG = 2000 };
    static struct cascade_mmr_item items[BIG];
    static size_t pref[BIG], out[BIG];
    for (size_t i = 0; i < BIG; i++) {
        items[i] = (struct cascade_mmr_item){.category = 1, .author_id = 1 + i};
        pref[i] = i;
    }
    cascade_arena *arena = cascade_arena_create(0);
    struct cascade_scatter_rules r = {.window = 3, .max_per_category = 1};
    size_t n = 0;
    int ok = 1;
    assert_int_equal(cascade_rerank_scatter(items, BIG, pref, BIG, 50, &r, arena,
                                            cascade_now_ms() - 1, out, &n, &ok),
                     CASCADE_ETIMEDOUT);
    r.max_steps = 10000;
    assert_int_equal(
        cascade_rerank_scatter(items, BIG, pref, BIG, 50, &r, arena, INT64_MAX, out, &n, &ok), 0);
    assert_int_equal(ok, 0);
    assert_int_equal(n, 50);
    for (size_t t = 0; t < n; t++)
        assert_int_equal(out[t], t); /* every item violates equally: preference order */
    cascade_arena_destroy(arena);
}

/* The request path: scatter rules from experiment params reorder MMR's
 * relevance order (λ = 1), and a bad value is rejected. */
static void test_run_with_rules(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_arena *a = cascade_arena_create(0);
    cascade_config *cfg = cascade_config_parse(
        "{\"rerank\": {\"lambda\": 1.0, \"scatter\": {\"window\": 3, \"max_per_category\": 1}}}",
        "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_rerank *r = cascade_rerank_create(cfg, err, sizeof err);
    assert_non_null(r);
    const float scores[6] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    const uint32_t cats[6] = {1, 1, 1, 2, 2, 3};
    const uint64_t authors[6] = {1000, 1001, 1002, 1003, 1004, 1005};
    Cascade__V1__ReRankRequest *req = rerank_test_request(a, 4, scores, cats, authors, 6);
    Cascade__V1__ReRankResponse *resp = NULL;
    assert_int_equal(cascade_rerank_run(r, a, INT64_MAX, req, &resp, err, sizeof err), 0);
    const uint64_t want[4] = {100, 103, 105, 101}; /* 1 2 3 1: one per category in any 3 */
    assert_int_equal(resp->n_candidates, 4);
    for (size_t t = 0; t < 4; t++)
        assert_int_equal(resp->candidates[t]->item_id, want[t]);
    /* An experiment turns the cap off (0): the relevance order again. */
    req->experiments = test_experiment(a, "rerank", "e", "rerank.scatter.max_per_category", "0");
    assert_int_equal(cascade_rerank_run(r, a, INT64_MAX, req, &resp, err, sizeof err), 0);
    for (size_t t = 0; t < 4; t++)
        assert_int_equal(resp->candidates[t]->item_id, 100 + t);
    req->experiments = test_experiment(a, "rerank", "e", "rerank.scatter.window", "2.5");
    assert_int_equal(cascade_rerank_run(r, a, INT64_MAX, req, &resp, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(
        err, "experiment param rerank.scatter.window=2.5 out of range [0, 1000] (an integer)");
    req->experiments = test_experiment(a, "rerank", "e", "rerank.method", "greedy");
    assert_int_equal(cascade_rerank_run(r, a, INT64_MAX, req, &resp, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "experiment param rerank.method=greedy: expected mmr or dpp");
    cascade_rerank_destroy(r);
    cascade_config_destroy(cfg);
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exhaustive),
        cmocka_unit_test(test_small_examples),
        cmocka_unit_test(test_deadline_and_budget),
        cmocka_unit_test(test_run_with_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
