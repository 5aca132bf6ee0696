/* The hot, new, geo and city families: one pass over the events for the
 * decayed hot scores (global and per demographic cell) and impression counts,
 * one pass over the items for the rest; each family written as a new
 * generation and published on its own. */
#include "lists.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "family.h"
#include "geohash.h"
#include "interests.h"
#include "progress.h"
#include "store.h"
#include "topk.h"
#include "timescale.h"

#define DAY_S 86400.0
#define DEMO_CELLS (CASCADE_AGE_BUCKETS * CASCADE_GENDERS)
#define EVENTS_PER_UPDATE 65536

void cascade_lists_defaults(struct cascade_lists_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ns = "cascade";
    o->families = CASCADE_LISTS_ALL;
    cascade_behaviour_weights_default(&o->weights);
    o->hot_size = 1000;
    o->hot_half_life_days = CASCADE_TIMESCALE_AUTO;
    o->hot_demo_size = 200;
    o->hot_category_size = 200;
    o->new_window_days = CASCADE_TIMESCALE_AUTO;
    o->geo_precision = 5;
    o->geo_cap = 500;
    o->city_cap = 1000;
    o->pipeline = 2000;
}

int cascade_lists_config(const cascade_config *c, struct cascade_lists_opts *o, char *err,
                         size_t errlen)
{
    int64_t precision;
    int rc;
    if ((rc = cascade_config_size(c, "build.hot.size", &o->hot_size, 1, 10000000, err, errlen)) ||
        (rc = cascade_config_double(c, "build.hot.half_life_days", o->hot_half_life_days, 0, 3650,
                                    &o->hot_half_life_days, err, errlen)) ||
        (rc = cascade_config_size(c, "build.hot.demo_size", &o->hot_demo_size, 0, 100000, err,
                                  errlen)) ||
        (rc = cascade_config_size(c, "build.hot.category_size", &o->hot_category_size, 0, 100000,
                                  err, errlen)) ||
        (rc = cascade_config_double(c, "build.new.window_days", o->new_window_days, 0, 3650,
                                    &o->new_window_days, err, errlen)) ||
        (rc = cascade_config_int(c, "build.geo.precision", o->geo_precision, 1, CASCADE_GEOHASH_MAX,
                                 &precision, err, errlen)) ||
        (rc = cascade_config_size(c, "build.geo.cap", &o->geo_cap, 1, 1000000, err, errlen)) ||
        (rc = cascade_config_size(c, "build.city.cap", &o->city_cap, 1, 1000000, err, errlen)))
        return rc;
    o->geo_precision = (int)precision;
    return 0;
}

int cascade_age_bucket(uint32_t age)
{
    static const uint32_t upper[] = {18, 25, 35, 45, 55}; /* exclusive bounds of buckets 1..5 */
    if (age == 0)
        return 0;
    for (int b = 0; b < 5; b++)
        if (age < upper[b])
            return b + 1;
    return 6;
}

/* Demographic cell of a user: age bucket x gender (unknown genders count as 0). */
static int demo_cell(const struct cascade_ds_user *u)
{
    uint32_t g = u->gender < CASCADE_GENDERS ? u->gender : 0;
    return cascade_age_bucket(u->age) * CASCADE_GENDERS + (int)g;
}

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

/* What the event pass computes. */
struct event_stats {
    double *hot;           /* n_items */
    double *demo;          /* DEMO_CELLS x n_items, or NULL */
    uint32_t *impressions; /* n_items */
};

static void free_event_stats(struct event_stats *s)
{
    free(s->hot);
    free(s->demo);
    free(s->impressions);
}

/* One pass over the events up to as_of: hot scores (global and per cell) and
 * impression counts. */
