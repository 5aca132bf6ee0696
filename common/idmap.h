/* The project's one u64 -> index map: open addressing from a 64-bit id to an
 * accumulated score and an index. Recall sums ItemCF scores and merges channel
 * hits with it; the data set, the trainers, the world generator and the
 * orchestrator map ids and (user, item) pairs to rows with it. Linear probing
 * over a power-of-two table that doubles at 70% load. Memory comes from a
 * request arena (nothing to free) or, with arena NULL, from the heap
 * (cascade_idmap_release frees it). Not thread-safe. */
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
    size_t cap;           /* power of two */
    size_t count;         /* used slots */
    cascade_arena *arena; /* NULL: the table is on the heap */
} cascade_idmap;

/* Prepare an empty map sized for about `expected` keys (it grows past that),
 * with memory from arena, or from the heap when arena is NULL. Returns 0 or
 * CASCADE_ENOMEM. */
int cascade_idmap_init(cascade_idmap *m, cascade_arena *arena, size_t expected);

/* Free a heap map's table (a no-op for an arena map, and for a map whose init
 * failed or that is already released). The map must be initialised again
 * before any other use. */
void cascade_idmap_release(cascade_idmap *m);

/* The entry for key, created zeroed (and *created set true) when absent.
 * NULL when memory is exhausted (the map is left as it was). The pointer is valid until the next
 * upsert. */
struct cascade_idmap_entry *cascade_idmap_upsert(cascade_idmap *m, uint64_t key, bool *created);

/* The entry for key, or NULL when absent. */
struct cascade_idmap_entry *cascade_idmap_find(const cascade_idmap *m, uint64_t key);

#endif
