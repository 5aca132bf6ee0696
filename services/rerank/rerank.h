/* Re-rank stage (重排): picks the final list from ranked candidates by MMR,
 * trading relevance against diversity:
 *   next = argmax_{i∉S} λ·rel(i) − (1−λ)·max_{j∈S} sim(i,j)
 * rel = rank_score min-max normalised to [0,1] over the candidates;
 * sim(i,j) = w_cat·[same category] + w_author·[same author]
 *            + w_emb·cosine(emb_i, emb_j) when both carry embeddings.
 * The handler wraps cascade_rerank_run; cascade_rerank_mmr works on plain arrays. */
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
 * with a message in err on an invalid value. Thread-safe once created. */
cascade_rerank *cascade_rerank_create(const cascade_config *cfg, char *err, size_t errlen);

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

#endif
