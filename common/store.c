/* Cascade's Redis data model: key builders (the only place key formats are
 * written; docs/redis-keys.md lists them), nanopb record codecs, and the
 * batched reads and writes the services and the builder use. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "decimal.h"
#include "error.h"

#define STORE_DEFAULT_NS "cascade"
#define STORE_MGET_CHUNK 256
#define STORE_ID_MAX 24 /* decimal uint64 + NUL */

static const char *ns_or_default(const char *ns)
{
    return ns && *ns ? ns : STORE_DEFAULT_NS;
}

/* ---- keys ---- */

/* A key built piece by piece without snprintf (the keys read per request
 * by the hundred: item records, generation lists), cut at CASCADE_KEY_MAX − 1
 * characters as snprintf would cut it. */
struct key_text {
    char *buf;
    size_t len;
};

static void key_add(struct key_text *k, const char *s, size_t n)
{
    size_t room = CASCADE_KEY_MAX - 1 - k->len;
    n = n < room ? n : room;
    memcpy(k->buf + k->len, s, n);
    k->len += n;
    k->buf[k->len] = '\0';
}

static void key_add_str(struct key_text *k, const char *s)
{
    key_add(k, s, strlen(s));
}

static void key_add_u64(struct key_text *k, uint64_t v)
{
    char digits[CASCADE_DECIMAL_U64_MAX];
    key_add(k, digits, cascade_decimal_u64(digits, v));
}

static void key_add_i64(struct key_text *k, int64_t v)
{
    if (v < 0) {
        key_add(k, "-", 1);
        key_add_u64(k, (uint64_t)(-(v + 1)) + 1); /* INT64_MIN has no positive twin */
    } else {
        key_add_u64(k, (uint64_t)v);
    }
}

char *cascade_key_item(char *buf, const char *ns, uint64_t item_id)
{
    struct key_text k = {buf, 0};
    key_add_str(&k, ns_or_default(ns));
    key_add(&k, ":item:", 6);
    key_add_u64(&k, item_id);
    return buf;
}

