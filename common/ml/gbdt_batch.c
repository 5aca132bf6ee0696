/* Tree ensemble prediction 8 or 16 rows at a time (gbdt_internal.h), with
 * AVX2 or AVX-512 when the CPU has it (checked once per model at load).
 *
 * Layout: every tree of the walk-ready layout (gbdt.c) unrolled into a
 * perfect binary tree of depth D (the model's depth, at least MASK_DEPTH;
 * WIDE_MASK_DEPTH for a model 5 or 6 deep):
 * 2^D − 1 splits stored level by level, then 2^D leaves. A node at level
 * l, position r, steps to position 2r + (xx[feature] >= threshold) of level
 * l + 1, exactly as the walk steps to child + (xx[feature] >= threshold); a
 * leaf reached early becomes splits with a NaN threshold (always the first
 * child) over copies of itself, as the walk stays on it. So after D steps
 * each row sits on the leaf the walk ends on.
 *
 * The rows of a block are copied column-major with their negation
 * (xt[c·lanes + lane], c < 2·n_features), one vector lane per row. Two ways
 * down a tree:
 *   - D = MASK_DEPTH (models at most that deep) or WIDE_MASK_DEPTH (5 or
 *     6 deep), by leaf masks, no gather of row values: every split is tested for all the
 *     block's rows with one load of its column and one compare,
 *     independently of the others. A row that goes right at a node cannot
 *     end in the node's left half, so that half's leaves are cleared from
 *     the row's mask of reachable leaves; a row that goes left clears
 *     nothing there. After all the splits, the leftmost leaf
 *     still set is the one the walk ends on: the walk's own leaf is never
 *     cleared (a node off its path clears leaves of its own subtree only),
 *     and any leaf left of it is cleared where its path and the walk's part
 *     (the walk went right there). Leaf k is mask bit 2^D − 1 − k, so the
 *     exit leaf is the highest set bit: with AVX-512 (16 rows a block) its
 *     leading zeros, with AVX2 (8 rows) the exponent of the mask converted
 *     to float (exact below 2^24; block_wide_masks differs, see there).
 *   - models 7 or 8 deep walk eight rows level by level (AVX2): the nodes of
 *     levels 0..3 (at most 8) picked from one register by position
 *     (vpermd/vpermps), deeper ones gathered, the row values gathered by
 *     column.
 * Each lane adds its tree's leaf to its own double in tree order, the same
 * additions as the one-row walk, so scores are bit-identical
 * (tests/unit/ml/test_gbdt.c). */
#include "gbdt_internal.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define LANES 8      /* rows per block with AVX2 */
#define MAX_LANES 16 /* with AVX-512 */

/* The depth models at most this deep are unrolled to and evaluated at by
 * leaf masks: 16 leaves, bits 0..15 of a 32-bit lane. */
#define MASK_DEPTH 4
#define MASK_SPLITS ((1 << MASK_DEPTH) - 1)
#define MASK_LEAVES (1 << MASK_DEPTH)

/* Models 5 or 6 deep (the learned ranker's): 64 leaves, a 64-bit lane with
 * AVX-512, a 32-bit lane per half of the tree with AVX2. */
#define WIDE_MASK_DEPTH 6
#define WIDE_MASK_SPLITS ((1 << WIDE_MASK_DEPTH) - 1)
#define WIDE_MASK_LEAVES (1 << WIDE_MASK_DEPTH)

struct cascade_gbdt__batch {
    enum cascade_gbdt__isa isa; /* the instructions the blocks use */
    size_t lanes;               /* rows per block: LANES, or MAX_LANES with AVX-512 */
    uint32_t depth;             /* D */
    bool masks;                 /* D is MASK_DEPTH or WIDE_MASK_DEPTH: evaluated by leaf masks */
    uint64_t clear[WIDE_MASK_SPLITS];      /* the mask bits of each split's left half */
    uint32_t half_clear[WIDE_MASK_SPLITS]; /* the same within the root's halves (AVX2) */
    size_t tree_splits;                    /* 2^D − 1 */
    size_t tree_leaves;                    /* 2^D */
    int32_t *column_at; /* n_trees · tree_splits (+ LANES): xt column · lanes of each split */
    float *threshold;   /* the same positions */
    float *leaf;        /* n_trees · tree_leaves */
};

