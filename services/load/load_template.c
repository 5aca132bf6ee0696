/* ghz's call-data templates ({{.RequestNumber}}, {{randomInt 1 1000}}, ...):
 * the subset of Go's text/template that ghz's documentation uses, expanded
 * once per call before the JSON is parsed. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"

/* A growing output string. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void putf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The project's generator (rng.h): reproducible for a given --seed. */
static uint64_t next_random(struct cascade_load_template_ctx *c)
{
    return cascade_rng_next(&c->rng);
}

static void put_uuid(struct sbuf *b, struct cascade_load_template_ctx *c)
{
    uint64_t hi = next_random(c), lo = next_random(c);
    /* Version 4, variant 10xx, as a random UUID. */
    hi = (hi & ~(uint64_t)0xf000) | 0x4000;
    lo = (lo & ~((uint64_t)0xc << 60)) | ((uint64_t)0x8 << 60);
    putf(b, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, hi >> 32,
         (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48, lo & (uint64_t)0xffffffffffff);
}

static const char *method_part(const struct cascade_load_method *m, const char *what)
{
    static __thread char buf[160];
    if (!m)
        return "";
    if (strcmp(what, "full") == 0)
        return m->full_name;
    if (strcmp(what, "input") == 0)
        return m->input ? m->input->name : "";
    if (strcmp(what, "output") == 0)
        return m->output ? m->output->name : "";
    snprintf(buf, sizeof buf, "%s", m->full_name);
    char *dot = strrchr(buf, '.');
    if (!dot)
        return "";
    if (strcmp(what, "method") == 0)
        return dot + 1;
    *dot = '\0';
    return buf; /* service, fully qualified, as ghz's .ServiceName */
}

/* Parse up to max integer arguments after a function name. */
static int int_args(const char *s, int64_t *v, int max)
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || end == s || (*end && *end != ' ' && *end != '\t'))
            return -1;
        v[n++] = x;
        s = end;
    }
}

/* Expand one action (the text between the braces, trimmed). */
static int action(struct sbuf *b, const char *a, struct cascade_load_template_ctx *c, char *err,
                  size_t errlen)
{
    struct timespec now;
    int64_t v[2];
    if (strcmp(a, ".RequestNumber") == 0) {
        putf(b, "%" PRIu64, c->request_number);
    } else if (strcmp(a, ".UUID") == 0 || strcmp(a, "newUUID") == 0) {
        put_uuid(b, c);
    } else if (strcmp(a, ".FullyQualifiedName") == 0) {
        putf(b, "%s", method_part(c->method, "full"));
    } else if (strcmp(a, ".MethodName") == 0) {
        putf(b, "%s", method_part(c->method, "method"));
    } else if (strcmp(a, ".ServiceName") == 0) {
        putf(b, "%s", method_part(c->method, "service"));
    } else if (strcmp(a, ".InputName") == 0) {
        putf(b, "%s", method_part(c->method, "input"));
    } else if (strcmp(a, ".OutputName") == 0) {
        putf(b, "%s", method_part(c->method, "output"));
    } else if (strncmp(a, ".Timestamp", 10) == 0) {
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        if (strcmp(a, ".TimestampUnix") == 0) {
            putf(b, "%" PRId64, ns / 1000000000);
        } else if (strcmp(a, ".TimestampUnixMilli") == 0) {
            putf(b, "%" PRId64, ns / 1000000);
        } else if (strcmp(a, ".TimestampUnixNano") == 0) {
            putf(b, "%" PRId64, ns);
        } else if (strcmp(a, ".Timestamp") == 0) {
            struct tm tm;
            char t[40];
            gmtime_r(&now.tv_sec, &tm);
            strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
            putf(b, "%s.%09ldZ", t, now.tv_nsec);
        } else {
            goto unknown;
        }
    } else if (strncmp(a, "randomInt", 9) == 0 && (a[9] == ' ' || a[9] == '\t')) {
        if (int_args(a + 9, v, 2) != 2 || v[0] < 0 || v[1] <= v[0]) {
            snprintf(err, errlen, "template {{%s}}: expected randomInt MIN MAX with 0 <= MIN < MAX",
                     a);
            return -1;
        }
        putf(b, "%" PRId64, v[0] + (int64_t)(next_random(c) % (uint64_t)(v[1] - v[0])));
    } else if (strncmp(a, "randomString", 12) == 0 && (a[12] == ' ' || a[12] == '\t')) {
        static const char alphabet[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        if (int_args(a + 12, v, 1) != 1 || v[0] < 0 || v[0] > 4096) {
            snprintf(err, errlen, "template {{%s}}: expected randomString N with 0 <= N <= 4096",
                     a);
            return -1;
        }
        for (int64_t i = 0; i < v[0]; i++)
            put(b, &alphabet[next_random(c) % (sizeof alphabet - 1)], 1);
    } else {
        goto unknown;
    }
    return 0;
unknown:
    snprintf(err, errlen,
             "template {{%s}}: unknown action (cascade-load knows .RequestNumber, .UUID, "
             ".Timestamp*, .FullyQualifiedName, .MethodName, .ServiceName, .InputName, "
             ".OutputName, newUUID, randomInt MIN MAX, randomString N)",
             a);
    return -1;
}

char *cascade_load_template_expand(const char *text, struct cascade_load_template_ctx *ctx,
                                   char *err, size_t errlen)
{
    struct sbuf b = {0};
    put(&b, "", 0);
    const char *p = text;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            put(&b, p, strlen(p));
            break;
        }
        put(&b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(err, errlen, "template: \"{{\" at offset %zu is never closed",
                     (size_t)(open - text));
            goto fail;
        }
        char a[256];
        const char *s = open + 2, *e = close;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if ((size_t)(e - s) >= sizeof a) {
            snprintf(err, errlen, "template: action at offset %zu is too long",
                     (size_t)(open - text));
            goto fail;
        }
        memcpy(a, s, (size_t)(e - s));
        a[e - s] = '\0';
        if (action(&b, a, ctx, err, errlen) != 0)
            goto fail;
        p = close + 2;
    }
    if (b.oom) {
        snprintf(err, errlen, "template: out of memory");
        goto fail;
    }
    return b.s;
fail:
    free(b.s);
    return NULL;
}
