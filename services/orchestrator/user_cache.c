/* Recall cache writes: one MULTI/EXEC per request (removals of shown items,
 * dedupe-then-push of unshown ones, trim, expiry), pipelined so the whole
 * update costs one round trip. */
#include "user_cache.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

#define ID_MAX 24 /* decimal uint64 + NUL */

int cascade_user_list_append_lpush(cascade_redis *r, const char *key, const uint64_t *ids, size_t n)
{
    const char **argv = malloc((n + 2) * sizeof *argv);
    size_t *argvlen = malloc((n + 2) * sizeof *argvlen);
    char(*nums)[ID_MAX] = malloc(n * sizeof *nums);
    int rc = CASCADE_ENOMEM;
    if (!argv || !argvlen || !nums)
        goto out;
    argv[0] = "LPUSH";
    argvlen[0] = 5;
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t src = n - 1 - i;
        argvlen[i + 2] = (size_t)snprintf(nums[i], ID_MAX, "%llu", (unsigned long long)ids[src]);
        argv[i + 2] = nums[i];
    }
    rc = cascade_redis_append_argv(r, (int)(n + 2), argv, argvlen);
out:
    free(nums);
    free(argvlen);
    free(argv);
    return rc;
}

static int append_lrem(cascade_redis *r, const char *key, const uint64_t *ids, size_t n,
                       size_t *queued)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cascade_redis_append(r, "LREM %s 0 %llu", key, (unsigned long long)ids[i]);
        if (rc)
            return rc;
        (*queued)++;
    }
    return 0;
}

/* Queue MULTI, the update, EXEC; *sent counts every command queued. */
static int append_update(cascade_redis *r, const char *key,
                         const struct cascade_user_cache_update *u, size_t *sent)
{
    size_t queued = 0;
    int rc = cascade_redis_append(r, "MULTI");
    if (rc)
        return rc;
    (*sent)++;
    if ((rc = append_lrem(r, key, u->shown, u->n_shown, &queued)) ||
        (rc = append_lrem(r, key, u->unshown, u->n_unshown, &queued)))
        goto out;
    if (u->n_unshown > 0) {
        if ((rc = cascade_user_list_append_lpush(r, key, u->unshown, u->n_unshown)))
            goto out;
        queued++;
    }
    if ((rc = cascade_redis_append(r, "LTRIM %s 0 %lld", key, (long long)u->capacity - 1)))
        goto out;
    queued++;
    if (u->ttl_s > 0) {
        if ((rc = cascade_redis_append(r, "EXPIRE %s %lld", key, (long long)u->ttl_s)))
            goto out;
        queued++;
    }
    if ((rc = cascade_redis_append(r, "EXEC")) == 0)
        queued++;
out:
    /* A failed append inside the transaction must not leave it open on the
     * connection: discard what was queued. */
    if (rc && cascade_redis_append(r, "DISCARD") == 0)
        queued++;
    *sent += queued;
    return rc;
}

int cascade_user_list_read(cascade_redis *r, size_t n, bool exec_last)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        int rc = cascade_redis_get_reply(r, &rep);
        if (rc == 0 && exec_last && i == n - 1 && rep->type != REDIS_REPLY_ARRAY) {
            cascade_redis__set_error(r, "cache update: transaction aborted");
            rc = CASCADE_EIO;
        }
        freeReplyObject(rep);
        if (rc && !first)
            first = rc;
        if (rc == CASCADE_EUNAVAILABLE)
            break;
    }
    return first;
}

int cascade_user_cache_append(cascade_redis *r, const char *ns, const char *user_id,
                              const struct cascade_user_cache_update *u, size_t *sent)
{
    char key[CASCADE_KEY_MAX];
    *sent = 0;
    if (u->n_shown == 0 && u->n_unshown == 0)
        return 0;
    if (u->capacity == 0) {
        cascade_redis__set_error(r, "cache update: capacity must be at least 1");
        return CASCADE_EINVAL;
    }
    cascade_key_user_cache(key, ns, user_id);
    return append_update(r, key, u, sent);
}

int cascade_user_cache_read(cascade_redis *r, size_t sent)
{
    return cascade_user_list_read(r, sent, true);
}

int cascade_user_cache_update(cascade_redis *r, const char *ns, const char *user_id,
                              const struct cascade_user_cache_update *u)
{
    size_t sent = 0;
    int rc = cascade_user_cache_append(r, ns, user_id, u, &sent);
    /* Read whatever was queued even after a failed append, so the connection
     * stays in step with its replies. */
    int rc2 = cascade_user_cache_read(r, sent);
    return rc ? rc : rc2;
}
