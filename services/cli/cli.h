/* cascade-cli: a command-line client of the orchestrator (Recommend, Feedback)
 * and of any service's health check. The library holds the argument parsing,
 * the calls and the table formatting so the mains stay thin and tests can
 * drive them. */
#ifndef CASCADE_CLI_H
#define CASCADE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cascade/v1/recommender.pb-c.h"

/* Exit codes. */
enum cascade_cli_exit {
    CASCADE_CLI_OK = 0,
    CASCADE_CLI_FAILED = 1, /* the call failed or the service is not serving */
    CASCADE_CLI_USAGE = 2,  /* bad command line */
};

enum cascade_cli_command {
    CASCADE_CLI_RECOMMEND,
    CASCADE_CLI_FEEDBACK,
    CASCADE_CLI_HEALTH,
    CASCADE_CLI_ITEM_ADD, /* "item add": PutItems of one item */
};

/* Most --tags of item add (the orchestrator's limit, PutItems). */
#define CASCADE_CLI_TAGS_MAX 8

/* The item of "item add" (--item, --city and --geohash are the shared fields). */
struct cascade_cli_item {
    uint64_t author;                     /* --author */
    uint32_t category;                   /* --category */
    int64_t created_at;                  /* --created-at, Unix s; 0 = the server's clock */
    uint32_t media_type;                 /* --media-type: note (1), video (2) or a number */
    float duration_s;                    /* --duration */
    uint32_t tags[CASCADE_CLI_TAGS_MAX]; /* --tags 3,4,5 */
    size_t n_tags;
};

/* Most --slot options (the orchestrator's limit, services/orchestrator/slots.h). */
#define CASCADE_CLI_SLOTS_MAX 16

/* One --slot POS:ITEM:SOURCE (recommend). */
struct cascade_cli_slot {
    uint32_t position;
    uint64_t item_id;
    const char *source; /* borrowed from argv */
};

/* A parsed command line. Strings are borrowed from argv. */
struct cascade_cli_args {
    enum cascade_cli_command command;
    const char *addr; /* default 127.0.0.1:50050 */
    int timeout_ms;   /* default 5000 */
    const char *user;
    uint32_t count;         /* recommend; default 10 */
    bool debug;             /* recommend: print the stage trace */
    uint32_t city;          /* recommend: request city */
    const char *geohash;    /* recommend: request geohash */
    uint64_t item;          /* feedback */
    int event_type;         /* feedback: cascade.v1.EventType value */
    float value;            /* feedback: e.g. seconds played */
    const char *request_id; /* feedback / recommend */
    const char *service;    /* health: service name ("" = whole server) */
    struct cascade_cli_slot slots[CASCADE_CLI_SLOTS_MAX]; /* recommend: inserted items */
    size_t n_slots;
    struct cascade_cli_item new_item; /* item add */
};

/* Parse argv (argv[0] is the program). Returns 0; -1 after printing the usage
 * to out for --help; or CASCADE_CLI_USAGE after writing
 * "cascade-cli: <problem>" to err. */
int cascade_cli_parse(int argc, char **argv, struct cascade_cli_args *args, FILE *out, FILE *err);

/* The cascade.v1.EventType value for a name in any case ("click", "CLICK") or
 * a number ("2"); 0 when unknown. Names and numbers are common/events.h's. */
int cascade_cli_event_type(const char *name);

/* Print a Recommend answer as a table: request id, experiment assignment,
 * one row per item (position, item id, score, rank score, re-rank score,
 * p_click, category, author, channels, reason with the slot source),
 * degraded reasons and, when debug, the stage trace. */
void cascade_cli_print_recommendation(FILE *out, const char *user,
                                      const Cascade__V1__RecommendResponse *resp, bool debug);

/* Run a parsed command against the server; prints results to out and errors
 * ("cascade-cli: 127.0.0.1:50050: UNAVAILABLE: failed to connect") to err.
 * Returns an exit code. */
int cascade_cli_run(const struct cascade_cli_args *args, FILE *out, FILE *err);

#endif
