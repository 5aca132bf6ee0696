/* The evaluation loop: for every test user of a split, each channel is run
 * through the Recall stage's library call (cascade_recall_run, real Redis),
 * the user's train items are removed from its list, and the list is scored
 * against the user's held-out items; the filtered lists of the merge channels
 * are then combined with the orchestrator's cascade_merge_channels (weights,
 * quotas, capped at the largest K) and scored the same way. */
#ifndef CASCADE_EVAL_RUN_H
#define CASCADE_EVAL_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval_metrics.h"
#include "eval_split.h"
#include "recall.h"

#define CASCADE_EVAL_MAX_CHANNELS 32
#define CASCADE_EVAL_NAME_MAX 64
/* Rows of a result: the channels, the merged row and one more merged row
 * (the untuned merge next to the tuned one). */
#define CASCADE_EVAL_MAX_ROWS (CASCADE_EVAL_MAX_CHANNELS + 2)

struct cascade_eval_lists; /* eval_lists.h */

/* A channel of the merge: its weight and how many of its candidates count. */
struct cascade_eval_merge_channel {
    char name[CASCADE_EVAL_NAME_MAX];
    double weight;  /* >= 0 */
    uint32_t quota; /* > 0 */
};

struct cascade_eval_run_opts {
    size_t ks[CASCADE_EVAL_MAX_KS]; /* ascending; the largest is each channel's list length */
    size_t n_ks;
    char channels[CASCADE_EVAL_MAX_CHANNELS][CASCADE_EVAL_NAME_MAX]; /* evaluated, in order */
    size_t n_channels;
    struct cascade_eval_merge_channel merge[CASCADE_EVAL_MAX_CHANNELS]; /* each one of channels */
    size_t n_merge;                                                     /* 0 = no merged row */
    uint32_t max_quota;     /* the Recall stage's recall.max_quota (requests are capped to it) */
    int64_t request_time_s; /* UserContext.request_time_s sent with every request */
    bool quiet;             /* no progress lines */
    const char *label;      /* progress line prefix; NULL = "eval" */
    /* When set, every user's filtered channel lists are kept here
     * (cascade_eval_run initialises it; the caller frees it with
     * cascade_eval_lists_free, also after a failure). */
    struct cascade_eval_lists *capture;
};

/* One row per channel in option order, then "merged" when n_merge > 0;
 * callers may add a row after those (cascade_eval_result_add_row). */
struct cascade_eval_result {
    size_t n_rows;
    char names[CASCADE_EVAL_MAX_ROWS][CASCADE_EVAL_NAME_MAX];
    struct cascade_eval_acc acc[CASCADE_EVAL_MAX_ROWS];
    size_t users;
    double seconds;
};

/* Evaluate every test user of split (its train dataset maps item ids to
 * indices) through recall (borrowed; built on split->train in its namespace).
 * Returns 0, or a negative code with err naming the channel and user
 * ("channel itemcf, user 42: ..."); *res is valid only on success and is
 * freed with cascade_eval_result_free. */
int cascade_eval_run(cascade_recall *recall, const struct cascade_eval_split *split,
                     const struct cascade_eval_run_opts *o, struct cascade_eval_result *res,
                     char *err, size_t errlen);

/* Free the accumulators (safe on a zeroed or freed result). */
void cascade_eval_result_free(struct cascade_eval_result *res);

/* Append an empty row `name` with the K values and catalogue of the first
 * row; *acc points at its accumulator. Returns 0, CASCADE_EINVAL (no row
 * yet, or no room) or CASCADE_ENOMEM. */
int cascade_eval_result_add_row(struct cascade_eval_result *res, const char *name,
                                struct cascade_eval_acc **acc);

/* Index of the row named `name`, or -1. */
int cascade_eval_result_row(const struct cascade_eval_result *res, const char *name);

#endif
