/* Unit tests for the EASE model (common/ml/ease.c): B against a reference the
 * test computes on its own (a double-precision Gauss-Jordan inverse of
 * XᵀX + λI over a dense binary X), zero diagonal, scores as history·B with
 * repeats and uncovered items ignored, neighbour lists sorted, positive and
 * without the item itself, the item cap keeping the most popular items, the
 * progress phases, and the errors for bad options and empty data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ease.h"

#define USERS 60
#define ITEMS 24
#define LAMBDA 3.0

/* A random binary user × item matrix as CSR, each user's items listed with
 * some repeats (the model must count them once). Item ITEMS-1 has no users. */
struct fixture {
    unsigned char x[USERS][ITEMS];
    size_t off[USERS + 1];
    uint32_t item[USERS * ITEMS * 2];
    struct cascade_ease_input in;
};

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fixture_fill(struct fixture *f, uint64_t seed)
{
    size_t n = 0;
    memset(f, 0, sizeof(*f));
    for (size_t u = 0; u < USERS; u++) {
        f->off[u] = n;
        for (size_t i = 0; i + 1 < ITEMS; i++) {
            /* Lower items are more popular: density from 0.6 down to about 0.1. */
            double p = 0.6 - 0.5 * (double)i / ITEMS;
            if ((double)(next_u64(&seed) >> 11) * 0x1.0p-53 < p) {
                f->x[u][i] = 1;
                f->item[n++] = (uint32_t)i;
                if (next_u64(&seed) % 5 == 0)
                    f->item[n++] = (uint32_t)i; /* a repeat */
            }
        }
    }
    f->off[USERS] = n;
    f->in = (struct cascade_ease_input){
        .n_users = USERS, .n_items = ITEMS, .off = f->off, .item = f->item};
}

/* Reference B over the items in cols[0..n): G = XᵀX + λI, P = G⁻¹ by
 * Gauss-Jordan with partial pivoting in double, B[a][b] = −P[a][b]/P[b][b]
 * off the diagonal. b is n × n. */
static void reference_b(const struct fixture *f, const uint32_t *cols, size_t n, double lambda,
                        double *b)
{
    double *g = calloc(n * 2 * n, sizeof(double)); /* [G | I] */
    size_t w = 2 * n;
    assert_non_null(g);
    for (size_t a = 0; a < n; a++) {
        for (size_t c = 0; c < n; c++)
            for (size_t u = 0; u < USERS; u++)
                g[a * w + c] += f->x[u][cols[a]] && f->x[u][cols[c]] ? 1.0 : 0.0;
        g[a * w + a] += lambda;
        g[a * w + n + a] = 1.0;
    }
    for (size_t c = 0; c < n; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(g[r * w + c]) > fabs(g[piv * w + c]))
                piv = r;
        for (size_t k = 0; k < w; k++) {
            double t = g[c * w + k];
            g[c * w + k] = g[piv * w + k];
            g[piv * w + k] = t;
        }
        double d = g[c * w + c];
        for (size_t k = 0; k < w; k++)
            g[c * w + k] /= d;
        for (size_t r = 0; r < n; r++) {
            double m = g[r * w + c];
            if (r == c || m == 0)
                continue;
            for (size_t k = 0; k < w; k++)
                g[r * w + k] -= m * g[c * w + k];
        }
    }
    for (size_t a = 0; a < n; a++)
        for (size_t c = 0; c < n; c++)
            b[a * n + c] = a == c ? 0.0 : -g[a * w + n + c] / g[c * w + n + c];
    free(g);
}

static double max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    return m;
}

static cascade_ease *build(const struct fixture *f, double lambda, size_t max_items)
{
    struct cascade_ease_opts o;
    char err[256] = "";
    cascade_ease_opts_default(&o);
    o.lambda = lambda;
    o.max_items = max_items;
    cascade_ease *m = cascade_ease_build(&f->in, &o, err, sizeof(err));
    if (!m)
        fail_msg("build: %s", err);
    return m;
}

/* Row j of the model's B, read through score() of the history {j}. */
static void model_row(const cascade_ease *m, uint32_t j, float *out)
{
    assert_int_equal(cascade_ease_score(m, &j, 1, out), 0);
}

