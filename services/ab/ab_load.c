/* Reading the log: TSV exports (a header line names the fields, one entry
 * per line, tab-separated) or the Redis streams themselves, paged with
 * XRANGE by millisecond ids. Serves are read for [from, to]; events from
 * `from` to the end of the stream, since a click comes after its serve (an
 * event only counts when its serve is in the range). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ab_internal.h"
#include "error.h"
#include "redis.h"

#define TSV_MAX_FIELDS 32
#define XRANGE_PAGE 5000

static int add_entry(struct ab_log *log, bool serves, const struct ab_fields *f, int64_t from_ms,
                     int64_t to_ms, char *err, size_t errlen)
{
    return serves ? ab_log_add_serve(log, f, from_ms, to_ms, err, errlen)
                  : ab_log_add_event(log, f, err, errlen);
}

/* Split line in place at tabs into at most TSV_MAX_FIELDS fields. */
static size_t split_tabs(char *line, char **fields)
{
    size_t n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < TSV_MAX_FIELDS;) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

int ab_load_tsv(struct ab_log *log, const char *path, bool serves, int64_t from_ms, int64_t to_ms,
                char *err, size_t errlen)
{
    char *header = NULL, *line = NULL, *names[TSV_MAX_FIELDS], *values[TSV_MAX_FIELDS];
    size_t hcap = 0, lcap = 0, n_names, lineno = 1;
    char why[512];
    int rc = CASCADE_EINVAL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CASCADE_EINVAL;
    }
    if (getline(&header, &hcap, f) < 0) {
        snprintf(err, errlen, "%s: empty file (expected a header line naming the fields)", path);
        goto out;
    }
    n_names = split_tabs(header, names);
    while (getline(&line, &lcap, f) >= 0) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\0')
            continue;
        size_t n = split_tabs(line, values);
        if (n != n_names) {
            snprintf(err, errlen, "%s:%zu: %zu fields, the header has %zu", path, lineno, n,
                     n_names);
            goto out;
        }
        struct ab_fields fl = {(const char *const *)names, (const char *const *)values, n};
        if ((rc = add_entry(log, serves, &fl, from_ms, to_ms, why, sizeof why)) != 0) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            goto out;
        }
    }
    rc = 0;
out:
    free(line);
    free(header);
    fclose(f);
    return rc;
}

/* One XRANGE entry [id, [field, value, ...]] into fields (borrowed). */
static int entry_fields(const redisReply *e, const char **names, const char **values, size_t *n)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return CASCADE_EINVAL;
    const redisReply *kv = e->element[1];
    *n = 0;
    for (size_t i = 0; i + 1 < kv->elements && *n < TSV_MAX_FIELDS; i += 2) {
        if (kv->element[i]->type != REDIS_REPLY_STRING ||
            kv->element[i + 1]->type != REDIS_REPLY_STRING)
            return CASCADE_EINVAL;
        names[*n] = kv->element[i]->str;
        values[(*n)++] = kv->element[i + 1]->str;
    }
    return 0;
}

static int read_stream(struct ab_log *log, cascade_redis *r, const char *key, bool serves,
                       int64_t from_ms, int64_t to_ms, char *err, size_t errlen)
{
    char start[64], end[64], why[512];
    const char *names[TSV_MAX_FIELDS], *values[TSV_MAX_FIELDS];
    snprintf(start, sizeof start, "%" PRId64, from_ms);
    if (serves && to_ms != INT64_MAX)
        snprintf(end, sizeof end, "%" PRId64, to_ms);
    else
        snprintf(end, sizeof end, "+");
    for (;;) {
        redisReply *reply = NULL;
        int rc = cascade_redis_command(r, &reply, "XRANGE %s %s %s COUNT %d", key, start, end,
                                       XRANGE_PAGE);
        if (rc) {
            snprintf(err, errlen, "XRANGE %s: %s", key, cascade_redis_error(r));
            return rc;
        }
        size_t got = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
        for (size_t i = 0; i < got && rc == 0; i++) {
            size_t n;
            const redisReply *e = reply->element[i];
            if (entry_fields(e, names, values, &n) != 0) {
                snprintf(err, errlen, "%s: malformed stream entry", key);
                rc = CASCADE_EINVAL;
                break;
            }
            struct ab_fields f = {names, values, n};
            if ((rc = add_entry(log, serves, &f, INT64_MIN, INT64_MAX, why, sizeof why)) != 0)
                snprintf(err, errlen, "%s entry %s: %s", key, e->element[0]->str, why);
        }
        if (rc == 0 && got > 0) /* the next page starts after the last id */
            snprintf(start, sizeof start, "(%s", reply->element[got - 1]->element[0]->str);
        freeReplyObject(reply);
        if (rc)
            return rc;
        if (got < XRANGE_PAGE)
            return 0;
    }
}

int ab_load_redis(struct ab_log *log, const char *addr, const char *ns, int64_t from_ms,
                  int64_t to_ms, char *err, size_t errlen)
{
    struct cascade_redis_tool_conn conn;
    struct cascade_redis_opts o;
    char key[256];
    if (cascade_redis_tool_opts(addr, 10000, &conn, &o, err, errlen) != 0)
        return CASCADE_EINVAL;
    cascade_redis *r = cascade_redis_create(&o);
    cascade_redis_tool_wipe(&conn);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    snprintf(key, sizeof key, "%s:serves", ns);
    int rc = read_stream(log, r, key, true, from_ms, to_ms, err, errlen);
    if (rc == 0) {
        snprintf(key, sizeof key, "%s:events", ns);
        rc = read_stream(log, r, key, false, from_ms, to_ms, err, errlen);
    }
    cascade_redis_destroy(r);
    return rc;
}
