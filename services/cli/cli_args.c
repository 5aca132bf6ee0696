/* Command-line parsing of cascade-cli: a command word followed by options in
 * any order, validated with messages that say what to type instead. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "events.h"

static const char usage[] =
    "usage: cascade-cli COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  recommend --user U [--count N] [--debug] [--city C] [--geohash G]\n"
    "            [--slot POS:ITEM:SOURCE]...\n"
    "                           ask the orchestrator for N items (1..200, default 10);\n"
    "                           each --slot (at most 16) inserts item ITEM at 0-based\n"
    "                           position POS, labelled SOURCE (e.g. 0:123:ads)\n"
    "  feedback --user U --item I --type T [--value S]\n"
    "                           log one event; T is impression, click, like, collect, share,\n"
    "                           follow, play (S = seconds played), dislike or hide_author\n"
    "  health [--service NAME]  check a service's gRPC health; exit 0 only when SERVING\n"
    "  item add --item I [--author A] [--category C] [--created-at UNIX_S] [--geohash G]\n"
    "           [--city C] [--media-type note|video|N] [--duration S] [--tags T1,T2,...]\n"
    "                           add or change one item online (PutItems): its record, the\n"
    "                           new/geo/city/author lists and its two-tower vector, no rebuild\n"
    "\n"
    "options for every command:\n"
    "  --addr HOST:PORT         server address (default 127.0.0.1:50050, the orchestrator)\n"
    "  --timeout-ms N           call deadline (default 5000)\n"
    "  --request-id ID          request id sent with the call\n"
    "  --help                   this text\n";

static int usage_error(FILE *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(FILE *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(err, "cascade-cli: ");
    vfprintf(err, fmt, ap);
    fprintf(err, " (see cascade-cli --help)\n");
    va_end(ap);
    return CASCADE_CLI_USAGE;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* "POS:ITEM:SOURCE": the source is everything after the second colon, so
 * it may hold colons itself ("0:123:ops:spring"). The orchestrator checks
 * the values (position below count, source alphabet). */
static int parse_slot(const char *arg, struct cascade_cli_args *a, FILE *err)
{
    char num[2][24];
    const char *at = arg;
    uint64_t v[2];
    if (a->n_slots == CASCADE_CLI_SLOTS_MAX)
        return usage_error(err, "--slot: at most %d slots", CASCADE_CLI_SLOTS_MAX);
    for (int k = 0; k < 2; k++) {
        const char *colon = strchr(at, ':');
        size_t len = colon ? (size_t)(colon - at) : 0;
        if (colon == NULL || len == 0 || len >= sizeof num[k])
            return usage_error(err, "--slot: expected POS:ITEM:SOURCE, got \"%s\"", arg);
        memcpy(num[k], at, len);
        num[k][len] = '\0';
        at = colon + 1;
    }
    if (!parse_u64(num[0], 0, UINT32_MAX, &v[0]) || !parse_u64(num[1], 1, UINT64_MAX, &v[1]) ||
        *at == '\0')
        return usage_error(err,
                           "--slot: expected POS:ITEM:SOURCE (a position, a positive item id, "
                           "a source), got \"%s\"",
                           arg);
    a->slots[a->n_slots++] =
        (struct cascade_cli_slot){.position = (uint32_t)v[0], .item_id = v[1], .source = at};
    return 0;
}

int cascade_cli_event_type(const char *name)
{
    char lower[32];
    uint64_t number;
    uint32_t type;
    if (name == NULL || *name == '\0')
        return 0;
    if (parse_u64(name, 1, CASCADE_EV_MAX, &number))
        return (int)number;
    size_t len = strlen(name);
    if (len >= sizeof lower)
        return 0;
    for (size_t i = 0; i <= len; i++) /* the names are lower case; accept "CLICK" too */
        lower[i] = (char)tolower((unsigned char)name[i]);
    return cascade_event_type_parse(lower, &type) == 0 ? (int)type : 0;
}