char *cascade_key_user(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_online_base(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:online", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_lastn(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:lastn", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_consumed(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:consumed", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_exposure(char *buf, const char *ns, const char *user_id, int64_t window)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:expo:%s:%" PRId64, ns_or_default(ns), user_id, window);
    return buf;
}

char *cascade_key_user_follows(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:follows", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_cache(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:cache", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_hardneg(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:hardneg", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_blocked_items(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:blocked_items", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_blocked_authors(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:blocked_authors", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_feedback_seen(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:user:%s:fb_seen", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_generation(char *buf, const char *ns, const char *family)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:gen:%s", ns_or_default(ns), family);
    return buf;
}

char *cascade_key_building(char *buf, const char *ns, const char *family)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:gen:%s:building", ns_or_default(ns), family);
    return buf;
}

char *cascade_key_artefact(char *buf, const char *ns, const char *family, int64_t gen,
                           const char *suffix)
{
    struct key_text k = {buf, 0};
    key_add_str(&k, ns_or_default(ns));
    key_add(&k, ":", 1);
    key_add_str(&k, family);
    key_add(&k, "@", 1);
    key_add_i64(&k, gen);
    if (suffix && suffix[0]) {
        key_add(&k, ":", 1);
        key_add_str(&k, suffix);
    }
    return buf;
}

char *cascade_key_events(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:events", ns_or_default(ns));
    return buf;
}

char *cascade_key_serves(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:serves", ns_or_default(ns));
    return buf;
}

char *cascade_key_item_counters(char *buf, const char *ns, uint64_t item_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:ictr:%llu", ns_or_default(ns), (unsigned long long)item_id);
    return buf;
}

static const char *const item_counter_fields[CASCADE_ITEM_COUNTER_FIELDS] = {
    "impression", "click", "like", "collect", "share", "play", "play_s"};

const char *cascade_store_item_counter_field(size_t i)
{
    return i < CASCADE_ITEM_COUNTER_FIELDS ? item_counter_fields[i] : NULL;
}

/* A counter's text as a count: non-numeric or not positive is 0. *end
 * (may be NULL) gets where the number stopped. */
static double counter_text(const char *s, const char **end)
{
    char *e;
    double d = strtod(s, &e);
    if (end)
        *end = e;
    return e != s && d > 0 ? d : 0.0;
}

static double counter_value(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return 0.0;
    return counter_text(v->str, NULL);
}

static uint32_t counter_u32(double d)
{
    return d >= 4294967295.0 ? UINT32_MAX : (uint32_t)d;
}

int cascade_store_item_counters_parse(const redisReply *rep, cascade_v1_ItemStats *out)
{
    memset(out, 0, sizeof *out);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != CASCADE_ITEM_COUNTER_FIELDS)
        return CASCADE_EFORMAT;
    out->impressions = counter_u32(counter_value(rep->element[0]));
    out->clicks = counter_u32(counter_value(rep->element[1]));
    out->likes = counter_u32(counter_value(rep->element[2]));
    out->collects = counter_u32(counter_value(rep->element[3]));
    out->shares = counter_u32(counter_value(rep->element[4]));
    out->plays = counter_u32(counter_value(rep->element[5]));
    out->play_seconds = (float)counter_value(rep->element[6]);
    return 0;
}

static uint32_t grown_by(uint32_t now, uint32_t base)
{
    return now > base ? now - base : 0;
}

void cascade_store_item_counters_add_delta(cascade_v1_ItemStats *stats,
                                           const cascade_v1_ItemStats *now,
                                           const cascade_v1_ItemStats *base)
{
    stats->impressions += grown_by(now->impressions, base->impressions);
    stats->clicks += grown_by(now->clicks, base->clicks);
    stats->likes += grown_by(now->likes, base->likes);
    stats->collects += grown_by(now->collects, base->collects);
    stats->shares += grown_by(now->shares, base->shares);
    stats->plays += grown_by(now->plays, base->plays);
    if (now->play_seconds > base->play_seconds)
        stats->play_seconds += now->play_seconds - base->play_seconds;
}

char *cascade_key_item_totals(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:ictr:totals", ns_or_default(ns));
    return buf;
}

int cascade_store_item_totals_parse(const char *s, size_t len, cascade_v1_ItemStats *out)
{
    char text[CASCADE_ITEM_COUNTER_FIELDS * 32];
    double v[CASCADE_ITEM_COUNTER_FIELDS];
    memset(out, 0, sizeof *out);
    if (len >= sizeof text)
        return CASCADE_EFORMAT;
    memcpy(text, s, len); /* strtod needs the terminator */
    text[len] = '\0';
    const char *p = text;
    for (size_t f = 0; f < CASCADE_ITEM_COUNTER_FIELDS; f++) {
        const char *end;
        if (f > 0 && *p++ != ' ')
            return CASCADE_EFORMAT;
        if (*p == ' ' || *p == '\0') /* strtod would skip a second space */
            return CASCADE_EFORMAT;
        v[f] = counter_text(p, &end);
        if (end == p)
            return CASCADE_EFORMAT;
        p = end;
    }
    if (*p != '\0')
        return CASCADE_EFORMAT;
    out->impressions = counter_u32(v[0]);
    out->clicks = counter_u32(v[1]);
    out->likes = counter_u32(v[2]);
    out->collects = counter_u32(v[3]);
    out->shares = counter_u32(v[4]);
    out->plays = counter_u32(v[5]);
    out->play_seconds = (float)v[6];
    return 0;
}

/* HMGET {ns}:ictr:totals for the n ids (their decimal text in arena),
 * queued (reply NULL) or run. */
static int totals_hmget(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                        cascade_arena *arena, redisReply **reply)
{
    char key[CASCADE_KEY_MAX];
    const char **argv = cascade_arena_calloc(arena, n + 2, sizeof *argv);
    size_t *argvlen = cascade_arena_calloc(arena, n + 2, sizeof *argvlen);
    char *idtext = cascade_arena_alloc(arena, CASCADE_DECIMAL_U64_MAX * n + 1);
    if (!argv || !argvlen || !idtext)
        return CASCADE_ENOMEM;
    for (size_t k = 0; k < n; k++) {
        char *id = idtext + CASCADE_DECIMAL_U64_MAX * k;
        argvlen[2 + k] = cascade_decimal_u64(id, ids[k]);
        argv[2 + k] = id;
    }
    argv[0] = "HMGET";
    argvlen[0] = 5;
    argv[1] = cascade_key_item_totals(key, ns);
    argvlen[1] = strlen(key);
    if (!reply)
        return cascade_redis_append_argv(r, (int)n + 2, argv, argvlen);
    return cascade_redis_command_argv(r, reply, (int)n + 2, argv, argvlen);
}

int cascade_store_online_deltas_add(cascade_redis *r, const char *ns, cascade_v1_ItemRecord *items,
                                    const bool *found, size_t n, cascade_arena *arena)
{
    uint64_t *ids = cascade_arena_calloc(arena, n + 1, sizeof *ids);
    size_t *at = cascade_arena_calloc(arena, n + 1, sizeof *at);
    cascade_v1_ItemStats *now = cascade_arena_alloc(arena, (n + 1) * sizeof *now);
    if (!ids || !at || !now)
        return CASCADE_ENOMEM;
    size_t asked = 0;
    for (size_t i = 0; i < n; i++)
        if (found[i] && items[i].has_online_base) {
            ids[asked] = items[i].item_id;
            at[asked++] = i;
        }
    if (asked == 0)
        return 0;
    redisReply *rep = NULL;
    int rc = totals_hmget(r, ns, ids, asked, arena, &rep);
    if (rc == 0)
        rc = cascade_store__totals_parse(r, rep, asked, now);
    for (size_t k = 0; rc == 0 && k < asked; k++) /* nothing added unless all parsed */
        cascade_store_item_counters_add_delta(&items[at[k]].stats, &now[k],
                                              &items[at[k]].online_base);
    freeReplyObject(rep);
    return rc;
}

int cascade_store__totals_append(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                                 cascade_arena *arena)
{
    return totals_hmget(r, ns, ids, n, arena, NULL);
}

int cascade_store__totals_parse(cascade_redis *r, const redisReply *rep, size_t n_asked,
                                cascade_v1_ItemStats *now)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != n_asked) {
        cascade_redis__set_error(r, "online counters: unexpected reply to HMGET");
        return CASCADE_EFORMAT;
    }
    for (size_t k = 0; k < n_asked; k++) {
        const redisReply *v = rep->element[k];
        memset(&now[k], 0, sizeof now[k]);
        if (v->type != REDIS_REPLY_STRING)
            continue; /* no counters yet: 0 */
        if (cascade_store_item_totals_parse(v->str, v->len, &now[k]) != 0) {
            cascade_redis__set_error(r, "online counters: malformed totals \"%.64s\"", v->str);
            return CASCADE_EFORMAT;
        }
    }
    return 0;
}

