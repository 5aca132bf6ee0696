/* Stream consumer, apply step: the day partitions of the new Feedback
 * events and served items (impression lines), then one Lua script per batch
 * that marks every entry id (HSETNX in {ns}:loop:applied:{stream}:{hour})
 * and applies the counter updates of the
 * entries it marks now, appends the users' events to their lists
 * {ns}:uev:{uid} numbered from {ns}:loop:user_seq, commits the partitions'
 * lengths and copies the changed items' totals into {ns}:ictr:totals (what
 * the ranking stages read), atomically. A redelivered entry finds its mark
 * and changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consumer_internal.h"
#include "error.h"
#include "events.h"
#include "log.h"
#include "partition.h"
#include "user_online.h"

static const char APPLY_SCRIPT[] =
    "local now = tonumber(ARGV[1])\n"
    "local hl = tonumber(ARGV[2])\n"
    "local ttl = tonumber(ARGV[3])\n"
    "local n = tonumber(ARGV[4])\n"
    "local seqkey, ucap, uttl = KEYS[tonumber(ARGV[5])], tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local a = 8\n"
    "local applied = {0, 0}\n"
    "local dirty = {}\n"
    "local function decayed(key, f, amt)\n"
    "  local v = tonumber(redis.call('HGET', key, f .. ':d') or '0')\n"
    "  local t = tonumber(redis.call('HGET', key, f .. ':t') or ARGV[1])\n"
    "  if now > t then v = v * 2 ^ (-(now - t) / hl); t = now\n"
    "  elseif now < t then amt = amt * 2 ^ (-(t - now) / hl) end\n"
    "  redis.call('HSET', key, f .. ':d', string.format('%.17g', v + amt),\n"
    "             f .. ':t', string.format('%.17g', t))\n"
    "end\n"
    /* A user event: the next sequence number, the member '<seq> <f>'; beyond
     * ucap entries the oldest go and the marker 'trim' keeps the highest
     * sequence number dropped (user_online.h). */
    "local function uev(key, f)\n"
    "  local s = redis.call('INCR', seqkey)\n"
    "  redis.call('ZADD', key, s, string.format('%d ', s) .. f)\n"
    "  local m = redis.call('ZCARD', key)\n"
    "  if m > ucap + 1 then\n"
    "    local drop = redis.call('ZRANGE', key, 0, m - ucap - 1, 'WITHSCORES')\n"
    "    local top = 0\n"
    "    for i = 2, #drop, 2 do top = math.max(top, tonumber(drop[i])) end\n"
    "    redis.call('ZREMRANGEBYRANK', key, 0, m - ucap - 1)\n"
    "    redis.call('ZADD', key, top, '" CASCADE_USER_ONLINE_TRIMMED "')\n"
    "  end\n"
    "  redis.call('EXPIRE', key, uttl)\n"
    "end\n"
    "for e = 1, n do\n"
    "  local mk = KEYS[tonumber(ARGV[a])]\n"
    "  local id, s, nops = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])\n"
    "  a = a + 4\n"
    "  local new = redis.call('HSETNX', mk, id, '1') == 1\n"
    "  if new then\n"
    "    redis.call('EXPIRE', mk, ttl)\n"
    "    applied[s + 1] = applied[s + 1] + 1\n"
    "  end\n"
    "  for o = 1, nops do\n"
    "    if new then\n"
    "      local kind, key, f, amt = ARGV[a], KEYS[tonumber(ARGV[a + 1])], ARGV[a + 2], ARGV[a + "
    "3]\n"
    "      dirty[key] = true\n"
    "      if kind == 'I' then redis.call('HINCRBY', key, f, amt)\n"
    "      elseif kind == 'F' then redis.call('HINCRBYFLOAT', key, f, amt)\n"
    "      elseif kind == 'U' then uev(key, f)\n"
    "      else decayed(key, f, tonumber(amt)) end\n"
    "    end\n"
    "    a = a + 4\n"
    "  end\n"
    "end\n"
    "local np = tonumber(ARGV[a])\n"
    "a = a + 1\n"
    "for p = 1, np do\n"
    "  redis.call('HSET', KEYS[tonumber(ARGV[a])], ARGV[a + 1], ARGV[a + 2])\n"
    "  a = a + 3\n"
    "end\n"
    "local totals, nf = KEYS[tonumber(ARGV[a])], tonumber(ARGV[a + 1])\n"
    "local fields = {}\n"
    "for f = 1, nf do fields[f] = ARGV[a + 1 + f] end\n"
    "a = a + 2 + nf\n"
    "local ni = tonumber(ARGV[a])\n"
    "a = a + 1\n"
    "for i = 1, ni do\n"
    "  local key = KEYS[tonumber(ARGV[a])]\n"
    "  if dirty[key] then\n"
    "    local v = redis.call('HMGET', key, unpack(fields))\n"
    "    for f = 1, nf do v[f] = v[f] or '0' end\n"
    "    redis.call('HSET', totals, ARGV[a + 1], table.concat(v, ' '))\n"
    "  end\n"
    "  a = a + 2\n"
    "end\n"
    "return applied\n";

