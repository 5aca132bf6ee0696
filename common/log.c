/* Logging: one line per event on stderr with a UTC timestamp, level, component
 * and request id. Each line is formatted in a local buffer, its untrusted parts
 * escaped, and written with a single fwrite, so lines from different threads never
 * interleave and no argument can start a line of its own. A small fixed table of
 * causes (call site + level) rate-limits repeats to one line per second. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "error.h"

#define LOG_LINE_MAX 4096
/* Room kept at the end of a line for the suppressed-count suffix and the newline. */
#define LOG_SUFFIX_ROOM 96
/* Escaped request ids longer than this are cut: the id must not crowd out the message. */
#define LOG_RID_MAX 200
#define LOG_WINDOW_MS 1000
/* Causes are call sites, a few hundred at most; a cause that finds no slot within
 * LOG_PROBES of its hash shares the overflow cause, so memory stays fixed. */
#define LOG_CAUSES 256
#define LOG_PROBES 8

/* One cause: what identifies it, when its last line was printed, and how many of its
 * lines were dropped since. */
struct log_cause {
    bool claimed;
    bool printed;
    enum cascade_log_level level;
    int line;
    const char *file;
    const char *fmt;
    int64_t window_start_ms;
    uint64_t suppressed;
};

/* Process-wide by design (see log.h): written once in main before threads start. */
static char log_component[64] = "cascade";
static atomic_int log_min_level = CASCADE_LOG_INFO;
static int64_t (*log_clock)(void) = cascade_now_ms;

/* The rate limiter's state; log_lock guards all of it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_cause log_causes[LOG_CAUSES];
static struct log_cause log_overflow;
static int64_t log_last_sweep_ms;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void cascade_log_init(const char *component, enum cascade_log_level level)
{
    static bool exit_hook;
    if (component)
        snprintf(log_component, sizeof(log_component), "%s", component);
    atomic_store(&log_min_level, (int)level);
    pthread_mutex_lock(&log_lock);
    memset(log_causes, 0, sizeof(log_causes));
    memset(&log_overflow, 0, sizeof(log_overflow));
    log_last_sweep_ms = 0;
    pthread_mutex_unlock(&log_lock);
    if (!exit_hook)
        exit_hook = atexit(cascade_log_flush_suppressed) == 0;
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

void cascade_log__set_clock(int64_t (*now_ms)(void))
{
    log_clock = now_ms ? now_ms : cascade_now_ms;
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

/* ---- escaping ---- */

/* Length of the well-formed UTF-8 sequence at s[0..len) (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when s[0] does not start one. */
static size_t log_utf8_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* True for a well-formed multi-byte character that breaks or reorders a line on a terminal
 * or in a log viewer: C1 controls (U+0080–U+009F), the line and paragraph separators
 * (U+2028, U+2029) and the bidirectional embedding, override and isolate controls. */
static bool log_unsafe_char(const unsigned char *s, size_t n)
{
    if (n == 2)
        return s[0] == 0xc2 && s[1] <= 0x9f;
    if (n == 3 && s[0] == 0xe2 && s[1] == 0x80)
        return s[2] >= 0xa8 && s[2] <= 0xae;
    if (n == 3 && s[0] == 0xe2 && s[1] == 0x81)
        return s[2] >= 0xa6 && s[2] <= 0xa9;
    return false;
}

/* Append "\xNN" for byte c at dst. */
static void log_hex_byte(char *dst, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    dst[0] = '\\';
    dst[1] = 'x';
    dst[2] = hex[c >> 4];
    dst[3] = hex[c & 0xf];
}

/* Copy src[0..len) into dst[0..cap) (no NUL), escaping what could forge or garble a line:
 * \n \r \t and \\ by name, other C0 bytes, DEL, invalid UTF-8 and the characters of
 * log_unsafe_char as \xNN per byte. Stops before a character that does not fit whole, so an
 * escape or a UTF-8 sequence is never cut. Returns the bytes written. */
