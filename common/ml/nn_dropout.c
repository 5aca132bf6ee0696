/* Dropout for training: element-wise inverted dropout, and expert dropout for
 * MMoE, which drops whole experts per example (against gate polarisation)
 * while always keeping at least one. All draws come from the caller's rng. */
#include "nn.h"

#include <string.h>

void cascade_nn_dropout_forward(struct cascade_rng *rng, float rate, const float *x, size_t n,
                                uint8_t *keep, float *y)
{
    float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++) {
        keep[i] = rate <= 0.0f || cascade_rng_uniform(rng) >= (double)rate;
        y[i] = keep[i] ? x[i] * scale : 0.0f;
    }
}

void cascade_nn_dropout_backward(float rate, const uint8_t *keep, const float *dy, size_t n,
                                 float *dx)
{
    float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++)
        dx[i] = keep[i] ? dy[i] * scale : 0.0f;
}

void cascade_nn_expert_dropout_mask(struct cascade_rng *rng, float rate, size_t batch,
                                    size_t n_experts, uint8_t *keep)
{
    if (n_experts == 0)
        return;
    for (size_t b = 0; b < batch; b++) {
        uint8_t *k = keep + b * n_experts;
        size_t kept = 0;
        for (size_t e = 0; e < n_experts; e++) {
            k[e] = rate <= 0.0f || cascade_rng_uniform(rng) >= (double)rate;
            kept += k[e];
        }
        if (kept == 0)
            k[cascade_rng_below(rng, n_experts)] = 1;
    }
}

void cascade_nn_expert_dropout_apply(const uint8_t *keep, float rate, size_t batch,
                                     size_t n_experts, size_t width, float *x)
{
    float scale = 1.0f / (1.0f - rate);
    for (size_t be = 0; be < batch * n_experts; be++) {
        float *block = x + be * width;
        if (!keep[be]) {
            memset(block, 0, width * sizeof(float));
            continue;
        }
        for (size_t h = 0; h < width; h++)
            block[h] *= scale;
    }
}
