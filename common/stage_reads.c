/* A scoring stage's per-request reads in one Redis pipeline
 * (stage_reads.h). */
#include "stage_reads.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "store.h"
#include "user_online.h"

/* The misses' ids and the arrays their records are read into. */
struct misses {
    size_t *at; /* position in q->ids */
    uint64_t *ids;
    cascade_v1_ItemRecord *recs;
    bool *found;
    size_t n;
    /* With no miss, the candidates whose counters are asked in the pipeline:
     * the cached records with an online_base (one without adds 0). */
    size_t *t_at; /* position in q->ids */
    uint64_t *t_ids;
    size_t t_n;
};

/* Queue every read of q; on a failure nothing stays queued (redis.h). */
static int append_all(cascade_redis *r, cascade_arena *arena, const struct cascade_stage_reads *q,
                      const struct misses *m, bool online_user, bool totals)
{
    char key[CASCADE_KEY_MAX];
    int rc = 0;
    if (q->user_id)
        rc = cascade_redis_append(r, "GET %s", cascade_key_user(key, q->ns, q->user_id));
    if (rc == 0 && online_user)
        rc = cascade_user_online__append(r, q->ns, q->user_id);
    if (rc == 0 && m->n > 0)
        rc = cascade_store__items_append(r, q->ns, m->ids, m->n);
    if (rc == 0 && totals)
        rc = cascade_store__totals_append(r, q->ns, m->t_ids, m->t_n, arena);
    return rc;
}

/* Continue the user record (found, or the zeroed one of a user without a
 * record) with its events' replies (orc: the first failure reading them). A
 * user without a record who is continued counts as found: their record is
 * the replay's. */
static int finish_user(cascade_redis *r, cascade_arena *arena, struct cascade_stage_reads *q,
                       int orc, redisReply *const orep[CASCADE_USER_ONLINE_REPLIES])
{
    if (orc != 0) {
        q->user_online_rc = orc;
        return 0;
    }
    q->user_online_rc =
        cascade_user_online__finish(r, q->ns, q->user, q->user_found, orep, q->now_s, arena, NULL);
    if (q->user_online_rc == 0)
        q->user_found = true;
    return q->user_online_rc == CASCADE_ENOMEM ? CASCADE_ENOMEM : 0;
}

/* Read every queued reply in order and interpret them. */
static int read_all(cascade_redis *r, cascade_arena *arena, struct cascade_stage_reads *q,
                    const struct misses *m, bool online_user, bool totals)
{
    redisReply *urep = NULL, *orep[CASCADE_USER_ONLINE_REPLIES] = {NULL}, *trep = NULL;
    int urc = 0, orc = 0, irc = 0, trc = 0, rc = 0;
    char why[512] = "";
    if (q->user_id && (urc = cascade_redis_get_reply(r, &urep)) != 0)
        snprintf(why, sizeof why, "%s", cascade_redis_error(r));
    for (size_t i = 0; online_user && i < CASCADE_USER_ONLINE_REPLIES; i++) {
        int rci = cascade_redis_get_reply(r, &orep[i]);
        if (orc == 0)
            orc = rci;
    }
    if (m->n > 0)
        irc = cascade_store__items_read(r, q->ns, m->ids, m->n, m->recs, m->found);
    if (totals)
        trc = cascade_redis_get_reply(r, &trep);
    /* Every reply is in: now the answers, the request's own reads first. */
    if (q->user_id && urc == 0)
        urc = cascade_store__user_reply(r, q->ns, q->user_id, urep, q->user, &q->user_found);
    if ((rc = urc) != 0 || (rc = irc) != 0) {
        if (urc != 0 && why[0]) /* the later replies' success cleared it */
            cascade_redis__restore_error(r, why);
        goto out;
    }
    for (size_t k = 0; k < m->n; k++) {
        q->items[m->at[k]] = m->recs[k];
        q->found[m->at[k]] = m->found[k];
    }
    if (q->user_id && !q->user_found)
        snprintf(q->user->user_id, sizeof q->user->user_id, "%s", q->user_id);
    if (online_user && (rc = finish_user(r, arena, q, orc, orep)) != 0)
        goto out;
    if (totals) {
        q->counters_rc = trc != 0 ? trc
                                  : cascade_store__totals_apply(r, trep, q->items, q->found, q->n,
                                                                m->t_at, m->t_n, arena);
        if (q->counters_rc == CASCADE_ENOMEM)
            rc = CASCADE_ENOMEM;
    }
out:
    freeReplyObject(urep);
    for (size_t i = 0; i < CASCADE_USER_ONLINE_REPLIES; i++)
        freeReplyObject(orep[i]);
    freeReplyObject(trep);
    return rc;
}

