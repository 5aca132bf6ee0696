/* Recall stage, one request: the prefetch. Several channels read the user's
 * own keys (profile, last-n, the cache list, usercf's similar users, the
 * interacted authors), each in
 * its own round trip when it runs; here they are read in one pipelined round
 * trip before the channels run, and the channels take them from the request
 * state. Anything not read cleanly is left to the channel's own read. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "recall_internal.h"
#include "store.h"

/* What the prefetch reads: which commands were queued, in order. */
struct prefetch_plan {
    bool profile;
    size_t lastn;        /* entries of the last-n to read (0 = none) */
    size_t cache_quota;  /* the cache channel's quota (0 = none) */
    int64_t usercf_gen;  /* usercf's generation (0 = no similar-user read) */
    int64_t authors_gen; /* the authors family's (0 = no interacted-authors read) */
    int authors_users;   /* channels that read the interacted authors */
    int64_t deadline_ms; /* the earliest deadline of the channels served */
};

/* The generation of registry channel idx's family when one is published;
 * 0 when the read is skipped (a failure is left for the channel to report). */
static int64_t family_generation(const struct cascade_recall__channel_args *a, int idx)
{
    char err[256];
    struct cascade_recall__channel_args g = *a;
    g.name = cascade_recall__channels[idx].name;
    g.cfg = &a->recall->cfg[idx];
    g.family = cascade_recall__channels[idx].family;
    g.err = err;
    g.errlen = sizeof err;
    int64_t gen = 0;
    return cascade_recall__generation(&g, &gen) == 0 ? gen : 0;
}

/* What the planned channels read; *usercf and *authors the registry index
 * of a channel reading those families' keys (-1: none). No Redis. */
static void plan_prefetch(const struct cascade_recall__channel_args *a, const int *idx,
                          const uint32_t *quota, const int64_t *deadline_ms, size_t n,
                          struct prefetch_plan *plan, int *usercf, int *authors)
{
    *usercf = *authors = -1;
    memset(plan, 0, sizeof *plan);
    plan->deadline_ms = INT64_MAX;
    bool wants_profile = false;
    for (size_t c = 0; c < n; c++) {
        if (idx[c] < 0)
            continue;
        unsigned reads = cascade_recall__channels[idx[c]].reads;
        const struct cascade_recall__channel_cfg *cfg = &a->recall->cfg[idx[c]];
        bool used = false;
        if (reads & CASCADE_RECALL_READS_PROFILE)
            wants_profile = used = true;
        if (reads & (CASCADE_RECALL_READS_LASTN | CASCADE_RECALL_READS_USERCF)) {
            if (cfg->last_n > plan->lastn)
                plan->lastn = cfg->last_n;
            used = true;
        }
        if (reads & CASCADE_RECALL_READS_CACHE) {
            plan->cache_quota = quota[c];
            used = true;
        }
        if ((reads & CASCADE_RECALL_READS_USERCF) && cfg->users > 0)
            *usercf = idx[c];
        if (reads & CASCADE_RECALL_READS_AUTHORS) {
            *authors = idx[c];
            plan->authors_users++;
            used = true;
        }
        if (used && deadline_ms[c] < plan->deadline_ms)
            plan->deadline_ms = deadline_ms[c];
    }
    plan->profile = wants_profile;
}

/* The generations of the families read (from the stage's cache, or a GET
 * each when stale, as the channel itself would), the profile unless the
 * profile cache holds it; under the prefetch's deadline. */
static void resolve_plan(const struct cascade_recall__channel_args *a, int usercf, int authors,
                         struct prefetch_plan *plan)
{
    if (usercf >= 0)
        plan->usercf_gen = family_generation(a, usercf);
    if (authors >= 0)
        plan->authors_gen = family_generation(a, authors);
    plan->profile = plan->profile && cascade_recall__profile_wanted(a);
}

/* usercf's similar-user list from a GET reply (nil: none). */
static int take_neighbours(const struct cascade_recall__channel_args *a, const redisReply *rep,
                           int64_t gen)
{
    struct cascade_recall__request_state *st = a->state;
    cascade_v1_UserNeighbourList *nl = cascade_arena_alloc(a->arena, sizeof *nl);
    if (!nl)
        return CASCADE_ENOMEM;
    memset(nl, 0, sizeof *nl);
    bool found = rep->type != REDIS_REPLY_NIL;
    if (found && (rep->type != REDIS_REPLY_STRING ||
                  cascade_record_decode(cascade_v1_UserNeighbourList_fields, nl,
                                        (const uint8_t *)rep->str, rep->len) != 0))
        return CASCADE_EFORMAT;
    st->neighbours = nl;
    st->neighbours_found = found;
    st->neighbours_gen = gen;
    st->neighbours_loaded = true;
    return 0;
}

