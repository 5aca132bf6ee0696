/* Progress lines for offline jobs: "load: items 2000/10000 (12345/s, ETA 1s)",
 * printed to stderr at most once a second plus a final line, so long runs show
 * they are alive without flooding logs. Not thread-safe: update from one thread. */
#ifndef CASCADE_BUILDER_PROGRESS_H
#define CASCADE_BUILDER_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct cascade_progress {
    const char *job;  /* "load" (borrowed) */
    const char *what; /* "items" (borrowed) */
    uint64_t total;   /* 0 = unknown */
    int64_t start_us;
    int64_t last_us;
    bool quiet;
};

/* Start counting; prints nothing yet. */
void cascade_progress_start(struct cascade_progress *p, const char *job, const char *what,
                            uint64_t total, bool quiet);
/* Report done units; prints when a second has passed since the last line. */
void cascade_progress_update(struct cascade_progress *p, uint64_t done);
/* Print the final line (done units, rate, elapsed). Returns elapsed seconds. */
double cascade_progress_finish(struct cascade_progress *p, uint64_t done);

#endif