int cascade_stage_reads_run(cascade_redis *r, cascade_arena *arena, struct cascade_stage_reads *q)
{
    int64_t now_ms = cascade_now_ms();
    struct misses m = {
        .at = cascade_arena_calloc(arena, q->n + 1, sizeof *m.at),
        .ids = cascade_arena_calloc(arena, q->n + 1, sizeof *m.ids),
        /* Not zeroed: every record read is written whole (absent: zeroed). */
        .recs = cascade_arena_alloc(arena, (q->n + 1) * sizeof *m.recs),
        .found = cascade_arena_calloc(arena, q->n + 1, sizeof *m.found),
        .t_at = cascade_arena_calloc(arena, q->n + 1, sizeof *m.t_at),
        .t_ids = cascade_arena_calloc(arena, q->n + 1, sizeof *m.t_ids),
    };
    bool online_user = q->user_id && q->online_user;
    q->user_found = false;
    q->user_online_rc = CASCADE_ENOTFOUND;
    q->counters_rc = 0;
    if (q->user_id)
        memset(q->user, 0, sizeof *q->user);
    if (!m.at || !m.ids || !m.recs || !m.found || !m.t_at || !m.t_ids)
        return CASCADE_ENOMEM;
    uint64_t epoch;
    m.n =
        cascade_item_cache_lookup(q->cache, q->ids, q->n, q->items, q->found, m.at, now_ms, &epoch);
    for (size_t k = 0; k < m.n; k++)
        m.ids[k] = q->ids[m.at[k]];
    /* With misses, whether their records have an online_base is known only
     * from their replies: the counters are read after (run below). */
    for (size_t i = 0; q->online_counters && m.n == 0 && i < q->n; i++)
        if (q->found[i] && q->items[i].has_online_base) {
            m.t_at[m.t_n] = i;
            m.t_ids[m.t_n++] = q->ids[i];
        }
    bool totals = m.t_n > 0;
    if (!q->user_id && m.n == 0 && !totals)
        return 0;
    int rc = append_all(r, arena, q, &m, online_user, totals);
    if (rc == 0)
        rc = read_all(r, arena, q, &m, online_user, totals);
    if (rc != 0)
        return rc;
    cascade_item_cache_store(q->cache, q->ids, m.at, m.n, m.recs, m.found, now_ms, epoch);
    if (q->online_counters && m.n > 0) {
        /* A second round trip only when a record has an online_base. */
        q->counters_rc = cascade_store_online_deltas_add(r, q->ns, q->items, q->found, q->n, arena);
        if (q->counters_rc == CASCADE_ENOMEM)
            return CASCADE_ENOMEM;
    }
    return 0;
}

int cascade_stage_online_config(struct cascade_stage_online *o, const char *stage,
                                const cascade_config *cfg, char *err, size_t errlen)
{
    char key[64];
    int rc;
    o->stage = stage;
    snprintf(key, sizeof key, "%s.online_counters", stage);
    if ((rc = cascade_config_bool(cfg, key, true, &o->counters, err, errlen)) != 0)
        return rc;
    snprintf(key, sizeof key, "%s.online_user", stage);
    return cascade_config_bool(cfg, key, true, &o->user, err, errlen);
}

static cascade_metric *online_counter(cascade_metrics *m, const char *stage, const char *what,
                                      const char *help)
{
    char name[96];
    snprintf(name, sizeof name, "cascade_%s_online_%s_total", stage, what);
    return cascade_metric_get(cascade_metrics_counter(m, name, help, NULL), NULL);
}

void cascade_stage_online_metrics(struct cascade_stage_online *o, cascade_metrics *m,
                                  const char *title)
{
    char help[192];
    if (!m)
        return;
    snprintf(help, sizeof help,
             "%s requests whose item statistics include the online counters' change since the "
             "nightly build.",
             title);
    o->counter_reads = online_counter(m, o->stage, "counter_reads", help);
    snprintf(help, sizeof help,
             "%s requests scored with the nightly item statistics because the online counters "
             "could not be read.",
             title);
    o->counter_failures = online_counter(m, o->stage, "counter_failures", help);
    snprintf(help, sizeof help,
             "%s requests whose user record was continued with the user's events since the "
             "nightly build.",
             title);
    o->user_reads = online_counter(m, o->stage, "user_reads", help);
    snprintf(help, sizeof help,
             "%s requests scored with the nightly user record because the user's online events "
             "could not be read.",
             title);
    o->user_failures = online_counter(m, o->stage, "user_failures", help);
}

int cascade_stage_online_report(const struct cascade_stage_online *o, cascade_redis *r,
                                const struct cascade_stage_reads *q)
{
    int rc =
        cascade_user_online_report(r, q->user_online_rc, o->stage, o->user_reads, o->user_failures);
    if (rc != 0 || !q->online_counters)
        return rc;
    if (q->counters_rc == 0) {
        cascade_metric_inc(o->counter_reads);
        return 0;
    }
    cascade_metric_inc(o->counter_failures);
    CASCADE_WARN(
        NULL, "%s: online counters unread (%s); scoring with the nightly statistics", o->stage,
        cascade_redis_error(r)[0] ? cascade_redis_error(r) : cascade_strerror(q->counters_rc));
    return 0;
}
