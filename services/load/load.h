/* cascade-load: a ghz-compatible load generator on the project's gRPC runtime.
 * It takes ghz's flags (--call, --proto/--protoset, -d with templates, -n, -c,
 * -z, --rps, --connections, --timeout, --insecure, -O) for the methods of our
 * own .proto files, maps the JSON call data onto the request message through
 * its protobuf-c descriptor, runs the calls (open loop with --rps: latency is
 * measured from each call's scheduled send time) and writes ghz's summary or
 * ghz's JSON report (plus a "degraded" count for answers that carry one).
 *
 * Thread-safety: a parsed option set and a finished report are plain data;
 * cascade_load_run uses its own worker threads and returns when they ended. */
#ifndef CASCADE_LOAD_H
#define CASCADE_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <grpc/status.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "rng.h"

/* Exit codes of cascade-load. */
enum {
    CASCADE_LOAD_OK = 0,
    CASCADE_LOAD_FAILED = 1, /* the run could not start (channel, data) */
    CASCADE_LOAD_USAGE = 2,  /* bad flags */
};

enum cascade_load_format { CASCADE_LOAD_SUMMARY = 0, CASCADE_LOAD_JSON = 1 };

/* One RPC method of our protos: "/pkg.Service/Method" and its message types. */
struct cascade_load_method {
    char path[160];      /* "/cascade.v1.Recommender/Recommend" */
    char full_name[160]; /* "cascade.v1.Recommender.Recommend" */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
};

struct cascade_load_opts {
    const char *target;              /* host:port (the positional argument) */
    const char *call;                /* --call as given */
    const char *proto;               /* --proto file, or NULL */
    const char *protoset;            /* --protoset file, or NULL */
    const char *data;                /* -d JSON text (a template); "{}" when not given */
    uint64_t total;                  /* -n: calls to run; ignored when duration_ns > 0 */
    int concurrency;                 /* -c: workers */
    int64_t duration_ns;             /* -z: run for this long (0 = use -n) */
    double rps;                      /* --rps: open-loop rate over all workers (0 = closed loop) */
    int connections;                 /* --connections: channels the workers share round-robin */
    int64_t timeout_ms;              /* --timeout per call (0 = none: 1 hour) */
    bool insecure;                   /* --insecure: plaintext even when CASCADE_TLS_* is set */
    const char *cacert, *cert, *key; /* --cacert/--cert/--key: TLS files */
    bool count_errors;               /* --count-errors: latency stats include non-OK calls */
    enum cascade_load_format format; /* -O summary|json */
    const char *output;              /* -o file (NULL = stdout) */
    uint64_t seed; /* --seed for randomInt/randomString/UUID (0 = from the clock) */
    struct cascade_load_method method; /* resolved from call */
};

/* Parse argv into o (strings borrowed from argv). Returns 0, -1 after --help
 * or --version was printed to out (exit 0), or CASCADE_LOAD_USAGE after a
 * readable line was written to err. */
int cascade_load_parse(int argc, char **argv, struct cascade_load_opts *o, FILE *out, FILE *err);

/* Resolve "pkg.Service.Method" or "pkg.Service/Method" among our protos.
 * Returns 0 or CASCADE_EINVAL with a message in err. */
int cascade_load_method_find(const char *call, struct cascade_load_method *m, char *err,
                             size_t errlen);

/* Check that a --proto file is readable and declares the method's service and
 * rpc, or that a --protoset file is readable and names them. 0 or CASCADE_EINVAL. */
int cascade_load_method_check_file(const struct cascade_load_method *m, const char *proto,
                                   const char *protoset, char *err, size_t errlen);

/* ---- call data ---- */

/* What a template may refer to for one call. */
struct cascade_load_template_ctx {
    uint64_t request_number;
    const struct cascade_load_method *method;
    struct cascade_rng rng; /* advanced by the random functions */
};

