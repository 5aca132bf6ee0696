/* Recommend: validate, assign experiments, recall (recommend_recall.c), then
 * filter → pre-rank → rank → re-rank with a budget per stage, degrading
 * (previous order kept, reason recorded) instead of failing; the final list
 * with its exploration share (recommend_final.c); and reserve its items as
 * exposed (atomically per user, so concurrent answers are disjoint and the
 * next call does not repeat them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cascade/v1/filter.pb-c.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/rank.pb-c.h"
#include "cascade/v1/rerank.pb-c.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "idmap.h"
#include "log.h"
#include "recommend_internal.h"

/* The user context is checked without its request id: a bad one is replaced
 * (request_id below), not refused. */
static int validate(const struct cascade_orch_call *call, const Cascade__V1__RecommendRequest *req)
{
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    if (req->user) {
        user = *req->user;
        user.request_id = NULL;
    }
    int rc = cascade_request_check_user(req->user ? &user : NULL, call->err, call->errlen);
    if (rc)
        return rc;
    if (req->count < 1 || req->count > CASCADE_ORCH_MAX_COUNT)
        return cascade_orch__fail(call, CASCADE_EINVAL, "count must be in 1..%d, got %u",
                                  CASCADE_ORCH_MAX_COUNT, req->count);
    return cascade_slots_check(req->slots, req->n_slots, req->count, call->err, call->errlen);
}

/* The request id: the caller's (message, then metadata) when it is a valid
 * one (cascade_request_id_valid), else a fresh one. An invalid id is dropped
 * unseen: it goes into every stage call's metadata, the response and the
 * logs, so a control character or a 20 KB id would break or flood them. */
static const char *request_id(struct cascade_orch_rq *rq, const Cascade__V1__UserContext *user)
{
    if (cascade_request_id_valid(user->request_id))
        return user->request_id;
    if (cascade_request_id_valid(rq->call->request_id))
        return rq->call->request_id;
    struct {
        int64_t wall_s, now_us;
        uint64_t seq;
        int64_t pid;
    } seed = {cascade_wall_s(), cascade_now_us(), atomic_fetch_add(&rq->o->request_seq, 1),
              (int64_t)getpid()};
    return cascade_arena_printf(rq->arena, "%016llx",
                                (unsigned long long)cascade_hash64(&seed, sizeof seed, 0x5eed));
}

/* Whether this caller may have the debug trace (orchestrator.debug.*); a
 * refusal is logged, not an error: the answer is served without a trace. */
static bool trace_allowed(const struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    if (cascade_orch_report_trace_allowed(cfg->debug_enabled, cfg->debug_loopback, cfg->debug_token,
                                          rq->call->peer, rq->call->debug_token))
        return true;
    CASCADE_DEBUG(rq->user->request_id, "debug trace withheld: %s",
                  cfg->debug_enabled ? "caller is not on loopback and sent no valid x-debug-token"
                                     : "orchestrator.debug.enabled is false");
    return false;
}

/* Route each stage: its one channel, or for an endpoint group the channel
 * of the user's sticky track (hash of user and the stage's track salt). */
static int route_tracks(struct cascade_orch_rq *rq)
{
    cascade_orch *o = rq->o;
    cascade_rpc_channel *plain[CASCADE_ORCH_N_STAGES] = {o->filter, o->prerank, o->rank, o->rerank};
    char *track = cascade_arena_strdup(rq->arena, "");
    for (int s = 0; s < CASCADE_ORCH_N_STAGES && track; s++) {
        const struct cascade_orch_stage_cfg *st = cascade_orch__stage_cfg(o, s);
        rq->stage_rpc[s] = plain[s];
        if (st->n_tracks == 0)
            continue;
        size_t t = cascade_orch_config_track(st, rq->user->user_id);
        rq->stage_rpc[s] = o->track_rpc[s][t];
        cascade_metric_inc(o->track_requests[s][t]);
        track = cascade_arena_printf(rq->arena, "%s%s%s=%s", track, track[0] ? ";" : "",
                                     cascade_orch__stage_names[s], st->tracks[t].name);
    }
    if (!track)
        return CASCADE_ENOMEM;
    rq->track = track;
    if (track[0])
        cascade_orch__report(rq,
                             &(struct cascade_orch_outcome){.stage = "track", .message = track});
    return 0;
}

