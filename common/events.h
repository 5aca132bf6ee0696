/* User behaviour event types: the cascade.v1.EventType numbers of
 * proto/cascade/v1/common.proto, their lower-case names (as written in
 * events.tsv and in the Redis event stream's `type` field), and the default
 * interest weight of each, shared by the offline builder and the online
 * Feedback path so both count a behaviour the same. Pure functions over a
 * static table; thread-safe. */
#ifndef CASCADE_EVENTS_H
#define CASCADE_EVENTS_H

#include <stdint.h>

/* The EventType numbers (0 = UNSPECIFIED is not a valid event). */
enum cascade_event_type {
    CASCADE_EV_IMPRESSION = 1,
    CASCADE_EV_CLICK = 2,
    CASCADE_EV_LIKE = 3,
    CASCADE_EV_COLLECT = 4,
    CASCADE_EV_SHARE = 5,
    CASCADE_EV_FOLLOW = 6,
    CASCADE_EV_PLAY = 7,
    CASCADE_EV_DISLIKE = 8,     /* not interested in this item */
    CASCADE_EV_HIDE_AUTHOR = 9, /* not interested in this item's author */
};
#define CASCADE_EV_MAX 9

/* The names in type order, for messages. */
#define CASCADE_EV_NAMES                                                                           \
    "impression, click, like, collect, share, follow, play, dislike, hide_author"

/* Lower-case name of an event type ("click"), or NULL when type is not
 * 1..CASCADE_EV_MAX. Static string. */
const char *cascade_event_type_name(uint32_t type);

/* The type named by a lower-case name ("click"; exact match, no numbers).
 * Returns 0 and *type, or CASCADE_EINVAL for an unknown or NULL name. */
int cascade_event_type_parse(const char *name, uint32_t *type);

/* Default interest weight of a behaviour, the strength with which it counts
 * towards a user's interests (last-n list, ItemCF, hot scores, labels):
 * click 1, like 2, collect 3, share 3, follow 4; impression, play, dislike,
 * hide_author and unknown types 0 ("not an interest signal"). cascade-build (whose
 * --weights may override them for a run) and Feedback both start from these,
 * so last-n lists written offline and online agree. */
float cascade_event_interest_weight(uint32_t type);

#endif
