/* Re-rank stage (重排): picks the final list from ranked candidates by MMR
 * or DPP, trading relevance against diversity, then applies scatter rules.
 * MMR:
 *   next = argmax_{i∉S} λ·rel(i) − (1−λ)·max_{j∈S} sim(i,j)
 * rel = rank_score min-max normalised to [0,1] over the candidates;
 * sim(i,j) = w_cat·[same category] + w_author·[same author]
 *            + w_emb·cosine(emb_i, emb_j) when both carry embeddings.
 * DPP (cascade_rerank_dpp): fast greedy MAP of L = diag(q)·S·diag(q) with a
 * sliding window; scatter rules (cascade_rerank_scatter) reorder the result.
 * Embeddings come with the candidates or from the published two-tower item
 * vectors (item_vectors.h). The handler wraps cascade_rerank_run; the
 * selection functions work on plain arrays. */
#ifndef CASCADE_RERANK_H
#define CASCADE_RERANK_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/rerank.pb-c.h"
#include "config.h"
#include "rpc.h"

typedef struct cascade_rerank cascade_rerank;

/* One candidate as MMR sees it. */
struct cascade_mmr_item {
    float relevance;        /* raw relevance (rank_score); normalised by cascade_rerank_mmr */
    uint32_t category;      /* 0 = unknown: never matches */
    uint64_t author_id;     /* 0 = unknown: never matches */
    const float *embedding; /* borrowed; NULL or dim == 0 = none */
    size_t dim;
};

struct cascade_mmr_opts {
    double lambda;        /* [0,1]: 1 = pure relevance, 0 = pure diversity */
    double sim_category;  /* weight of a category match (config rerank.sim.category) */
    double sim_author;    /* weight of an author match (config rerank.sim.author) */
    double sim_embedding; /* weight of the embedding cosine (config rerank.sim.embedding) */
};

/* Create the stage from the "rerank" config section (cfg may be NULL). NULL
 * with a message in err on an invalid value. Thread-safe once created. No
 * item vectors are loaded (cascade_rerank_create_dir does). */
cascade_rerank *cascade_rerank_create(const cascade_config *cfg, char *err, size_t errlen);

/* As cascade_rerank_create, and serve the two-tower item vectors published
 * in model_dir (config rerank.item_vectors.model_dir overrides it; NULL or ""
 * and no config key = none) to the similarity terms, reloaded when
 * two-tower.latest changes. A missing or unreadable index is not an error:
 * the stage logs it and runs without vectors until one loads. */
cascade_rerank *cascade_rerank_create_dir(const cascade_config *cfg, const char *model_dir,
                                          char *err, size_t errlen);

/* NULL is a no-op. */
void cascade_rerank_destroy(cascade_rerank *r);

/* Select req->count candidates (fewer if fewer came in) in display order;
 * λ is config rerank.lambda unless experiment param "rerank.lambda" sets it.
 * The request's Candidate objects are reused with rerank_score set to the
 * MMR value at selection. Returns 0 or EINVAL / ETOOBIG / ETIMEDOUT / ENOMEM. */
int cascade_rerank_run(cascade_rerank *r, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__ReRankRequest *req, Cascade__V1__ReRankResponse **out,
                       char *err, size_t errlen);

/* RPC handler for /cascade.v1.ReRank/ReRank (service = cascade_rerank *). */
int cascade_rerank_handle(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response);

/* The method table for cascade_service_run; *n is set to its length. Static. */
const struct cascade_rpc_method *cascade_rerank_methods(size_t *n);

/* sim(a, b) as defined above. */
double cascade_rerank_similarity(const struct cascade_mmr_opts *o, const struct cascade_mmr_item *a,
                                 const struct cascade_mmr_item *b);

/* MMR over items[0..n): writes min(count, n) picks to order[] (indexes into
 * items) and their MMR values to values[]; *n_out is the number picked. Ties
 * go to the smaller index (the ranked order). Scratch memory comes from
 * arena. deadline_ms (INT64_MAX = none) is checked every few picks. Returns 0,
 * CASCADE_ENOMEM or CASCADE_ETIMEDOUT. */
