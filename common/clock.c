/* Clocks: monotonic time for deadlines and latency, wall-clock seconds for
 * data timestamps. Deadlines are absolute CLOCK_MONOTONIC milliseconds. */
#include "clock.h"

#include <time.h>

static struct timespec clock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts;
}

int64_t cascade_now_ms(void)
{
    struct timespec ts = clock_read(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cascade_now_us(void)
{
    struct timespec ts = clock_read(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cascade_wall_s(void)
{
    return (int64_t)clock_read(CLOCK_REALTIME).tv_sec;
}

int64_t cascade_wall_ms(void)
{
    struct timespec ts = clock_read(CLOCK_REALTIME);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cascade_ms_left(int64_t deadline_ms)
{
    if (deadline_ms == INT64_MAX)
        return INT64_MAX;
    return deadline_ms - cascade_now_ms();
}