char *cascade_key_user_counters(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:uctr:%s", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_affinity(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:uaff:%s", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_events(char *buf, const char *ns, const char *user_id)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:uev:%s", ns_or_default(ns), user_id);
    return buf;
}

char *cascade_key_user_online_new(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:loop:user_online_new", ns_or_default(ns));
    return buf;
}

char *cascade_key_user_events_seq(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:loop:user_seq", ns_or_default(ns));
    return buf;
}

char *cascade_key_loop_applied(char *buf, const char *ns, const char *stream, int64_t hour)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:loop:applied:%s:%lld", ns_or_default(ns), stream,
             (long long)hour);
    return buf;
}

char *cascade_key_loop_partitions(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:loop:partitions", ns_or_default(ns));
    return buf;
}

char *cascade_key_meta(char *buf, const char *ns)
{
    snprintf(buf, CASCADE_KEY_MAX, "%s:meta", ns_or_default(ns));
    return buf;
}

/* ---- codecs ---- */

int cascade_record_encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap,
                          size_t *len)
{
    pb_ostream_t s = pb_ostream_from_buffer(buf, cap);
    if (!pb_encode(&s, fields, msg))
        return CASCADE_ETOOBIG;
    *len = s.bytes_written;
    return 0;
}

int cascade_record_decode(const pb_msgdesc_t *fields, void *msg, const uint8_t *buf, size_t len)
{
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    return pb_decode(&s, fields, msg) ? 0 : CASCADE_EFORMAT;
}

