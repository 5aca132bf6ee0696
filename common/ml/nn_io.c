/* Persistence of nn parameter sets as safetensors: one F32 tensor per
 * parameter under its name (torch state_dict names map one to one). Loading
 * checks every name and shape before it copies anything. */
#include "nn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "nn_internal.h"

static void param_tensor(const struct cascade_nn_param *p, struct cascade_tensor *t)
{
    memset(t, 0, sizeof(*t));
    t->name = p->name;
    t->ndim = p->ndim;
    if (p->ndim == 1) {
        t->shape[0] = (int64_t)p->cols;
    } else {
        t->shape[0] = (int64_t)p->rows;
        t->shape[1] = (int64_t)p->cols;
    }
    t->data = p->value;
}

int cascade_nn_params_save(const cascade_nn_params *ps, const char *path,
                           const char *const *meta_keys, const char *const *meta_values,
                           size_t n_meta, char *err, size_t errlen)
{
    size_t n = cascade_nn_params_count(ps);
    struct cascade_tensor *tensors = calloc(n ? n : 1, sizeof(*tensors));
    if (!tensors) {
        cascade__nn_set_err(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        param_tensor(cascade_nn_params_at(ps, i), &tensors[i]);
    int rc =
        cascade_safetensors_write(path, tensors, n, meta_keys, meta_values, n_meta, err, errlen);
    free(tensors);
    return rc;
}

/* "[a, b]" into buf. */
static const char *shape_str(const struct cascade_tensor *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

static bool same_shape(const struct cascade_tensor *a, const struct cascade_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

/* 0 when st has p's tensor with p's shape; otherwise a code and a message. */
static int check_param(const cascade_safetensors *st, const char *path,
                       const struct cascade_nn_param *p, char *err, size_t errlen)
{
    struct cascade_tensor want;
    param_tensor(p, &want);
    const struct cascade_tensor *have = cascade_safetensors_find(st, p->name);
    if (!have) {
        cascade__nn_set_err(err, errlen, "%s: tensor '%s' is missing (the model expects it)", path,
                            p->name);
        return CASCADE_ENOTFOUND;
    }
    if (!same_shape(have, &want)) {
        char hs[96], ws[96];
        cascade__nn_set_err(err, errlen, "%s: tensor '%s' has shape %s, the model expects %s", path,
                            p->name, shape_str(have, hs, sizeof(hs)),
                            shape_str(&want, ws, sizeof(ws)));
        return CASCADE_EFORMAT;
    }
    return 0;
}

int cascade_nn_params_load_from(cascade_nn_params *ps, const cascade_safetensors *st,
                                const char *path, char *err, size_t errlen)
{
    size_t n = cascade_nn_params_count(ps);
    for (size_t i = 0; i < n; i++) {
        int rc = check_param(st, path, cascade_nn_params_at(ps, i), err, errlen);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(ps, i);
        memcpy(p->value, cascade_safetensors_find(st, p->name)->data, p->size * sizeof(float));
    }
    return 0;
}

int cascade_nn_params_load(cascade_nn_params *ps, const char *path, char *err, size_t errlen)
{
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st) /* err says why; a file that is not there is told apart */
        return access(path, F_OK) != 0 ? CASCADE_ENOTFOUND : CASCADE_EFORMAT;
    int rc = cascade_nn_params_load_from(ps, st, path, err, errlen);
    cascade_safetensors_destroy(st);
    return rc;
}