void cascade_gbdt__batch_destroy(struct cascade_gbdt__batch *b)
{
    if (!b)
        return;
    free(b->column_at);
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
    b->column_at[at] = (int32_t)(walk[k].feature * b->lanes);
    b->threshold[at] = walk[k].threshold;
    /* A leaf is its own child (and its NaN threshold always picks the
     * first); a split's children are child and child + 1. */
    uint32_t first = walk[k].child, second = first == k ? k : first + 1;
    unroll(b, walk, t, first, l + 1, 2 * r);
    unroll(b, walk, t, second, l + 1, 2 * r + 1);
}

/* The mask bits of the leaves a row cannot reach once it goes right at
 * position r of level l of a tree of 2^depth leaves: the left half of the
 * node's subtree (leaf k is bit 2^depth − 1 − k). */
static uint64_t left_half_bits(uint32_t depth, uint32_t l, uint32_t r)
{
    uint32_t leaves = 1u << depth, half = leaves >> (l + 1), first = 2 * r * half;
    uint64_t bits = 0;
    for (uint32_t k = first; k < first + half; k++)
        bits |= (uint64_t)1 << (leaves - 1 - k);
    return bits;
}

/* left_half_bits for the AVX2 form of WIDE_MASK_DEPTH, where each row has
 * a 32-bit mask per half of the tree (the root's two subtrees, leaves
 * 0..31 and 32..63) and leaf k is bit k mod 32 of its half's, so the exit
 * leaf is the lowest bit set. Level l >= 1. */
static uint32_t left_half_bits_in_half(uint32_t l, uint32_t r)
{
    uint32_t half = (uint32_t)WIDE_MASK_LEAVES >> (l + 1), first = (2 * r * half) % 32;
    return (uint32_t)((((uint64_t)1 << half) - 1) << first);
}

enum cascade_gbdt__isa cascade_gbdt__cpu_isa(void)
{
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd"))
        return CASCADE_GBDT__AVX512;
    return __builtin_cpu_supports("avx2") ? CASCADE_GBDT__AVX2 : CASCADE_GBDT__SCALAR;
}

int cascade_gbdt__batch_build(cascade_gbdt *m)
{
    return cascade_gbdt__batch_build_isa(m, cascade_gbdt__cpu_isa());
}

int cascade_gbdt__batch_build_isa(cascade_gbdt *m, enum cascade_gbdt__isa isa)
{
    cascade_gbdt__batch_destroy(m->batch);
    m->batch = NULL;
    if (isa > cascade_gbdt__cpu_isa())
        return CASCADE_EINVAL;
    if (isa == CASCADE_GBDT__SCALAR || m->walk_depth > CASCADE_GBDT__BATCH_MAX_DEPTH ||
        m->n_features > GBDT_WALK_MAX_FEATURES || m->n_trees == 0)
        return 0;
    struct cascade_gbdt__batch *b = calloc(1, sizeof *b);
    if (!b)
        return CASCADE_ENOMEM;
    b->depth = m->walk_depth <= MASK_DEPTH        ? MASK_DEPTH
               : m->walk_depth <= WIDE_MASK_DEPTH ? WIDE_MASK_DEPTH
                                                  : m->walk_depth;
    b->masks = b->depth == MASK_DEPTH || b->depth == WIDE_MASK_DEPTH;
    /* The walk (models 7 or 8 deep) has an AVX2 form only. */
    b->isa = b->masks ? isa : CASCADE_GBDT__AVX2;
    b->lanes = b->isa == CASCADE_GBDT__AVX512 ? MAX_LANES : LANES;
    if (b->masks)
        for (uint32_t l = 0; l < b->depth; l++)
            for (uint32_t r = 0; r < 1u << l; r++)
                b->clear[(1u << l) - 1 + r] = left_half_bits(b->depth, l, r);
    if (b->depth == WIDE_MASK_DEPTH)
        for (uint32_t l = 1; l < b->depth; l++)
            for (uint32_t r = 0; r < 1u << l; r++)
                b->half_clear[(1u << l) - 1 + r] = left_half_bits_in_half(l, r);
    b->tree_leaves = (size_t)1 << b->depth;
    b->tree_splits = b->tree_leaves - 1;
    /* LANES spare entries: a level of up to 8 nodes is loaded whole. */
    size_t splits = m->n_trees * b->tree_splits + LANES;
    b->column_at = calloc(splits, sizeof *b->column_at);
    b->threshold = calloc(splits, sizeof *b->threshold);
    b->leaf = calloc(m->n_trees * b->tree_leaves, sizeof *b->leaf);
    if (!b->column_at || !b->threshold || !b->leaf) {
        cascade_gbdt__batch_destroy(b);
        return CASCADE_ENOMEM;
    }
    for (size_t t = 0; t < m->n_trees; t++)
        unroll(b, m->walk, t, m->walk_root[t], 0, 0);
    m->batch = b;
    return 0;
}

