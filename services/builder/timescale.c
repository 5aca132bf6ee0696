/* Time constants derived from the log's span (timescale.h). */
#include "timescale.h"

#include <stdint.h>

double cascade_timescale_span_days(const cascade_dataset *ds)
{
    if (ds == NULL || ds->n_events == 0)
        return 0.0;
    int64_t first = ds->events[0].ts, last = ds->events[0].ts;
    for (size_t i = 1; i < ds->n_events; i++) {
        int64_t ts = ds->events[i].ts;
        first = ts < first ? ts : first;
        last = ts > last ? ts : last;
    }
    return (double)(last - first) / 86400.0;
}

double cascade_timescale_days(double days, double share, double span_days)
{
    if (days >= 0.0)
        return days;
    double d = share * span_days;
    if (!(d >= CASCADE_TIMESCALE_MIN_DAYS)) /* also a NaN span */
        return CASCADE_TIMESCALE_MIN_DAYS;
    return d < CASCADE_TIMESCALE_MAX_DAYS ? d : CASCADE_TIMESCALE_MAX_DAYS;
}
