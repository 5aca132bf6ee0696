/* The id → row maps of a two-tower model version: `<version>.maps.tsv`
 * written by cascade-build train-two-tower (users, items, authors,
 * categories, cities; row 0 is every table's "unknown" row) and read by the
 * Recall two_tower channel and by warm starts of the trainer. */
#ifndef CASCADE_TWOTOWER_MAPS_H
#define CASCADE_TWOTOWER_MAPS_H

#include <stddef.h>
#include <stdint.h>

enum cascade_tt_map_kind {
    CASCADE_TT_MAP_USER,
    CASCADE_TT_MAP_ITEM,
    CASCADE_TT_MAP_AUTHOR,
    CASCADE_TT_MAP_CATEGORY,
    CASCADE_TT_MAP_CITY,
    CASCADE_TT_MAP_KINDS
};

typedef struct cascade_twotower_maps cascade_twotower_maps;

/* The key of a user id in the maps (a 64-bit hash of the id string); items,
 * authors, categories and cities are keyed by their numeric ids. */
uint64_t cascade_twotower_user_key(const char *user_id);

/* Read path ("cascade-two-tower-maps\t1", "ref_ts\t<s>", then
 * kind<TAB>id<TAB>row lines; unknown kinds are skipped). 0, or CASCADE_EIO /
 * CASCADE_EFORMAT ("path:line: ...") / CASCADE_ENOMEM with err. */
int cascade_twotower_maps_read(const char *path, cascade_twotower_maps **out, char *err,
                               size_t errlen);

/* NULL is a no-op. */
void cascade_twotower_maps_destroy(cascade_twotower_maps *m);

/* The row of key in the kind's table, 0 when unknown. */
uint32_t cascade_twotower_maps_row(const cascade_twotower_maps *m, enum cascade_tt_map_kind kind,
                                   uint64_t key);

/* Entries in the kind's table. */
size_t cascade_twotower_maps_count(const cascade_twotower_maps *m, enum cascade_tt_map_kind kind);

/* The reference time the item ages were computed at (the "ref_ts" line). */
int64_t cascade_twotower_maps_ref_ts(const cascade_twotower_maps *m);

/* Feature buckets of the two towers, shared by training (cascade-build
 * train two-tower) and serving (the two_tower recall channel), so both see
 * the same values: the user's age (0 unknown, then <18, 18-24, 25-34, 35-44,
 * 45-54, 55+) and an item's age at time now (0 unknown, then < 1 day,
 * < 1 week, < 30 days, < 180 days, older). Pure; thread-safe. */
uint32_t cascade_twotower_user_age_bucket(uint32_t age);
uint32_t cascade_twotower_item_age_bucket(int64_t created_at, int64_t now);

#endif
