/* Unit tests of new-item exploration: the number of slots (share, rounding,
 * the at-least-one rule), their positions (first at the configured share of
 * the list), the pool order and cap, the ranker's choice among the pool (its
 * order, the rank-share bar), and the exploration slots of a final list,
 * placed as slots (slots.h) as the orchestrator does (items the re-ranker
 * chose count, items already shown are skipped, a short pool inserts fewer,
 * a short list appends, other slots take their positions first). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "explore.h"
#include "slots.h"

/* A candidate with one hit per channel name given (rank = rank_in_new for
 * "new", 0 otherwise). */
static Cascade__V1__Candidate *cand(cascade_arena *a, uint64_t id, const char *channel,
                                    uint32_t rank)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
    Cascade__V1__ChannelHit *h = cascade_arena_alloc(a, sizeof *h);
    cascade__v1__candidate__init(c);
    cascade__v1__channel_hit__init(h);
    h->channel = (char *)channel;
    h->rank = rank;
    c->item_id = id;
    c->channels = cascade_arena_alloc(a, sizeof *c->channels);
    c->channels[0] = h;
    c->n_channels = 1;
    return c;
}

static void test_slots(void **state)
{
    (void)state;
    assert_int_equal(cascade_explore_slots(10, 0.1), 1);
    assert_int_equal(cascade_explore_slots(20, 0.1), 2);
    assert_int_equal(cascade_explore_slots(50, 0.1), 5);
    assert_int_equal(cascade_explore_slots(25, 0.1), 3); /* 2.5 rounds up */
    assert_int_equal(cascade_explore_slots(5, 0.1), 1);  /* at least one from 5 items */
    assert_int_equal(cascade_explore_slots(6, 0.05), 1);
    assert_int_equal(cascade_explore_slots(4, 0.1), 0); /* 0.4 rounds to 0, under 5 */
    assert_int_equal(cascade_explore_slots(4, 0.5), 2);
    assert_int_equal(cascade_explore_slots(10, 0.0), 0); /* off */
    assert_int_equal(cascade_explore_slots(3, 1.0), 3);  /* never more than count */
    assert_int_equal(cascade_explore_slots(0, 0.5), 0);
}

/* Share 0.1, first slot in the middle, no rank bar. */
static const struct cascade_explore_params mid = {
    .share = 0.1, .position = 0.5, .max_rank_share = 1.0};

static void test_positions(void **state)
{
    (void)state;
    assert_int_equal(cascade_explore_position(0, 1, 10, 0.8), 8);
    assert_int_equal(cascade_explore_position(0, 1, 20, 0.8), 16);
    assert_int_equal(cascade_explore_position(0, 1, 10, 0.5), 5);
    assert_int_equal(cascade_explore_position(0, 1, 10, 0.0), 0);
    assert_int_equal(cascade_explore_position(0, 1, 10, 1.0), 9); /* never past the end */
    assert_int_equal(cascade_explore_position(0, 2, 20, 0.5), 10);
    assert_int_equal(cascade_explore_position(1, 2, 20, 0.5), 15);
    const size_t want[] = {25, 30, 35, 40, 45};
    for (size_t j = 0; j < 5; j++)
        assert_int_equal(cascade_explore_position(j, 5, 50, 0.5), want[j]);
    /* Position 0 spreads the slots over the whole list. */
    assert_int_equal(cascade_explore_position(1, 2, 20, 0.0), 10);
    assert_int_equal(cascade_explore_position(2, 3, 3, 0.8), 2);
}

