/* Logging: one line per event on stderr, "2026-11-28T19:26:22.123Z INFO recall [rid] message".
 * The level and component name are process-wide, set once in main. Thread-safe.
 * Every line is safe to print whatever the arguments hold: control characters, backslashes and
 * invalid UTF-8 in the message and the request id are escaped ("\n", "\x1b", "\\"), so one call
 * is always exactly one line. Repeats are rate-limited: at most one line per cause (call site and
 * level) per second, DEBUG
 * excepted; the next line of that cause says how many were suppressed. */
#ifndef CASCADE_LOG_H
#define CASCADE_LOG_H

#include <stdint.h>

enum cascade_log_level {
    CASCADE_LOG_DEBUG = 0,
    CASCADE_LOG_INFO,
    CASCADE_LOG_WARN,
    CASCADE_LOG_ERROR
};

/* Set the component name printed on every line (copied) and the minimum level. Also forgets
 * the rate limiter's causes (tests call it between cases) and, the first time, registers
 * cascade_log_flush_suppressed with atexit. Call before threads start. */
void cascade_log_init(const char *component, enum cascade_log_level level);

/* Parse "debug", "info", "warn" or "error"; returns 0 and sets *out, or CASCADE_EINVAL. */
int cascade_log_parse_level(const char *name, enum cascade_log_level *out);

/* Log one line; request_id may be NULL or "". The cause for rate limiting is (fmt, level), so
 * prefer the CASCADE_<LEVEL> macros, which add the call site. */
void cascade_log(enum cascade_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log one line from a call site: file (a string literal, not copied; NULL for none) and line
 * name the cause together with fmt and level. What the macros call. */
void cascade_log_at(const char *file, int line, enum cascade_log_level level,
                    const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Log one line that is never rate-limited: for rare events an operator
 * triggered and must see each of (a config reload and its outcome). */
void cascade_log_event(enum cascade_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print one summary line for every cause with suppressed repeats not yet reported
 * ("(and 12 more like "fmt" at file.c:40 in the last 0.4 s)") and reset their counts. Runs at
 * exit; safe to call any time from any thread. */
void cascade_log_flush_suppressed(void);

/* Tests only: replace the monotonic millisecond clock the rate limiter reads (NULL restores
 * cascade_now_ms). Not thread-safe against concurrent logging. */
void cascade_log__set_clock(int64_t (*now_ms)(void));

#define CASCADE_DEBUG(rid, ...)                                                                    \
    cascade_log_at(__FILE__, __LINE__, CASCADE_LOG_DEBUG, rid, __VA_ARGS__)
#define CASCADE_INFO(rid, ...)                                                                     \
    cascade_log_at(__FILE__, __LINE__, CASCADE_LOG_INFO, rid, __VA_ARGS__)
#define CASCADE_WARN(rid, ...)                                                                     \
    cascade_log_at(__FILE__, __LINE__, CASCADE_LOG_WARN, rid, __VA_ARGS__)
#define CASCADE_ERROR(rid, ...)                                                                    \
    cascade_log_at(__FILE__, __LINE__, CASCADE_LOG_ERROR, rid, __VA_ARGS__)

#endif
