/* Recommend, final steps: the final list with its slots (the item slots of
 * the request and config, and the exploration slots: items of the
 * exploration channel that survived the filter, scored by the ranker for
 * this user, the best of them at late positions when the re-ranker did not
 * pick one; slots.h places them all), the user's recall cache (ranked-but-
 * unshown items in, shown items out) and hard-negative log (items the ranker
 * cut), written in one pipeline, and the per-channel contribution in the
 * debug trace. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "experiments.h"
#include "boost.h"
#include "explore.h"
#include "hardneg_log.h"
#include "log.h"
#include "merge.h"
#include "recommend_internal.h"
#include "serve_log.h"
#include "user_cache.h"

/* ------------------------------------------------------------ exploration */

/* A share-valued experiment parameter, clamped to [0, 1]. */
static double param_share(const struct cascade_orch_rq *rq, const char *key, double def)
{
    double v = cascade_exp_param_double(rq->exp, key, def);
    return v > 0.0 ? (v < 1.0 ? v : 1.0) : 0.0;
}

/* How often one request refreshes the behind-target gauges, and the most
 * new-list items the census reads. */
#define BOOST_CENSUS_INTERVAL_MS 10000
#define BOOST_CENSUS_MAX 5000

/* Refresh the gauges when the interval has passed (one request claims it). */
static void boost_census(struct cascade_orch_rq *rq, cascade_redis *r,
                         const struct cascade_boost_params *p, int64_t now_s)
{
    cascade_orch *o = rq->o;
    int64_t now = cascade_now_ms(), last = atomic_load(&o->boost_census_ms);
    size_t behind, met;
    if ((last != 0 && now - last < BOOST_CENSUS_INTERVAL_MS) ||
        !atomic_compare_exchange_strong(&o->boost_census_ms, &last, now))
        return;
    if (cascade_boost_census(r, o->ns, p, now_s, BOOST_CENSUS_MAX, &behind, &met) != 0) {
        CASCADE_WARN(rq->user->request_id, "exploration target census: %s", cascade_redis_error(r));
        return;
    }
    cascade_metric_set(o->boost_behind, (double)behind);
    cascade_metric_set(o->boost_met, (double)met);
}

/* With an impression target: drop the pool items whose target is met (or
 * whose window is over), weigh the others (boost.h) and order them by
 * weight / (1 + channel position) until the ranker gives its positions. A
 * Redis failure leaves the pool as it is (logged): exploration without a
 * target, never a failed request. */
