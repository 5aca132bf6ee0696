/* Ranking features shared by training (cascade-build train-rank) and serving
 * (the Rank service). Every feature is a smoothed, log- or logit-scaled value
 * of roughly unit scale, finite for empty records; docs/data.md lists them. */
#include "rank_features.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cascade/v1/records.pb.h"
#include "item_cache.h"

/* Smoothing priors: an item with no impressions looks like an average item. */
#define PRIOR_CTR 0.1
#define PRIOR_CTR_WEIGHT 20.0
#define PRIOR_LIKE 0.2
#define PRIOR_COLLECT 0.1
#define PRIOR_SHARE 0.05
#define PRIOR_RATE_WEIGHT 10.0
#define PRIOR_COMPLETION 0.5
#define PRIOR_COMPLETION_WEIGHT 5.0
#define MEDIA_VIDEO 2
/* Exposure share: (impressions + SHARE_CLICK_WEIGHT·clicks) of the category
 * over the user's total, smoothed so a user with no history looks uniform
 * over PRIOR_SHARE_TOTAL / PRIOR_SHARE_EACH = 20 categories, each declared
 * interest adding PRIOR_SHARE_DECLARED pseudo-counts (a user's declared
 * interests are its strongest categories: the best prior we measured with
 * scripts/bench/oracle_ceiling.py, docs/mmoe.md §5). */
#define SHARE_CLICK_WEIGHT 2.0
#define PRIOR_SHARE_EACH 0.3
#define PRIOR_SHARE_TOTAL 6.0
#define PRIOR_SHARE_DECLARED 16.0
#define PRIOR_CAT_CTR_WEIGHT 5.0

static const char *const feature_names[CASCADE_RANK_FEATURES] = {
    "item_ctr_logit",           "item_log_impressions", "item_like_lift",
    "item_collect_lift",        "item_share_lift",      "item_completion",
    "user_cat_share",           "user_cat_rel_top",     "declared_interest",
    "item_log_age_days",        "item_is_video",        "item_log_duration",
    "user_log_activity",        "user_ctr_logit",       "same_city",
    "user_no_history",          "user_cat_imp_share",   "user_cat_ctr_logit",
    "user_cat_log_impressions",
};