static int count_events(const cascade_dataset *ds, const struct cascade_lists_opts *o,
                        int64_t as_of, struct event_stats *s)
{
    size_t n = ds->n_items;
    double hl = o->hot_half_life_days * DAY_S;
    struct cascade_progress prog;
    uint8_t *cell = malloc(ds->n_users + 1);
    s->hot = calloc(n + 1, sizeof(double));
    s->impressions = calloc(n + 1, sizeof(uint32_t));
    s->demo = o->hot_demo_size ? calloc(DEMO_CELLS * n + 1, sizeof(double)) : NULL;
    if (!cell || !s->hot || !s->impressions || (o->hot_demo_size && !s->demo)) {
        free(cell);
        return CASCADE_ENOMEM;
    }
    for (size_t u = 0; u < ds->n_users; u++)
        cell[u] = (uint8_t)demo_cell(&ds->users[u]);
    cascade_progress_start(&prog, "lists", "events counted", ds->n_events, o->quiet);
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (e->ts > as_of)
            continue;
        if (e->type == CASCADE_EV_IMPRESSION)
            s->impressions[e->item]++;
        float w = o->weights.w[e->type];
        if (w > 0) {
            double d = w * cascade_decay(as_of - e->ts, hl);
            s->hot[e->item] += d;
            if (s->demo)
                s->demo[(size_t)cell[e->user] * n + e->item] += d;
        }
        if ((i % EVENTS_PER_UPDATE) == 0)
            cascade_progress_update(&prog, i);
    }
    cascade_progress_finish(&prog, ds->n_events);
    free(cell);
    return 0;
}

/* ZADD the top k items of scores[0..n_items) (positive scores only) under suffix. */
static int write_top(struct cascade_family_writer *w, const cascade_dataset *ds,
                     const double *scores, size_t k, const char *suffix,
                     struct cascade_scored *scratch, uint64_t *ids, double *vals, size_t *written)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->n_items; i++)
        if (scores[i] > 0)
            scratch[n++] = (struct cascade_scored){scores[i], ds->items[i].id, (uint32_t)i};
    n = cascade_topk_select(scratch, n, k);
    for (size_t i = 0; i < n; i++) {
        ids[i] = scratch[i].id;
        vals[i] = scratch[i].score;
    }
    *written = n;
    return cascade_family_zadd(w, suffix, ids, vals, n);
}

/* Per-category hot lists for the cold-start "interest" channel: the global hot
 * score restricted to one category, the best k of each under "cat:{category}".
 * One pass over all items sorted by score fills every category's list. */
static int write_category_hot(struct cascade_family_writer *w, const cascade_dataset *ds,
                              const double *scores, size_t k, struct cascade_scored *scratch,
                              struct cascade_lists_summary *sum)
{
    uint32_t max_cat = 0;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < ds->n_items; i++) {
        if (ds->items[i].category > max_cat)
            max_cat = ds->items[i].category;
        if (scores[i] > 0)
            scratch[n++] = (struct cascade_scored){scores[i], ds->items[i].id, (uint32_t)i};
    }
    n = cascade_topk_select(scratch, n, n); /* all of them, best first */
    size_t n_cats = (size_t)max_cat + 1;
    size_t *filled = calloc(n_cats, sizeof(*filled));
    uint32_t *picked = malloc(n_cats * k * sizeof(*picked)); /* positions in scratch */
    uint64_t *ids = malloc((k + 1) * sizeof(*ids));
    double *vals = malloc((k + 1) * sizeof(*vals));
    if (!filled || !picked || !ids || !vals) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < n; j++) {
        uint32_t cat = ds->items[scratch[j].idx].category;
        if (cat != 0 && filled[cat] < k)
            picked[(size_t)cat * k + filled[cat]++] = (uint32_t)j;
    }
    for (uint32_t cat = 1; cat <= max_cat && rc == 0; cat++) {
        if (filled[cat] == 0)
            continue;
        for (size_t m = 0; m < filled[cat]; m++) {
            const struct cascade_scored *e = &scratch[picked[(size_t)cat * k + m]];
            ids[m] = e->id;
            vals[m] = e->score;
        }
        char suffix[32];
        snprintf(suffix, sizeof(suffix), "cat:%u", cat);
        rc = cascade_family_zadd(w, suffix, ids, vals, filled[cat]);
        sum->category_lists++;
        sum->category_items += filled[cat];
    }
out:
    free(filled);
    free(picked);
    free(ids);
    free(vals);
    return rc;
}

