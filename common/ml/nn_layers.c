/* Layers with parameters: the dense layer (y = x·Wᵀ + b, W stored [out, in]
 * as torch.nn.Linear) over OpenBLAS sgemm, and the embedding table with pooled
 * bags whose backward pass scatters into the used rows only. */
#include "nn.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "nn_internal.h"

/* "<prefix>.<suffix>" into buf; CASCADE_EINVAL (with err) when it does not fit. */
static int param_name(char *buf, size_t len, const char *prefix, const char *suffix, char *err,
                      size_t errlen)
{
    int n = snprintf(buf, len, "%s.%s", prefix ? prefix : "", suffix);
    if (!prefix || !*prefix || n < 0 || (size_t)n >= len) {
        cascade__nn_set_err(err, errlen, "parameter prefix '%s': empty or too long",
                            prefix ? prefix : "");
        return CASCADE_EINVAL;
    }
    return 0;
}

static void init_weight(struct cascade_nn_param *w, enum cascade_nn_init init,
                        struct cascade_rng *rng)
{
    if (init == CASCADE_NN_INIT_XAVIER_UNIFORM)
        cascade_nn_init_xavier_uniform(w, rng);
    else if (init == CASCADE_NN_INIT_HE_UNIFORM)
        cascade_nn_init_he_uniform(w, rng);
}

int cascade_nn_dense_init(struct cascade_nn_dense *d, cascade_nn_params *ps, const char *prefix,
                          size_t in, size_t out, enum cascade_nn_init init, struct cascade_rng *rng,
                          char *err, size_t errlen)
{
    char wname[256], bname[256];
    memset(d, 0, sizeof(*d));
    if (init != CASCADE_NN_INIT_ZERO && !rng) {
        cascade__nn_set_err(err, errlen, "dense '%s': random initialisation needs an rng",
                            prefix ? prefix : "");
        return CASCADE_EINVAL;
    }
    if (!cascade__nn_blas_ok(in, out, 0)) {
        cascade__nn_set_err(err, errlen, "dense '%s': %zu × %zu is too large for BLAS",
                            prefix ? prefix : "", out, in);
        return CASCADE_EINVAL;
    }
    int rc = param_name(wname, sizeof(wname), prefix, "weight", err, errlen);
    if (rc == 0)
        rc = param_name(bname, sizeof(bname), prefix, "bias", err, errlen);
    if (rc < 0)
        return rc;
    if (cascade_nn_params_find(ps, bname)) {
        /* Checked before adding the weight, so a clash leaves ps as it was. */
        cascade__nn_set_err(err, errlen, "parameter '%s': name already used", bname);
        return CASCADE_EINVAL;
    }
    d->weight = cascade_nn_params_add(ps, wname, 2, (size_t[]){out, in}, 0, err, errlen);
    if (!d->weight)
        return CASCADE_EINVAL;
    d->bias = cascade_nn_params_add(ps, bname, 1, (size_t[]){out}, 0, err, errlen);
    if (!d->bias)
        return CASCADE_EINVAL;
    d->in = in;
    d->out = out;
    init_weight(d->weight, init, rng);
    return 0;
}

int cascade_nn_dense_forward(const struct cascade_nn_dense *d, const float *x, size_t batch,
                             float *y)
{
    if (!cascade__nn_blas_ok(batch, d->in, d->out))
        return CASCADE_EINVAL;
    if (batch == 0)
        return 0;
    for (size_t b = 0; b < batch; b++)
        memcpy(y + b * d->out, d->bias->value, d->out * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)d->out, (int)d->in, 1.0f,
                x, (int)d->in, d->weight->value, (int)d->in, 1.0f, y, (int)d->out);
    return 0;
}

