/* Tree ensemble prediction eight rows at a time (gbdt_internal.h), with
 * AVX2 when the CPU has it (checked once per model at load).
 *
 * Layout: every tree of the walk-ready layout (gbdt.c) unrolled into a
 * perfect binary tree of the model's depth D: 2^D − 1 splits stored level
 * by level, then 2^D leaves. A node at level l, position r, steps to
 * position 2r + (xx[feature] >= threshold) of level l + 1, exactly as the
 * walk steps to child + (xx[feature] >= threshold); a leaf reached early
 * becomes splits with a NaN threshold (always the first child) over copies
 * of itself, as the walk stays on it. So after D steps each row sits on the
 * leaf the walk ends on.
 *
 * Eight rows go down a tree together, one per AVX2 lane: the rows are
 * copied column-major with their negation (xt[c·8 + lane], c < 2·n_features),
 * the nodes of levels 0..3 (at most 8) are picked from one register by
 * position (vpermd/vpermps), deeper ones gathered, the row values gathered
 * by column. Each lane adds its tree's leaf to its own double in tree
 * order, the same additions as the one-row walk, so scores are
 * bit-identical (tests/unit/ml/test_gbdt.c). */
#include "gbdt_internal.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define LANES 8

struct cascade_gbdt__batch {
    uint32_t depth;     /* D */
    size_t tree_splits; /* 2^D − 1 */
    size_t tree_leaves; /* 2^D */
    int32_t *column8;   /* n_trees · tree_splits (+ LANES): xt column · LANES of each split */
    float *threshold;   /* the same positions */
    float *leaf;        /* n_trees · tree_leaves (+ LANES) */
};

void cascade_gbdt__batch_destroy(struct cascade_gbdt__batch *b)
{
    if (!b)
        return;
    free(b->column8);
    free(b->threshold);
    free(b->leaf);
    free(b);
}

/* Unroll walk node k into position r of level l of tree t. */
static void unroll(struct cascade_gbdt__batch *b, const struct gbdt_node *walk, size_t t,
                   uint32_t k, uint32_t l, size_t r)
{
    if (l == b->depth) {
        b->leaf[t * b->tree_leaves + r] = walk[k].leaf;
        return;
    }
    size_t at = t * b->tree_splits + ((size_t)1 << l) - 1 + r;
    b->column8[at] = (int32_t)(walk[k].feature * LANES);
    b->threshold[at] = walk[k].threshold;
    /* A leaf is its own child (and its NaN threshold always picks the
     * first); a split's children are child and child + 1. */
    uint32_t first = walk[k].child, second = first == k ? k : first + 1;
    unroll(b, walk, t, first, l + 1, 2 * r);
    unroll(b, walk, t, second, l + 1, 2 * r + 1);
}

int cascade_gbdt__batch_build(cascade_gbdt *m)
{
    m->batch = NULL;
    if (!__builtin_cpu_supports("avx2") || m->walk_depth > CASCADE_GBDT__BATCH_MAX_DEPTH ||
        m->n_features > GBDT_WALK_MAX_FEATURES || m->n_trees == 0)
        return 0;
    struct cascade_gbdt__batch *b = calloc(1, sizeof *b);
    if (!b)
        return CASCADE_ENOMEM;
    b->depth = m->walk_depth;
    b->tree_leaves = (size_t)1 << b->depth;
    b->tree_splits = b->tree_leaves - 1;
    /* LANES spare entries: a level of up to 8 nodes is loaded whole. */
    size_t splits = m->n_trees * b->tree_splits + LANES;
    b->column8 = calloc(splits, sizeof *b->column8);
    b->threshold = calloc(splits, sizeof *b->threshold);
    b->leaf = calloc(m->n_trees * b->tree_leaves + LANES, sizeof *b->leaf);
    if (!b->column8 || !b->threshold || !b->leaf) {
        cascade_gbdt__batch_destroy(b);
        return CASCADE_ENOMEM;
    }
    for (size_t t = 0; t < m->n_trees; t++)
        unroll(b, m->walk, t, m->walk_root[t], 0, 0);
    m->batch = b;
    return 0;
}

/* In place: r[k] becomes column k of the 8×8 block whose row j was r[j]. */
__attribute__((target("avx2"))) static inline void transpose8(__m256 r[LANES])
{
    __m256 t[LANES], u[LANES];
    for (int k = 0; k < LANES; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < LANES; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
    }
}

/* Rows [0, cnt) of X (cnt <= LANES) column-major into xt, each column
 * followed by its negation's (column nf + f; the sign flipped, as -x);
 * lanes past cnt read a row of zeros. start[lane] = what the row's sum
 * starts from. Eight features at a time by an 8×8 transpose, the rest
 * one by one. */
