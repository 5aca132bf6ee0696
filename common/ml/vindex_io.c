/* Saving and loading the vector index as safetensors. Float tensors are
 * stored as they are; the uint64 ids and list offsets travel as F32 pairs
 * holding their little-endian bits (the F32-only writer's format), which NumPy
 * reads back with a.view(np.uint64). Loading checks every shape, offset and
 * metadata value before the index is used. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"
#include "vindex_internal.h"

#define VINDEX_FORMAT "cascade.vindex"
#define VINDEX_FORMAT_VERSION "1"

static const char *metric_name(enum cascade_vindex_metric m)
{
    return m == CASCADE_VINDEX_IP ? "ip" : "cosine";
}

static struct cascade_tensor tensor2(const char *name, const void *data, size_t rows, size_t cols)
{
    struct cascade_tensor t = {.name = name, .ndim = 2, .data = data};
    t.shape[0] = (int64_t)rows;
    t.shape[1] = (int64_t)cols;
    return t;
}

int cascade_vindex_save(const cascade_vindex *ix, const char *path, const char *version, char *err,
                        size_t errlen)
{
    if (!ix || !path) {
        cascade_vindex__err(err, errlen, "vindex save: NULL index or path");
        return CASCADE_EINVAL;
    }
    /* uint64 values as pairs of 32-bit words: two "floats" per value. */
    struct cascade_tensor t[4] = {
        tensor2("centroids", ix->centroids, ix->nlist, ix->dim),
        tensor2("vectors", ix->vectors, ix->n, ix->dim),
        tensor2("ids", ix->ids, ix->n, 2),
        tensor2("list_offsets", ix->offsets, ix->nlist + 1, 2),
    };
    char dim[32], n[32], nlist[32], nprobe[32];
    snprintf(dim, sizeof(dim), "%zu", ix->dim);
    snprintf(n, sizeof(n), "%zu", ix->n);
    snprintf(nlist, sizeof(nlist), "%zu", ix->nlist);
    snprintf(nprobe, sizeof(nprobe), "%zu", ix->nprobe);
    const char *keys[] = {"format", "format_version", "version", "metric", "dim",
                          "n",      "nlist",          "nprobe"};
    const char *values[] = {VINDEX_FORMAT,
                            VINDEX_FORMAT_VERSION,
                            version ? version : "",
                            metric_name(ix->metric),
                            dim,
                            n,
                            nlist,
                            nprobe};
    return cascade_safetensors_write(path, t, 4, keys, values, 8, err, errlen);
}

/* ---- loading ---- */

/* A metadata value parsed as a whole decimal number in [min, max]. */
static int meta_size(const cascade_safetensors *st, const char *path, const char *key, size_t min,
                     size_t max, size_t *out, char *err, size_t errlen)
{
    const char *s = cascade_safetensors_meta(st, key);
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || errno || !end || *end || v < min || v > max) {
        cascade_vindex__err(err, errlen,
                            "%s: metadata \"%s\" = \"%s\": expected an integer in "
                            "%zu..%zu",
                            path, key, s ? s : "(missing)", min, max);
        return CASCADE_EFORMAT;
    }
    *out = (size_t)v;
    return 0;
}

static int check_header(const cascade_safetensors *st, const char *path, char *err, size_t errlen)
{
    const char *format = cascade_safetensors_meta(st, "format");
    const char *fv = cascade_safetensors_meta(st, "format_version");
    if (!format || strcmp(format, VINDEX_FORMAT) != 0) {
        cascade_vindex__err(err, errlen,
                            "%s: not a vector index (metadata format is \"%s\", "
                            "expected \"" VINDEX_FORMAT "\")",
                            path, format ? format : "(missing)");
        return CASCADE_EFORMAT;
    }
    if (!fv || strcmp(fv, VINDEX_FORMAT_VERSION) != 0) {
        cascade_vindex__err(err, errlen,
                            "%s: vector index format version \"%s\" is not supported (this build "
                            "reads " VINDEX_FORMAT_VERSION ")",
                            path, fv ? fv : "(missing)");
        return CASCADE_EFORMAT;
    }
    return 0;
}

/* The shape fields of the index, from metadata. */
static int read_shape(const cascade_safetensors *st, const char *path, cascade_vindex *ix,
                      char *err, size_t errlen)
{
    const char *metric = cascade_safetensors_meta(st, "metric");
    if (!metric || (strcmp(metric, "cosine") != 0 && strcmp(metric, "ip") != 0)) {
        cascade_vindex__err(err, errlen, "%s: metadata \"metric\" = \"%s\": expected cosine or ip",
                            path, metric ? metric : "(missing)");
        return CASCADE_EFORMAT;
    }
    ix->metric = strcmp(metric, "ip") == 0 ? CASCADE_VINDEX_IP : CASCADE_VINDEX_COSINE;
    int rc = meta_size(st, path, "dim", 1, 1u << 20, &ix->dim, err, errlen);
    if (rc == 0)
        rc = meta_size(st, path, "n", 1, SIZE_MAX / 8, &ix->n, err, errlen);
    if (rc == 0)
        rc = meta_size(st, path, "nlist", 1, ix->n, &ix->nlist, err, errlen);
    if (rc == 0)
        rc = meta_size(st, path, "nprobe", 1, ix->nlist, &ix->nprobe, err, errlen);
    return rc;
}

