/* EASE (ease.h): the covered items by popularity, the Gram matrix accumulated
 * sparsely user by user into one dense float matrix, its Cholesky factor and
 * inverse through OpenBLAS's LAPACK, and the weights B written over the
 * inverse, so the model costs 4n² bytes at its peak and afterwards. */
#include "ease.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "vindex_internal.h"

/* LAPACK (Fortran) as Debian's libopenblas exports it: 32-bit integers
 * (openblas_config.h has no OPENBLAS_USE64BITINT), column-major, and a hidden
 * trailing length for each CHARACTER argument. */
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info,
                    size_t uplo_len);
extern void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info,
                    size_t uplo_len);

#define NOT_COVERED UINT32_MAX
#define MIRROR_BLOCK 64

struct cascade_ease {
    size_t n_items; /* items of the input */
    size_t n;       /* covered items */
    uint32_t *cov;  /* covered index -> input item, most popular first */
    uint32_t *pos;  /* input item -> covered index, or NOT_COVERED */
    float *b;       /* n × n row-major: b[j*n + i] = B[j][i] */
};

void cascade_ease_opts_default(struct cascade_ease_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->lambda = 250.0;
    o->max_items = 12000;
}

void cascade_ease_destroy(cascade_ease *m)
{
    if (!m)
        return;
    free(m->cov);
    free(m->pos);
    free(m->b);
    free(m);
}

static void phase(const struct cascade_ease_opts *o, const char *name)
{
    if (o->on_phase)
        o->on_phase(o->ud, name);
}

/* Item index with its count of distinct users, for choosing the covered set. */
struct item_pop {
    size_t users;
    uint32_t item;
};

static int cmp_pop(const void *a, const void *b)
{
    const struct item_pop *x = a, *y = b;
    if (x->users != y->users)
        return x->users > y->users ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Distinct users per input item (stamp[] is n_items of scratch), then the
 * max_items most popular items with at least one user into m->cov / m->pos. */
static int choose_covered(cascade_ease *m, const struct cascade_ease_input *in, size_t max_items,
                          size_t *stamp)
{
    struct item_pop *pop = calloc(in->n_items + 1, sizeof(*pop));
    size_t n = 0;
    if (!pop)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < in->n_items; i++)
        pop[i].item = (uint32_t)i;
    for (size_t u = 0; u < in->n_users; u++)
        for (size_t a = in->off[u]; a < in->off[u + 1]; a++) {
            uint32_t i = in->item[a];
            if (i < in->n_items && stamp[i] != u + 1) {
                stamp[i] = u + 1;
                pop[i].users++;
            }
        }
    qsort(pop, in->n_items, sizeof(*pop), cmp_pop);
    while (n < in->n_items && n < max_items && pop[n].users > 0)
        n++;
    m->n = n;
    m->cov = malloc((n + 1) * sizeof(*m->cov));
    m->pos = malloc((in->n_items + 1) * sizeof(*m->pos));
    if (m->cov && m->pos) {
        for (size_t i = 0; i < in->n_items; i++)
            m->pos[i] = NOT_COVERED;
        for (size_t c = 0; c < n; c++) {
            m->cov[c] = pop[c].item;
            m->pos[pop[c].item] = (uint32_t)c;
        }
    }
    free(pop);
    return m->cov && m->pos ? 0 : CASCADE_ENOMEM;
}

/* G = XᵀX over the covered items, lower triangle (row-major, j <= i) only:
 * each user's distinct covered items, sorted, add 1 to every pair. stamp[]
 * must be zero on entry. */
static int accumulate_gram(cascade_ease *m, const struct cascade_ease_input *in, size_t *stamp)
{
    size_t longest = 0, n = m->n;
    for (size_t u = 0; u < in->n_users; u++)
        if (in->off[u + 1] - in->off[u] > longest)
            longest = in->off[u + 1] - in->off[u];
    uint32_t *row = malloc((longest + 1) * sizeof(*row));
    if (!row)
        return CASCADE_ENOMEM;
    for (size_t u = 0; u < in->n_users; u++) {
        size_t len = 0;
        for (size_t a = in->off[u]; a < in->off[u + 1]; a++) {
            uint32_t i = in->item[a];
            if (i >= in->n_items || m->pos[i] == NOT_COVERED || stamp[i] == u + 1)
                continue;
            stamp[i] = u + 1;
            row[len++] = m->pos[i];
        }
        qsort(row, len, sizeof(*row), cmp_u32);
        for (size_t a = 0; a < len; a++) {
            float *g = m->b + (size_t)row[a] * n;
            for (size_t c = 0; c <= a; c++)
                g[row[c]] += 1.0f;
        }
    }
    free(row);
    return 0;
}

