/* Command-line parsing of cascade-load, with ghz's flag names and defaults
 * (-n 200, -c 50, --connections 1, --timeout 20s), validated with messages
 * that say what to type instead. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const char usage[] =
    "usage: cascade-load [options] HOST:PORT\n"
    "\n"
    "A ghz-compatible gRPC load generator for Cascade's own services.\n"
    "\n"
    "  --call NAME           method, package.Service.Method or package.Service/Method\n"
    "                        (e.g. cascade.v1.Recommender.Recommend)\n"
    "  --proto FILE          .proto file that must declare the method (checked; the\n"
    "  --protoset FILE       message types come from Cascade's compiled-in descriptors)\n"
    "  -d, --data JSON       request as JSON, a ghz template: {{.RequestNumber}}, {{.UUID}},\n"
    "                        {{randomInt MIN MAX}}, {{randomString N}}, {{.Timestamp}}, ...\n"
    "  -n, --total N         calls to run (default 200; ignored with -z)\n"
    "  -c, --concurrency N   workers (default 50)\n"
    "  -z, --duration D      run for D (e.g. 60s, 2m); -n is then ignored\n"
    "  -r, --rps R           open loop: R calls/s in total, each latency measured from\n"
    "                        the call's scheduled send time (default: closed loop)\n"
    "  --connections N       gRPC connections the workers share (default 1)\n"
    "  -t, --timeout D       per-call timeout (default 20s; 0 = none)\n"
    "  --insecure            plaintext, even when CASCADE_TLS_* is set\n"
    "  --cacert/--cert/--key FILE  TLS CA, client certificate and key\n"
    "  --count-errors        latency statistics include non-OK calls\n"
    "  -O, --format F        summary (default) or json (ghz's JSON report)\n"
    "  -o, --output FILE     write the report there instead of stdout\n"
    "  --seed N              seed of the template's random functions (default: clock)\n"
    "  -h, --help, -v, --version\n";

static int usage_error(FILE *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(FILE *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(err, "cascade-load: ");
    vfprintf(err, fmt, ap);
    fprintf(err, " (see cascade-load --help)\n");
    va_end(ap);
    return CASCADE_LOAD_USAGE;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A Go duration ("20s", "1m30s", "500ms", "0"), as ghz takes them, in ns. */
static bool parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},  {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    if (!s || !*s)
        return false;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return true;
    }
    double total = 0;
    while (*s) {
        char *end;
        errno = 0;
        if (*s == '-' || *s == '+')
            return false;
        double v = strtod(s, &end);
        if (errno || end == s || !isfinite(v))
            return false;
        s = end;
        size_t best = 0;
        double mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t len = strlen(units[i].unit);
            /* Longest match first: "ms" before "m". */
            if (len > best && strncmp(s, units[i].unit, len) == 0) {
                best = len;
                mult = units[i].ns;
            }
        }
        if (!best)
            return false;
        total += v * mult;
        s += best;
    }
    if (total > 9e18)
        return false;
    *ns = (int64_t)total;
    return true;
}

enum {
    OPT_CALL = 256,
    OPT_PROTO,
    OPT_PROTOSET,
    OPT_CONNECTIONS,
    OPT_INSECURE,
    OPT_CACERT,
    OPT_CERT,
    OPT_KEY,
    OPT_COUNT_ERRORS,
    OPT_SEED
};

