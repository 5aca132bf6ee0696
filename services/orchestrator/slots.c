/* Slots: checking a request's slots and placing inserted items at their
 * positions among the ranked items. */
#include "slots.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "request.h"

int cascade_slots_check(Cascade__V1__Slot *const *slots, size_t n, uint32_t count, char *err,
                        size_t errlen)
{
    if (n > CASCADE_SLOTS_MAX) {
        snprintf(err, errlen, "slots: %zu entries, at most %d", n, CASCADE_SLOTS_MAX);
        return CASCADE_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__Slot *s = slots[i];
        if (s == NULL) {
            snprintf(err, errlen, "slots[%zu] is missing", i);
            return CASCADE_EINVAL;
        }
        if (s->position >= count) {
            snprintf(err, errlen, "slots[%zu].position %u is outside the list (count %u)", i,
                     s->position, count);
            return CASCADE_EINVAL;
        }
        if (s->item_id == 0) {
            snprintf(err, errlen, "slots[%zu].item_id is 0", i);
            return CASCADE_EINVAL;
        }
        if (!cascade_request_id_valid(s->source)) {
            snprintf(err, errlen, "slots[%zu].source is not 1..%d characters of [A-Za-z0-9._:-]", i,
                     CASCADE_REQUEST_ID_MAX);
            return CASCADE_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (slots[j]->position == s->position) {
                snprintf(err, errlen, "slots[%zu].position %u is also slots[%zu]'s", i, s->position,
                         j);
                return CASCADE_EINVAL;
            }
            if (slots[j]->item_id == s->item_id) {
                snprintf(err, errlen, "slots[%zu].item_id %llu is also slots[%zu]'s", i,
                         (unsigned long long)s->item_id, j);
                return CASCADE_EINVAL;
            }
        }
    }
    return 0;
}

bool cascade_slots_has_item(Cascade__V1__Candidate *const *list, size_t n, uint64_t item_id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && list[i]->item_id == item_id)
            return true;
    return false;
}

static bool claimed_item(const struct cascade_slot *const *claimed, size_t count, uint64_t id)
{
    for (size_t p = 0; p < count; p++)
        if (claimed[p] && claimed[p]->cand->item_id == id)
            return true;
    return false;
}

int cascade_slots_place(Cascade__V1__Candidate *const *ranked, size_t n_ranked, size_t count,
                        const struct cascade_slot *slots, size_t n_slots, cascade_arena *arena,
                        Cascade__V1__Candidate ***out, const struct cascade_slot ***from,
                        size_t *n_out)
{
    const struct cascade_slot **claimed = cascade_arena_calloc(arena, count + 1, sizeof *claimed);
    Cascade__V1__Candidate **list = cascade_arena_calloc(arena, count + 1, sizeof *list);
    const struct cascade_slot **origin = cascade_arena_calloc(arena, count + 1, sizeof *origin);
    size_t n = 0, r = 0;
    *out = NULL;
    *from = NULL;
    *n_out = 0;
    if (claimed == NULL || list == NULL || origin == NULL)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_slots; i++) {
        const struct cascade_slot *s = &slots[i];
        if (s->cand == NULL || claimed_item(claimed, count, s->cand->item_id))
            continue;
        size_t p = s->position;
        while (p < count && claimed[p])
            p++;
        if (p < count)
            claimed[p] = s;
    }
    for (size_t p = 0; p < count; p++) {
        if (claimed[p]) {
            origin[n] = claimed[p];
            list[n++] = claimed[p]->cand;
            continue;
        }
        while (r < n_ranked &&
               (ranked[r] == NULL || claimed_item(claimed, count, ranked[r]->item_id)))
            r++;
        if (r < n_ranked) {
            list[n++] = ranked[r++];
            continue;
        }
        /* The ranked items ran out: the slots still to come close the gap. */
        for (size_t q = p + 1; q < count; q++)
            if (claimed[q]) {
                origin[n] = claimed[q];
                list[n++] = claimed[q]->cand;
            }
        break;
    }
    *out = list;
    *from = origin;
    *n_out = n;
    return 0;
}
