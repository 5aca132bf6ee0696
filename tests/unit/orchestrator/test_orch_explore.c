/* Unit tests of new-item exploration: the number of slots (share, rounding,
 * the at-least-one rule), their fixed positions, the pool order, and the
 * insertion into a final list (items the re-ranker chose count, items already
 * shown are skipped, a short pool inserts fewer, a short list appends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "explore.h"

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

static void test_positions(void **state)
{
    (void)state;
    assert_int_equal(cascade_explore_position(0, 1, 10), 5);
    assert_int_equal(cascade_explore_position(0, 2, 20), 5);
    assert_int_equal(cascade_explore_position(1, 2, 20), 15);
    const size_t want[] = {5, 15, 25, 35, 45};
    for (size_t j = 0; j < 5; j++)
        assert_int_equal(cascade_explore_position(j, 5, 50), want[j]);
    assert_int_equal(cascade_explore_position(0, 1, 5), 2);
    assert_int_equal(cascade_explore_position(2, 3, 3), 2);
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
    assert_int_equal(cascade_explore_pool(c, 5, "new", a, &pool, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(pool[0]->item_id, 3);
    assert_int_equal(pool[1]->item_id, 5);
    assert_int_equal(pool[2]->item_id, 2);
    cascade_arena_destroy(a);
}

/* A final list of 20 ranked items (ids 1..20, none from "new") gets the two
 * best pool items at positions 5 and 15; the two last items fall off. */
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
    cascade_explore_insert(list, &n, 20, pool, 3, "new", 0.1, &inserted);
    assert_int_equal(inserted, 2);
    assert_int_equal(n, 20);
    assert_int_equal(list[5]->item_id, 900);
    assert_int_equal(list[15]->item_id, 901);
    /* The others keep their order around the slots. */
    const uint64_t want[20] = {1,  2,  3,  4,  5,  900, 6,  7,  8,  9,
                               10, 11, 12, 13, 14, 901, 15, 16, 17, 18};
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(list[i]->item_id, want[i]);
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
    cascade_explore_insert(list, &n, 10, pool, 2, "new", 0.1, &inserted);
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
    cascade_explore_insert(list20, &n, 20, pool, 2, "new", 0.1, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(list20[2]->item_id, 900);
    assert_int_equal(list20[5]->item_id, 901);
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
    cascade_explore_insert(list, &n, 50, pool, 1, "new", 0.1, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(list[5]->item_id, 900);

    Cascade__V1__Candidate *shortl[10];
    n = 3; /* only three candidates survived for a request of 10 */
    for (size_t i = 0; i < 3; i++)
        shortl[i] = cand(a, i + 1, "hot", 0);
    cascade_explore_insert(shortl, &n, 10, pool, 1, "new", 0.1, &inserted);
    assert_int_equal(inserted, 1);
    assert_int_equal(n, 4);
    assert_int_equal(shortl[3]->item_id, 900);

    Cascade__V1__Candidate *four[4];
    n = 4;
    for (size_t i = 0; i < 4; i++)
        four[i] = cand(a, i + 1, "hot", 0);
    cascade_explore_insert(four, &n, 4, pool, 1, "new", 0.1, &inserted);
    assert_int_equal(inserted, 0);
    assert_int_equal(four[3]->item_id, 4);

    /* Empty pool: nothing happens. */
    n = 50;
    cascade_explore_insert(list, &n, 50, NULL, 0, "other", 0.1, &inserted);
    assert_int_equal(inserted, 0);
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_pool_order),
        cmocka_unit_test(test_insert_at_fixed_positions),
        cmocka_unit_test(test_chosen_items_count),
        cmocka_unit_test(test_short_pool_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
