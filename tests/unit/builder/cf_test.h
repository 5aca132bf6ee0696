/* Helpers shared by the CF builder tests (test_cf, test_itemcf, test_swing,
 * test_usercf): users and items for hand-made datasets, a generated world,
 * and a comparison of two sets of neighbour lists. Include after <cmocka.h>. */
#ifndef CASCADE_TESTS_CF_TEST_H
#define CASCADE_TESTS_CF_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cf_lists.h"
#include "datagen.h"
#include "dataset.h"

/* Add user id (no attributes) to ds; fails the test on error. */
static inline void cf_test_add_user(cascade_dataset *ds, const char *id)
{
    struct cascade_ds_user u = {0};
    snprintf(u.id, sizeof(u.id), "%s", id);
    assert_int_equal(cascade_dataset_add_user(ds, &u, NULL), 0);
}

/* Add item id (category 1, media type 1) to ds; fails the test on error. */
static inline void cf_test_add_item(cascade_dataset *ds, uint64_t id)
{
    struct cascade_ds_item it = {.id = id, .category = 1, .media_type = 1};
    assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
}

/* A generated world of `users` users, 300 items and `events` impressions
 * from seed, ending at a fixed time (the same world every run). */
static inline cascade_dataset *cf_test_generated_world(size_t users, size_t events, uint64_t seed)
{
    struct cascade_datagen_opts g;
    cascade_dataset *ds = NULL;
    char err[256];
    cascade_datagen_defaults(&g);
    g.users = users;
    g.items = 300;
    g.events = events;
    g.seed = seed;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof(err)), 0);
    return ds;
}

/* True when a and b hold the same neighbours with the same scores per row. */
static inline bool cf_test_same_lists(const struct cascade_cf_lists *a,
                                      const struct cascade_cf_lists *b)
{
    if (memcmp(a->count, b->count, a->n * sizeof(uint32_t)) != 0)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(a->nbr + i * a->k, b->nbr + i * b->k, a->count[i] * sizeof(uint32_t)) != 0 ||
            memcmp(a->score + i * a->k, b->score + i * b->k, a->count[i] * sizeof(float)) != 0)
            return false;
    return true;
}

#endif
