/* cascade-ab: the experiment readout. It reads the serve records
 * ({ns}:serves: one per answered Recommend, with the user's arm in every
 * layer, the canary tracks and the served items) and the feedback events
 * ({ns}:events) for a time range, from Redis (XRANGE by millisecond ids) or
 * from exported TSV files, joins each event to its serve by (request id,
 * user, item), and reports per layer and arm: users, requests, impressions,
 * clicks and the other behaviours, CTR and per-user metrics, the difference
 * of each arm versus its control with a 95% interval (delta method for CTR)
 * and a p-value, and a sample-ratio-mismatch chi-square test per layer
 * against the config's bucket ranges. Formulas: docs/experiments.md.
 *
 * Not thread-safe: one readout per thread. */
#ifndef CASCADE_AB_H
#define CASCADE_AB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct cascade_ab_args {
    const char *redis;       /* host:port, or NULL for files */
    const char *ns;          /* key namespace (default "cascade") */
    const char *serves_path; /* TSV export of {ns}:serves (header names the fields) */
    const char *events_path; /* TSV export of {ns}:events */
    const char *config_path; /* cascade.json: expected shares for SRM; NULL = no SRM */
    int64_t from_ms, to_ms;  /* serve time range, inclusive; 0 / INT64_MAX = open */
    bool json;
};

/* Exit codes of cascade-ab. */
#define CASCADE_AB_OK 0
#define CASCADE_AB_USAGE 2 /* bad arguments */
#define CASCADE_AB_INPUT 1 /* unreadable or malformed input, Redis unreachable */

/* Parse argv into *a (strings borrowed from argv). Returns 0; -1 after
 * printing --help to out (exit 0); or CASCADE_AB_USAGE after printing
 * "cascade-ab: <problem>" to err. */
int cascade_ab_parse(int argc, char **argv, struct cascade_ab_args *a, FILE *out, FILE *err);

/* Load, join, compute and print the report (table, or JSON with a->json) to
 * out. Returns CASCADE_AB_OK, or CASCADE_AB_INPUT after printing
 * "cascade-ab: <problem>" to err (nothing is printed to out then). */
int cascade_ab_run(const struct cascade_ab_args *a, FILE *out, FILE *err);

#endif
