/* An open-addressing hash map from item id to an accumulated score and an
 * index, allocated from a request arena (nothing to free). Recall uses it to
 * sum ItemCF scores and to merge channel hits by item. Linear probing over a
 * power-of-two table that doubles at 70% load. Not thread-safe. */
#ifndef CASCADE_IDMAP_H
#define CASCADE_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct cascade_idmap_entry {
    uint64_t key;
    double score;   /* caller-defined, 0 when the entry is created */
    uint32_t index; /* caller-defined, 0 when the entry is created */
    bool used;
};

typedef struct cascade_idmap {
    struct cascade_idmap_entry *slots;
    size_t cap;   /* power of two */
    size_t count; /* used slots */
    cascade_arena *arena;
} cascade_idmap;

/* Prepare an empty map sized for about `expected` keys, with memory from
 * arena. Returns 0 or CASCADE_ENOMEM. */
int cascade_idmap_init(cascade_idmap *m, cascade_arena *arena, size_t expected);

/* The entry for key, created zeroed (and *created set true) when absent.
 * NULL when the arena is exhausted. The pointer is valid until the next upsert. */
struct cascade_idmap_entry *cascade_idmap_upsert(cascade_idmap *m, uint64_t key, bool *created);

/* The entry for key, or NULL when absent. */
struct cascade_idmap_entry *cascade_idmap_find(const cascade_idmap *m, uint64_t key);

#endif