static size_t log_escape(char *dst, size_t cap, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t seq = log_utf8_len(s + i, len - i);
        char named = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\\' ? '\\' : 0;
        size_t take = seq ? seq : 1;
        bool hex = seq == 0 || (seq == 1 && (c < 0x20 || c == 0x7f)) ||
                   (seq > 1 && log_unsafe_char(s + i, seq));
        size_t need = named ? 2 : hex ? 4 * take : take;
        if (out + need > cap)
            break;
        if (named) {
            dst[out] = '\\';
            dst[out + 1] = named;
        } else if (hex) {
            for (size_t k = 0; k < take; k++)
                log_hex_byte(dst + out + 4 * k, s[i + k]);
        } else {
            memcpy(dst + out, s + i, take);
        }
        out += need;
        i += take;
    }
    return out;
}

/* ---- rate limiting ---- */

/* The slot of a cause, claimed on first use; the overflow cause when its probe window is full.
 * Caller holds log_lock. */
static struct log_cause *log_cause_find(const char *file, int line, enum cascade_log_level level,
                                        const char *fmt)
{
    uint64_t h = (uint64_t)(uintptr_t)fmt * 0x9e3779b97f4a7c15ull;
    h ^= ((uint64_t)(uintptr_t)file + (uint64_t)line * 31u + (uint64_t)level) *
         0xff51afd7ed558ccdull;
    h ^= h >> 29;
    for (size_t p = 0; p < LOG_PROBES; p++) {
        struct log_cause *c = &log_causes[(h + p) % LOG_CAUSES];
        if (!c->claimed) {
            *c = (struct log_cause){
                .claimed = true, .level = level, .line = line, .file = file, .fmt = fmt};
            return c;
        }
        if (c->fmt == fmt && c->file == file && c->line == line && c->level == level)
            return c;
    }
    return &log_overflow;
}

/* Whether a line of this cause may print at now_ms. When it may, *suppressed is how many of its
 * lines were dropped since its last one and *span_ms how long ago that was. */
static bool log_admit(const char *file, int line, enum cascade_log_level level, const char *fmt,
                      int64_t now_ms, uint64_t *suppressed, int64_t *span_ms)
{
    pthread_mutex_lock(&log_lock);
    struct log_cause *c = log_cause_find(file, line, level, fmt);
    bool ok = !c->printed || now_ms - c->window_start_ms >= LOG_WINDOW_MS;
    if (ok) {
        *suppressed = c->suppressed;
        *span_ms = now_ms - c->window_start_ms;
        c->printed = true;
        c->window_start_ms = now_ms;
        c->suppressed = 0;
        if (c == &log_overflow)
            c->level = CASCADE_LOG_DEBUG;
    } else {
        c->suppressed++;
        /* The overflow cause mixes levels; its summary takes the highest it dropped. */
        if (c == &log_overflow && level > c->level)
            c->level = level;
    }
    pthread_mutex_unlock(&log_lock);
    return ok;
}

/* Print a summary line for cause c's unreported repeats and restart its window. Caller holds
 * log_lock. */
static void log_summary(struct log_cause *c, int64_t now_ms)
{
    char line[LOG_LINE_MAX];
    const size_t room = sizeof(line) - LOG_SUFFIX_ROOM;
    size_t n = log_timestamp(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, " %s %s (and %llu more ", level_names[c->level],
                     log_component, (unsigned long long)c->suppressed);
    n += m > 0 ? (size_t)m : 0;
    if (c == &log_overflow) {
        m = snprintf(line + n, sizeof(line) - n, "lines of other causes");
        n += m > 0 ? (size_t)m : 0;
    } else {
        m = snprintf(line + n, sizeof(line) - n, "like \"");
        n += m > 0 ? (size_t)m : 0;
        n += log_escape(line + n, room - n, c->fmt, strlen(c->fmt));
        line[n++] = '"';
        if (c->file) {
            const char *base = strrchr(c->file, '/');
            m = snprintf(line + n, sizeof(line) - n, " at %s:%d", base ? base + 1 : c->file,
                         c->line);
            n += m > 0 ? (size_t)m : 0;
        }
    }
    if (n > room)
        n = room;
    m = snprintf(line + n, sizeof(line) - n, " in the last %.1f s)\n",
                 (double)(now_ms - c->window_start_ms) / 1000.0);
    n += m > 0 ? (size_t)m : 0;
    fwrite(line, 1, n, stderr);
    c->suppressed = 0;
    c->window_start_ms = now_ms;
    if (c == &log_overflow)
        c->level = CASCADE_LOG_DEBUG;
}