static void boost_pool(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    const struct cascade_boost_params p = {cfg->boost_target, cfg->boost_window_s};
    size_t n = rq->n_explore_pool, kept = 0;
    int64_t now_s = rq->user->request_time_s > 0 ? rq->user->request_time_s : cascade_wall_s();
    cascade_redis *r = rq->o->redis ? cascade_redis_pool_get(rq->o->redis) : NULL;
    if (p.target == 0 || r == NULL)
        return;
    cascade_redis_set_deadline(r, rq->deadline_ms);
    boost_census(rq, r, &p, cascade_wall_s()); /* the gauges are about now */
    if (n == 0)
        return;
    uint64_t *ids = cascade_arena_calloc(rq->arena, n, sizeof *ids);
    int64_t *created = cascade_arena_calloc(rq->arena, n, sizeof *created);
    double *imps = cascade_arena_calloc(rq->arena, n, sizeof *imps);
    double *w = cascade_arena_calloc(rq->arena, n, sizeof *w);
    uint32_t *pos = cascade_arena_calloc(rq->arena, n, sizeof *pos);
    if (!ids || !created || !imps || !w || !pos) {
        CASCADE_WARN(rq->user->request_id, "out of memory weighing exploration candidates");
        return;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = rq->explore_pool[i]->item_id;
    if (cascade_boost_read(r, rq->o->ns, ids, n, created, imps) != 0) {
        CASCADE_WARN(rq->user->request_id, "exploration target: %s; pool not weighed",
                     cascade_redis_error(r));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double wi = cascade_boost_weight(&p, created[i], now_s, imps[i]);
        if (wi <= 0.0) {
            cascade_metric_inc(rq->o->boost_skipped);
            continue;
        }
        rq->explore_pool[kept] = rq->explore_pool[i];
        pos[kept] = (uint32_t)kept;
        w[kept++] = wi;
    }
    cascade_boost_order(rq->explore_pool, pos, w, kept);
    rq->n_explore_pool = kept;
    rq->explore_weight = w;
}

/* The boost weight of a pool item (1 when there is no target). */
static double pool_weight(const struct cascade_orch_rq *rq, Cascade__V1__Candidate **pool,
                          size_t n_pool, uint64_t item_id)
{
    for (size_t i = 0; rq->explore_weight && i < n_pool; i++)
        if (pool[i]->item_id == item_id)
            return rq->explore_weight[i];
    return 1.0;
}

void cascade_orch__keep_explore_pool(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    rq->explore = (struct cascade_explore_params){
        .share = param_share(rq, "exploration.share", cfg->explore_share),
        .position = param_share(rq, "exploration.position", cfg->explore_position),
        .max_rank_share =
            param_share(rq, "exploration.max_rank_share", cfg->explore_max_rank_share)};
    rq->explore_pool = NULL;
    rq->n_explore_pool = 0;
    if (!(rq->explore.share > 0.0) || rq->n == 0)
        return;
    if (cascade_explore_pool(rq->cands, rq->n, cfg->explore_channel, cfg->explore_candidates,
                             rq->arena, &rq->explore_pool, &rq->n_explore_pool))
        CASCADE_WARN(rq->user->request_id, "out of memory keeping exploration candidates");
    else
        boost_pool(rq);
}

bool cascade_orch__reserve_explore(struct cascade_orch_rq *rq)
{
    if (rq->n_explore_pool == 0 || cascade_explore_slots(rq->count, rq->explore.share) == 0)
        return false;
    Cascade__V1__Candidate **list =
        cascade_arena_calloc(rq->arena, rq->n + rq->n_explore_pool + 1, sizeof *list);
    if (list == NULL) {
        CASCADE_WARN(rq->user->request_id, "out of memory reserving exploration candidates");
        return false;
    }
    if (rq->n)
        memcpy(list, rq->cands, rq->n * sizeof *list);
    size_t n = rq->n;
    for (size_t i = 0; i < rq->n_explore_pool; i++)
        if (!cascade_slots_has_item(list, rq->n, rq->explore_pool[i]->item_id))
            list[n++] = rq->explore_pool[i];
    rq->cands = list;
    rq->n = n;
    return true;
}

/* The target's guarantee (boost.h, cascade_boost_guarantee): at most one
 * pool item far behind schedule that the ranker put below its bar joins the
 * picks (room for one more was allocated; cascade_boost_insert). Its ranked copy
 * when the ranker returned it (scores for the serve record), else the bare
 * candidate. */
static void guarantee(struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *ranked, size_t n,
                      Cascade__V1__Candidate **picks, uint32_t *pos, double *w, size_t *n_picks)
{
    uint32_t at = 0;
    long g =
        cascade_boost_guarantee(rq->explore_pool, rq->explore_weight, rq->n_explore_pool, picks,
                                *n_picks, ranked, n, rq->o->cfg.boost_guarantee_deficit, &at);
    if (g < 0)
        return;
    Cascade__V1__Candidate *c = rq->explore_pool[g];
    if (at < n && ranked[at])
        c = ranked[at];
    *n_picks = cascade_boost_insert(picks, pos, w, *n_picks, c, at, rq->explore_weight[g]);
    rq->explore_guaranteed = c->item_id;
    cascade_metric_inc(rq->o->boost_guaranteed);
}

void cascade_orch__rank_explore_pool(struct cascade_orch_rq *rq,
                                     Cascade__V1__Candidate *const *ranked, size_t n)
{
    Cascade__V1__Candidate **picks;
    size_t n_picks;
    uint32_t *pos;
    if (rq->n_explore_pool == 0)
        return;
    if (cascade_explore_by_rank(rq->explore_pool, rq->n_explore_pool, ranked, n,
                                rq->explore.max_rank_share, rq->arena, &picks, &n_picks, &pos)) {
        CASCADE_WARN(rq->user->request_id, "out of memory ordering exploration candidates");
        return; /* the channel's order stays */
    }
    if (rq->explore_weight) {
        double *w = cascade_arena_calloc(rq->arena, n_picks + 1, sizeof *w);
        if (w == NULL) {
            CASCADE_WARN(rq->user->request_id, "out of memory ordering exploration candidates");
            return;
        }
        for (size_t k = 0; k < n_picks; k++)
            w[k] = pool_weight(rq, rq->explore_pool, rq->n_explore_pool, picks[k]->item_id);
        cascade_boost_order(picks, pos, w, n_picks);
        guarantee(rq, ranked, n, picks, pos, w, &n_picks);
        rq->explore_weight = w;
    }
    rq->n_explore_scored = rq->n_explore_pool;
    rq->explore_pool = picks;
    rq->n_explore_pool = n_picks;
    rq->explore_rank_pos = pos;
}

/* How the pool was ordered, for the trace: "rank" with the best pick's rank
 * position, "rank (none within the top 50%)" when nothing qualified, or
 * "channel" when the ranker did not run. */
static const char *pool_order(struct cascade_orch_rq *rq)
{
    if (rq->n_explore_scored == 0)
        return "channel";
    if (rq->n_explore_pool == 0)
        return cascade_arena_printf(rq->arena, "rank scored=%zu best_rank=none within top %g%%",
                                    rq->n_explore_scored, 100.0 * rq->explore.max_rank_share);
    if (rq->explore_guaranteed)
        return cascade_arena_printf(
            rq->arena, "rank scored=%zu qualified=%zu best_rank=%u guaranteed=%" PRIu64,
            rq->n_explore_scored, rq->n_explore_pool, (unsigned)rq->explore_rank_pos[0],
            rq->explore_guaranteed);
    return cascade_arena_printf(rq->arena, "rank scored=%zu qualified=%zu best_rank=%u",
                                rq->n_explore_scored, rq->n_explore_pool,
                                (unsigned)rq->explore_rank_pos[0]);
}

/* Add position p to the ascending set pos[0..*n) (room for count), unless
 * it is outside the list or already there. */
static void add_position(uint32_t *pos, size_t *n, uint32_t count, unsigned long p)
{
    size_t j = *n;
    if (p >= count)
        return;
    for (size_t i = 0; i < *n; i++)
        if (pos[i] == p)
            return;
    for (; j > 0 && pos[j - 1] > p; j--) /* insertion sort: a few positions */
        pos[j] = pos[j - 1];
    pos[j] = (uint32_t)p;
    (*n)++;
}

/* The experiment's exploration.positions ("3,8": 0-based, comma-separated)
 * into pos; false when it is absent or not such a list (then ignored). */
static bool experiment_positions(const struct cascade_orch_rq *rq, uint32_t *pos, size_t *n)
{
    const char *v = cascade_exp_param(rq->exp, "exploration.positions");
    *n = 0;
    if (v == NULL)
        return false;
    for (const char *at = v;;) {
        char *end;
        if (*at < '0' || *at > '9')
            return (*n = 0), false;
        unsigned long p = strtoul(at, &end, 10);
        add_position(pos, n, rq->count, p);
        if (*end == '\0')
            return true;
        if (*end != ',')
            return (*n = 0), false;
        at = end + 1;
    }
}

/* This request's exploration positions into pos (room for rq->count),
 * ascending, those that fit the list: the experiment's
 * exploration.positions, else the exploration slots of orchestrator.slots
 * when the config lists any, else the share/position formula (explore.h).
 * None when the share is 0. */
static size_t explore_positions(const struct cascade_orch_rq *rq, uint32_t *pos)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    size_t n = 0;
    bool listed = false;
    if (!(rq->explore.share > 0.0))
        return 0;
    if (experiment_positions(rq, pos, &n))
        return n;
    for (size_t i = 0; i < cfg->n_slots; i++)
        if (cfg->slots[i].item_id == 0) {
            listed = true;
            add_position(pos, &n, rq->count, cfg->slots[i].position);
        }
    if (listed)
        return n;
    n = cascade_explore_slots(rq->count, rq->explore.share);
    for (size_t j = 0; j < n; j++)
        pos[j] = (uint32_t)cascade_explore_position(j, n, rq->count, rq->explore.position);
    return n;
}

