/* New-item exploration (新物品探索): a share of every final list is reserved
 * for items recalled by the exploration channel ("new": young, little-shown
 * items) that survived filtering, so new items get exposure even when the
 * ranker, which knows little about them, would not pick them. Items the
 * re-ranker already chose count towards the share; the missing ones are
 * inserted at fixed positions. Pure functions over arena memory; thread-safe. */
#ifndef CASCADE_ORCH_EXPLORE_H
#define CASCADE_ORCH_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"

/* Slots reserved in a list of `count` items: round(count × share), at least
 * 1 when count >= 5 and share > 0, at most count. */
size_t cascade_explore_slots(size_t count, double share);

/* The 0-based position of slot j of `slots` in a list of `count`:
 * floor((j + 0.5) × count / slots), the middle of the j-th of `slots` equal
 * segments (count 10, 1 slot: position 5; count 20, 2 slots: 5 and 15). */
size_t cascade_explore_position(size_t j, size_t slots, size_t count);

/* The candidates of c[0..n) carrying a hit of `channel`, ordered by their rank
 * in that channel (best first; ties keep list order), into a new arena array
 * *out of *n_out entries. Returns 0 or CASCADE_ENOMEM. */
int cascade_explore_pool(Cascade__V1__Candidate *const *c, size_t n, const char *channel,
                         cascade_arena *arena, Cascade__V1__Candidate ***out, size_t *n_out);

/* Make the final list list[0..*n) (room for `count` entries, *n <= count)
 * hold at least cascade_explore_slots(count, share) items with a hit of
 * `channel`: with `have` such items already in it, the next `need` = slots −
 * have pool items not yet in the list are inserted, the k-th at position
 * cascade_explore_position(k, slots, count) (or at the end of a shorter
 * list), shifting later items down; items pushed past `count` fall off.
 * pool is best first (cascade_explore_pool). *inserted gets the number
 * inserted (fewer when the pool runs out). Never fails. */
void cascade_explore_insert(Cascade__V1__Candidate **list, size_t *n, size_t count,
                            Cascade__V1__Candidate *const *pool, size_t n_pool, const char *channel,
                            double share, size_t *inserted);

#endif
