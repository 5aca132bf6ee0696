/* Recall channel "hot": the global hot list ({ns}:hot, a sorted set scored by
 * cascade-build's time-decayed popularity), best first. */
#include <stdio.h>

#include "error.h"
#include "recall_internal.h"
#include "store.h"

int cascade_recall__hot(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out)
{
    char key[CASCADE_KEY_MAX];
    uint64_t *ids = cascade_arena_calloc(a->arena, a->quota, sizeof *ids);
    double *raw = cascade_arena_calloc(a->arena, a->quota, sizeof *raw);
    float *scores = cascade_arena_calloc(a->arena, a->quota, sizeof *scores);
    size_t count = 0;
    if (!ids || !raw || !scores) {
        snprintf(a->err, a->errlen, "hot: out of memory for %zu items", a->quota);
        return CASCADE_ENOMEM;
    }
    int rc = cascade_store_top_items(a->redis, cascade_key_hot(key, a->recall->ns), a->quota, ids,
                                     raw, &count);
    if (rc != 0)
        return cascade_recall__store_error(a->redis, rc, "hot", a->err, a->errlen);
    for (size_t i = 0; i < count; i++)
        scores[i] = (float)raw[i];
    out->ids = ids;
    out->scores = scores;
    out->count = count;
    return 0;
}