/* Write "8,9" (the positions) into the arena. */
static const char *positions_text(struct cascade_orch_rq *rq, const uint32_t *pos, size_t n)
{
    char buf[1024];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < n && off + 24 < sizeof buf; j++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%u", j ? "," : "", pos[j]);
    return cascade_arena_strdup(rq->arena, buf);
}

/* The exploration slots (explore.h) after the `reserved` item slots in
 * slots[]; the trace entry "exploration". Returns the number added. */
static size_t explore(struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *ranked, size_t n,
                      size_t reserved, struct cascade_slot *slots)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    uint32_t *pos = cascade_arena_calloc(rq->arena, rq->count + 1, sizeof *pos);
    size_t n_pos = pos ? explore_positions(rq, pos) : 0;
    if (n_pos == 0)
        return 0;
    /* With an impression target only boosted (pool) items count as the
     * channel's share: the re-ranker's choice of a new item past its target
     * or window does not take a boosted item's slot. */
    const char *counted = rq->explore_weight ? NULL : cfg->explore_channel;
    size_t have = cascade_merge_count_channel(ranked, n, cfg->explore_channel);
    size_t added = cascade_explore_fill(ranked, n, rq->count, reserved, pos, n_pos,
                                        rq->explore_pool, rq->n_explore_pool, counted, slots);
    cascade_orch__report(
        rq, &(struct cascade_orch_outcome){
                .stage = "exploration",
                .message = cascade_arena_printf(
                    rq->arena,
                    "channel=%s slots=%zu positions=%s order=%s chosen_by_rerank=%zu inserted=%zu",
                    cfg->explore_channel, n_pos, positions_text(rq, pos, n_pos), pool_order(rq),
                    have, added),
                .items_in = rq->n_explore_pool,
                .items_out = added});
    return added;
}