/* Decode a string reply into msg (msg_size bytes, zeroed first). */
static int decode_reply(cascade_redis *r, const redisReply *rep, const char *key,
                        const pb_msgdesc_t *fields, void *msg, size_t msg_size,
                        const char *type_name)
{
    memset(msg, 0, msg_size);
    if (rep->type != REDIS_REPLY_STRING ||
        cascade_record_decode(fields, msg, (const uint8_t *)rep->str, rep->len) != 0) {
        cascade_redis__set_error(r, "%s: not a valid %s record (%zu bytes)", key, type_name,
                                 rep->type == REDIS_REPLY_STRING ? rep->len : (size_t)0);
        memset(msg, 0, msg_size);
        return CASCADE_EFORMAT;
    }
    return 0;
}

static int unexpected_reply(cascade_redis *r, const char *what, const char *key)
{
    cascade_redis__set_error(r, "%s %s: unexpected reply type", what, key);
    return CASCADE_EFORMAT;
}

/* ---- readers ---- */

/* Decode the MGET reply rep for ids[0..n) into out and found; an absent
 * record is zeroed with found false. */
static int items_reply(cascade_redis *r, const char *ns, const redisReply *rep, const uint64_t *ids,
                       size_t n, cascade_v1_ItemRecord *out, bool *found)
{
    char key[CASCADE_KEY_MAX];
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n)
        return unexpected_reply(r, "MGET", cascade_key_item(key, ns, ids[0]));
    for (size_t i = 0; i < n; i++) {
        found[i] = rep->element[i]->type != REDIS_REPLY_NIL;
        if (!found[i])
            memset(&out[i], 0, sizeof(out[i]));
        else if (decode_reply(r, rep->element[i], cascade_key_item(key, ns, ids[i]),
                              cascade_v1_ItemRecord_fields, &out[i], sizeof(out[i]),
                              "ItemRecord") != 0)
            return CASCADE_EFORMAT;
    }
    return 0;
}

/* Queue one MGET for ids[0..n) with n <= STORE_MGET_CHUNK. */
static int append_items_chunk(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                              char (*keys)[CASCADE_KEY_MAX])
{
    const char *argv[STORE_MGET_CHUNK + 1];
    size_t argvlen[STORE_MGET_CHUNK + 1];
    argv[0] = "MGET";
    argvlen[0] = 4;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = cascade_key_item(keys[i], ns, ids[i]);
        argvlen[i + 1] = strlen(keys[i]);
    }
    return cascade_redis_append_argv(r, (int)n + 1, argv, argvlen);
}

int cascade_store__items_append(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n)
{
    char(*keys)[CASCADE_KEY_MAX] =
        malloc(sizeof(*keys) * (n < STORE_MGET_CHUNK ? n + 1 : STORE_MGET_CHUNK));
    int rc = keys ? 0 : CASCADE_ENOMEM;
    for (size_t start = 0; start < n && rc == 0; start += STORE_MGET_CHUNK)
        rc = append_items_chunk(r, ns, ids + start,
                                n - start < STORE_MGET_CHUNK ? n - start : STORE_MGET_CHUNK, keys);
    free(keys);
    return rc;
}

int cascade_store__items_read(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                              cascade_v1_ItemRecord *out, bool *found)
{
    char why[512] = "";
    int rc = 0;
    for (size_t start = 0; start < n; start += STORE_MGET_CHUNK) {
        size_t m = n - start < STORE_MGET_CHUNK ? n - start : STORE_MGET_CHUNK;
        redisReply *rep = NULL;
        int one = cascade_redis_get_reply(r, &rep); /* every reply, whatever the first said */
        if (one == 0 && rc == 0)
            one = items_reply(r, ns, rep, ids + start, m, out + start, found + start);
        if (rc == 0 && one != 0) {
            rc = one;
            snprintf(why, sizeof why, "%s", cascade_redis_error(r));
        }
        freeReplyObject(rep);
    }
    if (rc != 0) /* a later reply's success cleared it */
        cascade_redis__restore_error(r, why);
    return rc;
}

