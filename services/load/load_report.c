/* ghz's report from a finished run: the statistics (count, total, average,
 * fastest, slowest, rps, percentiles, an 11-mark histogram), the summary text
 * and the JSON report with ghz's field names and units (durations in ns,
 * histogram marks in seconds), plus "degraded". */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "load.h"

const char *cascade_load_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    };
    if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0])
        return names[code];
    return "Unknown";
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int cascade_load_stats(const struct cascade_load_report *r, struct cascade_load_stats *st)
{
    static const int pcts[CASCADE_LOAD_PCTLS] = {10, 25, 50, 75, 90, 95, 99};
    memset(st, 0, sizeof *st);
    memcpy(st->percentages, pcts, sizeof pcts);
    st->count = r->count;
    st->total_ns = r->total_ns;
    st->rps = r->total_ns > 0 ? (double)r->count / ((double)r->total_ns / 1e9) : 0;
    bool all = r->opts && r->opts->count_errors;
    int64_t *lat = malloc((r->count ? r->count : 1) * sizeof *lat);
    if (!lat)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        if (all || r->results[i].status == GRPC_STATUS_OK)
            lat[n++] = r->results[i].latency_ns;
    st->n_lat = n;
    if (n > 0) {
        qsort(lat, n, sizeof *lat, cmp_i64);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += (double)lat[i];
        st->average_ns = (int64_t)llround(sum / (double)n);
        st->fastest_ns = lat[0];
        st->slowest_ns = lat[n - 1];
        /* Nearest rank: the smallest latency with at least p% of calls at or below it. */
        for (int p = 0; p < CASCADE_LOAD_PCTLS; p++) {
            size_t rank = (size_t)ceil((double)pcts[p] / 100.0 * (double)n);
            st->pctl_ns[p] = lat[rank ? rank - 1 : 0];
        }
        /* ghz's histogram: 11 marks from fastest to slowest in 10 equal steps;
         * a latency counts in the first mark at or above it. */
        st->n_buckets = CASCADE_LOAD_BUCKETS;
        double step = (double)(st->slowest_ns - st->fastest_ns) / (CASCADE_LOAD_BUCKETS - 1);
        double mark_ns[CASCADE_LOAD_BUCKETS];
        for (int b = 0; b < CASCADE_LOAD_BUCKETS; b++)
            mark_ns[b] = (double)st->fastest_ns + step * b;
        mark_ns[CASCADE_LOAD_BUCKETS - 1] = (double)st->slowest_ns;
        int b = 0;
        for (size_t i = 0; i < n; i++) {
            while (b < CASCADE_LOAD_BUCKETS - 1 && (double)lat[i] > mark_ns[b])
                b++;
            st->bucket_count[b]++;
        }
        for (int k = 0; k < CASCADE_LOAD_BUCKETS; k++)
            st->mark_s[k] = mark_ns[k] / 1e9;
    }
    free(lat);
    return 0;
}

/* A (name, count) tally kept in first-seen order. */
struct tally {
    const char **name;
    uint64_t *count;
    size_t n;
};

static int tally_add(struct tally *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0) {
            t->count[i]++;
            return 0;
        }
    const char **names = realloc(t->name, (t->n + 1) * sizeof *names);
    if (!names)
        return CASCADE_ENOMEM;
    t->name = names;
    uint64_t *counts = realloc(t->count, (t->n + 1) * sizeof *counts);
    if (!counts)
        return CASCADE_ENOMEM;
    t->count = counts;
    t->name[t->n] = name;
    t->count[t->n++] = 1;
    return 0;
}

static void tally_free(struct tally *t)
{
    free(t->name);
    free(t->count);
}

static int tallies(const struct cascade_load_report *r, struct tally *status, struct tally *errors)
{
    for (size_t i = 0; i < r->count; i++) {
        if (tally_add(status, cascade_load_status_name(r->results[i].status)) != 0)
            return CASCADE_ENOMEM;
        if (r->results[i].error && tally_add(errors, r->results[i].error) != 0)
            return CASCADE_ENOMEM;
    }
    return 0;
}

