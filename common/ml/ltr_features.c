/* Learning-to-rank features (ltr_features.h): the rank features followed by
 * the candidate's recall signals. */
#include "ltr_features.h"

#include "error.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char *const channels[CASCADE_LTR_CHANNELS] = {
    "itemcf",
    "swing",
    "usercf",
    "two_tower",
    "ease",
    "hot",
    "new",
    "geo",
    "city",
    "follow_author",
    "interacted_author",
    "similar_author",
    "cache",
    "interest",
    "demo_hot",
};

#define CHANNEL_BASE CASCADE_RANK_FEATURES
#define TAIL_BASE (CHANNEL_BASE + 2 * CASCADE_LTR_CHANNELS)

const char *cascade_ltr_channel_name(size_t i)
{
    return i < CASCADE_LTR_CHANNELS ? channels[i] : "unknown";
}

static int channel_slot(const char *name)
{
    /* The first letters tell most names apart: strcmp only on a match
     * (this runs for every hit of every candidate). */
    for (int i = 0; name && i < CASCADE_LTR_CHANNELS; i++)
        if (name[0] == channels[i][0] && strcmp(name, channels[i]) == 0)
            return i;
    return -1;
}

void cascade_ltr_features(const cascade_v1_UserRecord *user, const cascade_v1_ItemRecord *item,
                          const Cascade__V1__Candidate *cand, int64_t now_s, float *out)
{
    struct cascade_rank_user u;
    cascade_rank_user_prepare(user, &u);
    cascade_ltr_features_for(&u, item, cand, now_s, out);
}

/* log2(2 + rank) of the channel ranks below LOG_RANK_TABLE, filled once per
 * process by the same expression (so the floats are the same): every hit of
 * every candidate reads one. */
#define LOG_RANK_TABLE 1024
static float log_rank_table[LOG_RANK_TABLE];
static pthread_once_t log_rank_once = PTHREAD_ONCE_INIT;

static float log_rank_of(uint32_t rank)
{
    return (float)log2(2.0 + rank);
}

static void log_rank_table_fill(void)
{
    for (uint32_t r = 0; r < LOG_RANK_TABLE; r++)
        log_rank_table[r] = log_rank_of(r);
}

void cascade_ltr_features_for(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                              const Cascade__V1__Candidate *cand, int64_t now_s, float *out)
{
    cascade_ltr_features_from(u, item, NULL, cand, now_s, out);
}

void cascade_ltr_features_from(struct cascade_rank_user *u, const cascade_v1_ItemRecord *item,
                               const struct cascade_rank_item *ri,
                               const Cascade__V1__Candidate *cand, int64_t now_s, float *out)
{
    if (!cascade_rank_item_matches(ri, item))
        ri = NULL;
    pthread_once(&log_rank_once, log_rank_table_fill);
    cascade_features_rank_from(u, item, ri, now_s, out);
    for (size_t i = CHANNEL_BASE; i < TAIL_BASE; i++)
        out[i] = NAN;
    size_t hits = 0;
    for (size_t h = 0; cand && h < cand->n_channels; h++) {
        const Cascade__V1__ChannelHit *hit = cand->channels[h];
        if (!hit)
            continue;
        hits++;
        int s = channel_slot(hit->channel);
        if (s < 0 || !isnan(out[CHANNEL_BASE + 2 * s])) /* first hit of a channel wins */
            continue;
        out[CHANNEL_BASE + 2 * s] = isfinite(hit->norm_score) ? hit->norm_score : 0.0f;
        out[CHANNEL_BASE + 2 * s + 1] =
            hit->rank < LOG_RANK_TABLE ? log_rank_table[hit->rank] : log_rank_of(hit->rank);
    }
    out[TAIL_BASE] = (float)hits;
    out[TAIL_BASE + 1] = cand && isfinite(cand->recall_score) ? cand->recall_score : 0.0f;
    out[TAIL_BASE + 2] = ri ? ri->log_clicks : (float)log1p((double)item->stats.clicks);
}

static char channel_feature_names[2 * CASCADE_LTR_CHANNELS][48];
static pthread_once_t channel_feature_names_once = PTHREAD_ONCE_INIT;

static void channel_feature_names_build(void)
{
    for (size_t k = 0; k < 2 * CASCADE_LTR_CHANNELS; k++)
        snprintf(channel_feature_names[k], sizeof channel_feature_names[k], "%s_%s",
                 channels[k / 2], k % 2 ? "log_rank" : "norm_score");
}

const char *cascade_ltr_feature_name(size_t i)
{
    static const char *const tail[3] = {"channel_count", "recall_score", "item_log_clicks"};
    if (i < CHANNEL_BASE)
        return cascade_features_rank_name(i);
    if (i < TAIL_BASE) {
        pthread_once(&channel_feature_names_once, channel_feature_names_build);
        return channel_feature_names[i - CHANNEL_BASE];
    }
    return i < TAIL_BASE + 3 ? tail[i - TAIL_BASE] : "unknown";
}

int cascade_ltr_model_load(const char *path, cascade_gbdt **out, char *err, size_t errlen)
{
    *out = cascade_gbdt_load(path, err, errlen);
    if (!*out)
        return CASCADE_EIO;
    const char *spec = cascade_gbdt_meta(*out, "features");
    if (!spec || strcmp(spec, CASCADE_LTR_SPEC) != 0 ||
        cascade_gbdt_n_features(*out) != CASCADE_LTR_FEATURES) {
        snprintf(err, errlen,
                 "%s: model reads features \"%.32s\" (%zu inputs), this build has %s (%d)", path,
                 spec ? spec : "?", cascade_gbdt_n_features(*out), CASCADE_LTR_SPEC,
                 CASCADE_LTR_FEATURES);
        cascade_gbdt_destroy(*out);
        *out = NULL;
        return CASCADE_EFORMAT;
    }
    return 0;
}
