/* Ranking features shared by training (cascade-build train-rank) and serving
 * (the Rank service). Every feature is a smoothed, log- or logit-scaled value
 * of roughly unit scale, finite for empty records; docs/data.md lists them. */
#include "rank_features.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cascade/v1/records.pb.h"

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

static const char *const feature_names[CASCADE_RANK_FEATURES] = {
    "item_ctr_logit",    "item_log_impressions", "item_like_lift", "item_collect_lift",
    "item_share_lift",   "item_completion",      "user_cat_share", "user_cat_rel_top",
    "declared_interest", "item_log_age_days",    "item_is_video",  "item_log_duration",
    "user_log_activity", "user_ctr_logit",       "same_city",      "user_no_history",
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

/* Share of the item's category in the user's affinity list, and its weight
 * relative to the user's strongest category. Both 0 when absent. */
static void category_affinity(const cascade_v1_UserRecord *user, uint32_t category, double *share,
                              double *rel_top)
{
    double total = 0, top = 0, mine = 0;
    for (pb_size_t i = 0; i < user->affinities_count; i++) {
        double w = user->affinities[i].weight;
        if (!(w > 0))
            continue;
        total += w;
        if (w > top)
            top = w;
        if (user->affinities[i].category == category)
            mine += w;
    }
    *share = total > 0 ? mine / total : 0.0;
    *rel_top = top > 0 ? mine / top : 0.0;
}

static bool declared_interest(const cascade_v1_UserRecord *user, uint32_t category)
{
    for (pb_size_t i = 0; i < user->interests_count; i++)
        if (user->interests[i] == category)
            return true;
    return false;
}

static void item_features(const cascade_v1_ItemRecord *item, int64_t now_s, float *out)
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
    double age_days = 0;
    if (item->created_at_s > 0 && now_s > item->created_at_s)
        age_days = (double)(now_s - item->created_at_s) / 86400.0;
    out[9] = (float)(log1p(age_days) / 3.0);
    out[10] = video ? 1.0f : 0.0f;
    out[11] = video && item->duration_s > 0 ? (float)(log1p(item->duration_s) / 6.0) : 0.0f;
}

static void user_features(const cascade_v1_UserRecord *user, float *out)
{
    double ctr = smooth(user->clicks, user->impressions, PRIOR_CTR, PRIOR_CTR_WEIGHT);
    out[12] = (float)(log1p((double)user->interactions) / 6.0);
    out[13] = (float)clamp(logit(ctr) / 2.0, -4.0, 4.0);
    out[15] = user->affinities_count == 0 ? 1.0f : 0.0f;
}

void cascade_features_rank(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                           int64_t now_s, float *out)
{
    double share, rel_top;
    memset(out, 0, CASCADE_RANK_FEATURES * sizeof(float));
    item_features(item, now_s, out);
    user_features(user, out);
    category_affinity(user, item->category, &share, &rel_top);
    out[6] = (float)share;
    out[7] = (float)rel_top;
    out[8] = item->category != 0 && declared_interest(user, item->category) ? 1.0f : 0.0f;
    out[14] = user->city != 0 && user->city == item->city ? 1.0f : 0.0f;
}

const char *cascade_features_rank_name(size_t i)
{
    return i < CASCADE_RANK_FEATURES ? feature_names[i] : "unknown";
}
