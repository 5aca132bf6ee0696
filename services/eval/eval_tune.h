/* Choosing the merge weights on a validation split, never on the test split.
 * The validation split is the evaluation split applied again to its own
 * train part (the last valid_frac of each user's train items become the
 * validation positives); the caller builds on what is left, keeps every
 * channel's lists for the validation users (eval_lists.h), and
 * cascade_eval_tune_weights picks one weight per channel from a small grid by
 * coordinate ascent, maximising the mean over K of recall@K of the merge.
 * Weight 0 takes a channel out of the merge. Deterministic for a seed. */
#ifndef CASCADE_EVAL_TUNE_H
#define CASCADE_EVAL_TUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eval_lists.h"
#include "eval_run.h"
#include "eval_split.h"

#define CASCADE_EVAL_MAX_GRID 16

/* Objective of the coordinate ascent: *value for the weights w[0..n).
 * Returns 0, or a negative code that stops the search. */
typedef int (*cascade_eval_objective_fn)(void *ctx, const double *w, size_t n, double *value);

struct cascade_eval_ascent_opts {
    const double *grid; /* candidate values of every coordinate, ascending */
    size_t n_grid;
    size_t max_sweeps; /* passes over the coordinates; stops early after a pass without a move */
    uint64_t seed;     /* order of the coordinates in each pass */
};

struct cascade_eval_ascent_result {
    double start_value, value;
    size_t sweeps;      /* passes made */
    size_t evaluations; /* objective calls, the start included */
};

/* Coordinate ascent: starting from w[0..n) (any values), each pass visits the
 * coordinates in a seeded order and sets each to the grid value that
 * maximises the objective with the others fixed; a move needs a strict
 * improvement (ties keep the current value, then the smaller grid value), so
 * the result is deterministic for a seed. w holds the best point on return.
 * Returns 0, CASCADE_EINVAL (empty grid, n = 0) or the objective's error. */
int cascade_eval_coord_ascent(cascade_eval_objective_fn f, void *ctx, double *w, size_t n,
                              const struct cascade_eval_ascent_opts *o,
                              struct cascade_eval_ascent_result *res);

/* Parse "0,0.25,0.5,1,2,4" (1..CASCADE_EVAL_MAX_GRID ascending values >= 0). */
int cascade_eval_grid_parse(const char *list, double *grid, size_t *n, char *err, size_t errlen);

/* The validation split: split->train split again with the same options but
 * test_frac = valid_frac. Its held-out items are the validation positives,
 * its train part what the validation build sees. Free with
 * cascade_eval_split_free. */
int cascade_eval_split_validation(const struct cascade_eval_split *outer,
                                  const struct cascade_eval_split_opts *o, double valid_frac,
                                  struct cascade_eval_split *inner, char *err, size_t errlen);

/* One channel of the tuning. */
struct cascade_eval_tuned_channel {
    char name[CASCADE_EVAL_NAME_MAX];
    double start;   /* the base merge's weight (0 when not in it) */
    double weight;  /* chosen weight; equals start for a channel without signal */
    uint32_t quota; /* the base merge's quota, else the largest K */
    bool in_base;   /* in the base merge */
    bool signal;    /* returned a candidate to some validation user (else not tuned) */
};

struct cascade_eval_tune_opts {
    double grid[CASCADE_EVAL_MAX_GRID];
    size_t n_grid;
    size_t max_sweeps;
    uint64_t seed;
    double valid_frac; /* for the report */
};

struct cascade_eval_tune_result {
    size_t n; /* base merge channels in their order, then the other evaluated channels */
    struct cascade_eval_tuned_channel ch[CASCADE_EVAL_MAX_CHANNELS];
    struct cascade_eval_ascent_result ascent; /* objective values on the validation split */
    /* The validation split, for the report. */
    size_t valid_users, valid_items, valid_train_events;
    double seconds; /* the search */
};

/* Choose the weights from the kept validation lists l (complete) for the
 * evaluated channels of l, starting from the base merge base[0..n_base)
 * (each of l's channels). The objective is the mean over ks[0..n_ks) of the
 * mean recall@K of the merge of the channels with a weight > 0. Returns 0,
 * CASCADE_EINVAL or CASCADE_ENOMEM with a message. */
int cascade_eval_tune_weights(const struct cascade_eval_lists *l, const size_t *ks, size_t n_ks,
                              const struct cascade_eval_merge_channel *base, size_t n_base,
                              const struct cascade_eval_tune_opts *o,
                              struct cascade_eval_tune_result *res, char *err, size_t errlen);

/* The chosen merge: the channels with a weight > 0, in the result's order,
 * into out (CASCADE_EVAL_MAX_CHANNELS entries). Returns their number. */
size_t cascade_eval_tune_merge(const struct cascade_eval_tune_result *res,
                               struct cascade_eval_merge_channel *out);

/* Write the chosen weights as a config fragment
 * {"orchestrator": {"channels": [...]}} to path: base merge channels in their
 * order (the config's object for the channel when cfg has one, so endpoint,
 * quota and timeout are kept) with the chosen weight, "enabled": false when
 * it is 0; then channels the tuning added. One exception: the orchestrator's
 * exploration channel (orchestrator.exploration.channel of cfg, default
 * "new", while new_share > 0) stays enabled at weight 0, because the
 * exploration slots are filled from its hits; *kept_enabled then names it
 * (else NULL). Returns 0, or CASCADE_EINVAL (cfg's orchestrator section),
 * CASCADE_EIO or CASCADE_ENOMEM with a message. */
int cascade_eval_tune_write_fragment(const char *path, const struct cascade_eval_tune_result *res,
                                     const cascade_config *cfg, const char **kept_enabled,
                                     char *err, size_t errlen);

#endif