/* The script call being built: keys and arguments (strings in the arena). */
struct apply_call {
    cascade_arena *arena;
    const char **keys;
    size_t n_keys, keys_cap;
    const char **args;
    size_t n_args, args_cap;
    bool oom;
};

static void put_arg(struct apply_call *k, const char *s)
{
    if (s == NULL || k->n_args == k->args_cap) {
        k->oom = true;
        return;
    }
    k->args[k->n_args++] = s;
}

/* A key: its 1-based index in KEYS, as an argument. */
static void put_key(struct apply_call *k, const char *key)
{
    if (key == NULL || k->n_keys == k->keys_cap) {
        k->oom = true;
        return;
    }
    k->keys[k->n_keys++] = cascade_arena_strdup(k->arena, key);
    put_arg(k, cascade_arena_printf(k->arena, "%zu", k->n_keys));
}

/* One counter update: kind I (HINCRBY), F (HINCRBYFLOAT), D (decayed) or U
 * (a user event appended to {ns}:uev:{uid}, field "<type> <item> <category>
 * <ts>"). */
static void put_op(struct apply_call *k, const char *kind, const char *key, const char *field,
                   const char *amount)
{
    put_arg(k, kind);
    put_key(k, key);
    put_arg(k, field);
    put_arg(k, amount);
}

/* The records of the batch's items (one MGET of ids[0..n), sorted): the
 * category of each and whether it has a record (the build's log drops
 * events on items it does not know, so the user event lists do too). */
struct batch_item_info {
    const uint64_t *ids;
    size_t n;
    uint32_t *category;
    bool *found;
};

