/* Named parameter sets for the nn library: each parameter owns its value,
 * gradient and optimiser state; sparse ones also track which rows received a
 * gradient so that embedding updates touch nothing else. */
#include "nn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "nn_internal.h"

struct cascade_nn_params {
    struct cascade_nn_param **items;
    size_t n, cap;
};

void cascade__nn_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

cascade_nn_params *cascade_nn_params_create(void)
{
    return calloc(1, sizeof(cascade_nn_params));
}

static void param_free(struct cascade_nn_param *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->value);
    free(p->grad);
    free(p->m);
    free(p->v);
    free(p->row_touched);
    free(p->touched);
    free(p);
}

void cascade_nn_params_destroy(cascade_nn_params *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++)
        param_free(ps->items[i]);
    free(ps->items);
    free(ps);
}

/* Validate ndim/shape and fill rows, cols and size; 0 or CASCADE_EINVAL. */
static int param_shape(struct cascade_nn_param *p, int ndim, const size_t *shape)
{
    if (ndim != 1 && ndim != 2)
        return CASCADE_EINVAL;
    p->ndim = ndim;
    p->rows = ndim == 1 ? 1 : shape[0];
    p->cols = ndim == 1 ? shape[0] : shape[1];
    if (p->rows == 0 || p->cols == 0 || p->cols > SIZE_MAX / sizeof(float) / p->rows)
        return CASCADE_EINVAL;
    p->size = p->rows * p->cols;
    return 0;
}

static struct cascade_nn_param *param_new(const char *name, int ndim, const size_t *shape,
                                          unsigned flags, int *rc)
{
    struct cascade_nn_param *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    *rc = param_shape(p, ndim, shape);
    if (*rc < 0)
        goto fail;
    *rc = CASCADE_ENOMEM;
    p->name = strdup(name);
    p->value = calloc(p->size, sizeof(float));
    p->grad = calloc(p->size, sizeof(float));
    if (!p->name || !p->value || !p->grad)
        goto fail;
    if (flags & CASCADE_NN_PARAM_SPARSE) {
        p->sparse = true;
        p->row_touched = calloc(p->rows, 1);
        p->touched = calloc(p->rows, sizeof(size_t));
        if (!p->row_touched || !p->touched)
            goto fail;
    }
    *rc = 0;
    return p;
fail:
    param_free(p);
    return NULL;
}

static int params_reserve(cascade_nn_params *ps)
{
    if (ps->n < ps->cap)
        return 0;
    size_t cap = ps->cap ? ps->cap * 2 : 16;
    struct cascade_nn_param **items = realloc(ps->items, cap * sizeof(*items));
    if (!items)
        return CASCADE_ENOMEM;
    ps->items = items;
    ps->cap = cap;
    return 0;
}

struct cascade_nn_param *cascade_nn_params_add(cascade_nn_params *ps, const char *name, int ndim,
                                               const size_t *shape, unsigned flags, char *err,
                                               size_t errlen)
{
    int rc = CASCADE_ENOMEM;
    if (!name || !*name || cascade_nn_params_find(ps, name)) {
        cascade__nn_set_err(err, errlen, "parameter '%s': %s", name ? name : "",
                            name && *name ? "name already used" : "empty name");
        return NULL;
    }
    struct cascade_nn_param *p = NULL;
    if (params_reserve(ps) == 0)
        p = param_new(name, ndim, shape, flags, &rc);
    if (!p) {
        cascade__nn_set_err(err, errlen, "parameter '%s': %s", name,
                            rc == CASCADE_EINVAL ? "shape must be 1-D or 2-D with no zero or "
                                                   "oversized dimension"
                                                 : "out of memory");
        return NULL;
    }
    ps->items[ps->n++] = p;
    return p;
}

struct cascade_nn_param *cascade_nn_params_find(const cascade_nn_params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0)
            return ps->items[i];
    return NULL;
}

size_t cascade_nn_params_count(const cascade_nn_params *ps)
{
    return ps->n;
}

struct cascade_nn_param *cascade_nn_params_at(const cascade_nn_params *ps, size_t i)
{
    return i < ps->n ? ps->items[i] : NULL;
}

size_t cascade_nn_params_numel(const cascade_nn_params *ps)
{
    size_t total = 0;
    for (size_t i = 0; i < ps->n; i++)
        total += ps->items[i]->size;
    return total;
}

void cascade_nn_param_touch_row(struct cascade_nn_param *p, size_t row)
{
    if (!p->sparse || p->row_touched[row])
        return;
    p->row_touched[row] = 1;
    p->touched[p->n_touched++] = row;
}

/* Clear one parameter's gradient: the touched rows of a sparse one (the
 * others are zero already), all of a dense one. */
void cascade__nn_param_zero_grad(struct cascade_nn_param *p)
{
    if (!p->sparse) {
        memset(p->grad, 0, p->size * sizeof(float));
        return;
    }
    for (size_t i = 0; i < p->n_touched; i++) {
        size_t r = p->touched[i];
        memset(p->grad + r * p->cols, 0, p->cols * sizeof(float));
        p->row_touched[r] = 0;
    }
    p->n_touched = 0;
}

void cascade_nn_params_zero_grad(cascade_nn_params *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        cascade__nn_param_zero_grad(ps->items[i]);
}
