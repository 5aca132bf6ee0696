/* The canonical data set in memory: users, items and events as read from or
 * written to users.tsv, items.tsv and events.tsv (format in docs/data.md).
 * Events refer to users and items by index into the arrays. A dataset is not
 * thread-safe to modify; sharing a finished one read-only between threads is fine. */
#ifndef CASCADE_BUILDER_DATASET_H
#define CASCADE_BUILDER_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "affinity.h"
#include "events.h"

#define CASCADE_DS_ID_MAX 64      /* longest user id (UserRecord.user_id bound) */
#define CASCADE_DS_GEOHASH_MAX 12 /* longest geohash */
#define CASCADE_DS_MAX_TAGS 8
#define CASCADE_DS_MAX_INTERESTS 8

struct cascade_ds_user {
    char id[CASCADE_DS_ID_MAX + 1];
    uint32_t age;    /* 0 = unknown */
    uint32_t gender; /* 0 unknown, 1 female, 2 male, 3 other */
    uint32_t city;   /* 0 = unknown */
    char geohash[CASCADE_DS_GEOHASH_MAX + 1];
    uint32_t n_interests;
    uint32_t interests[CASCADE_DS_MAX_INTERESTS]; /* declared category ids */
};

struct cascade_ds_item {
    uint64_t id;
    uint64_t author_id; /* 0 = unknown */
    uint32_t category;  /* 0 = unknown */
    uint32_t n_tags;
    uint32_t tags[CASCADE_DS_MAX_TAGS];
    int64_t created_at; /* Unix seconds; 0 = unknown */
    char geohash[CASCADE_DS_GEOHASH_MAX + 1];
    uint32_t city;
    uint32_t media_type; /* 0 unknown, 1 note, 2 video */
    float duration_s;    /* video length; 0 for notes */
};

struct cascade_ds_event {
    int64_t ts;    /* Unix seconds */
    uint32_t user; /* index into users */
    uint32_t item; /* index into items */
    uint32_t type; /* enum cascade_event_type (events.h) */
    float value;   /* seconds played for PLAY, else 0 */
};

struct cascade_ds_index; /* id -> index hash maps, internal */

typedef struct cascade_dataset {
    struct cascade_ds_user *users;
    size_t n_users;
    struct cascade_ds_item *items;
    size_t n_items;
    struct cascade_ds_event *events; /* sorted by ts after reading */
    size_t n_events;
    /* Users that appear only in events.tsv (added with an empty profile). */
    size_t implicit_users;
    /* Events dropped while reading because their item is not in items.tsv. */
    size_t unknown_item_events;
    /* Day partitions (events/YYYY-MM-DD.tsv) read after events.tsv. */
    size_t partitions;
    size_t online_items; /* rows read from items.online.tsv (new or replacing) */
    /* Internal: capacities and the id maps. */
    size_t cap_users, cap_items, cap_events;
    struct cascade_ds_index *index;
} cascade_dataset;

/* An empty dataset; NULL when out of memory. Free with cascade_dataset_destroy (NULL-safe). */
cascade_dataset *cascade_dataset_create(void);
void cascade_dataset_destroy(cascade_dataset *ds);

/* Append a user / item (copied). CASCADE_EINVAL when the id is already
 * present or empty, CASCADE_ENOMEM when out of memory. *index (may be NULL)
 * receives the new index. */
int cascade_dataset_add_user(cascade_dataset *ds, const struct cascade_ds_user *u, size_t *index);
int cascade_dataset_add_item(cascade_dataset *ds, const struct cascade_ds_item *it, size_t *index);

/* Append an event by ids. An unknown user is added with an empty profile
 * (counted in implicit_users); an unknown item returns CASCADE_ENOTFOUND. */
int cascade_dataset_add_event(cascade_dataset *ds, int64_t ts, const char *user_id,
                              uint64_t item_id, uint32_t type, float value);
/* Append an event by indices (no checks beyond bounds). */
int cascade_dataset_add_event_idx(cascade_dataset *ds, int64_t ts, uint32_t user, uint32_t item,
                                  uint32_t type, float value);

/* Index of a user / item id, or -1. */
long cascade_dataset_find_user(const cascade_dataset *ds, const char *user_id);
long cascade_dataset_find_item(const cascade_dataset *ds, uint64_t item_id);

/* Stable sort of the events by time (ties keep their order). */
int cascade_dataset_sort_events(cascade_dataset *ds);

