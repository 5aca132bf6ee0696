/* Recall@K, hit@K and NDCG@K with binary relevance, and their per-source
 * accumulator (sums, list lengths, time, the best rank of every item for
 * catalogue coverage). Formulas are in eval_metrics.h and docs/eval.md. */
#include "eval_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

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
