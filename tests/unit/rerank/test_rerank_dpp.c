/* Tests of the DPP selection (cascade_rerank_dpp): on small random kernels
 * its picks and gains equal greedy selection by explicit determinants of
 * L = diag(q)·S·diag(q) over the window (a brute-force reference written
 * here from the formulas of docs/stages.md), with and without a sliding
 * window; the window lets an item similar only to old picks back in; the
 * embedding term changes the selection of DPP and MMR. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "rerank.h"

#define N 9
#define DIM 10

static uint64_t rng = 12345;

static double uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* The reference kernel, straight from the definition. */
static double kernel_s(const struct cascade_dpp_opts *o, const struct cascade_mmr_item *a,
                       const struct cascade_mmr_item *b, int same)
{
    if (same)
        return 1.0;
    double w = o->sim_category + o->sim_author + o->sim_embedding, dot = 0, na = 0, nb = 0;
    if (w <= 0)
        return 0;
    for (size_t k = 0; k < a->dim; k++) {
        dot += (double)a->embedding[k] * b->embedding[k];
        na += (double)a->embedding[k] * a->embedding[k];
        nb += (double)b->embedding[k] * b->embedding[k];
    }
    double s = o->sim_embedding * dot / sqrt(na * nb);
    if (a->category == b->category)
        s += o->sim_category;
    if (a->author_id == b->author_id)
        s += o->sim_author;
    return s / w;
}

/* det of the m × m matrix a (destroyed) by Gaussian elimination with pivoting. */
static double det(double *a, size_t m)
{
    double d = 1;
    for (size_t c = 0; c < m; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < m; r++)
            if (fabs(a[r * m + c]) > fabs(a[p * m + c]))
                p = r;
        if (a[p * m + c] == 0)
            return 0;
        if (p != c) {
            for (size_t k = 0; k < m; k++) {
                double t = a[c * m + k];
                a[c * m + k] = a[p * m + k];
                a[p * m + k] = t;
            }
            d = -d;
        }
        d *= a[c * m + c];
        for (size_t r = c + 1; r < m; r++) {
            double f = a[r * m + c] / a[c * m + c];
            for (size_t k = c; k < m; k++)
                a[r * m + k] -= f * a[c * m + k];
        }
    }
    return d;
}

/* det of K restricted to set[0..m) where K = diag(q)·S·diag(q). */
static double det_of(const struct cascade_dpp_opts *o, const struct cascade_mmr_item *items,
                     const double *q, const size_t *set, size_t m)
{
    double a[(N + 1) * (N + 1)];
    for (size_t r = 0; r < m; r++)
        for (size_t c = 0; c < m; c++)
            a[r * m + c] = q[set[r]] * q[set[c]] *
                           kernel_s(o, &items[set[r]], &items[set[c]], set[r] == set[c]);
    return det(a, m);
}

/* Greedy MAP by brute force: each step the item maximising det(L_{W ∪ {i}}),
 * W = the last `window` picks (all when 0); the gain reported is
 * θ·rel + (1−θ)·log(det S_{W∪i} / det S_W). */
static void reference(const struct cascade_mmr_item *items, size_t n, size_t count,
                      const struct cascade_dpp_opts *o, size_t *order, double *gains)
{
    double rel[N], q[N], ones[N], lo = INFINITY, hi = -INFINITY;
    int taken[N] = {0};
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, items[i].relevance);
        hi = fmax(hi, items[i].relevance);
    }
    for (size_t i = 0; i < n; i++) {
        rel[i] = (items[i].relevance - lo) / (hi - lo);
        q[i] = exp(o->theta * rel[i] / (2 * (1 - o->theta)));
        ones[i] = 1;
    }
    for (size_t t = 0; t < count; t++) {
        size_t from = o->window && t > o->window ? t - o->window : 0, m = t - from;
        size_t set[N + 1];
        memcpy(set, order + from, m * sizeof *set);
        double base = det_of(o, items, ones, set, m), best_det = -1;
        size_t best = n;
        for (size_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            set[m] = i;
            double dv = det_of(o, items, q, set, m + 1);
            if (dv > best_det) {
                best_det = dv;
                best = i;
            }
        }
        set[m] = best;
        order[t] = best;
        taken[best] = 1;
        gains[t] =
            o->theta * rel[best] + (1 - o->theta) * log(det_of(o, items, ones, set, m + 1) / base);
    }
}

static void test_matches_bruteforce(void **state)
{
    (void)state;
    static float emb[N][DIM];
    struct cascade_mmr_item items[N];
    const double thetas[] = {0.0, 0.3, 0.6, 0.85};
    const size_t windows[] = {0, 1, 2, 3, 5};
    int checked = 0;
    cascade_arena *arena = cascade_arena_create(0);
    for (int trial = 0; trial < 12; trial++) {
        for (size_t i = 0; i < N; i++) {
            for (size_t k = 0; k < DIM; k++)
                emb[i][k] = (float)(uniform() * 2 - 1);
            items[i] = (struct cascade_mmr_item){.relevance = (float)uniform(),
                                                 .category = 1 + (uint32_t)(uniform() * 3),
                                                 .author_id = 1 + (uint64_t)(uniform() * 4),
                                                 .embedding = emb[i],
                                                 .dim = DIM};
        }
        for (size_t a = 0; a < sizeof thetas / sizeof *thetas; a++) {
            for (size_t b = 0; b < sizeof windows / sizeof *windows; b++) {
                struct cascade_dpp_opts o = {.theta = thetas[a],
                                             .window = windows[b],
                                             .sim_category = 0.2 + uniform(),
                                             .sim_author = uniform(),
                                             .sim_embedding = 0.5 + uniform()};
                size_t count = 7, want[N], got[N], n_out = 0;
                double gains[N];
                float values[N];
                reference(items, N, count, &o, want, gains);
                cascade_arena_reset(arena);
                assert_int_equal(
                    cascade_rerank_dpp(items, N, count, &o, arena, INT64_MAX, got, values, &n_out),
                    0);
                assert_int_equal(n_out, count);
                for (size_t t = 0; t < count; t++) {
                    if (got[t] != want[t])
                        fail_msg("trial %d θ %.2f window %zu: pick %zu is %zu, brute force %zu",
                                 trial, o.theta, o.window, t, got[t], want[t]);
                    if (fabs(values[t] - gains[t]) > 1e-4)
                        fail_msg("trial %d θ %.2f window %zu: pick %zu gain %.6f, brute force %.6f",
                                 trial, o.theta, o.window, t, values[t], gains[t]);
                }
                checked++;
            }
        }
    }
    assert_int_equal(checked, 12 * 4 * 5);
    cascade_arena_destroy(arena);
}

