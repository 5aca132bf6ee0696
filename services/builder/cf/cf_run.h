/* Running a CF builder's rows (one per item or user) on a few pthreads: the
 * workers take rows in small chunks from a shared counter, each with its own
 * scratch memory, while the calling thread prints progress lines (rows/s,
 * ETA). Each row is computed by one thread in a fixed order, so results do
 * not depend on the thread count. */
#ifndef CASCADE_BUILDER_CF_RUN_H
#define CASCADE_BUILDER_CF_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_lists.h"

struct cascade_cf_job {
    const char *name; /* progress label, "swing" (borrowed) */
    const char *what; /* unit, "items" (borrowed) */
    size_t rows;
    int threads; /* clamped to [1, 64] */
    bool quiet;
    void *ctx; /* shared, read-only during the run (rows write their own output) */
    /* Per-thread scratch: NULL means out of memory. */
    void *(*scratch_create)(void *ctx);
    void (*scratch_destroy)(void *scratch);
    /* Compute one row; returns the work done (pairs scored). */
    size_t (*row)(void *ctx, void *scratch, size_t row);
};

/* Run every row. *work receives the summed work, *seconds the elapsed time.
 * Returns 0 or CASCADE_ENOMEM when a worker's scratch could not be allocated
 * (the rows are then incomplete). */
int cascade_cf_run(const struct cascade_cf_job *job, size_t *work, double *seconds);

/* The common end of a CF builder's compute: when setup_rc (the status of
 * allocating res and building the index) is 0, run job into res, setting
 * res->pairs and res->seconds (elapsed since start_us). On failure res is
 * freed and, when out of memory, err says "<name>: out of memory for
 * <rows> <what>". Returns setup_rc or the run's status. */
int cascade_cf_run_lists(const struct cascade_cf_job *job, int setup_rc,
                         struct cascade_cf_lists *res, int64_t start_us, char *err, size_t errlen);

#endif
