/* Unit tests for common/ml/rank_features.c: every rank feature is finite on empty
 * records, moves in the right direction with its input, and has a unique name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "cascade/v1/records.pb.h"
#include "rank_features.h"

#define NOW 1700000000

static size_t feat(const char *name)
{
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        if (strcmp(cascade_features_rank_name(i), name) == 0)
            return i;
    fail_msg("no feature named %s", name);
    return 0;
}

static void compute(const cascade_v1_UserRecord *u, const cascade_v1_ItemRecord *it, float *out)
{
    cascade_features_rank(u, it, NOW, out);
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        assert_true(isfinite(out[i]) && fabsf(out[i]) < 10);
}

static void test_names_are_unique(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++) {
        const char *a = cascade_features_rank_name(i);
        assert_non_null(a);
        assert_string_not_equal(a, "unknown");
        for (size_t j = i + 1; j < CASCADE_RANK_FEATURES; j++)
            assert_string_not_equal(a, cascade_features_rank_name(j));
    }
    assert_string_equal(cascade_features_rank_name(CASCADE_RANK_FEATURES), "unknown");
}

static void test_empty_records_are_finite(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float x[CASCADE_RANK_FEATURES];
    compute(&u, &it, x);
    assert_true(x[feat("user_no_history")] == 1.0f);
    assert_true(x[feat("same_city")] == 0.0f);         /* city 0 is unknown, not a match */
    assert_true(x[feat("item_log_age_days")] == 0.0f); /* created_at 0 = unknown */
    assert_true(x[feat("user_cat_share")] == 0.0f);
    /* A new item looks like the prior (CTR 0.1), not like a zero-CTR item. */
    assert_true(fabsf(x[feat("item_ctr_logit")] - (float)(log(0.1 / 0.9) / 2)) < 1e-5);
    assert_true(fabsf(x[feat("item_like_lift")]) < 1e-6);
}

static void test_item_statistics_move_features(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord good = cascade_v1_ItemRecord_init_zero, bad = good;
    float xg[CASCADE_RANK_FEATURES], xb[CASCADE_RANK_FEATURES];
    good.has_stats = bad.has_stats = true;
    good.stats.impressions = bad.stats.impressions = 1000;
    good.stats.clicks = 300;
    bad.stats.clicks = 10;
    good.stats.likes = 150;
    bad.stats.likes = 1;
    compute(&u, &good, xg);
    compute(&u, &bad, xb);
    assert_true(xg[feat("item_ctr_logit")] > xb[feat("item_ctr_logit")]);
    assert_true(xg[feat("item_like_lift")] > 0);
    assert_true(xg[feat("item_log_impressions")] == xb[feat("item_log_impressions")]);
    assert_true(fabsf(xg[feat("item_log_impressions")] - (float)(log1p(1000.0) / 10)) < 1e-5);
}

static void test_category_affinity_and_interests(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float x[CASCADE_RANK_FEATURES];
    u.affinities_count = 2;
    u.affinities[0] = (cascade_v1_CategoryAffinity){3, 6.0f, 0, 0};
    u.affinities[1] = (cascade_v1_CategoryAffinity){5, 2.0f, 0, 0};
    u.interests_count = 1;
    u.interests[0] = 5;
    it.category = 3;
    compute(&u, &it, x);
    assert_true(fabsf(x[feat("user_cat_share")] - 0.75f) < 1e-6);
    assert_true(fabsf(x[feat("user_cat_rel_top")] - 1.0f) < 1e-6);
    assert_true(x[feat("declared_interest")] == 0.0f);
    assert_true(x[feat("user_no_history")] == 0.0f);
    it.category = 5;
    compute(&u, &it, x);
    assert_true(fabsf(x[feat("user_cat_share")] - 0.25f) < 1e-6);
    assert_true(fabsf(x[feat("user_cat_rel_top")] - 1.0f / 3) < 1e-6);
    assert_true(x[feat("declared_interest")] == 1.0f);
    it.category = 9;
    compute(&u, &it, x);
    assert_true(x[feat("user_cat_share")] == 0.0f && x[feat("declared_interest")] == 0.0f);
}

/* The exposure features: a category the user is shown (and clicks) more
 * gets a larger share; its click rate is shrunk towards the user's own. */
