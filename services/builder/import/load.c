/* The load job: compute item and user records from the whole event log and
 * write them and the per-user lists and sets (last-n, consumed, follows) to
 * Redis with pipelined commands, then stamp {ns}:meta. Re-running it
 * replaces what it wrote before (lists and sets are deleted and rebuilt),
 * except live state the log does not hold yet: last-n entries newer than
 * both this log's as_of and the previous load's (Feedback recorded after the
 * data was read) are kept at the head of the rebuilt list, and their items
 * and followed authors stay in the consumed and follows sets. */
#include "load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "interests.h"
#include "pipeline.h"
#include "progress.h"
#include "records.h"
#include "snapshot.h"
#include "store.h"
#include "timescale.h"

#define DAY_S 86400.0
#define NUM_MAX 24

void cascade_load_defaults(struct cascade_load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ns = "cascade";
    o->lastn = 1000;
    o->affinity_half_life_days = CASCADE_TIMESCALE_AUTO;
    cascade_behaviour_weights_default(&o->weights);
    o->pipeline = 2000;
}

/* Everything computed from the log before writing. */
struct load_state {
    const cascade_dataset *ds;
    const struct cascade_load_opts *o;
    int64_t as_of;
    cascade_v1_ItemStats *item_stats;
    struct cascade_user_stats *user_stats;
    struct cascade_affinity *affinity;
    double affinity_hl_s; /* resolved (timescale.h) */
    struct cascade_ui ui; /* uncapped: lastn is its head, consumed is all of it */
    size_t *follow_off;   /* CSR over users into follow_author */
    uint64_t *follow_author;
    struct cascade_pipeline pl;
    struct cascade_load_summary *sum;
    int64_t live_after; /* live last-n entries newer than this are kept */
};

/* The live last-n entries of one user kept across the reload, newest first. */
struct live_entries {
    cascade_v1_Interaction *e;
    size_t n;
};

struct follow_pair {
    uint32_t user;
    uint64_t author;
};

static int cmp_follow(const void *a, const void *b)
{
    const struct follow_pair *x = a, *y = b;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return (x->author > y->author) - (x->author < y->author);
}

/* Followed authors per user (CSR, deduplicated, ascending) from follow events
 * up to as_of on items with a known author. */
static int compute_follows(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    size_t n = 0, m = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        n += ds->events[i].type == CASCADE_EV_FOLLOW;
    struct follow_pair *v = malloc((n + 1) * sizeof(*v));
    st->follow_off = calloc(ds->n_users + 1, sizeof(size_t));
    st->follow_author = malloc((n + 1) * sizeof(uint64_t));
    if (!v || !st->follow_off || !st->follow_author) {
        free(v);
        return CASCADE_ENOMEM;
    }
    n = 0;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        uint64_t author = ds->items[e->item].author_id;
        if (e->type == CASCADE_EV_FOLLOW && e->ts <= st->as_of && author)
            v[n++] = (struct follow_pair){e->user, author};
    }
    qsort(v, n, sizeof(*v), cmp_follow);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i].user == v[i - 1].user && v[i].author == v[i - 1].author)
            continue;
        st->follow_author[m++] = v[i].author;
        st->follow_off[v[i].user + 1]++;
    }
    for (size_t u = 0; u < ds->n_users; u++)
        st->follow_off[u + 1] += st->follow_off[u];
    st->sum->follows = m;
    free(v);
    return 0;
}

static int compute_state(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    double hl = st->affinity_hl_s;
    st->item_stats = calloc(ds->n_items + 1, sizeof(*st->item_stats));
    st->user_stats = calloc(ds->n_users + 1, sizeof(*st->user_stats));
    st->affinity = calloc(ds->n_users + 1, sizeof(*st->affinity));
    if (!st->item_stats || !st->user_stats || !st->affinity)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (e->ts > st->as_of)
            continue;
        cascade_item_stats_add(&st->item_stats[e->item], e);
        cascade_user_stats_add(&st->user_stats[e->user], e);
        if (cascade_affinity_observe(&st->affinity[e->user], ds, e, &st->o->weights, hl) != 0)
            return CASCADE_ENOMEM;
    }
    if (compute_follows(st) != 0)
        return CASCADE_ENOMEM;
    return cascade_ui_build(ds, &st->o->weights, 0, &st->ui);
}

