/* DPP re-rank: greedy MAP inference by incremental Cholesky updates (Chen,
 * Zhang & Zhou, "Fast Greedy MAP Inference for Determinantal Point Process
 * to Improve Recommendation Diversity", NeurIPS 2018, Algorithms 1 and 2).
 *
 * The factorisation runs on S, not on L = diag(q)·S·diag(q): the Cholesky
 * factor of L is diag(q) times S's, so d_i²(L) = q_i²·d_i²(S) and
 * argmax d_i²(L) = argmax θ·rel_i + (1−θ)·log d_i²(S). Working in log space
 * keeps θ near 1 (q up to e^(θ/(2(1−θ)))) finite.
 *
 * Row i of C holds item i's coefficients against the picks in the window
 * (column k = the k-th oldest pick); the rows of the picks themselves form
 * the window's lower-triangular factor V (diagonal = their d). Sliding the
 * window drops column 0 by Givens rotations (a rank-one Cholesky update of
 * the remaining factor) applied to every row, then shifts the columns. */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "rerank.h"
#include "rerank_internal.h"

/* Items whose conditional variance falls to this add no volume. */
#define DPP_EPS 1e-9

struct dpp {
    size_t n, dim, cols;                  /* cols = window capacity */
    double theta, w_cat, w_author, w_emb; /* w_* already divided by their sum */
    const struct cascade_mmr_item *items;
    double *rel, *d2, *c; /* c: n × cols */
    double *dots;         /* ⟨c_j, c_i⟩ of the latest pick j, per item */
    float *emb, *cosv;    /* emb: n × dim unit rows (zero = none); NULL when unused */
    bool *taken;
    size_t *win; /* window picks, oldest first */
    size_t s;    /* picks in the window */
};

/* Gather the embeddings, normalised, into a dense n × dim matrix; rows of
 * items without one (or of another width) stay zero. */
static int gather_embeddings(struct dpp *p, cascade_arena *arena)
{
    size_t dim = 0;
    for (size_t i = 0; i < p->n && !dim; i++)
        if (p->items[i].embedding && p->items[i].dim > 0)
            dim = p->items[i].dim;
    if (dim == 0 || p->w_emb <= 0)
        return 0;
    p->dim = dim;
    p->emb = cascade_arena_calloc(arena, p->n * dim, sizeof *p->emb);
    p->cosv = cascade_arena_calloc(arena, p->n, sizeof *p->cosv);
    if (!p->emb || !p->cosv)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        const float *e = p->items[i].embedding;
        if (!e || p->items[i].dim != dim)
            continue;
        double norm = 0;
        for (size_t k = 0; k < dim; k++)
            norm += (double)e[k] * e[k];
        if (!(norm > 0) || !isfinite(norm))
            continue;
        float inv = (float)(1.0 / sqrt(norm));
        for (size_t k = 0; k < dim; k++)
            p->emb[i * dim + k] = e[k] * inv;
    }
    return 0;
}

static int dpp_init(struct dpp *p, const struct cascade_mmr_item *items, size_t n, size_t count,
                    const struct cascade_dpp_opts *o, cascade_arena *arena)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->items = items;
    p->theta = o->theta;
    p->cols = o->window > 0 && o->window < count ? o->window : count;
    if (p->cols == 0)
        p->cols = 1;
    double sum = o->sim_category + o->sim_author + o->sim_embedding;
    if (sum > 0) {
        p->w_cat = o->sim_category / sum;
        p->w_author = o->sim_author / sum;
        p->w_emb = o->sim_embedding / sum;
    }
    p->rel = cascade_arena_calloc(arena, n, sizeof *p->rel);
    p->d2 = cascade_arena_calloc(arena, n, sizeof *p->d2);
    p->dots = cascade_arena_calloc(arena, n, sizeof *p->dots);
    p->c = cascade_arena_calloc(arena, n * p->cols, sizeof *p->c);
    p->taken = cascade_arena_calloc(arena, n, sizeof *p->taken);
    p->win = cascade_arena_calloc(arena, p->cols, sizeof *p->win);
    if (!p->rel || !p->d2 || !p->dots || !p->c || !p->taken || !p->win)
        return CASCADE_ENOMEM;
    cascade_rerank__normalise(items, n, p->rel);
    for (size_t i = 0; i < n; i++)
        p->d2[i] = 1.0; /* S_ii */
    return gather_embeddings(p, arena);
}

/* The selection objective of candidate i: θ·rel + (1−θ)·log d². */
static double gain(const struct dpp *p, size_t i)
{
    double d2 = p->d2[i] > DPP_EPS ? p->d2[i] : DPP_EPS;
    return p->theta >= 1 ? p->rel[i] : p->theta * p->rel[i] + (1 - p->theta) * log(d2);
}

/* The best untaken item: among those with d² > eps by gain, else (every one
 * is degenerate) by relevance. *volume says which. n when none is left. */