/* The ranked copy of an item (scores, attributes), when the ranker kept it. */
static Cascade__V1__Candidate *scored_copy(const struct cascade_orch_rq *rq,
                                           Cascade__V1__Candidate *bare)
{
    for (size_t i = 0; i < rq->n_ranked; i++)
        if (rq->ranked[i] && rq->ranked[i]->item_id == bare->item_id)
            return rq->ranked[i];
    return bare;
}

/* The item slots still holding an item, into slots[]; the trace entry
 * "slots" (when the request or the config has any). Returns the number. */
static size_t item_slots(struct cascade_orch_rq *rq, struct cascade_slot *slots)
{
    size_t n = 0;
    uint32_t *pos = cascade_arena_calloc(rq->arena, rq->n_fixed + 1, sizeof *pos);
    if (rq->n_fixed == 0 || pos == NULL)
        return 0;
    for (size_t i = 0; i < rq->n_fixed; i++)
        if (rq->fixed[i].cand) {
            slots[n] = rq->fixed[i];
            slots[n].cand = scored_copy(rq, rq->fixed[i].cand);
            pos[n++] = rq->fixed[i].position;
        }
    cascade_orch__report(rq,
                         &(struct cascade_orch_outcome){
                             .stage = "slots",
                             .message = cascade_arena_printf(
                                 rq->arena, "request=%zu config=%zu filtered_out=%zu positions=%s",
                                 rq->n_fixed_asked, rq->n_fixed - rq->n_fixed_asked,
                                 rq->n_fixed_dropped, positions_text(rq, pos, n)),
                             .items_in = rq->n_fixed,
                             .items_out = n});
    return n;
}