static int item_info(cascade_consumer *c, cascade_redis *r, const uint64_t *ids, size_t n,
                     struct batch_item_info *out)
{
    cascade_v1_ItemRecord *recs = cascade_arena_calloc(c->arena, n + 1, sizeof *recs);
    out->ids = ids;
    out->n = n;
    out->category = cascade_arena_calloc(c->arena, n + 1, sizeof *out->category);
    out->found = cascade_arena_calloc(c->arena, n + 1, sizeof *out->found);
    if (recs == NULL || out->category == NULL || out->found == NULL)
        return CASCADE_ENOMEM;
    if (n == 0)
        return 0;
    int rc = cascade_store_get_items(r, c->ns, ids, n, recs, out->found);
    for (size_t k = 0; rc == 0 && k < n; k++)
        out->category[k] = out->found[k] ? recs[k].category : 0;
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The category of item (0 when it has no record); *found whether it has. */
static uint32_t item_category(const struct batch_item_info *info, uint64_t item, bool *found)
{
    const uint64_t *at =
        info->n ? bsearch(&item, info->ids, info->n, sizeof *info->ids, cmp_u64) : NULL;
    size_t k = at ? (size_t)(at - info->ids) : 0;
    *found = at != NULL && info->found[k];
    return *found ? info->category[k] : 0;
}

/* A user event for the online features (user_online.h): what the build's
 * replay observes of it, on an item with a record. */
static void put_user_event(cascade_consumer *c, struct apply_call *k, const char *user,
                           uint32_t type, uint64_t item, uint32_t category, int64_t ts_s)
{
    char key[CASCADE_KEY_MAX];
    put_op(k, "U", cascade_key_user_events(key, c->ns, user),
           cascade_arena_printf(k->arena, "%u %llu %u %lld", (unsigned)type,
                                (unsigned long long)item, (unsigned)category, (long long)ts_s),
           "0");
}

static int64_t entry_ms(const char *id)
{
    return strtoll(id, NULL, 10);
}

/* The counter updates of one event entry (docs/closed-loop.md). */
static void event_ops(cascade_consumer *c, struct apply_call *k,
                      const struct cascade_consumer_entry *e, const struct batch_item_info *info)
{
    bool known;
    uint32_t category = item_category(info, e->item, &known);
    char ikey[CASCADE_KEY_MAX], ukey[CASCADE_KEY_MAX], akey[CASCADE_KEY_MAX];
    const char *type = cascade_event_type_name(e->type);
    cascade_key_item_counters(ikey, c->ns, e->item);
    cascade_key_user_counters(ukey, c->ns, e->user);
    if (e->type == CASCADE_EV_IMPRESSION) {
        /* Client-reported: kept apart from the served impressions. */
        put_op(k, "I", ikey, "imp_client", "1");
    } else {
        put_op(k, "I", ikey, type, "1");
        put_op(k, "D", ikey, type, "1");
    }
    if (e->type == CASCADE_EV_PLAY)
        put_op(k, "F", ikey, "play_s", cascade_arena_printf(k->arena, "%.6f", e->value));
    put_op(k, "I", ukey, type, "1");
    float w = cascade_event_interest_weight(e->type);
    if (w > 0.0f) {
        put_op(k, "I", ukey, "interactions", "1");
        if (category)
            put_op(k, "D", cascade_key_user_affinity(akey, c->ns, e->user),
                   cascade_arena_printf(k->arena, "%u", (unsigned)category),
                   cascade_arena_printf(k->arena, "%g", (double)w));
    }
    /* Client impressions are not in the build's log ("Which impression
     * counts for what"), so not in the user's online features either. */
    if (known && e->type != CASCADE_EV_IMPRESSION)
        put_user_event(c, k, e->user, e->type, e->item, category, e->ts_s);
}

/* At most this many updates per event (item total, decayed, play seconds;
 * user total, interactions, affinity, user event). */
#define EVENT_MAX_OPS 7

/* The counter updates of one serve record: an impression per served item
 * (and a user event each), a request and the served count for the user. */
static void serve_ops(cascade_consumer *c, struct apply_call *k,
                      const struct cascade_consumer_entry *e, const struct batch_item_info *info)
{
    char ikey[CASCADE_KEY_MAX], ukey[CASCADE_KEY_MAX];
    for (size_t j = 0; j < e->n_items; j++) {
        bool known;
        uint32_t category = item_category(info, e->items[j], &known);
        cascade_key_item_counters(ikey, c->ns, e->items[j]);
        put_op(k, "I", ikey, "impression", "1");
        put_op(k, "D", ikey, "impression", "1");
        if (known)
            put_user_event(c, k, e->user, CASCADE_EV_IMPRESSION, e->items[j], category, e->ts_s);
    }
    cascade_key_user_counters(ukey, c->ns, e->user);
    put_op(k, "I", ukey, "requests", "1");
    put_op(k, "I", ukey, "served", cascade_arena_printf(k->arena, "%zu", e->n_items));
}

/* ------------------------------------------------------------- partitions */

/* Where a partition line goes: the day partitions the build reads as the
 * event log (Feedback behaviours and the served items' impressions), or the
 * client-reported impressions, kept beside them and not read by the build
 * (docs/closed-loop.md, "Which impression counts for what"). */
static const char SUB_EVENTS[] = "events";
static const char SUB_CLIENT[] = "client-impressions";

struct part {
    const char *sub; /* SUB_EVENTS or SUB_CLIENT */
    char date[11];
    char field[48]; /* its committed length's field in {ns}:loop:partitions */
    char *text;     /* the lines (arena) */
    size_t len, cap;
    int64_t new_len;
};

static bool marked(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
}

/* Which entries were applied before (HEXISTS on their marks, one pipeline):
 * a redelivered entry is not written to a partition again. */
static int already_applied(cascade_consumer *c, cascade_redis *r, bool *done)
{
    char key[CASCADE_KEY_MAX];
    size_t sent = 0;
    int rc = 0;
    for (size_t i = 0; i < c->n_entries && rc == 0; i++) {
        const struct cascade_consumer_entry *e = &c->entries[i];
        if (e->bad)
            continue;
        cascade_key_loop_applied(key, c->ns, cascade_consumer__stream_name(e->stream),
                                 entry_ms(e->id) / 3600000);
        if ((rc = cascade_redis_append(r, "HEXISTS %s %s", key, e->id)) == 0)
            sent++;
    }
    for (size_t i = 0, k = 0; i < c->n_entries && k < sent; i++) {
        const struct cascade_consumer_entry *e = &c->entries[i];
        if (e->bad)
            continue;
        redisReply *rep = NULL;
        int rc2 = cascade_redis_get_reply(r, &rep);
        if (rc == 0)
            rc = rc2;
        done[i] = rc2 == 0 && marked(rep);
        freeReplyObject(rep);
        k++;
    }
    return rc;
}

static struct part *part_of(struct part *parts, size_t *n, const char *sub, const char *date)
{
    for (size_t p = 0; p < *n; p++)
        if (parts[p].sub == sub && strcmp(parts[p].date, date) == 0)
            return &parts[p];
    struct part *p = &parts[(*n)++];
    p->sub = sub;
    memcpy(p->date, date, 11);
    /* The event log's dates keep their plain field (what the build's
     * snapshot reads); the client impressions' are prefixed. */
    if (sub == SUB_EVENTS)
        snprintf(p->field, sizeof p->field, "%s", date);
    else
        snprintf(p->field, sizeof p->field, "%s/%s", sub, date);
    return p;
}

static bool part_add(cascade_arena *a, struct part *p, int64_t ts_s, const char *user,
                     uint64_t item, uint32_t type, double value)
{
    char line[256];
    int len = snprintf(line, sizeof line, "%lld\t%s\t%llu\t%s\t%g\n", (long long)ts_s, user,
                       (unsigned long long)item, cascade_event_type_name(type), value);
    if (len < 0 || (size_t)len >= sizeof line)
        return false;
    if (p->len + (size_t)len + 1 > p->cap) {
        size_t cap = (p->cap ? p->cap * 2 : 4096) + (size_t)len;
        char *grown = cascade_arena_alloc(a, cap);
        if (grown == NULL)
            return false;
        if (p->len)
            memcpy(grown, p->text, p->len);
        p->text = grown;
        p->cap = cap;
    }
    memcpy(p->text + p->len, line, (size_t)len);
    p->len += (size_t)len;
    return true;
}

/* The partition lines of one new entry: a serve record gives an impression
 * line per served item (value 0), a Feedback event its own line (a client
 * impression to the client partitions). */
static bool entry_lines(cascade_consumer *c, struct part *parts, size_t *n,
                        const struct cascade_consumer_entry *e)
{
    char date[11];
    cascade_partition_date(e->ts_s, date);
    if (e->stream == CASCADE_CONSUMER_SERVES) {
        struct part *p = part_of(parts, n, SUB_EVENTS, date);
        for (size_t j = 0; j < e->n_items; j++)
            if (!part_add(c->arena, p, e->ts_s, e->user, e->items[j], CASCADE_EV_IMPRESSION, 0))
                return false;
        return true;
    }
    const char *sub = e->type == CASCADE_EV_IMPRESSION ? SUB_CLIENT : SUB_EVENTS;
    return part_add(c->arena, part_of(parts, n, sub, date), e->ts_s, e->user, e->item, e->type,
                    e->value);
}

/* The committed length of a partition (HGET {ns}:loop:partitions), -1 when
 * none. */
static int committed_length(cascade_consumer *c, cascade_redis *r, const char *field, int64_t *out)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "HGET %s %s", cascade_key_loop_partitions(key, c->ns),
                                   field);
    if (rc)
        return rc;
    *out = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : -1;
    freeReplyObject(rep);
    return 0;
}

