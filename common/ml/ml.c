/* Process-wide setup of the ML half of common/. See ml.h. */
#include <stdlib.h>

#include <cblas.h>

#include "ml.h"

/* Requests already run in parallel on the service's worker threads and each
 * BLAS call is small (one user vector, a few hundred MMoE rows): OpenBLAS's
 * own threads would only spin (sched_yield) between calls, which cost the
 * Recall service a fifth of its CPU. */
void cascade_ml_init(void)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env)
        openblas_set_num_threads(1);
}
