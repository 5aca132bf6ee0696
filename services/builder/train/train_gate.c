/* The trainers' model gate (train_gate.h): the decision, the record beside
 * the model, and moving .latest only when the model passes. */
#include "train_gate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "build_cli.h"
#include "dataset.h"
#include "error.h"
#include "latest_file.h"

void cascade_train_gate_defaults(struct cascade_train_gate_opts *o)
{
    o->floor = CASCADE_TRAIN_GATE_AUC_FLOOR;
    o->tolerance = CASCADE_TRAIN_GATE_TOLERANCE;
    o->force = false;
}

void cascade_train_gate_init(struct cascade_train_gate *g, const char *job, const char *kind,
                             const char *metric, const struct cascade_train_gate_opts *o,
                             size_t holdout, double value)
{
    memset(g, 0, sizeof *g);
    g->job = job;
    g->kind = kind;
    g->metric = metric;
    g->higher_is_better = true;
    g->floor = o->floor;
    g->tolerance = o->tolerance;
    g->holdout = holdout;
    g->value = value;
    g->force = o->force;
}

/* a better than b in the metric's direction. */
static bool better(const struct cascade_train_gate *g, double a, double b)
{
    return g->higher_is_better ? a > b : a < b;
}

void cascade_train_gate_decide(const struct cascade_train_gate *g,
                               struct cascade_train_gate_decision *d)
{
    double tol = g->tolerance > 0 ? g->tolerance : 0;
    /* The published value moved by the tolerance in the losing direction. */
    double bar = g->higher_is_better ? g->current_value - tol : g->current_value + tol;
    memset(d, 0, sizeof *d);
    if (isnan(g->value) || !better(g, g->value, g->floor)) {
        d->reason = CASCADE_GATE_REASON_BELOW_FLOOR;
        snprintf(d->message, sizeof d->message,
                 "held-out %s %.4f is not %s than the floor %.4f over %zu held-out examples: "
                 "the data does not support this model",
                 g->metric, g->value, g->higher_is_better ? "higher" : "lower", g->floor,
                 g->holdout);
    } else if (g->has_current && !isnan(g->current_value) && better(g, bar, g->value)) {
        d->reason = CASCADE_GATE_REASON_WORSE;
        snprintf(d->message, sizeof d->message,
                 "held-out %s %.4f is worse than the %.4f of the published %s on the same %zu "
                 "held-out examples (tolerance %.4f)",
                 g->metric, g->value, g->current_value, g->current ? g->current : "model",
                 g->holdout, tol);
    } else {
        d->reason = CASCADE_GATE_REASON_PASSED;
        d->publish = true;
        if (g->has_current)
            snprintf(d->message, sizeof d->message,
                     "held-out %s %.4f, floor %.4f, published %s %.4f on the same %zu examples",
                     g->metric, g->value, g->floor, g->current ? g->current : "model",
                     g->current_value, g->holdout);
        else
            snprintf(d->message, sizeof d->message,
                     "held-out %s %.4f over %zu examples, floor %.4f; %s", g->metric, g->value,
                     g->holdout, g->floor,
                     g->current && g->current_note ? g->current_note : "no published model");
        return;
    }
    if (g->force) {
        d->publish = true;
        d->forced = true;
    }
}

int cascade_train_gate_current(struct cascade_train_gate *g, const char *dir, const char *latest,
                               cascade_train_gate_eval eval, void *ctx, char *name, size_t namelen,
                               char *note, size_t notelen)
{
    char path[4400], err[512] = "";
    g->current = NULL;
    g->has_current = false;
    g->current_value = NAN;
    g->current_note = note;
    snprintf(note, notelen, "none published");
    if (!dir ||
        cascade_latest_current(dir, latest, name, namelen, path, sizeof path, err, sizeof err) != 0)
        return 0;
    g->current = name;
    int rc = eval(ctx, path, &g->current_value, err, sizeof err);
    if (rc == CASCADE_ENOMEM)
        return rc;
    if (rc != 0) {
        snprintf(note, notelen, "the published %.120s could not be evaluated: %.120s", name, err);
        g->current_value = NAN;
        return 0;
    }
    g->has_current = true;
    note[0] = '\0';
    return 0;
}

static void record_fill(const struct cascade_train_gate *g,
                        const struct cascade_train_gate_decision *d, const char *model_file,
                        const char *version, struct cascade_gate_record *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", model_file);
    snprintf(r->version, sizeof r->version, "%s", version);
    snprintf(r->kind, sizeof r->kind, "%s", g->kind);
    snprintf(r->metric, sizeof r->metric, "%s", g->metric);
    r->higher_is_better = g->higher_is_better;
    r->holdout = g->holdout;
    r->value = g->value;
    r->floor = g->floor;
    r->tolerance = g->tolerance;
    r->has_current = g->has_current;
    r->current_value = g->current_value;
    snprintf(r->current_version, sizeof r->current_version, "%s", g->current ? g->current : "");
    snprintf(r->current_note, sizeof r->current_note, "%s", g->current_note ? g->current_note : "");
    snprintf(r->decision, sizeof r->decision, "%s",
             d->forced ? CASCADE_GATE_FORCED
                       : (d->publish ? CASCADE_GATE_PUBLISHED : CASCADE_GATE_REFUSED));
    snprintf(r->reason, sizeof r->reason, "%s", d->reason);
    snprintf(r->message, sizeof r->message, "%s", d->message);
    r->decided_at = (long long)time(NULL);
}

