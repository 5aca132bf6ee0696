/* Parameter-free operations of the nn library with their backward passes:
 * ReLU, sigmoid, row-wise (masked) softmax, L2 normalisation, row dot
 * products, pairwise scores over sgemm, and the MMoE expert mixture. */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "nn_internal.h"

#define L2NORM_EPS 1e-12f

/* v when keep, else +0.0f, without a branch: ReLU's sign is a coin flip per
 * element, and the mispredicted branch of `x > 0 ? x : 0` took most of an
 * MMoE forward pass (perf: 56 % in cascade_nn_relu_forward). The result is
 * bit for bit the one of the branch (NaN and -0.0 give +0.0). */
static inline float keep_or_zero(float v, bool keep)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)keep;
    memcpy(&v, &bits, sizeof v);
    return v;
}

void cascade_nn_relu_forward(const float *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = keep_or_zero(x[i], x[i] > 0.0f);
}

void cascade_nn_relu_backward(const float *y, const float *dy, size_t n, float *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = keep_or_zero(dy[i], y[i] > 0.0f);
}

void cascade_nn_sigmoid_forward(const float *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++) {
        /* exp of a non-positive number only: no overflow for any x. */
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            y[i] = e / (1.0f + e);
        }
    }
}

void cascade_nn_sigmoid_backward(const float *y, const float *dy, size_t n, float *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static void softmax_row(const float *x, const uint8_t *keep, size_t cols, float *y)
{
    float max = -INFINITY;
    for (size_t j = 0; j < cols; j++)
        if ((!keep || keep[j]) && x[j] > max)
            max = x[j];
    if (max == -INFINITY) { /* nothing kept */
        memset(y, 0, cols * sizeof(float));
        return;
    }
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++) {
        y[j] = (!keep || keep[j]) ? expf(x[j] - max) : 0.0f;
        sum += y[j];
    }
    float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < cols; j++)
        y[j] *= inv;
}

void cascade_nn_softmax_forward(const float *x, const uint8_t *keep, size_t rows, size_t cols,
                                float *y)
{
    for (size_t r = 0; r < rows; r++)
        softmax_row(x + r * cols, keep ? keep + r * cols : NULL, cols, y + r * cols);
}

void cascade_nn_softmax_backward(const float *y, const float *dy, size_t rows, size_t cols,
                                 float *dx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        double dot = 0.0;
        for (size_t j = 0; j < cols; j++)
            dot += (double)yr[j] * dyr[j];
        for (size_t j = 0; j < cols; j++)
            dx[r * cols + j] = yr[j] * (dyr[j] - (float)dot);
    }
}

void cascade_nn_l2norm_forward(const float *x, size_t rows, size_t cols, float *y, float *norms)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        double ss = 0.0;
        for (size_t j = 0; j < cols; j++)
            ss += (double)xr[j] * xr[j];
        float norm = (float)sqrt(ss);
        float inv = 1.0f / (norm > L2NORM_EPS ? norm : L2NORM_EPS);
        norms[r] = norm;
        for (size_t j = 0; j < cols; j++)
            y[r * cols + j] = xr[j] * inv;
    }
}

void cascade_nn_l2norm_backward(const float *y, const float *norms, const float *dy, size_t rows,
                                size_t cols, float *dx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        if (norms[r] <= L2NORM_EPS) { /* clamped: y = x / eps is linear in x */
            for (size_t j = 0; j < cols; j++)
                dxr[j] = dyr[j] / L2NORM_EPS;
            continue;
        }
        double dot = 0.0;
        for (size_t j = 0; j < cols; j++)
            dot += (double)yr[j] * dyr[j];
        float inv = 1.0f / norms[r];
        for (size_t j = 0; j < cols; j++)
            dxr[j] = (dyr[j] - yr[j] * (float)dot) * inv;
    }
}

void cascade_nn_rowdot_forward(const float *a, const float *b, size_t rows, size_t cols, float *out)
{
    for (size_t r = 0; r < rows; r++) {
        double dot = 0.0;
        for (size_t j = 0; j < cols; j++)
            dot += (double)a[r * cols + j] * b[r * cols + j];
        out[r] = (float)dot;
    }
}

void cascade_nn_rowdot_backward(const float *a, const float *b, const float *dout, size_t rows,
                                size_t cols, float *da, float *db)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            size_t i = r * cols + j;
            float ai = a[i], bi = b[i]; /* read both first: da may alias b */
            if (da)
                da[i] = dout[r] * bi;
            if (db)
                db[i] = dout[r] * ai;
        }
    }
}

int cascade_nn_matmul_nt_forward(const float *a, const float *b, size_t m, size_t n, size_t k,
                                 float *c)
{
    if (!cascade__nn_blas_ok(m, n, k))
        return CASCADE_EINVAL;
    if (m == 0 || n == 0)
        return 0;
    if (k == 0) {
        memset(c, 0, m * n * sizeof(float));
        return 0;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b,
                (int)k, 0.0f, c, (int)n);
    return 0;
}

int cascade_nn_matmul_nt_backward(const float *a, const float *b, const float *dc, size_t m,
                                  size_t n, size_t k, float *da, float *db)
{
    if (!cascade__nn_blas_ok(m, n, k))
        return CASCADE_EINVAL;
    if (m == 0 || n == 0 || k == 0) {
        if (da)
            memset(da, 0, m * k * sizeof(float));
        if (db)
            memset(db, 0, n * k * sizeof(float));
        return 0;
    }
    /* da [m, k] = dc [m, n] · b [n, k];  db [n, k] = dcᵀ [n, m] · a [m, k] */
    if (da)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)n, 1.0f, dc,
                    (int)n, b, (int)k, 0.0f, da, (int)k);
    if (db)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)k, (int)m, 1.0f, dc,
                    (int)n, a, (int)k, 0.0f, db, (int)k);
    return 0;
}

void cascade_nn_mixture_forward(const float *gates, const float *experts, size_t batch,
                                size_t n_experts, size_t width, float *out)
{
    for (size_t b = 0; b < batch; b++) {
        float *o = out + b * width;
        memset(o, 0, width * sizeof(float));
        for (size_t e = 0; e < n_experts; e++) {
            float g = gates[b * n_experts + e];
            const float *x = experts + (b * n_experts + e) * width;
            for (size_t h = 0; h < width; h++)
                o[h] += g * x[h];
        }
    }
}

void cascade_nn_mixture_backward(const float *gates, const float *experts, const float *dout,
                                 size_t batch, size_t n_experts, size_t width, float *dgates,
                                 float *dexperts)
{
    for (size_t b = 0; b < batch; b++) {
        const float *d = dout + b * width;
        for (size_t e = 0; e < n_experts; e++) {
            size_t be = b * n_experts + e;
            const float *x = experts + be * width;
            if (dgates) {
                double dot = 0.0;
                for (size_t h = 0; h < width; h++)
                    dot += (double)d[h] * x[h];
                dgates[be] = (float)dot;
            }
            if (dexperts)
                for (size_t h = 0; h < width; h++)
                    dexperts[be * width + h] = gates[be] * d[h];
        }
    }
}
