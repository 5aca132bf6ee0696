/* Unit tests of slots (slots.h): a request's slots are checked field by
 * field, and placement puts each inserted item at its position with the
 * ranked items around it in their order (collisions move a later slot
 * down, a repeated item is inserted once, a ranked copy of an inserted item
 * is dropped, a short list gets the slot items appended, a slot past the
 * end is left out), and exploration slots yield to item slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "explore.h"
#include "slots.h"

static Cascade__V1__Candidate *cand(cascade_arena *a, uint64_t id)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
    cascade__v1__candidate__init(c);
    c->item_id = id;
    return c;
}

/* ranked items 1..n */
static void ranked_list(cascade_arena *a, Cascade__V1__Candidate **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        list[i] = cand(a, i + 1);
}

static struct cascade_slot inserted(cascade_arena *a, uint32_t position, uint64_t id,
                                    const char *source)
{
    return (struct cascade_slot){.position = position,
                                 .cand = cand(a, id),
                                 .reason = CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED,
                                 .source = source};
}

static void assert_ids(Cascade__V1__Candidate *const *list, size_t n, const uint64_t *want,
                       size_t n_want)
{
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i]->item_id, want[i]);
}

/* Each placement test: an arena and the ranked items 1..10. */
struct place_fx {
    cascade_arena *a;
    Cascade__V1__Candidate *ranked[10];
};

static int place_setup(void **state)
{
    struct place_fx *f = calloc(1, sizeof *f);
    if (f == NULL || (f->a = cascade_arena_create(0)) == NULL)
        return -1;
    ranked_list(f->a, f->ranked, 10);
    *state = f;
    return 0;
}

static int place_teardown(void **state)
{
    struct place_fx *f = *state;
    cascade_arena_destroy(f->a);
    free(f);
    return 0;
}

static void test_place_at_positions(void **state)
{
    struct place_fx *f = *state;
    cascade_arena *a = f->a;
    Cascade__V1__Candidate **ranked = f->ranked, **out;
    const struct cascade_slot **from;
    size_t n;
    struct cascade_slot s[2] = {inserted(a, 3, 500, "ads"), inserted(a, 0, 600, "ops:spring")};
    assert_int_equal(cascade_slots_place(ranked, 10, 10, s, 2, a, &out, &from, &n), 0);
    const uint64_t want[10] = {600, 1, 2, 500, 3, 4, 5, 6, 7, 8};
    assert_ids(out, n, want, 10);
    assert_ptr_equal(from[0], &s[1]);
    assert_ptr_equal(from[3], &s[0]);
    assert_string_equal(from[3]->source, "ads");
    for (size_t i = 0; i < n; i++)
        if (i != 0 && i != 3)
            assert_null(from[i]);
    /* No slots: the ranked list, cut to count. */
    assert_int_equal(cascade_slots_place(ranked, 10, 5, NULL, 0, a, &out, &from, &n), 0);
    const uint64_t first5[5] = {1, 2, 3, 4, 5};
    assert_ids(out, n, first5, 5);
}

/* A later slot on a taken position goes to the next free one below; one
 * past the end is left out; a repeated item is inserted once; the ranked
 * copy of an inserted item leaves its ranked place. */
static void test_place_collisions(void **state)
{
    struct place_fx *f = *state;
    cascade_arena *a = f->a;
    Cascade__V1__Candidate **ranked = f->ranked, **out;
    const struct cascade_slot **from;
    size_t n;
    struct cascade_slot s[4] = {inserted(a, 8, 500, "a"), inserted(a, 8, 501, "b"),
                                inserted(a, 8, 502, "c"), inserted(a, 2, 500, "d")};
    assert_int_equal(cascade_slots_place(ranked, 10, 10, s, 4, a, &out, &from, &n), 0);
    const uint64_t want[10] = {1, 2, 3, 4, 5, 6, 7, 8, 500, 501};
    assert_ids(out, n, want, 10);
    assert_ptr_equal(from[9], &s[1]);

    /* Item 4 is both ranked (position 3) and inserted at 0: once, at 0. */
    struct cascade_slot dup = inserted(a, 0, 4, "ops");
    assert_int_equal(cascade_slots_place(ranked, 10, 10, &dup, 1, a, &out, &from, &n), 0);
    const uint64_t want_dup[10] = {4, 1, 2, 3, 5, 6, 7, 8, 9, 10};
    assert_ids(out, n, want_dup, 10);
}

/* Fewer ranked items than positions: the slot items close the gap, in
 * position order; no ranked item at all still serves the slots. */
static void test_place_short_list(void **state)
{
    struct place_fx *f = *state;
    cascade_arena *a = f->a;
    Cascade__V1__Candidate **ranked = f->ranked, **out; /* the first 3 only */
    const struct cascade_slot **from;
    size_t n;
    struct cascade_slot s[2] = {inserted(a, 9, 501, "b"), inserted(a, 5, 500, "a")};
    assert_int_equal(cascade_slots_place(ranked, 3, 10, s, 2, a, &out, &from, &n), 0);
    const uint64_t want[5] = {1, 2, 3, 500, 501};
    assert_ids(out, n, want, 5);
    assert_int_equal(cascade_slots_place(NULL, 0, 10, s, 2, a, &out, &from, &n), 0);
    const uint64_t only[2] = {500, 501};
    assert_ids(out, n, only, 2);
    /* A slot whose item the filter dropped (cand NULL) is skipped. */
    s[1].cand = NULL;
    assert_int_equal(cascade_slots_place(ranked, 3, 10, s, 2, a, &out, &from, &n), 0);
    const uint64_t kept[4] = {1, 2, 3, 501};
    assert_ids(out, n, kept, 4);
}

