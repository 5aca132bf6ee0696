/* Recall channel "cache": items an earlier request ranked but did not show,
 * kept by the orchestrator in the live LIST {ns}:user:{uid}:cache (decimal
 * item ids, newest first; capacity and removal on exposure are the
 * orchestrator's). Returned in FIFO order — oldest first, the order they
 * would leave the cache — with score (n − position) / n; a repeated id is
 * kept once, at its oldest position. One round trip (LRANGE -quota -1), none
 * when the request's prefetch read it. */
#include <stdio.h>

#include "error.h"
#include "recall_internal.h"
#include "store.h"

int cascade_recall__cache(const struct cascade_recall__channel_args *a,
                          struct cascade_recall_hits *out)
{
    char key[CASCADE_KEY_MAX];
    cascade_key_user_cache(key, a->recall->ns, a->user_id);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    redisReply *rep = NULL;
    if (a->state->cache_reply && a->state->cache_quota == a->quota) {
        rep = a->state->cache_reply; /* the request's prefetch read it: ours now */
        a->state->cache_reply = NULL;
    } else {
        cascade_recall__pipe_lrange(&p, key, -(long long)a->quota, -1);
        rep = cascade_recall__pipe_reply(&p);
    }
    cascade_idmap seen;
    if (rep && rep->type != REDIS_REPLY_ARRAY)
        cascade_recall__pipe_fail(&p, CASCADE_EFORMAT, "%s: not a list", key);
    size_t n = rep && p.rc == 0 ? rep->elements : 0;
    out->ids = cascade_arena_alloc(a->arena, (n + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(a->arena, (n + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores || cascade_idmap_init(&seen, a->arena, n) != 0)
        cascade_recall__pipe_fail(&p, CASCADE_ENOMEM, "out of request memory");
    /* The list is newest first: walk it from the tail. */
    for (size_t i = n; i-- > 0 && p.rc == 0;) {
        const redisReply *e = rep->element[i];
        uint64_t id;
        bool created;
        if (e->type != REDIS_REPLY_STRING || cascade_recall__parse_id(e->str, e->len, &id) != 0) {
            cascade_recall__pipe_fail(&p, CASCADE_EFORMAT, "%s: element %zu is not an item id", key,
                                      i);
            break;
        }
        if (!cascade_idmap_upsert(&seen, id, &created)) {
            cascade_recall__pipe_fail(&p, CASCADE_ENOMEM, "out of request memory");
            break;
        }
        if (created)
            out->ids[out->count++] = id;
    }
    freeReplyObject(rep);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0) {
        out->count = 0;
        return rc == CASCADE_ENOMEM ? cascade_recall__nomem(a)
                                    : cascade_recall__fail(a, rc, "cache list", p.msg);
    }
    for (size_t i = 0; i < out->count; i++)
        out->scores[i] = (float)(out->count - i) / (float)out->count;
    return 0;
}
