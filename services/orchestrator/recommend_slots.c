/* Recommend, item slots: the request's slots and the items pinned in
 * orchestrator.slots become bare candidates that go through the Filter call
 * with the recalled candidates (so an inserted item the user has seen,
 * consumed or blocked is never served), then wait for the final list
 * (recommend_final.c places them); each answer item's reason and source. */
#include <string.h>

#include "error.h"
#include "log.h"
#include "recommend_internal.h"

static int add_fixed(struct cascade_orch_rq *rq, uint32_t position, uint64_t item_id,
                     const char *source)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(rq->arena, sizeof *c);
    if (c == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__candidate__init(c);
    c->item_id = item_id;
    rq->fixed[rq->n_fixed++] =
        (struct cascade_slot){.position = position,
                              .cand = c,
                              .reason = CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED,
                              .source = source};
    return 0;
}

int cascade_orch__slots_setup(struct cascade_orch_rq *rq, const Cascade__V1__RecommendRequest *req)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    int rc = 0;
    rq->fixed = cascade_arena_calloc(rq->arena, req->n_slots + cfg->n_slots + 1, sizeof *rq->fixed);
    if (rq->fixed == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_slots && rc == 0; i++)
        rc = add_fixed(rq, req->slots[i]->position, req->slots[i]->item_id, req->slots[i]->source);
    rq->n_fixed_asked = rq->n_fixed;
    for (size_t i = 0; i < cfg->n_slots && rc == 0; i++)
        if (cfg->slots[i].item_id && cfg->slots[i].position < rq->count)
            rc = add_fixed(rq, cfg->slots[i].position, cfg->slots[i].item_id, cfg->slots[i].source);
    return rc;
}

void cascade_orch__slots_to_filter(struct cascade_orch_rq *rq)
{
    rq->n_filter_extra = 0;
    if (rq->n_fixed == 0)
        return;
    Cascade__V1__Candidate **list =
        cascade_arena_calloc(rq->arena, rq->n + rq->n_fixed + 1, sizeof *list);
    rq->filter_extra = cascade_arena_calloc(rq->arena, rq->n_fixed + 1, sizeof *rq->filter_extra);
    if (list == NULL || rq->filter_extra == NULL) {
        CASCADE_WARN(rq->user->request_id, "out of memory sending slot items to the filter");
        return; /* the slot items go unfiltered, as when the filter is down */
    }
    memcpy(list, rq->cands, rq->n * sizeof *list);
    size_t n = rq->n;
    for (size_t i = 0; i < rq->n_fixed; i++) {
        Cascade__V1__Candidate *c = rq->fixed[i].cand;
        if (c && !cascade_slots_has_item(list, n, c->item_id))
            list[n++] = rq->filter_extra[rq->n_filter_extra++] = c;
    }
    rq->cands = list;
    rq->n = n;
}

/* By id: an appended item was no candidate (slots_to_filter checks), and
 * the filter's answer may hold copies rather than our pointers. */
static bool is_extra(const struct cascade_orch_rq *rq, const Cascade__V1__Candidate *c)
{
    return cascade_slots_has_item(rq->filter_extra, rq->n_filter_extra, c->item_id);
}

size_t cascade_orch__slots_after_filter(struct cascade_orch_rq *rq, Cascade__V1__Candidate **kept,
                                        size_t n_kept)
{
    Cascade__V1__Candidate **list = kept ? kept : rq->cands;
    size_t n = kept ? n_kept : rq->n, m = 0;
    if (kept)
        for (size_t i = 0; i < rq->n_fixed; i++)
            if (rq->fixed[i].cand &&
                !cascade_slots_has_item(kept, n_kept, rq->fixed[i].cand->item_id)) {
                rq->fixed[i].cand = NULL;
                rq->n_fixed_dropped++;
            }
    for (size_t i = 0; i < n; i++)
        if (!is_extra(rq, list[i]))
            list[m++] = list[i];
    rq->n_filter_extra = 0;
    if (!kept)
        rq->n = m;
    return m;
}

Cascade__V1__ItemReason cascade_orch__item_reason(const struct cascade_orch_rq *rq,
                                                  const Cascade__V1__Candidate *c,
                                                  const char **source)
{
    *source = "";
    for (size_t i = 0; i < rq->n_placed; i++)
        if (rq->placed_from[i] && rq->placed[i]->item_id == c->item_id) {
            *source = rq->placed_from[i]->source;
            return rq->placed_from[i]->reason;
        }
    return CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED;
}