static void test_category_exposure(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float x3[CASCADE_RANK_FEATURES], x5[CASCADE_RANK_FEATURES], x9[CASCADE_RANK_FEATURES];
    u.impressions = 40;
    u.clicks = 4;
    u.affinities_count = 2;
    /* Category 3: 30 impressions, 4 clicks; category 5: 10 impressions, 0 clicks. */
    u.affinities[0] = (cascade_v1_CategoryAffinity){3, 4.0f, 30.0f, 4.0f};
    u.affinities[1] = (cascade_v1_CategoryAffinity){5, 0.0f, 10.0f, 0.0f};
    it.category = 3;
    compute(&u, &it, x3);
    it.category = 5;
    compute(&u, &it, x5);
    it.category = 9;
    compute(&u, &it, x9);
    size_t share = feat("user_cat_imp_share"), ctr = feat("user_cat_ctr_logit");
    size_t imps = feat("user_cat_log_impressions");
    /* (30 + 2·4 + 0.3) / (40 + 2·4 + 6), log, /6 */
    assert_true(fabsf(x3[share] - (float)(log(38.3 / 54.0) / 6)) < 1e-5);
    assert_true(x3[share] > x5[share] && x5[share] > x9[share]);
    assert_true(x3[ctr] > x5[ctr]);
    /* Never shown: the category's click rate is the user's own. */
    double user_ctr = (4 + 0.1 * 20) / (40 + 20.0);
    assert_true(fabsf(x9[ctr] - (float)(log(user_ctr / (1 - user_ctr)) / 2)) < 1e-5);
    assert_true(fabsf(x3[imps] - (float)(log1p(30.0) / 4)) < 1e-5 && x9[imps] == 0.0f);
    /* A declared interest adds 16 pseudo-counts to its category (and to the
     * total): category 5 now (10 + 0.3 + 16) / (48 + 6 + 16), 3 drops to
     * 38.3 / 70. */
    u.interests_count = 1;
    u.interests[0] = 5;
    it.category = 5;
    compute(&u, &it, x5);
    it.category = 3;
    compute(&u, &it, x3);
    assert_true(fabsf(x5[share] - (float)(log(26.3 / 70.0) / 6)) < 1e-5);
    assert_true(fabsf(x3[share] - (float)(log(38.3 / 70.0) / 6)) < 1e-5);
    u.interests_count = 0;
    /* Impressions alone are not history: the user has clicked nothing yet. */
    u.affinities[0].weight = 0;
    compute(&u, &it, x9);
    assert_true(x9[feat("user_no_history")] == 1.0f);
}

static void test_time_media_and_place(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float x[CASCADE_RANK_FEATURES];
    it.created_at_s = NOW - 10 * 86400;
    it.media_type = 2;
    it.duration_s = 60;
    it.city = 4;
    u.city = 4;
    compute(&u, &it, x);
    assert_true(fabsf(x[feat("item_log_age_days")] - (float)(log1p(10.0) / 3)) < 1e-5);
    assert_true(x[feat("item_is_video")] == 1.0f);
    assert_true(x[feat("item_log_duration")] > 0);
    assert_true(x[feat("same_city")] == 1.0f);
    /* Created after "now" (clock skew): age 0, not negative. */
    it.created_at_s = NOW + 3600;
    it.media_type = 1;
    u.city = 5;
    compute(&u, &it, x);
    assert_true(x[feat("item_log_age_days")] == 0.0f);
    assert_true(x[feat("item_is_video")] == 0.0f && x[feat("item_log_duration")] == 0.0f);
    assert_true(x[feat("same_city")] == 0.0f);
}

static void test_user_statistics(void **state)
{
    (void)state;
    cascade_v1_UserRecord clicky = cascade_v1_UserRecord_init_zero, idle = clicky;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float xc[CASCADE_RANK_FEATURES], xi[CASCADE_RANK_FEATURES];
    clicky.impressions = idle.impressions = 500;
    clicky.clicks = 200;
    idle.clicks = 5;
    clicky.interactions = 400;
    compute(&clicky, &it, xc);
    compute(&idle, &it, xi);
    assert_true(xc[feat("user_ctr_logit")] > xi[feat("user_ctr_logit")]);
    assert_true(xc[feat("user_log_activity")] > xi[feat("user_log_activity")]);
}

/* Every feature against a known answer, computed by hand from the formulas
 * in docs/data.md ("Features" table; python, not this code) for one video
 * and one user with history in three categories (one with a negative
 * weight, which counts for exposure but not for affinity). */
