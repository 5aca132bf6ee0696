/* Recommend, final steps: the exploration share of the final list (items of
 * the exploration channel that survived the filter, sent to the ranker so
 * they carry predictions and attributes, and inserted at fixed positions when
 * the re-ranker did not pick them), the user's recall cache (ranked-but-
 * unshown items in, shown items out) and the per-channel contribution in the
 * debug trace. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "explore.h"
#include "log.h"
#include "merge.h"
#include "recommend_internal.h"
#include "user_cache.h"

/* ------------------------------------------------------------ exploration */

void cascade_orch__keep_explore_pool(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    rq->explore_pool = NULL;
    rq->n_explore_pool = 0;
    if (!(cfg->explore_share > 0.0) || rq->n == 0)
        return;
    if (cascade_explore_pool(rq->cands, rq->n, cfg->explore_channel, rq->arena, &rq->explore_pool,
                             &rq->n_explore_pool))
        CASCADE_WARN(rq->user->request_id, "out of memory keeping exploration candidates");
}

static size_t explore_slots(const struct cascade_orch_rq *rq)
{
    if (rq->n_explore_pool == 0)
        return 0;
    return cascade_explore_slots(rq->count, rq->o->cfg.explore_share);
}

static bool in_list(Cascade__V1__Candidate *const *list, size_t n, uint64_t item_id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && list[i]->item_id == item_id)
            return true;
    return false;
}

bool cascade_orch__reserve_explore(struct cascade_orch_rq *rq)
{
    size_t slots = explore_slots(rq);
    size_t first = slots < rq->n_explore_pool ? slots : rq->n_explore_pool;
    if (first == 0)
        return false;
    Cascade__V1__Candidate **list =
        cascade_arena_calloc(rq->arena, rq->n + first + 1, sizeof *list);
    if (list == NULL) {
        CASCADE_WARN(rq->user->request_id, "out of memory reserving exploration candidates");
        return false;
    }
    if (rq->n)
        memcpy(list, rq->cands, rq->n * sizeof *list);
    size_t n = rq->n;
    for (size_t i = 0; i < first; i++)
        if (!in_list(list, rq->n, rq->explore_pool[i]->item_id))
            list[n++] = rq->explore_pool[i];
    rq->cands = list;
    rq->n = n;
    return true;
}

void cascade_orch__adopt_ranked(struct cascade_orch_rq *rq, Cascade__V1__Candidate *const *ranked,
                                size_t n)
{
    for (size_t i = 0; i < rq->n_explore_pool; i++)
        for (size_t j = 0; j < n; j++)
            if (ranked[j] && ranked[j]->item_id == rq->explore_pool[i]->item_id) {
                rq->explore_pool[i] = ranked[j];
                break;
            }
}

/* Write "5,15" (the slot positions) into the arena. */
static const char *slot_positions(struct cascade_orch_rq *rq, size_t slots)
{
    char buf[512];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < slots && off + 24 < sizeof buf; j++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%zu", j ? "," : "",
                                cascade_explore_position(j, slots, rq->count));
    return cascade_arena_strdup(rq->arena, buf);
}

static void explore(struct cascade_orch_rq *rq, Cascade__V1__Candidate **list)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    size_t slots = cascade_explore_slots(rq->count, cfg->explore_share);
    size_t inserted = 0;
    if (slots == 0)
        return;
    size_t have = cascade_merge_count_channel(list, rq->n, cfg->explore_channel);
    cascade_explore_insert(list, &rq->n, rq->count, rq->explore_pool, rq->n_explore_pool,
                           cfg->explore_channel, cfg->explore_share, &inserted);
    cascade_orch__report(
        rq,
        &(struct cascade_orch_outcome){
            .stage = "exploration",
            .message = cascade_arena_printf(
                rq->arena, "channel=%s slots=%zu positions=%s chosen_by_rerank=%zu inserted=%zu",
                cfg->explore_channel, slots, slot_positions(rq, slots), have, inserted),
            .items_in = rq->n_explore_pool,
            .items_out = inserted});
}

int cascade_orch__finalize(struct cascade_orch_rq *rq)
{
    size_t n = rq->n < rq->count ? rq->n : rq->count;
    Cascade__V1__Candidate **list = cascade_arena_calloc(rq->arena, rq->count + 1, sizeof *list);
    if (list == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    if (n)
        memcpy(list, rq->cands, n * sizeof *list);
    rq->cands = list;
    rq->n = n;
    explore(rq, list);
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

/* Shown items leave the cache; what the ranker scored but the final list does
 * not show enters it (only when the rank stage ran). */
static void update_cache(struct cascade_orch_rq *rq, const Cascade__V1__RecommendResponse *resp)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    if (!cfg->cache_enabled || rq->o->redis == NULL)
        return;
    uint64_t *shown = cascade_arena_calloc(rq->arena, resp->n_items + 1, sizeof *shown);
    uint64_t *unshown = cascade_arena_calloc(rq->arena, rq->n_ranked + 1, sizeof *unshown);
    struct cascade_user_cache_update u = {.shown = shown,
                                          .unshown = unshown,
                                          .capacity = cfg->cache_capacity,
                                          .ttl_s = cfg->cache_ttl_s};
    if (shown == NULL || unshown == NULL) {
        CASCADE_WARN(rq->user->request_id, "out of memory updating the recall cache");
        return;
    }
    for (size_t i = 0; i < resp->n_items; i++)
        shown[u.n_shown++] = resp->items[i]->item_id;
    for (size_t i = 0; i < rq->n_ranked; i++)
        if (rq->ranked[i] && !shown_item(resp, rq->ranked[i]->item_id))
            unshown[u.n_unshown++] = rq->ranked[i]->item_id;
    if (u.n_shown == 0 && u.n_unshown == 0)
        return;
    int64_t t0 = cascade_now_us();
    cascade_redis *r = cascade_redis_pool_get(rq->o->redis);
    int rc = r ? cascade_user_cache_update(r, rq->o->ns, rq->user->user_id, &u) : CASCADE_ENOMEM;
    struct cascade_orch_outcome out = {.stage = "cache",
                                       .latency_us = cascade_now_us() - t0,
                                       .items_in = u.n_shown,
                                       .items_out = u.n_unshown};
    if (rc) {
        out.status = rc == CASCADE_EUNAVAILABLE ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_INTERNAL;
        out.message =
            cascade_arena_printf(rq->arena, "%s (skipped: ranked-but-unshown items are not cached)",
                                 r ? cascade_redis_error(r) : "out of memory");
        out.degraded = true;
    } else {
        out.message = cascade_arena_printf(rq->arena, "removed %zu shown, pushed %zu unshown",
                                           u.n_shown, u.n_unshown);
    }
    cascade_orch__report(rq, &out);
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
    update_cache(rq, resp);
    report_contribution(rq);
}