int cascade_train_gate_apply(const struct cascade_train_gate *g, const char *model_path,
                             const char *dir, const char *latest, const char *latest_name,
                             const char *version, bool quiet, struct cascade_train_gate_decision *d,
                             char *err, size_t errlen)
{
    char record_path[4200], latest_path[4200];
    struct cascade_gate_record r;
    const char *slash = strrchr(model_path, '/');
    cascade_train_gate_decide(g, d);
    record_fill(g, d, slash ? slash + 1 : model_path, version, &r);
    if (snprintf(record_path, sizeof record_path, "%s%s", model_path, CASCADE_GATE_RECORD_SUFFIX) >=
            (int)sizeof record_path ||
        snprintf(latest_path, sizeof latest_path, "%s/%s", dir, latest) >=
            (int)sizeof latest_path) {
        snprintf(err, errlen, "model path too long");
        return CASCADE_EINVAL;
    }
    int rc = cascade_gate_record_write(record_path, &r, err, errlen);
    if (rc != 0)
        return rc;
    if (d->forced)
        fprintf(stderr, "%s: --force: publishing %s although the gate refuses it: %s\n", g->job,
                version, d->message);
    else if (!quiet)
        fprintf(stderr, "%s: gate %s %s: %s\n", g->job, r.decision, version, d->message);
    if (d->publish)
        return cascade_latest_write(latest_path, latest_name, err, errlen);
    if (strcmp(d->reason, CASCADE_GATE_REASON_BELOW_FLOOR) == 0) {
        snprintf(err, errlen, "not published (%s kept as %s, see %s): %s", g->kind, version,
                 record_path, d->message);
        return CASCADE_EDATA;
    }
    if (!quiet)
        fprintf(stderr, "%s: not published; %s still names %s (%s kept as %s)\n", g->job, latest,
                g->current ? g->current : "the previous model", g->kind, version);
    return 0;
}

int cascade_train_gate_publish(const struct cascade_train_gate *g,
                               const struct cascade_train_gate_target *t, char *path,
                               size_t pathlen, char *version, size_t versionlen,
                               struct cascade_train_gate_decision *d, char *err, size_t errlen)
{
    char current[256], note[320], file[300];
    struct cascade_train_gate cur = *g;
    int rc = cascade_train_gate_current(&cur, t->dir, t->latest, t->eval, t->ctx, current,
                                        sizeof current, note, sizeof note);
    if (rc == 0)
        rc = cascade_mkdir_p(t->dir, err, errlen);
    if (rc != 0)
        return rc;
    cascade_latest_version_new(t->dir, g->kind, version, versionlen, path, pathlen);
    if ((rc = t->save(t->ctx, path, version, err, errlen)) != 0)
        return rc;
    snprintf(file, sizeof file, "%s%s", version, t->latest_names_version ? "" : ".safetensors");
    return cascade_train_gate_apply(&cur, path, t->dir, t->latest, file, version, t->quiet, d, err,
                                    errlen);
}

int cascade_train_gate_check_labels(const float *y, size_t n_train, size_t n, char *err,
                                    size_t errlen)
{
    size_t pos_train = 0, pos_hold = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] > 0.5f)
            *(i < n_train ? &pos_train : &pos_hold) += 1;
    }
    size_t neg_train = n_train - pos_train, n_hold = n - n_train, neg_hold = n_hold - pos_hold;
    if (pos_train == 0 || neg_train == 0) {
        snprintf(err, errlen,
                 "every one of the %zu training examples has label %d; the data does not "
                 "support this model (a log of positives only, such as ratings imported as "
                 "impressions + clicks, has no negatives to learn from)",
                 n_train, pos_train ? 1 : 0);
        return CASCADE_EDATA;
    }
    if (pos_hold < CASCADE_TRAIN_GATE_MIN_CLASS || neg_hold < CASCADE_TRAIN_GATE_MIN_CLASS) {
        snprintf(err, errlen,
                 "%zu held-out examples with %zu positives and %zu negatives; the gate "
                 "needs at least %d of each to measure the model, so the data does not "
                 "support this model (more data, or a larger --holdout-frac)",
                 n_hold, pos_hold, neg_hold, CASCADE_TRAIN_GATE_MIN_CLASS);
        return CASCADE_EDATA;
    }
    return 0;
}

int cascade_train_gate_exit_status(int rc, bool published)
{
    if (rc == CASCADE_EDATA)
        return CASCADE_BUILD_EXIT_DATA;
    if (rc != 0)
        return CASCADE_BUILD_EXIT_FAILURE;
    return published ? CASCADE_BUILD_EXIT_OK : CASCADE_BUILD_EXIT_REFUSED;
}
