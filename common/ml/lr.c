/* Logistic regression on dense features: mini-batch Adam with L2, the batch
 * forward (X·w) and backward (Xᵀ·g) through OpenBLAS sgemv, safetensors
 * persistence, and the AUC / log-loss metrics used to report on models. */
#include "lr.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "rank_features.h"
#include "rng.h"
#include "safetensors.h"

#define ADAM_BETA1 0.9
#define ADAM_BETA2 0.999
#define ADAM_EPS 1e-8
/* sgemv takes int sizes; predictions are chunked so n never overflows them. */
#define PREDICT_CHUNK ((size_t)1 << 20)

struct cascade_lr {
    size_t dim;
    float *w;
    float b;
    char version[128];
    /* Adam state, kept so that training can continue across cascade_lr_fit calls. */
    float *m_w, *v_w;
    double m_b, v_b;
    int64_t steps;
    int epochs_done;
};

struct scored {
    float score;
    float label;
};

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* log(1 + e^z) without overflow. */
static double softplus(double z)
{
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

cascade_lr *cascade_lr_create(size_t dim)
{
    if (dim == 0)
        return NULL;
    cascade_lr *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->dim = dim;
    m->w = calloc(dim, sizeof(float));
    m->m_w = calloc(dim, sizeof(float));
    m->v_w = calloc(dim, sizeof(float));
    if (!m->w || !m->m_w || !m->v_w) {
        cascade_lr_destroy(m);
        return NULL;
    }
    snprintf(m->version, sizeof(m->version), "untrained");
    return m;
}

void cascade_lr_destroy(cascade_lr *m)
{
    if (!m)
        return;
    free(m->w);
    free(m->m_w);
    free(m->v_w);
    free(m);
}

size_t cascade_lr_dim(const cascade_lr *m)
{
    return m->dim;
}

const char *cascade_lr_version(const cascade_lr *m)
{
    return m->version;
}

const float *cascade_lr_weights(const cascade_lr *m, float *bias)
{
    if (bias)
        *bias = m->b;
    return m->w;
}

void cascade_lr_set_weights(cascade_lr *m, const float *w, float bias)
{
    memcpy(m->w, w, m->dim * sizeof(float));
    m->b = bias;
}

/* z[i] = X[i]·w + b for n rows (n small enough for int). */
static void linear(const cascade_lr *m, const float *X, size_t n, float *z)
{
    for (size_t i = 0; i < n; i++)
        z[i] = m->b;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)m->dim, 1.0f, X, (int)m->dim, m->w, 1,
                1.0f, z, 1);
}

void cascade_lr_predict(const cascade_lr *m, const float *X, size_t n, float *p)
{
    for (size_t off = 0; off < n; off += PREDICT_CHUNK) {
        size_t rows = n - off < PREDICT_CHUNK ? n - off : PREDICT_CHUNK;
        linear(m, X + off * m->dim, rows, p + off);
        for (size_t i = 0; i < rows; i++)
            p[off + i] = (float)sigmoid(p[off + i]);
    }
}

/* Forward and backward pass on one contiguous batch: returns the mean data
 * loss; g receives dLoss/dz per row (scratch of n floats); grad_w gets Xᵀg. */
static double batch_gradient(const cascade_lr *m, const float *X, const float *y, size_t n,
                             float *g, float *grad_w, double *grad_b)
{
    double loss = 0, gb = 0;
    linear(m, X, n, g);
    for (size_t i = 0; i < n; i++) {
        double z = g[i];
        loss += softplus(z) - y[i] * z;
        g[i] = (float)((sigmoid(z) - y[i]) / (double)n);
        gb += g[i];
    }
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)n, (int)m->dim, 1.0f, X, (int)m->dim, g, 1, 0.0f,
                grad_w, 1);
    *grad_b = gb;
    return loss / (double)n;
}

double cascade_lr_loss(const cascade_lr *m, const float *X, const float *y, size_t n, float l2,
                       float *grad_w, float *grad_b)
{
    double loss = 0, gb_total = 0, reg = 0;
    float *g = malloc(PREDICT_CHUNK * sizeof(float));
    float *gw = calloc(m->dim, sizeof(float));
    if (!g || !gw) {
        free(g);
        free(gw);
        return NAN;
    }
    if (grad_w)
        memset(grad_w, 0, m->dim * sizeof(float));
    for (size_t off = 0; off < n; off += PREDICT_CHUNK) {
        size_t rows = n - off < PREDICT_CHUNK ? n - off : PREDICT_CHUNK;
        double gb;
        /* batch_gradient averages over its rows; rescale to the whole set. */
        double part = batch_gradient(m, X + off * m->dim, y + off, rows, g, gw, &gb);
        double frac = (double)rows / (double)n;
        loss += part * frac;
        gb_total += gb * frac;
        if (grad_w)
            for (size_t j = 0; j < m->dim; j++)
                grad_w[j] += (float)(gw[j] * frac);
    }
    for (size_t j = 0; j < m->dim; j++) {
        reg += (double)m->w[j] * m->w[j];
        if (grad_w)
            grad_w[j] += l2 * m->w[j];
    }
    if (grad_b)
        *grad_b = (float)gb_total;
    free(g);
    free(gw);
    return loss + 0.5 * l2 * reg;
}

