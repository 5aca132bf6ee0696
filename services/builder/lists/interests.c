/* Per-user interest lists and decayed category affinities (see interests.h). */
#include "interests.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

double cascade_decay(int64_t age_s, double half_life_s)
{
    if (half_life_s <= 0 || age_s <= 0)
        return 1.0;
    return exp2(-(double)age_s / half_life_s);
}

static int cmp_newest_first(const void *a, const void *b)
{
    const struct cascade_ui_entry *x = a, *y = b;
    if (x->last_ts != y->last_ts)
        return x->last_ts > y->last_ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Aggregate one user's events into entries (scratch: slot per item, -1 = none;
 * seen: bitmask of behaviour types per entry). Returns the entry count. */
static size_t aggregate_user(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                             const struct cascade_user_events *ue, size_t u, int32_t *slot,
                             uint32_t *seen, struct cascade_ui_entry *out)
{
    size_t n = 0;
    for (size_t k = ue->off[u]; k < ue->off[u + 1]; k++) {
        const struct cascade_ds_event *e = &ds->events[ue->idx[k]];
        float wt = w->w[e->type];
        if (!(wt > 0))
            continue;
        int32_t s = slot[e->item];
        if (s < 0) {
            s = slot[e->item] = (int32_t)n++;
            out[s] = (struct cascade_ui_entry){e->item, e->type, 0, e->ts};
            seen[s] = 0;
        }
        struct cascade_ui_entry *en = &out[s];
        if (!(seen[s] & (1u << e->type))) {
            seen[s] |= 1u << e->type;
            en->weight += wt;
            if (wt > w->w[en->type])
                en->type = e->type;
        }
        if (e->ts > en->last_ts)
            en->last_ts = e->ts;
    }
    for (size_t i = 0; i < n; i++)
        slot[out[i].item] = -1;
    qsort(out, n, sizeof(*out), cmp_newest_first);
    return n;
}

int cascade_ui_build(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                     size_t cap, struct cascade_ui *out)
{
    struct cascade_user_events ue = {0};
    int32_t *slot = NULL;
    uint32_t *seen = NULL;
    size_t total = 0, max_user = 0;
    int rc = CASCADE_ENOMEM;

    memset(out, 0, sizeof(*out));
    if (cascade_user_events_build(ds, &ue) != 0)
        return CASCADE_ENOMEM;
    for (size_t u = 0; u < ds->n_users; u++) {
        size_t n = ue.off[u + 1] - ue.off[u];
        total += n;
        if (n > max_user)
            max_user = n;
    }
    out->n_users = ds->n_users;
    out->off = calloc(ds->n_users + 1, sizeof(size_t));
    out->e = malloc((total + 1) * sizeof(*out->e));
    slot = malloc((ds->n_items + 1) * sizeof(int32_t));
    seen = malloc((max_user + 1) * sizeof(uint32_t));
    if (!out->off || !out->e || !slot || !seen)
        goto out;
    memset(slot, 0xff, (ds->n_items + 1) * sizeof(int32_t));
    size_t pos = 0;
    for (size_t u = 0; u < ds->n_users; u++) {
        /* Aggregate in place at the end of what is written so far. */
        size_t n = aggregate_user(ds, w, &ue, u, slot, seen, out->e + pos);
        if (cap && n > cap)
            n = cap;
        pos += n;
        out->off[u + 1] = pos;
    }
    rc = 0;
out:
    if (rc != 0)
        cascade_ui_free(out);
    cascade_user_events_free(&ue);
    free(slot);
    free(seen);
    return rc;
}

void cascade_ui_free(struct cascade_ui *ui)
{
    free(ui->off);
    free(ui->e);
    ui->off = NULL;
    ui->e = NULL;
}

/* The entry of category in a, decayed to ts (created empty when missing);
 * NULL when out of memory. */
static struct cascade_cat_weight *affinity_entry(struct cascade_affinity *a, uint32_t category,
                                                 int64_t ts, double half_life_s)
{
    for (uint32_t i = 0; i < a->n; i++) {
        struct cascade_cat_weight *c = &a->v[i];
        if (c->category == category) {
            if (ts > c->ts) {
                double d = cascade_decay(ts - c->ts, half_life_s);
                c->weight *= d;
                c->impressions *= d;
                c->clicks *= d;
                c->ts = ts;
            }
            return c;
        }
    }
    if (a->n == a->cap) {
        uint32_t ncap = a->cap ? a->cap * 2 : 4;
        struct cascade_cat_weight *v = realloc(a->v, ncap * sizeof(*v));
        if (!v)
            return NULL;
        a->v = v;
        a->cap = ncap;
    }
    a->v[a->n] = (struct cascade_cat_weight){.category = category, .ts = ts};
    return &a->v[a->n++];
}

int cascade_affinity_observe(struct cascade_affinity *a, const cascade_dataset *ds,
                             const struct cascade_ds_event *e,
                             const struct cascade_behaviour_weights *w, double half_life_s)
{
    float wt = w->w[e->type];
    bool exposure = e->type == CASCADE_EV_IMPRESSION || e->type == CASCADE_EV_CLICK;
    if (!(wt > 0) && !exposure)
        return 0;
    struct cascade_cat_weight *c =
        affinity_entry(a, ds->items[e->item].category, e->ts, half_life_s);
    if (!c)
        return CASCADE_ENOMEM;
    if (wt > 0)
        c->weight += wt;
    c->impressions += e->type == CASCADE_EV_IMPRESSION;
    c->clicks += e->type == CASCADE_EV_CLICK;
    return 0;
}

/* Record order: heavier first, then more impressions, then lower category. */
static bool affinity_before(const cascade_v1_CategoryAffinity *x, float w, float imp, uint32_t cat)
{
    if (x->weight != w)
        return x->weight > w;
    if (x->impressions != imp)
        return x->impressions > imp;
    return x->category < cat;
}

void cascade_affinity_to_record(const struct cascade_affinity *a, int64_t now, double half_life_s,
                                cascade_v1_UserRecord *rec)
{
    const size_t max = sizeof(rec->affinities) / sizeof(rec->affinities[0]);
    rec->affinities_count = 0;
    /* Selection by insertion into a sorted array of at most 16 entries. */
    for (uint32_t i = 0; i < a->n; i++) {
        const struct cascade_cat_weight *c = &a->v[i];
        double d = cascade_decay(now - c->ts, half_life_s);
        float w = (float)(c->weight * d), imp = (float)(c->impressions * d);
        size_t n = rec->affinities_count, pos = n;
        while (pos > 0 && !affinity_before(&rec->affinities[pos - 1], w, imp, c->category))
            pos--;
        if (pos >= max)
            continue;
        size_t last = n < max ? n : max - 1;
        memmove(&rec->affinities[pos + 1], &rec->affinities[pos],
                (last - pos) * sizeof(rec->affinities[0]));
        rec->affinities[pos] = (cascade_v1_CategoryAffinity){.category = c->category,
                                                             .weight = w,
                                                             .impressions = imp,
                                                             .clicks = (float)(c->clicks * d)};
        if (n < max)
            rec->affinities_count++;
    }
}

void cascade_affinity_free(struct cascade_affinity *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}
