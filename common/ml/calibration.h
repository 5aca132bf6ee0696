/* Calibration of predicted probabilities: undoing negative down-sampling
 * (p = α·q / (1 − q + α·q), SPEC §5) and measuring calibration error (ECE). */
#ifndef CASCADE_CALIBRATION_H
#define CASCADE_CALIBRATION_H

#include <stddef.h>

/* The probability on the full data of a prediction q made by a model trained
 * with negatives kept at rate alpha (0 < alpha ≤ 1): α·q / (1 − q + α·q).
 * alpha = 1 returns q unchanged. */
double cascade_calibrate_downsampled(double q, double alpha);

/* In place on p [n]: p[i] = cascade_calibrate_downsampled(p[i], alpha). */
void cascade_calibrate_downsampled_array(float *p, size_t n, double alpha);

/* The logit shift that does the same on logits: logit(p) = logit(q) + log α. */
double cascade_calibrate_logit_shift(double alpha);

/* Expected calibration error of predictions p [n] against 0/1 (or soft)
 * labels [n] over n_bins equal-width bins of [0, 1]:
 * Σ_bins (|bin| / n) · |mean p − mean label|. 0 when n or n_bins is 0. */
double cascade_ece(const float *p, const float *labels, size_t n, size_t n_bins);

#endif
