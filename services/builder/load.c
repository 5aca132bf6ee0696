/* The load job: compute item and user records from the whole event log and
 * write them, the per-user lists and the item indexes to Redis with
 * pipelined commands, then stamp {ns}:meta. Re-running it replaces what it
 * wrote before (lists and sorted sets are deleted and rebuilt). */
#include "load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "interests.h"
#include "pipeline.h"
#include "progress.h"
#include "records.h"
#include "store.h"

#define DAY_S 86400.0
#define ZADD_CHUNK 500
#define NUM_MAX 24

void cascade_load_defaults(struct cascade_load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ns = "cascade";
    o->lastn = 200;
    o->hot_size = 1000;
    o->hot_half_life_days = 2;
    o->affinity_half_life_days = 30;
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
    struct cascade_ui ui; /* uncapped: lastn is its head, consumed is all of it */
    struct cascade_pipeline pl;
    struct cascade_load_summary *sum;
};

void cascade_hot_scores(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                        int64_t as_of, double half_life_s, double *scores)
{
    memset(scores, 0, ds->n_items * sizeof(double));
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (w->w[e->type] > 0 && e->ts <= as_of)
            scores[e->item] += w->w[e->type] * cascade_decay(as_of - e->ts, half_life_s);
    }
}

static int compute_state(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    double hl = st->o->affinity_half_life_days * DAY_S;
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
        float w = st->o->weights.w[e->type];
        if (w > 0 && cascade_affinity_add(&st->affinity[e->user], ds->items[e->item].category, w,
                                          e->ts, hl) != 0)
            return CASCADE_ENOMEM;
    }
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

static int put_zadd1(struct cascade_pipeline *pl, const char *key, double score, uint64_t member)
{
    char s[NUM_MAX * 2], m[NUM_MAX];
    const char *argv[] = {"ZADD", key, s, m};
    size_t len[] = {4, strlen(key), (size_t)snprintf(s, sizeof(s), "%.17g", score),
                    (size_t)snprintf(m, sizeof(m), "%" PRIu64, member)};
    return cascade_pipeline_add(pl, 4, argv, len);
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

static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Delete the author and city sorted sets of the items about to be written. */
static int reset_item_indexes(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    int rc = 0;
    uint64_t *authors = malloc((ds->n_items + 1) * sizeof(uint64_t));
    uint32_t *cities = malloc((ds->n_items + 1) * sizeof(uint32_t));
    if (!authors || !cities) {
        free(authors);
        free(cities);
        return CASCADE_ENOMEM;
    }
    size_t na = 0, nc = 0;
    for (size_t i = 0; i < ds->n_items; i++) {
        authors[na++] = ds->items[i].author_id;
        cities[nc++] = ds->items[i].city;
    }
    /* Dedupe by sorting; n log n over items is cheap next to the writes. */
    qsort(authors, na, sizeof(uint64_t), cmp64);
    qsort(cities, nc, sizeof(uint32_t), cmp32);
    for (size_t i = 0; i < na && rc == 0; i++) {
        if (authors[i] == 0 || (i && authors[i] == authors[i - 1]))
            continue;
        st->sum->authors++;
        rc = put_del(&st->pl, cascade_key_author_items(key, st->o->ns, authors[i]));
    }
    for (size_t i = 0; i < nc && rc == 0; i++) {
        if (cities[i] == 0 || (i && cities[i] == cities[i - 1]))
            continue;
        st->sum->cities++;
        rc = put_del(&st->pl, cascade_key_city_items(key, st->o->ns, cities[i]));
    }
    free(authors);
    free(cities);
    return rc;
}

static int load_items(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_ItemRecord_size];
    struct cascade_progress prog;
    int rc = reset_item_indexes(st);
    cascade_progress_start(&prog, "load", "items", ds->n_items, st->o->quiet);
    for (size_t i = 0; i < ds->n_items && rc == 0; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        cascade_v1_ItemRecord rec;
        size_t len;
        cascade_item_record_fill(it, &st->item_stats[i], &rec);
        if ((rc =
                 cascade_record_encode(cascade_v1_ItemRecord_fields, &rec, buf, sizeof(buf), &len)))
            break;
        rc = put_set(&st->pl, cascade_key_item(key, st->o->ns, it->id), buf, len);
        if (rc == 0 && it->author_id)
            rc = put_zadd1(&st->pl, cascade_key_author_items(key, st->o->ns, it->author_id),
                           (double)it->created_at, it->id);
        if (rc == 0 && it->city)
            rc = put_zadd1(&st->pl, cascade_key_city_items(key, st->o->ns, it->city),
                           (double)it->created_at, it->id);
        if ((i & 1023) == 0)
            cascade_progress_update(&prog, i);
    }
    if (rc == 0)
        rc = cascade_pipeline_flush(&st->pl);
    cascade_progress_finish(&prog, ds->n_items);
    st->sum->items = ds->n_items;
    return rc;
}

