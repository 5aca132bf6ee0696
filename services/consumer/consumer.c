/* Stream consumer: options, the consumer group on both streams, fetching a
 * batch (re-claimed entries first, then new ones) into parsed entries,
 * acknowledgement, the lag gauges and the step that ties them together. The
 * apply step is in consumer_apply.c. */
#include "consumer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "events.h"
#include "log.h"

const char *cascade_consumer__stream_name(int stream)
{
    return stream == CASCADE_CONSUMER_EVENTS ? "events" : "serves";
}

int cascade_consumer_config(const cascade_config *cfg, struct cascade_consumer_opts *out, char *err,
                            size_t errlen)
{
    int64_t batch, idle, ttl, ucap, uttl;
    const char *group, *dir;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = cascade_config_string(cfg, "consumer.group", "cascade-consumer", &group, err,
                                    errlen)) ||
        (rc = cascade_config_int(cfg, "consumer.batch", 200, 1, 10000, &batch, err, errlen)) ||
        (rc = cascade_config_int(cfg, "consumer.claim_idle_ms", 30000, 0, 86400000, &idle, err,
                                 errlen)) ||
        (rc = cascade_config_double(cfg, "consumer.half_life_s", 86400, 1, 365 * 86400.0,
                                    &out->half_life_s, err, errlen)) ||
        (rc = cascade_config_int(cfg, "consumer.mark_ttl_s", 7 * 86400, 3600, 366 * 86400, &ttl,
                                 err, errlen)) ||
        (rc = cascade_config_int(cfg, "consumer.user_events_cap", 2000, 10, 1000000, &ucap, err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "consumer.user_events_ttl_s", 3 * 86400, 3600, 366 * 86400,
                                 &uttl, err, errlen)) ||
        (rc = cascade_config_string(cfg, "consumer.data_dir", "", &dir, err, errlen)))
        return rc;
    out->user_events_cap = (uint32_t)ucap;
    out->user_events_ttl_s = uttl;
    out->group = group;
    out->batch = (uint32_t)batch;
    out->claim_idle_ms = idle;
    out->mark_ttl_s = ttl;
    out->data_dir = dir;
    return 0;
}

static bool copy_str(char *dst, size_t len, const char *src)
{
    if (src == NULL)
        src = "";
    if (strlen(src) >= len)
        return false;
    memcpy(dst, src, strlen(src) + 1);
    return true;
}

static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return false;
    return true;
}

static void register_metrics(cascade_consumer *c, cascade_metrics *m)
{
    cascade_metric_family *applied = cascade_metrics_counter(
        m, "cascade_consumer_applied_total", "Stream entries applied to the counters", "stream");
    cascade_metric_family *dups = cascade_metrics_counter(
        m, "cascade_consumer_duplicates_total",
        "Stream entries delivered again after they were applied (skipped)", "stream");
    cascade_metric_family *claimed = cascade_metrics_counter(
        m, "cascade_consumer_claimed_total",
        "Stream entries re-claimed from a consumer that left them pending", "stream");
    cascade_metric_family *lag = cascade_metrics_gauge(
        m, "cascade_consumer_lag_entries",
        "Entries of the stream not yet delivered to the group (XINFO GROUPS lag)", "stream");
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++) {
        const char *label[1] = {cascade_consumer__stream_name(s)};
        c->applied[s] = cascade_metric_get(applied, label);
        c->duplicates[s] = cascade_metric_get(dups, label);
        c->claimed[s] = cascade_metric_get(claimed, label);
        c->lag_entries[s] = cascade_metric_get(lag, label);
    }
    c->bad = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_consumer_bad_entries_total",
                                "Stream entries that could not be parsed (skipped, acknowledged)",
                                NULL),
        NULL);
    c->errors = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_consumer_errors_total",
                                "Batches that failed (Redis or partition write); retried", NULL),
        NULL);
    static const double delay_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1,     2.5,  5,     10,   30,  60,   300};
    c->delay = cascade_metric_get(
        cascade_metrics_histogram(m, "cascade_consumer_apply_delay_seconds",
                                  "Time from an entry's XADD to its counters being applied", NULL,
                                  delay_buckets, sizeof delay_buckets / sizeof *delay_buckets),
        NULL);
    c->partition_lines = cascade_metric_get(
        cascade_metrics_counter(m, "cascade_consumer_partition_lines_total",
                                "Event lines appended to the daily partitions", NULL),
        NULL);
}