int cascade_store_get_items(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                            cascade_v1_ItemRecord *out, bool *found)
{
    if (n == 0)
        return 0;
    int rc = cascade_store__items_append(r, ns, ids, n);
    return rc != 0 ? rc : cascade_store__items_read(r, ns, ids, n, out, found);
}

int cascade_store__user_reply(cascade_redis *r, const char *ns, const char *user_id,
                              const redisReply *rep, cascade_v1_UserRecord *out, bool *found)
{
    char key[CASCADE_KEY_MAX];
    memset(out, 0, sizeof(*out));
    *found = false;
    if (rep->type == REDIS_REPLY_NIL)
        return 0;
    int rc = decode_reply(r, rep, cascade_key_user(key, ns, user_id), cascade_v1_UserRecord_fields,
                          out, sizeof(*out), "UserRecord");
    *found = rc == 0;
    return rc;
}

int cascade_store_get_user(cascade_redis *r, const char *ns, const char *user_id,
                           cascade_v1_UserRecord *out, bool *found)
{
    char key[CASCADE_KEY_MAX];
    cascade_key_user(key, ns, user_id);
    memset(out, 0, sizeof(*out));
    *found = false;
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "GET %s", key);
    if (rc == 0)
        rc = cascade_store__user_reply(r, ns, user_id, rep, out, found);
    freeReplyObject(rep);
    return rc;
}

int cascade_store_get_user_and_interactions(cascade_redis *r, const char *ns, const char *user_id,
                                            cascade_v1_UserRecord *out, bool *found,
                                            uint32_t *online, int *online_rc)
{
    char key[CASCADE_KEY_MAX];
    redisReply *urep = NULL, *crep = NULL;
    memset(out, 0, sizeof(*out));
    *found = false;
    *online = 0;
    /* A failed second append drops the connection with the first (redis.h). */
    int rc = cascade_redis_append(r, "GET %s", cascade_key_user(key, ns, user_id));
    if (rc == 0)
        rc = cascade_redis_append(r, "HGET %s interactions",
                                  cascade_key_user_counters(key, ns, user_id));
    if (rc != 0) {
        *online_rc = rc;
        return rc;
    }
    /* Both replies read, whatever the first said: the connection stays in step. */
    rc = cascade_redis_get_reply(r, &urep);
    char why[512] = "";
    if (rc != 0)
        snprintf(why, sizeof why, "%s", cascade_redis_error(r));
    *online_rc = cascade_redis_get_reply(r, &crep);
    if (*online_rc == 0 && crep->type == REDIS_REPLY_STRING) {
        unsigned long long v = strtoull(crep->str, NULL, 10);
        *online = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
    if (rc == 0)
        rc = cascade_store__user_reply(r, ns, user_id, urep, out, found);
    else
        cascade_redis__restore_error(r, why); /* the count's reply cleared it */
    freeReplyObject(urep);
    freeReplyObject(crep);
    return rc;
}

int cascade_store_get_lastn(cascade_redis *r, const char *ns, const char *user_id, size_t max,
                            cascade_v1_Interaction *out, size_t *count)
{
    *count = 0;
    if (max == 0)
        return 0; /* LRANGE 0 -1 would mean "everything" */
    char key[CASCADE_KEY_MAX];
    cascade_key_user_lastn(key, ns, user_id);
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "LRANGE %s 0 %llu", key, (unsigned long long)(max - 1));
    if (rc != 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY) {
        rc = unexpected_reply(r, "LRANGE", key);
        goto out;
    }
    for (size_t i = 0; i < rep->elements && i < max && rc == 0; i++)
        rc = decode_reply(r, rep->element[i], key, cascade_v1_Interaction_fields, &out[i],
                          sizeof(out[i]), "Interaction");
    if (rc == 0)
        *count = rep->elements < max ? rep->elements : max;
out:
    freeReplyObject(rep);
    return rc;
}

/* Read the n pipelined GET replies for neighbour lists; always reads them all
 * so the connection stays in step, and returns the first failure. */