/* Tensor `name`, checked to have shape [rows, cols]; NULL with a message
 * otherwise. Shapes are checked before anything is allocated, so a corrupt
 * "n" cannot ask for more memory than the file holds. */
static const struct cascade_tensor *find_tensor(const cascade_safetensors *st, const char *path,
                                                const char *name, size_t rows, size_t cols,
                                                char *err, size_t errlen)
{
    const struct cascade_tensor *t = cascade_safetensors_find(st, name);
    if (!t || t->ndim != 2 || t->shape[0] != (int64_t)rows || t->shape[1] != (int64_t)cols) {
        cascade_vindex__err(err, errlen, "%s: tensor \"%s\" %s; expected shape [%zu, %zu]", path,
                            name, t ? "has the wrong shape" : "is missing", rows, cols);
        return NULL;
    }
    return t;
}

static int check_contents(cascade_vindex *ix, const char *path, char *err, size_t errlen)
{
    if (ix->offsets[0] != 0 || ix->offsets[ix->nlist] != ix->n) {
        cascade_vindex__err(err, errlen, "%s: list_offsets must run from 0 to n = %zu", path,
                            ix->n);
        return CASCADE_EFORMAT;
    }
    for (size_t l = 0; l < ix->nlist; l++) {
        if (ix->offsets[l + 1] < ix->offsets[l]) {
            cascade_vindex__err(err, errlen, "%s: list_offsets decrease at list %zu", path, l);
            return CASCADE_EFORMAT;
        }
        size_t len = (size_t)(ix->offsets[l + 1] - ix->offsets[l]);
        ix->max_list = len > ix->max_list ? len : ix->max_list;
    }
    if (cascade_vindex__first_nonfinite(ix->centroids, ix->nlist * ix->dim) < ix->nlist * ix->dim ||
        cascade_vindex__first_nonfinite(ix->vectors, ix->n * ix->dim) < ix->n * ix->dim) {
        cascade_vindex__err(err, errlen, "%s: centroids or vectors hold non-finite values", path);
        return CASCADE_EFORMAT;
    }
    return 0;
}

static int fill_index(const cascade_safetensors *st, const char *path, cascade_vindex *ix,
                      char *err, size_t errlen)
{
    const struct cascade_tensor *c, *v, *ids, *offs;
    if (!(c = find_tensor(st, path, "centroids", ix->nlist, ix->dim, err, errlen)) ||
        !(v = find_tensor(st, path, "vectors", ix->n, ix->dim, err, errlen)) ||
        !(ids = find_tensor(st, path, "ids", ix->n, 2, err, errlen)) ||
        !(offs = find_tensor(st, path, "list_offsets", ix->nlist + 1, 2, err, errlen)))
        return CASCADE_EFORMAT;
    const char *version = cascade_safetensors_meta(st, "version");
    ix->centroids = malloc(sizeof(float) * ix->nlist * ix->dim);
    ix->vectors = malloc(sizeof(float) * ix->n * ix->dim);
    ix->ids = malloc(sizeof(uint64_t) * ix->n);
    ix->offsets = malloc(sizeof(uint64_t) * (ix->nlist + 1));
    ix->version = strdup(version ? version : "");
    if (!ix->centroids || !ix->vectors || !ix->ids || !ix->offsets || !ix->version) {
        cascade_vindex__err(err, errlen, "%s: out of memory for %zu × %zu vectors", path, ix->n,
                            ix->dim);
        return CASCADE_ENOMEM;
    }
    memcpy(ix->centroids, c->data, sizeof(float) * ix->nlist * ix->dim);
    memcpy(ix->vectors, v->data, sizeof(float) * ix->n * ix->dim);
    memcpy(ix->ids, ids->data, sizeof(uint64_t) * ix->n);
    memcpy(ix->offsets, offs->data, sizeof(uint64_t) * (ix->nlist + 1));
    return check_contents(ix, path, err, errlen);
}

cascade_vindex *cascade_vindex_load(const char *path, char *err, size_t errlen)
{
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return NULL;
    cascade_vindex *ix = calloc(1, sizeof(*ix));
    if (!ix) {
        cascade_vindex__err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (check_header(st, path, err, errlen) != 0 || read_shape(st, path, ix, err, errlen) != 0 ||
        fill_index(st, path, ix, err, errlen) != 0) {
        cascade_vindex_destroy(ix);
        ix = NULL;
    }
out:
    cascade_safetensors_destroy(st);
    return ix;
}