/* A partition without a committed length (its first batch, or Redis lost
 * the length): commit its current length (0 when absent) before the first
 * byte is written. So a batch written but never committed is cut when it is
 * delivered again, even the first one, and cascade-build load's snapshot
 * reads nothing uncommitted (services/builder/import/snapshot.h); lines already in
 * the file are kept. */
static int commit_start(cascade_consumer *c, cascade_redis *r, const struct part *p,
                        int64_t *committed)
{
    char key[CASCADE_KEY_MAX], err[1200];
    redisReply *rep = NULL;
    int rc = cascade_partition_length(c->data_dir, p->sub, p->date, committed, err, sizeof err);
    if (rc) {
        cascade_redis__set_error(r, "%s", err);
        return rc;
    }
    rc =
        cascade_redis_command(r, &rep, "HSETNX %s %s %lld", cascade_key_loop_partitions(key, c->ns),
                              p->field, (long long)*committed);
    freeReplyObject(rep);
    return rc;
}

/* Write the new entries to their day partitions; parts[0..*n) get the
 * partitions and lengths to commit. The serve records of the batch are
 * written before its Feedback events, so an impression precedes a click of
 * the same second in the file (the build's sort by time is stable, and its
 * click labels need the impression first). */
static int write_partitions(cascade_consumer *c, cascade_redis *r, struct part *parts, size_t *n)
{
    char err[1200];
    *n = 0;
    bool *done = cascade_arena_calloc(c->arena, c->n_entries + 1, sizeof *done);
    if (done == NULL)
        return CASCADE_ENOMEM;
    int rc = already_applied(c, r, done);
    for (int pass = CASCADE_CONSUMER_SERVES; rc == 0 && pass >= CASCADE_CONSUMER_EVENTS; pass--)
        for (size_t i = 0; rc == 0 && i < c->n_entries; i++) {
            const struct cascade_consumer_entry *e = &c->entries[i];
            if (e->bad || e->stream != pass || done[i])
                continue;
            if (!entry_lines(c, parts, n, e))
                rc = CASCADE_ENOMEM;
        }
    for (size_t p = 0; rc == 0 && p < *n; p++) {
        int64_t committed;
        if ((rc = committed_length(c, r, parts[p].field, &committed)) ||
            (committed < 0 && (rc = commit_start(c, r, &parts[p], &committed))))
            break;
        rc = cascade_partition_append(c->data_dir, parts[p].sub, parts[p].date, committed,
                                      parts[p].text, parts[p].len, &parts[p].new_len, err,
                                      sizeof err);
        if (rc) {
            cascade_redis__set_error(r, "%s", err);
            break;
        }
        size_t lines = 0;
        for (size_t j = 0; j < parts[p].len; j++)
            lines += parts[p].text[j] == '\n';
        cascade_metric_add(c->partition_lines, (double)lines);
    }
    return rc;
}

