/* The counters/partitions snapshot of cascade-build load (snapshot.h). */
#include "snapshot.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

/* KEYS[1] = {ns}:loop:partitions, KEYS[2] = {ns}:ictr:totals, KEYS[3] =
 * {ns}:loop:user_seq; ARGV[1] =
 * the SCAN pattern of the per-item counter hashes, ARGV[2] their name
 * prefix, ARGV[3..] = the counter fields. Returns {partitions (HGETALL),
 * totals (HGETALL), the user events' sequence number (GET, false when none)}. The totals are
 * complete once marked (field TOTALS_COMPLETE); before that (counters written by a consumer that
 * did not keep them, or the hash deleted) they are first rebuilt from the per-item hashes, once.
 * One script: no consumer batch applies in between. */
#define TOTALS_COMPLETE "complete"
static const char SNAPSHOT_SCRIPT[] =
    "local parts = redis.call('HGETALL', KEYS[1])\n"
    "if redis.call('HEXISTS', KEYS[2], '" TOTALS_COMPLETE "') == 0 then\n"
    "  local fields = {}\n"
    "  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end\n"
    "  local cursor = '0'\n"
    "  repeat\n"
    "    local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000, 'TYPE', 'hash')\n"
    "    cursor = r[1]\n"
    "    for _, k in ipairs(r[2]) do\n"
    "      local id = string.sub(k, #ARGV[2] + 1)\n"
    "      if string.match(id, '^[0-9]+$') then\n"
    "        local v = redis.call('HMGET', k, unpack(fields))\n"
    "        for f = 1, #fields do v[f] = v[f] or '0' end\n"
    "        redis.call('HSET', KEYS[2], id, table.concat(v, ' '))\n"
    "      end\n"
    "    end\n"
    "  until cursor == '0'\n"
    "  redis.call('HSET', KEYS[2], '" TOTALS_COMPLETE "', '1')\n"
    "end\n"
    "return {parts, redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3])}\n";

static int cmp_item(const void *a, const void *b)
{
    uint64_t x = ((const struct cascade_snapshot_item *)a)->item_id;
    uint64_t y = ((const struct cascade_snapshot_item *)b)->item_id;
    return x < y ? -1 : x > y;
}

/* Glob-escape ns for SCAN MATCH, then ":ictr:*"; the prefix (unescaped) is
 * what the key names start with. */
static void counters_pattern(const char *ns, char *pattern, size_t plen, char *prefix,
                             size_t prelen)
{
    size_t o = 0;
    for (const char *p = ns; *p && o + 3 < plen; p++) {
        if (strchr("*?[]\\", *p))
            pattern[o++] = '\\';
        pattern[o++] = *p;
    }
    pattern[o] = '\0';
    snprintf(pattern + o, plen - o, ":ictr:*");
    cascade_key_item_counters(prefix, ns, 0);
    prefix[prelen - 1] = '\0';
    prefix[strlen(prefix) - 1] = '\0'; /* "{ns}:ictr:0" -> "{ns}:ictr:" */
}

/* The committed lengths of the event-log dates (fields YYYY-MM-DD; the
 * client impressions' prefixed fields are not the log's). */
static int read_dates(const redisReply *h, cascade_snapshot *s)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return CASCADE_EFORMAT;
    s->dates = calloc(h->elements / 2 + 1, sizeof *s->dates);
    if (s->dates == NULL)
        return CASCADE_ENOMEM;
    s->consumer = h->elements > 0; /* a committed length, of the log or client impressions */
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->len != 10)
            continue;
        struct cascade_ds_partition_limit *d = &s->dates[s->n_dates++];
        memcpy(d->date, f->str, 10);
        d->date[10] = '\0';
        d->bytes = strtoll(v->str, NULL, 10);
    }
    return 0;
}

/* A malformed totals value names its item and how to rebuild the totals
 * (their per-item hashes are the source, see snapshot.h); bad is set. */
static int read_items(const redisReply *h, cascade_snapshot *s, const char *tkey, char *bad,
                      size_t badlen)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return CASCADE_EFORMAT;
    s->items = calloc(h->elements / 2 + 1, sizeof *s->items);
    if (s->items == NULL)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        char *end;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return CASCADE_EFORMAT;
        uint64_t id = strtoull(f->str, &end, 10);
        if (*end != '\0' || id == 0)
            continue; /* the completeness mark */
        struct cascade_snapshot_item *it = &s->items[s->n_items];
        if (cascade_store_item_totals_parse(v->str, v->len, &it->counters) != 0) {
            snprintf(bad, badlen,
                     "%s field %llu is not 7 counter values (\"%.64s\"); run DEL %s and the "
                     "next load rebuilds it from the per-item counters",
                     tkey, (unsigned long long)id, v->str, tkey);
            return CASCADE_EFORMAT;
        }
        it->item_id = id;
        s->n_items++;
    }
    qsort(s->items, s->n_items, sizeof *s->items, cmp_item);
    return 0;
}