static void test_b_matches_reference(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f, 7);
    cascade_ease *m = build(&f, LAMBDA, 1000);
    uint32_t cols[ITEMS];
    double ref[ITEMS * ITEMS];
    float row[ITEMS];
    assert_int_equal(cascade_ease_n_covered(m), ITEMS - 1); /* the item without users is out */
    assert_false(cascade_ease_covers(m, ITEMS - 1));
    for (uint32_t i = 0; i < ITEMS - 1; i++)
        cols[i] = i;
    reference_b(&f, cols, ITEMS - 1, LAMBDA, ref);
    double scale = max_abs(ref, (ITEMS - 1) * (ITEMS - 1));
    assert_true(scale > 1e-3); /* a matrix with something in it */
    for (uint32_t j = 0; j < ITEMS - 1; j++) {
        model_row(m, j, row);
        assert_true(row[j] == 0.0f); /* zero diagonal */
        assert_true(row[ITEMS - 1] == 0.0f);
        for (uint32_t i = 0; i < ITEMS - 1; i++)
            if (fabs(row[i] - ref[j * (ITEMS - 1) + i]) > 1e-4 * scale)
                fail_msg("B[%u][%u] = %g, reference %g", j, i, row[i], ref[j * (ITEMS - 1) + i]);
    }
    cascade_ease_destroy(m);
}

static void test_scores_are_history_times_b(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f, 11);
    cascade_ease *m = build(&f, LAMBDA, 1000);
    uint32_t cols[ITEMS];
    double ref[ITEMS * ITEMS];
    float out[ITEMS];
    for (uint32_t i = 0; i < ITEMS - 1; i++)
        cols[i] = i;
    reference_b(&f, cols, ITEMS - 1, LAMBDA, ref);
    /* Repeats, the uncovered item and an out-of-range index are ignored. */
    const uint32_t hist[] = {3, 9, 3, 17, ITEMS - 1, 9, 1000};
    const uint32_t distinct[] = {3, 9, 17};
    assert_int_equal(cascade_ease_score(m, hist, sizeof hist / sizeof hist[0], out), 0);
    double scale = max_abs(ref, (ITEMS - 1) * (ITEMS - 1));
    for (uint32_t i = 0; i < ITEMS - 1; i++) {
        double want = 0;
        for (size_t t = 0; t < 3; t++)
            want += ref[distinct[t] * (ITEMS - 1) + i];
        if (fabs(out[i] - want) > 3e-4 * scale)
            fail_msg("score[%u] = %g, want %g", i, out[i], want);
    }
    assert_true(out[ITEMS - 1] == 0.0f);
    /* An empty history scores nothing. */
    assert_int_equal(cascade_ease_score(m, hist, 0, out), 0);
    for (uint32_t i = 0; i < ITEMS; i++)
        assert_true(out[i] == 0.0f);
    cascade_ease_destroy(m);
}

static void test_neighbours_by_magnitude_without_self(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f, 13);
    cascade_ease *m = build(&f, LAMBDA, 1000);
    uint32_t items[ITEMS];
    float w[ITEMS], row[ITEMS];
    for (uint32_t j = 0; j < ITEMS - 1; j++) {
        model_row(m, j, row);
        size_t nonzero = 0, negative = 0;
        for (uint32_t i = 0; i < ITEMS; i++) {
            nonzero += i != j && row[i] != 0;
            negative += i != j && row[i] < 0;
        }
        assert_true(nonzero > 0);
        long all = cascade_ease_neighbours(m, j, ITEMS, items, w);
        assert_int_equal(all, (long)nonzero);
        size_t got_negative = 0;
        for (long t = 0; t < all; t++) {
            assert_true(items[t] != j);
            assert_true(w[t] == row[items[t]]); /* signed, as in B */
            got_negative += w[t] < 0;
            if (t > 0)
                assert_true(fabsf(w[t - 1]) >= fabsf(w[t]));
        }
        assert_int_equal(got_negative, negative);
        /* k = 3: the first three of the full list. */
        uint32_t top[3];
        float tw[3];
        long k = cascade_ease_neighbours(m, j, 3, top, tw);
        assert_int_equal(k, all < 3 ? all : 3);
        for (long t = 0; t < k; t++) {
            assert_int_equal(top[t], items[t]);
            assert_true(tw[t] == w[t]);
        }
    }
    assert_int_equal(cascade_ease_neighbours(m, ITEMS - 1, 5, items, w), 0); /* uncovered */
    assert_int_equal(cascade_ease_neighbours(m, 5000, 5, items, w), 0);      /* out of range */
    cascade_ease_destroy(m);
}

/* The cap keeps the max_items items with the most distinct users (ties: lower
 * index), and B over them is the reference over that submatrix. */
