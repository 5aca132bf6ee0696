/* Time: monotonic milliseconds for deadlines (absolute), wall-clock seconds for data. */
#ifndef CASCADE_CLOCK_H
#define CASCADE_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. Deadlines are absolute values on this clock. */
int64_t cascade_now_ms(void);

/* Microseconds on CLOCK_MONOTONIC, for latency measurement. */
int64_t cascade_now_us(void);

/* Unix time in seconds (CLOCK_REALTIME). */
int64_t cascade_wall_s(void);

/* Unix time in milliseconds (CLOCK_REALTIME), e.g. to compare with Redis TIME. */
int64_t cascade_wall_ms(void);

/* Milliseconds left until an absolute monotonic deadline (negative when passed).
 * A deadline of INT64_MAX means none and returns INT64_MAX. */
int64_t cascade_ms_left(int64_t deadline_ms);

#endif