/* Give every partition listed before the script (pre) that the consumer
 * has no committed length for the size it had then: the consumer commits a
 * partition's length before it writes to it, so nothing was being written
 * to such a file at the listing (its commits were lost with Redis, or never
 * existed) and its bytes then are whole lines the counters do not hold. A
 * partition created after the listing without a committed length stays
 * unread: it only holds events counted after the snapshot. */
static int add_uncommitted(cascade_snapshot *s, const struct cascade_ds_partition_limit *pre,
                           size_t n_pre)
{
    size_t n = s->n_dates;
    for (size_t i = 0; i < n_pre; i++) {
        bool committed = false;
        for (size_t j = 0; j < s->n_dates && !committed; j++)
            committed = strcmp(s->dates[j].date, pre[i].date) == 0;
        if (committed)
            continue;
        struct cascade_ds_partition_limit *grown = realloc(s->dates, (n + 1) * sizeof *grown);
        if (grown == NULL)
            return CASCADE_ENOMEM;
        s->dates = grown;
        s->dates[n++] = pre[i];
        s->n_uncommitted++;
    }
    s->n_dates = n;
    return 0;
}

int cascade_snapshot_take(cascade_redis *r, const char *ns, const char *data_dir,
                          cascade_snapshot *out, char *err, size_t errlen)
{
    struct cascade_store_script script = CASCADE_STORE_SCRIPT_INIT; /* one call per build */
    char key[CASCADE_KEY_MAX], pattern[2 * CASCADE_KEY_MAX], prefix[CASCADE_KEY_MAX];
    char tkey[CASCADE_KEY_MAX], skey[CASCADE_KEY_MAX];
    const char *argv[8 + CASCADE_ITEM_COUNTER_FIELDS];
    size_t argvlen[8 + CASCADE_ITEM_COUNTER_FIELDS];
    redisReply *rep = NULL;
    int argc = 0, rc;
    struct cascade_ds_partition_limit *pre = NULL;
    size_t n_pre = 0;
    memset(out, 0, sizeof *out);
    if (data_dir && (rc = cascade_dataset_partition_sizes(data_dir, &pre, &n_pre, err, errlen)))
        return rc;
    out->listed = data_dir != NULL;
    counters_pattern(ns, pattern, sizeof pattern, prefix, sizeof prefix);
    argv[argc++] = NULL; /* EVALSHA and the sha, filled by cascade_store_eval */
    argv[argc++] = NULL;
    argv[argc++] = "3";
    argv[argc++] = cascade_key_loop_partitions(key, ns);
    argv[argc++] = cascade_key_item_totals(tkey, ns);
    argv[argc++] = cascade_key_user_events_seq(skey, ns);
    argv[argc++] = pattern;
    argv[argc++] = prefix;
    for (size_t i = 0; i < CASCADE_ITEM_COUNTER_FIELDS; i++)
        argv[argc++] = cascade_store_item_counter_field(i);
    for (int i = 2; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    if ((rc = cascade_store_eval(r, &script, SNAPSHOT_SCRIPT, argc, argv, argvlen, &rep)) != 0) {
        snprintf(err, errlen, "snapshot: %s", cascade_redis_error(r));
        free(pre);
        return rc;
    }
    rc = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 ? 0 : CASCADE_EFORMAT;
    if (rc == 0 && rep->element[2]->type == REDIS_REPLY_STRING)
        out->user_seq = strtoull(rep->element[2]->str, NULL, 10);
    if (rc == 0)
        rc = read_dates(rep->element[0], out);
    char bad[2 * CASCADE_KEY_MAX + 256] = "";
    if (rc == 0)
        rc = read_items(rep->element[1], out, tkey, bad, sizeof bad);
    if (rc == 0)
        rc = add_uncommitted(out, pre, n_pre);
    freeReplyObject(rep);
    free(pre);
    if (rc != 0) {
        snprintf(err, errlen, "snapshot: %s",
                 rc == CASCADE_ENOMEM ? "out of memory"
                 : bad[0]             ? bad
                                      : "unexpected reply from the script");
        cascade_snapshot_free(out);
    }
    return rc;
}

const struct cascade_ds_partition_limits *
cascade_snapshot_limits(const cascade_snapshot *s, struct cascade_ds_partition_limits *lim)
{
    if (s == NULL || (!s->consumer && !s->listed))
        return NULL;
    lim->dates = s->dates;
    lim->n = s->n_dates;
    return lim;
}

const cascade_v1_ItemStats *cascade_snapshot_counters(const cascade_snapshot *s, uint64_t item_id)
{
    struct cascade_snapshot_item key = {.item_id = item_id};
    const struct cascade_snapshot_item *it =
        s && s->n_items ? bsearch(&key, s->items, s->n_items, sizeof key, cmp_item) : NULL;
    return it ? &it->counters : NULL;
}

void cascade_snapshot_free(cascade_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->dates);
    free(s->items);
    memset(s, 0, sizeof *s);
}
