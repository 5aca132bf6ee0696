/* Unit tests of the recall channel merge: quotas, per-channel max
 * normalisation, weighted sums, dedupe with every hit kept as provenance,
 * ordering and the cap, and the per-channel contribution counts of the debug
 * trace, on a hand-computed example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "merge.h"

/* Build a channel's output list: one candidate per (id, score) with a hit
 * naming the channel, in the given order. */
static Cascade__V1__Candidate **make_list(cascade_arena *a, const char *channel,
                                          const uint64_t *ids, const float *scores, size_t n)
{
    Cascade__V1__Candidate **list = cascade_arena_calloc(a, n + 1, sizeof *list);
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
        Cascade__V1__ChannelHit *h = cascade_arena_alloc(a, sizeof *h);
        Cascade__V1__ChannelHit **hits = cascade_arena_alloc(a, sizeof *hits);
        cascade__v1__candidate__init(c);
        cascade__v1__channel_hit__init(h);
        h->channel = (char *)channel;
        h->score = scores[i];
        h->rank = (uint32_t)i;
        hits[0] = h;
        c->item_id = ids[i];
        c->channels = hits;
        c->n_channels = 1;
        list[i] = c;
    }
    return list;
}

static const Cascade__V1__ChannelHit *hit_of(const Cascade__V1__Candidate *c, const char *channel)
{
    for (size_t i = 0; i < c->n_channels; i++)
        if (strcmp(c->channels[i]->channel, channel) == 0)
            return c->channels[i];
    return NULL;
}

/* itemcf (weight 2, quota 3): 10:4, 20:2, 30:1, 40:0.5 -> 40 is over quota;
 *   norms 1, .5, .25 -> contributions 2, 1, .5
 * hot (weight 1, quota 10): 20:100, 50:50, 10:25, 20:10 (repeat, ignored);
 *   norms 1, .5, .25 -> contributions 1, .5, .25
 * merged: 10 = 2.25, 20 = 2.0, 30 = .5, 50 = .5 (tie: lower id first). */
static void test_hand_example(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    const uint64_t cf_ids[] = {10, 20, 30, 40};
    const float cf_scores[] = {4.0f, 2.0f, 1.0f, 0.5f};
    const uint64_t hot_ids[] = {20, 50, 10, 20};
    const float hot_scores[] = {100.0f, 50.0f, 25.0f, 10.0f};
    struct cascade_merge_input in[2] = {
        {"itemcf", 2.0, 3, make_list(a, "itemcf", cf_ids, cf_scores, 4), 4},
        {"hot", 1.0, 10, make_list(a, "hot", hot_ids, hot_scores, 4), 4},
    };
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(in, 2, 100, a, &out, &n), 0);
    assert_int_equal(n, 4);
    const uint64_t want_ids[] = {10, 20, 30, 50};
    const float want_scores[] = {2.25f, 2.0f, 0.5f, 0.5f};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(out[i]->item_id, want_ids[i]);
        assert_float_equal(out[i]->recall_score, want_scores[i], 1e-6);
    }
    /* Provenance: item 10 was found by both, with raw scores and ranks. */
    assert_int_equal(out[0]->n_channels, 2);
    assert_float_equal(hit_of(out[0], "itemcf")->score, 4.0f, 1e-6);
    assert_int_equal(hit_of(out[0], "itemcf")->rank, 0);
    assert_float_equal(hit_of(out[0], "hot")->score, 25.0f, 1e-6);
    assert_int_equal(hit_of(out[0], "hot")->rank, 2);
    /* Item 20 repeated in hot: one hot hit only, the first (best) one. */
    assert_int_equal(out[1]->n_channels, 2);
    assert_float_equal(hit_of(out[1], "hot")->score, 100.0f, 1e-6);
    assert_int_equal(out[2]->n_channels, 1);
    assert_non_null(hit_of(out[2], "itemcf"));
    assert_int_equal(out[3]->n_channels, 1);
    assert_non_null(hit_of(out[3], "hot"));
    cascade_arena_destroy(a);
}

/* The contribution counts of the trace on the hand example: itemcf returned 4
 * and keeps 3 (40 over quota), hot returned 4 and keeps 3 (its repeat of 20
 * is folded in); with the merged list capped at 2 (10 and 20), both keep 2;
 * a final list of {20, 50} holds 1 of itemcf and 2 of hot. */
