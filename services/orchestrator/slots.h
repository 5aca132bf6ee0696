/* Slots (插入位): fixed positions of the final list that hold inserted items
 * rather than the ranked order: the caller's items (RecommendRequest.slots:
 * operations, ads), items pinned in config (orchestrator.slots) and new-item
 * exploration (explore.h decides which items; this module places them). The
 * ranked items fill every other position in their order. Pure functions over
 * arena memory; thread-safe. */
#ifndef CASCADE_ORCH_SLOTS_H
#define CASCADE_ORCH_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"
#include "cascade/v1/recommender.pb-c.h"

/* Most slots of one Recommend request, and of orchestrator.slots. */
#define CASCADE_SLOTS_MAX 16
/* A slot source is 1..64 characters of [A-Za-z0-9._:-], the request-id
 * alphabet (checked by cascade_request_id_valid), because it is logged and
 * returned as is. */

/* One item to insert. */
struct cascade_slot {
    uint32_t position;              /* wanted 0-based position */
    Cascade__V1__Candidate *cand;   /* the item (borrowed) */
    Cascade__V1__ItemReason reason; /* INSERTED or EXPLORATION */
    const char *source;             /* borrowed; "exploration", the slot's source */
};

/* Check the slots of a Recommend request for a list of `count` items: at
 * most CASCADE_SLOTS_MAX, none missing, each position below count and used
 * once, item_id non-zero and used once, source a valid source. Returns 0 or
 * CASCADE_EINVAL (CASCADE_ETOOBIG for too many) with a message naming the
 * field in err ("slots[1].position 10 is outside the list (count 10)"). */
int cascade_slots_check(Cascade__V1__Slot *const *slots, size_t n, uint32_t count, char *err,
                        size_t errlen);

/* True when one of list[0..n) (NULL entries allowed) is item_id. */
bool cascade_slots_has_item(Cascade__V1__Candidate *const *list, size_t n, uint64_t item_id);

/* Build the final list of at most `count` items into a new arena array *out
 * (*n_out entries) and, for each entry, the slot it came from in
 * (*from)[i] (NULL for a ranked item). Slots claim their positions in array
 * order: a slot whose position an earlier slot took goes to the next free
 * position below it, and is left out when none is left, as is a slot whose
 * item an earlier slot already inserted. The ranked items ranked[0..n_ranked)
 * fill the other positions in their order, skipping the inserted items; when
 * they run out, the remaining slots follow in position order (a short list
 * gets its slot items appended). Returns 0 or CASCADE_ENOMEM. */
int cascade_slots_place(Cascade__V1__Candidate *const *ranked, size_t n_ranked, size_t count,
                        const struct cascade_slot *slots, size_t n_slots, cascade_arena *arena,
                        Cascade__V1__Candidate ***out, const struct cascade_slot ***from,
                        size_t *n_out);

#endif