static int setup(struct cascade_orch_rq *rq, const Cascade__V1__RecommendRequest *req)
{
    const struct cascade_orch_call *call = rq->call;
    rq->user = cascade_arena_alloc(rq->arena, sizeof *rq->user);
    if (rq->user == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    *rq->user = *req->user;
    rq->user->request_id = (char *)request_id(rq, req->user);
    if (rq->user->request_id == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    rq->count = req->count;
    rq->deadline_ms = call->deadline_ms;
    if (rq->deadline_ms == INT64_MAX)
        rq->deadline_ms = cascade_now_ms() + rq->o->cfg.deadline_ms;
    cascade_orch_report_init(&rq->report, rq->arena, req->debug && trace_allowed(rq));
    int rc = cascade_orch__slots_setup(rq, req);
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&rq->o->exp_lock);
    rc = cascade_experiments_assign(rq->o->experiments, rq->user->user_id, rq->arena, &rq->exp);
    const char *config_id = rq->report.want_trace
                                ? cascade_arena_printf(rq->arena, "version %s hash %s",
                                                       rq->o->config_version, rq->o->config_hash)
                                : NULL;
    pthread_rwlock_unlock(&rq->o->exp_lock);
    if (config_id)
        cascade_orch__report(
            rq, &(struct cascade_orch_outcome){.stage = "config", .message = config_id});
    if (rc)
        return cascade_orch__fail(call, rc, "experiment assignment failed: %s",
                                  cascade_strerror(rc));
    if ((rc = route_tracks(rq)))
        return cascade_orch__fail(call, rc, "out of memory");
    return 0;
}

int64_t cascade_orch_stage_deadline(int64_t now_ms, int64_t request_deadline_ms, int timeout_ms,
                                    int min_ms, int reserve_ms)
{
    int64_t own = now_ms + timeout_ms;
    int64_t limit = request_deadline_ms - reserve_ms;
    if (limit < now_ms + min_ms)
        limit = now_ms + min_ms;
    if (limit > request_deadline_ms)
        limit = request_deadline_ms;
    return own < limit ? own : limit;
}

int64_t cascade_orch__budget_deadline(const struct cascade_orch_rq *rq, int timeout_ms, int min_ms,
                                      int reserve_ms)
{
    return cascade_orch_stage_deadline(cascade_now_ms(), rq->deadline_ms, timeout_ms, min_ms,
                                       reserve_ms);
}

void cascade_orch__report(struct cascade_orch_rq *rq, const struct cascade_orch_outcome *o)
{
    if (cascade_orch_report_add(&rq->report, o))
        CASCADE_WARN(rq->user->request_id, "out of memory recording stage %s", o->stage);
}

/* ------------------------------------------------------------------ stages */

/* Call one stage within min(request deadline, now + its budget). Returns the
 * response, or NULL after recording a degraded outcome whose reason ends with
 * `consequence` (what the pipeline does without the stage). */
static ProtobufCMessage *stage_call(struct cascade_orch_rq *rq, const char *stage,
                                    const struct cascade_orch_stage_cfg *st,
                                    cascade_rpc_channel *ch, const char *method,
                                    const ProtobufCMessage *req,
                                    const ProtobufCMessageDescriptor *resp_type,
                                    const char *consequence, int64_t *latency_us)
{
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = method,
        .request = req,
        .response_type = resp_type,
        .deadline_ms =
            cascade_orch__budget_deadline(rq, st->timeout_ms, st->min_ms, st->reserve_ms),
        .request_id = rq->user->request_id,
    };
    struct cascade_orch_outcome out = {
        .stage = stage, .items_in = rq->n, .items_out = rq->n, .degraded = true};
    *latency_us = 0;
    if (cascade_ms_left(rq->deadline_ms) <= 0) {
        out.status = GRPC_STATUS_DEADLINE_EXCEEDED;
        out.message = cascade_arena_printf(rq->arena,
                                           "request deadline passed before the stage started "
                                           "(skipped: %s)",
                                           consequence);
        cascade_orch__report(rq, &out);
        return NULL;
    }
    if (cascade_rpc_call_unary(&call, rq->arena) == 0 && call.response != NULL) {
        *latency_us = call.latency_us;
        return call.response;
    }
    out.status = call.status;
    out.latency_us = call.latency_us;
    out.message = cascade_arena_printf(rq->arena, "%s (skipped: %s)",
                                       call.status_message ? call.status_message : "", consequence);
    cascade_orch__report(rq, &out);
    return NULL;
}

/* Trace a stage that ran and replace the candidate list with its output. */
static void stage_done(struct cascade_orch_rq *rq, const char *stage, int64_t latency_us,
                       Cascade__V1__Candidate **cands, size_t n, enum cascade_score_kind source)
{
    cascade_orch__report(rq, &(struct cascade_orch_outcome){.stage = stage,
                                                            .latency_us = latency_us,
                                                            .items_in = rq->n,
                                                            .items_out = n,
                                                            .order = cands,
                                                            .n_order = n});
    rq->cands = cands;
    rq->n = n;
    rq->source = source;
}

static void truncate_to(struct cascade_orch_rq *rq, size_t keep)
{
    if (keep > 0 && rq->n > keep)
        rq->n = keep;
}

/* What a stage is sent of each candidate. The filter needs only ids (and
 * authors, when known); the pre-rank and rank stages the ids, recall scores
 * and channel hits (their learned models read them), the ranker also the
 * pre-rank score and attributes; the re-ranker the ids, rank scores and
 * attributes (category, author and embedding for its similarity). They are
 * sent slim copies, not the merged candidates with everything else, which
 * would be packed, parsed and sent back for nothing. */
enum slim_kind { SLIM_FILTER, SLIM_PRERANK, SLIM_RANK, SLIM_RERANK };

static Cascade__V1__Candidate **slim_candidates(struct cascade_orch_rq *rq, enum slim_kind kind,
                                                bool hits)
{
    Cascade__V1__Candidate *slim = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *slim);
    Cascade__V1__Candidate **ptrs = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *ptrs);
    if (!slim || !ptrs)
        return NULL;
    for (size_t i = 0; i < rq->n; i++) {
        cascade__v1__candidate__init(&slim[i]);
        slim[i].item_id = rq->cands[i]->item_id;
        slim[i].attrs = rq->cands[i]->attrs;
        if (kind == SLIM_PRERANK || kind == SLIM_RANK)
            slim[i].recall_score = rq->cands[i]->recall_score;
        if (kind == SLIM_RANK)
            slim[i].prerank_score = rq->cands[i]->prerank_score;
        if (kind == SLIM_RERANK)
            slim[i].rank_score = rq->cands[i]->rank_score;
        if (hits) {
            slim[i].channels = rq->cands[i]->channels;
            slim[i].n_channels = rq->cands[i]->n_channels;
        }
        ptrs[i] = &slim[i];
    }
    return ptrs;
}

/* The channel hits of rq->cands in RecallSignals columns (orchestrator.
 * compact_stage_calls): names once per request, then three numbers per hit.
 * Channel names are matched by pointer first (the merge's hits share their
 * channel's name), then by content. NULL when out of memory. */