static double smooth(double k, double n, double prior, double weight)
{
    return (k + prior * weight) / (n + weight);
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static double logit(double p)
{
    p = clamp(p, 1e-4, 1.0 - 1e-4);
    return log(p / (1.0 - p));
}

/* What the user's record says about one category. */
struct category_view {
    double share, rel_top;      /* of the behaviour weights; 0 when absent */
    double impressions, clicks; /* in the category (decayed) */
    double total_impressions;   /* over the recorded categories */
    double total_clicks;
    bool has_history; /* some category with a positive weight */
};

static void category_view(const cascade_v1_UserRecord *user, uint32_t category,
                          struct category_view *v)
{
    double total = 0, top = 0, mine = 0;
    memset(v, 0, sizeof(*v));
    for (pb_size_t i = 0; i < user->affinities_count; i++) {
        const cascade_v1_CategoryAffinity *a = &user->affinities[i];
        if (a->impressions > 0)
            v->total_impressions += a->impressions;
        if (a->clicks > 0)
            v->total_clicks += a->clicks;
        if (a->category == category) {
            v->impressions = a->impressions > 0 ? a->impressions : 0;
            v->clicks = a->clicks > 0 ? a->clicks : 0;
        }
        double w = a->weight;
        if (!(w > 0))
            continue;
        total += w;
        if (w > top)
            top = w;
        if (a->category == category)
            mine += w;
    }
    v->share = total > 0 ? mine / total : 0.0;
    v->rel_top = top > 0 ? mine / top : 0.0;
    v->has_history = total > 0;
}

static bool declared_interest(const cascade_v1_UserRecord *user, uint32_t category)
{
    for (pb_size_t i = 0; i < user->interests_count; i++)
        if (user->interests[i] == category)
            return true;
    return false;
}

/* The item features of the record alone (0-5, 10, 11): everything but
 * the age. */
static void item_static_features(const cascade_v1_ItemRecord *item, float *out)
{
    const cascade_v1_ItemStats *s = &item->stats;
    bool video = item->media_type == MEDIA_VIDEO;
    double ctr = smooth(s->clicks, s->impressions, PRIOR_CTR, PRIOR_CTR_WEIGHT);
    out[0] = (float)clamp(logit(ctr) / 2.0, -4.0, 4.0);
    out[1] = (float)(log1p((double)s->impressions) / 10.0);
    out[2] = (float)log(smooth(s->likes, s->clicks, PRIOR_LIKE, PRIOR_RATE_WEIGHT) / PRIOR_LIKE);
    out[3] = (float)log(smooth(s->collects, s->clicks, PRIOR_COLLECT, PRIOR_RATE_WEIGHT) /
                        PRIOR_COLLECT);
    out[4] = (float)log(smooth(s->shares, s->clicks, PRIOR_SHARE, PRIOR_RATE_WEIGHT) / PRIOR_SHARE);
    double completion = 0;
    if (video && item->duration_s > 0) {
        double played = s->play_seconds / item->duration_s; /* in "full plays" */
        completion =
            clamp(smooth(played, s->plays, PRIOR_COMPLETION, PRIOR_COMPLETION_WEIGHT), 0, 2.0);
    }
    out[5] = (float)completion;
    out[10] = video ? 1.0f : 0.0f;
    out[11] = video && item->duration_s > 0 ? (float)(log1p(item->duration_s) / 6.0) : 0.0f;
}

/* Feature 9, the item's age at now_s. */
static float item_age_feature(const cascade_v1_ItemRecord *item, int64_t now_s)
{
    double age_days = 0;
    if (item->created_at_s > 0 && now_s > item->created_at_s)
        age_days = (double)(now_s - item->created_at_s) / 86400.0;
    return (float)(log1p(age_days) / 3.0);
}

/* The positions of struct cascade_rank_item's item[]. */
static const size_t item_slots[8] = {0, 1, 2, 3, 4, 5, 10, 11};

void cascade_rank_item_prepare(const cascade_v1_ItemRecord *item, struct cascade_rank_item *out)
{
    float f[CASCADE_RANK_FEATURES];
    memset(out, 0, sizeof *out);
    item_static_features(item, f);
    for (size_t k = 0; k < 8; k++)
        out->item[k] = f[item_slots[k]];
    out->log_clicks = (float)log1p((double)item->stats.clicks);
    out->stats = item->stats;
    out->media_type = item->media_type;
    out->duration_s = item->duration_s;
    out->ready = true;
}

static void rank_item_derive_fn(const cascade_v1_ItemRecord *rec, void *out)
{
    cascade_rank_item_prepare(rec, out);
}

const struct cascade_item_derive cascade_rank_item_derive = {
    .size = sizeof(struct cascade_rank_item), .fn = rank_item_derive_fn};

bool cascade_rank_item_matches(const struct cascade_rank_item *ri,
                               const cascade_v1_ItemRecord *item)
{
    if (!ri || !ri->ready)
        return false;
    const cascade_v1_ItemStats *a = &ri->stats, *b = &item->stats;
    /* Field by field: the structs' padding is not compared. The floats by
     * their bits (a NaN play count is the same input as itself). */
    return a->impressions == b->impressions && a->clicks == b->clicks && a->likes == b->likes &&
           a->collects == b->collects && a->shares == b->shares && a->plays == b->plays &&
           memcmp(&a->play_seconds, &b->play_seconds, sizeof(float)) == 0 &&
           ri->media_type == item->media_type &&
           memcmp(&ri->duration_s, &item->duration_s, sizeof(float)) == 0;
}

static void user_features(const cascade_v1_UserRecord *user, float *out)
{
    double ctr = smooth(user->clicks, user->impressions, PRIOR_CTR, PRIOR_CTR_WEIGHT);
    out[12] = (float)(log1p((double)user->interactions) / 6.0);
    out[13] = (float)clamp(logit(ctr) / 2.0, -4.0, 4.0);
}

/* The user's relation to the item's category: behaviour share, exposure
 * share and the click rate in the category, smoothed to the user's own;
 * and whether the user declared it. */
static void category_features(const cascade_v1_UserRecord *user, uint32_t category, float *out)
{
    struct category_view v;
    category_view(user, category, &v);
    double user_ctr = smooth(user->clicks, user->impressions, PRIOR_CTR, PRIOR_CTR_WEIGHT);
    bool declared = category != 0 && declared_interest(user, category);
    out[6] = (float)v.share;
    out[7] = (float)v.rel_top;
    out[8] = declared ? 1.0f : 0.0f;
    out[15] = v.has_history ? 0.0f : 1.0f;
    double mine = v.impressions + SHARE_CLICK_WEIGHT * v.clicks + PRIOR_SHARE_EACH;
    double all = v.total_impressions + SHARE_CLICK_WEIGHT * v.total_clicks + PRIOR_SHARE_TOTAL;
    if (declared)
        mine += PRIOR_SHARE_DECLARED;
    all += PRIOR_SHARE_DECLARED * (double)user->interests_count;
    out[16] = (float)(log(mine / all) / 6.0);
    out[17] = (float)clamp(
        logit(smooth(v.clicks, v.impressions, user_ctr, PRIOR_CAT_CTR_WEIGHT)) / 2.0, -4.0, 4.0);
    out[18] = (float)(log1p(v.impressions) / 4.0);
}

/* The user×category features, by position in the vector. */
static const size_t category_slots[7] = {6, 7, 8, 15, 16, 17, 18};

void cascade_rank_user_prepare(const cascade_v1_UserRecord *user, struct cascade_rank_user *u)
{
    float out[CASCADE_RANK_FEATURES];
    u->user = user;
    user_features(user, out);
    u->user_part[0] = out[12];
    u->user_part[1] = out[13];
    memset(u->used, 0, sizeof u->used);
}

/* The user×category features of category into out (their positions):
 * from u's table, computed and kept there on first use. */
static void category_part(struct cascade_rank_user *u, uint32_t category, float *out)
{
    size_t mask = CASCADE_RANK_USER_CATEGORIES - 1, s = (category * 2654435761u) & mask;
    for (size_t probe = 0; probe < CASCADE_RANK_USER_CATEGORIES; probe++, s = (s + 1) & mask) {
        if (u->used[s] && u->category[s] != category)
            continue;
        if (!u->used[s]) {
            category_features(u->user, category, out);
            u->used[s] = true;
            u->category[s] = category;
            for (size_t k = 0; k < 7; k++)
                u->part[s][k] = out[category_slots[k]];
            return;
        }
        for (size_t k = 0; k < 7; k++)
            out[category_slots[k]] = u->part[s][k];
        return;
    }
    category_features(u->user, category, out); /* the table is full */
}

void cascade_features_rank_from(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                                const struct cascade_rank_item *ri, int64_t now_s, float *out)
{
    memset(out, 0, CASCADE_RANK_FEATURES * sizeof(float));
    if (cascade_rank_item_matches(ri, item)) {
        for (size_t k = 0; k < 8; k++)
            out[item_slots[k]] = ri->item[k];
    } else {
        item_static_features(item, out);
    }
    out[9] = item_age_feature(item, now_s);
    out[12] = u->user_part[0];
    out[13] = u->user_part[1];
    category_part(u, item->category, out);
    out[14] = u->user->city != 0 && u->user->city == item->city ? 1.0f : 0.0f;
}

void cascade_features_rank_for(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                               int64_t now_s, float *out)
{
    cascade_features_rank_from(u, item, NULL, now_s, out);
}

void cascade_features_rank(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                           int64_t now_s, float *out)
{
    struct cascade_rank_user u;
    cascade_rank_user_prepare(user, &u);
    cascade_features_rank_for(&u, item, now_s, out);
}

const char *cascade_features_rank_name(size_t i)
{
    return i < CASCADE_RANK_FEATURES ? feature_names[i] : "unknown";
}