static int read_neighbour_replies(cascade_redis *r, const char *ns, const char *family, int64_t gen,
                                  const uint64_t *ids, size_t n, cascade_v1_NeighbourList *out,
                                  bool *found)
{
    int first_rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        int rc = cascade_redis_get_reply(r, &rep);
        found[i] = false;
        if (rc == 0 && rep->type != REDIS_REPLY_NIL) {
            char key[CASCADE_KEY_MAX], suffix[STORE_ID_MAX];
            snprintf(suffix, sizeof(suffix), "%" PRIu64, ids[i]);
            cascade_key_artefact(key, ns, family, gen, suffix);
            rc = decode_reply(r, rep, key, cascade_v1_NeighbourList_fields, &out[i], sizeof(out[i]),
                              "NeighbourList");
            found[i] = rc == 0;
        } else {
            out[i].neighbours_count = 0;
        }
        freeReplyObject(rep);
        if (rc != 0 && first_rc == 0)
            first_rc = rc;
        if (rc == CASCADE_EUNAVAILABLE)
            break; /* the connection is gone: no further replies will come */
    }
    return first_rc;
}

int cascade_store_get_neighbours(cascade_redis *r, const char *ns, const char *family, int64_t gen,
                                 const uint64_t *ids, size_t n, cascade_v1_NeighbourList *out,
                                 bool *found)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        found[i] = false;
    int rc = gen > 0 ? 0 : cascade_store_get_generation(r, ns, family, &gen);
    if (rc != 0 || gen == 0)
        return rc; /* never published: nothing found */
    size_t queued = 0;
    for (; queued < n; queued++) {
        char key[CASCADE_KEY_MAX], suffix[STORE_ID_MAX];
        snprintf(suffix, sizeof(suffix), "%" PRIu64, ids[queued]);
        rc = cascade_redis_append(r, "GET %s", cascade_key_artefact(key, ns, family, gen, suffix));
        if (rc != 0)
            break;
    }
    int read_rc = queued ? read_neighbour_replies(r, ns, family, gen, ids, queued, out, found) : 0;
    return rc != 0 ? rc : read_rc;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return CASCADE_EFORMAT;
    *out = v;
    return 0;
}

int cascade_store_top_items(cascade_redis *r, const char *key, size_t max, uint64_t *ids,
                            double *scores, size_t *count)
{
    *count = 0;
    if (max == 0)
        return 0; /* ZREVRANGE 0 -1 would mean "everything" */
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "ZREVRANGE %s 0 %llu WITHSCORES", key,
                                   (unsigned long long)(max - 1));
    if (rc != 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
        rc = unexpected_reply(r, "ZREVRANGE", key);
        goto out;
    }
    size_t n = rep->elements / 2 < max ? rep->elements / 2 : max;
    for (size_t i = 0; i < n; i++) {
        const redisReply *member = rep->element[2 * i], *score = rep->element[2 * i + 1];
        if (member->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING ||
            parse_u64(member->str, &ids[i]) != 0) {
            cascade_redis__set_error(r, "%s: member %zu is not an item id", key, i);
            rc = CASCADE_EFORMAT;
            goto out;
        }
        if (scores)
            scores[i] = strtod(score->str, NULL);
    }
    *count = n;
out:
    freeReplyObject(rep);
    return rc;
}

int cascade_store_consumed(cascade_redis *r, const char *ns, const char *user_id,
                           const uint64_t *ids, size_t n, bool *consumed)
{
    if (n == 0)
        return 0;
    int rc = CASCADE_ENOMEM;
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    const char **argv = malloc(sizeof(*argv) * (n + 2));
    size_t *argvlen = malloc(sizeof(*argvlen) * (n + 2));
    char(*nums)[STORE_ID_MAX] = malloc(sizeof(*nums) * n);
    if (!argv || !argvlen || !nums)
        goto out;
    argv[0] = "SMISMEMBER";
    argv[1] = cascade_key_user_consumed(key, ns, user_id);
    for (size_t i = 0; i < n; i++) {
        argvlen[i + 2] = (size_t)snprintf(nums[i], STORE_ID_MAX, "%" PRIu64, ids[i]);
        argv[i + 2] = nums[i];
    }
    argvlen[0] = strlen(argv[0]);
    argvlen[1] = strlen(argv[1]);
    rc = cascade_redis_command_argv(r, &rep, (int)(n + 2), argv, argvlen);
    if (rc != 0)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
        rc = unexpected_reply(r, "SMISMEMBER", key);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        consumed[i] = rep->element[i]->type == REDIS_REPLY_INTEGER && rep->element[i]->integer;
out:
    freeReplyObject(rep);
    free(nums);
    free(argvlen);
    free(argv);
    return rc;
}

