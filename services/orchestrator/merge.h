/* Channel merge (多路召回合并): combines the lists of several recall channels
 * into one deduplicated candidate list. Each channel's scores are normalised
 * by that channel's maximum, an item's recall_score is the weighted sum of its
 * normalised scores over every channel that found it, and every channel hit
 * is kept as provenance. Pure function over arena memory; thread-safe. */
#ifndef CASCADE_ORCH_MERGE_H
#define CASCADE_ORCH_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

/* One channel's output as returned by Recall (best first). */
struct cascade_merge_input {
    const char *channel; /* channel name, borrowed (written into the hits) */
    double weight;       /* merge weight, >= 0 */
    uint32_t quota;      /* keep at most this many of the channel's candidates */
    Cascade__V1__Candidate *const *candidates; /* borrowed */
    size_t n_candidates;
};

/* The score an item has in `channel`: the score of its ChannelHit naming the
 * channel, else of its first hit, else its recall_score. */
float cascade_merge_channel_score(const Cascade__V1__Candidate *c, const char *channel);

/* The ChannelHit of candidate c naming `channel`, or NULL. */
const Cascade__V1__ChannelHit *cascade_merge_find_hit(const Cascade__V1__Candidate *c,
                                                      const char *channel);

/* How many of c[0..n) carry a ChannelHit naming `channel` (the per-channel
 * contribution of the debug trace: kept after merge, in the final list). */
size_t cascade_merge_count_channel(Cascade__V1__Candidate *const *c, size_t n, const char *channel);

/* The same for n_names channels at once: counts[k] = how many of c[0..n)
 * carry a hit naming names[k]. The merge's own hits point at the name
 * strings it was given, so passing those same pointers finds them without
 * comparing strings. */
void cascade_merge_count_channels(Cascade__V1__Candidate *const *c, size_t n,
                                  const char *const *names, size_t n_names, size_t *counts);

/* Merge n channel outputs. Per channel: candidates beyond `quota` (in the
 * channel's order) and repeats of an item already seen in that channel are
 * ignored; scores are normalised as norm = max(score, 0) / max_score (all 1
 * when the channel's best score is <= 0). Across channels:
 *   recall_score(item) = Σ_channels weight_c · norm_c(item)
 * and each contributing channel adds a ChannelHit {channel, raw score, rank
 * in the channel}. The result is sorted by recall_score descending (ties by
 * item id ascending) and capped at max_out. New candidates and hits are
 * allocated in arena; channel names and attrs are borrowed from the inputs.
 * Returns 0 or CASCADE_ENOMEM. */
int cascade_merge_channels(const struct cascade_merge_input *in, size_t n, size_t max_out,
                           cascade_arena *arena, Cascade__V1__Candidate ***out, size_t *n_out);

#endif
