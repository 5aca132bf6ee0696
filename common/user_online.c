/* User-side online features: the nightly user state continued with the
 * consumer's per-user events since the build (user_online.h). */
#include "user_online.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "affinity.h"
#include "error.h"
#include "events.h"
#include "log.h"
#include "store.h"

int cascade_user_online_parse(const char *s, size_t len, struct cascade_user_event *out)
{
    char buf[128];
    unsigned long long seq, item;
    unsigned type, category;
    long long ts;
    int used = 0;
    if (len == 0 || len >= sizeof buf)
        return CASCADE_EFORMAT;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (sscanf(buf, "%llu %u %llu %u %lld%n", &seq, &type, &item, &category, &ts, &used) != 5 ||
        buf[used] != '\0' || type < 1 || type > CASCADE_EV_MAX)
        return CASCADE_EFORMAT;
    *out = (struct cascade_user_event){
        .seq = seq, .type = type, .item = item, .category = category, .ts_s = ts};
    return 0;
}

/* The replay's order: events sorted by time, stable in log order, which is
 * the consumer's sequence order (it numbers the events in partition-line
 * order). */
static int cmp_event(const void *a, const void *b)
{
    const struct cascade_user_event *x = a, *y = b;
    if (x->ts_s != y->ts_s)
        return x->ts_s < y->ts_s ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

int cascade_user_online_continue(cascade_v1_UserRecord *rec, const cascade_v1_UserOnlineBase *base,
                                 struct cascade_user_event *ev, size_t n, int64_t now_s)
{
    struct cascade_behaviour_weights w;
    struct cascade_affinity a = {0};
    struct cascade_user_stats st = {
        .impressions = rec->impressions, .clicks = rec->clicks, .interactions = rec->interactions};
    int rc = 0;
    for (uint32_t t = 0; t <= CASCADE_EV_MAX; t++)
        w.w[t] = base->weights_count == CASCADE_EV_MAX + 1 ? base->weights[t]
                                                           : cascade_event_interest_weight(t);
    if (n > 1)
        qsort(ev, n, sizeof *ev, cmp_event);
    if ((rc = cascade_affinity_from_base(&a, base)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type < 1 || ev[i].type > CASCADE_EV_MAX) {
            rc = CASCADE_EFORMAT;
            goto out;
        }
        cascade_user_stats_observe(&st, ev[i].type);
        if ((rc = cascade_affinity_add(&a, ev[i].category, ev[i].type, ev[i].ts_s, &w,
                                       base->half_life_s)) != 0)
            goto out;
    }
    cascade_affinity_to_record(&a, now_s, base->half_life_s, rec);
    rec->impressions = st.impressions;
    rec->clicks = st.clicks;
    rec->interactions = st.interactions;
out:
    cascade_affinity_free(&a);
    return rc;
}

/* The events above sequence `after` of the WITHSCORES sorted-set reply rep
 * (member, score, member, score ...) into ev (n of them): the members
 * ZRANGEBYSCORE "(after" +inf would give, compared as Redis compares
 * scores. The trim marker means events after the base are lost. */
static int parse_events(cascade_redis *r, const char *key, const redisReply *rep, uint64_t after,
                        struct cascade_user_event *ev, size_t *n)
{
    *n = 0;
    if (rep->elements % 2 != 0) {
        cascade_redis__set_error(r, "%s: unexpected reply to ZRANGEBYSCORE WITHSCORES", key);
        return CASCADE_EFORMAT;
    }
    for (size_t i = 0; i < rep->elements; i += 2) {
        const redisReply *m = rep->element[i], *sc = rep->element[i + 1];
        char *end = NULL;
        double score = sc->type == REDIS_REPLY_STRING ? strtod(sc->str, &end) : 0;
        if (sc->type != REDIS_REPLY_STRING || end == sc->str) {
            cascade_redis__set_error(r, "%s: malformed score", key);
            return CASCADE_EFORMAT;
        }
        if (!(score > (double)after))
            continue; /* before the build's snapshot: in the base already */
        if (m->type == REDIS_REPLY_STRING && strcmp(m->str, CASCADE_USER_ONLINE_TRIMMED) == 0) {
            cascade_redis__set_error(r,
                                     "%s: events after the build's snapshot were dropped by the "
                                     "consumer's cap (consumer.user_events_cap)",
                                     key);
            return CASCADE_EDATA;
        }
        if (m->type != REDIS_REPLY_STRING || cascade_user_online_parse(m->str, m->len, &ev[*n])) {
            cascade_redis__set_error(r, "%s: malformed member \"%.64s\"", key,
                                     m->type == REDIS_REPLY_STRING ? m->str : "");
            return CASCADE_EFORMAT;
        }
        (*n)++;
    }
    return 0;
}

/* The base of rec from the GET reply into *base: CASCADE_ENOTFOUND when
 * absent, CASCADE_EDATA when it is another load's (rec NULL: the new users'
 * base, any sequence). */
static int parse_base(cascade_redis *r, const char *key, const redisReply *rep,
                      const cascade_v1_UserRecord *rec, cascade_v1_UserOnlineBase *base)
{
    if (rep->type == REDIS_REPLY_NIL)
        return CASCADE_ENOTFOUND;
    if (rep->type != REDIS_REPLY_STRING ||
        cascade_record_decode(cascade_v1_UserOnlineBase_fields, base, (const uint8_t *)rep->str,
                              rep->len) != 0) {
        cascade_redis__set_error(r, "%s: not a valid UserOnlineBase record", key);
        return CASCADE_EFORMAT;
    }
    if (rec && base->seq != rec->online_seq) {
        cascade_redis__set_error(r,
                                 "%s: of another load than the user record (seq %" PRIu64
                                 ", the record's %" PRIu64 "; a load is writing)",
                                 key, base->seq, rec->online_seq);
        return CASCADE_EDATA;
    }
    return 0;
}

int cascade_user_online__append(cascade_redis *r, const char *ns, const char *user_id)
{
    char bkey[CASCADE_KEY_MAX], nkey[CASCADE_KEY_MAX], ekey[CASCADE_KEY_MAX];
    int rc = cascade_redis_append(r, "GET %s", cascade_key_user_online_base(bkey, ns, user_id));
    if (rc == 0)
        rc = cascade_redis_append(r, "GET %s", cascade_key_user_online_new(nkey, ns));
    if (rc == 0)
        rc = cascade_redis_append(r, "ZRANGEBYSCORE %s -inf +inf WITHSCORES",
                                  cascade_key_user_events(ekey, ns, user_id));
    return rc;
}

int cascade_user_online__finish(cascade_redis *r, const char *ns, cascade_v1_UserRecord *rec,
                                bool known, redisReply *const rep[CASCADE_USER_ONLINE_REPLIES],
                                int64_t now_s, cascade_arena *arena, size_t *n_events)
{
    const redisReply *brep = rep[known ? 0 : 1], *erep = rep[2];
    char bkey[CASCADE_KEY_MAX], ekey[CASCADE_KEY_MAX];
    cascade_v1_UserOnlineBase *base = cascade_arena_calloc(arena, 1, sizeof *base);
    struct cascade_user_event *ev = NULL;
    size_t n = 0;
    int rc;
    if (n_events)
        *n_events = 0;
    if (base == NULL)
        return CASCADE_ENOMEM;
    if (known)
        cascade_key_user_online_base(bkey, ns, rec->user_id);
    else
        cascade_key_user_online_new(bkey, ns);
    cascade_key_user_events(ekey, ns, rec->user_id);
    if ((rc = parse_base(r, bkey, brep, known ? rec : NULL, base)) != 0)
        return rc;
    if (!known) /* a new user's events are those above the new users' base */
        rec->online_seq = base->seq;
    if (erep->type != REDIS_REPLY_ARRAY) {
        cascade_redis__set_error(r, "%s: not a sorted set", ekey);
        return CASCADE_EFORMAT;
    }
    if ((ev = cascade_arena_calloc(arena, erep->elements / 2 + 1, sizeof *ev)) == NULL)
        return CASCADE_ENOMEM;
    if ((rc = parse_events(r, ekey, erep, rec->online_seq, ev, &n)) != 0)
        return rc;
    if ((rc = cascade_user_online_continue(rec, base, ev, n, now_s)) != 0) {
        cascade_redis__set_error(r, "%s: %s", ekey, cascade_strerror(rc));
        return rc;
    }
    if (n_events)
        *n_events = n;
    return 0;
}

int cascade_user_online_apply(cascade_redis *r, const char *ns, cascade_v1_UserRecord *rec,
                              bool known, int64_t now_s, cascade_arena *arena, size_t *n_events)
{
    redisReply *rep[CASCADE_USER_ONLINE_REPLIES] = {NULL};
    int rc;
    if (n_events)
        *n_events = 0;
    /* One round trip: the bases and the user's events. */
    if ((rc = cascade_user_online__append(r, ns, rec->user_id)) != 0)
        return rc;
    /* Every reply is read, whatever the first says, so the connection
     * stays in step. */
    for (size_t i = 0; i < CASCADE_USER_ONLINE_REPLIES; i++) {
        int rci = cascade_redis_get_reply(r, &rep[i]);
        if (rc == 0)
            rc = rci;
    }
    if (rc == 0)
        rc = cascade_user_online__finish(r, ns, rec, known, rep, now_s, arena, n_events);
    for (size_t i = 0; i < CASCADE_USER_ONLINE_REPLIES; i++)
        freeReplyObject(rep[i]);
    return rc;
}

int cascade_user_online_report(cascade_redis *r, int rc, const char *stage, cascade_metric *reads,
                               cascade_metric *failures)
{
    if (rc == CASCADE_ENOMEM)
        return rc;
    if (rc == CASCADE_ENOTFOUND) /* no base: the record as load wrote it */
        return 0;
    if (rc != 0) {
        cascade_metric_inc(failures);
        CASCADE_WARN(
            NULL, "%s: online user events unread (%s); scoring with the nightly user record", stage,
            cascade_redis_error(r)[0] ? cascade_redis_error(r) : cascade_strerror(rc));
        return 0;
    }
    cascade_metric_inc(reads);
    return 0;
}
