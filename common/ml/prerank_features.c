/* Pre-rank hashed crosses and the heuristic score. Each feature is
 * XXH3(a ‖ b, seed = field number) truncated to the model's bits; the
 * buckets (age, popularity, CTR, ...) are coarse so crosses stay dense. */
#include "prerank_features.h"

#include <math.h>
#include <string.h>

#include "hash.h"

#define PRIOR_CLICKS 1.0
#define PRIOR_IMPRESSIONS 20.0
#define UNKNOWN 0xffffffffu

void cascade_prerank_weights_default(struct cascade_prerank_weights *w)
{
    w->clicks = 0.2;
    w->ctr = 4.0;
    w->recall = 1.0;
    w->prior_clicks = PRIOR_CLICKS;
    w->prior_impressions = PRIOR_IMPRESSIONS;
}

float cascade_prerank_score(const struct cascade_prerank_weights *w,
                            const cascade_v1_ItemStats *stats, float recall_score)
{
    double clicks = stats ? stats->clicks : 0, impressions = stats ? stats->impressions : 0;
    double ctr = (clicks + w->prior_clicks) / (impressions + w->prior_impressions);
    double s = w->clicks * log1p(clicks) + w->ctr * ctr + w->recall * (double)recall_score;
    return isfinite(s) ? (float)s : 0.0f;
}

/* floor(log2(1 + v)), capped. */
static uint32_t log2_bucket(double v, uint32_t cap)
{
    if (!(v > 0))
        return 0;
    double b = floor(log2(1.0 + v));
    return b > cap ? cap : (uint32_t)b;
}

static uint32_t age_bucket(uint32_t age)
{
    static const uint32_t edges[] = {18, 25, 35, 45, 55, 65};
    if (age == 0)
        return UNKNOWN;
    uint32_t b = 0;
    while (b < sizeof edges / sizeof edges[0] && age >= edges[b])
        b++;
    return b;
}

void cascade_prerank_user_prepare(const cascade_v1_UserRecord *rec, const char *user_id,
                                  struct cascade_prerank_user *u)
{
    memset(u, 0, sizeof *u);
    u->rec = rec;
    const char *id = rec && rec->user_id[0] ? rec->user_id : user_id;
    u->uid = id ? cascade_hash_str(id, 0x707265) : 0;
    u->age_bucket = rec ? age_bucket(rec->age) : UNKNOWN;
    u->gender = rec ? rec->gender : UNKNOWN;
    u->city = rec && rec->city ? rec->city : UNKNOWN;
    u->activity_bucket = rec ? log2_bucket(rec->clicks, 12) : UNKNOWN;
    for (pb_size_t i = 0; rec && i < rec->affinities_count; i++)
        if (rec->affinities[i].weight > 0)
            u->affinity_sum += rec->affinities[i].weight;
}

static uint32_t cross(unsigned field, uint64_t a, uint64_t b, unsigned bits)
{
    uint64_t key[2] = {a, b};
    uint64_t h = cascade_hash64(key, sizeof key, field);
    return (uint32_t)(h & ((1ull << bits) - 1));
}

/* Rank of the item's category among the user's affinities (1 = strongest,
 * buckets 1, 2, 3, 4 = 4th-6th, 5 = later; 0 = absent) and its share of the
 * total in fifths. */
static void affinity_buckets(const struct cascade_prerank_user *u, uint32_t category,
                             uint32_t *rank_b, uint32_t *share_b)
{
    const cascade_v1_UserRecord *r = u->rec;
    float w = -1;
    *rank_b = 0;
    *share_b = 0;
    for (pb_size_t i = 0; r && i < r->affinities_count; i++)
        if (r->affinities[i].category == category)
            w = r->affinities[i].weight;
    if (!(w > 0) || !(u->affinity_sum > 0))
        return;
    uint32_t rank = 1;
    for (pb_size_t i = 0; i < r->affinities_count; i++)
        rank += r->affinities[i].weight > w;
    *rank_b = rank <= 3 ? rank : (rank <= 6 ? 4 : 5);
    double share = w / u->affinity_sum;
    *share_b = 1 + (share >= 1 ? 4 : (uint32_t)(share * 5));
}

static bool interest_match(const cascade_v1_UserRecord *r, uint32_t category)
{
    for (pb_size_t i = 0; r && i < r->interests_count; i++)
        if (r->interests[i] == category)
            return true;
    return false;
}

void cascade_prerank_features(const struct cascade_prerank_user *u,
                              const cascade_v1_ItemRecord *item, int64_t now_s, unsigned bits,
                              uint32_t *idx)
{
    const cascade_v1_ItemStats *st = &item->stats;
    double clicks = item->has_stats ? st->clicks : 0;
    double imps = item->has_stats ? st->impressions : 0;
    double ctr = (clicks + PRIOR_CLICKS) / (imps + PRIOR_IMPRESSIONS);
    uint32_t cat = item->category, pop_b = log2_bucket(clicks, 20);
    uint32_t ctr_b = ctr >= 0.5 ? 25 : (uint32_t)(ctr * 50);
    uint32_t age_b = item->created_at_s > 0 && now_s >= item->created_at_s
                         ? log2_bucket((double)(now_s - item->created_at_s) / 3600.0, 16)
                         : UNKNOWN;
    uint32_t item_city = item->city ? item->city : UNKNOWN;
    uint32_t rank_b, share_b;
    affinity_buckets(u, cat, &rank_b, &share_b);
    unsigned f = 0;
    idx[f++] = cross(1, item->item_id, 0, bits);
    idx[f++] = cross(2, item->author_id, 0, bits);
    idx[f++] = cross(3, cat, 0, bits);
    idx[f++] = cross(4, u->uid, cat, bits);
    idx[f++] = cross(5, u->age_bucket, cat, bits);
    idx[f++] = cross(6, u->gender, cat, bits);
    idx[f++] = cross(7, u->city, item_city, bits);
    idx[f++] = cross(8, rank_b, cat, bits);
    idx[f++] = cross(9, share_b, 0, bits);
    idx[f++] = cross(10, interest_match(u->rec, cat), cat, bits);
    idx[f++] = cross(11, pop_b, 0, bits);
    idx[f++] = cross(12, ctr_b, 0, bits);
    idx[f++] = cross(13, age_b, item->media_type, bits);
    idx[f++] = cross(14, u->activity_bucket, ctr_b, bits);
    idx[f++] = cross(15, u->uid, item->author_id, bits);
    idx[f++] = cross(16, u->age_bucket, item->media_type, bits);
}