/* RPUSH the user's newest interactions (newest first) and SADD all items. */
static int load_user_lists(struct load_state *st, size_t u, const char *uid)
{
    const struct cascade_ui_entry *e = st->ui.e + st->ui.off[u];
    size_t n = st->ui.off[u + 1] - st->ui.off[u], nl = n < st->o->lastn ? n : st->o->lastn;
    char lkey[CASCADE_KEY_MAX], ckey[CASCADE_KEY_MAX];
    int rc;
    cascade_key_user_lastn(lkey, st->o->ns, uid);
    cascade_key_user_consumed(ckey, st->o->ns, uid);
    if ((rc = put_del(&st->pl, lkey)) || (rc = put_del(&st->pl, ckey)) || n == 0)
        return rc;
    const char **argv = malloc((n + 2) * sizeof(char *));
    size_t *len = malloc((n + 2) * sizeof(size_t));
    uint8_t(*enc)[cascade_v1_Interaction_size] = malloc(nl * sizeof(*enc) + 1);
    char(*num)[NUM_MAX] = malloc(n * sizeof(*num));
    if (!argv || !len || !enc || !num) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    argv[0] = "RPUSH";
    argv[1] = lkey;
    len[0] = 5;
    len[1] = strlen(lkey);
    for (size_t i = 0; i < nl && rc == 0; i++) {
        cascade_v1_Interaction it = {st->ds->items[e[i].item].id, e[i].type, e[i].last_ts,
                                     e[i].weight};
        rc = cascade_record_encode(cascade_v1_Interaction_fields, &it, enc[i], sizeof(enc[i]),
                                   &len[i + 2]);
        argv[i + 2] = (const char *)enc[i];
    }
    if (rc == 0 && nl)
        rc = cascade_pipeline_add(&st->pl, (int)nl + 2, argv, len);
    argv[0] = "SADD";
    argv[1] = ckey;
    len[0] = 4;
    len[1] = strlen(ckey);
    for (size_t i = 0; i < n && rc == 0; i++) {
        len[i + 2] = (size_t)snprintf(num[i], NUM_MAX, "%" PRIu64, st->ds->items[e[i].item].id);
        argv[i + 2] = num[i];
    }
    if (rc == 0)
        rc = cascade_pipeline_add(&st->pl, (int)n + 2, argv, len);
    st->sum->lastn_lists += nl > 0;
    st->sum->consumed_sets++;
out:
    free(argv);
    free(len);
    free(enc);
    free(num);
    return rc;
}

static int load_users(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_UserRecord_size];
    double hl = st->o->affinity_half_life_days * DAY_S;
    struct cascade_progress prog;
    int rc = 0;
    cascade_progress_start(&prog, "load", "users", ds->n_users, st->o->quiet);
    for (size_t u = 0; u < ds->n_users && rc == 0; u++) {
        cascade_v1_UserRecord rec;
        size_t len;
        cascade_user_record_fill(&ds->users[u], &st->user_stats[u], &st->affinity[u], st->as_of, hl,
                                 &rec);
        if ((rc =
                 cascade_record_encode(cascade_v1_UserRecord_fields, &rec, buf, sizeof(buf), &len)))
            break;
        rc = put_set(&st->pl, cascade_key_user(key, st->o->ns, ds->users[u].id), buf, len);
        if (rc == 0)
            rc = load_user_lists(st, u, ds->users[u].id);
        if ((u & 1023) == 0)
            cascade_progress_update(&prog, u);
    }
    if (rc == 0)
        rc = cascade_pipeline_flush(&st->pl);
    cascade_progress_finish(&prog, ds->n_users);
    st->sum->users = ds->n_users;
    return rc;
}

