/* Hashed-feature logistic regression: sparse Adagrad training, scoring by
 * summing the active weights, safetensors persistence. The Adagrad
 * accumulators exist only while training (allocated on the first update). */
#include "hashlr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

#define ADAGRAD_EPS 1e-6f

struct cascade_hashlr {
    unsigned bits;
    size_t n;  /* 2^bits */
    float *w;  /* n weights */
    float *g2; /* n Adagrad accumulators, NULL until the first update */
    float bias, bias_g2;
    char spec[64];
    char version[128];
};

int cascade_hashlr_copy_weights(cascade_hashlr *dst, const cascade_hashlr *src, char *err,
                                size_t errlen)
{
    if (dst->bits != src->bits || strcmp(dst->spec, src->spec) != 0) {
        snprintf(err, errlen, "2^%u weights of features \"%s\", need 2^%u of \"%s\"", src->bits,
                 src->spec, dst->bits, dst->spec);
        return CASCADE_EINVAL;
    }
    memcpy(dst->w, src->w, dst->n * sizeof(float));
    dst->bias = src->bias;
    return 0;
}

void cascade_hashlr_train_defaults(struct cascade_hashlr_train_opts *o)
{
    o->learning_rate = 0.05f;
    o->l2 = 1e-6f;
}

cascade_hashlr *cascade_hashlr_create(unsigned bits, const char *spec)
{
    if (bits < CASCADE_HASHLR_MIN_BITS || bits > CASCADE_HASHLR_MAX_BITS)
        return NULL;
    cascade_hashlr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->bits = bits;
    m->n = (size_t)1 << bits;
    if (!(m->w = calloc(m->n, sizeof *m->w))) {
        free(m);
        return NULL;
    }
    snprintf(m->spec, sizeof m->spec, "%s", spec ? spec : "");
    snprintf(m->version, sizeof m->version, "untrained");
    return m;
}

void cascade_hashlr_destroy(cascade_hashlr *m)
{
    if (!m)
        return;
    free(m->w);
    free(m->g2);
    free(m);
}

unsigned cascade_hashlr_bits(const cascade_hashlr *m)
{
    return m->bits;
}

const char *cascade_hashlr_spec(const cascade_hashlr *m)
{
    return m->spec;
}

const char *cascade_hashlr_version(const cascade_hashlr *m)
{
    return m->version;
}

double cascade_hashlr_logit(const cascade_hashlr *m, const uint32_t *idx, size_t n)
{
    double s = m->bias;
    for (size_t i = 0; i < n; i++)
        s += m->w[idx[i] & (m->n - 1)];
    return s;
}

static double sigmoid(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

float cascade_hashlr_predict(const cascade_hashlr *m, const uint32_t *idx, size_t n)
{
    return (float)sigmoid(cascade_hashlr_logit(m, idx, n));
}

double cascade_hashlr_update(cascade_hashlr *m, const uint32_t *idx, size_t n, float y,
                             const struct cascade_hashlr_train_opts *o)
{
    if (!m->g2 && !(m->g2 = calloc(m->n, sizeof *m->g2)))
        return NAN;
    double p = sigmoid(cascade_hashlr_logit(m, idx, n));
    double pc = p < 1e-7 ? 1e-7 : (p > 1 - 1e-7 ? 1 - 1e-7 : p);
    double loss = y > 0.5f ? -log(pc) : -log(1 - pc);
    float g = (float)(p - (double)y);
    m->bias_g2 += g * g;
    m->bias -= o->learning_rate * g / (sqrtf(m->bias_g2) + ADAGRAD_EPS);
    for (size_t i = 0; i < n; i++) {
        uint32_t j = idx[i] & (uint32_t)(m->n - 1);
        float gj = g + o->l2 * m->w[j];
        m->g2[j] += gj * gj;
        m->w[j] -= o->learning_rate * gj / (sqrtf(m->g2[j]) + ADAGRAD_EPS);
    }
    return loss;
}

void cascade_hashlr_set_bias(cascade_hashlr *m, float bias)
{
    m->bias = bias;
}

float cascade_hashlr_bias(const cascade_hashlr *m)
{
    return m->bias;
}

float cascade_hashlr_weight(const cascade_hashlr *m, uint32_t i)
{
    return m->w[i & (m->n - 1)];
}

int cascade_hashlr_save(const cascade_hashlr *m, const char *path, const char *version, char *err,
                        size_t errlen)
{
    char bits[16];
    snprintf(bits, sizeof bits, "%u", m->bits);
    struct cascade_tensor t[2] = {
        {.name = "weight", .ndim = 1, .shape = {(int64_t)m->n}, .data = m->w},
        {.name = "bias", .ndim = 1, .shape = {1}, .data = &m->bias},
    };
    const char *keys[] = {"version", "bits", "spec", "model"};
    const char *vals[] = {version ? version : m->version, bits, m->spec, "hashlr"};
    return cascade_safetensors_write(path, t, 2, keys, vals, 4, err, errlen);
}

/* Parse the "bits" metadata; 0 when absent or out of range. */
static unsigned meta_bits(const cascade_safetensors *st)
{
    const char *s = cascade_safetensors_meta(st, "bits");
    char *end;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || *end || v < CASCADE_HASHLR_MIN_BITS || v > CASCADE_HASHLR_MAX_BITS)
        return 0;
    return (unsigned)v;
}

cascade_hashlr *cascade_hashlr_load(const char *path, char *err, size_t errlen)
{
    cascade_hashlr *m = NULL;
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return NULL;
    unsigned bits = meta_bits(st);
    const struct cascade_tensor *w = cascade_safetensors_find(st, "weight");
    const struct cascade_tensor *b = cascade_safetensors_find(st, "bias");
    if (!bits) {
        snprintf(err, errlen,
                 "%s: metadata \"bits\" missing or not in %d..%d (not a hashlr model?)", path,
                 CASCADE_HASHLR_MIN_BITS, CASCADE_HASHLR_MAX_BITS);
        goto out;
    }
    if (!w || !b || w->ndim != 1 || w->shape[0] != ((int64_t)1 << bits) || b->ndim != 1 ||
        b->shape[0] != 1) {
        snprintf(err, errlen, "%s: expected tensors weight [%lld] and bias [1]", path,
                 (long long)1 << bits);
        goto out;
    }
    const char *spec = cascade_safetensors_meta(st, "spec");
    if (!(m = cascade_hashlr_create(bits, spec))) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    memcpy(m->w, w->data, m->n * sizeof *m->w);
    m->bias = b->data[0];
    const char *version = cascade_safetensors_meta(st, "version");
    snprintf(m->version, sizeof m->version, "%s", version ? version : "unknown");
out:
    cascade_safetensors_destroy(st);
    return m;
}