/* Expand ghz's template syntax in text: {{.RequestNumber}}, {{.UUID}},
 * {{.FullyQualifiedName}}, {{.MethodName}}, {{.ServiceName}}, {{.InputName}},
 * {{.OutputName}}, {{.Timestamp}}, {{.TimestampUnix}}, {{.TimestampUnixMilli}},
 * {{.TimestampUnixNano}}, {{newUUID}}, {{randomInt MIN MAX}} (MIN <= v < MAX,
 * as ghz) and {{randomString N}}. Returns a malloc'd string (caller frees) or
 * NULL with a message in err (unknown action, bad arguments). */
char *cascade_load_template_expand(const char *text, struct cascade_load_template_ctx *ctx,
                                   char *err, size_t errlen);

/* Build a message of type desc from a JSON object, in arena: fields by proto
 * name or lowerCamelCase JSON name; numbers (64-bit ones also as strings),
 * bools, strings, enums by name or number, nested messages, repeated fields,
 * maps (JSON objects) and oneofs. Unknown fields and wrong types are errors
 * ("cascade.v1.RecommendRequest.count: expected a number"). Bytes fields are
 * not supported. Returns 0 or CASCADE_EINVAL. */
int cascade_load_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                 cascade_arena *arena, ProtobufCMessage **out, char *err,
                                 size_t errlen);

/* ---- running and reporting ---- */

/* One finished call. */
struct cascade_load_result {
    int64_t timestamp_ns; /* wall clock at the scheduled (or actual) send */
    int64_t latency_ns;   /* completion - scheduled send time */
    grpc_status_code status;
    char *error;   /* malloc'd "rpc error: code = ... desc = ...", NULL when OK */
    bool degraded; /* the answer had degraded = true */
};

struct cascade_load_report {
    const struct cascade_load_opts *opts; /* borrowed */
    int64_t date_s;                       /* wall clock at the start */
    int64_t total_ns;                     /* start to the last completion */
    const char *end_reason;               /* "normal" or "timeout" (-z reached) */
    struct cascade_load_result *results;  /* in completion order */
    size_t count;
    uint64_t degraded;
};

/* Run the load described by o (parsed and resolved). On success *out is a
 * report (free with cascade_load_report_destroy) and 0 is returned; a run that
 * cannot start returns CASCADE_EINVAL/CASCADE_EUNAVAILABLE with a message.
 * Failed calls are results, not errors. The caller initialises gRPC
 * (cascade_rpc_init) first. */
int cascade_load_run(const struct cascade_load_opts *o, struct cascade_load_report **out, char *err,
                     size_t errlen);

void cascade_load_report_destroy(struct cascade_load_report *r);

/* The numbers ghz reports, computed from a report. Latency statistics cover OK
 * calls only unless opts->count_errors (ghz's default and --count-errors). */
#define CASCADE_LOAD_PCTLS 7
#define CASCADE_LOAD_BUCKETS 11
struct cascade_load_stats {
    uint64_t count;
    int64_t total_ns, average_ns, fastest_ns, slowest_ns;
    double rps;
    size_t n_lat; /* latencies the statistics below cover */
    int percentages[CASCADE_LOAD_PCTLS];
    int64_t pctl_ns[CASCADE_LOAD_PCTLS];
    size_t n_buckets; /* 0 when n_lat == 0 */
    double mark_s[CASCADE_LOAD_BUCKETS];
    uint64_t bucket_count[CASCADE_LOAD_BUCKETS];
};

/* Fill st from r. Returns 0 or CASCADE_ENOMEM. */
int cascade_load_stats(const struct cascade_load_report *r, struct cascade_load_stats *st);

/* ghz's summary text. */
int cascade_load_write_summary(const struct cascade_load_report *r, FILE *out);
/* ghz's JSON report (one object and a newline). */
int cascade_load_write_json(const struct cascade_load_report *r, FILE *out);

/* ghz's (Go's) name of a status code: "OK", "DeadlineExceeded", ... */
const char *cascade_load_status_name(grpc_status_code code);

#endif