const char *cascade_gbdt__batch_method(const cascade_gbdt *m)
{
    if (!m->batch)
        return "one row at a time";
    if (!m->batch->masks)
        return "level walk, 8 rows a block (AVX2)";
    if (m->batch->isa == CASCADE_GBDT__AVX2)
        return m->batch->depth == MASK_DEPTH ? "leaf masks (depth 4), 8 rows a block (AVX2)"
                                             : "leaf masks (depth 6), 8 rows a block (AVX2)";
    return m->batch->depth == MASK_DEPTH ? "leaf masks (depth 4), 16 rows a block (AVX-512)"
                                         : "leaf masks (depth 6), 16 rows a block (AVX-512)";
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

/* Rows [0, cnt) of X (cnt <= b->lanes) column-major into xt (column c at
 * xt + c·lanes), each column followed by its negation's (column nf + f;
 * the sign flipped, as -x); lanes past cnt read a row of zeros. start[lane]
 * = what the row's sum starts from. Eight rows by eight features at a time
 * by an 8×8 transpose, the last features one by one. */
__attribute__((target("avx2"))) static void block_columns(const cascade_gbdt *m, const float *X,
                                                          size_t cnt, float *xt, double *start)
{
    static const float zeros[GBDT_WALK_MAX_FEATURES];
    size_t nf = m->n_features, lanes = m->batch->lanes, f = 0;
    const float *row[MAX_LANES];
    for (size_t lane = 0; lane < lanes; lane++) {
        row[lane] = lane < cnt ? X + lane * nf : zeros;
        start[lane] = lane < cnt ? cascade_gbdt__row_start(m, row[lane]) : 0;
    }
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (; f + LANES <= nf; f += LANES)
        for (size_t group = 0; group < lanes; group += LANES) {
            __m256 r[LANES];
            for (int k = 0; k < LANES; k++)
                r[k] = _mm256_loadu_ps(row[group + (size_t)k] + f);
            transpose8(r);
            for (int k = 0; k < LANES; k++) {
                _mm256_store_ps(xt + (f + (size_t)k) * lanes + group, r[k]);
                _mm256_store_ps(xt + (nf + f + (size_t)k) * lanes + group,
                                _mm256_xor_ps(r[k], sign));
            }
        }
    for (; f < nf; f++)
        for (size_t lane = 0; lane < lanes; lane++) {
            xt[f * lanes + lane] = row[lane][f];
            xt[(nf + f) * lanes + lane] = -row[lane][f];
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
    if (depth == 4) {
        __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(lf), r);
        __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(lf + LANES), r);
        /* position bit 3 into the sign bit: set picks hi */
        return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(r, 28)));
    }
    return _mm256_i32gather_ps(lf, r, 4);
}

/* Each lane's leaf in v added to its row's double (rows 0..3 in lo, 4..7
 * in hi). */
__attribute__((target("avx2"))) static inline void add_leaves(__m256d *lo, __m256d *hi, __m256 v)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

