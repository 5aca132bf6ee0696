/* Recall@K, hit@K, NDCG@K, precision@K and AP@K with binary relevance, the
 * per-source accumulator of the recall report (sums, list lengths, time, the
 * best rank of every item for catalogue coverage) and the single-K list
 * accumulator of the served report (with popularity bias). Formulas are in
 * eval_metrics.h and docs/eval.md. */
#include "eval_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static bool is_relevant(uint32_t item, const uint32_t *rel, size_t n_rel)
{
    size_t lo = 0, hi = n_rel;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rel[mid] == item)
            return true;
        if (rel[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

size_t cascade_eval_hits(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                         size_t n_rel)
{
    size_t hits = 0, top = n < k ? n : k;
    for (size_t i = 0; i < top; i++)
        hits += is_relevant(ranked[i], rel, n_rel);
    return hits;
}

double cascade_eval_recall(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                           size_t n_rel)
{
    if (n_rel == 0)
        return 0.0;
    return (double)cascade_eval_hits(ranked, n, k, rel, n_rel) / (double)n_rel;
}

double cascade_eval_hit(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                        size_t n_rel)
{
    return cascade_eval_hits(ranked, n, k, rel, n_rel) > 0 ? 1.0 : 0.0;
}

double cascade_eval_ndcg(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                         size_t n_rel)
{
    if (n_rel == 0)
        return 0.0;
    double dcg = 0.0, ideal = 0.0;
    size_t top = n < k ? n : k, ideal_n = n_rel < k ? n_rel : k;
    for (size_t i = 0; i < top; i++)
        if (is_relevant(ranked[i], rel, n_rel))
            dcg += 1.0 / log2((double)i + 2.0);
    for (size_t i = 0; i < ideal_n; i++)
        ideal += 1.0 / log2((double)i + 2.0);
    return dcg / ideal;
}

int cascade_eval_acc_init(struct cascade_eval_acc *a, const size_t *ks, size_t n_ks, size_t n_items)
{
    *a = (struct cascade_eval_acc){0};
    if (n_ks == 0 || n_ks > CASCADE_EVAL_MAX_KS)
        return CASCADE_EINVAL;
    for (size_t i = 0; i < n_ks; i++) {
        if (ks[i] == 0 || (i > 0 && ks[i] <= ks[i - 1]))
            return CASCADE_EINVAL;
        a->ks[i] = ks[i];
    }
    a->n_ks = n_ks;
    a->n_items = n_items;
    a->best_rank = malloc((n_items ? n_items : 1) * sizeof *a->best_rank);
    if (!a->best_rank)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_items; i++)
        a->best_rank[i] = UINT32_MAX;
    return 0;
}

void cascade_eval_acc_free(struct cascade_eval_acc *a)
{
    free(a->best_rank);
    a->best_rank = NULL;
}

void cascade_eval_acc_add(struct cascade_eval_acc *a, const uint32_t *ranked, size_t n,
                          const uint32_t *rel, size_t n_rel, int64_t time_us)
{
    size_t max_k = a->ks[a->n_ks - 1];
    if (n > max_k)
        n = max_k;
    for (size_t i = 0; i < a->n_ks; i++) {
        a->recall[i] += cascade_eval_recall(ranked, n, a->ks[i], rel, n_rel);
        a->hit[i] += cascade_eval_hit(ranked, n, a->ks[i], rel, n_rel);
        a->ndcg[i] += cascade_eval_ndcg(ranked, n, a->ks[i], rel, n_rel);
    }
    for (size_t i = 0; i < n; i++)
        if (ranked[i] < a->n_items && a->best_rank[ranked[i]] > i)
            a->best_rank[ranked[i]] = (uint32_t)i;
    a->users++;
    a->candidates += n;
    a->empty += n == 0;
    a->time_us += time_us;
}

double cascade_eval_acc_coverage(const struct cascade_eval_acc *a, size_t k)
{
    if (a->n_items == 0)
        return 0.0;
    size_t covered = 0;
    for (size_t i = 0; i < a->n_items; i++)
        covered += a->best_rank[i] < k;
    return (double)covered / (double)a->n_items;
}

double cascade_eval_precision(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                              size_t n_rel)
{
    if (k == 0)
        return 0.0;
    return (double)cascade_eval_hits(ranked, n, k, rel, n_rel) / (double)k;
}

double cascade_eval_ap(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                       size_t n_rel)
{
    if (n_rel == 0 || k == 0)
        return 0.0;
    size_t top = n < k ? n : k, hits = 0;
    double sum = 0.0;
    for (size_t i = 0; i < top; i++)
        if (is_relevant(ranked[i], rel, n_rel))
            sum += (double)++hits / (double)(i + 1);
    return sum / (double)(n_rel < k ? n_rel : k);
}

/* An item and its count, sorted by count for the percentiles. */
struct counted {
    uint32_t count, item;
};

static int cmp_counted(const void *pa, const void *pb)
{
    const struct counted *a = pa, *b = pb;
    return (a->count > b->count) - (a->count < b->count);
}

int cascade_eval_popularity_percentiles(const uint32_t *counts, size_t n_items, double *pct)
{
    struct counted *order = malloc((n_items ? n_items : 1) * sizeof *order);
    if (!order)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_items; i++)
        order[i] = (struct counted){counts[i], (uint32_t)i};
    qsort(order, n_items, sizeof *order, cmp_counted);
    size_t below = 0;
    for (size_t i = 0; i < n_items; i++) {
        if (i > 0 && order[i].count != order[i - 1].count)
            below = i;
        pct[order[i].item] = (double)below / (double)n_items;
    }
    free(order);
    return 0;
}

