/* Negative down-sampling calibration and expected calibration error. With
 * negatives kept at rate α the odds the model learns are the true odds / α,
 * so p/(1−p) = α·q/(1−q), which gives p = α·q / (1 − q + α·q). */
#include "calibration.h"

#include <math.h>
#include <stdlib.h>

double cascade_calibrate_downsampled(double q, double alpha)
{
    double denom = 1.0 - q + alpha * q;
    return denom > 0.0 ? alpha * q / denom : 1.0;
}

void cascade_calibrate_downsampled_array(float *p, size_t n, double alpha)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)cascade_calibrate_downsampled(p[i], alpha);
}

double cascade_calibrate_logit_shift(double alpha)
{
    return log(alpha);
}

double cascade_ece(const float *p, const float *labels, size_t n, size_t n_bins)
{
    if (n == 0 || n_bins == 0)
        return 0.0;
    double *sum_p = calloc(n_bins, sizeof(double));
    double *sum_y = calloc(n_bins, sizeof(double));
    size_t *count = calloc(n_bins, sizeof(size_t));
    double ece = NAN;
    if (!sum_p || !sum_y || !count)
        goto out;
    for (size_t i = 0; i < n; i++) {
        double q = p[i] < 0.0f ? 0.0 : p[i] > 1.0f ? 1.0 : p[i];
        size_t bin = (size_t)(q * (double)n_bins);
        if (bin >= n_bins)
            bin = n_bins - 1;
        sum_p[bin] += p[i];
        sum_y[bin] += labels[i];
        count[bin]++;
    }
    ece = 0.0;
    for (size_t b = 0; b < n_bins; b++)
        if (count[b])
            ece += fabs(sum_p[b] - sum_y[b]) / (double)n;
out:
    free(sum_p);
    free(sum_y);
    free(count);
    return ece;
}
