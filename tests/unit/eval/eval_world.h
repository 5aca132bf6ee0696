/* The generated world the eval tests share (test_eval_run, test_eval_tune):
 * a small dataset from the generator, the same TSVs on disk for the command
 * line, and a private Redis. Include after <cmocka.h>. */
#ifndef CASCADE_TESTS_EVAL_WORLD_H
#define CASCADE_TESTS_EVAL_WORLD_H

#include <stdint.h>
#include <string.h>

#include "datagen.h"
#include "dataset.h"
#include "support.h"

#define EVAL_WORLD_END_TS 1764547200 /* fixed: the same world every run */

struct world {
    struct test_redis_fixture redis;
    cascade_dataset *ds;
    char dir[256]; /* the world as TSVs, for the command line */
};

/* Generate a world of `users` users and `events` impressions from seed
 * (300 items, 10 categories, 30 authors, 3 cities, 20 days), write it to a
 * temporary directory and start Redis. 0, or -1 (fails the test's setup). */
static inline int world_start(struct world *w, size_t users, size_t events, uint64_t seed)
{
    struct cascade_datagen_opts o;
    char err[256];
    memset(w, 0, sizeof *w);
    cascade_datagen_defaults(&o);
    o.users = users;
    o.items = 300;
    o.events = events;
    o.categories = 10;
    o.authors = 30;
    o.cities = 3;
    o.days = 20;
    o.seed = seed;
    o.end_ts = EVAL_WORLD_END_TS;
    o.quiet = true;
    if (cascade_datagen_generate(&o, &w->ds, NULL, NULL, err, sizeof err) != 0 ||
        !test_tempdir(w->dir, sizeof w->dir) ||
        cascade_dataset_write(w->ds, w->dir, err, sizeof err) != 0 ||
        test_redis_fixture_start(&w->redis) != 0)
        return -1;
    return 0;
}

/* Stop Redis, remove the directory, free the dataset. */
static inline void world_stop(struct world *w)
{
    test_redis_fixture_stop(&w->redis);
    test_rmdir(w->dir);
    cascade_dataset_destroy(w->ds);
}

#endif
