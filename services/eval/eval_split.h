/* The per-user splits of the offline evaluation: by time (below), at random
 * (the microsoft/recommenders MovieLens protocol), or given as two data sets.
 *
 * Time: each user's interacted
 * items (events with a positive interest weight: click, like, collect, share,
 * follow by default) are ordered by their first interaction (equal times in a
 * seeded order); users with at least min_interactions such items hold out
 * the last test_frac of them (at least one, at most all but one). Everything
 * the user did before the first held-out interaction (impressions included)
 * is train; the rest of that user's log is dropped. Users below the minimum
 * keep their whole log in train. The split is deterministic for a seed.
 *
 * Random: each user's distinct interacted items, in item order, are shuffled
 * (Fisher-Yates with the project's RNG, common/rng.h, seeded from
 * split_seed and the user) and the first round(train_share · n) (at least
 * one, at most all but one) stay in train; the rest are held out, and every
 * event of the user on a held-out item (impressions included) leaves train.
 * Users below min_interactions keep their whole log in train. */
#ifndef CASCADE_EVAL_SPLIT_H
#define CASCADE_EVAL_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

enum cascade_eval_protocol { CASCADE_EVAL_PROTOCOL_TIME = 0, CASCADE_EVAL_PROTOCOL_RANDOM };

struct cascade_eval_split_opts {
    enum cascade_eval_protocol protocol; /* default time */
    double train_share;                  /* random: share kept in train, default 0.75, (0, 1) */
    uint64_t split_seed;                 /* random: the shuffle's seed, default 42 */
    double test_frac;        /* share of each user's items held out, default 0.2, (0, 1) */
    size_t min_interactions; /* distinct interacted items a test user needs, default 5 (>= 2) */
    size_t max_users;        /* sample this many test users (seeded); 0 = all */
    uint64_t seed;           /* equal-time order and user sample, default 1 */
    struct cascade_behaviour_weights weights; /* weight > 0 = an interaction */
};

/* Test user k (0 <= k < n_users): dataset user users[k] (ascending), its
 * held-out items test[test_off[k] .. test_off[k+1]) and its train items
 * seen[seen_off[k] .. seen_off[k+1]), both as sorted item indices. */
struct cascade_eval_split {
    cascade_dataset *train; /* every user and item of the input, the train events */
    size_t n_users;
    uint32_t *users;
    int64_t *split_ts; /* time of the user's first held-out interaction (time protocol);
                          INT64_MAX for the random and given splits */
    size_t *test_off;
    uint32_t *test;
    size_t *seen_off;
    uint32_t *seen;
    /* Counts for the report. */
    size_t eligible;       /* users with enough interactions (before sampling) */
    size_t below_min;      /* users with at least one interaction but fewer than the minimum */
    size_t train_events;   /* events in train */
    size_t dropped_events; /* events at or after each eligible user's split time not in train */
    size_t test_items;     /* held-out (user, item) pairs of the sampled users */
    size_t unknown_users;  /* given split: test users not in train (skipped) */
};

void cascade_eval_split_defaults(struct cascade_eval_split_opts *o);

/* Split ds (read-only; its events sorted by time). On success *out holds a
 * new train dataset and the test sets; free with cascade_eval_split_free.
 * Returns 0, CASCADE_EINVAL (bad options, message in err) or CASCADE_ENOMEM. */
int cascade_eval_split_run(const cascade_dataset *ds, const struct cascade_eval_split_opts *o,
                           struct cascade_eval_split *out, char *err, size_t errlen);

/* A given split: train (ownership taken, also on failure; its events
 * sorted by time) is the train part as it is, and each user's interacted
 * items in test (read-only; same users and items by id) are its held-out
 * items, minus those it also interacted with in train. Test users unknown to
 * train (unknown_users, their events in dropped_events) and test events on
 * items unknown to train (dropped_events) are skipped and counted. Users with at least one held-out
 * item are evaluated (o->max_users, o->seed and o->weights apply; the minimum does not). Returns 0,
 * CASCADE_EINVAL or CASCADE_ENOMEM with err set. */
int cascade_eval_split_given(cascade_dataset *train, const cascade_dataset *test,
                             const struct cascade_eval_split_opts *o,
                             struct cascade_eval_split *out, char *err, size_t errlen);

/* Free everything the split holds (NULL-safe on a zeroed or freed split). */
void cascade_eval_split_free(struct cascade_eval_split *s);

#endif
