/* State of one Recommend call, shared by the files of the pipeline:
 * recommend.c (entry, stages, response), recommend_recall.c (channel mix,
 * fan-out, merge, hot-list fallback) and recommend_final.c (new-item
 * exploration, recall cache and hard-negative writes, per-channel
 * contribution trace). Not part of the library's API; one per request, never
 * shared between threads. */
#ifndef CASCADE_ORCH_RECOMMEND_INTERNAL_H
#define CASCADE_ORCH_RECOMMEND_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "explore.h"
#include "orch_internal.h"
#include "report.h"
#include "slots.h"
#include "request.h"

/* One recall channel called for this request. */
struct cascade_orch_channel_run {
    const char *name;         /* borrowed from the config */
    cascade_rpc_channel *rpc; /* where its Recall call goes */
    int timeout_ms;
    double weight;   /* after experiment overrides */
    uint32_t quota;  /* after experiment overrides */
    size_t call;     /* index of the Recall call that carries it */
    bool ok;         /* the call succeeded */
    size_t returned; /* candidates Recall returned */
    size_t kept;     /* merged candidates carrying it (after quota, dedupe, merge_max) */
};

struct cascade_orch_rq {
    cascade_orch *o;
    const struct cascade_orch_call *call;
    cascade_arena *arena;
    int64_t start_us;
    int64_t deadline_ms;
    uint32_t count;
    Cascade__V1__UserContext *user; /* the caller's context with request_id filled */
    Cascade__V1__ExperimentContext *exp;
    /* Where this user's stage calls go (a track's channel for a stage with
     * an endpoint group), and the tracks as "stage=track;..." in stage
     * order ("" when no stage has a group): the serve record's track field. */
    cascade_rpc_channel *stage_rpc[CASCADE_ORCH_N_STAGES];
    const char *track;
    struct cascade_orch_report report;
    Cascade__V1__Candidate **cands; /* the current list */
    size_t n;
    enum cascade_score_kind source;    /* the stage that produced the current order */
    enum cascade_score_kind relevance; /* the last stage before re-rank that scored */
    bool used_fallback;
    bool cold_start; /* the cold-start channel mix was used */
    struct cascade_orch_channel_run *runs;
    size_t n_runs;
    struct cascade_explore_params explore; /* this request's (config + experiment) */
    Cascade__V1__Candidate **explore_pool; /* filtered exploration-channel items, best first */
    size_t n_explore_pool;
    size_t n_explore_scored;     /* pool items the ranker scored (0: the channel's order is kept) */
    uint32_t *explore_rank_pos;  /* rank position of each pool item once the ranker chose */
    double *explore_weight;      /* boost weight of each pool item (boost.h); NULL = no target */
    uint64_t explore_guaranteed; /* the item the target's guarantee added to the picks; 0 none */
    Cascade__V1__Candidate **ranked; /* what the rank stage kept (NULL when it did not run) */
    size_t n_ranked;
    size_t n_rank_returned;               /* ranked[0..n_rank_returned): its whole response */
    Cascade__V1__Candidate **rank_scored; /* what was sent to it (NULL when it did not run) */
    size_t n_rank_scored;
    /* Item slots (the request's, then orchestrator.slots' items that fit the
     * list), in that order of priority; a slot whose item the filter dropped
     * has cand NULL. n_fixed_asked counts the request's. */
    struct cascade_slot *fixed;
    size_t n_fixed, n_fixed_asked;
    Cascade__V1__Candidate **filter_extra; /* slot items the filter was sent besides rq->cands */
    size_t n_filter_extra;
    size_t n_fixed_dropped; /* slot items the filter dropped */
    /* The final list before the exposure reservation and where each entry
     * came from (NULL: ranked), for each answer item's reason and source. */
    Cascade__V1__Candidate **placed;
    const struct cascade_slot **placed_from;
    size_t n_placed;
};

/* Record an outcome in the request's report (logs when out of memory). */
void cascade_orch__report(struct cascade_orch_rq *rq, const struct cascade_orch_outcome *o);

