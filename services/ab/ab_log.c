/* The loaded log: serve records parsed into assignments (layer -> arm, plus
 * the holdout and canary-track pseudo-layers) and served items, events into
 * (rid, user, item, type). Names are interned; ids are hashed, since they
 * are only compared. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_internal.h"
#include "error.h"
#include "hash.h"

const char *ab_field(const struct ab_fields *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

/* Make room for one more element of size sz in *v (count n, capacity *cap). */
static int grow(void **v, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? 2 * *cap : 64;
    void *p = realloc(*v, nc * sz);
    if (!p)
        return CASCADE_ENOMEM;
    *v = p;
    *cap = nc;
    return 0;
}

long ab_intern(struct ab_names *names, const char *name, size_t len)
{
    for (size_t i = 0; i < names->n; i++)
        if (strlen(names->v[i]) == len && memcmp(names->v[i], name, len) == 0)
            return (long)i;
    if (grow((void **)&names->v, names->n, &names->cap, sizeof *names->v))
        return CASCADE_ENOMEM;
    char *copy = strndup(name, len);
    if (!copy)
        return CASCADE_ENOMEM;
    names->v[names->n] = copy;
    return (long)names->n++;
}

static long layer_index(struct ab_log *log, const char *name, size_t len)
{
    for (size_t i = 0; i < log->n_layers; i++)
        if (strlen(log->layers[i].name) == len && memcmp(log->layers[i].name, name, len) == 0)
            return (long)i;
    if (grow((void **)&log->layers, log->n_layers, &log->cap_layers, sizeof *log->layers))
        return CASCADE_ENOMEM;
    struct ab_layer *l = &log->layers[log->n_layers];
    memset(l, 0, sizeof *l);
    if (!(l->name = strndup(name, len)))
        return CASCADE_ENOMEM;
    return (long)log->n_layers++;
}

static int add_asg(struct ab_log *log, const char *layer, size_t llen, const char *arm, size_t alen)
{
    long li = layer_index(log, layer, llen);
    if (li < 0)
        return (int)li;
    long ai = ab_intern(&log->layers[li].arms, arm, alen);
    if (ai < 0 || grow((void **)&log->asg, log->n_asg, &log->cap_asg, sizeof *log->asg))
        return CASCADE_ENOMEM;
    log->asg[log->n_asg++] = (struct ab_asg){(uint32_t)li, (uint32_t)ai};
    return 0;
}

/* "layer=experiment@bucket;..." (exp) or "stage=track;..." (track, with
 * the layer prefixed by "track:"). Sets *held when any layer is "holdout". */
static int parse_pairs(struct ab_log *log, const char *text, bool track, bool *held, char *err,
                       size_t errlen)
{
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len == 0 || !eq || eq == p || len >= AB_NAME_MAX) {
            snprintf(err, errlen, "%s: expected %s, got \"%.*s\"", track ? "track" : "exp",
                     track ? "stage=track" : "layer=experiment@bucket", (int)len, p);
            return CASCADE_EINVAL;
        }
        const char *arm = eq + 1;
        size_t alen = len - (size_t)(arm - p);
        if (!track) {
            const char *at = memchr(arm, '@', alen);
            if (!at || at == arm) {
                snprintf(err, errlen, "exp: expected layer=experiment@bucket, got \"%.*s\"",
                         (int)len, p);
                return CASCADE_EINVAL;
            }
            alen = (size_t)(at - arm);
            if (alen == 7 && memcmp(arm, "holdout", 7) == 0)
                *held = true;
        }
        int rc;
        if (track) {
            char name[AB_NAME_MAX + 8];
            int n = snprintf(name, sizeof name, AB_TRACK_PREFIX "%.*s", (int)(eq - p), p);
            rc = add_asg(log, name, (size_t)n, arm, alen);
        } else {
            rc = add_asg(log, p, (size_t)(eq - p), arm, alen);
        }
        if (rc)
            return rc;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* "item:pos:reason:rank:rerank,..." -> the item ids. */
