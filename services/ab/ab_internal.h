/* Internal layout of the cascade-ab library shared by its .c files: the
 * loaded log, the per-arm aggregates and the statistics. */
#ifndef CASCADE_AB_INTERNAL_H
#define CASCADE_AB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ab.h"
#include "events.h"

#define AB_TYPES (CASCADE_EV_MAX + 1)
#define AB_NAME_MAX 160

/* Pseudo-layers the readout adds beside the configured ones. */
#define AB_HOLDOUT_LAYER "holdout_vs_rest"
#define AB_TRACK_PREFIX "track:"

struct ab_names {
    char **v;
    size_t n, cap;
};

struct ab_layer {
    char *name;
    struct ab_names arms;
};

struct ab_asg {
    uint32_t layer, arm;
};

struct ab_serve {
    uint64_t rid_h, user_h;
    size_t first_item, n_items; /* into ab_log.items */
    size_t first_asg, n_asg;    /* into ab_log.asg (and the cells) */
};

struct ab_event {
    uint64_t rid_h, user_h, item;
    uint32_t type;
};

struct ab_log {
    struct ab_layer *layers;
    size_t n_layers, cap_layers;
    struct ab_serve *serves;
    size_t n_serves, cap_serves;
    uint64_t *items;
    size_t n_items, cap_items;
    struct ab_asg *asg;
    size_t n_asg, cap_asg;
    struct ab_event *events;
    size_t n_events, cap_events;
    size_t events_joined, events_unjoined;
};

/* One stream entry or TSV row: parallel name/value arrays (borrowed). */
struct ab_fields {
    const char *const *names;
    const char *const *values;
    size_t n;
};

const char *ab_field(const struct ab_fields *f, const char *name);

/* Index of name (len bytes) in names, appended when absent; CASCADE_ENOMEM. */
long ab_intern(struct ab_names *names, const char *name, size_t len);

/* Append one serve record / one event; 0, or CASCADE_EINVAL with the
 * problem in err (the field and value), CASCADE_ENOMEM. */
int ab_log_add_serve(struct ab_log *log, const struct ab_fields *f, int64_t from_ms, int64_t to_ms,
                     char *err, size_t errlen);
int ab_log_add_event(struct ab_log *log, const struct ab_fields *f, char *err, size_t errlen);
void ab_log_free(struct ab_log *log);

/* Read the log from TSV files or from Redis. 0, or CASCADE_EINVAL /
 * CASCADE_EUNAVAILABLE with the problem in err. */
int ab_load_tsv(struct ab_log *log, const char *path, bool serves, int64_t from_ms, int64_t to_ms,
                char *err, size_t errlen);
int ab_load_redis(struct ab_log *log, const char *addr, const char *ns, int64_t from_ms,
                  int64_t to_ms, char *err, size_t errlen);

/* Per-arm aggregates over users: x = clicks, y = impressions per user. */
struct ab_arm_stats {
    double users, requests, impressions;
    double counts[AB_TYPES];
    double sx, sy, sxx, syy, sxy; /* sums over users */
    double expected_share;        /* from the config; < 0 = unknown */
};

/* A difference of one metric, treatment minus control. */
struct ab_diff {
    double control, treatment, diff, rel, se, lo, hi, p;
    bool valid; /* false when a variance is undefined (fewer than 2 users, no impressions) */
};

/* CTR and its delta-method variance; clicks per user and its variance. */
void ab_ctr(const struct ab_arm_stats *s, double *ctr, double *var);
void ab_per_user(const struct ab_arm_stats *s, double sum, double sum_sq, double *mean,
                 double *var);
struct ab_diff ab_compare(double c, double var_c, double t, double var_t, bool valid);

/* Two-sided normal p-value of z; upper tail of chi-square with df degrees. */
double ab_normal_p(double z);
double ab_chi2_p(double x, double df);

#endif