static void test_known_answers(void **state)
{
    (void)state;
    static const double want[CASCADE_RANK_FEATURES] = {
        -0.9784196, /* item_ctr_logit: logit(52/420)/2 */
        0.5993961,  /* item_log_impressions: ln(401)/10 */
        0.1541507,  /* item_like_lift: ln((14/60)/0.2) */
        -0.1823216, /* item_collect_lift: ln((5/60)/0.1) */
        -0.6931472, /* item_share_lift: ln((1.5/60)/0.05) */
        0.7142857,  /* item_completion: (1350/60 + 2.5)/(30 + 5) */
        0.25,       /* user_cat_share: 2/(2 + 6) */
        0.3333333,  /* user_cat_rel_top: 2/6 */
        1.0,        /* declared_interest */
        0.7992984,  /* item_log_age_days: ln(11)/3 */
        1.0,        /* item_is_video */
        0.6851456,  /* item_log_duration: ln(61)/6 */
        0.6553043,  /* user_log_activity: ln(51)/6 */
        -0.885353,  /* user_ctr_logit: logit(32/220)/2 */
        1.0,        /* same_city */
        0.0,        /* user_no_history */
        -0.176119,  /* user_cat_imp_share: ln((40 + 16 + 0.3 + 16)/(150 + 36 + 6 + 16))/6 */
        -0.7123066, /* user_cat_ctr_logit: logit((8 + 5·32/220)/(40 + 5))/2 */
        0.928393,   /* user_cat_log_impressions: ln(41)/4 */
    };
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    float x[CASCADE_RANK_FEATURES];
    it.category = 3;
    it.created_at_s = NOW - 10 * 86400;
    it.media_type = 2;
    it.duration_s = 60;
    it.city = 4;
    it.has_stats = true;
    it.stats = (cascade_v1_ItemStats){.impressions = 400,
                                      .clicks = 50,
                                      .likes = 12,
                                      .collects = 4,
                                      .shares = 1,
                                      .plays = 30,
                                      .play_seconds = 1350};
    u.city = 4;
    u.impressions = 200;
    u.clicks = 30;
    u.interactions = 50;
    u.interests_count = 1;
    u.interests[0] = 3;
    u.affinities_count = 3;
    u.affinities[0] = (cascade_v1_CategoryAffinity){5, 6.0f, 100, 10};
    u.affinities[1] = (cascade_v1_CategoryAffinity){3, 2.0f, 40, 8};
    u.affinities[2] = (cascade_v1_CategoryAffinity){7, -1.0f, 10, 0};
    compute(&u, &it, x);
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        if (fabs(x[i] - want[i]) > 1e-5)
            fail_msg("%s = %.7f, want %.7f", cascade_features_rank_name(i), x[i], want[i]);
}

/* One prepared user scoring many items (a request's candidates, in any
 * order, categories repeating, more distinct categories than its table
 * holds) gives each item the floats a fresh computation gives it. */
static void test_prepared_user_matches_fresh(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    u.city = 4;
    u.impressions = 300;
    u.clicks = 41;
    u.interactions = 77;
    u.interests_count = 3;
    u.interests[0] = 3;
    u.interests[1] = 70;
    u.interests[2] = 129;
    u.affinities_count = 16;
    for (pb_size_t i = 0; i < 16; i++)
        u.affinities[i] = (cascade_v1_CategoryAffinity){(uint32_t)(i * 9 % 150), (float)i - 3.0f,
                                                        (float)(10 * i), (float)i};
    struct cascade_rank_user prepared;
    cascade_rank_user_prepare(&u, &prepared);
    uint64_t seed = 5;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
        /* 0..149: twice the table's categories, 0 (none) included. */
        it.category = (uint32_t)((seed >> 33) % 150);
        it.city = (uint32_t)((seed >> 20) % 6);
        it.created_at_s = NOW - (int64_t)((seed >> 40) % 5000000);
        it.media_type = 2;
        it.duration_s = (float)((seed >> 12) % 300);
        it.has_stats = true;
        it.stats.impressions = (uint32_t)((seed >> 24) % 1000);
        it.stats.clicks = it.stats.impressions / 7;
        float fresh[CASCADE_RANK_FEATURES], kept[CASCADE_RANK_FEATURES];
        cascade_features_rank(&u, &it, NOW, fresh);
        cascade_features_rank_for(&prepared, &it, NOW, kept);
        assert_memory_equal(kept, fresh, sizeof fresh);
    }
}

/* A random item record: stats of every size (zero included), videos and
 * notes, durations, ages. */
