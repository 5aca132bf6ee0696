/* Losses of the nn library with their gradients: binary cross-entropy on
 * logits, softmax cross-entropy, the two triplet losses of two-tower pairwise
 * training, and MSE. Sums run in double; each returns the batch mean. */
#include "nn.h"

#include <math.h>

/* log(1 + e^z) without overflow or loss of precision for any z. */
static double softplus(double z)
{
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* softplus(z) − y·z is −[y·log σ(z) + (1−y)·log(1−σ(z))] rewritten so that
 * no exp overflows and no log sees 0. */
double cascade_nn_bce_logits(const float *z, const float *y, const float *weights, size_t n,
                             float *dz)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double w = weights ? weights[i] : 1.0;
        sum += w * (softplus(z[i]) - (double)y[i] * z[i]);
        if (dz)
            dz[i] = (float)(w * (sigmoid(z[i]) - y[i]) / (double)n);
    }
    return sum / (double)n;
}

/* −log softmax(z)[t] = logsumexp(z) − z[t], with the max subtracted first. */
static double xent_row(const float *z, size_t cols, uint32_t target, double scale, float *dz)
{
    float max = z[0];
    for (size_t j = 1; j < cols; j++)
        if (z[j] > max)
            max = z[j];
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++)
        sum += exp((double)z[j] - max);
    double lse = max + log(sum);
    if (dz)
        for (size_t j = 0; j < cols; j++)
            dz[j] = (float)(scale * (exp((double)z[j] - lse) - (j == target ? 1.0 : 0.0)));
    return lse - z[target];
}

double cascade_nn_softmax_xent(const float *logits, size_t rows, size_t cols,
                               const uint32_t *targets, float *dlogits)
{
    if (rows == 0)
        return 0.0;
    double sum = 0.0, scale = 1.0 / (double)rows;
    for (size_t r = 0; r < rows; r++) {
        if (targets[r] >= cols)
            return NAN;
        sum += xent_row(logits + r * cols, cols, targets[r], scale,
                        dlogits ? dlogits + r * cols : NULL);
    }
    return sum * scale;
}

double cascade_nn_triplet_hinge(const float *cos_pos, const float *cos_neg, size_t n, float margin,
                                float *dpos, float *dneg)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0, scale = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double l = (double)margin + cos_neg[i] - cos_pos[i];
        bool active = l > 0.0;
        sum += active ? l : 0.0;
        if (dpos)
            dpos[i] = active ? (float)-scale : 0.0f;
        if (dneg)
            dneg[i] = active ? (float)scale : 0.0f;
    }
    return sum * scale;
}

double cascade_nn_triplet_log(const float *cos_pos, const float *cos_neg, size_t n, float *dpos,
                              float *dneg)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0, scale = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = (double)cos_neg[i] - cos_pos[i];
        double s = sigmoid(d) * scale;
        sum += softplus(d);
        if (dpos)
            dpos[i] = (float)-s;
        if (dneg)
            dneg[i] = (float)s;
    }
    return sum * scale;
}

double cascade_nn_mse(const float *pred, const float *target, size_t n, float *dpred)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - target[i];
        sum += d * d;
        if (dpred)
            dpred[i] = (float)(2.0 * d / (double)n);
    }
    return sum / (double)n;
}