static Cascade__V1__RecallSignals *recall_signals(struct cascade_orch_rq *rq)
{
    enum { MAX_NAMES = 256 };
    Cascade__V1__RecallSignals *sig = cascade_arena_alloc(rq->arena, sizeof *sig);
    char **names = cascade_arena_alloc(rq->arena, MAX_NAMES * sizeof *names);
    size_t total = 0;
    if (!sig || !names)
        return NULL;
    cascade__v1__recall_signals__init(sig);
    for (size_t i = 0; i < rq->n; i++)
        total += rq->cands[i]->n_channels;
    sig->hit_count = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *sig->hit_count);
    sig->hit_channel = cascade_arena_alloc(rq->arena, (total + 1) * sizeof *sig->hit_channel);
    sig->hit_norm_score = cascade_arena_alloc(rq->arena, (total + 1) * sizeof *sig->hit_norm_score);
    sig->hit_rank = cascade_arena_alloc(rq->arena, (total + 1) * sizeof *sig->hit_rank);
    if (!sig->hit_count || !sig->hit_channel || !sig->hit_norm_score || !sig->hit_rank)
        return NULL;
    sig->channels = names;
    for (size_t i = 0; i < rq->n; i++) {
        const Cascade__V1__Candidate *c = rq->cands[i];
        uint32_t kept = 0;
        for (size_t h = 0; h < c->n_channels; h++) {
            const Cascade__V1__ChannelHit *hit = c->channels[h];
            if (!hit)
                continue; /* a missing hit counts for nothing (ltr_features.h) */
            const char *name = hit->channel ? hit->channel : "";
            size_t k = 0;
            while (k < sig->n_channels && names[k] != name)
                k++;
            if (k == sig->n_channels) /* a name we have under another pointer? */
                for (k = 0; k < sig->n_channels && strcmp(names[k], name) != 0;)
                    k++;
            if (k == sig->n_channels) {
                if (k == MAX_NAMES)
                    return NULL; /* more channels than any config has: send the hits */
                names[sig->n_channels++] = (char *)name;
            }
            sig->hit_channel[sig->n_hit_channel++] = (uint32_t)k;
            sig->hit_norm_score[sig->n_hit_norm_score++] = hit->norm_score;
            sig->hit_rank[sig->n_hit_rank++] = hit->rank;
            kept++;
        }
        sig->hit_count[sig->n_hit_count++] = kept;
    }
    return sig;
}

/* A scoring stage's candidates: slim copies with their hits in
 * RecallSignals columns (*sig) when orchestrator.compact_stage_calls is on
 * (else, or when the columns cannot be built, in each copy's channels); the
 * merged candidates themselves when out of memory (*slim false). */
static Cascade__V1__Candidate **scoring_payload(struct cascade_orch_rq *rq, enum slim_kind kind,
                                                Cascade__V1__RecallSignals **sig, bool *slim)
{
    *sig = rq->o->cfg.compact_stage_calls ? recall_signals(rq) : NULL;
    Cascade__V1__Candidate **cands = slim_candidates(rq, kind, *sig == NULL);
    *slim = cands != NULL;
    if (!cands)
        *sig = NULL; /* the merged candidates carry their hits */
    return cands ? cands : rq->cands;
}

/* The answer's ids when they come in the order they were sent (the filter
 * keeps its input order): one walk matches each to the next candidate with
 * its id, without building a map. The same candidates as the map below:
 * rq->cands holds an id twice only as the same candidate (the merge dedupes,
 * slot items are added only when absent, answers map back to our
 * candidates). false (full partly written) when the ids are not in order. */
static bool match_in_order(const struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *kept,
                           const uint64_t *ids, size_t n, Cascade__V1__Candidate **full)
{
    size_t j = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t id = ids ? ids[k] : kept[k]->item_id;
        while (j < rq->n && rq->cands[j]->item_id != id)
            j++;
        if (j == rq->n)
            return false;
        full[k] = rq->cands[j++];
    }
    return true;
}

/* The merged candidates a stage returned, in its order, from their ids
 * (ids[k], or kept[k]->item_id when ids is NULL): each is matched to the
 * first candidate with that id (in one walk when the answer keeps the order
 * sent, else through an id map, ids → positions). false when out of memory
 * or an id is unknown. */
static bool match_by_id(struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *kept,
                        const uint64_t *ids, size_t n, Cascade__V1__Candidate ***out)
{
    cascade_idmap pos;
    Cascade__V1__Candidate **full = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *full);
    if (full && match_in_order(rq, kept, ids, n, full)) {
        *out = full;
        return true;
    }
    if (!full || cascade_idmap_init(&pos, rq->arena, rq->n) != 0)
        return false;
    for (size_t i = rq->n; i-- > 0;) { /* later first, so the first occurrence wins */
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&pos, rq->cands[i]->item_id, NULL);
        if (!e)
            return false;
        e->index = (uint32_t)i;
    }
    for (size_t k = 0; k < n; k++) {
        const struct cascade_idmap_entry *e =
            cascade_idmap_find(&pos, ids ? ids[k] : kept[k]->item_id);
        if (!e)
            return false;
        full[k] = rq->cands[e->index];
    }
    *out = full;
    return true;
}

/* The merged candidates behind a stage's answer (n of them): the answer's
 * candidates `got` themselves when the stage was sent the full candidates
 * (slim false), else the candidates their ids name (or `ids`, when the stage
 * answered ids alone). NULL after reporting the stage as skipped
 * (`consequence`) when it returned an id it was not sent. */
static Cascade__V1__Candidate **unslim(struct cascade_orch_rq *rq, const char *stage,
                                       const char *consequence, int64_t lat, bool slim,
                                       Cascade__V1__Candidate **got, const uint64_t *ids, size_t n)
{
    Cascade__V1__Candidate **full = NULL;
    if (!slim)
        return got;
    if (match_by_id(rq, got, ids, n, &full))
        return full;
    cascade_orch__report(
        rq, &(struct cascade_orch_outcome){
                .stage = stage,
                .latency_us = lat,
                .items_in = rq->n,
                .items_out = rq->n,
                .status = GRPC_STATUS_INTERNAL,
                .message = cascade_arena_printf(rq->arena,
                                                "the %s stage returned items it was not sent "
                                                "(skipped: %s)",
                                                stage, consequence),
                .degraded = true});
    return NULL;
}