static int build_hot(const cascade_dataset *ds, cascade_redis *r,
                     const struct cascade_lists_opts *o, const struct event_stats *s,
                     struct cascade_lists_summary *sum, char *err, size_t errlen)
{
    struct cascade_family_writer w;
    size_t k = o->hot_size > o->hot_demo_size ? o->hot_size : o->hot_demo_size;
    struct cascade_scored *scratch = malloc((ds->n_items + 1) * sizeof(*scratch));
    uint64_t *ids = malloc((k + 1) * sizeof(*ids));
    double *vals = malloc((k + 1) * sizeof(*vals));
    char suffix[64];
    int rc = CASCADE_ENOMEM;
    if (!scratch || !ids || !vals) {
        snprintf(err, errlen, "lists: out of memory for the hot list of %zu items", ds->n_items);
        goto out;
    }
    if ((rc = cascade_family_begin(&w, r, o->ns, "hot", o->pipeline, err, errlen)) != 0)
        goto out;
    rc = write_top(&w, ds, s->hot, o->hot_size, NULL, scratch, ids, vals, &sum->hot);
    for (int c = 0; c < DEMO_CELLS && s->demo && rc == 0; c++) {
        size_t n = 0;
        snprintf(suffix, sizeof(suffix), "demo:%d:%d", c / CASCADE_GENDERS, c % CASCADE_GENDERS);
        rc = write_top(&w, ds, s->demo + (size_t)c * ds->n_items, o->hot_demo_size, suffix, scratch,
                       ids, vals, &n);
        sum->demo_lists += n > 0;
        sum->demo_items += n;
    }
    if (rc == 0 && o->hot_category_size)
        rc = write_category_hot(&w, ds, s->hot, o->hot_category_size, scratch, sum);
    if (rc != 0)
        cascade_family_error(&w, "writing", err, errlen);
    else if ((rc = cascade_family_publish(&w, err, errlen)) == 0)
        sum->gen_hot = w.gen;
    sum->commands += w.pl.total;
out:
    free(scratch);
    free(ids);
    free(vals);
    return rc;
}

static int build_new(const cascade_dataset *ds, cascade_redis *r,
                     const struct cascade_lists_opts *o, int64_t as_of, const struct event_stats *s,
                     struct cascade_lists_summary *sum, char *err, size_t errlen)
{
    struct cascade_family_writer w;
    int64_t from = as_of - (int64_t)(o->new_window_days * DAY_S);
    uint64_t *ids = malloc((ds->n_items + 1) * sizeof(*ids));
    double *created = malloc((ds->n_items + 1) * sizeof(double));
    double *impressions = malloc((ds->n_items + 1) * sizeof(double));
    size_t n = 0;
    int rc = CASCADE_ENOMEM;
    if (!ids || !created || !impressions) {
        snprintf(err, errlen, "lists: out of memory for the new list of %zu items", ds->n_items);
        goto out;
    }
    for (size_t i = 0; i < ds->n_items; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        if (it->created_at <= 0 || it->created_at < from || it->created_at > as_of)
            continue;
        ids[n] = it->id;
        created[n] = (double)it->created_at;
        impressions[n++] = s->impressions[i];
    }
    if ((rc = cascade_family_begin(&w, r, o->ns, "new", o->pipeline, err, errlen)) != 0)
        goto out;
    if ((rc = cascade_family_zadd(&w, NULL, ids, created, n)) == 0)
        rc = cascade_family_zadd(&w, "impressions", ids, impressions, n);
    if (rc != 0)
        cascade_family_error(&w, "writing", err, errlen);
    else if ((rc = cascade_family_publish(&w, err, errlen)) == 0)
        sum->gen_new = w.gen;
    sum->new_items = n;
    sum->commands += w.pl.total;
out:
    free(ids);
    free(created);
    free(impressions);
    return rc;
}

/* The cell of an item at precision p into cell, or false when it has none. */
static bool item_cell(const struct cascade_ds_item *it, int p, char *cell)
{
    if (strlen(it->geohash) < (size_t)p)
        return false;
    memcpy(cell, it->geohash, (size_t)p);
    cell[p] = '\0';
    return cascade_geohash_valid(cell);
}

/* Items published by as_of into groups (geo cells when geo, else cities),
 * then written newest first per group. */
static int build_grouped(const cascade_dataset *ds, cascade_redis *r,
                         const struct cascade_lists_opts *o, int64_t as_of, bool geo,
                         struct cascade_lists_summary *sum, char *err, size_t errlen)
{
    const char *family = geo ? "geo" : "city";
    struct cascade_family_writer w;
    struct cascade_grouped_item *v = malloc((ds->n_items + 1) * sizeof(*v));
    size_t n = 0, groups = 0, items = 0, skipped = 0;
    int rc = CASCADE_ENOMEM;
    if (!v) {
        snprintf(err, errlen, "lists: out of memory for the %s lists of %zu items", family,
                 ds->n_items);
        goto out;
    }
    for (size_t i = 0; i < ds->n_items; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        struct cascade_grouped_item g = {.group = 0, .created_at = it->created_at, .id = it->id};
        if (it->created_at > as_of)
            continue;
        if (geo ? !item_cell(it, o->geo_precision, g.cell) : it->city == 0) {
            skipped++;
            continue;
        }
        if (!geo)
            g.group = it->city;
        v[n++] = g;
    }
    if ((rc = cascade_family_begin(&w, r, o->ns, family, o->pipeline, err, errlen)) != 0)
        goto out;
    rc =
        cascade_family_write_grouped(&w, "", v, n, geo ? o->geo_cap : o->city_cap, &groups, &items);
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "lists: out of memory while writing %s lists", family);
    else if (rc != 0)
        cascade_family_error(&w, "writing", err, errlen);
    else
        rc = cascade_family_publish(&w, err, errlen);
    sum->commands += w.pl.total;
    if (rc == 0 && geo) {
        sum->gen_geo = w.gen;
        sum->geo_cells = groups;
        sum->geo_items = items;
        sum->geo_skipped = skipped;
    } else if (rc == 0) {
        sum->gen_city = w.gen;
        sum->cities = groups;
        sum->city_items = items;
    }