static void test_contribution_counts(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    const uint64_t cf_ids[] = {10, 20, 30, 40};
    const float cf_scores[] = {4.0f, 2.0f, 1.0f, 0.5f};
    const uint64_t hot_ids[] = {20, 50, 10, 20};
    const float hot_scores[] = {100.0f, 50.0f, 25.0f, 10.0f};
    struct cascade_merge_input in[2] = {
        {"itemcf", 2.0, 3, make_list(a, "itemcf", cf_ids, cf_scores, 4), 4},
        {"hot", 1.0, 10, make_list(a, "hot", hot_ids, hot_scores, 4), 4},
    };
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(in, 2, 100, a, &out, &n), 0);
    assert_int_equal(cascade_merge_count_channel(out, n, "itemcf"), 3);
    assert_int_equal(cascade_merge_count_channel(out, n, "hot"), 3);
    assert_int_equal(cascade_merge_count_channel(out, n, "geo"), 0);
    assert_int_equal(cascade_merge_channels(in, 2, 2, a, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cascade_merge_count_channel(out, n, "itemcf"), 2);
    assert_int_equal(cascade_merge_count_channel(out, n, "hot"), 2);
    /* A "final list": 20 (both channels) and 50 (hot only). */
    assert_int_equal(cascade_merge_channels(in, 2, 100, a, &out, &n), 0);
    Cascade__V1__Candidate *final[2] = {out[1], out[3]};
    assert_int_equal(final[0]->item_id, 20);
    assert_int_equal(final[1]->item_id, 50);
    assert_int_equal(cascade_merge_count_channel(final, 2, "itemcf"), 1);
    assert_int_equal(cascade_merge_count_channel(final, 2, "hot"), 2);
    assert_null(cascade_merge_find_hit(final[1], "itemcf"));
    assert_int_equal(cascade_merge_find_hit(final[1], "hot")->rank, 1);
    /* All channels in one pass agree, whether the names passed are the
     * merge's own strings (pointer match) or equal copies (name match), and
     * a candidate with two hits of one channel counts once. */
    size_t counts[3];
    char hot_copy[] = "hot";
    cascade_merge_count_channels(out, n, (const char *[]){in[0].channel, in[1].channel, "geo"}, 3,
                                 counts);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 0);
    cascade_merge_count_channels(out, n, (const char *[]){hot_copy}, 1, counts);
    assert_int_equal(counts[0], 3);
    Cascade__V1__ChannelHit *three[3] = {final[0]->channels[0], final[0]->channels[1],
                                         final[0]->channels[1]};
    assert_int_equal(final[0]->n_channels, 2);
    final[0]->channels = three;
    final[0]->n_channels = 3;
    Cascade__V1__Candidate *with_gap[3] = {final[0], NULL, final[1]};
    cascade_merge_count_channels(with_gap, 3, (const char *[]){in[1].channel, in[0].channel}, 2,
                                 counts);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 1);
    cascade_arena_destroy(a);
}

static void test_cap_keeps_best(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    const uint64_t ids[] = {1, 2, 3, 4, 5};
    const float scores[] = {1.0f, 5.0f, 3.0f, 4.0f, 2.0f};
    struct cascade_merge_input in = {"x", 1.0, 100, make_list(a, "x", ids, scores, 5), 5};
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(&in, 1, 2, a, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0]->item_id, 2);
    assert_int_equal(out[1]->item_id, 4);
    assert_float_equal(out[1]->recall_score, 0.8f, 1e-6);
    cascade_arena_destroy(a);
}

/* A channel whose best score is <= 0 counts every item fully; negative
 * scores in a positive channel count as 0. A weight-0 channel adds
 * provenance but no score. */
static void test_nonpositive_scores_and_zero_weight(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    const uint64_t neg_ids[] = {7, 8};
    const float neg_scores[] = {-1.0f, -2.0f};
    const uint64_t mix_ids[] = {8, 9};
    const float mix_scores[] = {2.0f, -3.0f};
    const uint64_t zero_ids[] = {9};
    const float zero_scores[] = {10.0f};
    struct cascade_merge_input in[3] = {
        {"neg", 1.0, 10, make_list(a, "neg", neg_ids, neg_scores, 2), 2},
        {"mix", 1.0, 10, make_list(a, "mix", mix_ids, mix_scores, 2), 2},
        {"zero", 0.0, 10, make_list(a, "zero", zero_ids, zero_scores, 1), 1},
    };
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(in, 3, 100, a, &out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0]->item_id, 8); /* 1 (neg) + 1 (mix) */
    assert_float_equal(out[0]->recall_score, 2.0f, 1e-6);
    assert_int_equal(out[1]->item_id, 7);
    assert_float_equal(out[1]->recall_score, 1.0f, 1e-6);
    assert_int_equal(out[2]->item_id, 9); /* 0 (mix, negative) + 0 (weight 0) */
    assert_float_equal(out[2]->recall_score, 0.0f, 1e-6);
    assert_int_equal(out[2]->n_channels, 2);
    cascade_arena_destroy(a);
}