/* Report a stage whose answer was not used (the candidates stay as they
 * were), degrading the response. */
static void report_skipped(struct cascade_orch_rq *rq, const char *stage, int64_t lat, int status,
                           const char *message)
{
    cascade_orch__report(rq, &(struct cascade_orch_outcome){.stage = stage,
                                                            .latency_us = lat,
                                                            .items_in = rq->n,
                                                            .items_out = rq->n,
                                                            .status = status,
                                                            .message = message,
                                                            .degraded = true});
}

/* Compact calls: the filter gets the candidates as packed columns
 * (FilterRequest.item_ids, and author_ids when any candidate has an author)
 * instead of one message each. False when out of memory. */
static bool filter_columns(struct cascade_orch_rq *rq, Cascade__V1__FilterRequest *req)
{
    uint64_t *ids = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *ids);
    uint64_t *authors = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *authors);
    bool any_author = false;
    if (!ids || !authors)
        return false;
    for (size_t i = 0; i < rq->n; i++) {
        ids[i] = rq->cands[i]->item_id;
        authors[i] = rq->cands[i]->attrs ? rq->cands[i]->attrs->author_id : 0;
        any_author |= authors[i] != 0;
    }
    req->item_ids = ids;
    req->n_item_ids = rq->n;
    req->author_ids = any_author ? authors : NULL;
    req->n_author_ids = any_author ? rq->n : 0;
    return true;
}

/* A filter older than FilterRequest.item_ids sees no candidates and answers
 * none kept, none dropped: every candidate must be kept or dropped. */
static bool filter_accounted(const Cascade__V1__FilterResponse *resp, size_t n)
{
    size_t sum = resp->n_kept_ids + resp->n_candidates;
    for (size_t r = 0; r < resp->n_dropped; r++)
        sum += resp->dropped[r] ? resp->dropped[r]->count : 0;
    return sum == n;
}

static void run_filter(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.filter;
    const char *consequence = "items already shown may repeat";
    Cascade__V1__FilterRequest req = CASCADE__V1__FILTER_REQUEST__INIT;
    int64_t lat;
    if (!st->enabled || rq->n == 0)
        return;
    cascade_orch__slots_to_filter(rq);
    bool columns = rq->o->cfg.compact_stage_calls && filter_columns(rq, &req);
    Cascade__V1__Candidate **slim = columns ? NULL : slim_candidates(rq, SLIM_FILTER, false);
    req.user = rq->user;
    req.candidates = columns ? NULL : slim ? slim : rq->cands;
    req.n_candidates = columns ? 0 : rq->n;
    req.experiments = rq->exp;
    req.ids_only = columns || (slim && rq->o->cfg.compact_stage_calls);
    Cascade__V1__FilterResponse *resp = (Cascade__V1__FilterResponse *)stage_call(
        rq, "filter", st, rq->stage_rpc[CASCADE_ORCH_STAGE_FILTER], "/cascade.v1.Filter/Filter",
        &req.base, &cascade__v1__filter_response__descriptor, consequence, &lat);
    if (resp && columns && !filter_accounted(resp, rq->n)) {
        report_skipped(rq, "filter", lat, GRPC_STATUS_INTERNAL,
                       "the filter did not account for every candidate (older than "
                       "FilterRequest.item_ids? set orchestrator.compact_stage_calls false) "
                       "(skipped: items already shown may repeat)");
        resp = NULL;
    }
    /* An ids-only answer lists the survivors in kept_ids; a filter that does
     * not know the flag answers candidates, which are taken the same way. */
    bool by_ids = resp && resp->n_kept_ids > 0;
    size_t n_kept = resp ? (by_ids ? resp->n_kept_ids : resp->n_candidates) : 0;
    Cascade__V1__Candidate **kept =
        resp ? unslim(rq, "filter", consequence, lat, columns || slim != NULL, resp->candidates,
                      by_ids ? resp->kept_ids : NULL, n_kept)
             : NULL;
    if (kept)
        stage_done(rq, "filter", lat, kept, cascade_orch__slots_after_filter(rq, kept, n_kept),
                   rq->source);
    else
        cascade_orch__slots_after_filter(rq, NULL, 0);
}

static uint32_t param_keep(const struct cascade_orch_rq *rq, const char *key, uint32_t def)
{
    double v = cascade_exp_param_double(rq->exp, key, def);
    return v < 0 ? 0 : v > 20000 ? 20000 : (uint32_t)v;
}

/* A scoring stage's candidates as packed columns (compact calls): their
 * ids and recall scores, their hits as RecallSignals columns. */
struct scoring_columns {
    uint64_t *ids;
    float *recall_scores;
    Cascade__V1__RecallSignals *signals;
};

/* The columns of rq->cands into *c, instead of one message per candidate.
 * False when out of memory or the hits do not fit the columns: the
 * candidates then go as messages. */
static bool scoring_columns(struct cascade_orch_rq *rq, struct scoring_columns *c)
{
    c->signals = recall_signals(rq);
    c->ids = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *c->ids);
    c->recall_scores = cascade_arena_alloc(rq->arena, (rq->n + 1) * sizeof *c->recall_scores);
    if (!c->signals || !c->ids || !c->recall_scores)
        return false;
    for (size_t i = 0; i < rq->n; i++) {
        c->ids[i] = rq->cands[i]->item_id;
        c->recall_scores[i] = rq->cands[i]->recall_score;
    }
    return true;
}

/* Put rq->cands into `req`, a PreRankRequest or RankRequest (the two share
 * these fields): as packed columns when compact calls are on and they can be
 * built (`columns` set true), else as slim messages of `kind` (`slim` false
 * when the merged candidates themselves go). A macro because the two
 * request types are distinct structs with the same field names. */