static void shuffle(size_t *idx, size_t n, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(cascade_rng_splitmix64(&state) % i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

static void adam_step(cascade_lr *m, const float *grad_w, double grad_b, float lr, float l2)
{
    m->steps++;
    double c1 = 1.0 - pow(ADAM_BETA1, (double)m->steps);
    double c2 = 1.0 - pow(ADAM_BETA2, (double)m->steps);
    for (size_t j = 0; j < m->dim; j++) {
        double g = grad_w[j] + l2 * m->w[j];
        m->m_w[j] = (float)(ADAM_BETA1 * m->m_w[j] + (1 - ADAM_BETA1) * g);
        m->v_w[j] = (float)(ADAM_BETA2 * m->v_w[j] + (1 - ADAM_BETA2) * g * g);
        m->w[j] -= (float)(lr * (m->m_w[j] / c1) / (sqrt(m->v_w[j] / c2) + ADAM_EPS));
    }
    m->m_b = ADAM_BETA1 * m->m_b + (1 - ADAM_BETA1) * grad_b;
    m->v_b = ADAM_BETA2 * m->v_b + (1 - ADAM_BETA2) * grad_b * grad_b;
    m->b -= (float)(lr * (m->m_b / c1) / (sqrt(m->v_b / c2) + ADAM_EPS));
}

static void fill_defaults(struct cascade_lr_train_opts *o, const struct cascade_lr_train_opts *in)
{
    memset(o, 0, sizeof(*o));
    if (in)
        *o = *in;
    if (o->epochs <= 0)
        o->epochs = 5;
    if (o->batch_size == 0)
        o->batch_size = 1024;
    if (!(o->learning_rate > 0))
        o->learning_rate = 0.01f;
    if (o->l2 < 0)
        o->l2 = 0;
}

static double now_seconds(void)
{
    return (double)cascade_now_us() / 1e6;
}

/* One pass over the data in shuffled order; returns the mean batch loss. */
static double run_epoch(cascade_lr *m, const float *X, const float *y, const size_t *order,
                        size_t n, const struct cascade_lr_train_opts *o, float *Xb, float *yb,
                        float *g, float *grad_w)
{
    double loss_sum = 0;
    size_t batches = 0;
    for (size_t off = 0; off < n; off += o->batch_size) {
        size_t rows = n - off < o->batch_size ? n - off : o->batch_size;
        for (size_t r = 0; r < rows; r++) {
            memcpy(Xb + r * m->dim, X + order[off + r] * m->dim, m->dim * sizeof(float));
            yb[r] = y[order[off + r]];
        }
        double grad_b;
        loss_sum += batch_gradient(m, Xb, yb, rows, g, grad_w, &grad_b);
        adam_step(m, grad_w, grad_b, o->learning_rate, o->l2);
        batches++;
    }
    return batches ? loss_sum / (double)batches : 0.0;
}

int cascade_lr_fit(cascade_lr *m, const float *X, const float *y, size_t n,
                   const struct cascade_lr_train_opts *opts, char *err, size_t errlen)
{
    struct cascade_lr_train_opts o;
    int rc = 0;
    size_t *order = NULL;
    float *Xb = NULL, *yb = NULL, *g = NULL, *grad_w = NULL;

    fill_defaults(&o, opts);
    if (n == 0) {
        snprintf(err, errlen, "lr: no training examples");
        return CASCADE_EINVAL;
    }
    if (o.batch_size > PREDICT_CHUNK)
        o.batch_size = PREDICT_CHUNK;
    order = malloc(n * sizeof(size_t));
    Xb = malloc(o.batch_size * m->dim * sizeof(float));
    yb = malloc(o.batch_size * sizeof(float));
    g = malloc(o.batch_size * sizeof(float));
    grad_w = malloc(m->dim * sizeof(float));
    if (!order || !Xb || !yb || !g || !grad_w) {
        snprintf(err, errlen, "lr: out of memory for %zu examples", n);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (int e = 0; e < o.epochs; e++) {
        double t0 = now_seconds();
        shuffle(order, n, o.seed + (uint64_t)m->epochs_done);
        double loss = run_epoch(m, X, y, order, n, &o, Xb, yb, g, grad_w);
        double dt = now_seconds() - t0;
        m->epochs_done++;
        if (o.on_epoch)
            o.on_epoch(o.ud, m->epochs_done, loss, dt > 0 ? (double)n / dt : 0.0);
    }
out:
    free(order);
    free(Xb);
    free(yb);
    free(g);
    free(grad_w);
    return rc;
}

void cascade_lr_init_bias(cascade_lr *m, const float *y, size_t n)
{
    double pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i];
    double rate = n ? pos / (double)n : 0.5;
    rate = rate < 1e-4 ? 1e-4 : (rate > 1 - 1e-4 ? 1 - 1e-4 : rate);
    m->b = (float)log(rate / (1 - rate));
}

cascade_lr *cascade_lr_train(const float *X, const float *y, size_t n, size_t dim,
                             const struct cascade_lr_train_opts *opts, char *err, size_t errlen)
{
    cascade_lr *m = cascade_lr_create(dim);
    if (!m) {
        snprintf(err, errlen, dim == 0 ? "lr: dimension must be positive" : "lr: out of memory");
        return NULL;
    }
    cascade_lr_init_bias(m, y, n);
    if (cascade_lr_fit(m, X, y, n, opts, err, errlen) != 0) {
        cascade_lr_destroy(m);
        return NULL;
    }
    return m;
}

/* Feature names for the file's metadata: the rank feature names when the
 * dimension matches them, x0..x{dim-1} otherwise. Caller frees. */
static char *feature_list(size_t dim)
{
    size_t cap = dim * 32 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < dim; i++) {
        char name[32];
        if (dim == CASCADE_RANK_FEATURES)
            snprintf(name, sizeof(name), "%s", cascade_features_rank_name(i));
        else
            snprintf(name, sizeof(name), "x%zu", i);
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", name);
    }
    return s;
}

int cascade_lr_save(const cascade_lr *m, const char *path, const char *version, char *err,
                    size_t errlen)
{
    char dim_text[32];
    char *features = feature_list(m->dim);
    if (!features) {
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    snprintf(dim_text, sizeof(dim_text), "%zu", m->dim);
    struct cascade_tensor tensors[2] = {
        {.name = "weight", .ndim = 1, .shape = {(int64_t)m->dim}, .data = m->w},
        {.name = "bias", .ndim = 1, .shape = {1}, .data = &m->b},
    };
    const char *keys[] = {"version", "features", "dim", "model"};
    const char *values[] = {version ? version : m->version, features, dim_text,
                            "logistic_regression"};
    int rc = cascade_safetensors_write(path, tensors, 2, keys, values, 4, err, errlen);
    free(features);
    return rc;
}

static size_t tensor_size(const struct cascade_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* Version for a file without "version" metadata: its base name, sans extension. */
static void version_from_path(char *buf, size_t len, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, len, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

cascade_lr *cascade_lr_load(const char *path, char *err, size_t errlen)
{
    cascade_lr *m = NULL;
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return NULL;
    const struct cascade_tensor *w = cascade_safetensors_find(st, "weight");
    const struct cascade_tensor *b = cascade_safetensors_find(st, "bias");
    if (!w || !b) {
        snprintf(err, errlen,
                 "%s: not a logistic regression model (needs tensors \"weight\" and \"bias\")",
                 path);
        goto out;
    }
    if (w->ndim != 1 || w->shape[0] <= 0 || tensor_size(b) != 1) {
        snprintf(err, errlen, "%s: \"weight\" must have shape [dim] and \"bias\" shape [1]", path);
        goto out;
    }
    m = cascade_lr_create((size_t)w->shape[0]);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    cascade_lr_set_weights(m, w->data, b->data[0]);
    const char *version = cascade_safetensors_meta(st, "version");
    if (version && *version)
        snprintf(m->version, sizeof(m->version), "%s", version);
    else
        version_from_path(m->version, sizeof(m->version), path);
out:
    cascade_safetensors_destroy(st);
    return m;
}

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;
    return (x > y) - (x < y);
}

double cascade_auc(const float *scores, const float *labels, size_t n)
{
    struct scored *s = malloc(n * sizeof(*s) + 1);
    double pos = 0, rank_sum = 0;
    if (!s)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        s[i].score = scores[i];
        s[i].label = labels[i] > 0.5f ? 1.0f : 0.0f;
        pos += s[i].label;
    }
    qsort(s, n, sizeof(*s), cmp_scored);
    /* Mann-Whitney: sum of the (1-based, tie-averaged) ranks of the positives. */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double pos_in_group = 0;
        while (j < n && s[j].score == s[i].score)
            pos_in_group += s[j++].label;
        rank_sum += pos_in_group * ((double)(i + 1) + (double)j) / 2.0;
        i = j;
    }
    free(s);
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0)
        return 0.5;
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

double cascade_logloss(const float *p, const float *labels, size_t n)
{
    double sum = 0;
    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++) {
        double q = p[i] < 1e-7f ? 1e-7 : (p[i] > 1 - 1e-7f ? 1 - 1e-7 : p[i]);
        sum -= labels[i] > 0.5f ? log(q) : log(1 - q);
    }
    return sum / (double)n;
}
