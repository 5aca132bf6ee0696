/* Recall channel "usercf": the user's top-k similar users
 * ({ns}:usercf@{gen}:{uid}, UserNeighbourList) × their last-n interactions;
 * score(item) = Σ_v sim(u, v) · interest(v, item), the user's own last-n
 * items excluded. Two round trips after the (cached) generation: the
 * similar-user list, then one pipeline with the user's own last-n and every
 * neighbour's — one when the request's prefetch read the list and the
 * user's last-n. */
#include "error.h"
#include "recall_internal.h"
#include "store.h"

/* Sum sim · interest over the neighbours' lists into scores, skipping the
 * user's own items. */
static int usercf_accumulate(const struct cascade_recall__channel_args *a,
                             const struct cascade_recall_hits *own,
                             const struct cascade_recall_hits *lists, const float *sims, size_t n,
                             cascade_idmap *scores)
{
    cascade_idmap mine;
    if (cascade_idmap_init(&mine, a->arena, own->count) != 0)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < own->count; i++)
        if (!cascade_idmap_upsert(&mine, own->ids[i], NULL))
            return CASCADE_ENOMEM;
    for (size_t v = 0; v < n; v++) {
        for (size_t i = 0; i < lists[v].count; i++) {
            if (cascade_idmap_find(&mine, lists[v].ids[i]))
                continue;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(scores, lists[v].ids[i], NULL);
            if (!e)
                return CASCADE_ENOMEM;
            e->score += (double)sims[v] * (double)lists[v].scores[i];
        }
    }
    return 0;
}

int cascade_recall__usercf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out)
{
    int64_t gen;
    bool found;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    const struct cascade_recall__request_state *st = a->state;
    cascade_v1_UserNeighbourList *nl = st->neighbours;
    if (st->neighbours_loaded && st->neighbours_gen == gen) {
        found = st->neighbours_found; /* the request's prefetch read it */
    } else {
        if (!(nl = cascade_arena_alloc(a->arena, sizeof *nl)))
            return cascade_recall__nomem(a);
        rc =
            cascade_store_get_user_neighbours(a->redis, a->recall->ns, gen, a->user_id, nl, &found);
        if (rc != 0)
            return cascade_recall__fail(a, rc, "similar users", cascade_redis_error(a->redis));
    }
    if (!found || nl->neighbours_count == 0)
        return 0;

    size_t n = nl->neighbours_count < a->cfg->users ? nl->neighbours_count : a->cfg->users;
    char(*keys)[CASCADE_KEY_MAX] = cascade_arena_alloc(a->arena, (n + 1) * sizeof *keys);
    struct cascade_recall_hits *lists = cascade_arena_calloc(a->arena, n + 1, sizeof *lists);
    float *sims = cascade_arena_alloc(a->arena, (n + 1) * sizeof *sims);
    cascade_idmap scores;
    if (!keys || !lists || !sims || cascade_idmap_init(&scores, a->arena, n * 16) != 0)
        return cascade_recall__nomem(a);
    long long last = (long long)a->cfg->last_n - 1;
    struct cascade_recall__pipe p;
    /* The user's own list, read first unless the request already holds it. */
    bool own_read = cascade_recall__lastn_covered(a, a->cfg->last_n);
    if (own_read && (rc = cascade_recall__user_lastn(a, a->cfg->last_n, &lists[n])) != 0)
        return rc;
    cascade_recall__pipe_init(&p, a->redis);
    cascade_key_user_lastn(keys[n], a->recall->ns, a->user_id);
    if (!own_read)
        cascade_recall__pipe_lrange(&p, keys[n], 0, last);
    for (size_t v = 0; v < n; v++) {
        cascade_key_user_lastn(keys[v], a->recall->ns, nl->neighbours[v].user_id);
        sims[v] = nl->neighbours[v].score;
        cascade_recall__pipe_lrange(&p, keys[v], 0, last);
    }
    if (!own_read)
        cascade_recall__read_interactions(&p, a->arena, keys[n], &lists[n]);
    for (size_t v = 0; v < n; v++)
        cascade_recall__read_interactions(&p, a->arena, keys[v], &lists[v]);
    if ((rc = cascade_recall__pipe_end(&p)) != 0)
        return cascade_recall__fail(a, rc, "last-n of similar users", p.msg);
    if ((rc = cascade_recall__deadline(a, "reading last-n lists")) != 0)
        return rc;
    if (usercf_accumulate(a, &lists[n], lists, sims, n, &scores) != 0 ||
        cascade_recall__top_scores(&scores, a->quota, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}
