/* Feedback: validates user behaviour events, appends them to the Redis event
 * stream (fields user, item, type, value, ts, rid) for incremental training,
 * applies interactions to the user's last-n list and consumed set so the
 * next Recommend sees them (ItemCF seeds, already-consumed filter), and keeps
 * the user's live sets: dislike → blocked items, hide_author → blocked
 * authors, follow → followed authors (the author from the item record). */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "events.h"
#include "log.h"
#include "orch_internal.h"
#include "request.h"
#include "store.h"

static int validate_events(const struct cascade_orch_call *call,
                           const Cascade__V1__FeedbackRequest *req)
{
    if (req->n_events > CASCADE_ORCH_MAX_EVENTS)
        return cascade_orch__fail(call, CASCADE_ETOOBIG,
                                  "at most %d events per Feedback call, got %zu",
                                  CASCADE_ORCH_MAX_EVENTS, req->n_events);
    for (size_t i = 0; i < req->n_events; i++) {
        const Cascade__V1__Event *e = req->events[i];
        char field[48];
        snprintf(field, sizeof field, "events[%zu].user_id", i);
        int rc =
            cascade_request_check_user_id(field, e ? e->user_id : NULL, call->err, call->errlen);
        if (rc)
            return rc;
        if (e->item_id == 0)
            return cascade_orch__fail(call, CASCADE_EINVAL, "events[%zu].item_id is 0", i);
        if (cascade_event_type_name((uint32_t)e->type) == NULL)
            return cascade_orch__fail(
                call, CASCADE_EINVAL,
                "events[%zu].type: unknown event type %d (expected 1..%d: %s)", i, (int)e->type,
                CASCADE_EV_MAX, CASCADE_EV_NAMES);
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

/* XADD every event to the stream, pipelined. */
static int append_events(cascade_orch *o, const struct cascade_orch_call *call, cascade_redis *r,
                         const Cascade__V1__FeedbackRequest *req)
{
    char key[CASCADE_KEY_MAX];
    int rc = 0;
    size_t queued = 0;
    cascade_key_events(key, o->ns);
    for (size_t i = 0; i < req->n_events; i++) {
        const Cascade__V1__Event *e = req->events[i];
        rc = cascade_redis_append(r,
                                  "XADD %s MAXLEN ~ %u * user %s item %llu type %s value %g "
                                  "ts %lld rid %s",
                                  key, o->cfg.events_maxlen, e->user_id,
                                  (unsigned long long)e->item_id,
                                  cascade_event_type_name((uint32_t)e->type), (double)e->value,
                                  (long long)event_time(e), e->request_id ? e->request_id : "");
        if (rc)
            return redis_failure(call, r, rc, "appending to the event stream");
        queued++;
    }
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        int err = cascade_redis_get_reply(r, &reply);
        if (reply)
            freeReplyObject(reply);
        if (err && rc == 0)
            rc = err; /* keep reading so the connection stays in sync */
        if (err == CASCADE_EUNAVAILABLE)
            break;
    }
    return rc ? redis_failure(call, r, rc, "appending to the event stream") : 0;
}

/* Apply interactions (events with a positive interest weight: not impressions,
 * plays or dislikes) to last-n and consumed. */
static int apply_interactions(cascade_orch *o, const struct cascade_orch_call *call,
                              cascade_redis *r, const Cascade__V1__FeedbackRequest *req)
{
    for (size_t i = 0; i < req->n_events; i++) {
        const Cascade__V1__Event *e = req->events[i];
        float weight = cascade_event_interest_weight((uint32_t)e->type);
        if (weight <= 0.0f)
            continue;
        cascade_v1_Interaction it = cascade_v1_Interaction_init_zero;
        it.item_id = e->item_id;
        it.type = (uint32_t)e->type;
        it.time_s = event_time(e);
        it.weight = weight;
        int rc = cascade_store_push_interaction(r, o->ns, e->user_id, &it, o->cfg.lastn_max);
        if (rc)
            return redis_failure(call, r, rc, "updating the user's recent interactions");
    }
    return 0;
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

/* Queue the SADD an event implies, if any; *queued counts it. */
static int append_user_set(cascade_orch *o, cascade_redis *r, const Cascade__V1__Event *e,
                           uint64_t author, size_t *queued)
{
    char key[CASCADE_KEY_MAX];
    uint64_t member;
    uint32_t type = (uint32_t)e->type;
    if (type == CASCADE_EV_DISLIKE) {
        cascade_key_user_blocked_items(key, o->ns, e->user_id);
        member = e->item_id;
    } else if (type == CASCADE_EV_HIDE_AUTHOR && author) {
        cascade_key_user_blocked_authors(key, o->ns, e->user_id);
        member = author;
    } else if (type == CASCADE_EV_FOLLOW && author) {
        cascade_key_user_follows(key, o->ns, e->user_id);
        member = author;
    } else {
        return 0;
    }
    int rc = cascade_redis_append(r, "SADD %s %llu", key, (unsigned long long)member);
    if (rc == 0)
        (*queued)++;
    return rc;
}

/* Apply dislikes, hidden authors and follows to the users' live sets, one
 * pipeline of SADDs. */
static int apply_user_sets(cascade_orch *o, const struct cascade_orch_call *call, cascade_redis *r,
                           const Cascade__V1__FeedbackRequest *req)
{
    uint64_t *authors = cascade_arena_calloc(call->arena, req->n_events + 1, sizeof *authors);
    size_t queued = 0;
    int rc;
    if (authors == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    if ((rc = event_authors(o, call, r, req, authors)))
        return rc;
    for (size_t i = 0; i < req->n_events && rc == 0; i++)
        rc = append_user_set(o, r, req->events[i], authors[i], &queued);
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        int err = cascade_redis_get_reply(r, &reply);
        if (reply)
            freeReplyObject(reply);
        if (err && rc == 0)
            rc = err; /* keep reading so the connection stays in sync */
        if (err == CASCADE_EUNAVAILABLE)
            break;
    }
    return rc ? redis_failure(call, r, rc, "updating the user's blocked and followed sets") : 0;
}

int cascade_orch_feedback(cascade_orch *o, const struct cascade_orch_call *call,
                          const Cascade__V1__FeedbackRequest *req,
                          Cascade__V1__FeedbackResponse **out)
{
    int rc;
    *out = NULL;
    if ((rc = validate_events(call, req)))
        return rc;
    Cascade__V1__FeedbackResponse *resp = cascade_arena_alloc(call->arena, sizeof *resp);
    if (resp == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__feedback_response__init(resp);
    if (req->n_events > 0) {
        cascade_redis *r = o->redis ? cascade_redis_pool_get(o->redis) : NULL;
        if (r == NULL)
            return cascade_orch__fail(call, CASCADE_EUNAVAILABLE,
                                      "feedback: no Redis connection available");
        if ((rc = append_events(o, call, r, req)) || (rc = apply_interactions(o, call, r, req)) ||
            (rc = apply_user_sets(o, call, r, req)))
            return rc;
    }
    resp->accepted = (uint32_t)req->n_events;
    CASCADE_DEBUG(call->request_id, "feedback: %zu events", req->n_events);
    *out = resp;
    return 0;
}