int cascade_eval_list_acc_init(struct cascade_eval_list_acc *a, size_t k, size_t n_items,
                               const double *pct)
{
    memset(a, 0, sizeof *a);
    if (k == 0)
        return CASCADE_EINVAL;
    a->k = k;
    a->n_items = n_items;
    a->pct = pct;
    a->covered = calloc(n_items ? n_items : 1, 1);
    return a->covered ? 0 : CASCADE_ENOMEM;
}

void cascade_eval_list_acc_free(struct cascade_eval_list_acc *a)
{
    free(a->covered);
    a->covered = NULL;
}

void cascade_eval_list_acc_add(struct cascade_eval_list_acc *a, const uint32_t *ranked, size_t n,
                               const uint32_t *rel, size_t n_rel)
{
    size_t top = n < a->k ? n : a->k;
    a->precision += cascade_eval_precision(ranked, n, a->k, rel, n_rel);
    a->recall += cascade_eval_recall(ranked, n, a->k, rel, n_rel);
    a->ndcg += cascade_eval_ndcg(ranked, n, a->k, rel, n_rel);
    a->map += cascade_eval_ap(ranked, n, a->k, rel, n_rel);
    for (size_t i = 0; i < top; i++) {
        if (ranked[i] >= a->n_items)
            continue;
        a->covered[ranked[i]] = 1;
        if (a->pct)
            a->pop_pct += a->pct[ranked[i]];
        a->listed++;
    }
    a->users++;
    a->empty += n == 0;
}

void cascade_eval_list_acc_scores(const struct cascade_eval_list_acc *a,
                                  struct cascade_eval_list_scores *out)
{
    double u = a->users ? (double)a->users : 1.0;
    size_t covered = 0;
    for (size_t i = 0; a->covered && i < a->n_items; i++)
        covered += a->covered[i];
    out->precision = a->precision / u;
    out->recall = a->recall / u;
    out->ndcg = a->ndcg / u;
    out->map = a->map / u;
    out->coverage = a->n_items ? (double)covered / (double)a->n_items : 0.0;
    out->pop_bias = a->listed && a->pct ? a->pop_pct / (double)a->listed : 0.0;
    out->users = a->users;
    out->empty = a->empty;
}