static int put_del(struct cascade_pipeline *pl, const char *key)
{
    const char *argv[] = {"UNLINK", key};
    size_t len[] = {6, strlen(key)};
    return cascade_pipeline_add(pl, 2, argv, len);
}

static int put_set(struct cascade_pipeline *pl, const char *key, const uint8_t *val, size_t vlen)
{
    const char *argv[] = {"SET", key, (const char *)val};
    size_t len[] = {3, strlen(key), vlen};
    return cascade_pipeline_add(pl, 3, argv, len);
}

/* Delete every {ns}:* key (SCAN + UNLINK), for --flush. */
static int flush_namespace(cascade_redis *r, const char *ns, size_t *deleted, char *err,
                           size_t errlen)
{
    char pattern[CASCADE_KEY_MAX + 4], cursor[32] = "0";
    snprintf(pattern, sizeof(pattern), "%s:*", ns);
    do {
        redisReply *rep = NULL;
        int rc = cascade_redis_command(r, &rep, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (rc != 0) {
            snprintf(err, errlen, "%s (flushing %s)", cascade_redis_error(r), pattern);
            return rc;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            snprintf(err, errlen, "redis %s: unexpected SCAN reply", cascade_redis_addr(r));
            return CASCADE_EIO;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *del = NULL;
            rc = cascade_redis_command(r, &del, "UNLINK %b", keys->element[i]->str,
                                       keys->element[i]->len);
            if (del)
                freeReplyObject(del);
            if (rc != 0) {
                freeReplyObject(rep);
                snprintf(err, errlen, "%s (flushing %s)", cascade_redis_error(r), pattern);
                return rc;
            }
            (*deleted)++;
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int load_items(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_ItemRecord_size];
    struct cascade_progress prog;
    int rc = 0;
    cascade_progress_start(&prog, "load", "items", ds->n_items, st->o->quiet);
    for (size_t i = 0; i < ds->n_items && rc == 0; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        cascade_v1_ItemRecord rec;
        size_t len;
        cascade_item_record_fill(it, &st->item_stats[i], &rec);
        if (st->o->snapshot) {
            const cascade_v1_ItemStats *base = cascade_snapshot_counters(st->o->snapshot, it->id);
            rec.has_online_base = true;
            if (base && !st->o->flush)
                rec.online_base = *base;
        }
        if ((rc =
                 cascade_record_encode(cascade_v1_ItemRecord_fields, &rec, buf, sizeof(buf), &len)))
            break;
        rc = put_set(&st->pl, cascade_key_item(key, st->o->ns, it->id), buf, len);
        if ((i & 1023) == 0)
            cascade_progress_update(&prog, i);
    }
    if (rc == 0)
        rc = cascade_pipeline_flush(&st->pl);
    cascade_progress_finish(&prog, ds->n_items);
    st->sum->items = ds->n_items;
    return rc;
}

static bool live_has_item(const struct live_entries *live, uint64_t item_id)
{
    for (size_t i = 0; i < live->n; i++)
        if (live->e[i].item_id == item_id)
            return true;
    return false;
}

/* RPUSH the user's newest interactions (newest first): the kept live
 * entries, then the log's (an item of a live entry is not repeated), at most
 * lastn; SADD all their items. */
static int load_user_lists(struct load_state *st, size_t u, const char *uid,
                           const struct live_entries *live)
{
    const struct cascade_ui_entry *e = st->ui.e + st->ui.off[u];
    size_t n = st->ui.off[u + 1] - st->ui.off[u], total = n + live->n, nl = 0, nc = 0;
    char lkey[CASCADE_KEY_MAX], ckey[CASCADE_KEY_MAX];
    int rc;
    cascade_key_user_lastn(lkey, st->o->ns, uid);
    cascade_key_user_consumed(ckey, st->o->ns, uid);
    if ((rc = put_del(&st->pl, lkey)) || (rc = put_del(&st->pl, ckey)) || total == 0)
        return rc;
    const char **argv = malloc((total + 2) * sizeof(char *));
    size_t *len = malloc((total + 2) * sizeof(size_t));
    uint8_t(*enc)[cascade_v1_Interaction_size] = malloc(total * sizeof(*enc) + 1);
    char(*num)[NUM_MAX] = malloc(total * sizeof(*num));
    if (!argv || !len || !enc || !num) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    argv[0] = "RPUSH";
    argv[1] = lkey;
    len[0] = 5;
    len[1] = strlen(lkey);
    for (size_t i = 0; i < live->n && nl < st->o->lastn && rc == 0; i++, nl++) {
        rc = cascade_record_encode(cascade_v1_Interaction_fields, &live->e[i], enc[nl],
                                   sizeof(enc[nl]), &len[nl + 2]);
        argv[nl + 2] = (const char *)enc[nl];
    }
    for (size_t i = 0; i < n && nl < st->o->lastn && rc == 0; i++) {
        cascade_v1_Interaction it = {st->ds->items[e[i].item].id, e[i].type, e[i].last_ts,
                                     e[i].weight};
        if (live_has_item(live, it.item_id))
            continue;
        rc = cascade_record_encode(cascade_v1_Interaction_fields, &it, enc[nl], sizeof(enc[nl]),
                                   &len[nl + 2]);
        argv[nl + 2] = (const char *)enc[nl];
        nl++;
    }
    if (rc == 0 && nl)
        rc = cascade_pipeline_add(&st->pl, (int)nl + 2, argv, len);
    argv[0] = "SADD";
    argv[1] = ckey;
    len[0] = 4;
    len[1] = strlen(ckey);
    for (size_t i = 0; i < live->n; i++) {
        len[nc + 2] = (size_t)snprintf(num[nc], NUM_MAX, "%" PRIu64, live->e[i].item_id);
        argv[nc + 2] = num[nc];
        nc++;
    }
    for (size_t i = 0; i < n; i++) {
        len[nc + 2] = (size_t)snprintf(num[nc], NUM_MAX, "%" PRIu64, st->ds->items[e[i].item].id);
        argv[nc + 2] = num[nc];
        nc++;
    }
    if (rc == 0)
        rc = cascade_pipeline_add(&st->pl, (int)nc + 2, argv, len);
    st->sum->lastn_lists += nl > 0;
    st->sum->consumed_sets++;
    st->sum->live_kept += live->n;
out:
    free(argv);
    free(len);
    free(enc);
    free(num);
    return rc;
}

/* The author of a live follow entry (from the log's item table), or 0. */
static uint64_t live_follow_author(const struct load_state *st, const cascade_v1_Interaction *it)
{
    if (it->type != CASCADE_EV_FOLLOW)
        return 0;
    long i = cascade_dataset_find_item(st->ds, it->item_id);
    return i >= 0 ? st->ds->items[i].author_id : 0;
}

/* Replace the user's followed-author set (UNLINK, then SADD when any): the
 * log's follows and those of the kept live entries. */
static int load_user_follows(struct load_state *st, size_t u, const char *uid,
                             const struct live_entries *live)
{
    size_t first = st->follow_off[u], n = st->follow_off[u + 1] - first, m = 0;
    char key[CASCADE_KEY_MAX];
    int rc = put_del(&st->pl, cascade_key_user_follows(key, st->o->ns, uid));
    if (rc != 0 || n + live->n == 0)
        return rc;
    const char **argv = malloc((n + live->n + 2) * sizeof(char *));
    size_t *len = malloc((n + live->n + 2) * sizeof(size_t));
    char(*num)[NUM_MAX] = malloc((n + live->n) * sizeof(*num));
    if (!argv || !len || !num) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    argv[0] = "SADD";
    argv[1] = key;
    len[0] = 4;
    len[1] = strlen(key);
    for (size_t i = 0; i < n + live->n; i++) {
        uint64_t author =
            i < n ? st->follow_author[first + i] : live_follow_author(st, &live->e[i - n]);
        if (author == 0)
            continue;
        len[m + 2] = (size_t)snprintf(num[m], NUM_MAX, "%" PRIu64, author);
        argv[m + 2] = num[m];
        m++;
    }
    if (m)
        rc = cascade_pipeline_add(&st->pl, (int)m + 2, argv, len);
    st->sum->follow_sets += m > 0;
out:
    free(argv);
    free(len);
    free(num);
    return rc;
}

/* Users whose live last-n is read per round trip. */
#define LIVE_CHUNK 256

/* Decode a last-n element; false when it is not an Interaction. */
static bool decode_interaction(const redisReply *v, cascade_v1_Interaction *it)
{
    return v && v->type == REDIS_REPLY_STRING &&
           cascade_record_decode(cascade_v1_Interaction_fields, it, (const uint8_t *)v->str,
                                 v->len) == 0;
}

/* Read the live last-n of users [u0, u1) and keep, per user, the entries
 * newer than st->live_after into live[u - u0] (entries point into store,
 * room for LIVE_CHUNK × lastn). First only each list's head (LINDEX 0: a
 * user without Feedback since the data was read costs one small reply);
 * the whole list only for users whose head is newer. Both are pipelines on
 * the write pipeline's connection, which is flushed first. */
static int read_live(struct load_state *st, size_t u0, size_t u1, struct live_entries *live,
                     cascade_v1_Interaction *store)
{
    cascade_redis *r = st->pl.r;
    char key[CASCADE_KEY_MAX];
    bool newer[LIVE_CHUNK];
    int rc = cascade_pipeline_flush(&st->pl);
    size_t sent = 0, used = 0;
    for (size_t u = u0; u < u1 && rc == 0; u++, sent++)
        rc = cascade_redis_append(r, "LINDEX %s 0",
                                  cascade_key_user_lastn(key, st->o->ns, st->ds->users[u].id));
    for (size_t k = 0; k < sent; k++) {
        redisReply *rep = NULL;
        cascade_v1_Interaction it;
        int rc2 = cascade_redis_get_reply(r, &rep);
        newer[k] = rc2 == 0 && decode_interaction(rep, &it) && it.time_s > st->live_after;
        live[k] = (struct live_entries){store, 0};
        freeReplyObject(rep);
        if (rc == 0)
            rc = rc2;
    }
    size_t asked = 0;
    for (size_t k = 0; k < sent && rc == 0; k++)
        if (newer[k] && (rc = cascade_redis_append(
                             r, "LRANGE %s 0 %llu",
                             cascade_key_user_lastn(key, st->o->ns, st->ds->users[u0 + k].id),
                             (unsigned long long)st->o->lastn - 1)) == 0)
            asked++;
    for (size_t k = 0; k < sent && asked > 0; k++) {
        if (!newer[k])
            continue;
        redisReply *rep = NULL;
        int rc2 = cascade_redis_get_reply(r, &rep);
        struct live_entries *l = &live[k];
        l->e = store + used;
        for (size_t i = 0; rc2 == 0 && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
            cascade_v1_Interaction it;
            if (decode_interaction(rep->element[i], &it) && it.time_s > st->live_after &&
                l->n < st->o->lastn)
                l->e[l->n++] = it;
        }
        used += l->n;
        asked--;
        freeReplyObject(rep);
        if (rc == 0)
            rc = rc2;
    }
    return rc;
}

/* The previous load's as_of ({ns}:meta), 0 when none. */
static int previous_as_of(struct load_state *st, int64_t *out)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    *out = 0;
    int rc =
        cascade_redis_command(st->pl.r, &rep, "HGET %s as_of", cascade_key_meta(key, st->o->ns));
    if (rc == 0 && rep->type == REDIS_REPLY_STRING)
        *out = strtoll(rep->str, NULL, 10);
    freeReplyObject(rep);
    return rc;
}

/* The replay's state behind rec, paired with the snapshot's user sequence
 * number (rec->online_seq and the base's seq), so serving continues it with
 * the later events: {ns}:user:{uid}:online (UserOnlineBase; docs/closed-
 * loop.md, "User-side online features"), or that key deleted without a
 * snapshot or when the user has more categories than the base holds (then
 * serving keeps the nightly user columns). The same with an empty state
 * under {ns}:loop:user_online_new: where users without a record (new since
 * the build) start. *seq gets the base's sequence when one is written. */
static int put_online_base(struct load_state *st, const struct cascade_affinity *aff,
                           const char *key, uint64_t *seq)
{
    uint8_t buf[cascade_v1_UserOnlineBase_size];
    size_t len;
    cascade_v1_UserOnlineBase b = cascade_v1_UserOnlineBase_init_zero;
    struct cascade_behaviour_weights def;
    if (st->o->snapshot == NULL || !cascade_affinity_to_base(aff, &b))
        return put_del(&st->pl, key);
    /* --flush deleted the sequence with the namespace: it starts again. */
    *seq = b.seq = st->o->flush ? 0 : st->o->snapshot->user_seq;
    b.half_life_s = st->affinity_hl_s;
    cascade_behaviour_weights_default(&def);
    if (memcmp(&def, &st->o->weights, sizeof def) != 0) {
        memcpy(b.weights, st->o->weights.w, sizeof st->o->weights.w);
        b.weights_count = CASCADE_EV_MAX + 1;
    }
    int rc = cascade_record_encode(cascade_v1_UserOnlineBase_fields, &b, buf, sizeof buf, &len);
    return rc ? rc : put_set(&st->pl, key, buf, len);
}

static int put_user_online_base(struct load_state *st, const struct cascade_affinity *aff,
                                cascade_v1_UserRecord *rec)
{
    char key[CASCADE_KEY_MAX];
    cascade_key_user_online_base(key, st->o->ns, rec->user_id);
    return put_online_base(st, aff, key, &rec->online_seq);
}

static int put_new_user_online_base(struct load_state *st)
{
    char key[CASCADE_KEY_MAX];
    struct cascade_affinity empty = {0};
    uint64_t seq;
    cascade_key_user_online_new(key, st->o->ns);
    return put_online_base(st, &empty, key, &seq);
}

static int load_users(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_UserRecord_size];
    double hl = st->affinity_hl_s;
    struct cascade_progress prog;
    struct live_entries live[LIVE_CHUNK];
    cascade_v1_Interaction *store = malloc(LIVE_CHUNK * st->o->lastn * sizeof(*store) + 1);
    int rc = store ? 0 : CASCADE_ENOMEM;
    cascade_progress_start(&prog, "load", "users", ds->n_users, st->o->quiet);
    for (size_t u = 0; u < ds->n_users && rc == 0; u++) {
        cascade_v1_UserRecord rec;
        size_t len;
        if (u % LIVE_CHUNK == 0) {
            size_t end = u + LIVE_CHUNK < ds->n_users ? u + LIVE_CHUNK : ds->n_users;
            if ((rc = read_live(st, u, end, live, store)) != 0)
                break;
        }
        cascade_user_record_fill(&ds->users[u], &st->user_stats[u], &st->affinity[u], st->as_of, hl,
                                 &rec);
        if ((rc = put_user_online_base(st, &st->affinity[u], &rec)) ||
            (rc =
                 cascade_record_encode(cascade_v1_UserRecord_fields, &rec, buf, sizeof(buf), &len)))
            break;
        rc = put_set(&st->pl, cascade_key_user(key, st->o->ns, ds->users[u].id), buf, len);
        if (rc == 0)
            rc = load_user_lists(st, u, ds->users[u].id, &live[u % LIVE_CHUNK]);
        if (rc == 0)
            rc = load_user_follows(st, u, ds->users[u].id, &live[u % LIVE_CHUNK]);
        if ((u & 1023) == 0)
            cascade_progress_update(&prog, u);
    }
    if (rc == 0)
        rc = put_new_user_online_base(st);
    if (rc == 0)
        rc = cascade_pipeline_flush(&st->pl);
    cascade_progress_finish(&prog, ds->n_users);
    st->sum->users = ds->n_users;
    free(store);
    return rc;
}

static int write_meta(struct load_state *st)
{
    char key[CASCADE_KEY_MAX], built[32], iso[32], users[24], items[24], events[24], as_of[24];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(built, sizeof(built), "%lld", (long long)now);
    snprintf(users, sizeof(users), "%zu", st->ds->n_users);
    snprintf(items, sizeof(items), "%zu", st->ds->n_items);
    snprintf(events, sizeof(events), "%zu", st->ds->n_events);
    snprintf(as_of, sizeof(as_of), "%lld", (long long)st->as_of);
    const char *argv[] = {"HSET",         cascade_key_meta(key, st->o->ns),
                          "built_at",     built,
                          "built_at_iso", iso,
                          "users",        users,
                          "items",        items,
                          "events",       events,
                          "as_of",        as_of,
                          "source",       st->o->source ? st->o->source : ""};
    size_t n = sizeof(argv) / sizeof(argv[0]), len[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    int rc = cascade_pipeline_add(&st->pl, (int)n, argv, len);
    return rc ? rc : cascade_pipeline_flush(&st->pl);
}

static void free_state(struct load_state *st)
{
    if (st->affinity)
        for (size_t u = 0; u < st->ds->n_users; u++)
            cascade_affinity_free(&st->affinity[u]);
    free(st->affinity);
    free(st->item_stats);
    free(st->user_stats);
    free(st->follow_off);
    free(st->follow_author);
    cascade_ui_free(&st->ui);
}

int cascade_load_run(const cascade_dataset *ds, cascade_redis *r, const struct cascade_load_opts *o,
                     struct cascade_load_summary *sum, char *err, size_t errlen)
{
    struct cascade_load_summary local;
    struct load_state st = {.ds = ds, .o = o};
    int64_t t0_us;
    const char *phase = "computing records";
    int rc;
    t0_us = cascade_now_us();
    st.sum = sum ? sum : &local;
    memset(st.sum, 0, sizeof(*st.sum));
    st.as_of = o->as_of ? o->as_of : cascade_dataset_last_ts(ds);
    st.sum->as_of = st.as_of;
    /* The snapshot's counters become the records' online_base: an event
     * they hold that as_of leaves out of the stats would be in neither the
     * record nor the delta (counter - base). */
    if (o->snapshot && (o->snapshot->n_items > 0 || o->snapshot->user_seq > 0) &&
        st.as_of < cascade_dataset_last_ts(ds)) {
        snprintf(err, errlen,
                 "load: --as-of %lld leaves out the log's events after it, but the online "
                 "counters (%zu items) already count them, so they would be lost from the "
                 "rank features; run load without --as-of while cascade-consumer writes counters",
                 (long long)st.as_of, o->snapshot->n_items);
        rc = CASCADE_EINVAL;
        goto out_quiet;
    }
    st.sum->affinity_half_life_days =
        cascade_timescale_days(o->affinity_half_life_days, CASCADE_TIMESCALE_AFFINITY_SHARE,
                               cascade_timescale_span_days(ds));
    st.affinity_hl_s = st.sum->affinity_half_life_days * DAY_S;
    cascade_pipeline_init(&st.pl, r, o->pipeline);
    if ((rc = compute_state(&st)) != 0)
        goto out;
    if (o->flush && (rc = flush_namespace(r, o->ns, &st.sum->deleted, err, errlen)) != 0)
        goto out_quiet;
    if ((phase = "reading the previous load's as_of", rc = previous_as_of(&st, &st.live_after)))
        goto out;
    if (st.live_after < st.as_of)
        st.live_after = st.as_of;
    if ((phase = "loading items", rc = load_items(&st)) ||
        (phase = "loading users", rc = load_users(&st)) ||
        (phase = "writing meta", rc = write_meta(&st)))
        goto out;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "load: out of memory while %s", phase);
    else if (rc == CASCADE_ETOOBIG)
        snprintf(err, errlen, "load: a record does not encode while %s", phase);
    else if (rc != 0)
        snprintf(err, errlen, "%s (while %s)", st.pl.err[0] ? st.pl.err : cascade_redis_error(r),
                 phase);
out_quiet:
    st.sum->commands = st.pl.total;
    st.sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    free_state(&st);
    return rc;
}