/* The eight sums as floats, out[lane] for lanes < cnt. */
__attribute__((target("avx2"))) static inline void store_sums(__m256d lo, __m256d hi, size_t cnt,
                                                              float *out)
{
    float s[LANES];
    _mm_storeu_ps(s, _mm256_cvtpd_ps(lo));
    _mm_storeu_ps(s + 4, _mm256_cvtpd_ps(hi));
    memcpy(out, s, cnt * sizeof *out);
}

/* Eight rows (xt, start) through every tree by the level walk (models 7
 * or 8 deep); out[lane] for lanes < cnt. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
block_walk(const cascade_gbdt *m, const float *xt, const double *start, size_t cnt, float *out,
           const uint32_t depth)
{
    const struct cascade_gbdt__batch *b = m->batch;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256d acc_lo = _mm256_loadu_pd(start), acc_hi = _mm256_loadu_pd(start + 4);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *col = b->column_at + t * b->tree_splits;
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
        add_leaves(&acc_lo, &acc_hi, v);
    }
    store_sums(acc_lo, acc_hi, cnt, out);
}

/* Eight rows (xt, start) through every tree by leaf masks (the model
 * unrolled to MASK_DEPTH); out[lane] for lanes < cnt. */
__attribute__((target("avx2"))) static void block_masks(const cascade_gbdt *m, const float *xt,
                                                        const double *start, size_t cnt, float *out)
{
    const struct cascade_gbdt__batch *b = m->batch;
    __m256 clear[MASK_SPLITS];
    for (int i = 0; i < MASK_SPLITS; i++)
        clear[i] = _mm256_castsi256_ps(_mm256_set1_epi32((int32_t)b->clear[i]));
    const __m256 every_leaf = _mm256_castsi256_ps(_mm256_set1_epi32((1 << MASK_LEAVES) - 1));
    const __m256i leaf0_exponent = _mm256_set1_epi32(127 + MASK_LEAVES - 1);
    __m256d acc_lo = _mm256_loadu_pd(start), acc_hi = _mm256_loadu_pd(start + 4);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *at = b->column_at + t * MASK_SPLITS;
        const float *thr = b->threshold + t * MASK_SPLITS;
        __m256 reach = every_leaf;
#pragma GCC unroll 16
        for (int i = 0; i < MASK_SPLITS; i++) {
            /* false on NaN (ordered, quiet): the row goes left, as in the walk */
            __m256 right =
                _mm256_cmp_ps(_mm256_load_ps(xt + at[i]), _mm256_set1_ps(thr[i]), _CMP_GE_OQ);
            reach = _mm256_andnot_ps(_mm256_and_ps(right, clear[i]), reach);
        }
        /* The highest bit set, 15 − k for exit leaf k: reach as a float is
         * exact (below 2^16), its biased exponent 127 + 15 − k. */
        __m256i exponent = _mm256_srli_epi32(
            _mm256_castps_si256(_mm256_cvtepi32_ps(_mm256_castps_si256(reach))), 23);
        __m256 v = leaves(b, t, _mm256_sub_epi32(leaf0_exponent, exponent), MASK_DEPTH);
        add_leaves(&acc_lo, &acc_hi, v);
    }
    store_sums(acc_lo, acc_hi, cnt, out);
}

