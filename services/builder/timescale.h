/* Time constants that fit the log they are built from. A half-life or a
 * recency window that is not set explicitly is derived from the log's own
 * time span: share × span, clamped to [min, max] days. A day-long log gets
 * hours, a months-long one weeks, a log of many years years; an explicit
 * setting (config or flag, 0 = no decay) always wins. How each share was
 * chosen, with the measurements: docs/data.md ("Time-scale defaults"). */
#ifndef CASCADE_BUILDER_TIMESCALE_H
#define CASCADE_BUILDER_TIMESCALE_H

#include "dataset.h"

/* The value of an option left unset: derive it from the log. */
#define CASCADE_TIMESCALE_AUTO (-1.0)

/* Shares of the span of the derived defaults, and the clamp. */
#define CASCADE_TIMESCALE_HOT_SHARE 0.25      /* build.hot.half_life_days */
#define CASCADE_TIMESCALE_NEW_SHARE 0.25      /* build.new.window_days */
#define CASCADE_TIMESCALE_AUTHOR_SHARE 0.5    /* build.authors.half_life_days */
#define CASCADE_TIMESCALE_AFFINITY_SHARE 1.0  /* affinity_half_life_days (load, train) */
#define CASCADE_TIMESCALE_MIN_DAYS (1.0 / 24) /* one hour */
#define CASCADE_TIMESCALE_MAX_DAYS 3650.0

/* The log's time span in days: last event time − first event time (0 for
 * fewer than two distinct times). Reads ds only; O(events). */
double cascade_timescale_span_days(const cascade_dataset *ds);

/* The time constant to use, in days: `days` when it was set (>= 0, 0 = no
 * decay), else share × span_days clamped to [CASCADE_TIMESCALE_MIN_DAYS,
 * CASCADE_TIMESCALE_MAX_DAYS]. Pure. */
double cascade_timescale_days(double days, double share, double span_days);

#endif