/* Report the repeats of every cause whose window ended (all of them when all is set), so a
 * cause that went quiet still gets its count out. Without all, runs at most once a window. */
static void log_sweep(int64_t now_ms, bool all)
{
    pthread_mutex_lock(&log_lock);
    if (all || now_ms - log_last_sweep_ms >= LOG_WINDOW_MS) {
        log_last_sweep_ms = now_ms;
        for (size_t i = 0; i <= LOG_CAUSES; i++) {
            struct log_cause *c = i < LOG_CAUSES ? &log_causes[i] : &log_overflow;
            if (c->suppressed > 0 && (all || now_ms - c->window_start_ms >= LOG_WINDOW_MS))
                log_summary(c, now_ms);
        }
    }
    pthread_mutex_unlock(&log_lock);
}

void cascade_log_flush_suppressed(void)
{
    log_sweep(log_clock(), true);
    fflush(stderr);
}

/* ---- formatting ---- */

/* Format and write one admitted line; suppressed/span_ms describe the repeats dropped before. */
static void log_write(enum cascade_log_level level, const char *request_id, uint64_t suppressed,
                      int64_t span_ms, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    char msg[LOG_LINE_MAX];
    const size_t room = sizeof(line) - LOG_SUFFIX_ROOM;
    size_t n = log_timestamp(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, " %s %s ", level_names[level], log_component);
    n += m > 0 ? (size_t)m : 0;
    if (request_id && *request_id) {
        line[n++] = '[';
        n += log_escape(line + n, LOG_RID_MAX, request_id, strlen(request_id));
        line[n++] = ']';
        line[n++] = ' ';
    }
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    /* The length vsnprintf reports counts NUL bytes from %c, which are escaped like the rest. */
    size_t len = m > 0 ? ((size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1) : 0;
    n += log_escape(line + n, room - n, msg, len);
    if (suppressed > 0) {
        m = snprintf(line + n, sizeof(line) - n, " (and %llu more like this in the last %.1f s)",
                     (unsigned long long)suppressed, (double)span_ms / 1000.0);
        n += m > 0 ? (size_t)m : 0;
    }
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

/* The body of the entry points: level filter, rate limit (not for DEBUG, nor for
 * operator events), sweep, write. */
static void log_emit(const char *file, int line, enum cascade_log_level level,
                     const char *request_id, bool limited, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&log_min_level) || (int)level < 0 || level > CASCADE_LOG_ERROR)
        return;
    int64_t now_ms = log_clock();
    uint64_t suppressed = 0;
    int64_t span_ms = 0;
    /* DEBUG is opt-in (--log-level debug) to see every event, so it is never limited. */
    if (limited && level > CASCADE_LOG_DEBUG &&
        !log_admit(file, line, level, fmt, now_ms, &suppressed, &span_ms))
        return;
    log_sweep(now_ms, false);
    log_write(level, request_id, suppressed, span_ms, fmt, ap);
}

void cascade_log(enum cascade_log_level level, const char *request_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(NULL, 0, level, request_id, true, fmt, ap);
    va_end(ap);
}

void cascade_log_at(const char *file, int line, enum cascade_log_level level,
                    const char *request_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(file, line, level, request_id, true, fmt, ap);
    va_end(ap);
}

void cascade_log_event(enum cascade_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(NULL, 0, level, NULL, false, fmt, ap);
    va_end(ap);
}
