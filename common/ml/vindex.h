/* Vector index for inner-product / cosine top-k search over float32 vectors
 * with uint64 item ids: an exact scan (blocked sgemm + top-k heaps) and an IVF
 * index (k-means over OpenBLAS, inverted lists stored contiguously, search
 * probes the nprobe best centroids). Saved as safetensors so NumPy can read it.
 * A built or loaded index is immutable: any number of threads may search it. */
#ifndef CASCADE_VINDEX_H
#define CASCADE_VINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Result slots a search could not fill (fewer than k items in the probed
 * lists) hold this id and the score -INFINITY. */
#define CASCADE_VINDEX_NO_ID UINT64_MAX

enum cascade_vindex_metric {
    CASCADE_VINDEX_COSINE = 0, /* vectors and queries are L2-normalised, score = cosine */
    CASCADE_VINDEX_IP = 1,     /* raw inner product */
};

/* ---- k-means ---- */

enum cascade_vindex_kmeans_init {
    CASCADE_VINDEX_INIT_PLUSPLUS = 0, /* greedy k-means++ (2 + ln k candidates per centre)
                                         on a subsample of max(4·k, 4096) points */
    CASCADE_VINDEX_INIT_RANDOM = 1,   /* k distinct random points */
};

#define CASCADE_VINDEX_DEFAULT_KMEANS_ITERS 20

struct cascade_vindex_kmeans_opts {
    int iters;           /* Lloyd iterations; 0 means the default (20) */
    size_t train_sample; /* train on at most this many rows; 0 = all */
    uint64_t seed;       /* sampling and initialisation seed */
    bool spherical;      /* for unit rows: unit centroids, assignment by max dot */
    enum cascade_vindex_kmeans_init init;
};

struct cascade_vindex_kmeans_stats {
    int iters_run;       /* Lloyd iterations done (stops early when nothing moves) */
    size_t empty_splits; /* empty clusters refilled by splitting the largest one */
    double objective;    /* mean squared distance (or mean 1 - dot when spherical) */
};

/* Cluster x (n × dim, row-major) into k centroids (k × dim, written to
 * centroids, caller-allocated). Deterministic for a given seed. stats may be
 * NULL. Returns 0, CASCADE_EINVAL (k = 0, k > n or > the training sample,
 * dim = 0, a non-finite value) or CASCADE_ENOMEM, with a message in err. */
int cascade_vindex_kmeans(const float *x, size_t n, size_t dim, size_t k,
                          const struct cascade_vindex_kmeans_opts *opts, float *centroids,
                          struct cascade_vindex_kmeans_stats *stats, char *err, size_t errlen);

/* The nearest centroid of each row of x (L2, or max dot product when
 * spherical) into assign[n]. Returns 0, CASCADE_EINVAL (k or dim 0) or
 * CASCADE_ENOMEM. */
int cascade_vindex_kmeans_assign(const float *x, size_t n, size_t dim, const float *centroids,
                                 size_t k, bool spherical, uint32_t *assign);

/* ---- the index ---- */

typedef struct cascade_vindex cascade_vindex;

struct cascade_vindex_opts {
    enum cascade_vindex_metric metric;
    size_t nlist;        /* inverted lists; 0 = cascade_vindex_default_nlist(n); 1 = exact */
    size_t nprobe;       /* lists probed by default; 0 = cascade_vindex_default_nprobe(nlist) */
    int kmeans_iters;    /* 0 means CASCADE_VINDEX_DEFAULT_KMEANS_ITERS */
    size_t train_sample; /* k-means training rows; 0 = cascade_vindex_default_train_sample */
    uint64_t seed;
};

/* nlist for n items: round(4·sqrt(n)), at most n/32 (so lists average 32
 * items or more); below 4096 items a single list, i.e. an exact scan. */
size_t cascade_vindex_default_nlist(size_t n);

/* nprobe for nlist lists: max(16, ceil(nlist/8)) capped at nlist. Trained
 * two-tower item vectors queried with user vectors (docs/vindex.md) reach
 * recall@100 ≈ 0.90 against exact search at nlist/16 but 0.976-0.986 at
 * nlist/8; the synthetic benchmark vectors (100k, nlist 1265) 0.98 already at
 * nlist/16, so the eighth is what clustered, trained data needs. */
size_t cascade_vindex_default_nprobe(size_t nlist);

/* k-means training rows for n items in nlist lists: min(n, 64 · nlist). */
size_t cascade_vindex_default_train_sample(size_t n, size_t nlist);

/* Fill opts from the config keys <prefix>.metric ("cosine" | "ip"),
 * <prefix>.nlist, <prefix>.nprobe, <prefix>.kmeans_iters,
 * <prefix>.train_sample and <prefix>.seed (prefix NULL means "vindex");
 * absent keys leave opts as they are (start from a zeroed struct for the
 * automatic defaults). c may be NULL. Returns 0 or CASCADE_EINVAL with
 * "file:line:col: path: expected ..." in err. */