static cascade_v1_ItemRecord random_item(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t r = *seed;
    cascade_v1_ItemRecord it = cascade_v1_ItemRecord_init_zero;
    it.item_id = r >> 44;
    it.category = (uint32_t)((r >> 33) % 150);
    it.city = (uint32_t)((r >> 20) % 6);
    it.created_at_s = NOW - (int64_t)((r >> 40) % 5000000);
    it.media_type = (uint32_t)(r >> 62);
    it.duration_s = (float)((r >> 12) % 300) / 3.0f;
    it.has_stats = (r & 7) != 0;
    if (it.has_stats) {
        it.stats.impressions = (uint32_t)((r >> 24) % 100000) >> ((r >> 5) % 16);
        it.stats.clicks = it.stats.impressions / (1 + (uint32_t)((r >> 8) % 9));
        it.stats.likes = it.stats.clicks / 3;
        it.stats.collects = it.stats.clicks / 5;
        it.stats.shares = (uint32_t)((r >> 3) % 4);
        it.stats.plays = it.stats.clicks;
        it.stats.play_seconds = (float)it.stats.plays * it.duration_s * 0.6f;
    }
    return it;
}

/* The item part prepared once (as the item caches keep it beside the record)
 * gives the floats a fresh computation gives, for the record it was prepared
 * from; once the record's statistics, media type or duration differ (the
 * online counters' change is added after the cache), or when it is not
 * prepared (zeroed) or absent, the features are those of the record scored,
 * not of the one prepared from. */
static void test_item_part_prepared_once(void **state)
{
    (void)state;
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    u.city = 3;
    u.impressions = 120;
    u.clicks = 9;
    u.affinities_count = 2;
    u.affinities[0] = (cascade_v1_CategoryAffinity){4, 2.0f, 30.0f, 3.0f};
    u.affinities[1] = (cascade_v1_CategoryAffinity){9, 1.0f, 10.0f, 1.0f};
    struct cascade_rank_user prepared;
    cascade_rank_user_prepare(&u, &prepared);
    struct cascade_rank_item zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    uint64_t seed = 11;
    size_t stale = 0;
    for (int i = 0; i < 5000; i++) {
        cascade_v1_ItemRecord it = random_item(&seed), now = it;
        struct cascade_rank_item ri;
        float fresh[CASCADE_RANK_FEATURES], got[CASCADE_RANK_FEATURES];
        cascade_rank_item_prepare(&it, &ri);
        assert_true(cascade_rank_item_matches(&ri, &it));
        cascade_features_rank(&u, &it, NOW, fresh);
        cascade_features_rank_from(&prepared, &it, &ri, NOW, got);
        assert_memory_equal(got, fresh, sizeof fresh);
        /* The record scored moved on from the one prepared from. */
        switch (i % 5) {
        case 0:
            now.stats.clicks += 1;
            break;
        case 1:
            now.stats.impressions += 7;
            break;
        case 2:
            now.stats.play_seconds += 1.5f;
            break;
        case 3:
            now.media_type = now.media_type == 2 ? 1 : 2;
            break;
        default:
            now.duration_s += 4.0f;
            break;
        }
        stale += !cascade_rank_item_matches(&ri, &now);
        cascade_features_rank(&u, &now, NOW, fresh);
        cascade_features_rank_from(&prepared, &now, &ri, NOW, got);
        assert_memory_equal(got, fresh, sizeof fresh);
        cascade_features_rank_from(&prepared, &now, &zeroed, NOW, got);
        assert_memory_equal(got, fresh, sizeof fresh);
        cascade_features_rank_from(&prepared, &now, NULL, NOW, got);
        assert_memory_equal(got, fresh, sizeof fresh);
    }
    assert_int_equal(stale, 5000);
    assert_false(cascade_rank_item_matches(&zeroed, &(cascade_v1_ItemRecord){0}));
    assert_false(cascade_rank_item_matches(NULL, &(cascade_v1_ItemRecord){0}));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_item_part_prepared_once),
        cmocka_unit_test(test_prepared_user_matches_fresh),
        cmocka_unit_test(test_names_are_unique),
        cmocka_unit_test(test_empty_records_are_finite),
        cmocka_unit_test(test_item_statistics_move_features),
        cmocka_unit_test(test_category_affinity_and_interests),
        cmocka_unit_test(test_category_exposure),
        cmocka_unit_test(test_time_media_and_place),
        cmocka_unit_test(test_user_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