/* ---- writers ---- */

static int put_record(cascade_redis *r, const char *key, const pb_msgdesc_t *fields,
                      const void *msg, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    if (cascade_record_encode(fields, msg, buf, cap, &len) != 0) {
        cascade_redis__set_error(r, "%s: record does not fit in %zu bytes", key, cap);
        return CASCADE_ETOOBIG;
    }
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "SET %s %b", key, (const char *)buf, len);
    freeReplyObject(rep);
    return rc;
}

int cascade_store_put_item(cascade_redis *r, const char *ns, const cascade_v1_ItemRecord *rec)
{
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_ItemRecord_size];
    cascade_key_item(key, ns, rec->item_id);
    return put_record(r, key, cascade_v1_ItemRecord_fields, rec, buf, sizeof(buf));
}

int cascade_store_put_user(cascade_redis *r, const char *ns, const cascade_v1_UserRecord *rec)
{
    char key[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_UserRecord_size];
    cascade_key_user(key, ns, rec->user_id);
    return put_record(r, key, cascade_v1_UserRecord_fields, rec, buf, sizeof(buf));
}

/* Read the replies of MULTI, n queued commands and EXEC; returns the first failure. */
static int read_transaction(cascade_redis *r, size_t queued_commands)
{
    int first_rc = 0;
    for (size_t i = 0; i < queued_commands + 2; i++) {
        redisReply *rep = NULL;
        int rc = cascade_redis_get_reply(r, &rep);
        if (rc == 0 && i == queued_commands + 1 && rep->type != REDIS_REPLY_ARRAY) {
            cascade_redis__set_error(r, "EXEC: transaction aborted");
            rc = CASCADE_EIO;
        }
        freeReplyObject(rep);
        if (rc != 0 && first_rc == 0)
            first_rc = rc;
        if (rc == CASCADE_EUNAVAILABLE)
            break;
    }
    return first_rc;
}

int cascade_store_push_interaction(cascade_redis *r, const char *ns, const char *user_id,
                                   const cascade_v1_Interaction *it, size_t keep_max)
{
    if (keep_max == 0) {
        cascade_redis__set_error(r, "push_interaction: keep_max must be at least 1");
        return CASCADE_EINVAL;
    }
    char lastn[CASCADE_KEY_MAX], consumed[CASCADE_KEY_MAX];
    uint8_t buf[cascade_v1_Interaction_size];
    size_t len = 0;
    cascade_key_user_lastn(lastn, ns, user_id);
    cascade_key_user_consumed(consumed, ns, user_id);
    if (cascade_record_encode(cascade_v1_Interaction_fields, it, buf, sizeof(buf), &len) != 0) {
        cascade_redis__set_error(r, "%s: interaction does not encode", lastn);
        return CASCADE_ETOOBIG;
    }
    /* A failed append drops the connection (and whatever was queued), so
     * nothing half-queued is ever sent. */
    int rc = cascade_redis_append(r, "MULTI");
    if (rc == 0)
        rc = cascade_redis_append(r, "LPUSH %s %b", lastn, (const char *)buf, len);
    if (rc == 0)
        rc = cascade_redis_append(r, "LTRIM %s 0 %llu", lastn, (unsigned long long)(keep_max - 1));
    if (rc == 0)
        rc = cascade_redis_append(r, "SADD %s %llu", consumed, (unsigned long long)it->item_id);
    if (rc == 0)
        rc = cascade_redis_append(r, "EXEC");
    if (rc != 0)
        return rc;
    return read_transaction(r, 3);
}

/* ---- generations ---- */