int cascade_vindex_opts_from_config(const cascade_config *c, const char *prefix,
                                    struct cascade_vindex_opts *opts, char *err, size_t errlen);

/* Build an index over vectors (n × dim, row-major) with ids[n]; both are
 * copied, so the caller keeps ownership. opts may be NULL for defaults.
 * Rejects (NULL, CASCADE_EINVAL and a message in err) n = 0, dim = 0, a
 * non-finite value, a zero vector under the cosine metric and nlist > n.
 * Free with cascade_vindex_destroy. */
cascade_vindex *cascade_vindex_build(const float *vectors, const uint64_t *ids, size_t n,
                                     size_t dim, const struct cascade_vindex_opts *opts, char *err,
                                     size_t errlen);

/* NULL is a no-op. */
void cascade_vindex_destroy(cascade_vindex *ix);

size_t cascade_vindex_dim(const cascade_vindex *ix);
size_t cascade_vindex_size(const cascade_vindex *ix);
size_t cascade_vindex_nlist(const cascade_vindex *ix);
/* The nprobe a search with nprobe = 0 uses. */
size_t cascade_vindex_nprobe(const cascade_vindex *ix);
enum cascade_vindex_metric cascade_vindex_metric(const cascade_vindex *ix);
/* Items in inverted list `list` (0 when out of range). */
size_t cascade_vindex_list_size(const cascade_vindex *ix, size_t list);
/* The version given to cascade_vindex_save, as loaded ("unsaved" for a
 * freshly built index). Owned by ix. */
const char *cascade_vindex_version(const cascade_vindex *ix);
/* The stored vectors (size × dim, row-major, unit length under the cosine
 * metric) and their ids (size), in storage order (grouped by list): row r of
 * one belongs to entry r of the other. Owned by ix, valid while it lives;
 * NULL for a NULL index. For callers that look items up by id (ReRank's
 * item vectors) rather than search. */
const float *cascade_vindex_vectors(const cascade_vindex *ix);
const uint64_t *cascade_vindex_ids(const cascade_vindex *ix);

/* IVF search for nq queries (nq × dim, row-major): the k best items of the
 * nprobe lists whose centroids score highest (nprobe 0 = the index default,
 * values above nlist mean every list). Writes ids[nq·k] and scores[nq·k],
 * each query's row sorted by descending score (ties: ascending id); unfilled
 * slots hold CASCADE_VINDEX_NO_ID / -INFINITY. dim must equal the index's and
 * 1 ≤ k ≤ size. Thread-safe. Returns 0, CASCADE_EINVAL or CASCADE_ENOMEM with a
 * message in err. */
int cascade_vindex_search(const cascade_vindex *ix, const float *queries, size_t nq, size_t dim,
                          size_t k, size_t nprobe, uint64_t *ids, float *scores, char *err,
                          size_t errlen);

/* The same contract, scanning every item (the exact answer, and the fallback
 * when an approximate answer will not do). Thread-safe. */
int cascade_vindex_search_exact(const cascade_vindex *ix, const float *queries, size_t nq,
                                size_t dim, size_t k, uint64_t *ids, float *scores, char *err,
                                size_t errlen);

/* Mean over nq queries of |approx row ∩ exact row| / k for id rows of length
 * k (CASCADE_VINDEX_NO_ID never matches): recall@k of an approximate search.
 * Returns -1 when out of memory. */
double cascade_vindex_recall(const uint64_t *approx, const uint64_t *exact, size_t nq, size_t k);

/* recall@k of the IVF search at nprobe (0 = the index default) against the
 * exact scan on the same nq queries (nq × dim), into *recall: the mean share
 * of each query's exact top k that the IVF search also returned. k above the
 * index size is capped at it; nprobe ≥ nlist gives 1. Returns 0, or
 * CASCADE_EINVAL (no query, bad dimension, k = 0, non-finite query) /
 * CASCADE_ENOMEM with a message in err. */
int cascade_vindex_recall_vs_exact(const cascade_vindex *ix, const float *queries, size_t nq,
                                   size_t dim, size_t k, size_t nprobe, double *recall, char *err,
                                   size_t errlen);

/* Save ix to path atomically as safetensors: tensors "centroids" [nlist, dim],
 * "vectors" [n, dim] (grouped by list), and "ids" [n, 2] and "list_offsets"
 * [nlist + 1, 2] holding little-endian uint64 bits in F32 pairs (NumPy:
 * a.view(np.uint64)); metadata format, format_version, version, metric, dim,
 * n, nlist, nprobe. version may be NULL. Returns 0 or a negative code with err. */
int cascade_vindex_save(const cascade_vindex *ix, const char *path, const char *version, char *err,
                        size_t errlen);

/* Load an index saved by cascade_vindex_save; every shape, offset and
 * metadata value is checked, and a corrupt file gives NULL with
 * "path: reason" in err. */
cascade_vindex *cascade_vindex_load(const char *path, char *err, size_t errlen);

#endif
