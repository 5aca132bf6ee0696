/* Recall channels by place: "geo" (the user's geohash cell at the configured
 * precision — up to quota of its newest items — and its 8 neighbours — up to
 * per_cell each — from {ns}:geo@{gen}:{cell}, merged newest first) and "city"
 * ({ns}:city@{gen}:{city}, newest first). The place comes from the request (user.geohash,
 * user.city) or else the profile. One round trip after the (cached) generation, plus the profile
 * when the request carries no place; none for lists held in the stage's list cache. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "geohash.h"
#include "recall_internal.h"

/* The user's geohash: the request's (which must be valid), else the
 * profile's (ignored when invalid); "" when neither has one. */
static int user_geohash(const struct cascade_recall__channel_args *a, const char **hash)
{
    const char *req = a->req->user->geohash;
    *hash = "";
    if (req && req[0]) {
        if (!cascade_geohash_valid(req)) {
            snprintf(a->err, a->errlen,
                     "geo: user.geohash \"%.16s\" is not a geohash (1-12 characters of "
                     "0-9 and b-z without i, l, o)",
                     req);
            return CASCADE_EINVAL;
        }
        *hash = req;
        return 0;
    }
    const cascade_v1_UserRecord *u;
    bool found;
    int rc = cascade_recall__profile(a, &u, &found);
    if (rc == 0 && found && cascade_geohash_valid(u->geohash))
        *hash = u->geohash;
    return rc;
}

int cascade_recall__geo(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out)
{
    const char *hash;
    int64_t gen;
    size_t precision = a->cfg->precision;
    int rc = user_geohash(a, &hash);
    if (rc != 0 || strlen(hash) < precision)
        return rc; /* no location, or too coarse for a cell: nothing */
    if ((rc = cascade_recall__generation(a, &gen)) != 0 || gen == 0)
        return rc;
    char cell[CASCADE_GEOHASH_MAX + 1], around[8][CASCADE_GEOHASH_MAX + 1];
    memcpy(cell, hash, precision);
    cell[precision] = '\0';
    if (cascade_geohash_neighbours(cell, around) != 0) {
        snprintf(a->err, a->errlen, "geo: \"%s\" has no neighbours", cell);
        return CASCADE_EINTERNAL; /* the cell was validated above */
    }
    const char *cells[9] = {cell};
    for (size_t c = 0; c < 8; c++)
        cells[c + 1] = around[c];
    const char *keys[9];
    size_t max[9];
    struct cascade_recall__zlist lists[9];
    size_t n = 0;
    for (size_t c = 0; c < 9; c++) {
        if (!cells[c][0])
            continue; /* beyond a pole */
        if (!(keys[n] = cascade_recall__key(a, gen, cells[c])))
            return cascade_recall__nomem(a);
        /* The own cell may fill the quota; a neighbour gives at most per_cell. */
        max[n++] = c == 0 || a->cfg->per_cell > a->quota ? a->quota : a->cfg->per_cell;
    }
    /* Thousands of cells: cached as read (a miss costs no more than without
     * the cache); a cell read as a neighbour is read again, deeper, as an own cell. */
    if ((rc = cascade_recall__zsets_top(a, n, keys, max, false, "geo cells", lists)) != 0)
        return rc;
    if (cascade_recall__newest(lists, n, a->quota, a->cfg->half_life_s, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}

int cascade_recall__city(const struct cascade_recall__channel_args *a,
                         struct cascade_recall_hits *out)
{
    uint32_t city = a->req->user->city;
    int64_t gen;
    int rc;
    if (city == 0) {
        const cascade_v1_UserRecord *u;
        bool found;
        if ((rc = cascade_recall__profile(a, &u, &found)) != 0)
            return rc;
        city = found ? u->city : 0;
    }
    if (city == 0)
        return 0; /* unknown city */
    if ((rc = cascade_recall__generation(a, &gen)) != 0 || gen == 0)
        return rc;
    char suffix[16];
    snprintf(suffix, sizeof suffix, "%u", city);
    const char *key = cascade_recall__key(a, gen, suffix);
    struct cascade_recall__zlist z;
    if (!key)
        return cascade_recall__nomem(a);
    if ((rc = cascade_recall__zset_top(a, key, a->quota, "city list", &z)) != 0)
        return rc;
    if (cascade_recall__newest(&z, 1, a->quota, a->cfg->half_life_s, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}
