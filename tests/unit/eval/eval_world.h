/* The generated world the eval tests share (test_eval_run, test_eval_tune):
 * a small dataset from the generator, the same TSVs on disk for the command
 * line, and a private Redis. Include after <cmocka.h>. */
#ifndef CASCADE_TESTS_EVAL_WORLD_H
#define CASCADE_TESTS_EVAL_WORLD_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "datagen.h"
#include "dataset.h"
#include "eval_cli.h"
#include "eval_split.h"
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

/* cmocka group setup / teardown: a world (static, one per test file) in
 * *state. */
static inline int world_group_setup(void **state, size_t users, size_t events, uint64_t seed)
{
    static struct world w;
    if (world_start(&w, users, events, seed) != 0)
        return -1;
    *state = &w;
    return 0;
}

static inline int world_group_teardown(void **state)
{
    world_stop(*state);
    return 0;
}

/* cascade_eval_main on fixed[0..n_fixed) followed by n_extra more
 * arguments (const char *) from ap. */
static inline int world_eval_main(const char *const *fixed, size_t n_fixed, int n_extra, va_list ap)
{
    const char *argv[64];
    int argc = 0;
    for (size_t i = 0; i < n_fixed && argc < 63; i++)
        argv[argc++] = fixed[i];
    for (int i = 0; i < n_extra && argc < 63; i++)
        argv[argc++] = va_arg(ap, const char *);
    argv[argc] = NULL;
    return cascade_eval_main(argc, (char **)argv);
}

/* Expected recall@k of k items drawn at random from each test user's unseen
 * items, averaged over the split's test users: the floor a channel must beat. */
static inline double world_random_recall(const struct cascade_eval_split *s, size_t k)
{
    double sum = 0;
    for (size_t u = 0; u < s->n_users; u++) {
        double unseen = (double)(s->train->n_items - (s->seen_off[u + 1] - s->seen_off[u]));
        sum += unseen > (double)k ? (double)k / unseen : 1.0;
    }
    return sum / (double)s->n_users;
}

#endif
