/* The ML half of common/ (common/ml/): process-wide setup of the library the
 * models compute with (OpenBLAS). */
#ifndef CASCADE_ML_H
#define CASCADE_ML_H

/* Once per process, before the first model call and before any worker thread
 * starts (a service's main calls it ahead of cascade_service_main): one
 * OpenBLAS thread per caller unless OPENBLAS_NUM_THREADS says otherwise.
 * Requests already run in parallel on the service's workers and each BLAS call
 * is small, so OpenBLAS's own threads would only spin between calls. Not
 * thread-safe; calling it again does no harm. */
void cascade_ml_init(void);

#endif