static void test_item_cap_keeps_most_popular(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f, 17);
    enum { CAP = 6 };
    size_t users[ITEMS] = {0};
    uint32_t order[ITEMS], cols[CAP];
    for (size_t u = 0; u < USERS; u++)
        for (size_t i = 0; i < ITEMS; i++)
            users[i] += f.x[u][i];
    for (uint32_t i = 0; i < ITEMS; i++)
        order[i] = i;
    for (size_t a = 0; a < ITEMS; a++) /* selection sort: most users first */
        for (size_t b = a + 1; b < ITEMS; b++)
            if (users[order[b]] > users[order[a]] ||
                (users[order[b]] == users[order[a]] && order[b] < order[a])) {
                uint32_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    memcpy(cols, order, sizeof cols);
    cascade_ease *m = build(&f, LAMBDA, CAP);
    assert_int_equal(cascade_ease_n_covered(m), CAP);
    for (size_t t = 0; t < ITEMS; t++)
        assert_int_equal(cascade_ease_covers(m, order[t]), t < CAP);

    double ref[CAP * CAP];
    float row[ITEMS];
    reference_b(&f, cols, CAP, LAMBDA, ref);
    double scale = max_abs(ref, CAP * CAP);
    for (size_t a = 0; a < CAP; a++) {
        model_row(m, cols[a], row);
        for (size_t c = 0; c < CAP; c++)
            assert_true(fabs(row[cols[c]] - ref[a * CAP + c]) <= 1e-4 * scale);
        for (size_t t = CAP; t < ITEMS; t++)
            assert_true(row[order[t]] == 0.0f); /* uncovered items get nothing */
    }
    float hist_out[ITEMS];
    assert_int_equal(cascade_ease_score(m, &order[CAP], 1, hist_out), 0);
    for (size_t i = 0; i < ITEMS; i++)
        assert_true(hist_out[i] == 0.0f); /* an uncovered history contributes nothing */
    cascade_ease_destroy(m);
}

struct phases {
    char seen[8][16];
    int n;
};

static void on_phase(void *ud, const char *name)
{
    struct phases *p = ud;
    if (p->n < 8)
        snprintf(p->seen[p->n++], sizeof p->seen[0], "%s", name);
}

static void test_phases_in_order(void **state)
{
    (void)state;
    struct fixture f;
    struct phases p = {.n = 0};
    struct cascade_ease_opts o;
    char err[256];
    fixture_fill(&f, 19);
    cascade_ease_opts_default(&o);
    o.on_phase = on_phase;
    o.ud = &p;
    cascade_ease *m = cascade_ease_build(&f.in, &o, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.seen[0], "gram");
    assert_string_equal(p.seen[1], "cholesky");
    assert_string_equal(p.seen[2], "inverse");
    assert_string_equal(p.seen[3], "weights");
    cascade_ease_destroy(m);
}

static void expect_error(const struct cascade_ease_input *in, double lambda, size_t max_items,
                         const char *needle)
{
    struct cascade_ease_opts o;
    char err[256] = "";
    cascade_ease_opts_default(&o);
    o.lambda = lambda;
    o.max_items = max_items;
    cascade_ease *m = cascade_ease_build(in, &o, err, sizeof(err));
    if (m) {
        cascade_ease_destroy(m);
        fail_msg("built with lambda %g, max_items %zu", lambda, max_items);
    }
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f, 23);
    expect_error(&f.in, 0.0, 100, "lambda");
    expect_error(&f.in, -5.0, 100, "lambda");
    expect_error(&f.in, NAN, 100, "lambda");
    expect_error(&f.in, INFINITY, 100, "lambda");
    expect_error(&f.in, 10.0, 0, "max_items");
    expect_error(&f.in, 10.0, CASCADE_EASE_MAX_ITEMS + 1, "max_items");
    /* Users and items, but no interactions. */
    size_t off[4] = {0, 0, 0, 0};
    struct cascade_ease_input empty = {.n_users = 3, .n_items = 5, .off = off, .item = f.item};
    expect_error(&empty, 10.0, 100, "no interactions");
    expect_error(NULL, 10.0, 100, "missing");
    cascade_ease_destroy(NULL); /* NULL-safe */
    assert_int_equal(cascade_ease_n_covered(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b_matches_reference),
        cmocka_unit_test(test_scores_are_history_times_b),
        cmocka_unit_test(test_neighbours_by_magnitude_without_self),
        cmocka_unit_test(test_item_cap_keeps_most_popular),
        cmocka_unit_test(test_phases_in_order),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
