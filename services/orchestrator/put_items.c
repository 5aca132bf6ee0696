/* PutItems: bounds of the request, the Lua script writing a batch of items,
 * and the RPC entry point (read the previous records, build the new ones,
 * write all in one script). */
#include "put_items.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "geohash.h"
#include "log.h"
#include "orch_internal.h"
#include "request.h"

/* Check one item; i is its index for the messages. */
static int check_item(const Cascade__V1__NewItem *it, size_t i, int64_t now_s, char *err,
                      size_t errlen)
{
    if (it == NULL) {
        snprintf(err, errlen, "items[%zu] is missing", i);
        return CASCADE_EINVAL;
    }
    if (it->item_id == 0) {
        snprintf(err, errlen, "items[%zu].item_id is 0", i);
        return CASCADE_EINVAL;
    }
    if (it->created_at_s < 0 || it->created_at_s > now_s + CASCADE_PUT_ITEMS_FUTURE_S) {
        snprintf(err, errlen, "items[%zu].created_at_s %" PRId64 " is %s", i, it->created_at_s,
                 it->created_at_s < 0 ? "negative" : "more than a day ahead of the server clock");
        return CASCADE_EINVAL;
    }
    const char *gh = it->geohash ? it->geohash : "";
    if (gh[0] && (strlen(gh) > CASCADE_GEOHASH_MAX || !cascade_geohash_valid(gh))) {
        snprintf(err, errlen, "items[%zu].geohash is not a geohash of 1..%d base32 characters", i,
                 CASCADE_GEOHASH_MAX);
        return CASCADE_EINVAL;
    }
    if (it->n_tags > CASCADE_PUT_ITEMS_TAGS_MAX) {
        snprintf(err, errlen, "items[%zu].tags: %zu tags, at most %d", i, it->n_tags,
                 CASCADE_PUT_ITEMS_TAGS_MAX);
        return CASCADE_EINVAL;
    }
    if (it->media_type > 2) {
        snprintf(err, errlen, "items[%zu].media_type %u is not 0, 1 or 2", i, it->media_type);
        return CASCADE_EINVAL;
    }
    if (!isfinite(it->duration_s) || it->duration_s < 0.0f ||
        it->duration_s > CASCADE_PUT_ITEMS_DURATION_MAX) {
        snprintf(err, errlen, "items[%zu].duration_s %g is outside 0..%.0f", i,
                 (double)it->duration_s, CASCADE_PUT_ITEMS_DURATION_MAX);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_put_items_check(const Cascade__V1__PutItemsRequest *req, int64_t now_s, char *err,
                            size_t errlen)
{
    if (req->n_items == 0) {
        snprintf(err, errlen, "items is empty");
        return CASCADE_EINVAL;
    }
    if (req->n_items > CASCADE_PUT_ITEMS_MAX) {
        snprintf(err, errlen, "items: %zu items, at most %d", req->n_items, CASCADE_PUT_ITEMS_MAX);
        return CASCADE_ETOOBIG;
    }
    for (size_t i = 0; i < req->n_items; i++) {
        int rc = check_item(req->items[i], i, now_s, err, errlen);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (req->items[j]->item_id == req->items[i]->item_id) {
                snprintf(err, errlen, "items[%zu].item_id %" PRIu64 " repeats items[%zu]", i,
                         req->items[i]->item_id, j);
                return CASCADE_EINVAL;
            }
    }
    return 0;
}

/* KEYS: none (the script derives them from ns, like the consumer's; one
 * Redis, no cluster). ARGV: ns, geo cap, city cap, author cap, n, then per
 * item: id, record, created_at, author, city, geohash, old author, old city,
 * old geohash. */
static const char PUT_SCRIPT[] =
    "local ns = ARGV[1]\n"
    "local geo_cap, city_cap, author_cap = tonumber(ARGV[2]), tonumber(ARGV[3]), "
    "tonumber(ARGV[4])\n"
    "local n = tonumber(ARGV[5])\n"
    "local function gens(family)\n"
    "  local out = {}\n"
    "  local g = redis.call('GET', ns .. ':gen:' .. family)\n"
    "  if g then out[#out + 1] = g end\n"
    "  local b = redis.call('GET', ns .. ':gen:' .. family .. ':building')\n"
    "  if b and b ~= g then out[#out + 1] = b end\n"
    "  return out\n"
    "end\n"
    "local g_new, g_geo, g_city, g_auth = gens('new'), gens('geo'), gens('city'), gens('authors')\n"
    "local prec = tonumber(redis.call('HGET', ns .. ':meta', 'geo_precision') or '0')\n"
    "local function add(key, id, score, cap)\n"
    "  redis.call('ZADD', key, score, id)\n"
    "  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))\n"
    "end\n"
    "local function cell(gh)\n"
    "  if prec > 0 and #gh >= prec then return string.sub(gh, 1, prec) end\n"
    "  return nil\n"
    "end\n"
    "local rev = redis.call('INCRBY', ns .. ':items:online:rev', n) - n\n"
    "for i = 0, n - 1 do\n"
    "  local b = 6 + i * 9\n"
    "  local id, rec, created = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2])\n"
    "  local author, city, gh = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]\n"
    "  local o_author, o_city, o_cell = ARGV[b + 6], ARGV[b + 7], cell(ARGV[b + 8])\n"
    "  local c = cell(gh)\n"
    "  redis.call('SET', ns .. ':item:' .. id, rec)\n"
    "  local imp = tonumber(redis.call('HGET', ns .. ':ictr:' .. id, 'impression') or '0')\n"
    "  for _, g in ipairs(g_new) do\n"
    "    local key = ns .. ':new@' .. g\n"
    "    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')\n"
    "    if #oldest == 0 or created >= tonumber(oldest[2]) then\n"
    "      redis.call('ZADD', key, created, id)\n"
    "      redis.call('ZADD', key .. ':impressions', 'NX', imp, id)\n"
    "    end\n"
    "  end\n"
    "  for _, g in ipairs(g_geo) do\n"
    "    if o_cell and o_cell ~= c then\n"
    "      redis.call('ZREM', ns .. ':geo@' .. g .. ':' .. o_cell, id)\n"
    "    end\n"
    "    if c then add(ns .. ':geo@' .. g .. ':' .. c, id, created, geo_cap) end\n"
    "  end\n"
    "  for _, g in ipairs(g_city) do\n"
    "    if o_city ~= '0' and o_city ~= city then\n"
    "      redis.call('ZREM', ns .. ':city@' .. g .. ':' .. o_city, id)\n"
    "    end\n"
    "    if city ~= '0' then add(ns .. ':city@' .. g .. ':' .. city, id, created, city_cap) end\n"
    "  end\n"
    "  for _, g in ipairs(g_auth) do\n"
    "    local p = ns .. ':authors@' .. g .. ':items:'\n"
    "    if o_author ~= '0' and o_author ~= author then redis.call('ZREM', p .. o_author, id) end\n"
    "    if author ~= '0' then add(p .. author, id, created, author_cap) end\n"
    "  end\n"
    "  redis.call('ZADD', ns .. ':items:online', rev + i + 1, id)\n"
    "end\n"
    "return rev + n\n";

#define PUT_FIELDS 9
#define PUT_NUM_LEN 24

int cascade_put_items_write(cascade_redis *r, const char *ns, const struct cascade_put_item *items,
                            size_t n, const struct cascade_put_items_caps *caps,
                            struct cascade_store_script *s, uint64_t *revision)
{
    size_t argc = 8 + n * PUT_FIELDS; /* EVALSHA sha numkeys ns 3 caps n, then the items */
    const char **argv = calloc(argc, sizeof *argv);
    size_t *argvlen = calloc(argc, sizeof *argvlen);
    /* Per item: the record, then 7 numbers printed into fixed slots. */
    uint8_t *recs = calloc(n ? n : 1, cascade_v1_ItemRecord_size);
    char(*num)[PUT_NUM_LEN] = calloc(n * 6 + 5, sizeof *num);
    redisReply *rep = NULL;
    int rc = CASCADE_ENOMEM;
    *revision = 0;
    if (!argv || !argvlen || !recs || !num) {
        cascade_redis__set_error(r, "put_items: out of memory");
        goto out;
    }
    size_t a = 2, k = 0;
    argv[a++] = "0"; /* numkeys */
    argv[a++] = ns;
    snprintf(num[k], PUT_NUM_LEN, "%u", caps->geo);
    argv[a++] = num[k++];
    snprintf(num[k], PUT_NUM_LEN, "%u", caps->city);
    argv[a++] = num[k++];
    snprintf(num[k], PUT_NUM_LEN, "%u", caps->author);
    argv[a++] = num[k++];
    snprintf(num[k], PUT_NUM_LEN, "%zu", n);
    argv[a++] = num[k++];
    for (size_t i = 0; i < n; i++) {
        const struct cascade_put_item *it = &items[i];
        uint8_t *buf = recs + i * cascade_v1_ItemRecord_size;
        size_t len = 0;
        if ((rc = cascade_record_encode(cascade_v1_ItemRecord_fields, &it->rec, buf,
                                        cascade_v1_ItemRecord_size, &len)) != 0) {
            cascade_redis__set_error(r, "put_items: item %" PRIu64 " does not encode",
                                     it->rec.item_id);
            goto out;
        }
        snprintf(num[k], PUT_NUM_LEN, "%" PRIu64, it->rec.item_id);
        argv[a++] = num[k++];
        argv[a] = (const char *)buf;
        argvlen[a++] = len;
        snprintf(num[k], PUT_NUM_LEN, "%" PRId64, it->rec.created_at_s);
        argv[a++] = num[k++];
        snprintf(num[k], PUT_NUM_LEN, "%" PRIu64, it->rec.author_id);
        argv[a++] = num[k++];
        snprintf(num[k], PUT_NUM_LEN, "%u", it->rec.city);
        argv[a++] = num[k++];
        argv[a++] = it->rec.geohash;
        snprintf(num[k], PUT_NUM_LEN, "%" PRIu64, it->old_author);
        argv[a++] = num[k++];
        snprintf(num[k], PUT_NUM_LEN, "%u", it->old_city);
        argv[a++] = num[k++];
        argv[a++] = it->old_geohash;
    }
    for (size_t i = 2; i < a; i++)
        if (argvlen[i] == 0) /* the records' lengths are set (never 0: item_id is not 0) */
            argvlen[i] = strlen(argv[i]);
    rc = cascade_store_eval(r, s, PUT_SCRIPT, (int)a, argv, argvlen, &rep);
    if (rc == 0 && rep->type == REDIS_REPLY_INTEGER)
        *revision = (uint64_t)rep->integer;
out:
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(argvlen);
    free(recs);
    free(num);
    return rc;
}

/* The previous records of the request's items (one MGET), so a changed item
 * keeps its build statistics and leaves its old lists. */
static int read_previous(cascade_orch *o, const struct cascade_orch_call *call, cascade_redis *r,
                         const Cascade__V1__PutItemsRequest *req, struct cascade_put_item *items)
{
    size_t n = req->n_items;
    uint64_t *ids = cascade_arena_calloc(call->arena, n, sizeof *ids);
    cascade_v1_ItemRecord *prev = cascade_arena_calloc(call->arena, n, sizeof *prev);
    bool *found = cascade_arena_calloc(call->arena, n, sizeof *found);
    if (!ids || !prev || !found)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = req->items[i]->item_id;
    int rc = cascade_store_get_items(r, o->ns, ids, n, prev, found);
    if (rc)
        return cascade_orch__fail(call, rc, "put_items: reading the items' records: %s",
                                  cascade_redis_error(r));
    for (size_t i = 0; i < n; i++) {
        /* A new item's statistics are all online: its counters since zero
         * (docs/closed-loop.md, "Online deltas"). */
        items[i].rec.has_online_base = true;
        if (!found[i])
            continue;
        items[i].had_record = true;
        items[i].rec.has_stats = prev[i].has_stats;
        items[i].rec.stats = prev[i].stats;
        items[i].rec.has_online_base = prev[i].has_online_base;
        items[i].rec.online_base = prev[i].online_base;
        items[i].old_author = prev[i].author_id;
        items[i].old_city = prev[i].city;
        snprintf(items[i].old_geohash, sizeof items[i].old_geohash, "%s", prev[i].geohash);
    }
    return 0;
}

/* The record of a validated item (created_at 0 = now). */
static void fill_record(const Cascade__V1__NewItem *in, int64_t now_s, cascade_v1_ItemRecord *rec)
{
    *rec = (cascade_v1_ItemRecord)cascade_v1_ItemRecord_init_zero;
    rec->item_id = in->item_id;
    rec->author_id = in->author_id;
    rec->category = in->category;
    rec->tags_count = (pb_size_t)in->n_tags;
    for (size_t t = 0; t < in->n_tags; t++)
        rec->tags[t] = in->tags[t];
    rec->created_at_s = in->created_at_s > 0 ? in->created_at_s : now_s;
    snprintf(rec->geohash, sizeof rec->geohash, "%s", in->geohash ? in->geohash : "");
    rec->city = in->city;
    rec->media_type = in->media_type;
    rec->duration_s = in->duration_s;
}

int cascade_orch_put_items(cascade_orch *o, const struct cascade_orch_call *call,
                           const Cascade__V1__PutItemsRequest *req,
                           Cascade__V1__PutItemsResponse **out)
{
    int64_t now_s = cascade_wall_s();
    uint64_t revision = 0;
    int rc;
    *out = NULL;
    if ((rc = cascade_put_items_check(req, now_s, call->err, call->errlen)))
        return rc;
    Cascade__V1__PutItemsResponse *resp = cascade_arena_alloc(call->arena, sizeof *resp);
    struct cascade_put_item *items = cascade_arena_calloc(call->arena, req->n_items, sizeof *items);
    if (resp == NULL || items == NULL)
        return cascade_orch__fail(call, CASCADE_ENOMEM, "out of memory");
    cascade__v1__put_items_response__init(resp);
    for (size_t i = 0; i < req->n_items; i++)
        fill_record(req->items[i], now_s, &items[i].rec);
    cascade_redis *r = o->redis ? cascade_redis_pool_get(o->redis) : NULL;
    if (r == NULL)
        return cascade_orch__fail(call, CASCADE_EUNAVAILABLE,
                                  "put_items: no Redis connection available");
    cascade_redis_set_deadline(r, call->deadline_ms);
    if ((rc = read_previous(o, call, r, req, items)))
        return rc;
    const struct cascade_put_items_caps caps = {
        .geo = o->cfg.put_geo_cap, .city = o->cfg.put_city_cap, .author = o->cfg.put_author_cap};
    if ((rc = cascade_put_items_write(r, o->ns, items, req->n_items, &caps, &o->put_items_script,
                                      &revision)))
        return cascade_orch__fail(call, rc, "put_items: writing the items: %s",
                                  cascade_redis_error(r));
    resp->written = (uint32_t)req->n_items;
    resp->revision = revision;
    CASCADE_INFO(call->request_id, "put_items: %zu items written, revision %" PRIu64, req->n_items,
                 revision);
    *out = resp;
    return 0;
}
