/* The event-type table: EventType number, lower-case name and default
 * interest weight, in one place for the builder, the orchestrator and the CLI. */
#include "events.h"

#include <string.h>

#include "cascade/v1/common.pb-c.h"
#include "error.h"

/* Our enum is the proto's; a renumbered .proto must fail to compile. (The
 * names are checked against the proto's descriptor in tests/unit/test_events.c.) */
#define SAME(ours, proto) ((int)(ours) == (int)CASCADE__V1__EVENT_TYPE__EVENT_TYPE_##proto)
_Static_assert(SAME(CASCADE_EV_IMPRESSION, IMPRESSION) && SAME(CASCADE_EV_CLICK, CLICK) &&
                   SAME(CASCADE_EV_LIKE, LIKE) && SAME(CASCADE_EV_COLLECT, COLLECT) &&
                   SAME(CASCADE_EV_SHARE, SHARE) && SAME(CASCADE_EV_FOLLOW, FOLLOW) &&
                   SAME(CASCADE_EV_PLAY, PLAY) && SAME(CASCADE_EV_DISLIKE, DISLIKE) &&
                   SAME(CASCADE_EV_HIDE_AUTHOR, HIDE_AUTHOR),
               "enum cascade_event_type must match cascade.v1.EventType");
#undef SAME

/* Indexed by type; row 0 (UNSPECIFIED) is never returned. */
static const struct {
    const char *name;
    float interest_weight;
} event_types[CASCADE_EV_MAX + 1] = {
    [CASCADE_EV_IMPRESSION] = {"impression", 0.0f},
    [CASCADE_EV_CLICK] = {"click", 1.0f},
    [CASCADE_EV_LIKE] = {"like", 2.0f},
    [CASCADE_EV_COLLECT] = {"collect", 3.0f},
    [CASCADE_EV_SHARE] = {"share", 3.0f},
    [CASCADE_EV_FOLLOW] = {"follow", 4.0f},
    [CASCADE_EV_PLAY] = {"play", 0.0f},
    [CASCADE_EV_DISLIKE] = {"dislike", 0.0f},
    [CASCADE_EV_HIDE_AUTHOR] = {"hide_author", 0.0f},
};

const char *cascade_event_type_name(uint32_t type)
{
    return type >= 1 && type <= CASCADE_EV_MAX ? event_types[type].name : NULL;
}

int cascade_event_type_parse(const char *name, uint32_t *type)
{
    for (uint32_t t = 1; name && t <= CASCADE_EV_MAX; t++)
        if (strcmp(name, event_types[t].name) == 0) {
            *type = t;
            return 0;
        }
    return CASCADE_EINVAL;
}

float cascade_event_interest_weight(uint32_t type)
{
    return type >= 1 && type <= CASCADE_EV_MAX ? event_types[type].interest_weight : 0.0f;
}