static int parse_opt(int c, const char *arg, struct cascade_load_opts *o, FILE *err)
{
    uint64_t v;
    char *end;
    switch (c) {
    case OPT_CALL:
        o->call = arg;
        return 0;
    case OPT_PROTO:
        o->proto = arg;
        return 0;
    case OPT_PROTOSET:
        o->protoset = arg;
        return 0;
    case 'd':
        o->data = arg;
        return 0;
    case 'n':
        if (!parse_u64(arg, 1, UINT32_MAX, &v))
            return usage_error(err, "-n %s: expected a number of calls, 1..%u", arg, UINT32_MAX);
        o->total = v;
        return 0;
    case 'c':
        if (!parse_u64(arg, 1, 10000, &v))
            return usage_error(err, "-c %s: expected a number of workers, 1..10000", arg);
        o->concurrency = (int)v;
        return 0;
    case 'z':
        if (!parse_duration(arg, &o->duration_ns) || o->duration_ns <= 0)
            return usage_error(err, "-z %s: expected a duration such as 30s, 2m or 1m30s", arg);
        return 0;
    case 'r':
        errno = 0;
        o->rps = strtod(arg, &end);
        if (errno || end == arg || *end || !(o->rps >= 0) || o->rps > 1e6)
            return usage_error(err, "--rps %s: expected calls per second, 0..1000000", arg);
        return 0;
    case OPT_CONNECTIONS:
        if (!parse_u64(arg, 1, 1000, &v))
            return usage_error(err, "--connections %s: expected 1..1000", arg);
        o->connections = (int)v;
        return 0;
    case 't': {
        int64_t ns;
        if (!parse_duration(arg, &ns))
            return usage_error(err, "--timeout %s: expected a duration such as 20s or 500ms", arg);
        o->timeout_ms = ns == 0 ? 0 : (ns + 999999) / 1000000;
        return 0;
    }
    case OPT_INSECURE:
        o->insecure = true;
        return 0;
    case OPT_CACERT:
        o->cacert = arg;
        return 0;
    case OPT_CERT:
        o->cert = arg;
        return 0;
    case OPT_KEY:
        o->key = arg;
        return 0;
    case OPT_COUNT_ERRORS:
        o->count_errors = true;
        return 0;
    case 'O':
        if (strcmp(arg, "summary") == 0)
            o->format = CASCADE_LOAD_SUMMARY;
        else if (strcmp(arg, "json") == 0)
            o->format = CASCADE_LOAD_JSON;
        else
            return usage_error(err, "-O %s: cascade-load writes summary or json", arg);
        return 0;
    case 'o':
        o->output = arg;
        return 0;
    case OPT_SEED:
        if (!parse_u64(arg, 0, UINT64_MAX, &v))
            return usage_error(err, "--seed %s: expected a non-negative integer", arg);
        o->seed = v;
        return 0;
    default:
        return usage_error(err, "unknown option");
    }
}

int cascade_load_parse(int argc, char **argv, struct cascade_load_opts *o, FILE *out, FILE *err)
{
    static const struct option longopts[] = {
        {"call", required_argument, NULL, OPT_CALL},
        {"proto", required_argument, NULL, OPT_PROTO},
        {"protoset", required_argument, NULL, OPT_PROTOSET},
        {"data", required_argument, NULL, 'd'},
        {"total", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'z'},
        {"rps", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"timeout", required_argument, NULL, 't'},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"count-errors", no_argument, NULL, OPT_COUNT_ERRORS},
        {"format", required_argument, NULL, 'O'},
        {"output", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->data = "{}";
    o->total = 200;
    o->concurrency = 50;
    o->connections = 1;
    o->timeout_ms = 20000;
    optind = 0; /* full reset: the tests parse many times in one process */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:n:c:z:r:t:O:o:hv", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, out);
            return -1;
        }
        if (c == 'v') {
            fputs("cascade-load (Cascade)\n", out);
            return -1;
        }
        if (c == '?')
            return usage_error(err, "unknown option %s", argv[optind - 1]);
        if (c == ':')
            return usage_error(err, "%s needs a value", argv[optind - 1]);
        int rc = parse_opt(c, optarg, o, err);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return usage_error(err, "the server address HOST:PORT is required");
    if (optind < argc - 1)
        return usage_error(err, "expected one server address, got also \"%s\"", argv[optind + 1]);
    o->target = argv[optind];
    if (o->duration_ns == 0 && o->total < (uint64_t)o->concurrency)
        return usage_error(err, "-n %llu is less than -c %d (ghz's rule: n >= c)",
                           (unsigned long long)o->total, o->concurrency);
    if (o->connections > o->concurrency)
        return usage_error(err, "--connections %d is more than -c %d", o->connections,
                           o->concurrency);
    if (o->insecure && (o->cacert || o->cert || o->key))
        return usage_error(err, "--insecure cannot go with --cacert/--cert/--key");
    char msg[600];
    if (cascade_load_method_find(o->call, &o->method, msg, sizeof msg) != 0)
        return usage_error(err, "%s", msg);
    if (cascade_load_method_check_file(&o->method, o->proto, o->protoset, msg, sizeof msg) != 0)
        return usage_error(err, "%s", msg);
    return 0;
}