int cascade_nn_dense_backward(struct cascade_nn_dense *d, const float *x, const float *dy,
                              size_t batch, float *dx)
{
    if (!cascade__nn_blas_ok(batch, d->in, d->out))
        return CASCADE_EINVAL;
    if (batch == 0)
        return 0;
    int B = (int)batch, in = (int)d->in, out = (int)d->out;
    /* dW [out, in] += dyᵀ [out, B] · x [B, in] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f, dy, out, x, in, 1.0f,
                d->weight->grad, in);
    float *db = d->bias->grad;
    for (size_t b = 0; b < batch; b++)
        for (size_t o = 0; o < d->out; o++)
            db[o] += dy[b * d->out + o];
    /* dx [B, in] = dy [B, out] · W [out, in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, dy, out,
                    d->weight->value, in, 0.0f, dx, in);
    return 0;
}

int cascade_nn_embedding_init(struct cascade_nn_embedding *e, cascade_nn_params *ps,
                              const char *prefix, size_t num, size_t dim, enum cascade_nn_pool pool,
                              float init_std, struct cascade_rng *rng, char *err, size_t errlen)
{
    char name[256];
    memset(e, 0, sizeof(*e));
    int rc = param_name(name, sizeof(name), prefix, "weight", err, errlen);
    if (rc < 0)
        return rc;
    e->table = cascade_nn_params_add(ps, name, 2, (size_t[]){num, dim}, CASCADE_NN_PARAM_SPARSE,
                                     err, errlen);
    if (!e->table)
        return CASCADE_EINVAL;
    e->num = num;
    e->dim = dim;
    e->pool = pool;
    if (rng && init_std > 0.0f)
        cascade_nn_init_normal(e->table, rng, init_std);
    return 0;
}

int cascade_nn_bags_check(const struct cascade_nn_bags *bags, size_t num, char *err, size_t errlen)
{
    if (bags->offsets[0] != 0) {
        cascade__nn_set_err(err, errlen, "bags: offsets[0] is %zu, must be 0", bags->offsets[0]);
        return CASCADE_EINVAL;
    }
    for (size_t b = 0; b < bags->batch; b++) {
        if (bags->offsets[b + 1] < bags->offsets[b]) {
            cascade__nn_set_err(err, errlen, "bags: offsets decrease at bag %zu", b);
            return CASCADE_EINVAL;
        }
        for (size_t i = bags->offsets[b]; i < bags->offsets[b + 1]; i++) {
            if (bags->ids[i] >= num) {
                cascade__nn_set_err(err, errlen, "bags: bag %zu has id %u, table has %zu rows", b,
                                    bags->ids[i], num);
                return CASCADE_EINVAL;
            }
        }
    }
    return 0;
}

/* The factor every id of bag b is multiplied by on top of its weight. */
static float bag_scale(const struct cascade_nn_embedding *e, const struct cascade_nn_bags *bags,
                       size_t b)
{
    size_t count = bags->offsets[b + 1] - bags->offsets[b];
    return e->pool == CASCADE_NN_POOL_MEAN && count > 0 ? 1.0f / (float)count : 1.0f;
}

int cascade_nn_embedding_forward(const struct cascade_nn_embedding *e,
                                 const struct cascade_nn_bags *bags, float *out)
{
    if (cascade_nn_bags_check(bags, e->num, NULL, 0) < 0)
        return CASCADE_EINVAL;
    size_t dim = e->dim;
    for (size_t b = 0; b < bags->batch; b++) {
        float *o = out + b * dim, scale = bag_scale(e, bags, b);
        memset(o, 0, dim * sizeof(float));
        for (size_t i = bags->offsets[b]; i < bags->offsets[b + 1]; i++) {
            float w = scale * (bags->weights ? bags->weights[i] : 1.0f);
            const float *row = e->table->value + (size_t)bags->ids[i] * dim;
            for (size_t k = 0; k < dim; k++)
                o[k] += w * row[k];
        }
    }
    return 0;
}

int cascade_nn_embedding_backward(struct cascade_nn_embedding *e,
                                  const struct cascade_nn_bags *bags, const float *dout)
{
    if (cascade_nn_bags_check(bags, e->num, NULL, 0) < 0)
        return CASCADE_EINVAL;
    size_t dim = e->dim;
    for (size_t b = 0; b < bags->batch; b++) {
        const float *d = dout + b * dim;
        float scale = bag_scale(e, bags, b);
        for (size_t i = bags->offsets[b]; i < bags->offsets[b + 1]; i++) {
            float w = scale * (bags->weights ? bags->weights[i] : 1.0f);
            size_t id = bags->ids[i];
            float *g = e->table->grad + id * dim;
            for (size_t k = 0; k < dim; k++)
                g[k] += w * d[k];
            cascade_nn_param_touch_row(e->table, id);
        }
    }
    return 0;
}
