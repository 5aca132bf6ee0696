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

/* precision@k = hits in the first k / k (k > 0; a list shorter than k counts
 * the missing places as misses). */
double cascade_eval_precision(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                              size_t n_rel);

/* Average precision at k as microsoft/recommenders' map_at_k: the sum over
 * relevant items at rank r <= k (r from 1) of (relevant items among the
 * first r) / r, divided by min(n_rel, k); 0 when n_rel is 0. (Its `map`
 * divides by n_rel instead.) MAP@k is its mean over users. */
double cascade_eval_ap(const uint32_t *ranked, size_t n, size_t k, const uint32_t *rel,
                       size_t n_rel);

/* Popularity percentile of each item from its train interaction count:
 * pct[i] = (items with a count strictly below counts[i]) / n_items, in
 * [0, 1). Returns 0 or CASCADE_ENOMEM. */
int cascade_eval_popularity_percentiles(const uint32_t *counts, size_t n_items, double *pct);

/* Sums over users of one served-list row at a single K (the list report:
 * peers, waterfall stages, served): P, R, nDCG, MAP@K, catalogue coverage
 * and popularity bias (mean popularity percentile of the items in the top
 * K, eval_popularity_percentiles). Not thread-safe. */
struct cascade_eval_list_acc {
    size_t k, n_items;
    double precision, recall, ndcg, map; /* sums over users */
    double pop_pct;                      /* sum over every listed item (top K) */
    size_t listed;                       /* items listed in the top K, all users */
    size_t users, empty;
    unsigned char *covered; /* per item: listed to anyone in the top K */
    const double *pct;      /* borrowed popularity percentiles; NULL = no bias column */
};

/* Set up for k > 0 over n_items; pct (borrowed, may be NULL) must outlive
 * the accumulator. Returns 0, CASCADE_EINVAL or CASCADE_ENOMEM. */
int cascade_eval_list_acc_init(struct cascade_eval_list_acc *a, size_t k, size_t n_items,
                               const double *pct);
void cascade_eval_list_acc_free(struct cascade_eval_list_acc *a); /* zeroed or freed: no-op */

/* Add one user's list ranked[0..n) (distinct item indices, best first,
 * train items already removed) against rel[0..n_rel) (sorted). */
void cascade_eval_list_acc_add(struct cascade_eval_list_acc *a, const uint32_t *ranked, size_t n,
                               const uint32_t *rel, size_t n_rel);

/* Means over the users added (0 when none). */
struct cascade_eval_list_scores {
    double precision, recall, ndcg, map, coverage, pop_bias;
    size_t users, empty;
};
void cascade_eval_list_acc_scores(const struct cascade_eval_list_acc *a,
                                  struct cascade_eval_list_scores *out);

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
