/* Feedback: validates user behaviour events (bounds: feedback_event.h) and
 * records each batch in one atomic, idempotent Redis script
 * (cascade_store_record_events): the event stream for incremental training,
 * the user's last-n list and consumed set so the next Recommend sees them
 * (ItemCF seeds, already-consumed filter), and the user's live sets:
 * dislike → blocked items, hide_author → blocked authors, follow → followed
 * authors (the author from the item record). */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "events.h"
#include "feedback_event.h"
#include "log.h"
#include "orch_internal.h"
#include "request.h"
#include "store.h"

static int validate_events(const struct cascade_orch_call *call,
                           const Cascade__V1__FeedbackRequest *req)
{
    if (req->n_events > CASCADE_ORCH_MAX_EVENTS)
        return cascade_orch__fail(call, CASCADE_ETOOBIG,
                                  "events: at most %d events per Feedback call, got %zu",
                                  CASCADE_ORCH_MAX_EVENTS, req->n_events);
    int64_t now_s = cascade_wall_s();
    for (size_t i = 0; i < req->n_events; i++) {
        int rc = cascade_feedback_check_event(req->events[i], i, now_s, call->err, call->errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int64_t event_time(const Cascade__V1__Event *e)
{
    return e->time_s > 0 ? e->time_s : cascade_wall_s();
}

/* A Redis failure keeps its code: EUNAVAILABLE (unreachable) answers
 * UNAVAILABLE, an error reply (EIO) INTERNAL. */
static int redis_failure(const struct cascade_orch_call *call, cascade_redis *r, int rc,
                         const char *what)
{
    return cascade_orch__fail(call, rc, "feedback: %s: %s", what, cascade_redis_error(r));
}

static bool needs_author(const Cascade__V1__Event *e)
{
    uint32_t type = (uint32_t)e->type;
    return type == CASCADE_EV_HIDE_AUTHOR || type == CASCADE_EV_FOLLOW;
}

/* The author of every event's item for the events that need one (one MGET
 * for all of them); authors[i] = 0 when unknown or not needed. */
static int event_authors(cascade_orch *o, const struct cascade_orch_call *call, cascade_redis *r,
                         const Cascade__V1__FeedbackRequest *req, uint64_t *authors)
{
    size_t n = 0;
    uint64_t *ids = cascade_arena_calloc(call->arena, req->n_events + 1, sizeof *ids);
    size_t *at = cascade_arena_calloc(call->arena, req->n_events + 1, sizeof *at);
    if (ids == NULL || at == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_events; i++)
        if (needs_author(req->events[i])) {
            ids[n] = req->events[i]->item_id;
            at[n++] = i;
        }
    if (n == 0)
        return 0;
    cascade_v1_ItemRecord *recs = cascade_arena_calloc(call->arena, n, sizeof *recs);
    bool *found = cascade_arena_calloc(call->arena, n, sizeof *found);
    if (recs == NULL || found == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    int rc = cascade_store_get_items(r, o->ns, ids, n, recs, found);
    if (rc)
        return redis_failure(call, r, rc, "reading item authors");
    for (size_t k = 0; k < n; k++) {
        authors[at[k]] = found[k] ? recs[k].author_id : 0;
        if (authors[at[k]] == 0)
            CASCADE_WARN(call->request_id,
                         "feedback: %s on item %llu: the item has no record with an author; "
                         "only logged",
                         cascade_event_type_name((uint32_t)req->events[at[k]]->type),
                         (unsigned long long)ids[k]);
    }
    return 0;
}

/* The live set an event adds to, if any: dislike → blocked items (the
 * item), hide_author → blocked authors and follow → follows (the author, when
 * the item has a record with one). */
static void live_set_of(const Cascade__V1__Event *e, uint64_t author,
                        struct cascade_store_event *out)
{
    uint32_t type = (uint32_t)e->type;
    out->live_set = CASCADE_LIVE_SET_NONE;
    out->live_set_member = 0;
    if (type == CASCADE_EV_DISLIKE) {
        out->live_set = CASCADE_LIVE_SET_BLOCKED_ITEMS;
        out->live_set_member = e->item_id;
    } else if (type == CASCADE_EV_HIDE_AUTHOR && author) {
        out->live_set = CASCADE_LIVE_SET_BLOCKED_AUTHORS;
        out->live_set_member = author;
    } else if (type == CASCADE_EV_FOLLOW && author) {
        out->live_set = CASCADE_LIVE_SET_FOLLOWS;
        out->live_set_member = author;
    }
}

/* Turn the validated request into the records the store writes: id,
 * fields, the interaction of an interest event (positive interest weight:
 * not impressions, plays or dislikes) and the live-set member. */
static int build_records(const struct cascade_orch_call *call,
                         const Cascade__V1__FeedbackRequest *req, const uint64_t *authors,
                         struct cascade_store_event *recs)
{
    char *ids =
        cascade_arena_alloc(call->arena, req->n_events * (CASCADE_FEEDBACK_EVENT_ID_LEN + 1));
    if (ids == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_events; i++) {
        const Cascade__V1__Event *e = req->events[i];
        struct cascade_store_event *rec = &recs[i];
        char *id = ids + i * (CASCADE_FEEDBACK_EVENT_ID_LEN + 1);
        cascade_feedback_event_id(e, id);
        memset(rec, 0, sizeof *rec);
        rec->event_id = id;
        rec->user_id = e->user_id;
        rec->item_id = e->item_id;
        rec->type = cascade_event_type_name((uint32_t)e->type);
        rec->value = e->value;
        rec->time_s = event_time(e);
        rec->request_id = e->request_id;
        float weight = cascade_event_interest_weight((uint32_t)e->type);
        rec->interest = weight > 0.0f;
        if (rec->interest) {
            rec->interaction = (cascade_v1_Interaction)cascade_v1_Interaction_init_zero;
            rec->interaction.item_id = e->item_id;
            rec->interaction.type = (uint32_t)e->type;
            rec->interaction.time_s = rec->time_s;
            rec->interaction.weight = weight;
        }
        live_set_of(e, authors[i], rec);
    }
    return 0;
}

/* Record every event once, all or nothing (cascade_store_record_events).
 * Redis must start the batch before min(the call's deadline,
 * feedback.timeout_ms) from now, the time this call waits for it: a batch
 * that reaches Redis after the caller was answered UNAVAILABLE records
 * nothing, so the caller's retry is the only copy. */
static int record_events(cascade_orch *o, const struct cascade_orch_call *call, cascade_redis *r,
                         const Cascade__V1__FeedbackRequest *req, size_t *recorded)
{
    uint64_t *authors = cascade_arena_calloc(call->arena, req->n_events + 1, sizeof *authors);
    struct cascade_store_event *recs =
        cascade_arena_calloc(call->arena, req->n_events + 1, sizeof *recs);
    int rc;
    if (authors == NULL || recs == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    if ((rc = event_authors(o, call, r, req, authors)) ||
        (rc = build_records(call, req, authors, recs)))
        return rc;
    int64_t wait_ms = o->cfg.feedback_timeout_ms;
    int64_t left_ms = cascade_ms_left(call->deadline_ms);
    if (left_ms < wait_ms)
        wait_ms = left_ms;
    if (wait_ms <= 0)
        return cascade_orch__fail(call, CASCADE_ETIMEDOUT,
                                  "feedback: the deadline passed before the events were recorded");
    struct cascade_store_event_limits lim = {
        .events_maxlen = o->cfg.events_maxlen,
        .lastn_max = o->cfg.lastn_max,
        .dedupe_window_ms = o->cfg.feedback_dedupe_window_s * 1000,
        .dedupe_max = o->cfg.feedback_dedupe_max,
        .not_after_ms = cascade_wall_ms() + wait_ms,
    };
    rc = cascade_store_record_events(r, o->ns, recs, req->n_events, &lim, &o->feedback_script,
                                     recorded);
    if (rc == CASCADE_EIO && strstr(cascade_redis_error(r), "EXPIRED"))
        rc = CASCADE_EUNAVAILABLE; /* Redis was too slow; nothing recorded, retry */
    return rc ? redis_failure(call, r, rc, "recording the events") : 0;
}

int cascade_orch_feedback(cascade_orch *o, const struct cascade_orch_call *call,
                          const Cascade__V1__FeedbackRequest *req,
                          Cascade__V1__FeedbackResponse **out)
{
    int rc;
    size_t recorded = 0;
    *out = NULL;
    if ((rc = validate_events(call, req)))
        return rc;
    Cascade__V1__FeedbackResponse *resp = cascade_arena_alloc(call->arena, sizeof *resp);
    if (resp == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__feedback_response__init(resp);
    if (req->n_events > 0) {
        cascade_redis *r = o->redis ? cascade_redis_pool_get(o->redis) : NULL;
        cascade_redis_set_deadline(r, call->deadline_ms);
        if (r == NULL)
            return cascade_orch__fail(call, CASCADE_EUNAVAILABLE,
                                      "feedback: no Redis connection available");
        if ((rc = record_events(o, call, r, req, &recorded)))
            return rc;
    }
    /* Duplicates of events already recorded count as accepted: the caller's
     * retry succeeded. */
    resp->accepted = (uint32_t)req->n_events;
    CASCADE_DEBUG(call->request_id, "feedback: %zu events, %zu new", req->n_events, recorded);
    *out = resp;
    return 0;
}
