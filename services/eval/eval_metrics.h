/* Ranking metrics of the offline recall evaluation, binary relevance: for one
 * user, a ranked candidate list and the set of held-out (relevant) items,
 * recall@K, hit@K and NDCG@K; and an accumulator that averages them over
 * users and tracks catalogue coverage. Items are dataset item indices. Pure
 * functions; an accumulator is not thread-safe. */
#ifndef CASCADE_EVAL_METRICS_H
#define CASCADE_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define CASCADE_EVAL_MAX_KS 8

/* Number of the first k entries of ranked[0..n) found in rel[0..n_rel)
 * (sorted ascending, distinct). ranked is assumed to hold distinct items. */
size_t cascade_eval_hits(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                         size_t n_rel);

/* recall@k = hits / n_rel (0 when n_rel is 0). */
double cascade_eval_recall(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                           size_t n_rel);

/* hit@k = 1 when any of the first k is relevant, else 0. */
double cascade_eval_hit(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                        size_t n_rel);

/* NDCG@k with binary relevance: DCG = Σ_{relevant at rank r ≤ k} 1/log2(r+1)
 * (r from 1), divided by the ideal DCG Σ_{r=1}^{min(n_rel,k)} 1/log2(r+1).
 * 0 when n_rel is 0. */
double cascade_eval_ndcg(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                         size_t n_rel);

/* Sums over users of one ranked source (a channel or the merge). */
struct cascade_eval_acc {
    size_t n_ks;
    size_t ks[CASCADE_EVAL_MAX_KS]; /* ascending */
    double recall[CASCADE_EVAL_MAX_KS], hit[CASCADE_EVAL_MAX_KS], ndcg[CASCADE_EVAL_MAX_KS];
    size_t users;      /* users added */
    size_t candidates; /* Σ list lengths (after filtering, at most the largest k) */
    size_t empty;      /* users for whom the list was empty */
    int64_t time_us;   /* Σ time spent producing the lists */
    size_t n_items;
    uint32_t *best_rank; /* per item: best 0-based rank it was recommended at (UINT32_MAX: never) */
};

/* Set up for ks[0..n_ks) (1..CASCADE_EVAL_MAX_KS values, ascending, > 0) over
 * a catalogue of n_items. Returns 0, CASCADE_EINVAL or CASCADE_ENOMEM. Free
 * with cascade_eval_acc_free. */
int cascade_eval_acc_init(struct cascade_eval_acc *a, const size_t *ks, size_t n_ks,
                          size_t n_items);
void cascade_eval_acc_free(struct cascade_eval_acc *a);

/* Add one user's list ranked[0..n) (distinct item indices < n_items, best
 * first) against rel[0..n_rel) (sorted), produced in time_us. */
void cascade_eval_acc_add(struct cascade_eval_acc *a, const uint32_t *ranked, size_t n,
                          const uint32_t *rel, size_t n_rel, int64_t time_us);

/* Share of the catalogue recommended to at least one user within the top k. */
double cascade_eval_acc_coverage(const struct cascade_eval_acc *a, size_t k);

#endif
