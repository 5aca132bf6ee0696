/* Writing one generation of a builder artefact family ("hot", "geo",
 * "authors", ...; common/store.h): take the next generation number, write
 * every key under {ns}:{family}@{gen}[:suffix] through a pipeline, then
 * publish it with one SET, so serving never reads a half-written index.
 * Also the shared "items newest first per group" writer (geo cells, cities,
 * authors' items). One writer per family at a time; not thread-safe. */
#ifndef CASCADE_BUILDER_FAMILY_H
#define CASCADE_BUILDER_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "pipeline.h"
#include "redis.h"

struct cascade_family_writer {
    cascade_redis *r;   /* borrowed */
    const char *ns;     /* borrowed */
    const char *family; /* borrowed */
    int64_t gen;        /* the generation being written */
    struct cascade_pipeline pl;
    size_t keys; /* keys written so far */
};

/* Start generation current+1 of family. A generation left half-written by a
 * failed build (its {ns}:gen:{family}:building marker still names it) is deleted first.
 * Returns 0 or a negative code with err. */
int cascade_family_begin(struct cascade_family_writer *w, cascade_redis *r, const char *ns,
                         const char *family, size_t pipeline, char *err, size_t errlen);

/* {ns}:{family}@{gen}[:suffix] into buf (CASCADE_KEY_MAX bytes); returns buf. */
char *cascade_family_key(const struct cascade_family_writer *w, char *buf, const char *suffix);

/* ZADD ids[0..n) with scores to the key with suffix (NULL: the bare key), in
 * chunks of a few hundred members. n == 0 writes nothing. */
int cascade_family_zadd(struct cascade_family_writer *w, const char *suffix, const uint64_t *ids,
                        const double *scores, size_t n);

/* SET the key with suffix to val[0..len). */
int cascade_family_set(struct cascade_family_writer *w, const char *suffix, const void *val,
                       size_t len);

/* Flush the pipeline, remove the marker, make the generation current (and
 * delete generation gen-2). Returns 0 or a negative code with err. */
int cascade_family_publish(struct cascade_family_writer *w, char *err, size_t errlen);

/* Put the writer's first failure into err ("... (while writing geo lists)"). */
void cascade_family_error(const struct cascade_family_writer *w, const char *what, char *err,
                          size_t errlen);

/* One item of a grouped, newest-first list: the group is either a number
 * (city, author id) or a geohash cell, never both. */
struct cascade_grouped_item {
    uint64_t group;
    char cell[CASCADE_DS_GEOHASH_MAX + 1];
    int64_t created_at;
    uint64_t id;
};

/* Sort v[0..n) by group, then newest first (ties: lower id first), and write
 * each group's first `cap` items as a ZSET item -> created_at under the
 * suffix prefix + group ("items:" + "42", "" + "wx4g0"). *groups and *items
 * count what was written. Reorders v. */
int cascade_family_write_grouped(struct cascade_family_writer *w, const char *prefix,
                                 struct cascade_grouped_item *v, size_t n, size_t cap,
                                 size_t *groups, size_t *items);

#endif
