/* The flags that describe a synthetic world, shared by cascade-datagen and
 * the tools that regenerate its ground truth from the same command line
 * (cascade-sim). */
#include "datagen.h"

size_t cascade_datagen_world_flags(struct cascade_datagen_opts *o,
                                   struct cascade_datagen_world_flags *v, struct cascade_flag *out)
{
    *v = (struct cascade_datagen_world_flags){o->users,   o->items,  o->events, o->categories,
                                              o->authors, o->cities, o->days};
    const struct cascade_flag flags[CASCADE_DATAGEN_WORLD_FLAGS] = {
        {"users", CASCADE_FLAG_U64, &v->users, "number of users", 1, 5e7},
        {"items", CASCADE_FLAG_U64, &v->items, "number of items", 1, 5e7},
        {"events", CASCADE_FLAG_U64, &v->events, "impressions to draw (labels come on top)", 0,
         1e10},
        {"categories", CASCADE_FLAG_U64, &v->categories, "number of categories", 1, 1e5},
        {"authors", CASCADE_FLAG_U64, &v->authors, "number of authors", 1, 1e8},
        {"cities", CASCADE_FLAG_U64, &v->cities, "number of cities", 1, 1e5},
        {"days", CASCADE_FLAG_U64, &v->days, "length of the event log in days", 1, 3650},
        {"seed", CASCADE_FLAG_U64, &o->seed, "random seed (same seed, same files)", 0, 0},
        {"end-ts", CASCADE_FLAG_I64, &o->end_ts,
         "end of the log, Unix seconds (0 = today 00:00 UTC; set it for byte-identical reruns)", 0,
         0},
    };
    for (size_t i = 0; i < CASCADE_DATAGEN_WORLD_FLAGS; i++)
        out[i] = flags[i];
    return CASCADE_DATAGEN_WORLD_FLAGS;
}

void cascade_datagen_world_flags_apply(const struct cascade_datagen_world_flags *v,
                                       struct cascade_datagen_opts *o)
{
    o->users = v->users;
    o->items = v->items;
    o->events = v->events;
    o->categories = (uint32_t)v->categories;
    o->authors = (uint32_t)v->authors;
    o->cities = (uint32_t)v->cities;
    o->days = (uint32_t)v->days;
}
