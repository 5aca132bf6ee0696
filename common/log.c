/* Logging: one line per event on stderr with a UTC timestamp, level, component
 * and request id. Each line is formatted in a local buffer and written with a
 * single fwrite, so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"

#define LOG_LINE_MAX 4096

/* Process-wide by design (see log.h): written once in main before threads start. */
static char log_component[64] = "cascade";
static atomic_int log_min_level = CASCADE_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void cascade_log_init(const char *component, enum cascade_log_level level)
{
    if (component)
        snprintf(log_component, sizeof(log_component), "%s", component);
    atomic_store(&log_min_level, (int)level);
}

int cascade_log_parse_level(const char *name, enum cascade_log_level *out)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; name && i < 4; i++) {
        if (strcasecmp(name, lower[i]) == 0) {
            *out = (enum cascade_log_level)i;
            return 0;
        }
    }
    return CASCADE_EINVAL;
}

/* "2026-11-28T19:26:22.123Z" into buf; returns the length written. */
static size_t log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n + (m > 0 ? (size_t)m : 0);
}

void cascade_log(enum cascade_log_level level, const char *request_id, const char *fmt, ...)
{
    if ((int)level < atomic_load(&log_min_level) || (int)level < 0 || level > CASCADE_LOG_ERROR)
        return;
    char line[LOG_LINE_MAX];
    size_t n = log_timestamp(line, sizeof(line));
    int m;
    if (request_id && *request_id)
        m = snprintf(line + n, sizeof(line) - n, " %s %s [%s] ", level_names[level], log_component,
                     request_id);
    else
        m = snprintf(line + n, sizeof(line) - n, " %s %s ", level_names[level], log_component);
    n += m > 0 ? (size_t)m : 0;
    if (n >= sizeof(line) - 2)
        n = sizeof(line) - 2;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}
