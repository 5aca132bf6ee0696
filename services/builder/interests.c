/* Per-user interest lists and decayed category affinities (see interests.h). */
#include "interests.h"

#include <math.h>
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

int cascade_affinity_add(struct cascade_affinity *a, uint32_t category, double w, int64_t ts,
                         double half_life_s)
{
    for (uint32_t i = 0; i < a->n; i++) {
        struct cascade_cat_weight *c = &a->v[i];
        if (c->category == category) {
            c->weight = c->weight * cascade_decay(ts - c->ts, half_life_s) + w;
            if (ts > c->ts)
                c->ts = ts;
            return 0;
        }
    }
    if (a->n == a->cap) {
        uint32_t ncap = a->cap ? a->cap * 2 : 4;
        struct cascade_cat_weight *v = realloc(a->v, ncap * sizeof(*v));
        if (!v)
            return CASCADE_ENOMEM;
        a->v = v;
        a->cap = ncap;
    }
    a->v[a->n++] = (struct cascade_cat_weight){category, w, ts};
    return 0;
}

void cascade_affinity_to_record(const struct cascade_affinity *a, int64_t now, double half_life_s,
                                cascade_v1_UserRecord *rec)
{
    const size_t max = sizeof(rec->affinities) / sizeof(rec->affinities[0]);
    rec->affinities_count = 0;
    /* Selection by insertion into a sorted array of at most 16 entries. */
    for (uint32_t i = 0; i < a->n; i++) {
        float w = (float)(a->v[i].weight * cascade_decay(now - a->v[i].ts, half_life_s));
        uint32_t cat = a->v[i].category;
        size_t n = rec->affinities_count, pos = n;
        while (pos > 0 &&
               (rec->affinities[pos - 1].weight < w ||
                (rec->affinities[pos - 1].weight == w && rec->affinities[pos - 1].category > cat)))
            pos--;
        if (pos >= max)
            continue;
        size_t last = n < max ? n : max - 1;
        memmove(&rec->affinities[pos + 1], &rec->affinities[pos],
                (last - pos) * sizeof(rec->affinities[0]));
        rec->affinities[pos].category = cat;
        rec->affinities[pos].weight = w;
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