/* add_leaves and store_sums for sixteen rows (rows 0..7 in lo). */
__attribute__((target("avx512f"))) static inline void add_leaves16(__m512d *lo, __m512d *hi,
                                                                   __m512 v)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *hi = _mm512_add_pd(
        *hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

__attribute__((target("avx512f"))) static inline void store_sums16(__m512d lo, __m512d hi,
                                                                   size_t cnt, float *out)
{
    float s[MAX_LANES];
    _mm256_storeu_ps(s, _mm512_cvtpd_ps(lo));
    _mm256_storeu_ps(s + LANES, _mm512_cvtpd_ps(hi));
    memcpy(out, s, cnt * sizeof *out);
}

/* block_masks with sixteen rows: a compare gives a mask register, the
 * clearing is one masked and-not, the exit leaf k is the mask's leading
 * zeros (16 + k, of which vpermps reads the low four bits). */
__attribute__((target("avx512f,avx512cd"))) static void
block_masks16(const cascade_gbdt *m, const float *xt, const double *start, size_t cnt, float *out)
{
    const struct cascade_gbdt__batch *b = m->batch;
    __m512i clear[MASK_SPLITS];
    for (int i = 0; i < MASK_SPLITS; i++)
        clear[i] = _mm512_set1_epi32((int32_t)b->clear[i]);
    const __m512i every_leaf = _mm512_set1_epi32((1 << MASK_LEAVES) - 1);
    __m512d acc_lo = _mm512_loadu_pd(start), acc_hi = _mm512_loadu_pd(start + 8);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *at = b->column_at + t * MASK_SPLITS;
        const float *thr = b->threshold + t * MASK_SPLITS;
        __m512i reach = every_leaf;
#pragma GCC unroll 16
        for (int i = 0; i < MASK_SPLITS; i++) {
            __mmask16 right =
                _mm512_cmp_ps_mask(_mm512_load_ps(xt + at[i]), _mm512_set1_ps(thr[i]), _CMP_GE_OQ);
            reach = _mm512_mask_andnot_epi32(reach, right, clear[i], reach);
        }
        __m512 v = _mm512_permutexvar_ps(_mm512_lzcnt_epi32(reach),
                                         _mm512_loadu_ps(b->leaf + t * MASK_LEAVES));
        add_leaves16(&acc_lo, &acc_hi, v);
    }
    store_sums16(acc_lo, acc_hi, cnt, out);
}

/* block_masks16 for models unrolled to WIDE_MASK_DEPTH: each row's mask
 * is a 64-bit lane (rows 0..7 in one register, 8..15 in another), the
 * exit leaf k its leading zeros, its value picked from the 64 by two
 * two-register permutes (vpermt2ps, 32 leaves each) and bit 5 of k. */
__attribute__((target("avx512f,avx512cd"))) static void block_wide_masks16(const cascade_gbdt *m,
                                                                           const float *xt,
                                                                           const double *start,
                                                                           size_t cnt, float *out)
{
    const struct cascade_gbdt__batch *b = m->batch;
    const __m512i every_leaf = _mm512_set1_epi64(-1), leaf_bit5 = _mm512_set1_epi32(32);
    __m512d acc_lo = _mm512_loadu_pd(start), acc_hi = _mm512_loadu_pd(start + 8);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *at = b->column_at + t * WIDE_MASK_SPLITS;
        const float *thr = b->threshold + t * WIDE_MASK_SPLITS;
        __m512i reach_lo = every_leaf, reach_hi = every_leaf;
#pragma GCC unroll 64
        for (int i = 0; i < WIDE_MASK_SPLITS; i++) {
            __mmask16 right =
                _mm512_cmp_ps_mask(_mm512_load_ps(xt + at[i]), _mm512_set1_ps(thr[i]), _CMP_GE_OQ);
            __m512i clear = _mm512_set1_epi64((long long)b->clear[i]);
            reach_lo = _mm512_mask_andnot_epi64(reach_lo, (__mmask8)right, clear, reach_lo);
            reach_hi = _mm512_mask_andnot_epi64(reach_hi, (__mmask8)(right >> 8), clear, reach_hi);
        }
        __m512i k = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_lzcnt_epi64(reach_lo))),
            _mm512_cvtepi64_epi32(_mm512_lzcnt_epi64(reach_hi)), 1);
        const float *lf = b->leaf + t * WIDE_MASK_LEAVES;
        __m512 first = _mm512_permutex2var_ps(_mm512_loadu_ps(lf), k, _mm512_loadu_ps(lf + 16));
        __m512 second =
            _mm512_permutex2var_ps(_mm512_loadu_ps(lf + 32), k, _mm512_loadu_ps(lf + 48));
        __m512 v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(k, leaf_bit5), first, second);
        add_leaves16(&acc_lo, &acc_hi, v);
    }
    store_sums16(acc_lo, acc_hi, cnt, out);
}

/* block_masks for models unrolled to WIDE_MASK_DEPTH: a 32-bit mask per
 * half of the tree (the root's subtrees; a split below the root clears
 * leaves of its own half only), the root's compare picking the half, the
 * exit leaf the lowest bit set of that half's mask (isolated, so its float
 * is exact: the exponent, 127 + k, even for bit 31 whose int is negative),
 * its value gathered from the 64. */