int cascade_orch__finalize(struct cascade_orch_rq *rq)
{
    size_t n = rq->n < rq->count ? rq->n : rq->count;
    struct cascade_slot *slots =
        cascade_arena_calloc(rq->arena, rq->n_fixed + rq->count + 1, sizeof *slots);
    if (slots == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    size_t n_slots = item_slots(rq, slots);
    n_slots += explore(rq, rq->cands, n, n_slots, slots + n_slots);
    if (cascade_slots_place(rq->cands, n, rq->count, slots, n_slots, rq->arena, &rq->placed,
                            &rq->placed_from, &rq->n_placed))
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    rq->cands = rq->placed;
    rq->n = rq->n_placed;
    return 0;
}

/* ------------------------------------------------------------ recall cache */

static bool shown_item(const Cascade__V1__RecommendResponse *resp, uint64_t id)
{
    for (size_t i = 0; i < resp->n_items; i++)
        if (resp->items[i]->item_id == id)
            return true;
    return false;
}

/* The recall cache's changes for this request: shown items leave it, what
 * the ranker kept but the final list does not show enters it (only when the
 * rank stage ran). false when the cache is off or there is nothing to do. */
static bool cache_update(struct cascade_orch_rq *rq, const Cascade__V1__RecommendResponse *resp,
                         struct cascade_user_cache_update *u)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    if (!cfg->cache_enabled)
        return false;
    uint64_t *shown = cascade_arena_calloc(rq->arena, resp->n_items + 1, sizeof *shown);
    uint64_t *unshown = cascade_arena_calloc(rq->arena, rq->n_ranked + 1, sizeof *unshown);
    *u = (struct cascade_user_cache_update){.shown = shown,
                                            .unshown = unshown,
                                            .capacity = cfg->cache_capacity,
                                            .ttl_s = cfg->cache_ttl_s};
    if (shown == NULL || unshown == NULL) {
        CASCADE_WARN(rq->user->request_id, "out of memory updating the recall cache");
        return false;
    }
    for (size_t i = 0; i < resp->n_items; i++)
        shown[u->n_shown++] = resp->items[i]->item_id;
    for (size_t i = 0; i < rq->n_ranked; i++)
        if (rq->ranked[i] && !shown_item(resp, rq->ranked[i]->item_id))
            unshown[u->n_unshown++] = rq->ranked[i]->item_id;
    return u->n_shown > 0 || u->n_unshown > 0;
}

/* The items the ranker scored but cut (hardneg_log.h), at most per_request,
 * into *out (arena). 0 when the log is off or the rank stage did not run. */
static size_t hard_negatives(struct cascade_orch_rq *rq, const Cascade__V1__RecommendResponse *resp,
                             uint64_t **out)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    if (!cfg->hardneg_enabled || rq->rank_scored == NULL)
        return 0;
    uint64_t *shown = cascade_arena_calloc(rq->arena, resp->n_items + 1, sizeof *shown);
    *out = cascade_arena_calloc(rq->arena, cfg->hardneg_per_request, sizeof **out);
    if (shown == NULL || *out == NULL)
        return 0;
    for (size_t i = 0; i < resp->n_items; i++)
        shown[i] = resp->items[i]->item_id;
    struct cascade_hardneg_cut cut = {.scored = rq->rank_scored,
                                      .n_scored = rq->n_rank_scored,
                                      .ranked = rq->ranked,
                                      .n_ranked = rq->n_rank_returned,
                                      .kept = rq->n_ranked,
                                      .shown = shown,
                                      .n_shown = resp->n_items};
    return cascade_hardneg_select(&cut, *out, cfg->hardneg_per_request);
}

/* How one of the two list writes went. */
struct list_write {
    size_t sent; /* commands queued */
    int rc;
    const char *error; /* arena copy of the first failure's message */
};

static void note_failure(struct cascade_orch_rq *rq, cascade_redis *r, struct list_write *w, int rc)
{
    if (rc == 0 || w->rc != 0)
        return;
    w->rc = rc;
    w->error = cascade_arena_strdup(rq->arena, r ? cascade_redis_error(r) : "out of memory");
}

static void report_cache(struct cascade_orch_rq *rq, const struct cascade_user_cache_update *u,
                         const struct list_write *w, int64_t latency_us)
{
    struct cascade_orch_outcome out = {.stage = "cache",
                                       .latency_us = latency_us,
                                       .items_in = u->n_shown,
                                       .items_out = u->n_unshown};
    if (w->rc) {
        out.status = w->rc == CASCADE_EUNAVAILABLE ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_INTERNAL;
        out.message = cascade_arena_printf(
            rq->arena, "%s (skipped: ranked-but-unshown items are not cached)", w->error);
        out.degraded = true;
    } else {
        out.message = cascade_arena_printf(rq->arena, "removed %zu shown, pushed %zu unshown",
                                           u->n_shown, u->n_unshown);
    }
    cascade_orch__report(rq, &out);
}

