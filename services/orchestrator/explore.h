/* New-item exploration (新物品探索): a small share of every final list is
 * reserved for items recalled by the exploration channel ("new": young,
 * little-shown items) that survived filtering, so new items get exposure even
 * when the ranker would not put them in the list by itself. Which new items:
 * the ranker scores the channel's candidates with the rest, and each user's
 * slot goes to the new items it ranked highest for that user (a per-user
 * pick), provided they rank within the best max_rank_share of everything it
 * scored; none otherwise. Items the re-ranker already chose count towards the
 * share; the missing ones become slots at late positions, placed like every
 * other inserted item (slots.h). Pure functions over arena memory;
 * thread-safe. */
#ifndef CASCADE_ORCH_EXPLORE_H
#define CASCADE_ORCH_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"
#include "slots.h"

/* The parameters of one request (config defaults, overridden per experiment:
 * docs/orchestrator.md, "New-item exploration"). */
struct cascade_explore_params {
    double share;          /* share of the list reserved; 0 = off */
    double position;       /* where the first slot goes, as a share of the list, [0, 1] */
    double max_rank_share; /* a pick must rank within this share of the ranked set, (0, 1] */
};

/* Slots reserved in a list of `count` items: round(count × share), at least
 * 1 when count >= 5 and share > 0, at most count. */
size_t cascade_explore_slots(size_t count, double share);

/* The 0-based position of slot j of `slots` in a list of `count`, the first
 * at ⌊count × position⌋ and the others spread evenly over the rest of the
 * list: ⌊count × (position + (1 − position) × j / slots)⌋, at most count − 1
 * (count 10, position 0.8: 8; count 20, 2 slots, position 0.5: 10 and 15). */
size_t cascade_explore_position(size_t j, size_t slots, size_t count, double position);

/* The candidates of c[0..n) carrying a hit of `channel`, ordered by their rank
 * in that channel (best first; ties keep list order), at most `max` of them
 * (0 = all), into a new arena array *out of *n_out entries. Returns 0 or
 * CASCADE_ENOMEM. */
int cascade_explore_pool(Cascade__V1__Candidate *const *c, size_t n, const char *channel,
                         size_t max, cascade_arena *arena, Cascade__V1__Candidate ***out,
                         size_t *n_out);

/* The ranker's choice among the pool: ranked[0..n_ranked) is the rank stage's
 * whole answer, best first. The ranked copies of the pool items found among
 * its first ⌈max_rank_share × n_ranked⌉ entries, in the ranker's order, go to
 * a new arena array *out of *n_out entries; (*pos_out)[k] is the 0-based rank
 * position of (*out)[k] (pos_out may be NULL). Pool items ranked lower, or not
 * returned, are left out: an empty result means no new item scores well
 * enough to be shown. Returns 0 or CASCADE_ENOMEM. */
int cascade_explore_by_rank(Cascade__V1__Candidate *const *pool, size_t n_pool,
                            Cascade__V1__Candidate *const *ranked, size_t n_ranked,
                            double max_rank_share, cascade_arena *arena,
                            Cascade__V1__Candidate ***out, size_t *n_out, uint32_t **pos_out);

/* The exploration slots of a final list of `count` items, as slots to place
 * (slots.h): positions[0..n_pos) are the exploration positions (ascending),
 * ranked[0..n_ranked) the ranked list, and `reserved` the positions other
 * slots take, so only the first count − reserved − (exploration items
 * inserted) ranked items stay in the list. Items with a hit of `channel` that
 * stay count towards n_pos (the re-ranker chose them); with channel NULL only
 * pool items count (an impression target: items not boosted any more do not
 * take a boosted item's place, boost.h); for each missing one
 * the next pool item (best first) that is not among the staying ranked items
 * becomes fills[k] = {positions[k], item, EXPLORATION, "exploration"}, the
 * k-th at the k-th position. fills has room for n_pos entries. Returns the
 * number of fills (fewer when the pool runs out). Never fails. */
size_t cascade_explore_fill(Cascade__V1__Candidate *const *ranked, size_t n_ranked, size_t count,
                            size_t reserved, const uint32_t *positions, size_t n_pos,
                            Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                            struct cascade_slot *fills);

#endif