static void test_channel_score_prefers_named_hit(void **state)
{
    (void)state;
    Cascade__V1__ChannelHit h1 = CASCADE__V1__CHANNEL_HIT__INIT,
                            h2 = CASCADE__V1__CHANNEL_HIT__INIT;
    Cascade__V1__ChannelHit *hits[2] = {&h1, &h2};
    Cascade__V1__Candidate c = CASCADE__V1__CANDIDATE__INIT;
    h1.channel = "hot";
    h1.score = 1.0f;
    h2.channel = "itemcf";
    h2.score = 2.0f;
    c.channels = hits;
    c.n_channels = 2;
    c.recall_score = 9.0f;
    assert_float_equal(cascade_merge_channel_score(&c, "itemcf"), 2.0f, 0);
    assert_float_equal(cascade_merge_channel_score(&c, "other"), 1.0f, 0);
    c.n_channels = 0;
    assert_float_equal(cascade_merge_channel_score(&c, "itemcf"), 9.0f, 0);
}

static void test_empty_inputs(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate **out;
    size_t n = 99;
    assert_int_equal(cascade_merge_channels(NULL, 0, 10, a, &out, &n), 0);
    assert_int_equal(n, 0);
    struct cascade_merge_input in = {"x", 1.0, 10, NULL, 0};
    assert_int_equal(cascade_merge_channels(&in, 1, 10, a, &out, &n), 0);
    assert_int_equal(n, 0);
    cascade_arena_destroy(a);
}

/* Many overlapping channels: every item appears once, with one hit per
 * channel that returned it, and scores are sorted. */
static void test_dedupe_many(void **state)
{
    (void)state;
    enum { CH = 6, PER = 400 };
    cascade_arena *a = cascade_arena_create(0);
    struct cascade_merge_input in[CH];
    static const char *names[CH] = {"a", "b", "c", "d", "e", "f"};
    uint64_t ids[PER];
    float scores[PER];
    for (size_t c = 0; c < CH; c++) {
        for (size_t i = 0; i < PER; i++) {
            ids[i] = 1 + (i * (c + 1)) % 1000; /* channel c covers a stride of the id space */
            scores[i] = (float)(PER - i);
        }
        in[c] = (struct cascade_merge_input){names[c], 1.0 + (double)c, PER,
                                             make_list(a, names[c], ids, scores, PER), PER};
    }
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(in, CH, 100000, a, &out, &n), 0);
    unsigned char *seen = calloc(1001, 1);
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(out[i]->item_id >= 1 && out[i]->item_id <= 1000);
        assert_int_equal(seen[out[i]->item_id], 0);
        seen[out[i]->item_id] = 1;
        hits += out[i]->n_channels;
        if (i > 0)
            assert_true(out[i - 1]->recall_score >= out[i]->recall_score);
    }
    /* Count the distinct (channel, item) pairs directly. */
    size_t pairs = 0;
    for (size_t c = 0; c < CH; c++) {
        unsigned char *in_c = calloc(1001, 1);
        for (size_t i = 0; i < PER; i++) {
            uint64_t id = 1 + (i * (c + 1)) % 1000;
            if (!in_c[id]++)
                pairs++;
        }
        free(in_c);
    }
    assert_int_equal(hits, pairs);
    free(seen);
    cascade_arena_destroy(a);
}

/* An item found by five channels keeps all five hits, in channel order, each
 * with its channel's score and rank (the hit array grows past its first two
 * slots); an item found by one channel keeps one. */
static void test_many_hits(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    const char *names[] = {"c0", "c1", "c2", "c3", "c4"};
    struct cascade_merge_input in[5];
    for (size_t k = 0; k < 5; k++) {
        const uint64_t ids[] = {100 + k, 7};
        const float scores[] = {10.0f, (float)(k + 1)};
        in[k] = (struct cascade_merge_input){.channel = names[k],
                                             .weight = 1.0,
                                             .quota = 10,
                                             .candidates = make_list(a, names[k], ids, scores, 2),
                                             .n_candidates = 2};
    }
    Cascade__V1__Candidate **out;
    size_t n;
    assert_int_equal(cascade_merge_channels(in, 5, 100, a, &out, &n), 0);
    assert_int_equal(n, 6);
    const Cascade__V1__Candidate *seven = NULL;
    for (size_t i = 0; i < n; i++) {
        if (out[i]->item_id == 7)
            seven = out[i];
        else
            assert_int_equal(out[i]->n_channels, 1);
    }
    assert_non_null(seven);
    assert_int_equal(seven->n_channels, 5);
    for (size_t k = 0; k < 5; k++) {
        assert_non_null(seven->channels[k]);
        assert_string_equal(seven->channels[k]->channel, names[k]);
        assert_true(seven->channels[k]->score == (float)(k + 1));
        assert_int_equal(seven->channels[k]->rank, 1);
        assert_true(seven->channels[k]->norm_score == (float)(k + 1) / 10.0f);
    }
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_example),
        cmocka_unit_test(test_contribution_counts),
        cmocka_unit_test(test_cap_keeps_best),
        cmocka_unit_test(test_nonpositive_scores_and_zero_weight),
        cmocka_unit_test(test_channel_score_prefers_named_hit),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_dedupe_many),
        cmocka_unit_test(test_many_hits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
