/* Unit tests for common/ml/ltr_features.c: where a candidate's recall
 * signals land in the learned rankers' feature row (ltr_features.h: per
 * channel slot its normalised score and log2(2 + rank), NaN when the channel
 * did not find it; then the channel count, the recall score and the item's
 * log clicks), computed here from that definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ltr_features.h"

#define BASE CASCADE_RANK_FEATURES
#define TAIL (BASE + 2 * CASCADE_LTR_CHANNELS)

static void features(Cascade__V1__ChannelHit *hits, size_t n, float recall_score, float *x)
{
    cascade_v1_UserRecord user = cascade_v1_UserRecord_init_zero;
    cascade_v1_ItemRecord item = cascade_v1_ItemRecord_init_zero;
    Cascade__V1__ChannelHit *ptrs[8];
    Cascade__V1__Candidate cand;
    cascade__v1__candidate__init(&cand);
    item.item_id = 7;
    item.has_stats = true;
    item.stats.clicks = 3;
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &hits[i];
    cand.item_id = 7;
    cand.channels = ptrs;
    cand.n_channels = n;
    cand.recall_score = recall_score;
    cascade_ltr_features(&user, &item, &cand, 1700000000, x);
}

static Cascade__V1__ChannelHit hit(const char *channel, float norm, uint32_t rank)
{
    Cascade__V1__ChannelHit h;
    cascade__v1__channel_hit__init(&h);
    h.channel = (char *)channel;
    h.norm_score = norm;
    h.rank = rank;
    return h;
}

/* Each channel's name (ltr_features.h names the slots), alone, fills its
 * own slot and no other: the name → slot lookup inverts the slot → name
 * table for every channel, whatever its first letter shares with others. */
static void test_each_channel_its_slot(void **state)
{
    (void)state;
    for (size_t c = 0; c < CASCADE_LTR_CHANNELS; c++) {
        char copy[32];
        float x[CASCADE_LTR_FEATURES];
        /* by content, not by pointer */
        snprintf(copy, sizeof copy, "%s", cascade_ltr_channel_name(c));
        Cascade__V1__ChannelHit h = hit(copy, 0.25f + (float)c, (uint32_t)c + 1);
        features(&h, 1, 0.5f, x);
        for (size_t s = 0; s < CASCADE_LTR_CHANNELS; s++) {
            if (s == c) {
                assert_true(x[BASE + 2 * s] == 0.25f + (float)c);
                assert_true(x[BASE + 2 * s + 1] == (float)log2(2.0 + (double)(c + 1)));
            } else if (!isnan(x[BASE + 2 * s]) || !isnan(x[BASE + 2 * s + 1])) {
                fail_msg("channel %s also filled slot %zu", copy, s);
            }
        }
        assert_true(x[TAIL] == 1.0f);
        assert_true(x[TAIL + 1] == 0.5f);
        assert_true(x[TAIL + 2] == (float)log1p(3.0));
    }
}

/* Names that only share a first letter or a prefix with a channel, and an
 * empty one, fill no slot but count as hits; the first hit of a channel
 * wins over a later one. */
static void test_unknown_names_and_first_hit(void **state)
{
    (void)state;
    float x[CASCADE_LTR_FEATURES];
    Cascade__V1__ChannelHit h[6] = {
        hit("itemcf2", 1, 1), hit("i", 2, 2),        hit("", 3, 3),
        hit("hot", 0.75f, 4), hit("hot", 0.125f, 9), hit("hotter", 5, 5),
    };
    features(h, 6, 1.5f, x);
    for (size_t s = 0; s < CASCADE_LTR_CHANNELS; s++) {
        if (s == 5) { /* hot */
            assert_true(x[BASE + 2 * s] == 0.75f);
            assert_true(x[BASE + 2 * s + 1] == (float)log2(6.0));
        } else {
            assert_true(isnan(x[BASE + 2 * s]) && isnan(x[BASE + 2 * s + 1]));
        }
    }
    assert_true(x[TAIL] == 6.0f);
    assert_true(x[TAIL + 1] == 1.5f);
}

/* The item part prepared once (rank_features.h) and the channel ranks'
 * log2(2 + rank) read from a table give the floats the plain computation
 * gives: the log of every rank up to past the table's end against log2 here,
 * and a candidate's whole row with and without the prepared part, also when
 * the record's statistics moved on after it was prepared. */
static void test_item_part_and_rank_logs(void **state)
{
    (void)state;
    cascade_v1_UserRecord user = cascade_v1_UserRecord_init_zero;
    struct cascade_rank_user u;
    cascade_rank_user_prepare(&user, &u);
    for (uint32_t rank = 0; rank < 3000; rank++) {
        Cascade__V1__ChannelHit h = hit("swing", 0.5f, rank);
        float x[CASCADE_LTR_FEATURES];
        features(&h, 1, 0, x);
        float want = (float)log2(2.0 + rank);
        assert_memory_equal(&x[BASE + 2 * 1 + 1], &want, sizeof want);
    }
    Cascade__V1__ChannelHit hits[3] = {hit("itemcf", 0.9f, 3), hit("hot", 0.2f, 1023),
                                       hit("new", 1.0f, 1024)};
    Cascade__V1__ChannelHit *ptrs[3] = {&hits[0], &hits[1], &hits[2]};
    Cascade__V1__Candidate cand;
    cascade__v1__candidate__init(&cand);
    cand.channels = ptrs;
    cand.n_channels = 3;
    cand.recall_score = 0.25f;
    for (uint32_t clicks = 0; clicks < 5000; clicks += 7) {
        cascade_v1_ItemRecord item = cascade_v1_ItemRecord_init_zero, now;
        struct cascade_rank_item ri;
        float want[CASCADE_LTR_FEATURES], got[CASCADE_LTR_FEATURES];
        item.item_id = cand.item_id = 100 + clicks;
        item.has_stats = true;
        item.stats.clicks = clicks;
        item.stats.impressions = 3 * clicks + 5;
        item.media_type = 2;
        item.duration_s = 30.0f;
        cascade_rank_item_prepare(&item, &ri);
        cascade_ltr_features(&user, &item, &cand, 1700000000, want);
        cascade_ltr_features_from(&u, &item, &ri, &cand, 1700000000, got);
        assert_memory_equal(got, want, sizeof want);
        assert_true(want[TAIL + 2] == (float)log1p((double)clicks));
        now = item;
        now.stats.clicks += 2; /* the online counters' change */
        cascade_ltr_features(&user, &now, &cand, 1700000000, want);
        cascade_ltr_features_from(&u, &now, &ri, &cand, 1700000000, got);
        assert_memory_equal(got, want, sizeof want);
        assert_true(got[TAIL + 2] == (float)log1p((double)clicks + 2));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_channel_its_slot),
        cmocka_unit_test(test_item_part_and_rank_logs),
        cmocka_unit_test(test_unknown_names_and_first_hit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