/* Copy the lower triangle (row-major) over the upper one, block by block so
 * both sides are read and written a cache line at a time. */
static void mirror_lower(float *a, size_t n)
{
    for (size_t ib = 0; ib < n; ib += MIRROR_BLOCK)
        for (size_t jb = 0; jb <= ib; jb += MIRROR_BLOCK)
            for (size_t i = ib; i < ib + MIRROR_BLOCK && i < n; i++)
                for (size_t j = jb; j < jb + MIRROR_BLOCK && j < i; j++)
                    a[j * n + i] = a[i * n + j];
}

/* P = (G + λI)⁻¹ in place. The row-major lower triangle is LAPACK's
 * column-major upper one, hence "U". */
static int invert(cascade_ease *m, const struct cascade_ease_opts *o, char *err, size_t errlen)
{
    int n = (int)m->n, info = 0;
    for (size_t i = 0; i < m->n; i++)
        m->b[i * m->n + i] += (float)o->lambda;
    phase(o, "cholesky");
    spotrf_("U", &n, m->b, &n, &info, 1);
    if (info != 0) {
        snprintf(err, errlen,
                 "ease: XᵀX + λI is not positive definite (Cholesky failed at column %d of %d); "
                 "raise lambda",
                 info, n);
        return CASCADE_EINVAL;
    }
    phase(o, "inverse");
    spotri_("U", &n, m->b, &n, &info, 1);
    if (info != 0) {
        snprintf(err, errlen, "ease: inverting the Cholesky factor failed (LAPACK info %d)", info);
        return CASCADE_EINVAL;
    }
    mirror_lower(m->b, m->n);
    return 0;
}

/* B[j][i] = −P[j][i] / P[i][i] off the diagonal, 0 on it. */
static int compute_weights(cascade_ease *m)
{
    size_t n = m->n;
    float *inv_diag = malloc((n + 1) * sizeof(*inv_diag));
    if (!inv_diag)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        inv_diag[i] = -1.0f / m->b[i * n + i];
    for (size_t j = 0; j < n; j++) {
        float *row = m->b + j * n;
        for (size_t i = 0; i < n; i++)
            row[i] *= inv_diag[i];
        row[j] = 0.0f;
    }
    free(inv_diag);
    return 0;
}

static int check_opts(const struct cascade_ease_input *in, const struct cascade_ease_opts *o,
                      char *err, size_t errlen)
{
    if (!in || !o || (in->n_users > 0 && (!in->off || !in->item))) {
        snprintf(err, errlen, "ease: missing input or options");
        return CASCADE_EINVAL;
    }
    if (!(o->lambda > 0) || !isfinite(o->lambda)) {
        snprintf(err, errlen, "ease: lambda must be a positive number, got %g", o->lambda);
        return CASCADE_EINVAL;
    }
    if (o->max_items == 0 || o->max_items > CASCADE_EASE_MAX_ITEMS) {
        snprintf(err, errlen, "ease: max_items must be in [1, %d], got %zu", CASCADE_EASE_MAX_ITEMS,
                 o->max_items);
        return CASCADE_EINVAL;
    }
    if (in->n_items >= NOT_COVERED) {
        snprintf(err, errlen, "ease: %zu items do not fit 32-bit indices", in->n_items);
        return CASCADE_EINVAL;
    }
    return 0;
}

