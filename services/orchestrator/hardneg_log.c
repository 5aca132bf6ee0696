/* Hard-negative log: selection of the rank stage's rejects for one request
 * (one id map of what is kept, shown, returned and taken) and the capped
 * per-user LIST write, queued on the caller's pipeline so it shares the
 * recall cache's round trip. */
#include "hardneg_log.h"

#include <stdbool.h>
#include <stdlib.h>

#include "error.h"
#include "idmap.h"
#include "store.h"
#include "user_cache.h"

/* What the selection knows of an id, in its map entry's index. */
enum { SKIP = 1, TAKEN = 2 };

/* Add id to ids[*n] unless it is 0, to skip or already taken. false when
 * out of memory. */
static bool take(cascade_idmap *m, uint64_t id, uint64_t *ids, size_t *n)
{
    if (id == 0)
        return true;
    struct cascade_idmap_entry *e = cascade_idmap_upsert(m, id, NULL);
    if (!e)
        return false;
    if (!(e->index & (SKIP | TAKEN))) {
        e->index |= TAKEN;
        ids[(*n)++] = id;
    }
    return true;
}

size_t cascade_hardneg_select(const struct cascade_hardneg_cut *c, uint64_t *ids, size_t max)
{
    /* One id map (heap) says of each id whether it is kept or shown (skip) or
     * taken already. The scored items the ranker did not return come second:
     * by then every item it returned is kept, shown or taken (the first loop
     * took all the others unless max was reached, and then the second does not
     * run), so "not returned" needs no set of its own. */
    cascade_idmap m;
    size_t n = 0;
    bool ok = cascade_idmap_init(&m, NULL, c->n_ranked + c->n_shown + max) == 0;
    for (size_t i = 0; ok && i < c->n_ranked + c->n_shown; i++) {
        bool in_ranked = i < c->n_ranked;
        if (in_ranked && i >= c->kept)
            continue;
        uint64_t id = in_ranked ? c->ranked[i]->item_id : c->shown[i - c->n_ranked];
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&m, id, NULL);
        if ((ok = e != NULL))
            e->index = SKIP;
    }
    for (size_t i = c->kept; ok && i < c->n_ranked && n < max; i++)
        ok = take(&m, c->ranked[i]->item_id, ids, &n);
    for (size_t i = 0; ok && i < c->n_scored && n < max; i++)
        ok = take(&m, c->scored[i] ? c->scored[i]->item_id : 0, ids, &n);
    cascade_idmap_release(&m);
    return ok ? n : 0;
}

int cascade_hardneg_log_append(cascade_redis *r, const char *ns, const char *user_id,
                               const uint64_t *ids, size_t n, uint32_t cap, int64_t ttl_s,
                               size_t *sent)
{
    char key[CASCADE_KEY_MAX];
    int rc;
    *sent = 0;
    if (n == 0)
        return 0;
    if (cap == 0) {
        cascade_redis__set_error(r, "hard-negative log: cap must be at least 1");
        return CASCADE_EINVAL;
    }
    cascade_key_user_hardneg(key, ns, user_id);
    if ((rc = cascade_user_list_append_lpush(r, key, ids, n)))
        return rc;
    (*sent)++;
    if ((rc = cascade_redis_append(r, "LTRIM %s 0 %lld", key, (long long)cap - 1)))
        return rc;
    (*sent)++;
    if (ttl_s > 0) {
        if ((rc = cascade_redis_append(r, "EXPIRE %s %lld", key, (long long)ttl_s)))
            return rc;
        (*sent)++;
    }
    return 0;
}

int cascade_hardneg_log_read(cascade_redis *r, size_t sent)
{
    return cascade_user_list_read(r, sent);
}

int cascade_hardneg_log_write(cascade_redis *r, const char *ns, const char *user_id,
                              const uint64_t *ids, size_t n, uint32_t cap, int64_t ttl_s)
{
    size_t sent = 0;
    int rc = cascade_hardneg_log_append(r, ns, user_id, ids, n, cap, ttl_s, &sent);
    int rc2 = cascade_hardneg_log_read(r, sent);
    return rc ? rc : rc2;
}
