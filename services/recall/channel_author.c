/* Recall channels through authors (family `authors`): "follow_author" (the
 * user's followed authors, live SET {ns}:user:{uid}:follows → each author's
 * newest items {ns}:authors@{gen}:items:{aid}, merged newest first),
 * "interacted_author" ({ns}:authors@{gen}:interacted:{uid} → each author's
 * newest items, score interest / (1 + position)), and "similar_author"
 * (interacted and followed authors → {ns}:authors@{gen}:similar:{aid} →
 * the best similar authors' newest items). One pipelined round trip per
 * step; the interacted authors come from the request's prefetch when it read
 * them. */
#include <inttypes.h>
#include <stdio.h>

#include "error.h"
#include "recall_internal.h"
#include "store.h"

/* Queue SRANDMEMBER follows max (distinct members; all of them when the set
 * is smaller). */
static void queue_follows(const struct cascade_recall__channel_args *a,
                          struct cascade_recall__pipe *p, char *key, size_t max)
{
    char count[24];
    snprintf(count, sizeof count, "%zu", max);
    cascade_key_user_follows(key, a->recall->ns, a->user_id);
    cascade_recall__pipe_cmd(p, 3, (const char *[]){"SRANDMEMBER", key, count});
}

/* Read the SRANDMEMBER reply into ids (arena), *n of them. */
static void read_follows(const struct cascade_recall__channel_args *a,
                         struct cascade_recall__pipe *p, const char *key, uint64_t **ids, size_t *n)
{
    *n = 0;
    redisReply *rep = cascade_recall__pipe_reply(p);
    if (!rep)
        return;
    if (rep->type != REDIS_REPLY_ARRAY) {
        cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a set", key);
        goto out;
    }
    if (!(*ids = cascade_arena_alloc(a->arena, (rep->elements + 1) * sizeof **ids))) {
        cascade_recall__pipe_fail(p, CASCADE_ENOMEM, "out of request memory");
        goto out;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || cascade_recall__parse_id(e->str, e->len, &(*ids)[i])) {
            cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: member %zu is not an author id", key,
                                      i);
            goto out;
        }
    }
    *n = rep->elements;
out:
    freeReplyObject(rep);
}

/* The newest per_author items of each author: from the list cache, the
 * others in one pipelined round trip. */
static int author_items(const struct cascade_recall__channel_args *a, int64_t gen,
                        const uint64_t *authors, size_t n, struct cascade_recall__zlist *lists)
{
    const char **keys = cascade_arena_alloc(a->arena, (n + 1) * sizeof *keys);
    size_t *max = cascade_arena_alloc(a->arena, (n + 1) * sizeof *max);
    if (!keys || !max)
        return cascade_recall__nomem(a);
    for (size_t i = 0; i < n; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "items:%" PRIu64, authors[i]);
        if (!(keys[i] = cascade_recall__key(a, gen, suffix)))
            return cascade_recall__nomem(a);
        max[i] = a->cfg->per_author;
    }
    return cascade_recall__zsets_top(a, n, keys, max, false, "author items", lists);
}

/* Items of weighted authors: score(item) = weight(author) / (1 + position
 * of the item in its author's newest-first list); best `quota`. */
static int weighted_items(const struct cascade_recall__channel_args *a, int64_t gen,
                          const struct cascade_recall_hits *authors,
                          struct cascade_recall_hits *out)
{
    struct cascade_recall__zlist *lists =
        cascade_arena_calloc(a->arena, authors->count + 1, sizeof *lists);
    cascade_idmap scores;
    if (!lists || cascade_idmap_init(&scores, a->arena, authors->count * a->cfg->per_author) != 0)
        return cascade_recall__nomem(a);
    int rc = author_items(a, gen, authors->ids, authors->count, lists);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < authors->count; i++) {
        for (size_t j = 0; j < lists[i].count; j++) {
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&scores, lists[i].ids[j], NULL);
            if (!e)
                return cascade_recall__nomem(a);
            e->score += (double)authors->scores[i] / (double)(1 + j);
        }
    }
    if (cascade_recall__top_scores(&scores, a->quota, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}

int cascade_recall__follow_author(const struct cascade_recall__channel_args *a,
                                  struct cascade_recall_hits *out)
{
    int64_t gen;
    char key[CASCADE_KEY_MAX];
    uint64_t *authors = NULL;
    size_t n = 0;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    queue_follows(a, &p, key, a->cfg->max_authors);
    read_follows(a, &p, key, &authors, &n);
    if ((rc = cascade_recall__pipe_end(&p)) != 0)
        return cascade_recall__fail(a, rc, "follows", p.msg);
    if (n == 0)
        return 0;
    struct cascade_recall__zlist *lists = cascade_arena_calloc(a->arena, n + 1, sizeof *lists);
    if (!lists)
        return cascade_recall__nomem(a);
    if ((rc = author_items(a, gen, authors, n, lists)) != 0)
        return rc;
    if (cascade_recall__newest(lists, n, a->quota, a->cfg->half_life_s, a->arena, out) != 0)
        return cascade_recall__nomem(a);
    return 0;
}

int cascade_recall__interacted_author(const struct cascade_recall__channel_args *a,
                                      struct cascade_recall_hits *out)
{
    int64_t gen;
    struct cascade_recall_hits authors;
    char suffix[CASCADE_KEY_MAX];
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    snprintf(suffix, sizeof suffix, "interacted:%s", a->user_id);
    const char *key = cascade_recall__key(a, gen, suffix);
    if (!key)
        return cascade_recall__nomem(a);
    const redisReply *pre = cascade_recall__prefetched_interacted(a, gen);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    if (pre) {
        cascade_recall__parse_neighbours(&p, a->arena, key, pre, a->cfg->max_authors, &authors);
    } else {
        cascade_recall__pipe_get(&p, key);
        cascade_recall__read_neighbours(&p, a->arena, key, a->cfg->max_authors, &authors);
    }
    if ((rc = cascade_recall__pipe_end(&p)) != 0)
        return cascade_recall__fail(a, rc, "interacted authors", p.msg);
    if (authors.count == 0)
        return 0;
    return weighted_items(a, gen, &authors, out);
}

/* Seeds of similar_author: interacted authors weighted by interest over the
 * strongest interest, followed authors weighted 1. */
static int similar_seeds(const struct cascade_recall__channel_args *a, int64_t gen,
                         cascade_idmap *seeds)
{
    char suffix[CASCADE_KEY_MAX], fkey[CASCADE_KEY_MAX];
    struct cascade_recall_hits inter;
    uint64_t *follows = NULL;
    size_t n_follows = 0;
    snprintf(suffix, sizeof suffix, "interacted:%s", a->user_id);
    const char *key = cascade_recall__key(a, gen, suffix);
    if (!key)
        return cascade_recall__nomem(a);
    const redisReply *pre = cascade_recall__prefetched_interacted(a, gen);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    if (!pre)
        cascade_recall__pipe_get(&p, key);
    queue_follows(a, &p, fkey, a->cfg->sources);
    if (pre)
        cascade_recall__parse_neighbours(&p, a->arena, key, pre, a->cfg->sources, &inter);
    else
        cascade_recall__read_neighbours(&p, a->arena, key, a->cfg->sources, &inter);
    read_follows(a, &p, fkey, &follows, &n_follows);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0)
        return cascade_recall__fail(a, rc, "seed authors", p.msg);
    double best = 0;
    for (size_t i = 0; i < inter.count; i++)
        best = inter.scores[i] > best ? inter.scores[i] : best;
    for (size_t i = 0; i < inter.count; i++) {
        struct cascade_idmap_entry *e = cascade_idmap_upsert(seeds, inter.ids[i], NULL);
        if (!e)
            return cascade_recall__nomem(a);
        e->score = best > 0 && inter.scores[i] > 0 ? inter.scores[i] / best : 0;
    }
    for (size_t i = 0; i < n_follows; i++) {
        struct cascade_idmap_entry *e = cascade_idmap_upsert(seeds, follows[i], NULL);
        if (!e)
            return cascade_recall__nomem(a);
        e->score = 1.0;
    }
    return 0;
}