__attribute__((target("avx2"))) static void block_columns(const cascade_gbdt *m, const float *X,
                                                          size_t cnt, float *xt, double *start)
{
    static const float zeros[GBDT_WALK_MAX_FEATURES];
    size_t nf = m->n_features, f = 0;
    const float *row[LANES];
    for (size_t lane = 0; lane < LANES; lane++) {
        row[lane] = lane < cnt ? X + lane * nf : zeros;
        start[lane] = lane < cnt ? cascade_gbdt__row_start(m, row[lane]) : 0;
    }
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (; f + LANES <= nf; f += LANES) {
        __m256 r[LANES];
        for (int k = 0; k < LANES; k++)
            r[k] = _mm256_loadu_ps(row[k] + f);
        transpose8(r);
        for (int k = 0; k < LANES; k++) {
            _mm256_store_ps(xt + (f + (size_t)k) * LANES, r[k]);
            _mm256_store_ps(xt + (nf + f + (size_t)k) * LANES, _mm256_xor_ps(r[k], sign));
        }
    }
    for (; f < nf; f++)
        for (size_t lane = 0; lane < LANES; lane++) {
            xt[f * LANES + lane] = row[lane][f];
            xt[(nf + f) * LANES + lane] = -row[lane][f];
        }
}

/* The eight lanes' position at the next level: 2r + (x >= threshold), the
 * comparison false for NaN as in the one-row walk (ordered, quiet). */
__attribute__((target("avx2"))) static inline __m256i step(__m256i r, __m256 x, __m256 threshold)
{
    __m256i ge = _mm256_castps_si256(_mm256_cmp_ps(x, threshold, _CMP_GE_OQ));
    return _mm256_sub_epi32(_mm256_slli_epi32(r, 1), ge); /* ge is -1 or 0 */
}

/* The leaves of tree t at positions r (one per lane). */
__attribute__((target("avx2"))) static inline __m256 leaves(const struct cascade_gbdt__batch *b,
                                                            size_t t, __m256i r, uint32_t depth)
{
    const float *lf = b->leaf + t * b->tree_leaves;
    if (depth <= 3)
        return _mm256_permutevar8x32_ps(_mm256_loadu_ps(lf), r);
    if (depth == 4) {
        __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(lf), r);
        __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(lf + LANES), r);
        /* position bit 3 into the sign bit: set picks hi */
        return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(r, 28)));
    }
    return _mm256_i32gather_ps(lf, r, 4);
}

/* Eight rows (xt, start) through every tree; out[lane] for lanes < cnt. The
 * depth is a parameter so that the callers below get code for depths 4 and
 * 6 (what cascade-build train ltr grows) with the level loop unrolled. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
block_walk(const cascade_gbdt *m, const float *xt, const double *start, size_t cnt, float *out,
           const uint32_t depth)
{
    const struct cascade_gbdt__batch *b = m->batch;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256d acc_lo = _mm256_loadu_pd(start), acc_hi = _mm256_loadu_pd(start + 4);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *col = b->column8 + t * b->tree_splits;
        const float *thr = b->threshold + t * b->tree_splits;
        __m256i r = _mm256_setzero_si256();
        if (depth > 0) /* level 0: one node, one column for all lanes */
            r = step(r, _mm256_loadu_ps(xt + col[0]), _mm256_set1_ps(thr[0]));
#pragma GCC unroll 8
        for (uint32_t l = 1; l < depth; l++) {
            size_t base = ((size_t)1 << l) - 1;
            __m256i c;
            __m256 th;
            if (l <= 3) {
                c = _mm256_permutevar8x32_epi32(
                    _mm256_loadu_si256((const __m256i *)(const void *)(col + base)), r);
                th = _mm256_permutevar8x32_ps(_mm256_loadu_ps(thr + base), r);
            } else {
                c = _mm256_i32gather_epi32(col + base, r, 4);
                th = _mm256_i32gather_ps(thr + base, r, 4);
            }
            r = step(r, _mm256_i32gather_ps(xt, _mm256_add_epi32(c, lane), 4), th);
        }
        __m256 v = leaves(b, t, r, depth);
        acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    float s[LANES];
    _mm_storeu_ps(s, _mm256_cvtpd_ps(acc_lo));
    _mm_storeu_ps(s + 4, _mm256_cvtpd_ps(acc_hi));
    memcpy(out, s, cnt * sizeof *out);
}

__attribute__((target("avx2"))) static void
block_depth4(const cascade_gbdt *m, const float *xt, const double *start, size_t cnt, float *out)
{
    block_walk(m, xt, start, cnt, out, 4);
}

__attribute__((target("avx2"))) static void
block_depth6(const cascade_gbdt *m, const float *xt, const double *start, size_t cnt, float *out)
{
    block_walk(m, xt, start, cnt, out, 6);
}

__attribute__((target("avx2"))) static void block_any(const cascade_gbdt *m, const float *xt,
                                                      const double *start, size_t cnt, float *out)
{
    block_walk(m, xt, start, cnt, out, m->batch->depth);
}

void cascade_gbdt__batch_predict(const cascade_gbdt *m, const float *X, size_t n, float *out)
{
    void (*block)(const cascade_gbdt *, const float *, const double *, size_t, float *) =
        m->batch->depth == 4   ? block_depth4
        : m->batch->depth == 6 ? block_depth6
                               : block_any;
    size_t nf = m->n_features;
    float xt[2 * GBDT_WALK_MAX_FEATURES * LANES] __attribute__((aligned(32)));
    double start[LANES];
    size_t i = 0;
    for (; i < n; i += LANES) {
        size_t cnt = n - i < LANES ? n - i : LANES;
        if (cnt < CASCADE_GBDT__BATCH_MIN_TAIL)
            break;
        block_columns(m, X + i * nf, cnt, xt, start);
        block(m, xt, start, cnt, out + i);
    }
    if (i < n)
        cascade_gbdt__predict_rows(m, X + i * nf, n - i, out + i);
}