/* Exploration behind an item slot on its position: the item slot keeps
 * position 8, the exploration item goes to 9, and with one ranked item
 * fewer visible the re-ranker's own exploration pick may fall off. */
static void test_exploration_yields(void **state)
{
    struct place_fx *f = *state;
    cascade_arena *a = f->a;
    Cascade__V1__Candidate **ranked = f->ranked, *pool[1], **out;
    const struct cascade_slot **from;
    struct cascade_slot slots[2];
    size_t n;
    pool[0] = cand(a, 900);
    Cascade__V1__ChannelHit hit = CASCADE__V1__CHANNEL_HIT__INIT;
    Cascade__V1__ChannelHit *hits[1] = {&hit};
    hit.channel = "new";
    pool[0]->channels = hits;
    pool[0]->n_channels = 1;
    slots[0] = inserted(a, 8, 500, "ads");
    const uint32_t pos[1] = {8};
    size_t k = cascade_explore_fill(ranked, 10, 10, 1, pos, 1, pool, 1, "new", &slots[1]);
    assert_int_equal(k, 1);
    assert_int_equal(slots[1].reason, CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION);
    assert_int_equal(cascade_slots_place(ranked, 10, 10, slots, 2, a, &out, &from, &n), 0);
    const uint64_t want[10] = {1, 2, 3, 4, 5, 6, 7, 8, 500, 900};
    assert_ids(out, n, want, 10);
    assert_string_equal(from[9]->source, "exploration");

    /* The re-ranker chose 900 at position 8: two slots take positions, so it
     * would fall off (only 8 ranked items stay) and is inserted again. */
    ranked[8] = pool[0];
    k = cascade_explore_fill(ranked, 10, 10, 2, pos, 1, pool, 1, "new", &slots[1]);
    assert_int_equal(k, 1);
    /* With one slot taken it stays (9 ranked items stay): nothing to add. */
    k = cascade_explore_fill(ranked, 10, 10, 1, pos, 1, pool, 1, "new", &slots[1]);
    assert_int_equal(k, 0);
}

static Cascade__V1__Slot *req_slot(cascade_arena *a, uint32_t position, uint64_t item,
                                   const char *source)
{
    Cascade__V1__Slot *s = cascade_arena_alloc(a, sizeof *s);
    cascade__v1__slot__init(s);
    s->position = position;
    s->item_id = item;
    s->source = (char *)source;
    return s;
}

static void expect_bad(Cascade__V1__Slot *const *s, size_t n, uint32_t count, int code,
                       const char *msg)
{
    char err[256] = "";
    assert_int_equal(cascade_slots_check(s, n, count, err, sizeof err), code);
    assert_string_equal(err, msg);
}

static void test_check(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    char err[256];
    Cascade__V1__Slot *s[CASCADE_SLOTS_MAX + 1];
    s[0] = req_slot(a, 0, 7, "ads");
    s[1] = req_slot(a, 9, 8, "ops:spring-2026_v1.2");
    assert_int_equal(cascade_slots_check(s, 2, 10, err, sizeof err), 0);
    assert_int_equal(cascade_slots_check(NULL, 0, 10, err, sizeof err), 0);
    expect_bad(s, 2, 9, CASCADE_EINVAL, "slots[1].position 9 is outside the list (count 9)");
    s[1] = req_slot(a, 0, 8, "ads");
    expect_bad(s, 2, 10, CASCADE_EINVAL, "slots[1].position 0 is also slots[0]'s");
    s[1] = req_slot(a, 1, 7, "ads");
    expect_bad(s, 2, 10, CASCADE_EINVAL, "slots[1].item_id 7 is also slots[0]'s");
    s[1] = req_slot(a, 1, 0, "ads");
    expect_bad(s, 2, 10, CASCADE_EINVAL, "slots[1].item_id is 0");
    const char *bad_sources[] = {
        "", NULL, "ads campaign", "ads\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad_sources / sizeof bad_sources[0]; i++) {
        s[1] = req_slot(a, 1, 8, bad_sources[i]);
        expect_bad(s, 2, 10, CASCADE_EINVAL,
                   "slots[1].source is not 1..64 characters of [A-Za-z0-9._:-]");
    }
    s[1] = NULL;
    expect_bad(s, 2, 10, CASCADE_EINVAL, "slots[1] is missing");
    for (size_t i = 0; i <= CASCADE_SLOTS_MAX; i++)
        s[i] = req_slot(a, (uint32_t)i, i + 1, "ads");
    assert_int_equal(cascade_slots_check(s, CASCADE_SLOTS_MAX, 200, err, sizeof err), 0);
    expect_bad(s, CASCADE_SLOTS_MAX + 1, 200, CASCADE_ETOOBIG, "slots: 17 entries, at most 16");
    cascade_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_place_at_positions, place_setup, place_teardown),
        cmocka_unit_test_setup_teardown(test_place_collisions, place_setup, place_teardown),
        cmocka_unit_test_setup_teardown(test_place_short_list, place_setup, place_teardown),
        cmocka_unit_test_setup_teardown(test_exploration_yields, place_setup, place_teardown),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