/* A duration as ghz prints it: "12.34 ms". */
static void put_ms(FILE *out, int64_t ns)
{
    fprintf(out, "%.2f ms", (double)ns / 1e6);
}

int cascade_load_write_summary(const struct cascade_load_report *r, FILE *out)
{
    struct cascade_load_stats st;
    struct tally status = {0}, errors = {0};
    int rc = cascade_load_stats(r, &st);
    if (rc == 0)
        rc = tallies(r, &status, &errors);
    if (rc != 0)
        goto out;
    fprintf(out, "\nSummary:\n");
    fprintf(out, "  Count:\t%" PRIu64 "\n", st.count);
    fprintf(out, "  Total:\t");
    put_ms(out, st.total_ns);
    fprintf(out, "\n  Slowest:\t");
    put_ms(out, st.slowest_ns);
    fprintf(out, "\n  Fastest:\t");
    put_ms(out, st.fastest_ns);
    fprintf(out, "\n  Average:\t");
    put_ms(out, st.average_ns);
    fprintf(out, "\n  Requests/sec:\t%.2f\n", st.rps);
    if (r->opts && r->opts->rps > 0)
        fprintf(out, "  Schedule:\topen loop at %.2f calls/s (latency from the scheduled send)\n",
                r->opts->rps);
    fprintf(out, "\nResponse time histogram:\n");
    uint64_t max = 0;
    for (size_t b = 0; b < st.n_buckets; b++)
        if (st.bucket_count[b] > max)
            max = st.bucket_count[b];
    for (size_t b = 0; b < st.n_buckets; b++) {
        fprintf(out, "  %.3f [%" PRIu64 "]\t|", st.mark_s[b] * 1e3, st.bucket_count[b]);
        int bar = max ? (int)(st.bucket_count[b] * 40 / max) : 0;
        for (int k = 0; k < bar; k++)
            fputs("\xe2\x88\x8e", out); /* U+220E, ghz's bar */
        fputc('\n', out);
    }
    fprintf(out, "\nLatency distribution:\n");
    for (int p = 0; p < CASCADE_LOAD_PCTLS && st.n_lat; p++) {
        fprintf(out, "  %d %% in ", st.percentages[p]);
        put_ms(out, st.pctl_ns[p]);
        fputc('\n', out);
    }
    fprintf(out, "\nStatus code distribution:\n");
    for (size_t i = 0; i < status.n; i++)
        fprintf(out, "  [%s]\t%" PRIu64 " responses\n", status.name[i], status.count[i]);
    if (errors.n) {
        fprintf(out, "\nError distribution:\n");
        for (size_t i = 0; i < errors.n; i++)
            fprintf(out, "  [%" PRIu64 "]\t%s\n", errors.count[i], errors.name[i]);
    }
    if (r->opts && r->opts->method.output &&
        protobuf_c_message_descriptor_get_field_by_name(r->opts->method.output, "degraded"))
        fprintf(out, "\nDegraded answers:\t%" PRIu64 " of %" PRIu64 "\n", r->degraded, st.count);
    fputc('\n', out);
out:
    tally_free(&status);
    tally_free(&errors);
    return rc;
}

/* RFC 3339 with nanoseconds, as Go's time.Time marshals. */
static json_t *rfc3339(int64_t wall_ns)
{
    time_t s = (time_t)(wall_ns / 1000000000);
    struct tm tm;
    char buf[64], t[40];
    gmtime_r(&s, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sizeof buf, "%s.%09" PRId64 "Z", t, wall_ns % 1000000000);
    return json_string(buf);
}