/* The pool keeps only the channel's candidates, ordered by their rank there. */
static void test_pool_order(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate *c[5] = {cand(a, 1, "hot", 0), cand(a, 2, "new", 3),
                                    cand(a, 3, "new", 0), cand(a, 4, "itemcf", 0),
                                    cand(a, 5, "new", 1)};
    Cascade__V1__Candidate **pool;
    size_t n;
    assert_int_equal(cascade_explore_pool(c, 5, "new", 0, a, &pool, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(pool[0]->item_id, 3);
    assert_int_equal(pool[1]->item_id, 5);
    assert_int_equal(pool[2]->item_id, 2);
    /* A cap keeps the channel's best. */
    assert_int_equal(cascade_explore_pool(c, 5, "new", 2, a, &pool, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pool[0]->item_id, 3);
    assert_int_equal(pool[1]->item_id, 5);
    cascade_arena_destroy(a);
}

/* The ranker's order decides: of pool items 900..904 (channel order), the
 * ranker places 903 at 1, 900 at 4, 902 at 7 and 904 at 15 of 20 (901 is not
 * returned). The picks are its ranked copies, best first, with positions. */
static void test_by_rank_order(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate *pool[5], *ranked[20];
    for (size_t i = 0; i < 5; i++)
        pool[i] = cand(a, 900 + i, "new", (uint32_t)i);
    for (size_t i = 0; i < 20; i++)
        ranked[i] = cand(a, i + 1, "itemcf", 0);
    const struct {
        size_t at;
        uint64_t id;
    } placed[] = {{1, 903}, {4, 900}, {7, 902}, {15, 904}};
    for (size_t k = 0; k < 4; k++)
        ranked[placed[k].at] = cand(a, placed[k].id, "new", 9);
    Cascade__V1__Candidate **picks;
    size_t n;
    uint32_t *pos;
    assert_int_equal(cascade_explore_by_rank(pool, 5, ranked, 20, 1.0, a, &picks, &n, &pos), 0);
    assert_int_equal(n, 4);
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(picks[k]->item_id, placed[k].id);
        assert_ptr_equal(picks[k], ranked[placed[k].at]); /* the scored copy */
        assert_int_equal(pos[k], placed[k].at);
    }
    /* The bar: within the top half (10 of 20) only 903, 900 and 902 qualify. */
    assert_int_equal(cascade_explore_by_rank(pool, 5, ranked, 20, 0.5, a, &picks, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(picks[2]->item_id, 902);
    /* The top 5% is position 0 alone (⌈0.05 × 20⌉ = 1), not a pool item:
     * nothing qualifies, so nothing is shown. */
    assert_int_equal(cascade_explore_by_rank(pool, 5, ranked, 20, 0.05, a, &picks, &n, NULL), 0);
    assert_int_equal(n, 0);
    /* The top 10% (positions 0 and 1) holds 903. */
    assert_int_equal(cascade_explore_by_rank(pool, 5, ranked, 20, 0.1, a, &picks, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(picks[0]->item_id, 903);
    cascade_arena_destroy(a);
}

/* A final list of 20 ranked items (ids 1..20, none from "new") gets the two
 * best pool items at positions 10 and 15 (first slot at half the list); the
 * two last items fall off. */
/* Exploration as the orchestrator runs it: the share/position formula's
 * positions, cascade_explore_fill behind `reserved` other slots
 * (others[0..reserved)), then cascade_slots_place; the result is copied
 * back into list (room for count). */
static void place_with(cascade_arena *a, Cascade__V1__Candidate **list, size_t *n, size_t count,
                       Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                       const struct cascade_explore_params *p, const struct cascade_slot *others,
                       size_t reserved, size_t *inserted)
{
    uint32_t pos[64];
    struct cascade_slot slots[80];
    size_t n_pos = cascade_explore_slots(count, p->share);
    for (size_t j = 0; j < n_pos; j++)
        pos[j] = (uint32_t)cascade_explore_position(j, n_pos, count, p->position);
    if (reserved)
        memcpy(slots, others, reserved * sizeof *slots);
    *inserted = cascade_explore_fill(list, *n, count, reserved, pos, n_pos, pool, n_pool, channel,
                                     slots + reserved);
    Cascade__V1__Candidate **out;
    const struct cascade_slot **from;
    assert_int_equal(
        cascade_slots_place(list, *n, count, slots, reserved + *inserted, a, &out, &from, n), 0);
    for (size_t i = 0; i < *n; i++) {
        list[i] = out[i];
        if (from[i] && from[i]->reason == CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION)
            assert_string_equal(from[i]->source, "exploration");
    }
}

static void explore_insert(cascade_arena *a, Cascade__V1__Candidate **list, size_t *n, size_t count,
                           Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                           const struct cascade_explore_params *p, size_t *inserted)
{
    place_with(a, list, n, count, pool, n_pool, channel, p, NULL, 0, inserted);
}

static void test_insert_at_fixed_positions(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate *list[20], *pool[3];
    size_t n = 20, inserted = 0;
    for (size_t i = 0; i < 20; i++)
        list[i] = cand(a, i + 1, "itemcf", 0);
    for (size_t i = 0; i < 3; i++)
        pool[i] = cand(a, 900 + i, "new", (uint32_t)i);
    explore_insert(a, list, &n, 20, pool, 3, "new", &mid, &inserted);
    assert_int_equal(inserted, 2);
    assert_int_equal(n, 20);
    assert_int_equal(list[10]->item_id, 900);
    assert_int_equal(list[15]->item_id, 901);
    /* The others keep their order around the slots. */
    const uint64_t want[20] = {1,   2,  3,  4,  5,  6,   7,  8,  9,  10,
                               900, 11, 12, 13, 14, 901, 15, 16, 17, 18};
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(list[i]->item_id, want[i]);

    /* The default late position: one slot of 10 at position 8. */
    const struct cascade_explore_params late = {
        .share = 0.05, .position = 0.8, .max_rank_share = 0.5};
    n = 10;
    for (size_t i = 0; i < 10; i++)
        list[i] = cand(a, i + 1, "itemcf", 0);
    explore_insert(a, list, &n, 10, pool, 3, "new", &late, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(list[8]->item_id, 900);
    assert_int_equal(list[9]->item_id, 9);
    /* Share 0 inserts nothing. */
    const struct cascade_explore_params off = {
        .share = 0.0, .position = 0.8, .max_rank_share = 0.5};
    for (size_t i = 0; i < 10; i++)
        list[i] = cand(a, i + 1, "itemcf", 0);
    explore_insert(a, list, &n, 10, pool, 3, "new", &off, &inserted);
    assert_int_equal(inserted, 0);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(list[i]->item_id, i + 1);
    cascade_arena_destroy(a);
}

/* Items the re-ranker chose count towards the share; pool items already in
 * the list are not inserted twice. */
static void test_chosen_items_count(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate *list[10], *pool[2];
    size_t n = 10, inserted = 99;
    for (size_t i = 0; i < 10; i++)
        list[i] = cand(a, i + 1, "hot", 0);
    pool[0] = cand(a, 900, "new", 0);
    pool[1] = cand(a, 901, "new", 1);
    list[8] = pool[0]; /* the re-ranker picked 900 at position 8 */
    explore_insert(a, list, &n, 10, pool, 2, "new", &mid, &inserted);
    assert_int_equal(inserted, 0);
    assert_int_equal(list[8]->item_id, 900);
    assert_int_equal(list[5]->item_id, 6);

    /* 20 items, 2 slots, 900 already chosen: only 901 is inserted (at the
     * first slot position), never 900 again. */
    Cascade__V1__Candidate *list20[20];
    n = 20;
    for (size_t i = 0; i < 20; i++)
        list20[i] = cand(a, i + 1, "hot", 0);
    list20[2] = pool[0];
    explore_insert(a, list20, &n, 20, pool, 2, "new", &mid, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(list20[2]->item_id, 900);
    assert_int_equal(list20[10]->item_id, 901);
    cascade_arena_destroy(a);
}

/* A short pool inserts what it has; a list shorter than the slot position
 * gets the item appended; count < 5 at 10% reserves nothing. */
static void test_short_pool_and_list(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate *list[50], *pool[1];
    size_t n = 50, inserted = 0;
    for (size_t i = 0; i < 50; i++)
        list[i] = cand(a, i + 1, "hot", 0);
    pool[0] = cand(a, 900, "new", 0);
    explore_insert(a, list, &n, 50, pool, 1, "new", &mid, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(list[25]->item_id, 900);

    Cascade__V1__Candidate *shortl[10];
    n = 3; /* only three candidates survived for a request of 10 */
    for (size_t i = 0; i < 3; i++)
        shortl[i] = cand(a, i + 1, "hot", 0);
    explore_insert(a, shortl, &n, 10, pool, 1, "new", &mid, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(n, 4);
    assert_int_equal(shortl[3]->item_id, 900);

    Cascade__V1__Candidate *four[4];
    n = 4;
    for (size_t i = 0; i < 4; i++)
        four[i] = cand(a, i + 1, "hot", 0);
    explore_insert(a, four, &n, 4, pool, 1, "new", &mid, &inserted);
    assert_int_equal(inserted, 0);
    assert_int_equal(four[3]->item_id, 4);

    /* Empty pool: nothing happens. */
    n = 50;
    explore_insert(a, list, &n, 50, NULL, 0, "other", &mid, &inserted);
    assert_int_equal(inserted, 0);
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_pool_order),
        cmocka_unit_test(test_by_rank_order),
        cmocka_unit_test(test_insert_at_fixed_positions),
        cmocka_unit_test(test_chosen_items_count),
        cmocka_unit_test(test_short_pool_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