out:
    free(v);
    return rc;
}

/* Record the geohash precision in {ns}:meta, so serving can check it looks
 * up cells of the same length. */
static int write_geo_meta(cascade_redis *r, const struct cascade_lists_opts *o, char *err,
                          size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    int rc = cascade_redis_command(r, &rep, "HSET %s geo_precision %d",
                                   cascade_key_meta(key, o->ns), o->geo_precision);
    if (rep)
        freeReplyObject(rep);
    if (rc != 0)
        snprintf(err, errlen, "%s (while writing %s)", cascade_redis_error(r), key);
    return rc;
}

static int check_opts(const struct cascade_lists_opts *o, char *err, size_t errlen)
{
    if (o->geo_precision < 1 || o->geo_precision > CASCADE_GEOHASH_MAX) {
        snprintf(err, errlen, "lists: geo precision must be in [1, %d], got %d",
                 CASCADE_GEOHASH_MAX, o->geo_precision);
        return CASCADE_EINVAL;
    }
    if (o->hot_size == 0 || o->geo_cap == 0 || o->city_cap == 0) {
        snprintf(err, errlen, "lists: hot size, geo cap and city cap must be at least 1");
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_lists_run(const cascade_dataset *ds, cascade_redis *r,
                      const struct cascade_lists_opts *o, struct cascade_lists_summary *sum,
                      char *err, size_t errlen)
{
    struct cascade_lists_summary local;
    struct cascade_lists_opts eff = *o; /* with the time constants resolved */
    struct event_stats s = {0};
    int64_t t0_us;
    int rc;
    t0_us = cascade_now_us();
    sum = sum ? sum : &local;
    memset(sum, 0, sizeof(*sum));
    sum->as_of = o->as_of ? o->as_of : cascade_dataset_last_ts(ds);
    if ((rc = check_opts(o, err, errlen)) != 0)
        return rc;
    sum->span_days = cascade_timescale_span_days(ds);
    eff.hot_half_life_days = sum->hot_half_life_days =
        cascade_timescale_days(o->hot_half_life_days, CASCADE_TIMESCALE_HOT_SHARE, sum->span_days);
    eff.new_window_days = sum->new_window_days =
        cascade_timescale_days(o->new_window_days, CASCADE_TIMESCALE_NEW_SHARE, sum->span_days);
    o = &eff;
    if ((o->families & (CASCADE_LISTS_HOT | CASCADE_LISTS_NEW)) &&
        (rc = count_events(ds, o, sum->as_of, &s)) != 0) {
        snprintf(err, errlen, "lists: out of memory counting %zu events over %zu items",
                 ds->n_events, ds->n_items);
        goto out;
    }
    if ((o->families & CASCADE_LISTS_HOT) && (rc = build_hot(ds, r, o, &s, sum, err, errlen)) != 0)
        goto out;
    if ((o->families & CASCADE_LISTS_NEW) &&
        (rc = build_new(ds, r, o, sum->as_of, &s, sum, err, errlen)) != 0)
        goto out;
    if ((o->families & CASCADE_LISTS_GEO) &&
        ((rc = build_grouped(ds, r, o, sum->as_of, true, sum, err, errlen)) != 0 ||
         (rc = write_geo_meta(r, o, err, errlen)) != 0))
        goto out;
    if ((o->families & CASCADE_LISTS_CITY) &&
        (rc = build_grouped(ds, r, o, sum->as_of, false, sum, err, errlen)) != 0)
        goto out;
out:
    free_event_stats(&s);
    sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    return rc;
}