/* The hard-negative log is training data: a failure is counted and logged,
 * and traced, but never degrades the answer. */
static void report_hardneg(struct cascade_orch_rq *rq, size_t n, const struct list_write *w,
                           int64_t latency_us)
{
    struct cascade_orch_outcome out = {
        .stage = "hardneg", .latency_us = latency_us, .items_in = n, .items_out = w->rc ? 0 : n};
    if (w->rc) {
        cascade_metric_inc(rq->o->hardneg_failures);
        CASCADE_WARN(rq->user->request_id, "hard-negative log not written for user %s: %s",
                     rq->user->user_id, w->error ? w->error : "");
        out.status = w->rc == CASCADE_EUNAVAILABLE ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_INTERNAL;
        out.message =
            cascade_arena_printf(rq->arena, "%s (items the ranker cut are not logged)", w->error);
    } else {
        cascade_metric_add(rq->o->hardneg_logged, (double)n);
        out.message = cascade_arena_printf(rq->arena, "logged %zu items the ranker cut", n);
    }
    cascade_orch__report(rq, &out);
}

/* ------------------------------------------------------------ serve log */

/* The serve record's reason for an answer item: what its own reason field says. */
static char serve_reason(const Cascade__V1__RecommendedItem *it)
{
    switch (it->reason) {
    case CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION:
        return CASCADE_SERVE_REASON_EXPLORED;
    case CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED:
        return CASCADE_SERVE_REASON_INSERTED;
    default:
        return CASCADE_SERVE_REASON_RANKED;
    }
}

/* The answer's serve record (items in rq's arena); false when the serve
 * log is off, the answer has no items, or out of memory (counted as a
 * failure). */
static bool serve_record(struct cascade_orch_rq *rq, const Cascade__V1__RecommendResponse *resp,
                         struct cascade_serve_record *rec)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    if (!cfg->serve_log_enabled || resp->n_items == 0)
        return false;
    struct cascade_serve_item *items =
        cascade_arena_calloc(rq->arena, resp->n_items, sizeof *items);
    if (items == NULL) {
        cascade_metric_inc(rq->o->serve_log_failures);
        CASCADE_WARN(rq->user->request_id, "serve record not written for user %s: out of memory",
                     rq->user->user_id);
        return false;
    }
    for (size_t i = 0; i < resp->n_items; i++)
        items[i] = (struct cascade_serve_item){.item_id = resp->items[i]->item_id,
                                               .reason = serve_reason(resp->items[i]),
                                               .rank_score = resp->items[i]->rank_score,
                                               .rerank_score = resp->items[i]->rerank_score};
    *rec = (struct cascade_serve_record){.request_id = rq->user->request_id,
                                         .user_id = rq->user->user_id,
                                         .ts_ms = cascade_wall_ms(),
                                         .exp = rq->exp,
                                         .track = rq->track,
                                         .degraded = rq->report.degraded,
                                         .items = items,
                                         .n_items = resp->n_items};
    return true;
}

static void report_serve(struct cascade_orch_rq *rq, const struct list_write *w)
{
    if (w->rc) {
        cascade_metric_inc(rq->o->serve_log_failures);
        CASCADE_WARN(rq->user->request_id, "serve record not written for user %s: %s",
                     rq->user->user_id, w->error ? w->error : "");
    } else {
        cascade_metric_inc(rq->o->serve_log_written);
    }
}

/* The recall cache update, the hard-negative log and the serve record share
 * one pipeline: all are queued, then every reply read, so together they
 * cost one round trip (two when Redis answered the cache's EVALSHA with
 * NOSCRIPT: the update is sent again with the script body once the
 * pipeline is read). */
