/* cascade-sim: a closed-loop simulator. Users of a synthetic world
 * (cascade-datagen's ground truth, regenerated from the same options) call
 * the real stack's Recommend over N simulated days, look at what it returned
 * and click each item with its true click probability (Feedback with the
 * request id), so the serve records and events it leaves in Redis can be
 * read with cascade-ab like real traffic. docs/experiments.md ("Simulator").
 *
 * Thread-safety: cascade_sim_run is single-threaded and uses only what it
 * is given; several runs may proceed in one process. */
#ifndef CASCADE_SIM_H
#define CASCADE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "datagen.h"

#define CASCADE_SIM_MAX_DROPS 4
#define CASCADE_SIM_MAX_ARMS 128

/* Exit codes of cascade-sim. */
enum {
    CASCADE_SIM_OK = 0,
    CASCADE_SIM_FAILED = 1, /* the run failed (stack unreachable, too many failed calls) */
    CASCADE_SIM_USAGE = 2,  /* bad flags */
};

/* --drop LAYER=EXPERIMENT:SHARE: users the config assigns to EXPERIMENT in
 * LAYER never call, with probability SHARE per user (decided by a hash of
 * the user id and the run's seed, so a user is dropped on every day or on
 * none): a deliberate sample-ratio mismatch. */
struct cascade_sim_drop {
    char layer[64];
    char experiment[64];
    double share;
};

struct cascade_sim_opts {
    const char *target;                /* orchestrator host:port */
    struct cascade_datagen_opts world; /* the world the stack was built from */
    size_t users;                      /* simulated users, sampled from the world (default 200) */
    uint32_t days;                     /* simulated days (default 3) */
    uint32_t requests_per_day;         /* Recommend calls per user and day (default 2) */
    uint32_t count;                    /* items per Recommend (default 10) */
    uint64_t seed;                     /* user sample, click draws, drop decisions (default 1) */
    int64_t start_ts;                  /* day 0, Unix s (0 = now - days: the days end now) */
    int64_t timeout_ms;                /* per call (default 10000) */
    const char *config_path;           /* cascade.json; required with drops */
    struct cascade_sim_drop drops[CASCADE_SIM_MAX_DROPS];
    size_t n_drops;
    bool quiet; /* no progress lines */
};

/* What the simulation saw in one arm (layer, experiment) of the answers. */
struct cascade_sim_arm {
    char layer[64];
    char experiment[64];
    uint64_t requests, impressions, clicks;
    double p_click_sum; /* Σ true click probability over the arm's impressions */
};

struct cascade_sim_summary {
    uint64_t requests, failed, dropped_requests, degraded, impressions, clicks;
    uint64_t unknown_items; /* served items the world does not have (not clicked) */
    double p_click_sum;
    size_t users, dropped_users;
    struct cascade_sim_arm arms[CASCADE_SIM_MAX_ARMS];
    size_t n_arms;
    double seconds;
};

void cascade_sim_defaults(struct cascade_sim_opts *o);

/* Parse argv into o (strings borrowed from argv). Returns 0, -1 after --help
 * was printed to out, or CASCADE_SIM_USAGE after a readable line on err. */
int cascade_sim_parse(int argc, char **argv, struct cascade_sim_opts *o, FILE *out, FILE *err);

/* Parse "LAYER=EXPERIMENT:SHARE" into d. 0 or CASCADE_EINVAL with err. */
int cascade_sim_parse_drop(const char *text, struct cascade_sim_drop *d, char *err, size_t errlen);

/* Run the simulation against o->target. Returns 0, or a negative code with
 * a message in err (world options invalid, config unreadable, a user id the
 * stack rejects, more than half of the calls failed). sum is filled either
 * way with what was done. */
int cascade_sim_run(const struct cascade_sim_opts *o, struct cascade_sim_summary *sum, char *err,
                    size_t errlen);

/* The summary as a readable table: totals, then per arm requests,
 * impressions, clicks, observed CTR and true CTR (mean p_click). */
void cascade_sim_print(const struct cascade_sim_summary *sum, FILE *out);

#endif