struct scored_item {
    double score;
    uint64_t id;
};

static int cmp_scored_desc(const void *a, const void *b)
{
    const struct scored_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int load_hot(struct load_state *st)
{
    const cascade_dataset *ds = st->ds;
    char key[CASCADE_KEY_MAX];
    double *scores = malloc((ds->n_items + 1) * sizeof(double));
    struct scored_item *top = malloc((ds->n_items + 1) * sizeof(*top));
    int rc = 0;
    if (!scores || !top) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    cascade_hot_scores(ds, &st->o->weights, st->as_of, st->o->hot_half_life_days * DAY_S, scores);
    size_t n = 0;
    for (size_t i = 0; i < ds->n_items; i++)
        if (scores[i] > 0)
            top[n++] = (struct scored_item){scores[i], ds->items[i].id};
    qsort(top, n, sizeof(*top), cmp_scored_desc);
    if (n > st->o->hot_size)
        n = st->o->hot_size;
    cascade_key_hot(key, st->o->ns);
    rc = put_del(&st->pl, key);
    for (size_t off = 0; off < n && rc == 0; off += ZADD_CHUNK) {
        size_t m = n - off < ZADD_CHUNK ? n - off : ZADD_CHUNK;
        const char *argv[2 + 2 * ZADD_CHUNK];
        size_t len[2 + 2 * ZADD_CHUNK];
        char nums[2 * ZADD_CHUNK][NUM_MAX * 2];
        argv[0] = "ZADD";
        argv[1] = key;
        len[0] = 4;
        len[1] = strlen(key);
        for (size_t i = 0; i < m; i++) {
            char *s = nums[2 * i], *mem = nums[2 * i + 1];
            len[2 + 2 * i] = (size_t)snprintf(s, NUM_MAX * 2, "%.9g", top[off + i].score);
            len[3 + 2 * i] = (size_t)snprintf(mem, NUM_MAX * 2, "%" PRIu64, top[off + i].id);
            argv[2 + 2 * i] = s;
            argv[3 + 2 * i] = mem;
        }
        rc = cascade_pipeline_add(&st->pl, (int)(2 + 2 * m), argv, len);
    }
    if (rc == 0)
        rc = cascade_pipeline_flush(&st->pl);
    st->sum->hot = n;
out:
    free(scores);
    free(top);
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
    cascade_ui_free(&st->ui);
}

int cascade_load_run(const cascade_dataset *ds, cascade_redis *r, const struct cascade_load_opts *o,
                     struct cascade_load_summary *sum, char *err, size_t errlen)
{
    struct cascade_load_summary local;
    struct load_state st = {.ds = ds, .o = o};
    struct timespec t0, t1;
    const char *phase = "computing records";
    int rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st.sum = sum ? sum : &local;
    memset(st.sum, 0, sizeof(*st.sum));
    st.as_of = o->as_of ? o->as_of : cascade_dataset_last_ts(ds);
    st.sum->as_of = st.as_of;
    cascade_pipeline_init(&st.pl, r, o->pipeline);
    if ((rc = compute_state(&st)) != 0)
        goto out;
    if (o->flush && (rc = flush_namespace(r, o->ns, &st.sum->deleted, err, errlen)) != 0)
        goto out_quiet;
    if ((phase = "loading items", rc = load_items(&st)) ||
        (phase = "loading users", rc = load_users(&st)) ||
        (phase = "loading the hot list", rc = load_hot(&st)) ||
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
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st.sum->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    free_state(&st);
    return rc;
}