#define SCORING_CANDIDATES(rq, req, kind, columns, slim)                                           \
    do {                                                                                           \
        struct scoring_columns cols_;                                                              \
        (columns) = (rq)->o->cfg.compact_stage_calls && scoring_columns((rq), &cols_);             \
        if (columns) {                                                                             \
            (req).item_ids = cols_.ids;                                                            \
            (req).n_item_ids = (rq)->n;                                                            \
            (req).recall_scores = cols_.recall_scores;                                             \
            (req).n_recall_scores = (rq)->n;                                                       \
            (req).recall_signals = cols_.signals;                                                  \
        } else {                                                                                   \
            (req).candidates = scoring_payload((rq), (kind), &(req).recall_signals, &(slim));      \
            (req).n_candidates = (rq)->n;                                                          \
            (req).scores_only = (slim) && (rq)->o->cfg.compact_stage_calls;                        \
        }                                                                                          \
    } while (0)

/* Whether a stage sent item_ids answered in columns: n_ids scored ids
 * (some: it keeps at least one; one older than the columns sees no
 * candidates and answers none), at most as many as were sent, and every
 * other column of the length that goes with them (consistent). false, with
 * the stage reported skipped (`consequence`), when it did not. */
static bool columns_answered(struct cascade_orch_rq *rq, const char *stage, const char *field,
                             int64_t lat, size_t n_ids, bool consistent, const char *consequence)
{
    const char *why = NULL;
    if (n_ids == 0)
        why = cascade_arena_printf(rq->arena,
                                   "the %s stage answered no scored_ids (older than %s? set "
                                   "orchestrator.compact_stage_calls false) (skipped: %s)",
                                   stage, field, consequence);
    else if (!consistent || n_ids > rq->n)
        why = cascade_arena_printf(rq->arena,
                                   "the %s stage answered %zu scored_ids for %zu candidates, or "
                                   "columns of other lengths (skipped: %s)",
                                   stage, n_ids, rq->n, consequence);
    else
        return true;
    report_skipped(rq, stage, lat, GRPC_STATUS_INTERNAL, why);
    return false;
}

static void run_prerank(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.prerank;
    Cascade__V1__PreRankRequest req = CASCADE__V1__PRE_RANK_REQUEST__INIT;
    uint32_t keep = param_keep(rq, "prerank.keep", st->keep);
    int64_t lat;
    if (!st->enabled || rq->n == 0) {
        truncate_to(rq, keep);
        return;
    }
    const char *consequence = "recall order kept";
    bool slim = true, columns;
    SCORING_CANDIDATES(rq, req, SLIM_PRERANK, columns, slim);
    req.user = rq->user;
    req.keep = keep;
    req.experiments = rq->exp;
    Cascade__V1__PreRankResponse *resp = (Cascade__V1__PreRankResponse *)stage_call(
        rq, "prerank", st, rq->stage_rpc[CASCADE_ORCH_STAGE_PRERANK], "/cascade.v1.PreRank/Score",
        &req.base, &cascade__v1__pre_rank_response__descriptor, consequence, &lat);
    if (resp && columns &&
        !columns_answered(rq, "prerank", "PreRankRequest.item_ids", lat, resp->n_scored_ids,
                          resp->n_scores == resp->n_scored_ids, consequence))
        resp = NULL;
    size_t n = resp ? (columns ? resp->n_scored_ids : resp->n_candidates) : 0;
    Cascade__V1__Candidate **scored =
        resp ? unslim(rq, "prerank", consequence, lat, slim, resp->candidates,
                      columns ? resp->scored_ids : NULL, n)
             : NULL;
    if (scored) {
        for (size_t i = 0; i < n; i++)
            scored[i]->prerank_score =
                columns ? resp->scores[i] : resp->candidates[i]->prerank_score;
        stage_done(rq, "prerank", lat, scored, n, CASCADE_SCORE_PRERANK);
    }
    truncate_to(rq, keep);
}

/* Copy what the ranker adds (tasks, rank_score, attributes) from its answer
 * got[0..n) onto the merged candidates full[0..n) behind it. Its attributes
 * replace ours, keeping an embedding we had that a scores-only answer leaves
 * out. false when out of memory. */
static bool take_rank_scores(struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *got,
                             Cascade__V1__Candidate **full, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = full[i];
        const Cascade__V1__ItemAttributes *mine = c->attrs, *theirs = got[i]->attrs;
        c->tasks = got[i]->tasks;
        c->rank_score = got[i]->rank_score;
        if (theirs && theirs->n_embedding == 0 && mine && mine->n_embedding > 0) {
            Cascade__V1__ItemAttributes *a = cascade_arena_alloc(rq->arena, sizeof *a);
            if (!a)
                return false;
            *a = *theirs;
            a->embedding = mine->embedding;
            a->n_embedding = mine->n_embedding;
            c->attrs = a;
        } else if (theirs) {
            c->attrs = (Cascade__V1__ItemAttributes *)theirs;
        }
    }
    return true;
}

/* The rank stage's answer columns (the request went as item_ids) onto the
 * merged candidates full[0..n) behind scored_ids: rank_score, tasks and
 * attributes, as take_rank_scores takes them from candidates (an embedding
 * we had is kept). false when out of memory. */
static bool take_rank_columns(struct cascade_orch_rq *rq, const Cascade__V1__RankResponse *resp,
                              Cascade__V1__Candidate **full, size_t n)
{
    enum { N_TASKS = 6 }; /* RankResponse.task_scores per id */
    Cascade__V1__TaskScores *tasks = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *tasks);
    Cascade__V1__ItemAttributes *attrs = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *attrs);
    if (!tasks || !attrs)
        return false;
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = full[i];
        const float *v = resp->task_scores + i * N_TASKS;
        cascade__v1__task_scores__init(&tasks[i]);
        tasks[i].p_click = v[0], tasks[i].p_like = v[1], tasks[i].p_collect = v[2];
        tasks[i].p_share = v[3], tasks[i].watch_time_s = v[4], tasks[i].p_complete = v[5];
        cascade__v1__item_attributes__init(&attrs[i]);
        attrs[i].author_id = resp->author_ids[i];
        attrs[i].category = resp->categories[i];
        attrs[i].created_at_s = resp->created_at_s[i];
        attrs[i].media_type = resp->media_types[i];
        attrs[i].duration_s = resp->durations_s[i];
        if (c->attrs && c->attrs->n_embedding > 0) {
            attrs[i].embedding = c->attrs->embedding;
            attrs[i].n_embedding = c->attrs->n_embedding;
        }
        c->tasks = &tasks[i];
        c->attrs = &attrs[i];
        c->rank_score = resp->rank_scores[i];
    }
    return true;
}