int cascade_store_get_generation(cascade_redis *r, const char *ns, const char *family, int64_t *gen)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    *gen = 0;
    cascade_key_generation(key, ns, family);
    int rc = cascade_redis_command(r, &rep, "GET %s", key);
    if (rc != 0)
        return rc;
    if (rep->type == REDIS_REPLY_STRING) {
        char *end;
        errno = 0;
        long long v = strtoll(rep->str, &end, 10);
        if (errno || *end || v < 0) {
            cascade_redis__set_error(r, "%s: not a generation number", key);
            rc = CASCADE_EFORMAT;
        } else {
            *gen = v;
        }
    } else if (rep->type != REDIS_REPLY_NIL) {
        rc = unexpected_reply(r, "GET", key);
    }
    freeReplyObject(rep);
    return rc;
}

int cascade_store_next_generation(cascade_redis *r, const char *ns, const char *family,
                                  int64_t *gen)
{
    int rc = cascade_store_get_generation(r, ns, family, gen);
    if (rc == 0)
        (*gen)++;
    return rc;
}

/* UNLINK every key matching pattern, SCANning in batches. */
static int unlink_matching(cascade_redis *r, const char *pattern)
{
    char cursor[32] = "0";
    do {
        redisReply *rep = NULL;
        int rc = cascade_redis_command(r, &rep, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (rc != 0)
            return rc;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return unexpected_reply(r, "SCAN", pattern);
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        if (keys->elements > 0) {
            const char **argv = malloc((keys->elements + 1) * sizeof(*argv));
            size_t *lens = malloc((keys->elements + 1) * sizeof(*lens));
            if (!argv || !lens) {
                free(argv);
                free(lens);
                freeReplyObject(rep);
                cascade_redis__set_error(r, "out of memory");
                return CASCADE_ENOMEM;
            }
            argv[0] = "UNLINK";
            lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            redisReply *del = NULL;
            rc = cascade_redis_command_argv(r, &del, (int)keys->elements + 1, argv, lens);
            free(argv);
            free(lens);
            if (del)
                freeReplyObject(del);
            if (rc != 0) {
                freeReplyObject(rep);
                return rc;
            }
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int cascade_store_unlink_generation(cascade_redis *r, const char *ns, const char *family,
                                    int64_t gen)
{
    char key[CASCADE_KEY_MAX], pattern[CASCADE_KEY_MAX + 4];
    cascade_key_artefact(key, ns, family, gen, NULL);
    int rc = unlink_matching(r, key);
    if (rc != 0)
        return rc;
    snprintf(pattern, sizeof(pattern), "%s:*", key);
    return unlink_matching(r, pattern);
}

int cascade_store_publish_generation(cascade_redis *r, const char *ns, const char *family,
                                     int64_t gen)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_key_generation(key, ns, family);
    int rc = cascade_redis_command(r, &rep, "SET %s %lld", key, (long long)gen);
    if (rep)
        freeReplyObject(rep);
    if (rc != 0 || gen < 3)
        return rc;
    /* Readers may still hold gen-1 for a moment; gen-2 is safe to drop. */
    return cascade_store_unlink_generation(r, ns, family, gen - 2);
}

/* ---- UserCF lists ---- */

int cascade_store_get_user_neighbours(cascade_redis *r, const char *ns, int64_t gen,
                                      const char *user_id, cascade_v1_UserNeighbourList *out,
                                      bool *found)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    memset(out, 0, sizeof(*out));
    *found = false;
    int rc = gen > 0 ? 0 : cascade_store_get_generation(r, ns, "usercf", &gen);
    if (rc != 0 || gen <= 0)
        return rc;
    cascade_key_artefact(key, ns, "usercf", gen, user_id);
    if ((rc = cascade_redis_command(r, &rep, "GET %s", key)) != 0)
        return rc;
    if (rep->type != REDIS_REPLY_NIL) {
        rc = decode_reply(r, rep, key, cascade_v1_UserNeighbourList_fields, out, sizeof(*out),
                          "UserNeighbourList");
        *found = rc == 0;
    }
    freeReplyObject(rep);
    return rc;
}