static json_t *options_json(const struct cascade_load_opts *o)
{
    if (!o)
        return json_object();
    json_t *j = json_pack("{s:s, s:s, s:I, s:i, s:I, s:f, s:i, s:I, s:b}", "host", o->target,
                          "call", o->method.full_name, "total", (json_int_t)o->total, "concurrency",
                          o->concurrency, "duration", (json_int_t)o->duration_ns, "rps", o->rps,
                          "connections", o->connections, "timeout",
                          (json_int_t)o->timeout_ms * 1000000, "insecure", o->insecure);
    json_t *data = j ? json_loads(o->data, 0, NULL) : NULL;
    if (j)
        json_object_set_new(j, "data", data ? data : json_string(o->data));
    return j;
}

static json_t *report_json(const struct cascade_load_report *r)
{
    struct cascade_load_stats st;
    struct tally status = {0}, errors = {0};
    json_t *j = NULL;
    if (cascade_load_stats(r, &st) != 0 || tallies(r, &status, &errors) != 0)
        goto out;
    json_t *err_dist = json_object(), *status_dist = json_object();
    json_t *lat_dist = json_array(), *hist = json_array(), *details = json_array();
    j = json_object();
    json_object_set_new(j, "endReason", json_string(r->end_reason ? r->end_reason : "normal"));
    json_object_set_new(j, "date", rfc3339(r->date_s * 1000000000));
    json_object_set_new(j, "options", options_json(r->opts));
    json_object_set_new(j, "count", json_integer((json_int_t)st.count));
    json_object_set_new(j, "total", json_integer(st.total_ns));
    json_object_set_new(j, "average", json_integer(st.average_ns));
    json_object_set_new(j, "fastest", json_integer(st.fastest_ns));
    json_object_set_new(j, "slowest", json_integer(st.slowest_ns));
    json_object_set_new(j, "rps", json_real(st.rps));
    for (size_t i = 0; i < errors.n; i++)
        json_object_set_new(err_dist, errors.name[i], json_integer((json_int_t)errors.count[i]));
    for (size_t i = 0; i < status.n; i++)
        json_object_set_new(status_dist, status.name[i], json_integer((json_int_t)status.count[i]));
    for (int p = 0; p < CASCADE_LOAD_PCTLS && st.n_lat; p++)
        json_array_append_new(lat_dist, json_pack("{s:i, s:I}", "percentage", st.percentages[p],
                                                  "latency", (json_int_t)st.pctl_ns[p]));
    for (size_t b = 0; b < st.n_buckets; b++)
        json_array_append_new(hist, json_pack("{s:f, s:I, s:f}", "mark", st.mark_s[b], "count",
                                              (json_int_t)st.bucket_count[b], "frequency",
                                              (double)st.bucket_count[b] / (double)st.n_lat));
    for (size_t i = 0; i < r->count; i++) {
        const struct cascade_load_result *res = &r->results[i];
        json_t *d = json_object();
        json_object_set_new(d, "timestamp", rfc3339(res->timestamp_ns));
        json_object_set_new(d, "latency", json_integer(res->latency_ns));
        json_object_set_new(d, "error", json_string(res->error ? res->error : ""));
        json_object_set_new(d, "status", json_string(cascade_load_status_name(res->status)));
        json_array_append_new(details, d);
    }
    json_object_set_new(j, "errorDistribution", err_dist);
    json_object_set_new(j, "statusCodeDistribution", status_dist);
    json_object_set_new(j, "latencyDistribution", lat_dist);
    json_object_set_new(j, "histogram", hist);
    json_object_set_new(j, "details", details);
    /* Not ghz's: answers that said degraded = true (RecommendResponse). */
    json_object_set_new(j, "degraded", json_integer((json_int_t)r->degraded));
out:
    tally_free(&status);
    tally_free(&errors);
    return j;
}

int cascade_load_write_json(const struct cascade_load_report *r, FILE *out)
{
    json_t *j = report_json(r);
    if (!j)
        return CASCADE_ENOMEM;
    int rc = json_dumpf(j, out, JSON_COMPACT) == 0 ? 0 : CASCADE_ENOMEM;
    fputc('\n', out);
    json_decref(j);
    return rc;
}
