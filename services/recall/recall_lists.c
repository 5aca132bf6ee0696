/* Generation lists through the stage's list cache (list_cache.h): sorted sets
 * of a published generation are read from Redis once, max_len deep, and then
 * served from process memory, sliced to what each request asks for. Callers
 * pass only generation keys, whose contents never change. */
#include <string.h>

#include "error.h"
#include "recall_internal.h"

int cascade_recall__list_lookup(const struct cascade_recall__channel_args *a, const char *key,
                                size_t want, struct cascade_recall__zlist *out, bool *hit)
{
    memset(out, 0, sizeof *out);
    *hit = false;
    if (!a->recall->lists)
        return 0;
    const struct cascade_list_cache_list *l = cascade_list_cache_get(a->recall->lists, key, want);
    if (!l)
        return 0;
    size_t n = want == 0 || l->count < want ? l->count : want; /* short only when complete */
    out->ids = cascade_arena_alloc(a->arena, (n + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(a->arena, (n + 1) * sizeof *out->scores);
    if (out->ids && out->scores) {
        memcpy(out->ids, l->ids, n * sizeof *out->ids);
        memcpy(out->scores, l->scores, n * sizeof *out->scores);
        out->count = n;
        *hit = true;
    }
    cascade_list_cache_release(a->recall->lists, l);
    return *hit ? 0 : cascade_recall__nomem(a);
}

void cascade_recall__list_store(const struct cascade_recall__channel_args *a, const char *key,
                                const struct cascade_recall__zlist *list, bool complete)
{
    if (a->recall->lists && list->count <= a->recall->list_max_len)
        (void)cascade_list_cache_put(a->recall->lists, key, list->ids, list->scores, list->count,
                                     complete);
}

int cascade_recall__zsets_top(const struct cascade_recall__channel_args *a, size_t n,
                              const char *const *keys, const size_t *max, bool deep,
                              const char *step, struct cascade_recall__zlist *out)
{
    size_t *depth = cascade_arena_alloc(a->arena, (n + 1) * sizeof *depth);
    if (!depth)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    for (size_t i = 0; i < n; i++) {
        bool hit;
        int rc = cascade_recall__list_lookup(a, keys[i], max[i], &out[i], &hit);
        if (rc != 0) {
            cascade_recall__pipe_end(&p);
            return rc;
        }
        depth[i] = 0;
        if (hit)
            continue;
        /* Deep: enough for the requests after this one (any max up to max_len). */
        depth[i] = deep && a->recall->lists && max[i] < a->recall->list_max_len
                       ? a->recall->list_max_len
                       : max[i];
        cascade_recall__pipe_zrevrange(&p, keys[i], depth[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (depth[i] == 0 || cascade_recall__read_zset(&p, a->arena, keys[i], &out[i]) != 0)
            continue;
        /* Fewer than asked: the whole sorted set. */
        cascade_recall__list_store(a, keys[i], &out[i], out[i].count < depth[i]);
        if (out[i].count > max[i])
            out[i].count = max[i];
    }
    int rc = cascade_recall__pipe_end(&p);
    return rc ? cascade_recall__fail(a, rc, step, p.msg) : 0;
}

int cascade_recall__zset_top(const struct cascade_recall__channel_args *a, const char *key,
                             size_t max, const char *step, struct cascade_recall__zlist *out)
{
    return cascade_recall__zsets_top(a, 1, (const char *const[]){key}, (const size_t[]){max}, true,
                                     step, out);
}