static int parse_items(struct ab_log *log, const char *text, char *err, size_t errlen)
{
    for (const char *p = text; *p;) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(p, &end, 10);
        if (errno || end == p || (*end != ':' && *end != ',' && *end)) {
            snprintf(err, errlen, "items: expected item_id:position:reason:scores, got \"%.32s\"",
                     p);
            return CASCADE_EINVAL;
        }
        if (grow((void **)&log->items, log->n_items, &log->cap_items, sizeof *log->items))
            return CASCADE_ENOMEM;
        log->items[log->n_items++] = id;
        const char *comma = strchr(p, ',');
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

static int parse_ms(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || errno || end == text || *end)
        return CASCADE_EINVAL;
    *out = v;
    return 0;
}

int ab_log_add_serve(struct ab_log *log, const struct ab_fields *f, int64_t from_ms, int64_t to_ms,
                     char *err, size_t errlen)
{
    const char *rid = ab_field(f, "rid"), *user = ab_field(f, "user");
    const char *exp = ab_field(f, "exp"), *items = ab_field(f, "items");
    const char *track = ab_field(f, "track");
    int64_t ts;
    if (!rid || !user || !exp || !items) {
        snprintf(err, errlen, "serve record without %s",
                 !rid    ? "rid"
                 : !user ? "user"
                 : !exp  ? "exp"
                         : "items");
        return CASCADE_EINVAL;
    }
    if (parse_ms(ab_field(f, "ts_ms"), &ts) != 0) {
        snprintf(err, errlen, "serve record %s: ts_ms is not an integer", rid);
        return CASCADE_EINVAL;
    }
    if (ts < from_ms || ts > to_ms)
        return 0;
    if (grow((void **)&log->serves, log->n_serves, &log->cap_serves, sizeof *log->serves))
        return CASCADE_ENOMEM;
    struct ab_serve *s = &log->serves[log->n_serves];
    *s = (struct ab_serve){.rid_h = cascade_hash_str(rid, 0),
                           .user_h = cascade_hash_str(user, 0),
                           .first_item = log->n_items,
                           .first_asg = log->n_asg};
    bool held = false;
    int rc = parse_pairs(log, exp, false, &held, err, errlen);
    if (rc == 0 && exp[0])
        rc = held ? add_asg(log, AB_HOLDOUT_LAYER, strlen(AB_HOLDOUT_LAYER), "holdout", 7)
                  : add_asg(log, AB_HOLDOUT_LAYER, strlen(AB_HOLDOUT_LAYER), "everyone_else", 13);
    if (rc == 0 && track)
        rc = parse_pairs(log, track, true, &held, err, errlen);
    if (rc == 0)
        rc = parse_items(log, items, err, errlen);
    if (rc) {
        log->n_items = s->first_item; /* drop the partial record */
        log->n_asg = s->first_asg;
        return rc;
    }
    s->n_items = log->n_items - s->first_item;
    s->n_asg = log->n_asg - s->first_asg;
    log->n_serves++;
    return 0;
}

int ab_log_add_event(struct ab_log *log, const struct ab_fields *f, char *err, size_t errlen)
{
    const char *rid = ab_field(f, "rid"), *user = ab_field(f, "user");
    const char *item = ab_field(f, "item"), *type = ab_field(f, "type");
    uint32_t t;
    int64_t id;
    if (!user || !item || !type) {
        snprintf(err, errlen, "event without %s", !user ? "user" : !item ? "item" : "type");
        return CASCADE_EINVAL;
    }
    if (cascade_event_type_parse(type, &t) != 0 || parse_ms(item, &id) != 0) {
        snprintf(err, errlen, "event of user %.64s: bad type \"%.32s\" or item \"%.32s\"", user,
                 type, item);
        return CASCADE_EINVAL;
    }
    if (!rid || !rid[0])
        return 0; /* not from a Recommend answer: nothing to join */
    if (grow((void **)&log->events, log->n_events, &log->cap_events, sizeof *log->events))
        return CASCADE_ENOMEM;
    log->events[log->n_events++] =
        (struct ab_event){cascade_hash_str(rid, 0), cascade_hash_str(user, 0), (uint64_t)id, t};
    return 0;
}

void ab_log_free(struct ab_log *log)
{
    if (!log)
        return;
    for (size_t i = 0; i < log->n_layers; i++) {
        for (size_t j = 0; j < log->layers[i].arms.n; j++)
            free(log->layers[i].arms.v[j]);
        free(log->layers[i].arms.v);
        free(log->layers[i].name);
    }
    free(log->layers);
    free(log->serves);
    free(log->items);
    free(log->asg);
    free(log->events);
    memset(log, 0, sizeof *log);
}
