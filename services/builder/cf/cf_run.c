/* Worker threads over CF rows with chunked work stealing from one atomic
 * counter and progress reporting from the calling thread. */
#include "cf_run.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "progress.h"

#define MAX_THREADS 64
#define ROWS_PER_GRAB 64

struct run_state {
    const struct cascade_cf_job *job;
    atomic_size_t next;
    atomic_size_t done;
    atomic_size_t work;
    atomic_int failed;
};

static void *worker(void *arg)
{
    struct run_state *st = arg;
    const struct cascade_cf_job *job = st->job;
    void *scratch = job->scratch_create(job->ctx);
    if (!scratch) {
        atomic_store(&st->failed, CASCADE_ENOMEM);
        return NULL;
    }
    while (!atomic_load(&st->failed)) {
        size_t start = atomic_fetch_add(&st->next, ROWS_PER_GRAB);
        if (start >= job->rows)
            break;
        size_t end = start + ROWS_PER_GRAB < job->rows ? start + ROWS_PER_GRAB : job->rows;
        size_t work = 0;
        for (size_t r = start; r < end; r++)
            work += job->row(job->ctx, scratch, r);
        atomic_fetch_add(&st->work, work);
        atomic_fetch_add(&st->done, end - start);
    }
    job->scratch_destroy(scratch);
    return NULL;
}

/* Wait for the workers, printing progress about once a second. */
static void watch(struct run_state *st, struct cascade_progress *prog)
{
    const struct timespec tick = {0, 50 * 1000 * 1000};
    while (atomic_load(&st->done) < st->job->rows && !atomic_load(&st->failed)) {
        nanosleep(&tick, NULL);
        cascade_progress_update(prog, atomic_load(&st->done));
    }
}

int cascade_cf_run(const struct cascade_cf_job *job, size_t *work, double *seconds)
{
    struct run_state st = {.job = job};
    struct cascade_progress prog;
    pthread_t tid[MAX_THREADS];
    int threads = job->threads < 1 ? 1 : (job->threads > MAX_THREADS ? MAX_THREADS : job->threads);
    int started = 0;
    atomic_init(&st.next, 0);
    atomic_init(&st.done, 0);
    atomic_init(&st.work, 0);
    atomic_init(&st.failed, 0);
    cascade_progress_start(&prog, job->name, job->what, job->rows, job->quiet);
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker, &st) != 0)
            break;
    if (started == 0)
        worker(&st); /* no thread could be created: do the work here */
    else
        watch(&st, &prog);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    *seconds = cascade_progress_finish(&prog, atomic_load(&st.done));
    *work = atomic_load(&st.work);
    return atomic_load(&st.failed);
}

int cascade_cf_run_lists(const struct cascade_cf_job *job, int setup_rc,
                         struct cascade_cf_lists *res, int64_t start_us, char *err, size_t errlen)
{
    int rc = setup_rc;
    if (rc == 0) {
        double run_s = 0;
        rc = cascade_cf_run(job, &res->pairs, &run_s);
        res->seconds = (double)(cascade_now_us() - start_us) / 1e6;
    }
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "%s: out of memory for %zu %s", job->name, job->rows, job->what);
    if (rc != 0)
        cascade_cf_lists_free(res);
    return rc;
}
