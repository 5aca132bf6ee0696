/* One generation of an artefact family: a "building" marker naming it, pipelined
 * writes under {ns}:{family}@{gen}, then an atomic switch of the current
 * generation (common/store.c), plus the grouped newest-first list writer. */
#include "family.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

#define ZADD_CHUNK 256
#define NUM_MAX 32

/* Delete what a failed build of this generation left behind, if anything:
 * the building marker names the generation that build was writing. */
static int clear_leftovers(struct cascade_family_writer *w)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    int rc =
        cascade_redis_command(w->r, &rep, "GET %s", cascade_key_building(key, w->ns, w->family));
    if (rc != 0)
        return rc;
    bool leftover = rep->type == REDIS_REPLY_STRING && strtoll(rep->str, NULL, 10) == w->gen;
    freeReplyObject(rep);
    return leftover ? cascade_store_unlink_generation(w->r, w->ns, w->family, w->gen) : 0;
}

int cascade_family_begin(struct cascade_family_writer *w, cascade_redis *r, const char *ns,
                         const char *family, size_t pipeline, char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    memset(w, 0, sizeof(*w));
    w->r = r;
    w->ns = ns;
    w->family = family;
    cascade_pipeline_init(&w->pl, r, pipeline);
    int rc = cascade_store_next_generation(r, ns, family, &w->gen);
    if (rc == 0)
        rc = clear_leftovers(w);
    if (rc == 0) {
        char gen[NUM_MAX];
        size_t gen_len = (size_t)snprintf(gen, sizeof(gen), "%" PRId64, w->gen);
        const char *argv[] = {"SET", cascade_key_building(key, ns, family), gen};
        size_t len[] = {3, strlen(key), gen_len};
        rc = cascade_pipeline_add(&w->pl, 3, argv, len);
    }
    if (rc != 0)
        snprintf(err, errlen, "%s (while starting a new %s generation)",
                 w->pl.err[0] ? w->pl.err : cascade_redis_error(r), family);
    return rc;
}

char *cascade_family_key(const struct cascade_family_writer *w, char *buf, const char *suffix)
{
    return cascade_key_artefact(buf, w->ns, w->family, w->gen, suffix);
}

int cascade_family_zadd(struct cascade_family_writer *w, const char *suffix, const uint64_t *ids,
                        const double *scores, size_t n)
{
    char key[CASCADE_KEY_MAX];
    const char *argv[2 + 2 * ZADD_CHUNK];
    size_t len[2 + 2 * ZADD_CHUNK];
    char nums[2 * ZADD_CHUNK][NUM_MAX];
    int rc = 0;
    if (n == 0)
        return 0;
    cascade_family_key(w, key, suffix);
    argv[0] = "ZADD";
    argv[1] = key;
    len[0] = 4;
    len[1] = strlen(key);
    for (size_t off = 0; off < n && rc == 0; off += ZADD_CHUNK) {
        size_t m = n - off < ZADD_CHUNK ? n - off : ZADD_CHUNK;
        for (size_t i = 0; i < m; i++) {
            char *s = nums[2 * i], *mem = nums[2 * i + 1];
            len[2 + 2 * i] = (size_t)snprintf(s, NUM_MAX, "%.17g", scores[off + i]);
            len[3 + 2 * i] = (size_t)snprintf(mem, NUM_MAX, "%" PRIu64, ids[off + i]);
            argv[2 + 2 * i] = s;
            argv[3 + 2 * i] = mem;
        }
        rc = cascade_pipeline_add(&w->pl, (int)(2 + 2 * m), argv, len);
    }
    w->keys++;
    return rc;
}

int cascade_family_set(struct cascade_family_writer *w, const char *suffix, const void *val,
                       size_t len)
{
    char key[CASCADE_KEY_MAX];
    const char *argv[] = {"SET", cascade_family_key(w, key, suffix), val};
    size_t lens[] = {3, strlen(key), len};
    w->keys++;
    return cascade_pipeline_add(&w->pl, 3, argv, lens);
}

int cascade_family_publish(struct cascade_family_writer *w, char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    const char *argv[] = {"UNLINK", cascade_key_building(key, w->ns, w->family)};
    size_t len[] = {6, strlen(key)};
    int rc = cascade_pipeline_add(&w->pl, 2, argv, len);
    if (rc == 0)
        rc = cascade_pipeline_flush(&w->pl);
    if (rc != 0) {
        cascade_family_error(w, "writing", err, errlen);
        return rc;
    }
    rc = cascade_store_publish_generation(w->r, w->ns, w->family, w->gen);
    if (rc != 0)
        snprintf(err, errlen, "%s (while publishing %s generation %" PRId64 ")",
                 cascade_redis_error(w->r), w->family, w->gen);
    return rc;
}

void cascade_family_error(const struct cascade_family_writer *w, const char *what, char *err,
                          size_t errlen)
{
    snprintf(err, errlen, "%s (while %s; %s generation %" PRId64 ")",
             w->pl.err[0] ? w->pl.err : cascade_redis_error(w->r), what, w->family, w->gen);
}

static int cmp_grouped(const void *a, const void *b)
{
    const struct cascade_grouped_item *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    int c = strcmp(x->cell, y->cell);
    if (c != 0)
        return c;
    if (x->created_at != y->created_at)
        return x->created_at > y->created_at ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool same_group(const struct cascade_grouped_item *x, const struct cascade_grouped_item *y)
{
    return x->group == y->group && strcmp(x->cell, y->cell) == 0;
}

int cascade_family_write_grouped(struct cascade_family_writer *w, const char *prefix,
                                 struct cascade_grouped_item *v, size_t n, size_t cap,
                                 size_t *groups, size_t *items)
{
    char suffix[CASCADE_KEY_MAX];
    size_t most = n < cap ? n : cap;
    uint64_t *ids = malloc((most + 1) * sizeof(*ids));
    double *scores = malloc((most + 1) * sizeof(*scores));
    int rc = 0;
    *groups = *items = 0;
    if (!ids || !scores) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    qsort(v, n, sizeof(*v), cmp_grouped);
    for (size_t start = 0, end; start < n && rc == 0; start = end) {
        for (end = start + 1; end < n && same_group(&v[start], &v[end]); end++)
            ;
        size_t m = end - start < cap ? end - start : cap;
        if (v[start].cell[0])
            snprintf(suffix, sizeof(suffix), "%s%s", prefix, v[start].cell);
        else
            snprintf(suffix, sizeof(suffix), "%s%" PRIu64, prefix, v[start].group);
        for (size_t i = 0; i < m; i++) {
            ids[i] = v[start + i].id;
            scores[i] = (double)v[start + i].created_at;
        }
        rc = cascade_family_zadd(w, suffix, ids, scores, m);
        (*groups)++;
        *items += m;
    }
out:
    free(ids);
    free(scores);
    return rc;
}