int cascade_rerank_mmr(const struct cascade_mmr_item *items, size_t n, size_t count,
                       const struct cascade_mmr_opts *opts, cascade_arena *arena,
                       int64_t deadline_ms, size_t *order, float *values, size_t *n_out);

/* ------------------------------------------------------------------ DPP */

/* Parameters of the DPP selection. The similarity S (unit diagonal, PSD):
 *   S_ij = (w_cat·[same category] + w_author·[same author]
 *           + w_emb·cos(emb_i, emb_j)) / (w_cat + w_author + w_emb),  i ≠ j
 * (S = I when the weights sum to 0), and quality q_i = exp(θ·rel_i / (2(1−θ)))
 * with rel as in MMR, so that log det L_Y = Σ 2·log q_i + log det S_Y and the
 * greedy maximises θ·Σ_{i∈Y} rel_i + (1−θ)·log det S_Y (Chen, Zhang & Zhou,
 * NeurIPS 2018, §5). */
struct cascade_dpp_opts {
    double theta;        /* [0,1]: 1 = relevance order, 0 = diversity only */
    size_t window;       /* only the last `window` picks condition the next; 0 = all */
    double sim_category; /* the MMR similarity weights (config rerank.sim.*) */
    double sim_author;
    double sim_embedding;
};

/* Greedy MAP inference of the DPP above by incremental Cholesky updates
 * (O(n·count·window) plus one sgemv per pick for the embedding cosines):
 * writes min(count, n) picks to order[] and to values[] each pick's gain
 * θ·rel_j + (1−θ)·log d_j², d_j² the conditional variance of j in S given
 * the window (the increment of the objective; rel_j when θ = 1). When every
 * remaining item has d² ≤ 1e-9 (it adds no volume), the rest follow in
 * relevance order with d² taken as 1e-9, and stay out of the window. Ties
 * go to the smaller index. Embeddings: every item whose dim equals the
 * first embedded item's; others count as having none. Scratch from arena;
 * deadline_ms checked every few picks. Returns 0, CASCADE_ENOMEM or
 * CASCADE_ETIMEDOUT (order holds the picks made). */
int cascade_rerank_dpp(const struct cascade_mmr_item *items, size_t n, size_t count,
                       const struct cascade_dpp_opts *opts, cascade_arena *arena,
                       int64_t deadline_ms, size_t *order, float *values, size_t *n_out);

/* ------------------------------------------------------------------ scatter */

/* Scatter rules (打散). A rule with a 0 limit is off. Category and author 0
 * (unknown) are never limited. */
struct cascade_scatter_rules {
    size_t window;              /* w: the caps hold in any w consecutive positions */
    size_t max_per_category;    /* at most this many of one category per window */
    size_t max_per_author;      /* at most this many of one author per window */
    size_t author_min_distance; /* positions of two items by one author differ by ≥ this */
    size_t max_steps;           /* search budget (candidate checks); 0 = 1,000,000 */
};

/* True when at least one rule is on. */
int cascade_scatter_active(const struct cascade_scatter_rules *r);

/* Fill out[0..count) with distinct indexes into items[0..n), in display
 * order, satisfying the rules: the valid order that is first in the
 * lexicographic order of preference ranks (pref[0..n_pref) lists item
 * indexes best first; items missing from it are never used), found by a
 * depth-first search that tries at each position the preferred items in
 * order, one per (category, author) class, and backtracks. When no valid
 * order exists or the budget runs out, the closest: position by position the
 * preferred item with the fewest rule violations (*satisfied = 0 then).
 * count is capped at n_pref; *n_out is the length written. Scratch from
 * arena. Returns 0, CASCADE_ENOMEM or CASCADE_ETIMEDOUT (deadline_ms passed,
 * INT64_MAX = none; nothing valid in out then). */
int cascade_rerank_scatter(const struct cascade_mmr_item *items, size_t n, const size_t *pref,
                           size_t n_pref, size_t count, const struct cascade_scatter_rules *rules,
                           cascade_arena *arena, int64_t deadline_ms, size_t *out, size_t *n_out,
                           int *satisfied);

#endif