static void write_after_answer(struct cascade_orch_rq *rq,
                               const Cascade__V1__RecommendResponse *resp)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    struct cascade_user_cache_update u;
    struct cascade_serve_record rec;
    struct list_write wc = {0}, wh = {0}, ws = {0};
    uint64_t *hard = NULL;
    bool resend = false;
    if (rq->o->redis == NULL)
        return;
    bool cache = cache_update(rq, resp, &u);
    size_t n_hard = hard_negatives(rq, resp, &hard);
    bool serve = serve_record(rq, resp, &rec);
    if (!cache && n_hard == 0 && !serve)
        return;
    int64_t t0 = cascade_now_us();
    const char *uid = rq->user->user_id;
    cascade_redis *r = cascade_redis_pool_get(rq->o->redis);
    cascade_redis_set_deadline(r, rq->deadline_ms);
    if (r == NULL) {
        note_failure(rq, r, &wc, CASCADE_ENOMEM);
        note_failure(rq, r, &wh, CASCADE_ENOMEM);
        note_failure(rq, r, &ws, CASCADE_ENOMEM);
    } else {
        if (cache)
            note_failure(
                rq, r, &wc,
                cascade_user_cache_append(r, &rq->o->cache_script, rq->o->ns, uid, &u, &wc.sent));
        /* no reconnect attempt on the response path */
        if (wc.rc == CASCADE_EUNAVAILABLE) {
            note_failure(rq, r, &wh, wc.rc);
            note_failure(rq, r, &ws, wc.rc);
        } else {
            if (n_hard)
                note_failure(rq, r, &wh,
                             cascade_hardneg_log_append(r, rq->o->ns, uid, hard, n_hard,
                                                        cfg->hardneg_cap, cfg->hardneg_ttl_s,
                                                        &wh.sent));
            if (serve && wh.rc == CASCADE_EUNAVAILABLE)
                note_failure(rq, r, &ws, wh.rc);
            else if (serve)
                note_failure(rq, r, &ws,
                             cascade_serve_log_append(r, rq->o->ns, &rec, cfg->serve_log_max_len,
                                                      rq->arena, &ws.sent));
        }
        note_failure(rq, r, &wc, cascade_user_cache_read(r, wc.sent, &resend));
        note_failure(rq, r, &wh, cascade_hardneg_log_read(r, wh.sent));
        note_failure(rq, r, &ws, cascade_user_list_read(r, ws.sent));
        /* Redis lost the script (restart, SCRIPT FLUSH): one more round trip,
         * unless the connection dropped meanwhile. */
        bool dropped = wh.rc == CASCADE_EUNAVAILABLE || ws.rc == CASCADE_EUNAVAILABLE;
        if (resend && dropped)
            note_failure(rq, r, &wc, CASCADE_EUNAVAILABLE);
        else if (resend)
            note_failure(rq, r, &wc, cascade_user_cache_resend(r, rq->o->ns, uid, &u));
    }
    int64_t latency_us = cascade_now_us() - t0;
    if (cache)
        report_cache(rq, &u, &wc, latency_us);
    if (n_hard)
        report_hardneg(rq, n_hard, &wh, latency_us);
    if (serve)
        report_serve(rq, &ws);
}

/* ------------------------------------------------------------ contribution */

/* One trace entry per channel called: merge/<channel> with items_in =
 * candidates returned, items_out = kept in the merged list, and the final
 * count in the message. */
static void report_contribution(struct cascade_orch_rq *rq)
{
    if (!rq->report.want_trace)
        return;
    for (size_t j = 0; j < rq->n_runs; j++) {
        const struct cascade_orch_channel_run *run = &rq->runs[j];
        size_t final = cascade_merge_count_channel(rq->cands, rq->n, run->name);
        const char *stage = cascade_arena_printf(rq->arena, "merge/%s", run->name);
        const char *msg = cascade_arena_printf(
            rq->arena, "mix=%s weight=%g quota=%u returned=%zu kept=%zu final=%zu",
            rq->cold_start ? "cold_start" : "normal", run->weight, run->quota, run->returned,
            run->kept, final);
        if (stage == NULL || msg == NULL)
            return;
        cascade_orch__report(rq, &(struct cascade_orch_outcome){.stage = stage,
                                                                .message = msg,
                                                                .items_in = run->returned,
                                                                .items_out = run->kept});
    }
}

void cascade_orch__after_response(struct cascade_orch_rq *rq,
                                  const Cascade__V1__RecommendResponse *resp)
{
    write_after_answer(rq, resp);
    report_contribution(rq);
}
