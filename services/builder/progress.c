/* Throttled progress lines with rate and ETA for the offline jobs. */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>

#include "clock.h"

#define PROGRESS_INTERVAL_US 1000000

void cascade_progress_start(struct cascade_progress *p, const char *job, const char *what,
                            uint64_t total, bool quiet)
{
    p->job = job;
    p->what = what;
    p->total = total;
    p->quiet = quiet;
    p->start_us = p->last_us = cascade_now_us();
}

static void print_line(const struct cascade_progress *p, uint64_t done, int64_t now, bool final)
{
    double secs = (double)(now - p->start_us) / 1e6;
    double rate = secs > 0 ? (double)done / secs : 0;
    if (p->total)
        fprintf(stderr, "%s: %s %" PRIu64 "/%" PRIu64, p->job, p->what, done, p->total);
    else
        fprintf(stderr, "%s: %s %" PRIu64, p->job, p->what, done);
    if (final)
        fprintf(stderr, " (%.0f/s, %.2fs)\n", rate, secs);
    else if (p->total && rate > 0 && done <= p->total)
        fprintf(stderr, " (%.0f/s, ETA %.0fs)\n", rate, (double)(p->total - done) / rate);
    else
        fprintf(stderr, " (%.0f/s)\n", rate);
}

void cascade_progress_update(struct cascade_progress *p, uint64_t done)
{
    if (p->quiet)
        return;
    int64_t now = cascade_now_us();
    if (now - p->last_us < PROGRESS_INTERVAL_US)
        return;
    p->last_us = now;
    print_line(p, done, now, false);
}

double cascade_progress_finish(struct cascade_progress *p, uint64_t done)
{
    int64_t now = cascade_now_us();
    if (!p->quiet)
        print_line(p, done, now, true);
    return (double)(now - p->start_us) / 1e6;
}