static int parse_command(const char *word, struct cascade_cli_args *a, FILE *err)
{
    if (strcmp(word, "recommend") == 0)
        a->command = CASCADE_CLI_RECOMMEND;
    else if (strcmp(word, "feedback") == 0)
        a->command = CASCADE_CLI_FEEDBACK;
    else if (strcmp(word, "health") == 0)
        a->command = CASCADE_CLI_HEALTH;
    else if (strcmp(word, "item") == 0)
        a->command = CASCADE_CLI_ITEM_ADD;
    else
        return usage_error(
            err, "unknown command \"%s\" (expected recommend, feedback, health or item)", word);
    return 0;
}

/* "3,4,5" into the item's tags (at most CASCADE_CLI_TAGS_MAX). */
static int parse_tags(const char *arg, struct cascade_cli_item *it, FILE *err)
{
    char buf[24];
    const char *at = arg;
    it->n_tags = 0;
    while (*at) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        uint64_t v;
        if (it->n_tags == CASCADE_CLI_TAGS_MAX)
            return usage_error(err, "--tags: at most %d tags, got \"%s\"", CASCADE_CLI_TAGS_MAX,
                               arg);
        if (len == 0 || len >= sizeof buf)
            return usage_error(err, "--tags: expected tag ids separated by commas, got \"%s\"",
                               arg);
        memcpy(buf, at, len);
        buf[len] = '\0';
        if (!parse_u64(buf, 0, UINT32_MAX, &v))
            return usage_error(err, "--tags: \"%s\" is not a tag id", buf);
        it->tags[it->n_tags++] = (uint32_t)v;
        at += len + (comma != NULL);
    }
    return 0;
}

/* The options of "item add" besides --item, --city and --geohash. */
static int parse_item_option(int opt, const char *arg, struct cascade_cli_item *it, FILE *err)
{
    uint64_t v;
    char *end;
    switch (opt) {
    case 'A':
        if (!parse_u64(arg, 0, UINT64_MAX, &v))
            return usage_error(err, "--author: expected an author id, got \"%s\"", arg);
        it->author = v;
        break;
    case 'C':
        if (!parse_u64(arg, 0, UINT32_MAX, &v))
            return usage_error(err, "--category: expected a category id, got \"%s\"", arg);
        it->category = (uint32_t)v;
        break;
    case 'W':
        if (!parse_u64(arg, 0, INT64_MAX, &v))
            return usage_error(err, "--created-at: expected Unix seconds, got \"%s\"", arg);
        it->created_at = (int64_t)v;
        break;
    case 'M':
        if (strcmp(arg, "note") == 0)
            it->media_type = 1;
        else if (strcmp(arg, "video") == 0)
            it->media_type = 2;
        else if (parse_u64(arg, 0, 2, &v))
            it->media_type = (uint32_t)v;
        else
            return usage_error(err, "--media-type: expected note, video, 0, 1 or 2, got \"%s\"",
                               arg);
        break;
    case 'D':
        errno = 0;
        it->duration_s = strtof(arg, &end);
        if (errno || *end || end == arg || !(it->duration_s >= 0.0f))
            return usage_error(err, "--duration: expected seconds >= 0, got \"%s\"", arg);
        break;
    default:
        return parse_tags(arg, it, err);
    }
    return 0;
}

/* Options are shared by all commands; check_command rejects the ones that do
 * not apply and the missing required ones. */