/* S(b) = Σ_seeds w_a · sim(a, b) over each seed's similar-author list, seeds
 * themselves excluded; the best max_authors go to authors. */
static int similar_authors(const struct cascade_recall__channel_args *a, int64_t gen,
                           const cascade_idmap *seeds, struct cascade_recall_hits *authors)
{
    size_t n = seeds->count;
    uint64_t *ids = cascade_arena_alloc(a->arena, (n + 1) * sizeof *ids);
    double *w = cascade_arena_alloc(a->arena, (n + 1) * sizeof *w);
    const char **keys = cascade_arena_alloc(a->arena, (n + 1) * sizeof *keys);
    struct cascade_recall_hits *lists = cascade_arena_calloc(a->arena, n + 1, sizeof *lists);
    cascade_idmap sums;
    if (!ids || !w || !keys || !lists ||
        cascade_idmap_init(&sums, a->arena, n * a->cfg->neighbours) != 0)
        return cascade_recall__nomem(a);
    struct cascade_recall__pipe p;
    cascade_recall__pipe_init(&p, a->redis);
    size_t k = 0;
    for (size_t s = 0; s < seeds->cap; s++) {
        if (!seeds->slots[s].used)
            continue;
        char suffix[32];
        ids[k] = seeds->slots[s].key;
        w[k] = seeds->slots[s].score;
        snprintf(suffix, sizeof suffix, "similar:%" PRIu64, ids[k]);
        if (!(keys[k] = cascade_recall__key(a, gen, suffix))) {
            cascade_recall__pipe_end(&p);
            return cascade_recall__nomem(a);
        }
        cascade_recall__pipe_get(&p, keys[k++]);
    }
    for (size_t i = 0; i < k; i++)
        cascade_recall__read_neighbours(&p, a->arena, keys[i], a->cfg->neighbours, &lists[i]);
    int rc = cascade_recall__pipe_end(&p);
    if (rc != 0)
        return cascade_recall__fail(a, rc, "similar authors", p.msg);
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < lists[i].count; j++) {
            if (cascade_idmap_find(seeds, lists[i].ids[j]))
                continue;
            struct cascade_idmap_entry *e = cascade_idmap_upsert(&sums, lists[i].ids[j], NULL);
            if (!e)
                return cascade_recall__nomem(a);
            e->score += w[i] * (double)lists[i].scores[j];
        }
    }
    if (cascade_recall__top_scores(&sums, a->cfg->max_authors, a->arena, authors) != 0)
        return cascade_recall__nomem(a);
    return 0;
}

int cascade_recall__similar_author(const struct cascade_recall__channel_args *a,
                                   struct cascade_recall_hits *out)
{
    int64_t gen;
    cascade_idmap seeds;
    struct cascade_recall_hits authors;
    int rc = cascade_recall__generation(a, &gen);
    if (rc != 0 || gen == 0)
        return rc;
    if (cascade_idmap_init(&seeds, a->arena, 2 * a->cfg->sources) != 0)
        return cascade_recall__nomem(a);
    if ((rc = similar_seeds(a, gen, &seeds)) != 0 || seeds.count == 0)
        return rc;
    if ((rc = similar_authors(a, gen, &seeds, &authors)) != 0 || authors.count == 0)
        return rc;
    return weighted_items(a, gen, &authors, out);
}
