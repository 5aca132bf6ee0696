/* Hard-negative log: selection of the rank stage's rejects for one request
 * (sorted id sets, binary search) and the capped per-user LIST write, queued
 * on the caller's pipeline so it shares the recall cache's round trip. */
#include "hardneg_log.h"

#include <stdbool.h>
#include <stdlib.h>

#include "error.h"
#include "store.h"
#include "user_cache.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool in_set(const uint64_t *set, size_t n, uint64_t id)
{
    return n > 0 && bsearch(&id, set, n, sizeof *set, cmp_u64) != NULL;
}

/* Add id to ids[*n] when it is in none of the sorted sets nor already taken
 * (taken: a sorted copy of ids, kept in step). */
static void take(uint64_t id, const uint64_t *skip, size_t n_skip, uint64_t *ids, uint64_t *taken,
                 size_t *n)
{
    if (id == 0 || in_set(skip, n_skip, id) || in_set(taken, *n, id))
        return;
    size_t at = *n;
    while (at > 0 && taken[at - 1] > id) {
        taken[at] = taken[at - 1];
        at--;
    }
    taken[at] = id;
    ids[(*n)++] = id;
}

size_t cascade_hardneg_select(const struct cascade_hardneg_cut *c, uint64_t *ids, size_t max)
{
    size_t n_skip = 0, n = 0;
    /* skip: kept and shown items, then (second half) everything returned. */
    uint64_t *skip = malloc((c->n_ranked + c->n_shown + 1) * sizeof *skip);
    uint64_t *returned = malloc((c->n_ranked + 1) * sizeof *returned);
    uint64_t *taken = malloc((max + 1) * sizeof *taken);
    if (!skip || !returned || !taken)
        goto out;
    for (size_t i = 0; i < c->n_ranked && i < c->kept; i++)
        skip[n_skip++] = c->ranked[i]->item_id;
    for (size_t i = 0; i < c->n_shown; i++)
        skip[n_skip++] = c->shown[i];
    qsort(skip, n_skip, sizeof *skip, cmp_u64);
    for (size_t i = 0; i < c->n_ranked; i++)
        returned[i] = c->ranked[i]->item_id;
    qsort(returned, c->n_ranked, sizeof *returned, cmp_u64);
    for (size_t i = c->kept; i < c->n_ranked && n < max; i++)
        take(c->ranked[i]->item_id, skip, n_skip, ids, taken, &n);
    for (size_t i = 0; i < c->n_scored && n < max; i++) {
        uint64_t id = c->scored[i] ? c->scored[i]->item_id : 0;
        if (!in_set(returned, c->n_ranked, id))
            take(id, skip, n_skip, ids, taken, &n);
    }
out:
    free(skip);
    free(returned);
    free(taken);
    return n;
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