static int parse_option(int opt, const char *arg, struct cascade_cli_args *a, FILE *err)
{
    uint64_t v;
    char *end;
    switch (opt) {
    case 'a':
        a->addr = arg;
        break;
    case 'T':
        if (!parse_u64(arg, 1, 600000, &v))
            return usage_error(err, "--timeout-ms: expected milliseconds in 1..600000, got \"%s\"",
                               arg);
        a->timeout_ms = (int)v;
        break;
    case 'u':
        a->user = arg;
        break;
    case 'n':
        if (!parse_u64(arg, 0, UINT32_MAX, &v))
            return usage_error(err, "--count: expected a number, got \"%s\"", arg);
        a->count = (uint32_t)v;
        break;
    case 'd':
        a->debug = true;
        break;
    case 'c':
        if (!parse_u64(arg, 0, UINT32_MAX, &v))
            return usage_error(err, "--city: expected a city id, got \"%s\"", arg);
        a->city = (uint32_t)v;
        break;
    case 'g':
        a->geohash = arg;
        break;
    case 'i':
        if (!parse_u64(arg, 1, UINT64_MAX, &v))
            return usage_error(err, "--item: expected a positive item id, got \"%s\"", arg);
        a->item = v;
        break;
    case 't':
        if ((a->event_type = cascade_cli_event_type(arg)) == 0)
            return usage_error(err, "--type: unknown event type \"%s\"", arg);
        break;
    case 'v':
        errno = 0;
        a->value = strtof(arg, &end);
        if (errno || *end || end == arg)
            return usage_error(err, "--value: expected a number, got \"%s\"", arg);
        break;
    case 'r':
        a->request_id = arg;
        break;
    case 's':
        a->service = arg;
        break;
    case 'S':
        return parse_slot(arg, a, err);
    case 'A':
    case 'C':
    case 'W':
    case 'M':
    case 'D':
    case 'G':
        return parse_item_option(opt, arg, &a->new_item, err);
    default:
        return CASCADE_CLI_USAGE;
    }
    return 0;
}

static int check_command(const struct cascade_cli_args *a, FILE *err)
{
    if (a->command == CASCADE_CLI_ITEM_ADD)
        return a->item == 0 ? usage_error(err, "item add: --item is required") : 0;
    bool needs_user = a->command != CASCADE_CLI_HEALTH;
    if (needs_user && (a->user == NULL || a->user[0] == '\0'))
        return usage_error(err, "%s: --user is required",
                           a->command == CASCADE_CLI_RECOMMEND ? "recommend" : "feedback");
    if (a->command == CASCADE_CLI_FEEDBACK && a->item == 0)
        return usage_error(err, "%s: --item is required", "feedback");
    if (a->command == CASCADE_CLI_FEEDBACK && a->event_type == 0)
        return usage_error(err, "%s: --type is required", "feedback");
    return 0;
}

int cascade_cli_parse(int argc, char **argv, struct cascade_cli_args *a, FILE *out, FILE *err)
{
    static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
                                             {"timeout-ms", required_argument, NULL, 'T'},
                                             {"user", required_argument, NULL, 'u'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"debug", no_argument, NULL, 'd'},
                                             {"city", required_argument, NULL, 'c'},
                                             {"geohash", required_argument, NULL, 'g'},
                                             {"item", required_argument, NULL, 'i'},
                                             {"type", required_argument, NULL, 't'},
                                             {"value", required_argument, NULL, 'v'},
                                             {"request-id", required_argument, NULL, 'r'},
                                             {"service", required_argument, NULL, 's'},
                                             {"slot", required_argument, NULL, 'S'},
                                             {"author", required_argument, NULL, 'A'},
                                             {"category", required_argument, NULL, 'C'},
                                             {"created-at", required_argument, NULL, 'W'},
                                             {"media-type", required_argument, NULL, 'M'},
                                             {"duration", required_argument, NULL, 'D'},
                                             {"tags", required_argument, NULL, 'G'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt, rc;

    memset(a, 0, sizeof *a);
    a->addr = "127.0.0.1:50050";
    a->timeout_ms = 5000;
    a->count = 10;
    a->service = "";
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? err : out);
        return argc < 2 ? CASCADE_CLI_USAGE : -1;
    }
    if ((rc = parse_command(argv[1], a, err)))
        return rc;
    optind = 2;
    if (a->command == CASCADE_CLI_ITEM_ADD) {
        if (argc < 3 || strcmp(argv[2], "add") != 0)
            return usage_error(err, "item: expected the subcommand \"add\"");
        optind = 3;
    }
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(usage, out);
            return -1;
        }
        if (opt == '?' || opt == ':')
            return usage_error(err, "unknown or incomplete option \"%s\"", argv[optind - 1]);
        if ((rc = parse_option(opt, optarg, a, err)))
            return rc;
    }
    if (optind < argc)
        return usage_error(err, "unexpected argument \"%s\"", argv[optind]);
    return check_command(a, err);
}