/* ------------------------------------------------------------------ apply */

static int run_script(cascade_consumer *c, cascade_redis *r, struct apply_call *k,
                      size_t *applied_per_stream)
{
    size_t argc = 3 + k->n_keys + k->n_args;
    const char **argv = cascade_arena_calloc(c->arena, argc, sizeof *argv);
    size_t *argvlen = cascade_arena_calloc(c->arena, argc, sizeof *argvlen);
    const char *numkeys = cascade_arena_printf(c->arena, "%zu", k->n_keys);
    if (argv == NULL || argvlen == NULL || numkeys == NULL)
        return CASCADE_ENOMEM;
    argv[2] = numkeys;
    memcpy(argv + 3, k->keys, k->n_keys * sizeof *argv);
    memcpy(argv + 3 + k->n_keys, k->args, k->n_args * sizeof *argv);
    for (size_t i = 2; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    redisReply *rep = NULL;
    int rc = cascade_store_eval(r, &c->apply_script, APPLY_SCRIPT, (int)argc, argv, argvlen, &rep);
    if (rc == 0) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_INTEGER ||
            rep->element[1]->type != REDIS_REPLY_INTEGER) {
            cascade_redis__set_error(r, "consumer: unexpected reply from the apply script");
            rc = CASCADE_EFORMAT;
        } else {
            applied_per_stream[0] = (size_t)rep->element[0]->integer;
            applied_per_stream[1] = (size_t)rep->element[1]->integer;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* The distinct item ids the batch's entries touch, sorted, into *out
 * (arena); *n gets their number. */
static int batch_items(cascade_consumer *c, uint64_t **out, size_t *n)
{
    size_t cap = 1;
    for (size_t i = 0; i < c->n_entries; i++)
        cap += c->entries[i].stream == CASCADE_CONSUMER_EVENTS ? 1 : c->entries[i].n_items;
    uint64_t *ids = cascade_arena_calloc(c->arena, cap, sizeof *ids);
    if (ids == NULL)
        return CASCADE_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < c->n_entries; i++) {
        const struct cascade_consumer_entry *e = &c->entries[i];
        if (e->bad)
            continue;
        if (e->stream == CASCADE_CONSUMER_EVENTS)
            ids[m++] = e->item;
        else
            for (size_t j = 0; j < e->n_items; j++)
                ids[m++] = e->items[j];
    }
    qsort(ids, m, sizeof *ids, cmp_u64);
    *n = 0;
    for (size_t i = 0; i < m; i++)
        if (*n == 0 || ids[*n - 1] != ids[i])
            ids[(*n)++] = ids[i];
    *out = ids;
    return 0;
}

/* The compact copy of the touched items' totals: the totals key, the
 * fields, then each item's counter key and id; the script rewrites the
 * value of the items an entry applied now changed. */
static void put_totals(cascade_consumer *c, struct apply_call *k, const uint64_t *items, size_t n)
{
    char key[CASCADE_KEY_MAX];
    put_key(k, cascade_key_item_totals(key, c->ns));
    put_arg(k, cascade_arena_printf(c->arena, "%d", CASCADE_ITEM_COUNTER_FIELDS));
    for (size_t f = 0; f < CASCADE_ITEM_COUNTER_FIELDS; f++)
        put_arg(k, cascade_store_item_counter_field(f));
    put_arg(k, cascade_arena_printf(c->arena, "%zu", n));
    for (size_t i = 0; i < n; i++) {
        put_key(k, cascade_key_item_counters(key, c->ns, items[i]));
        put_arg(k, cascade_arena_printf(c->arena, "%llu", (unsigned long long)items[i]));
    }
}

int cascade_consumer_apply(cascade_consumer *c, cascade_redis *r, size_t *applied,
                           size_t *duplicates)
{
    size_t n_parts = 0, per_stream[2] = {0, 0}, good[2] = {0, 0}, max_ops = 0, n_items = 0;
    uint64_t *items = NULL;
    char key[CASCADE_KEY_MAX];
    int rc;
    *applied = *duplicates = 0;
    if (c->n_entries == 0)
        return 0;
    struct batch_item_info info;
    /* At most two partitions (events, client impressions) per entry's day. */
    struct part *parts = cascade_arena_calloc(c->arena, 2 * c->n_entries + 1, sizeof *parts);
    if (parts == NULL)
        return CASCADE_ENOMEM;
    if ((rc = batch_items(c, &items, &n_items)) || (rc = item_info(c, r, items, n_items, &info)))
        return rc;
    if (c->data_dir[0] && (rc = write_partitions(c, r, parts, &n_parts)))
        return rc;
    for (size_t i = 0; i < c->n_entries; i++)
        max_ops += c->entries[i].stream == CASCADE_CONSUMER_EVENTS ? EVENT_MAX_OPS
                                                                   : 3 * c->entries[i].n_items + 2;
    struct apply_call k = {.arena = c->arena};
    k.keys_cap = max_ops + c->n_entries + n_parts + n_items + 3;
    k.args_cap = 4 * max_ops + 4 * c->n_entries + 3 * n_parts + 2 * n_items +
                 CASCADE_ITEM_COUNTER_FIELDS + 15;
    k.keys = cascade_arena_calloc(c->arena, k.keys_cap, sizeof *k.keys);
    k.args = cascade_arena_calloc(c->arena, k.args_cap, sizeof *k.args);
    if (k.keys == NULL || k.args == NULL)
        return CASCADE_ENOMEM;
    put_arg(&k, cascade_arena_printf(c->arena, "%lld", (long long)cascade_wall_s()));
    put_arg(&k, cascade_arena_printf(c->arena, "%.17g", c->half_life_s));
    put_arg(&k, cascade_arena_printf(c->arena, "%lld", (long long)c->mark_ttl_s));
    const char **n_slot = &k.args[k.n_args];
    put_arg(&k, "0");
    put_key(&k, cascade_key_user_events_seq(key, c->ns));
    put_arg(&k, cascade_arena_printf(c->arena, "%u", (unsigned)c->user_events_cap));
    put_arg(&k, cascade_arena_printf(c->arena, "%lld", (long long)c->user_events_ttl_s));
    size_t n_applied_entries = 0;
    /* Serve records first, then Feedback events, as write_partitions writes
     * their lines: the user events are numbered in the partition's line
     * order, the order the build's replay reads them in. */
    for (size_t x = 0; x < 2 * c->n_entries && !k.oom; x++) {
        const struct cascade_consumer_entry *e = &c->entries[x % c->n_entries];
        int pass = x < c->n_entries ? CASCADE_CONSUMER_SERVES : CASCADE_CONSUMER_EVENTS;
        if (e->bad || e->stream != pass)
            continue;
        good[e->stream]++;
        n_applied_entries++;
        put_key(&k, cascade_key_loop_applied(key, c->ns, cascade_consumer__stream_name(e->stream),
                                             entry_ms(e->id) / 3600000));
        put_arg(&k, e->id);
        put_arg(&k, e->stream == CASCADE_CONSUMER_EVENTS ? "0" : "1");
        const char **ops_slot = k.n_args < k.args_cap ? &k.args[k.n_args] : NULL;
        put_arg(&k, "0");
        size_t before = k.n_args;
        if (e->stream == CASCADE_CONSUMER_EVENTS)
            event_ops(c, &k, e, &info);
        else
            serve_ops(c, &k, e, &info);
        if (ops_slot)
            *ops_slot = cascade_arena_printf(c->arena, "%zu", (k.n_args - before) / 4);
    }
    *n_slot = cascade_arena_printf(c->arena, "%zu", n_applied_entries);
    put_arg(&k, cascade_arena_printf(c->arena, "%zu", n_parts));
    for (size_t p = 0; p < n_parts; p++) {
        put_key(&k, cascade_key_loop_partitions(key, c->ns));
        put_arg(&k, parts[p].field);
        put_arg(&k, cascade_arena_printf(c->arena, "%lld", (long long)parts[p].new_len));
    }
    put_totals(c, &k, items, n_items);
    if (k.oom || *n_slot == NULL) {
        cascade_redis__set_error(r, "consumer: out of memory building the apply script call");
        return CASCADE_ENOMEM;
    }
    if ((rc = run_script(c, r, &k, per_stream)))
        return rc;
    int64_t now_ms = cascade_wall_ms();
    for (size_t i = 0; i < c->n_entries; i++)
        if (!c->entries[i].bad)
            cascade_metric_observe(c->delay, (double)(now_ms - entry_ms(c->entries[i].id)) / 1e3);
    for (int s = 0; s < CASCADE_CONSUMER_STREAMS; s++) {
        cascade_metric_add(c->applied[s], (double)per_stream[s]);
        cascade_metric_add(c->duplicates[s], (double)(good[s] - per_stream[s]));
        *applied += per_stream[s];
        *duplicates += good[s] - per_stream[s];
    }
    return 0;
}