/* Categories only (S_ij = [same category]): A1 A2 | B1 B2 | C1, relevance
 * decreasing. Without a window the third pick must be C1 (A2 and B2 copy a
 * pick); with a window of 1 only B1 conditions it, so A2 comes back; with
 * a window of 2 it is C1 again. */
static void test_window(void **state)
{
    (void)state;
    const struct cascade_mmr_item items[5] = {
        {.relevance = 1.0f, .category = 1}, {.relevance = 0.95f, .category = 1},
        {.relevance = 0.9f, .category = 2}, {.relevance = 0.85f, .category = 2},
        {.relevance = 0.2f, .category = 3},
    };
    struct cascade_dpp_opts o = {.theta = 0.5, .sim_category = 1};
    size_t order[5], n = 0;
    float values[5];
    cascade_arena *arena = cascade_arena_create(0);
    const size_t windows[] = {0, 1, 2};
    const size_t third[] = {4, 1, 4};
    for (size_t k = 0; k < 3; k++) {
        o.window = windows[k];
        assert_int_equal(cascade_rerank_dpp(items, 5, 3, &o, arena, INT64_MAX, order, values, &n),
                         0);
        assert_int_equal(n, 3);
        assert_int_equal(order[0], 0);
        assert_int_equal(order[1], 2);
        assert_int_equal(order[2], third[k]);
    }
    /* θ = 1 is the relevance order whatever the kernel. */
    o.theta = 1;
    o.window = 0;
    assert_int_equal(cascade_rerank_dpp(items, 5, 5, &o, arena, INT64_MAX, order, values, &n), 0);
    for (size_t t = 0; t < 5; t++)
        assert_int_equal(order[t], t);
    /* Everything in one category: after the first pick nothing adds volume,
     * so the rest follows relevance. */
    struct cascade_mmr_item same[4];
    for (size_t i = 0; i < 4; i++)
        same[i] =
            (struct cascade_mmr_item){.relevance = (float)(4 - i) + 0.5f * (i == 2), .category = 9};
    o.theta = 0.5;
    assert_int_equal(cascade_rerank_dpp(same, 4, 4, &o, arena, INT64_MAX, order, values, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 3);
    cascade_arena_destroy(arena);
}

/* Three items of distinct categories and authors; 0 and 1 share an
 * embedding direction, 2 is orthogonal. Relevance 1, 0.5, 0 after
 * normalisation. Without the embedding term both methods keep the ranked
 * order; with it, 2 jumps ahead of 1. */
static void test_embedding_changes_selection(void **state)
{
    (void)state;
    static const float e0[2] = {1, 0}, e1[2] = {2, 0}, e2[2] = {0, 3};
    const struct cascade_mmr_item items[3] = {
        {.relevance = 1.0f, .category = 1, .author_id = 1, .embedding = e0, .dim = 2},
        {.relevance = 0.5f, .category = 2, .author_id = 2, .embedding = e1, .dim = 2},
        {.relevance = 0.0f, .category = 3, .author_id = 3, .embedding = e2, .dim = 2},
    };
    cascade_arena *arena = cascade_arena_create(0);
    size_t order[3], n = 0;
    float values[3];
    /* DPP θ = 0.3: with w_emb = 1 (of 2), S_01 = 0.5: item 1 gains
     * 0.3·0.5 + 0.7·log(0.75) = −0.051 < item 2's 0. */
    struct cascade_dpp_opts d = {.theta = 0.3, .sim_category = 0.7, .sim_author = 0.3};
    assert_int_equal(cascade_rerank_dpp(items, 3, 2, &d, arena, INT64_MAX, order, values, &n), 0);
    assert_int_equal(order[1], 1);
    d.sim_embedding = 1.0;
    assert_int_equal(cascade_rerank_dpp(items, 3, 2, &d, arena, INT64_MAX, order, values, &n), 0);
    assert_int_equal(order[1], 2);
    assert_float_equal(values[1], 0.0f, 1e-6);
    /* MMR λ = 0.5: item 1 scores 0.25 − 0.5·1 < item 2's 0. */
    struct cascade_mmr_opts m = {.lambda = 0.5, .sim_category = 0.7, .sim_author = 0.3};
    assert_int_equal(cascade_rerank_mmr(items, 3, 2, &m, arena, INT64_MAX, order, values, &n), 0);
    assert_int_equal(order[1], 1);
    m.sim_embedding = 1.0;
    assert_int_equal(cascade_rerank_mmr(items, 3, 2, &m, arena, INT64_MAX, order, values, &n), 0);
    assert_int_equal(order[1], 2);
    cascade_arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_bruteforce),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_embedding_changes_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
