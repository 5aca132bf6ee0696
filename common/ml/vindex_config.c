/* Vector index options from the JSON config: <prefix>.metric, .nlist,
 * .nprobe, .kmeans_iters, .train_sample and .seed (prefix "vindex" by
 * default). Zero means "automatic" for the numeric keys. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "vindex_internal.h"

static int size_key(const cascade_config *c, const char *prefix, const char *key, int64_t max,
                    size_t *out, char *err, size_t errlen)
{
    char path[256];
    int64_t v = 0;
    snprintf(path, sizeof(path), "%s.%s", prefix, key);
    int rc = cascade_config_int(c, path, (int64_t)*out, 0, max, &v, err, errlen);
    if (rc == 0)
        *out = (size_t)v;
    return rc;
}

static int metric_key(const cascade_config *c, const char *prefix,
                      enum cascade_vindex_metric *metric, char *err, size_t errlen)
{
    char path[256];
    const char *name = NULL;
    snprintf(path, sizeof(path), "%s.metric", prefix);
    int rc = cascade_config_string(c, path, *metric == CASCADE_VINDEX_IP ? "ip" : "cosine", &name,
                                   err, errlen);
    if (rc != 0)
        return rc;
    if (strcmp(name, "cosine") == 0) {
        *metric = CASCADE_VINDEX_COSINE;
    } else if (strcmp(name, "ip") == 0) {
        *metric = CASCADE_VINDEX_IP;
    } else {
        cascade_vindex__err(err, errlen, "%s: %s: expected \"cosine\" or \"ip\", got \"%s\"",
                            cascade_config_source(c), path, name);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_vindex_opts_from_config(const cascade_config *c, const char *prefix,
                                    struct cascade_vindex_opts *opts, char *err, size_t errlen)
{
    prefix = prefix ? prefix : "vindex";
    size_t iters = opts->kmeans_iters > 0 ? (size_t)opts->kmeans_iters : 0;
    size_t seed = (size_t)opts->seed;
    int rc = metric_key(c, prefix, &opts->metric, err, errlen);
    if (rc == 0)
        rc = size_key(c, prefix, "nlist", 1 << 24, &opts->nlist, err, errlen);
    if (rc == 0)
        rc = size_key(c, prefix, "nprobe", 1 << 24, &opts->nprobe, err, errlen);
    if (rc == 0)
        rc = size_key(c, prefix, "kmeans_iters", 1000, &iters, err, errlen);
    if (rc == 0)
        rc = size_key(c, prefix, "train_sample", INT64_MAX, &opts->train_sample, err, errlen);
    if (rc == 0)
        rc = size_key(c, prefix, "seed", INT64_MAX, &seed, err, errlen);
    opts->kmeans_iters = (int)iters;
    opts->seed = seed;
    return rc;
}