/* Read dir/users.tsv, dir/items.tsv, dir/items.online.tsv (if present:
 * items put online, exported by cascade-build) and dir/events.tsv, then the day
 * partitions dir/events/YYYY-MM-DD.tsv (cascade-consumer's Feedback log,
 * same format, oldest first; other names there are ignored). On failure returns a
 * negative code with "path:line: what is wrong" in err and *out NULL. Events
 * are sorted by time if the file is not. Caller destroys *out. */
int cascade_dataset_read(const char *dir, cascade_dataset **out, char *err, size_t errlen);

/* How far to read the day partitions: the committed length of each date
 * (a snapshot's, services/builder/import/snapshot.h), every line of it a whole line. */
struct cascade_ds_partition_limit {
    char date[11]; /* YYYY-MM-DD */
    int64_t bytes;
};
struct cascade_ds_partition_limits {
    const struct cascade_ds_partition_limit *dates; /* borrowed */
    size_t n;
};

/* The day partitions dir/events/YYYY-MM-DD.tsv present now, each with its
 * size in bytes, oldest first, into *out (caller frees; NULL when none). No
 * directory: 0 and none. Else CASCADE_EIO / CASCADE_ENOMEM with the path in
 * err. */
int cascade_dataset_partition_sizes(const char *dir, struct cascade_ds_partition_limit **out,
                                    size_t *n_out, char *err, size_t errlen);

/* cascade_dataset_read, but each day partition is read only up to the length
 * limits gives its date, and a partition whose date limits does not list is
 * not read at all (written after the limits were taken). limits NULL: read
 * every partition whole (cascade_dataset_read). */
int cascade_dataset_read_until(const char *dir, const struct cascade_ds_partition_limits *limits,
                               cascade_dataset **out, char *err, size_t errlen);

/* Items added online (PutItems), exported by cascade-build from
 * {ns}:items:online (online_items.h); read after items.tsv. */
#define CASCADE_DS_ONLINE_ITEMS "items.online.tsv"

/* Add the item, or replace the record of a known id in place (its index
 * stays). 0, or CASCADE_ENOMEM / CASCADE_ETOOBIG. */
int cascade_dataset_put_item(cascade_dataset *ds, const struct cascade_ds_item *it);

/* Read dir/items.online.tsv (items.tsv's format) into ds with
 * cascade_dataset_put_item: a new id is added, a known one replaced (the
 * online record is the newer). No file: 0, nothing read. Errors as
 * cascade_dataset_read. cascade_dataset_read calls it after items.tsv. */
int cascade_dataset_read_online_items(cascade_dataset *ds, const char *dir, char *err,
                                      size_t errlen);

/* Write ds's items as dir/name in items.tsv's format (temporary name, then
 * renamed into place). 0, or CASCADE_EIO with the path in err. */
int cascade_dataset_write_items(const cascade_dataset *ds, const char *dir, const char *name,
                                char *err, size_t errlen);

/* Write the three TSVs (with header lines) into dir, which must exist. Each
 * file is written to a temporary name and renamed into place. */
int cascade_dataset_write(const cascade_dataset *ds, const char *dir, char *err, size_t errlen);

/* Write dir/name through body(f, ctx) the same way: a temporary name, then
 * renamed into place (for the builder's other TSVs, e.g. datagen's truth
 * files). 0, or CASCADE_EIO with the path and reason in err. */
int cascade_dataset__write_tsv(const char *dir, const char *name,
                               void (*body)(FILE *f, const void *ctx), const void *ctx, char *err,
                               size_t errlen);

/* struct cascade_behaviour_weights: common/affinity.h. */
/* The defaults of common/events.h (cascade_event_interest_weight): click 1,
 * like 2, collect 3, share 3, follow 4; impression, play, dislike, hide_author 0. */
void cascade_behaviour_weights_default(struct cascade_behaviour_weights *w);

/* Apply "click=1,like=2,..." on top of *w. CASCADE_EINVAL with a message on a
 * bad name or value. */
int cascade_behaviour_weights_parse(struct cascade_behaviour_weights *w, const char *spec,
                                    char *err, size_t errlen);

/* Events of each user in time order, as a CSR index: the events of user u are
 * events[idx[off[u]] .. idx[off[u+1]]). Free with cascade_user_events_free. */
struct cascade_user_events {
    size_t *off; /* n_users + 1 */
    uint32_t *idx;
};
int cascade_user_events_build(const cascade_dataset *ds, struct cascade_user_events *ue);
void cascade_user_events_free(struct cascade_user_events *ue);

/* mkdir -p: create path and missing parents (mode 0755). 0 or CASCADE_EIO with err. */
int cascade_mkdir_p(const char *path, char *err, size_t errlen);

/* Latest event time in the data set (0 when there are no events). */
int64_t cascade_dataset_last_ts(const cascade_dataset *ds);

#endif
