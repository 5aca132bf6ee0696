/* The u64 -> index map (see idmap.h): linear probing, arena- or heap-backed,
 * grows by rehashing into a table twice the size. */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* The slot hash is cascade_hash64(&key, 8, IDMAP_SEED) — XXH3 of the key's
 * eight bytes — computed by libxxhash's own header code inlined here
 * (XXH_INLINE_ALL: static copies, no clash with the library's symbols), so
 * the compiler sees the constant length and keeps only the 8-byte path: the
 * same value (so the same table layout and iteration order that recall's
 * walks over the slots rely on) without a library call and its length
 * dispatch per lookup, the map's largest cost. test_recall's
 * test_idmap_layout_is_xxh3 checks the layout against cascade_hash64. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define IDMAP_SEED 0x6361736361646531ULL /* "cascade1" */

static size_t idmap_slot(const cascade_idmap *m, uint64_t key)
{
    return (size_t)XXH3_64bits_withSeed(&key, sizeof key, IDMAP_SEED) & (m->cap - 1);
}

static int idmap_alloc(cascade_idmap *m, size_t cap)
{
    struct cascade_idmap_entry *slots =
        m->arena ? cascade_arena_calloc(m->arena, cap, sizeof *slots) : calloc(cap, sizeof *slots);
    if (!slots)
        return CASCADE_ENOMEM;
    m->slots = slots;
    m->cap = cap;
    m->count = 0;
    return 0;
}

int cascade_idmap_init(cascade_idmap *m, cascade_arena *arena, size_t expected)
{
    size_t cap = 16;
    while (cap < expected + expected / 2 + 1)
        cap *= 2;
    memset(m, 0, sizeof *m);
    m->arena = arena;
    return idmap_alloc(m, cap);
}

void cascade_idmap_release(cascade_idmap *m)
{
    if (!m)
        return;
    if (!m->arena)
        free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

/* Rehash every used slot into a table of twice the capacity. */
static int idmap_grow(cascade_idmap *m)
{
    struct cascade_idmap_entry *old = m->slots;
    size_t old_cap = m->cap;
    int rc = idmap_alloc(m, old_cap * 2);
    if (rc != 0) {
        m->slots = old; /* keep the old table usable */
        m->cap = old_cap;
        return rc;
    }
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].used)
            continue;
        size_t s = idmap_slot(m, old[i].key);
        while (m->slots[s].used)
            s = (s + 1) & (m->cap - 1);
        m->slots[s] = old[i];
        m->count++;
    }
    if (!m->arena)
        free(old);
    return 0;
}

struct cascade_idmap_entry *cascade_idmap_upsert(cascade_idmap *m, uint64_t key, bool *created)
{
    if (created)
        *created = false;
    /* One probe finds the key or the free slot it goes to (probed again only
     * after the table grew). */
    size_t s = idmap_slot(m, key);
    for (; m->slots[s].used; s = (s + 1) & (m->cap - 1))
        if (m->slots[s].key == key)
            return &m->slots[s];
    if ((m->count + 1) * 10 > m->cap * 7) {
        if (idmap_grow(m) != 0)
            return NULL;
        for (s = idmap_slot(m, key); m->slots[s].used;)
            s = (s + 1) & (m->cap - 1);
    }
    struct cascade_idmap_entry *e = &m->slots[s];
    e->used = true;
    e->key = key;
    e->score = 0;
    e->index = 0;
    m->count++;
    if (created)
        *created = true;
    return e;
}

struct cascade_idmap_entry *cascade_idmap_find(const cascade_idmap *m, uint64_t key)
{
    size_t s = idmap_slot(m, key);
    while (m->slots[s].used) {
        if (m->slots[s].key == key)
            return &m->slots[s];
        s = (s + 1) & (m->cap - 1);
    }
    return NULL;
}
