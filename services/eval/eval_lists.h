/* Channel lists kept from an evaluation run: every test user's filtered list
 * of every channel (item indices and the channel's scores), so that merges
 * with other weights can be scored afterwards without calling Recall again
 * (weight tuning, and the untuned merge next to the tuned one). A merge of
 * the kept lists goes through the orchestrator's cascade_merge_channels, so
 * it ranks exactly as the merged row of cascade_eval_run does. */
#ifndef CASCADE_EVAL_LISTS_H
#define CASCADE_EVAL_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval_metrics.h"
#include "eval_run.h"
#include "eval_split.h"

/* List of (user k, channel c) is items[off[k·n_channels + c] .. off[k·n_channels + c + 1]),
 * best first, after the user's train items were removed and cut at the largest K. */
struct cascade_eval_lists {
    const struct cascade_eval_split *split; /* borrowed: users, held-out sets, train dataset */
    size_t n_channels;
    char channels[CASCADE_EVAL_MAX_CHANNELS][CASCADE_EVAL_NAME_MAX];
    size_t n_lists;   /* lists appended so far (users · channels once complete) */
    size_t *off;      /* n_lists + 1 */
    int64_t *time_us; /* n_lists: time of the Recall call that produced each list */
    size_t cap_lists;
    uint32_t *items; /* dataset item indices */
    float *scores;   /* the channel's score of each item (what the merge normalises) */
    size_t n, cap;
};

/* Start an empty set of lists for split (borrowed) and the channels
 * names[0..n_channels). Returns 0, CASCADE_EINVAL (0 or too many channels)
 * or CASCADE_ENOMEM. Free with cascade_eval_lists_free. */
int cascade_eval_lists_init(struct cascade_eval_lists *l, const struct cascade_eval_split *split,
                            const char (*names)[CASCADE_EVAL_NAME_MAX], size_t n_channels);

/* Append the next list (users in split order, channels in init order):
 * items[0..n) with their scores, produced in time_us. Returns 0 or
 * CASCADE_ENOMEM. */
int cascade_eval_lists_append(struct cascade_eval_lists *l, const uint32_t *items,
                              const float *scores, size_t n, int64_t time_us);

/* Free the arrays (safe on a zeroed or freed value). */
void cascade_eval_lists_free(struct cascade_eval_lists *l);

/* Index of channel `name`, or -1. */
int cascade_eval_lists_channel(const struct cascade_eval_lists *l, const char *name);

/* Whether channel c returned at least one candidate for at least one user. */
bool cascade_eval_lists_has_candidates(const struct cascade_eval_lists *l, size_t c);

/* Merge the kept lists of every user with merge[0..n_merge) (each channel
 * one of the lists' channels; weight 0 takes part like any weight, as in the
 * orchestrator), cap at max_k, and add each user's merged list to acc (set
 * up by the caller over the train catalogue); a user's time is that of its
 * merge channels' Recall calls plus the merge, as in the evaluation loop's
 * merged row. Returns 0, or CASCADE_EINVAL
 * (unknown channel, incomplete lists) / CASCADE_ENOMEM with a message. */
int cascade_eval_lists_merge(const struct cascade_eval_lists *l,
                             const struct cascade_eval_merge_channel *merge, size_t n_merge,
                             size_t max_k, struct cascade_eval_acc *acc, char *err, size_t errlen);

#endif
