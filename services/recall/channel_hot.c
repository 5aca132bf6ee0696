/* Recall channels over the `hot` family: "hot" (the global time-decayed hot
 * list {ns}:hot@{gen}), and the cold-start helpers "demo_hot" (the hot list
 * of the user's age bucket × gender, {ns}:hot@{gen}:demo:{bucket}:{gender})
 * and "interest" (the hot lists of the user's declared interest categories,
 * {ns}:hot@{gen}:cat:{category}, interleaved). */
#include <stdio.h>

#include "error.h"
#include "recall_internal.h"

/* The first quota entries of one hot list, scores as stored. */
static int hot_list(const struct cascade_recall__channel_args *a, const char *suffix,
                    struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall__zlist z;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    const char *key = cascade_recall__key(a, gen, suffix);
    if (!key)
        return cascade_recall__nomem(a);
    if ((rc = cascade_recall__zset_top(a, key, a->quota, "hot list", &z)) != 0)
        return rc;
    out->ids = z.ids;
    out->scores = cascade_arena_alloc(a->arena, (z.count + 1) * sizeof *out->scores);
    if (!out->scores)
        return cascade_recall__nomem(a);
    for (size_t i = 0; i < z.count; i++)
        out->scores[i] = (float)z.scores[i];
    out->count = z.count;
    return 0;
}

int cascade_recall__hot(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out)
{
    return hot_list(a, NULL, out);
}

int cascade_recall__demo_hot(const struct cascade_recall__channel_args *a,
                             struct cascade_recall_hits *out)
{
    const cascade_v1_UserRecord *u;
    bool found;
    char suffix[48];
    int rc = cascade_recall__profile(a, &u, &found);
    if (rc != 0)
        return rc;
    /* No profile reads as unknown age and gender: bucket 0, gender 0; a gender
     * beyond 0-3 counts as unknown, as the builder files it. */
    uint32_t gender = found && u->gender <= 3 ? u->gender : 0;
    snprintf(suffix, sizeof suffix, "demo:%u:%u", found ? cascade_recall_age_bucket(u->age) : 0,
             gender);
    return hot_list(a, suffix, out);
}

/* Round-robin over the category lists (the user's order of interests): the
 * best of each, then the second of each, ...; an item already taken is
 * skipped. The score is the item's hot score over its category's best. */
static int interleave(const struct cascade_recall__channel_args *a,
                      const struct cascade_recall__zlist *lists, size_t n,
                      struct cascade_recall_hits *out)
{
    size_t total = 0, longest = 0;
    for (size_t c = 0; c < n; c++) {
        total += lists[c].count;
        longest = lists[c].count > longest ? lists[c].count : longest;
    }
    size_t cap = total < a->quota ? total : a->quota;
    cascade_idmap seen;
    out->ids = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(a->arena, (cap + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores || cascade_idmap_init(&seen, a->arena, cap) != 0)
        return cascade_recall__nomem(a);
    for (size_t r = 0; r < longest && out->count < cap; r++) {
        for (size_t c = 0; c < n && out->count < cap; c++) {
            if (r >= lists[c].count)
                continue;
            bool created;
            if (!cascade_idmap_upsert(&seen, lists[c].ids[r], &created))
                return cascade_recall__nomem(a);
            if (!created)
                continue;
            double best = lists[c].scores[0] > 0 ? lists[c].scores[0] : 1.0;
            out->ids[out->count] = lists[c].ids[r];
            out->scores[out->count] = (float)(lists[c].scores[r] / best);
            out->count++;
        }
    }
    return 0;
}

int cascade_recall__interest(const struct cascade_recall__channel_args *a,
                             struct cascade_recall_hits *out)
{
    const cascade_v1_UserRecord *u;
    bool found;
    int64_t gen;
    int rc = cascade_recall__profile(a, &u, &found);
    if (rc != 0 || !found || u->interests_count == 0)
        return rc;
    if ((rc = cascade_recall__generation(a, &gen)) != 0 || gen == 0)
        return rc;
    size_t n = u->interests_count;
    /* Each list is read a quarter deeper than its share, so a short or
     * overlapping category leaves some room for the others. */
    size_t share = (a->quota + n - 1) / n;
    size_t per = share + (share + 3) / 4;
    per = per < a->quota ? per : a->quota;
    struct cascade_recall__zlist lists[8];
    const char *keys[8];
    size_t max[8];
    n = n < 8 ? n : 8;
    for (size_t c = 0; c < n; c++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "cat:%u", u->interests[c]);
        if (!(keys[c] = cascade_recall__key(a, gen, suffix)))
            return cascade_recall__nomem(a);
        max[c] = per;
    }
    if ((rc = cascade_recall__zsets_top(a, n, keys, max, true, "category hot lists", lists)) != 0)
        return rc;
    return interleave(a, lists, n, out);
}
