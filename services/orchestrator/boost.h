/* New-item boosting with an impression target (docs/orchestrator.md,
 * "Impression target"): each new item is owed `target` served impressions
 * within `window_s` of its creation, on the straight schedule
 * target·age/window. Its exploration weight is
 *   w = 0                                          when impressions >= target
 *                                                  or age >= window (boost over)
 *   w = 1 + max(0, target·age/window − impressions) otherwise,
 * so an item on schedule keeps weight 1 (it may still be picked), one behind
 * schedule gains one unit per impression it is short, and an item at target
 * is never boosted again. Impressions are the live served counts
 * ({ns}:ictr:{id} `impression`, the consumer's, docs/closed-loop.md). The
 * pick stays per user: among a user's qualifying exploration items (the
 * ranker's choice, explore.h), the order is by w / (1 + rank position).
 * The weight and order functions are pure and thread-safe; the reader
 * borrows one Redis connection. */
#ifndef CASCADE_ORCH_BOOST_H
#define CASCADE_ORCH_BOOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/common.pb-c.h"
#include "redis.h"

struct cascade_boost_params {
    uint32_t target;  /* impressions owed; 0 = no target (weight 1 for every item) */
    int64_t window_s; /* the time they are owed within, > 0 */
};

/* Impressions the item is short of its schedule: max(0, target·min(age,
 * window)/window − impressions), age = now − created (0 when created is in
 * the future or unknown). */
double cascade_boost_deficit(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                             double impressions);

/* The weight above (1 for every item when target is 0). */
double cascade_boost_weight(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                            double impressions);

/* True when the item is still within its window and at least one impression
 * behind schedule (what the behind-target gauge counts). */
bool cascade_boost_behind(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                          double impressions);

/* Reorder picks[0..n) (the ranker's order, pos[k] its rank position) by
 * descending w[k] / (1 + pos[k]), ties keeping the ranker's order; pos and w
 * move with their picks. n is small (the exploration pool). */
void cascade_boost_order(Cascade__V1__Candidate **picks, uint32_t *pos, double *w, size_t n);

/* The target's guarantee (orchestrator.exploration.guarantee_deficit): the
 * ranker's bar (exploration.max_rank_share) may keep an item from every
 * user, and then no weight gets it served. Among the pool items (pool,
 * their weights w, n_pool) not in picks[0..n_picks) (the ranker's choice)
 * whose weight is at least 1 + min_deficit (that many impressions behind
 * schedule), the one with the largest w / (1 + its position in this user's
 * ranked[0..n_ranked), n_ranked when the ranker did not return it): the
 * pick stays per user. Returns its pool index and its position in *pos
 * (may be NULL), or -1 when there is none or min_deficit <= 0 (off). Pure. */
long cascade_boost_guarantee(Cascade__V1__Candidate *const *pool, const double *w, size_t n_pool,
                             Cascade__V1__Candidate *const *picks, size_t n_picks,
                             Cascade__V1__Candidate *const *ranked, size_t n_ranked,
                             double min_deficit, uint32_t *pos);

/* Add the guaranteed item c (rank position c_pos, weight c_w) to the
 * ordered picks[0..n) (room for n + 1 in each array): first when it is
 * further behind than the best pick (c_w > w[0]) or there is none, else
 * last. Returns n + 1. */
size_t cascade_boost_insert(Cascade__V1__Candidate **picks, uint32_t *pos, double *w, size_t n,
                            Cascade__V1__Candidate *c, uint32_t c_pos, double c_w);

/* The created_at (item record; 0 when none) and served impressions
 * ({ns}:ictr:{id} impression; 0 when none) of ids[0..n): one MGET and one
 * pipeline of HGETs. Returns 0 or a negative code with the message in
 * cascade_redis_error(r). */
int cascade_boost_read(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                       int64_t *created_s, double *impressions);

/* Items of the current new list ({ns}:new@{gen}, at most max of the newest)
 * within their window and behind schedule, into *behind, and those that met
 * the target within it into *met. Returns 0 or a negative code with the
 * message in cascade_redis_error(r). */
int cascade_boost_census(cascade_redis *r, const char *ns, const struct cascade_boost_params *p,
                         int64_t now_s, size_t max, size_t *behind, size_t *met);

#endif