/* Every RankResponse column as long as scored_ids goes with. */
static bool rank_columns_consistent(const Cascade__V1__RankResponse *resp)
{
    size_t n = resp->n_scored_ids;
    return resp->n_rank_scores == n && resp->n_task_scores == 6 * n && resp->n_author_ids == n &&
           resp->n_categories == n && resp->n_created_at_s == n && resp->n_media_types == n &&
           resp->n_durations_s == n;
}

static void run_rank(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.rank;
    Cascade__V1__RankRequest req = CASCADE__V1__RANK_REQUEST__INIT;
    uint32_t keep = param_keep(rq, "rank.keep", st->keep);
    const char *consequence = "pre-rank order kept";
    int64_t lat;
    if (!st->enabled || rq->n == 0) {
        truncate_to(rq, keep);
        return;
    }
    /* Exploration candidates join the ranked set; the stage then returns
     * everything (keep 0) so the ranker's order of them is known even when
     * they rank below `keep`, and the cut happens here. */
    bool exploring = cascade_orch__reserve_explore(rq), slim = true;
    Cascade__V1__Candidate **scored = rq->cands;
    size_t n_scored = rq->n;
    bool columns;
    SCORING_CANDIDATES(rq, req, SLIM_RANK, columns, slim);
    req.user = rq->user;
    req.keep = exploring ? 0 : keep;
    req.experiments = rq->exp;
    Cascade__V1__RankResponse *resp = (Cascade__V1__RankResponse *)stage_call(
        rq, "rank", st, rq->stage_rpc[CASCADE_ORCH_STAGE_RANK], "/cascade.v1.Rank/Score", &req.base,
        &cascade__v1__rank_response__descriptor, consequence, &lat);
    if (resp && columns &&
        !columns_answered(rq, "rank", "RankRequest.item_ids", lat, resp->n_scored_ids,
                          rank_columns_consistent(resp), consequence))
        resp = NULL;
    size_t n_got = resp ? (columns ? resp->n_scored_ids : resp->n_candidates) : 0;
    Cascade__V1__Candidate **ranked =
        resp ? unslim(rq, "rank", consequence, lat, slim, resp->candidates,
                      columns ? resp->scored_ids : NULL, n_got)
             : NULL;
    if (ranked && slim &&
        !(columns ? take_rank_columns(rq, resp, ranked, n_got)
                  : take_rank_scores(rq, resp->candidates, ranked, n_got))) {
        ranked = NULL;
        report_skipped(rq, "rank", lat, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "out of memory taking the rank stage's answer (skipped: pre-rank order "
                       "kept)");
    }
    if (ranked == NULL) {
        truncate_to(rq, keep);
        return;
    }
    if (exploring)
        cascade_orch__rank_explore_pool(rq, ranked, n_got);
    size_t n = keep > 0 && n_got > keep ? keep : n_got;
    stage_done(rq, "rank", lat, ranked, n, CASCADE_SCORE_RANK);
    rq->ranked = rq->cands; /* what the ranker kept: the recall cache's source */
    rq->n_ranked = rq->n;
    rq->rank_scored = scored; /* the rest of what it scored: hard negatives */
    rq->n_rank_scored = n_scored;
    rq->n_rank_returned = n_got;
}

/* The re-ranker answers the candidates it picks as it got them, with their
 * rerank_score: with orchestrator.compact_stage_calls it is sent slim copies
 * (SLIM_RERANK), so its answer is small too, and the picks are matched back
 * to the merged candidates by id and given their rerank_score. */
static void run_rerank(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_stage_cfg *st = &rq->o->cfg.rerank;
    Cascade__V1__ReRankRequest req = CASCADE__V1__RE_RANK_REQUEST__INIT;
    const char *consequence = "rank order kept";
    int64_t lat;
    if (st->enabled && rq->n > 0) {
        Cascade__V1__Candidate **slim =
            rq->o->cfg.compact_stage_calls ? slim_candidates(rq, SLIM_RERANK, false) : NULL;
        req.user = rq->user;
        req.candidates = slim ? slim : rq->cands;
        req.n_candidates = rq->n;
        req.count = rq->count;
        req.experiments = rq->exp;
        Cascade__V1__ReRankResponse *resp = (Cascade__V1__ReRankResponse *)stage_call(
            rq, "rerank", st, rq->stage_rpc[CASCADE_ORCH_STAGE_RERANK], "/cascade.v1.ReRank/ReRank",
            &req.base, &cascade__v1__re_rank_response__descriptor, consequence, &lat);
        Cascade__V1__Candidate **picked = resp
                                              ? unslim(rq, "rerank", consequence, lat, slim != NULL,
                                                       resp->candidates, NULL, resp->n_candidates)
                                              : NULL;
        if (picked) {
            for (size_t i = 0; slim && i < resp->n_candidates; i++)
                picked[i]->rerank_score = resp->candidates[i]->rerank_score;
            rq->relevance = rq->source;
            stage_done(rq, "rerank", lat, picked, resp->n_candidates, CASCADE_SCORE_RERANK);
        }
    }
    truncate_to(rq, rq->count);
}

/* ---------------------------------------------------------------- response */

