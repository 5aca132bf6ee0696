/* cascade-ab's command line. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ab.h"

static const char usage[] =
    "usage: cascade-ab (--redis HOST:PORT [--namespace NS] | --serves FILE --events FILE)\n"
    "                  [--from MS] [--to MS] [--config FILE] [--json]\n"
    "\n"
    "Experiment readout: per layer and arm, users, requests, impressions, clicks and other\n"
    "behaviours, CTR and clicks per user, the difference versus the control arm with a 95%\n"
    "interval (delta method for CTR) and p-value, and a sample-ratio-mismatch chi-square test\n"
    "per layer (flagged when p < 0.001). Formulas: docs/experiments.md.\n"
    "\n"
    "  --redis HOST:PORT  read {ns}:serves (XRANGE FROM..TO) and {ns}:events (FROM..end);\n"
    "                     credentials from CASCADE_REDIS_PASSWORD(_FILE), CASCADE_REDIS_USER\n"
    "  --namespace NS     Redis key prefix (default cascade)\n"
    "  --serves FILE      TSV export of the serve records: a header line naming the fields\n"
    "                     (rid, user, ts_ms, exp, track, items; others ignored), one per line\n"
    "  --events FILE      TSV export of the events (rid, user, item, type; others ignored)\n"
    "  --from MS, --to MS serve time range, Unix milliseconds, inclusive (default: all)\n"
    "  --config FILE      cascade.json: expected arm shares from its bucket ranges, for SRM\n"
    "  --json             JSON instead of the table\n";

static int parse_ms(const char *flag, const char *text, int64_t *out, FILE *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0) {
        fprintf(err, "cascade-ab: %s: expected Unix milliseconds, got \"%s\"\n", flag, text);
        return CASCADE_AB_USAGE;
    }
    *out = v;
    return 0;
}

int cascade_ab_parse(int argc, char **argv, struct cascade_ab_args *a, FILE *out, FILE *err)
{
    static const struct option opts[] = {
        {"redis", required_argument, NULL, 'r'},  {"namespace", required_argument, NULL, 'n'},
        {"serves", required_argument, NULL, 's'}, {"events", required_argument, NULL, 'e'},
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    *a = (struct cascade_ab_args){.ns = "cascade", .from_ms = 0, .to_ms = INT64_MAX};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            a->redis = optarg;
            break;
        case 'n':
            a->ns = optarg;
            break;
        case 's':
            a->serves_path = optarg;
            break;
        case 'e':
            a->events_path = optarg;
            break;
        case 'c':
            a->config_path = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'f':
            if (parse_ms("--from", optarg, &a->from_ms, err))
                return CASCADE_AB_USAGE;
            break;
        case 't':
            if (parse_ms("--to", optarg, &a->to_ms, err))
                return CASCADE_AB_USAGE;
            break;
        case 'h':
            fputs(usage, out);
            return -1;
        default:
            fprintf(err, "cascade-ab: unknown or incomplete option \"%s\" (see --help)\n",
                    argv[optind - 1]);
            return CASCADE_AB_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(err, "cascade-ab: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return CASCADE_AB_USAGE;
    }
    if (!a->redis == !(a->serves_path || a->events_path) ||
        (!a->redis && !(a->serves_path && a->events_path))) {
        fprintf(err, "cascade-ab: give either --redis or both --serves and --events\n");
        return CASCADE_AB_USAGE;
    }
    if (a->from_ms > a->to_ms) {
        fprintf(err, "cascade-ab: --from is after --to\n");
        return CASCADE_AB_USAGE;
    }
    if (!a->ns[0] || strlen(a->ns) > 64) {
        fprintf(err, "cascade-ab: --namespace: 1..64 characters\n");
        return CASCADE_AB_USAGE;
    }
    return 0;
}
