/* The replay's user state: counts and decayed category affinities
 * (affinity.h). */
#include "affinity.h"

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

void cascade_user_stats_observe(struct cascade_user_stats *st, uint32_t type)
{
    if (type == CASCADE_EV_IMPRESSION) {
        st->impressions++;
        return;
    }
    st->interactions++;
    if (type == CASCADE_EV_CLICK)
        st->clicks++;
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

int cascade_affinity_add(struct cascade_affinity *a, uint32_t category, uint32_t type, int64_t ts,
                         const struct cascade_behaviour_weights *w, double half_life_s)
{
    float wt = type <= CASCADE_EV_MAX ? w->w[type] : 0.0f;
    bool exposure = type == CASCADE_EV_IMPRESSION || type == CASCADE_EV_CLICK;
    if (!(wt > 0) && !exposure)
        return 0;
    struct cascade_cat_weight *c = affinity_entry(a, category, ts, half_life_s);
    if (!c)
        return CASCADE_ENOMEM;
    if (wt > 0)
        c->weight += wt;
    c->impressions += type == CASCADE_EV_IMPRESSION;
    c->clicks += type == CASCADE_EV_CLICK;
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

bool cascade_affinity_to_base(const struct cascade_affinity *a, cascade_v1_UserOnlineBase *base)
{
    const size_t max = sizeof(base->affinity) / sizeof(base->affinity[0]);
    base->affinity_count = 0;
    if (a->n > max)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        base->affinity[i] = (cascade_v1_AffinityState){.category = a->v[i].category,
                                                       .weight = a->v[i].weight,
                                                       .impressions = a->v[i].impressions,
                                                       .clicks = a->v[i].clicks,
                                                       .ts_s = a->v[i].ts};
    base->affinity_count = (pb_size_t)a->n;
    return true;
}

int cascade_affinity_from_base(struct cascade_affinity *a, const cascade_v1_UserOnlineBase *base)
{
    a->n = 0;
    if (base->affinity_count > a->cap) {
        struct cascade_cat_weight *v = realloc(a->v, base->affinity_count * sizeof(*v));
        if (!v)
            return CASCADE_ENOMEM;
        a->v = v;
        a->cap = base->affinity_count;
    }
    for (pb_size_t i = 0; i < base->affinity_count; i++) {
        const cascade_v1_AffinityState *s = &base->affinity[i];
        a->v[i] = (struct cascade_cat_weight){.category = s->category,
                                              .weight = s->weight,
                                              .impressions = s->impressions,
                                              .clicks = s->clicks,
                                              .ts = s->ts_s};
    }
    a->n = base->affinity_count;
    return 0;
}

void cascade_affinity_free(struct cascade_affinity *a)
{
    if (a == NULL)
        return;
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}
