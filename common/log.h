/* Logging: one line per event on stderr, "2026-11-28T19:26:22.123Z INFO recall [rid] message".
 * The level and component name are process-wide, set once in main. Thread-safe. */
#ifndef CASCADE_LOG_H
#define CASCADE_LOG_H

enum cascade_log_level { CASCADE_LOG_DEBUG = 0, CASCADE_LOG_INFO, CASCADE_LOG_WARN, CASCADE_LOG_ERROR };

/* Set the component name printed on every line (copied) and the minimum level. */
void cascade_log_init(const char *component, enum cascade_log_level level);

/* Parse "debug", "info", "warn" or "error"; returns 0 and sets *out, or CASCADE_EINVAL. */
int cascade_log_parse_level(const char *name, enum cascade_log_level *out);

/* Log one line; request_id may be NULL or "". */
void cascade_log(enum cascade_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CASCADE_DEBUG(rid, ...) cascade_log(CASCADE_LOG_DEBUG, rid, __VA_ARGS__)
#define CASCADE_INFO(rid, ...) cascade_log(CASCADE_LOG_INFO, rid, __VA_ARGS__)
#define CASCADE_WARN(rid, ...) cascade_log(CASCADE_LOG_WARN, rid, __VA_ARGS__)
#define CASCADE_ERROR(rid, ...) cascade_log(CASCADE_LOG_ERROR, rid, __VA_ARGS__)

#endif