cascade_ease *cascade_ease_build(const struct cascade_ease_input *in,
                                 const struct cascade_ease_opts *opts, char *err, size_t errlen)
{
    cascade_ease *m = NULL;
    size_t *stamp = NULL;
    int rc = check_opts(in, opts, err, errlen);
    if (rc != 0)
        goto out;
    rc = CASCADE_ENOMEM;
    if (!(m = calloc(1, sizeof(*m))) || !(stamp = calloc(in->n_items + 1, sizeof(*stamp))))
        goto nomem;
    m->n_items = in->n_items;
    if ((rc = choose_covered(m, in, opts->max_items, stamp)) != 0)
        goto nomem;
    if (m->n == 0) {
        snprintf(err, errlen, "ease: no interactions (%zu users, %zu items, every history empty)",
                 in->n_users, in->n_items);
        rc = CASCADE_EINVAL;
        goto out;
    }
    phase(opts, "gram");
    if (!(m->b = calloc(m->n * m->n, sizeof(float))))
        goto nomem;
    memset(stamp, 0, (in->n_items + 1) * sizeof(*stamp));
    if ((rc = accumulate_gram(m, in, stamp)) != 0)
        goto nomem;
    if ((rc = invert(m, opts, err, errlen)) != 0)
        goto out;
    phase(opts, "weights");
    if ((rc = compute_weights(m)) != 0)
        goto nomem;
    goto out;
nomem:
    snprintf(err, errlen, "ease: out of memory for %zu covered items (%.0f MB matrix)",
             m ? m->n : 0, m ? (double)m->n * (double)m->n * 4.0 / 1e6 : 0.0);
    rc = CASCADE_ENOMEM;
out:
    free(stamp);
    if (rc != 0) {
        cascade_ease_destroy(m);
        m = NULL;
    }
    return m;
}

size_t cascade_ease_n_covered(const cascade_ease *m)
{
    return m ? m->n : 0;
}

int cascade_ease_covers(const cascade_ease *m, uint32_t item)
{
    return m && item < m->n_items && m->pos[item] != NOT_COVERED;
}

int cascade_ease_score(const cascade_ease *m, const uint32_t *history, size_t n, float *out)
{
    uint32_t *rows = malloc((n + 1) * sizeof(*rows));
    float *acc = calloc(m->n + 1, sizeof(*acc));
    size_t len = 0;
    int rc = CASCADE_ENOMEM;
    if (!rows || !acc)
        goto out;
    for (size_t t = 0; t < n; t++)
        if (cascade_ease_covers(m, history[t]))
            rows[len++] = m->pos[history[t]];
    qsort(rows, len, sizeof(*rows), cmp_u32);
    for (size_t t = 0; t < len; t++)
        if (t == 0 || rows[t] != rows[t - 1])
            cblas_saxpy((int)m->n, 1.0f, m->b + (size_t)rows[t] * m->n, 1, acc, 1);
    memset(out, 0, m->n_items * sizeof(*out));
    for (size_t c = 0; c < m->n; c++)
        out[m->cov[c]] = acc[c];
    rc = 0;
out:
    free(rows);
    free(acc);
    return rc;
}

long cascade_ease_neighbours(const cascade_ease *m, uint32_t j, size_t k, uint32_t *items,
                             float *weights)
{
    if (!cascade_ease_covers(m, j) || k == 0)
        return 0;
    uint64_t *cols = malloc(k * sizeof(*cols));
    if (!cols)
        return CASCADE_ENOMEM;
    /* The vector index's bounded heap over |B|: the weights that move a
     * score most, whichever their sign (dropping the negative ones costs
     * EASE 0.015 nDCG@10 on ml-latest-small); ties to the lower index. */
    struct cascade_vindex__topk h;
    const float *row = m->b + (size_t)m->pos[j] * m->n;
    cascade_vindex__topk_init(&h, weights, cols, k);
    for (size_t c = 0; c < m->n; c++) {
        float mag = fabsf(row[c]);
        if (c == m->pos[j] || !(mag > 0))
            continue;
        uint64_t col = c;
        cascade_vindex__topk_push(&h, &mag, &col, 1);
    }
    size_t count = h.len;
    cascade_vindex__topk_finish(&h);
    for (size_t t = 0; t < count; t++) {
        items[t] = (uint32_t)m->cov[cols[t]];
        weights[t] = row[cols[t]];
    }
    free(cols);
    return (long)count;
}