static Cascade__V1__RecommendedItem *make_item(struct cascade_orch_rq *rq,
                                               const Cascade__V1__Candidate *c)
{
    Cascade__V1__RecommendedItem *it = cascade_arena_alloc(rq->arena, sizeof *it);
    char **names = cascade_arena_calloc(rq->arena, c->n_channels + 1, sizeof *names);
    if (it == NULL || names == NULL)
        return NULL;
    cascade__v1__recommended_item__init(it);
    it->item_id = c->item_id;
    /* score is the item's relevance from the last scoring stage, not the
     * re-ranker's selection value (which depends on the items above it:
     * MMR's first pick always scores lambda); that one is rerank_score. */
    it->score = cascade_request_candidate_score(
        c, rq->source == CASCADE_SCORE_RERANK ? rq->relevance : rq->source);
    it->rerank_score = c->rerank_score;
    it->reason = cascade_orch__item_reason(rq, c, (const char **)&it->source);
    for (size_t i = 0; i < c->n_channels; i++)
        if (c->channels[i] && c->channels[i]->channel)
            names[it->n_channels++] = c->channels[i]->channel;
    it->channels = names;
    it->tasks = c->tasks;
    it->rank_score = c->rank_score;
    it->attrs = c->attrs;
    return it;
}

/* Candidates offered to the exposure reservation per item asked for in its
 * first round: the final list, then the ranker's order behind it, so an
 * answer whose items a concurrent request for the same user took can still
 * fill up. When that is not enough (many racing requests on a small
 * catalogue), a second round offers the rest of what the ranker saw. */
#define EXPOSURE_OFFER_FACTOR 4
#define EXPOSURE_MAX_ITEMS 1000 /* RecordExposure's limit per call */

/* Append from[0..n_from) to list (n entries so far, at most cap) skipping
 * ids already in it; seen holds the ids of list (an id set, so the check
 * costs O(1), not a scan of the list). Returns the new length, or
 * (size_t)-1 when out of memory. */
static size_t offer_append(cascade_idmap *seen, Cascade__V1__Candidate **list, size_t n, size_t cap,
                           Cascade__V1__Candidate *const *from, size_t n_from)
{
    for (size_t i = 0; i < n_from && n < cap; i++) {
        bool created = false;
        if (!from[i])
            continue;
        if (!cascade_idmap_upsert(seen, from[i]->item_id, &created))
            return (size_t)-1;
        if (created)
            list[n++] = from[i];
    }
    return n;
}

/* Everything that may be shown, best first, without repeats and at most
 * EXPOSURE_MAX_ITEMS: the final list, then the ranker's whole answer, then
 * the rest of what it was sent (the pre-rank order). */
static size_t exposure_offer(struct cascade_orch_rq *rq, Cascade__V1__Candidate ***out)
{
    size_t cap = rq->n > EXPOSURE_MAX_ITEMS ? rq->n : EXPOSURE_MAX_ITEMS, n = 0;
    Cascade__V1__Candidate **list = cascade_arena_calloc(rq->arena, cap + 1, sizeof *list);
    cascade_idmap seen;
    if ((*out = list) == NULL || cascade_idmap_init(&seen, rq->arena, cap) != 0)
        return 0;
    n = offer_append(&seen, list, n, cap, rq->cands, rq->n);
    if (rq->ranked && n != (size_t)-1)
        n = offer_append(&seen, list, n, cap, rq->ranked, rq->n_rank_returned);
    if (rq->rank_scored && n != (size_t)-1)
        n = offer_append(&seen, list, n, cap, rq->rank_scored, rq->n_rank_scored);
    return n == (size_t)-1 ? 0 : n;
}

/* One RecordExposure round: reserve up to `want` of offer[0..n) for the user
 * and move what was taken, in order, to taken[*n_taken..]. Returns false when
 * the call failed or its answer cannot be trusted (already reported). */
static bool reserve_round(struct cascade_orch_rq *rq, const struct cascade_orch_stage_cfg *st,
                          Cascade__V1__Candidate *const *offer, size_t n, uint32_t want,
                          Cascade__V1__Candidate **taken, size_t *n_taken, int64_t *lat)
{
    Cascade__V1__RecordExposureRequest req = CASCADE__V1__RECORD_EXPOSURE_REQUEST__INIT;
    req.item_ids = cascade_arena_calloc(rq->arena, n + 1, sizeof *req.item_ids);
    if (req.item_ids == NULL)
        return false;
    req.user_id = rq->user->user_id;
    req.reserve = want;
    for (size_t i = 0; i < n; i++)
        req.item_ids[req.n_item_ids++] = offer[i]->item_id;
    int64_t round_lat = 0;
    Cascade__V1__RecordExposureResponse *ack = (Cascade__V1__RecordExposureResponse *)stage_call(
        rq, "exposure", st, rq->stage_rpc[CASCADE_ORCH_STAGE_FILTER],
        "/cascade.v1.Filter/RecordExposure", &req.base,
        &cascade__v1__record_exposure_response__descriptor, "these items may be shown again",
        &round_lat);
    *lat += round_lat;
    if (ack == NULL)
        return false;
    /* A reservation is a subsequence of the offer, at most `want` long. */
    size_t at = 0, kept = *n_taken;
    bool trusted = ack->n_item_ids <= want;
    for (size_t j = 0; trusted && j < ack->n_item_ids; j++) {
        while (at < n && offer[at]->item_id != ack->item_ids[j])
            at++;
        if (!(trusted = at < n))
            break;
        taken[kept++] = offer[at++];
    }
    if (!trusted) {
        cascade_orch__report(rq, &(struct cascade_orch_outcome){
                                     .stage = "exposure",
                                     .latency_us = *lat,
                                     .items_in = n,
                                     .items_out = rq->n,
                                     .degraded = true,
                                     .status = GRPC_STATUS_INTERNAL,
                                     .message = "the reservation lists items not offered "
                                                "(skipped: these items may be shown again)"});
        return false;
    }
    *n_taken = kept;
    return true;
}