/* Absolute deadline of a call with its own budget inside the request's,
 * keeping reserve_ms for the later stages (cascade_orch_stage_deadline). */
int64_t cascade_orch__budget_deadline(const struct cascade_orch_rq *rq, int timeout_ms, int min_ms,
                                      int reserve_ms);

/* Choose the channel mix (cold start or normal, from the user record), call
 * Recall once per channel in parallel and merge into rq->cands. Returns 0 or
 * a failure code (message in rq->call->err). */
int cascade_orch__run_recall(struct cascade_orch_rq *rq);

/* No candidates from any channel: serve the current hot list from Redis. */
int cascade_orch__run_fallback(struct cascade_orch_rq *rq);

/* Resolve this request's exploration parameters (config defaults, experiment
 * overrides) and keep the first exploration.candidates filtered candidates
 * of the exploration channel (rq->cands right after the filter), in the
 * channel's order, for the ranker to choose from. */
void cascade_orch__keep_explore_pool(struct cascade_orch_rq *rq);

/* Before the rank stage: make sure every kept exploration candidate is among
 * rq->cands so the ranker scores it for this user. Returns true when
 * exploration is active for this request (the rank stage must then return
 * every candidate: keep = 0). */
bool cascade_orch__reserve_explore(struct cascade_orch_rq *rq);

/* After the rank stage: ranked[0..n) is its whole answer, best first. The
 * pool becomes the ranked copies (predictions, attributes) of the
 * exploration candidates the ranker placed within the best max_rank_share of
 * it, in its order; none when no new item ranks that well. */
void cascade_orch__rank_explore_pool(struct cascade_orch_rq *rq,
                                     Cascade__V1__Candidate *const *ranked, size_t n);

/* The slots of this request: req->slots (checked by validate) then the
 * pinned items of orchestrator.slots whose position fits rq->count, each as
 * a bare candidate (item id only) into rq->fixed. Returns 0 or a failure
 * code. */
int cascade_orch__slots_setup(struct cascade_orch_rq *rq, const Cascade__V1__RecommendRequest *req);

/* Before the Filter call: append the slot items that are not candidates to
 * rq->cands so the filter judges them with the rest (exposure, consumed,
 * blocked items and authors). */
void cascade_orch__slots_to_filter(struct cascade_orch_rq *rq);

/* After the Filter call: kept[0..n_kept) is what it returned (compacted in
 * place; the new length is returned), or NULL when its answer is not used
 * (rq->cands is compacted instead). The appended slot items leave the list
 * again, and a slot whose item is not in kept loses its item (cand NULL). */
size_t cascade_orch__slots_after_filter(struct cascade_orch_rq *rq, Cascade__V1__Candidate **kept,
                                        size_t n_kept);

/* The reason and source of an answer item (from rq->placed_from). */
Cascade__V1__ItemReason cascade_orch__item_reason(const struct cascade_orch_rq *rq,
                                                  const Cascade__V1__Candidate *c,
                                                  const char **source);

/* Make rq->cands[0..n) the final list of at most rq->count items: the item
 * slots and the exploration slots (explore.h) placed among the ranked items
 * (slots.h). Returns 0 or a failure code. */
int cascade_orch__finalize(struct cascade_orch_rq *rq);

/* After the response's items are chosen: shown items leave the user's
 * recall cache and ranked-but-unshown ones enter it, the items the ranker
 * cut go to the hard-negative log, and the serve record goes to
 * {ns}:serves (serve_log.h; when the serve log is on and the answer has
 * items) — one pipeline, one round trip. The serve record's degraded flag
 * is the answer's before this write (a failed cache update, which changes
 * later answers, is not in it). A failed hard-negative or serve record is
 * counted and logged, and never fails the call. Then the per-channel
 * contribution goes to the debug trace. */
void cascade_orch__after_response(struct cascade_orch_rq *rq,
                                  const Cascade__V1__RecommendResponse *resp);

#endif