static size_t dpp_argmax(const struct dpp *p, bool *volume)
{
    size_t best = p->n, fallback = p->n;
    double best_v = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->taken[i])
            continue;
        if (fallback == p->n || p->rel[i] > p->rel[fallback])
            fallback = i;
        if (p->theta < 1 && !(p->d2[i] > DPP_EPS))
            continue;
        double v = gain(p, i);
        if (best == p->n || v > best_v) {
            best = i;
            best_v = v;
        }
    }
    *volume = best != p->n;
    return best != p->n ? best : fallback;
}

/* S_ji for every item i into sims[i] (the diagonal term is not used). */
static void similarities(const struct dpp *p, size_t j, double *sims)
{
    const struct cascade_mmr_item *a = &p->items[j];
    if (p->emb)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)p->n, (int)p->dim, 1.0f, p->emb, (int)p->dim,
                    p->emb + j * p->dim, 1, 0.0f, p->cosv, 1);
    for (size_t i = 0; i < p->n; i++) {
        const struct cascade_mmr_item *b = &p->items[i];
        double s = 0;
        if (a->category != 0 && a->category == b->category)
            s += p->w_cat;
        if (a->author_id != 0 && a->author_id == b->author_id)
            s += p->w_author;
        if (p->emb)
            s += p->w_emb * p->cosv[i];
        sims[i] = s;
    }
}

/* Add pick j to the window: each untaken i gets e_i = (S_ji − ⟨c_j, c_i⟩)/d_j
 * as its next coefficient and d_i² −= e_i² (Algorithm 1's update). */
static void dpp_add(struct dpp *p, size_t j, double *sims)
{
    size_t s = p->s, cols = p->cols;
    double dj = sqrt(p->d2[j]);
    similarities(p, j, sims);
    if (s > 0)
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)p->n, (int)s, 1.0, p->c, (int)cols,
                    p->c + j * cols, 1, 0.0, p->dots, 1);
    for (size_t i = 0; i < p->n; i++) {
        if (p->taken[i])
            continue;
        double e = (sims[i] - (s > 0 ? p->dots[i] : 0.0)) / dj;
        p->c[i * cols + s] = e;
        p->d2[i] -= e * e;
    }
    p->c[j * cols + s] = dj;
    p->win[p->s++] = j;
}

/* Apply the Givens rotation (c, sn) to columns k and 0 of row x. */
static void rotate(double *x, size_t k, double c, double sn)
{
    double a = x[k], b = x[0];
    x[k] = c * a + sn * b;
    x[0] = -sn * a + c * b;
}

/* Drop the oldest pick from the window (Algorithm 2's update): rotations
 * zero column 0 in the remaining picks' rows, keeping the factor lower
 * triangular; each untaken row's residue in column 0 goes back into its d².
 * Then every column moves one to the left. */
static void dpp_slide(struct dpp *p)
{
    size_t cols = p->cols, s = p->s;
    for (size_t k = 1; k < s; k++) {
        double *rk = p->c + p->win[k] * cols;
        double r = hypot(rk[k], rk[0]);
        if (!(r > 0))
            continue;
        double c = rk[k] / r, sn = rk[0] / r;
        for (size_t m = k; m < s; m++)
            rotate(p->c + p->win[m] * cols, k, c, sn);
        for (size_t i = 0; i < p->n; i++)
            if (!p->taken[i])
                rotate(p->c + i * cols, k, c, sn);
    }
    for (size_t i = 0; i < p->n; i++) {
        double *x = p->c + i * cols;
        if (!p->taken[i])
            p->d2[i] += x[0] * x[0];
        memmove(x, x + 1, (cols - 1) * sizeof *x);
        x[cols - 1] = 0;
    }
    memmove(p->win, p->win + 1, (s - 1) * sizeof *p->win);
    p->s--;
}

int cascade_rerank_dpp(const struct cascade_mmr_item *items, size_t n, size_t count,
                       const struct cascade_dpp_opts *opts, cascade_arena *arena,
                       int64_t deadline_ms, size_t *order, float *values, size_t *n_out)
{
    struct dpp p;
    *n_out = 0;
    if (count > n)
        count = n;
    if (n == 0 || count == 0)
        return 0;
    if (dpp_init(&p, items, n, count, opts, arena) != 0)
        return CASCADE_ENOMEM;
    double *sims = cascade_arena_calloc(arena, n, sizeof *sims);
    if (!sims)
        return CASCADE_ENOMEM;
    for (size_t t = 0; t < count; t++) {
        if (t % 16 == 15 && cascade_now_ms() >= deadline_ms)
            return CASCADE_ETIMEDOUT;
        bool volume;
        size_t j = dpp_argmax(&p, &volume);
        order[t] = j;
        values[t] = (float)gain(&p, j);
        *n_out = t + 1;
        if (volume && p.theta < 1 && t + 1 < count) {
            /* j is still a candidate for the slide: its row and d² must be
             * conditioned on the new window before it joins it. */
            if (p.s == p.cols)
                dpp_slide(&p);
            p.taken[j] = true;
            dpp_add(&p, j, sims);
        }
        p.taken[j] = true; /* degenerate picks stay out of the window */
    }
    return 0;
}