cascade_consumer *cascade_consumer_create(const struct cascade_consumer_opts *o, cascade_metrics *m,
                                          char *err, size_t errlen)
{
    cascade_consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "consumer: out of memory");
        return NULL;
    }
    if (!valid_name(o->group) || !valid_name(o->name) ||
        !copy_str(c->group, sizeof c->group, o->group) ||
        !copy_str(c->name, sizeof c->name, o->name)) {
        snprintf(err, errlen,
                 "consumer: group and name must be 1..%d printable characters without spaces",
                 CASCADE_CONSUMER_NAME_MAX - 1);
        goto fail;
    }
    if (!copy_str(c->ns, sizeof c->ns, o->ns) ||
        !copy_str(c->data_dir, sizeof c->data_dir, o->data_dir)) {
        snprintf(err, errlen, "consumer: namespace or data directory too long");
        goto fail;
    }
    if (o->batch == 0 || o->half_life_s <= 0 || o->mark_ttl_s <= 0 || o->claim_idle_ms < 0) {
        snprintf(err, errlen, "consumer: batch, half-life and mark TTL must be positive");
        goto fail;
    }
    c->batch = o->batch;
    c->claim_idle_ms = o->claim_idle_ms;
    c->half_life_s = o->half_life_s;
    c->mark_ttl_s = o->mark_ttl_s;
    /* Options built by hand (tests) without the per-user event list's
     * bounds get the config defaults. */
    c->user_events_cap = o->user_events_cap ? o->user_events_cap : 2000;
    c->user_events_ttl_s = o->user_events_ttl_s > 0 ? o->user_events_ttl_s : 3 * 86400;
    cascade_key_events(c->stream_key[CASCADE_CONSUMER_EVENTS], c->ns);
    cascade_key_serves(c->stream_key[CASCADE_CONSUMER_SERVES], c->ns);
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++)
        snprintf(c->claim_cursor[s], sizeof c->claim_cursor[s], "0-0");
    if ((c->arena = cascade_arena_create(0)) == NULL) {
        snprintf(err, errlen, "consumer: out of memory");
        goto fail;
    }
    pthread_mutex_init(&c->apply_script.lock, NULL);
    register_metrics(c, m);
    return c;
fail:
    free(c);
    return NULL;
}

void cascade_consumer_destroy(cascade_consumer *c)
{
    if (c == NULL)
        return;
    if (c->arena) {
        cascade_arena_destroy(c->arena);
        pthread_mutex_destroy(&c->apply_script.lock);
    }
    free(c);
}

int cascade_consumer_ensure_groups(cascade_consumer *c, cascade_redis *r)
{
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++) {
        redisReply *rep = NULL;
        int rc = cascade_redis_command(r, &rep, "XGROUP CREATE %s %s 0 MKSTREAM", c->stream_key[s],
                                       c->group);
        freeReplyObject(rep);
        if (rc == CASCADE_EIO && strstr(cascade_redis_error(r), "BUSYGROUP"))
            rc = 0; /* the group exists */
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ parse */

static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2)
        if (fields->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[k]->str, name) == 0 &&
            fields->element[k + 1]->type == REDIS_REPLY_STRING)
            return fields->element[k + 1];
    return NULL;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || *s == '-')
        return false;
    *out = v;
    return true;
}

/* The largest value a partition line may carry: the dataset reader's bound
 * (services/builder/import/dataset.c parse_float), so a written-through
 * Feedback value can never make every nightly build refuse the partition. */
#define CASCADE_CONSUMER_MAX_VALUE 1e9

static bool parse_event(cascade_consumer *c, const redisReply *f, struct cascade_consumer_entry *e)
{
    const redisReply *user = field(f, "user"), *item = field(f, "item"), *type = field(f, "type"),
                     *value = field(f, "value"), *ts = field(f, "ts");
    uint64_t t;
    if (!user || !item || !type || !ts || user->len == 0 || user->len > 64 ||
        !parse_u64(item->str, &e->item) || e->item == 0 ||
        cascade_event_type_parse(type->str, &e->type) || !parse_u64(ts->str, &t) || t > INT64_MAX)
        return false;
    for (size_t i = 0; i < user->len; i++)
        if ((unsigned char)user->str[i] < ' ')
            return false; /* never reaches a TSV line */
    e->ts_s = (int64_t)t;
    e->value = value ? strtod(value->str, NULL) : 0.0;
    if (!isfinite(e->value) || e->value < 0)
        e->value = 0.0;
    else if (e->value > CASCADE_CONSUMER_MAX_VALUE)
        e->value = CASCADE_CONSUMER_MAX_VALUE; /* a partition line the build reads */
    e->user = cascade_arena_strdup(c->arena, user->str);
    return e->user != NULL;
}

