/* Reader of a two-tower version's id maps (twotower_maps.h): one open
 * addressing table per kind, key → row, rows ≥ 1 so 0 marks an empty slot. */
#include "twotower_maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"

struct tt_table {
    uint64_t *keys;
    uint32_t *rows;
    size_t cap, count; /* cap: a power of two */
};

struct cascade_twotower_maps {
    struct tt_table t[CASCADE_TT_MAP_KINDS];
    int64_t ref_ts;
};

static const char *const kind_names[CASCADE_TT_MAP_KINDS] = {"user", "item", "author", "category",
                                                             "city"};

uint64_t cascade_twotower_user_key(const char *user_id)
{
    return cascade_hash_str(user_id, 0);
}

static int table_init(struct tt_table *t, size_t n)
{
    t->cap = 16;
    while (t->cap < 2 * n + 16)
        t->cap <<= 1;
    t->keys = calloc(t->cap, sizeof(*t->keys));
    t->rows = calloc(t->cap, sizeof(*t->rows));
    return t->keys && t->rows ? 0 : CASCADE_ENOMEM;
}

static size_t table_slot(const struct tt_table *t, uint64_t key)
{
    size_t i = (size_t)cascade_hash64(&key, sizeof(key), 0x7477) & (t->cap - 1);
    while (t->rows[i] != 0 && t->keys[i] != key)
        i = (i + 1) & (t->cap - 1);
    return i;
}

static void table_put(struct tt_table *t, uint64_t key, uint32_t row)
{
    size_t i = table_slot(t, key);
    t->count += t->rows[i] == 0;
    t->keys[i] = key;
    t->rows[i] = row;
}

void cascade_twotower_maps_destroy(cascade_twotower_maps *m)
{
    if (!m)
        return;
    for (int k = 0; k < CASCADE_TT_MAP_KINDS; k++) {
        free(m->t[k].keys);
        free(m->t[k].rows);
    }
    free(m);
}

static int kind_of(const char *name)
{
    for (int k = 0; k < CASCADE_TT_MAP_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

/* Parse the lines after the header into m. */
static int read_lines(cascade_twotower_maps *m, FILE *f, const char *path, char *err, size_t errlen)
{
    char line[256], kind[16], key[128];
    unsigned long row;
    for (size_t ln = 2; fgets(line, sizeof(line), f); ln++) {
        if (sscanf(line, "ref_ts\t%" SCNd64, &m->ref_ts) == 1)
            continue;
        if (sscanf(line, "%15[^\t]\t%127[^\t]\t%lu", kind, key, &row) != 3 || row == 0 ||
            row > UINT32_MAX) {
            snprintf(err, errlen, "%s:%zu: expected kind<TAB>id<TAB>row", path, ln);
            return CASCADE_EFORMAT;
        }
        int k = kind_of(kind);
        if (k < 0)
            continue;
        uint64_t id =
            k == CASCADE_TT_MAP_USER ? cascade_twotower_user_key(key) : strtoull(key, NULL, 10);
        table_put(&m->t[k], id, (uint32_t)row);
    }
    return 0;
}

int cascade_twotower_maps_read(const char *path, cascade_twotower_maps **out, char *err,
                               size_t errlen)
{
    char line[256];
    size_t n = 0;
    int rc = CASCADE_ENOMEM;
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CASCADE_EIO;
    }
    while (fgets(line, sizeof(line), f))
        n++;
    rewind(f);
    cascade_twotower_maps *m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    for (int k = 0; k < CASCADE_TT_MAP_KINDS; k++)
        if (table_init(&m->t[k], n) != 0)
            goto out;
    rc = CASCADE_EFORMAT;
    if (!fgets(line, sizeof(line), f) || strncmp(line, "cascade-two-tower-maps\t1", 24) != 0) {
        snprintf(err, errlen, "%s: not a two-tower maps file (version 1)", path);
        goto out;
    }
    rc = read_lines(m, f, path, err, errlen);
out:
    fclose(f);
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    if (rc != 0)
        cascade_twotower_maps_destroy(m);
    else
        *out = m;
    return rc;
}

uint32_t cascade_twotower_maps_row(const cascade_twotower_maps *m, enum cascade_tt_map_kind kind,
                                   uint64_t key)
{
    const struct tt_table *t = &m->t[kind];
    return t->cap ? t->rows[table_slot(t, key)] : 0;
}

size_t cascade_twotower_maps_count(const cascade_twotower_maps *m, enum cascade_tt_map_kind kind)
{
    return m->t[kind].count;
}

int64_t cascade_twotower_maps_ref_ts(const cascade_twotower_maps *m)
{
    return m->ref_ts;
}

uint32_t cascade_twotower_user_age_bucket(uint32_t age)
{
    static const uint32_t upper[] = {18, 25, 35, 45, 55};
    if (age == 0)
        return 0;
    for (uint32_t i = 0; i < 5; i++)
        if (age < upper[i])
            return i + 1;
    return 6;
}

uint32_t cascade_twotower_item_age_bucket(int64_t created_at, int64_t now)
{
    static const int64_t upper[] = {86400, 7 * 86400, 30 * 86400, 180 * 86400};
    if (created_at <= 0)
        return 0;
    int64_t age = now > created_at ? now - created_at : 0;
    for (uint32_t i = 0; i < 4; i++)
        if (age < upper[i])
            return i + 1;
    return 5;
}
