/* A scoring stage's per-request reads in one Redis pipeline
 * (stage_reads.h). */
#include "stage_reads.h"

#include <stddef.h>
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
};

/* The candidates whose online counters' change a request may add (the
 * cached records with an online_base and the misses): their positions,
 * their totals (from the counters cache or Redis), and which of them are
 * asked of Redis. */
struct counters {
    size_t *at; /* position in q->ids */
    uint64_t *ids;
    cascade_v1_ItemStats *now;
    bool *cached; /* its total from the counters cache, not asked of Redis */
    size_t n;
    size_t *ask; /* indexes into at/ids/now of the totals asked of Redis */
    uint64_t *ask_ids;
    size_t n_ask;
    uint64_t epoch; /* the cache's, taken before the totals are read */
};

static int counters_alloc(struct counters *c, cascade_arena *arena, size_t n)
{
    c->at = cascade_arena_alloc(arena, (n + 1) * sizeof *c->at);
    c->ids = cascade_arena_alloc(arena, (n + 1) * sizeof *c->ids);
    c->now = cascade_arena_alloc(arena, (n + 1) * sizeof *c->now);
    c->cached = cascade_arena_alloc(arena, (n + 1) * sizeof *c->cached);
    c->ask = cascade_arena_alloc(arena, (n + 1) * sizeof *c->ask);
    c->ask_ids = cascade_arena_alloc(arena, (n + 1) * sizeof *c->ask_ids);
    c->n = c->n_ask = 0;
    return c->at && c->ids && c->now && c->cached && c->ask && c->ask_ids ? 0 : CASCADE_ENOMEM;
}

/* Collect the candidates whose online counters' change may be added — the
 * records found in the item cache with an online_base, and every miss
 * (m), whose record says whether it has one only in its reply — take the
 * totals the cache read less than its ttl ago, and list the others to ask.
 * A miss's total is asked with its record, in the same round trip, and
 * left unused when the record has no online_base. */
static void counters_collect(struct counters *c, const struct cascade_stage_reads *q,
                             const struct misses *m, int64_t now_ms)
{
    c->n = 0;
    for (size_t i = 0; i < q->n; i++)
        if (q->found[i] && q->items[i].has_online_base) {
            c->at[c->n] = i;
            c->ids[c->n++] = q->ids[i];
        }
    for (size_t k = 0; k < m->n; k++) {
        c->at[c->n] = m->at[k];
        c->ids[c->n++] = m->ids[k];
    }
    if (q->counters_cache) {
        c->epoch = cascade_record_cache_epoch(q->counters_cache);
        c->n_ask = cascade_record_cache_get_many(q->counters_cache, c->ids, c->n, c->now, c->cached,
                                                 c->ask, now_ms);
    } else {
        for (size_t k = 0; k < c->n; k++)
            c->ask[k] = k;
        c->n_ask = c->n;
    }
    for (size_t k = 0; k < c->n; k++)
        c->cached[k] = true;
    for (size_t j = 0; j < c->n_ask; j++) {
        c->ask_ids[j] = c->ids[c->ask[j]];
        c->cached[c->ask[j]] = false;
    }
}

/* Given the reply to the totals asked (rep; none asked: unused), cache
 * them and add every collected candidate's change since its base. Nothing
 * is added unless the reply parsed. 0, CASCADE_EFORMAT (reason on r) or
 * CASCADE_ENOMEM. */
static int counters_apply(cascade_redis *r, cascade_arena *arena, struct cascade_stage_reads *q,
                          struct counters *c, const redisReply *rep, int64_t now_ms)
{
    if (c->n_ask > 0) {
        cascade_v1_ItemStats *got = cascade_arena_alloc(arena, c->n_ask * sizeof *got);
        size_t *idx = cascade_arena_alloc(arena, c->n_ask * sizeof *idx);
        bool *present = cascade_arena_alloc(arena, c->n_ask * sizeof *present);
        if (!got || !idx || !present)
            return CASCADE_ENOMEM;
        int rc = cascade_store__totals_parse(r, rep, c->n_ask, got);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < c->n_ask; j++) {
            c->now[c->ask[j]] = got[j];
            idx[j] = j;
            present[j] = true; /* an item without totals is cached as zeros */
        }
        if (q->counters_cache)
            cascade_record_cache_put_many(q->counters_cache, c->ask_ids, idx, c->n_ask, got,
                                          present, now_ms, c->epoch);
    }
    size_t cached = 0, asked = 0;
    for (size_t k = 0; k < c->n; k++) {
        cascade_v1_ItemRecord *it = &q->items[c->at[k]];
        if (!q->found[c->at[k]] || !it->has_online_base)
            continue; /* a miss without a base: its total unused */
        cascade_store_item_counters_add_delta(&it->stats, &c->now[k], &it->online_base);
        if (c->cached[k])
            cached++;
        else
            asked++;
    }
    q->counters_cached = cached;
    q->counters_asked = asked;
    return 0;
}