__attribute__((target("avx2"))) static void block_wide_masks(const cascade_gbdt *m, const float *xt,
                                                             const double *start, size_t cnt,
                                                             float *out)
{
    const struct cascade_gbdt__batch *b = m->batch;
    const __m256 every_leaf = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    const __m256i low5 = _mm256_set1_epi32(31), one = _mm256_set1_epi32(1),
                  second_half = _mm256_set1_epi32(WIDE_MASK_LEAVES / 2);
    __m256d acc_lo = _mm256_loadu_pd(start), acc_hi = _mm256_loadu_pd(start + 4);
    for (size_t t = 0; t < m->n_trees; t++) {
        const int32_t *at = b->column_at + t * WIDE_MASK_SPLITS;
        const float *thr = b->threshold + t * WIDE_MASK_SPLITS;
        __m256 root_right =
            _mm256_cmp_ps(_mm256_load_ps(xt + at[0]), _mm256_set1_ps(thr[0]), _CMP_GE_OQ);
        __m256 reach[2] = {every_leaf, every_leaf}; /* the left half's, the right half's */
#pragma GCC unroll 8
        for (int l = 1; l < WIDE_MASK_DEPTH; l++) {
            int base = (1 << l) - 1, per_half = 1 << (l - 1);
#pragma GCC unroll 32
            for (int r = 0; r < 2 * per_half; r++) {
                int i = base + r;
                __m256 right =
                    _mm256_cmp_ps(_mm256_load_ps(xt + at[i]), _mm256_set1_ps(thr[i]), _CMP_GE_OQ);
                __m256 clear = _mm256_castsi256_ps(_mm256_set1_epi32((int32_t)b->half_clear[i]));
                reach[r >= per_half] =
                    _mm256_andnot_ps(_mm256_and_ps(right, clear), reach[r >= per_half]);
            }
        }
        __m256i mask = _mm256_castps_si256(_mm256_blendv_ps(reach[0], reach[1], root_right));
        __m256i lowest = _mm256_and_si256(mask, _mm256_sub_epi32(_mm256_setzero_si256(), mask));
        __m256i exponent = _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(lowest)), 23);
        /* (127 + k + 1) mod 32 = k */
        __m256i k = _mm256_and_si256(_mm256_add_epi32(exponent, one), low5);
        k = _mm256_or_si256(k, _mm256_and_si256(_mm256_castps_si256(root_right), second_half));
        add_leaves(&acc_lo, &acc_hi, _mm256_i32gather_ps(b->leaf + t * WIDE_MASK_LEAVES, k, 4));
    }
    store_sums(acc_lo, acc_hi, cnt, out);
}

__attribute__((target("avx2"))) static void block_any(const cascade_gbdt *m, const float *xt,
                                                      const double *start, size_t cnt, float *out)
{
    block_walk(m, xt, start, cnt, out, m->batch->depth);
}

void cascade_gbdt__batch_predict(const cascade_gbdt *m, const float *X, size_t n, float *out)
{
    const struct cascade_gbdt__batch *b = m->batch;
    void (*block)(const cascade_gbdt *, const float *, const double *, size_t, float *) =
        b->masks && b->isa == CASCADE_GBDT__AVX512
            ? (b->depth == MASK_DEPTH ? block_masks16 : block_wide_masks16)
        : b->masks ? (b->depth == MASK_DEPTH ? block_masks : block_wide_masks)
                   : block_any;
    size_t nf = m->n_features, lanes = b->lanes;
    float xt[2 * GBDT_WALK_MAX_FEATURES * MAX_LANES] __attribute__((aligned(64)));
    double start[MAX_LANES];
    size_t i = 0;
    for (; i < n; i += lanes) {
        size_t cnt = n - i < lanes ? n - i : lanes;
        if (cnt < CASCADE_GBDT__BATCH_MIN_TAIL)
            break;
        block_columns(m, X + i * nf, cnt, xt, start);
        block(m, xt, start, cnt, out + i);
    }
    if (i < n)
        cascade_gbdt__predict_rows(m, X + i * nf, n - i, out + i);
}