/* Reserve what this answer shows, so neither this nor a concurrent request
 * for the user repeats it: the filter takes, atomically per user, the first
 * rq->count offered items that no answer has taken yet (RecordExposure with
 * reserve), and rq->cands becomes those, in order. The first round offers
 * EXPOSURE_OFFER_FACTOR × count items; a short answer gets a second round
 * over the rest of the offer. When a call fails, the final list is kept and
 * the outcome says it may be shown again. */
static void reserve_exposure(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    struct cascade_orch_stage_cfg st = cfg->filter;
    Cascade__V1__Candidate **offer = NULL;
    int64_t lat = 0;
    if (!st.enabled || rq->n == 0)
        return;
    st.timeout_ms = cfg->exposure_timeout_ms;
    st.min_ms = cfg->exposure_min_ms;
    st.reserve_ms = 0;
    size_t n_offer = exposure_offer(rq, &offer);
    Cascade__V1__Candidate **taken =
        cascade_arena_calloc(rq->arena, (size_t)rq->count + 1, sizeof *taken);
    if (n_offer == 0 || taken == NULL)
        return;
    size_t first = (size_t)rq->count * EXPOSURE_OFFER_FACTOR, n_taken = 0, n_sent;
    if (first < rq->n)
        first = rq->n;
    if (first > n_offer)
        first = n_offer;
    if (!reserve_round(rq, &st, offer, first, rq->count, taken, &n_taken, &lat))
        return;
    n_sent = first;
    /* A failed second round is reported by stage_call; the first round's
     * items stand. */
    bool reported = false;
    if (n_taken < rq->count && n_offer > first) {
        reported = !reserve_round(rq, &st, offer + first, n_offer - first,
                                  rq->count - (uint32_t)n_taken, taken, &n_taken, &lat);
        n_sent = n_offer;
    }
    if (!reported)
        cascade_orch__report(rq, &(struct cascade_orch_outcome){.stage = "exposure",
                                                                .latency_us = lat,
                                                                .items_in = n_sent,
                                                                .items_out = n_taken});
    rq->cands = taken;
    rq->n = n_taken;
}

static int build_response(struct cascade_orch_rq *rq, Cascade__V1__RecommendResponse **out)
{
    Cascade__V1__RecommendResponse *resp = cascade_arena_alloc(rq->arena, sizeof *resp);
    if (resp == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__recommend_response__init(resp);
    reserve_exposure(rq);
    size_t n = rq->n < rq->count ? rq->n : rq->count;
    resp->items = cascade_arena_calloc(rq->arena, n + 1, sizeof *resp->items);
    if (resp->items == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!(resp->items[resp->n_items] = make_item(rq, rq->cands[i])))
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
        resp->items[resp->n_items]->position = (uint32_t)resp->n_items;
        resp->n_items++;
    }
    cascade_orch__after_response(rq, resp); /* before the trace is handed out: it may grow */
    resp->experiments = rq->exp;
    resp->request_id = rq->user->request_id;
    resp->degraded = rq->report.degraded;
    resp->degraded_reasons = rq->report.reasons;
    resp->n_degraded_reasons = rq->report.n_reasons;
    if (rq->report.want_trace) {
        resp->trace = rq->report.trace;
        resp->n_trace = rq->report.n_trace;
    }
    *out = resp;
    return 0;
}

/* Recall (or the hot fallback) then the filter; when the filter leaves
 * nothing, the hot list gets one more chance through the filter. */
static int candidates_for_ranking(struct cascade_orch_rq *rq)
{
    int rc = cascade_orch__run_recall(rq);
    if (rc == 0 && rq->n == 0)
        rc = cascade_orch__run_fallback(rq);
    if (rc)
        return rc;
    run_filter(rq);
    if (rq->n == 0 && !rq->used_fallback && (rc = cascade_orch__run_fallback(rq)) == 0)
        run_filter(rq);
    if (rc == 0)
        cascade_orch__keep_explore_pool(rq);
    return rc;
}

/* Every degrade reason with its details, "; "-separated, for the log (the
 * caller only gets the codes). */
static const char *joined_details(const struct cascade_orch_rq *rq)
{
    const char *s = "";
    for (size_t i = 0; i < rq->report.n_reasons; i++) {
        s = cascade_arena_printf(rq->arena, "%s%s%s", s, i ? "; " : "", rq->report.details[i]);
        if (s == NULL)
            return rq->report.details[0];
    }
    return s;
}

static void log_outcome(const struct cascade_orch_rq *rq,
                        const Cascade__V1__RecommendResponse *resp)
{
    long long us = (long long)(cascade_now_us() - rq->start_us);
    if (resp->degraded)
        CASCADE_WARN(rq->user->request_id,
                     "recommend user=%s count=%u items=%zu degraded (%s) %lldus", rq->user->user_id,
                     rq->count, resp->n_items, joined_details(rq), us);
    else
        CASCADE_DEBUG(rq->user->request_id, "recommend user=%s count=%u items=%zu %lldus",
                      rq->user->user_id, rq->count, resp->n_items, us);
}

int cascade_orch_recommend(cascade_orch *o, const struct cascade_orch_call *call,
                           const Cascade__V1__RecommendRequest *req,
                           Cascade__V1__RecommendResponse **out)
{
    struct cascade_orch_rq rq = {
        .o = o, .call = call, .arena = call->arena, .start_us = cascade_now_us()};
    int rc;
    *out = NULL;
    if ((rc = validate(call, req)) || (rc = setup(&rq, req)))
        return rc;
    if ((rc = candidates_for_ranking(&rq)))
        return rc;
    run_prerank(&rq);
    run_rank(&rq);
    run_rerank(&rq);
    if ((rc = cascade_orch__finalize(&rq)) || (rc = build_response(&rq, out)))
        return rc;
    log_outcome(&rq, *out);
    return 0;
}