/* Read the replies in the order queued; the pipe stops handing them out at
 * the first failure (and drains the rest), so what follows is left alone. */
static void read_replies(const struct cascade_recall__channel_args *a,
                         const struct prefetch_plan *plan, struct cascade_recall__pipe *p,
                         const char *lastn_key)
{
    struct cascade_recall__request_state *st = a->state;
    redisReply *rep;
    if (plan->profile && (rep = cascade_recall__pipe_reply(p)) != NULL) {
        if (cascade_recall__profile_take(a, rep) != 0)
            cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "profile: not a record");
        freeReplyObject(rep);
    }
    if (plan->lastn > 0) {
        struct cascade_recall_hits got;
        if (cascade_recall__read_interactions(p, a->arena, lastn_key, &got) == 0 && p->rc == 0) {
            st->lastn = got;
            st->lastn_asked = plan->lastn;
            st->lastn_loaded = true;
        }
    }
    if (plan->cache_quota > 0 && (rep = cascade_recall__pipe_reply(p)) != NULL) {
        st->cache_reply = rep; /* the cache channel parses (and frees) it */
        st->cache_quota = plan->cache_quota;
    }
    if (plan->usercf_gen > 0 && (rep = cascade_recall__pipe_reply(p)) != NULL) {
        if (take_neighbours(a, rep, plan->usercf_gen) != 0)
            cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "similar users: not a record");
        freeReplyObject(rep);
    }
    if (plan->authors_gen > 0 && (rep = cascade_recall__pipe_reply(p)) != NULL) {
        st->interacted_reply = rep; /* parsed by each author channel */
        st->interacted_gen = plan->authors_gen;
    }
}

void cascade_recall__prefetch(const struct cascade_recall__channel_args *a, const int *idx,
                              const uint32_t *quota, const int64_t *deadline_ms, size_t n)
{
    struct prefetch_plan plan;
    int usercf, authors;
    plan_prefetch(a, idx, quota, deadline_ms, n, &plan, &usercf, &authors);
    if (cascade_now_ms() >= plan.deadline_ms)
        return;
    cascade_redis_set_deadline(a->redis, plan.deadline_ms);
    resolve_plan(a, usercf, authors, &plan);
    /* Round trips the channels would make for these reads (the interacted
     * authors are read by both author channels); the prefetch gains
     * nothing when that is one. */
    int saved = (plan.profile ? 1 : 0) + (plan.lastn > 0) + (plan.cache_quota > 0) +
                (plan.usercf_gen > 0) + (plan.authors_gen > 0 ? plan.authors_users : 0);
    if (saved < 2 || cascade_now_ms() >= plan.deadline_ms)
        return;
    char user_key[CASCADE_KEY_MAX], lastn_key[CASCADE_KEY_MAX], cache_key[CASCADE_KEY_MAX];
    char usercf_key[CASCADE_KEY_MAX], authors_key[CASCADE_KEY_MAX], suffix[CASCADE_KEY_MAX];
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    if (plan.profile) {
        cascade_key_user(user_key, a->recall->ns, a->user_id);
        cascade_recall__pipe_get(&p, user_key);
    }
    if (plan.lastn > 0) {
        cascade_key_user_lastn(lastn_key, a->recall->ns, a->user_id);
        cascade_recall__pipe_lrange(&p, lastn_key, 0, (long long)plan.lastn - 1);
    }
    if (plan.cache_quota > 0) {
        cascade_key_user_cache(cache_key, a->recall->ns, a->user_id);
        cascade_recall__pipe_lrange(&p, cache_key, -(long long)plan.cache_quota, -1);
    }
    if (plan.usercf_gen > 0) {
        cascade_key_artefact(usercf_key, a->recall->ns, "usercf", plan.usercf_gen, a->user_id);
        cascade_recall__pipe_get(&p, usercf_key);
    }
    if (plan.authors_gen > 0) {
        snprintf(suffix, sizeof suffix, "interacted:%s", a->user_id);
        cascade_key_artefact(authors_key, a->recall->ns,
                             cascade_recall__family_name(CASCADE_RECALL_FAM_AUTHORS),
                             plan.authors_gen, suffix);
        cascade_recall__pipe_get(&p, authors_key);
    }
    read_replies(a, &plan, &p, lastn_key);
    cascade_recall__pipe_end(&p);
}

const redisReply *
cascade_recall__prefetched_interacted(const struct cascade_recall__channel_args *a, int64_t gen)
{
    const struct cascade_recall__request_state *st = a->state;
    return st->interacted_reply && st->interacted_gen == gen ? st->interacted_reply : NULL;
}

void cascade_recall__prefetch_release(struct cascade_recall__request_state *st)
{
    if (!st)
        return;
    freeReplyObject(st->cache_reply);
    freeReplyObject(st->interacted_reply);
    st->cache_reply = NULL;
    st->interacted_reply = NULL;
}