/* Queue every read of q; on a failure nothing stays queued (redis.h). */
static int append_all(cascade_redis *r, cascade_arena *arena, const struct cascade_stage_reads *q,
                      const struct misses *m, const struct counters *c, bool online_user,
                      bool totals)
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
        rc = cascade_store__totals_append(r, q->ns, c->ask_ids, c->n_ask, arena);
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
                    const struct misses *m, struct counters *c, bool online_user, bool totals,
                    int64_t now_ms)
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
        q->counters_rc = trc != 0 ? trc : counters_apply(r, arena, q, c, trep, now_ms);
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
    };
    struct counters c;
    bool online_user = q->user_id && q->online_user;
    q->user_found = false;
    q->user_online_rc = CASCADE_ENOTFOUND;
    q->counters_rc = 0;
    q->counters_cached = q->counters_asked = 0;
    if (q->user_id)
        memset(q->user, 0, sizeof *q->user);
    if (!m.at || !m.ids || !m.recs || !m.found || counters_alloc(&c, arena, q->n) != 0)
        return CASCADE_ENOMEM;
    uint64_t epoch;
    m.n = cascade_item_cache_lookup(q->cache, q->ids, q->n, q->items, q->derived, q->found, m.at,
                                    now_ms, &epoch);
    for (size_t k = 0; k < m.n; k++)
        m.ids[k] = q->ids[m.at[k]];
    if (q->online_counters)
        counters_collect(&c, q, &m, now_ms);
    bool totals = q->online_counters && c.n_ask > 0;
    int rc = 0;
    if (q->user_id || m.n > 0 || totals) {
        rc = append_all(r, arena, q, &m, &c, online_user, totals);
        if (rc == 0)
            rc = read_all(r, arena, q, &m, &c, online_user, totals, now_ms);
        if (rc != 0)
            return rc;
    }
    cascade_item_cache_store(q->cache, q->ids, m.at, m.n, m.recs, m.found, q->derived, now_ms,
                             epoch);
    if (q->online_counters && !totals && c.n > 0) /* every total from the cache */
        q->counters_rc = counters_apply(r, arena, q, &c, NULL, now_ms);
    return q->counters_rc == CASCADE_ENOMEM ? CASCADE_ENOMEM : 0;
}

int cascade_stage_online_config(struct cascade_stage_online *o, const char *stage,
                                const cascade_config *cfg, char *err, size_t errlen)
{
    char key[96];
    int64_t ttl_ms = 0, slots = 0;
    int rc;
    o->stage = stage;
    o->counters_cache = NULL;
    snprintf(key, sizeof key, "%s.online_counters", stage);
    if ((rc = cascade_config_bool(cfg, key, true, &o->counters, err, errlen)) != 0)
        return rc;
    snprintf(key, sizeof key, "%s.online_user", stage);
    if ((rc = cascade_config_bool(cfg, key, true, &o->user, err, errlen)) != 0)
        return rc;
    snprintf(key, sizeof key, "%s.online_counters_cache.ttl_ms", stage);
    if ((rc = cascade_config_int(cfg, key, 0, 0, 3600000, &ttl_ms, err, errlen)) != 0)
        return rc;
    snprintf(key, sizeof key, "%s.online_counters_cache.slots", stage);
    if ((rc = cascade_config_int(cfg, key, 131072, 1, 1 << 24, &slots, err, errlen)) != 0)
        return rc;
    if (!o->counters || ttl_ms == 0)
        return 0;
    o->counters_cache =
        cascade_record_cache_create((size_t)slots, sizeof(cascade_v1_ItemStats), ttl_ms);
    if (!o->counters_cache) {
        snprintf(err, errlen, "%s: out of memory for %lld online counter cache slots", key,
                 (long long)slots);
        return CASCADE_ENOMEM;
    }
    return 0;
}

void cascade_stage_online_release(struct cascade_stage_online *o)
{
    if (!o)
        return;
    cascade_record_cache_destroy(o->counters_cache);
    o->counters_cache = NULL;
}

/* The counters cascade_stage_online_metrics registers: the name's middle
 * part (cascade_<stage>_online_<what>_total), the help after the stage's
 * title, where the series goes, and whether it exists only with a counters
 * cache. */
static const struct {
    const char *what, *help;
    size_t at; /* offsetof the cascade_metric * in struct cascade_stage_online */
    bool cache_only;
} online_series[] = {
    {"counter_reads",
     "requests whose item statistics include the online counters' change since the nightly "
     "build.",
     offsetof(struct cascade_stage_online, counter_reads), false},
    {"counter_failures",
     "requests scored with the nightly item statistics because the online counters could not "
     "be read.",
     offsetof(struct cascade_stage_online, counter_failures), false},
    {"user_reads",
     "requests whose user record was continued with the user's events since the nightly build.",
     offsetof(struct cascade_stage_online, user_reads), false},
    {"user_failures",
     "requests scored with the nightly user record because the user's online events could not "
     "be read.",
     offsetof(struct cascade_stage_online, user_failures), false},
    {"counter_cache_hits", "candidates whose online counters' totals came from the counters cache.",
     offsetof(struct cascade_stage_online, cache_hits), true},
    {"counter_cache_misses",
     "candidates whose online counters' totals the counters cache lacked (read from Redis).",
     offsetof(struct cascade_stage_online, cache_misses), true},
};

void cascade_stage_online_metrics(struct cascade_stage_online *o, cascade_metrics *m,
                                  const char *title)
{
    char name[96], help[256];
    if (!m)
        return;
    for (size_t k = 0; k < sizeof online_series / sizeof *online_series; k++) {
        if (online_series[k].cache_only && !o->counters_cache)
            continue;
        snprintf(name, sizeof name, "cascade_%s_online_%s_total", o->stage, online_series[k].what);
        snprintf(help, sizeof help, "%s %s", title, online_series[k].help);
        *(cascade_metric **)((char *)o + online_series[k].at) =
            cascade_metric_get(cascade_metrics_counter(m, name, help, NULL), NULL);
    }
}

int cascade_stage_online_report(const struct cascade_stage_online *o, cascade_redis *r,
                                const struct cascade_stage_reads *q)
{
    int rc =
        cascade_user_online_report(r, q->user_online_rc, o->stage, o->user_reads, o->user_failures);
    if (rc != 0 || !q->online_counters)
        return rc;
    if (q->counters_cached > 0)
        cascade_metric_add(o->cache_hits, (double)q->counters_cached);
    if (q->counters_asked > 0)
        cascade_metric_add(o->cache_misses, (double)q->counters_asked);
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