/* "id:pos:reason:rank:rerank,..." → the ids. */
static bool parse_serve(cascade_consumer *c, const redisReply *f, struct cascade_consumer_entry *e)
{
    const redisReply *user = field(f, "user"), *items = field(f, "items"), *ts = field(f, "ts_ms");
    uint64_t ts_ms;
    if (!user || !items || user->len == 0 || user->len > 64)
        return false;
    for (size_t i = 0; i < user->len; i++)
        if ((unsigned char)user->str[i] < ' ')
            return false; /* never reaches a TSV line */
    /* The served time (the entry id's milliseconds when ts_ms is absent):
     * the time of the served items' impression lines in the partitions. */
    if (!ts || !parse_u64(ts->str, &ts_ms) || ts_ms > INT64_MAX)
        ts_ms = strtoull(e->id, NULL, 10);
    e->ts_s = (int64_t)(ts_ms / 1000);
    size_t n = 1;
    for (size_t i = 0; i < items->len; i++)
        n += items->str[i] == ',';
    e->items = cascade_arena_calloc(c->arena, n, sizeof *e->items);
    e->user = cascade_arena_strdup(c->arena, user->str);
    if (e->items == NULL || e->user == NULL)
        return false;
    for (const char *p = items->str; *p;) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(p, &end, 10);
        if (errno || end == p || *end != ':' || id == 0)
            return false;
        e->items[e->n_items++] = id;
        p = strchr(end, ',');
        if (p == NULL)
            break;
        p++;
    }
    return e->n_items > 0;
}

/* Append the entries of one stream's [id, [fields]] array to the batch. */
static int add_entries(cascade_consumer *c, int stream, const redisReply *list)
{
    if (list == NULL || list->type != REDIS_REPLY_ARRAY)
        return 0;
    struct cascade_consumer_entry *grown =
        cascade_arena_calloc(c->arena, c->n_entries + list->elements + 1, sizeof *grown);
    if (grown == NULL)
        return CASCADE_ENOMEM;
    if (c->n_entries)
        memcpy(grown, c->entries, c->n_entries * sizeof *grown);
    c->entries = grown;
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *ent = list->element[i];
        if (ent->type != REDIS_REPLY_ARRAY || ent->elements < 2 ||
            ent->element[0]->type != REDIS_REPLY_STRING)
            continue;
        struct cascade_consumer_entry *e = &c->entries[c->n_entries];
        memset(e, 0, sizeof *e);
        e->stream = stream;
        if ((e->id = cascade_arena_strdup(c->arena, ent->element[0]->str)) == NULL)
            return CASCADE_ENOMEM;
        const redisReply *f = ent->element[1];
        bool ok = f->type == REDIS_REPLY_ARRAY &&
                  (stream == CASCADE_CONSUMER_EVENTS ? parse_event(c, f, e) : parse_serve(c, f, e));
        if (!ok) {
            e->bad = true;
            cascade_metric_inc(c->bad);
            CASCADE_WARN(NULL, "consumer: %s entry %s cannot be parsed; skipped",
                         c->stream_key[stream], e->id);
        }
        c->n_entries++;
    }
    return 0;
}

/* ------------------------------------------------------------------ fetch */

/* XAUTOCLAIM entries pending for claim_idle_ms or more on one stream. */
static int claim(cascade_consumer *c, cascade_redis *r, int stream, size_t *claimed)
{
    redisReply *rep = NULL;
    char idle[24], count[24];
    snprintf(idle, sizeof idle, "%lld", (long long)c->claim_idle_ms);
    snprintf(count, sizeof count, "%u", (unsigned)c->batch);
    const char *argv[] = {"XAUTOCLAIM", c->stream_key[stream],   c->group, c->name,
                          idle,         c->claim_cursor[stream], "COUNT",  count};
    size_t argvlen[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        argvlen[i] = strlen(argv[i]);
    int rc = cascade_redis_command_argv(r, &rep, (int)(sizeof argv / sizeof *argv), argv, argvlen);
    if (rc)
        return rc;
    size_t before = c->n_entries;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(c->claim_cursor[stream], sizeof c->claim_cursor[stream], "%s",
                 rep->element[0]->str);
        rc = add_entries(c, stream, rep->element[1]);
    }
    freeReplyObject(rep);
    *claimed = c->n_entries - before;
    cascade_metric_add(c->claimed[stream], (double)*claimed);
    return rc;
}

static int read_new(cascade_consumer *c, cascade_redis *r, int block_ms)
{
    redisReply *rep = NULL;
    int rc;
    if (block_ms > 0)
        rc = cascade_redis_command(
            r, &rep, "XREADGROUP GROUP %s %s COUNT %u BLOCK %d STREAMS %s %s > >", c->group,
            c->name, (unsigned)c->batch, block_ms, c->stream_key[0], c->stream_key[1]);
    else
        rc = cascade_redis_command(r, &rep, "XREADGROUP GROUP %s %s COUNT %u STREAMS %s %s > >",
                                   c->group, c->name, (unsigned)c->batch, c->stream_key[0],
                                   c->stream_key[1]);
    if (rc)
        return rc;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && rc == 0; i++) {
        const redisReply *s = rep->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int stream = strcmp(s->element[0]->str, c->stream_key[0]) == 0 ? CASCADE_CONSUMER_EVENTS
                                                                       : CASCADE_CONSUMER_SERVES;
        rc = add_entries(c, stream, s->element[1]);
    }
    freeReplyObject(rep);
    return rc;
}

int cascade_consumer_fetch(cascade_consumer *c, cascade_redis *r, int block_ms,
                           struct cascade_consumer_fetched *out)
{
    size_t claimed = 0;
    int rc = 0;
    cascade_arena_reset(c->arena);
    c->entries = NULL;
    c->n_entries = 0;
    memset(out, 0, sizeof *out);
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS && rc == 0; s++) {
        size_t n = 0;
        rc = claim(c, r, s, &n);
        claimed += n;
    }
    if (rc == 0 && c->n_entries == 0)
        rc = read_new(c, r, block_ms);
    if (rc == CASCADE_ENOMEM)
        cascade_redis__set_error(r, "consumer: out of memory reading a batch");
    for (size_t i = 0; i < c->n_entries; i++) {
        if (c->entries[i].stream == CASCADE_CONSUMER_EVENTS)
            out->events++;
        else
            out->serves++;
    }
    out->claimed = claimed;
    return rc;
}

/* -------------------------------------------------------------------- ack */

int cascade_consumer_ack(cascade_consumer *c, cascade_redis *r)
{
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++) {
        size_t n = 0;
        for (size_t i = 0; i < c->n_entries; i++)
            n += c->entries[i].stream == s;
        if (n == 0)
            continue;
        const char **argv = cascade_arena_calloc(c->arena, n + 3, sizeof *argv);
        size_t *argvlen = cascade_arena_calloc(c->arena, n + 3, sizeof *argvlen);
        if (argv == NULL || argvlen == NULL) {
            cascade_redis__set_error(r, "consumer: out of memory acknowledging");
            return CASCADE_ENOMEM;
        }
        size_t argc = 0;
        argv[argc++] = "XACK";
        argv[argc++] = c->stream_key[s];
        argv[argc++] = c->group;
        for (size_t i = 0; i < c->n_entries; i++)
            if (c->entries[i].stream == s)
                argv[argc++] = c->entries[i].id;
        for (size_t i = 0; i < argc; i++)
            argvlen[i] = strlen(argv[i]);
        redisReply *rep = NULL;
        int rc = cascade_redis_command_argv(r, &rep, (int)argc, argv, argvlen);
        freeReplyObject(rep);
        if (rc)
            return rc;
    }
    return 0;
}

/* -------------------------------------------------------------------- lag */

/* The group's lag per stream (XINFO GROUPS, field "lag", Redis 7). */
static void refresh_lag(cascade_consumer *c, cascade_redis *r)
{
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++) {
        redisReply *rep = NULL;
        if (c->lag_entries[s] == NULL ||
            cascade_redis_command(r, &rep, "XINFO GROUPS %s", c->stream_key[s]) != 0)
            continue;
        for (size_t g = 0; rep->type == REDIS_REPLY_ARRAY && g < rep->elements; g++) {
            const redisReply *info = rep->element[g];
            const redisReply *name = field(info, "name");
            if (name == NULL || strcmp(name->str, c->group) != 0)
                continue;
            for (size_t k = 0; k + 1 < info->elements; k += 2)
                if (info->element[k]->type == REDIS_REPLY_STRING &&
                    strcmp(info->element[k]->str, "lag") == 0 &&
                    info->element[k + 1]->type == REDIS_REPLY_INTEGER)
                    cascade_metric_set(c->lag_entries[s], (double)info->element[k + 1]->integer);
        }
        freeReplyObject(rep);
    }
}

int cascade_consumer_step(cascade_consumer *c, cascade_redis *r, int block_ms, size_t *applied)
{
    struct cascade_consumer_fetched f;
    size_t n = 0, dups = 0;
    int rc = cascade_consumer_fetch(c, r, block_ms, &f);
    if (rc == 0 && c->n_entries > 0 && (rc = cascade_consumer_apply(c, r, &n, &dups)) == 0)
        rc = cascade_consumer_ack(c, r);
    if (rc)
        cascade_metric_inc(c->errors);
    refresh_lag(c, r);
    if (applied)
        *applied = n;
    return rc;
}

double cascade_consumer_decay(double v, double t_s, double now_s, double half_life_s)
{
    if (now_s <= t_s)
        return v;
    return v * exp2(-(now_s - t_s) / half_life_s);
}
