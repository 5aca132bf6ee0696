/* The readout proper: join events to serves, aggregate per (layer, arm,
 * user), then per arm; expected shares from the config; comparisons versus
 * each arm's control; SRM per layer; the table and the JSON. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ab_internal.h"
#include "config.h"
#include "error.h"
#include "experiments.h"

#define SRM_ALPHA 0.001
#define MAX_ARMS 256

struct ab_cell {
    uint32_t layer, arm;
    uint64_t user_h;
    double requests, impressions, counts[AB_TYPES];
};

struct ab_srm {
    double chi2, df, p;
    bool computed, flagged;
    const char *note; /* why not computed, or NULL */
};

struct ab_result {
    struct ab_arm_stats **arms; /* [layer][arm] */
    struct ab_srm *srm;         /* [layer] */
};

/* ---- join and aggregate ---- */

static int cmp_serve_key(const struct ab_serve *a, uint64_t rid_h, uint64_t user_h)
{
    if (a->rid_h != rid_h)
        return a->rid_h < rid_h ? -1 : 1;
    return a->user_h == user_h ? 0 : a->user_h < user_h ? -1 : 1;
}

static int cmp_serves(const void *a, const void *b)
{
    const struct ab_serve *y = b;
    return cmp_serve_key(a, y->rid_h, y->user_h);
}

static int cmp_cells(const void *a, const void *b)
{
    const struct ab_cell *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    if (x->arm != y->arm)
        return x->arm < y->arm ? -1 : 1;
    return x->user_h == y->user_h ? 0 : x->user_h < y->user_h ? -1 : 1;
}

static const struct ab_serve *find_serve(const struct ab_log *log, uint64_t rid_h, uint64_t user_h)
{
    size_t lo = 0, hi = log->n_serves;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_serve_key(&log->serves[mid], rid_h, user_h);
        if (c == 0)
            return &log->serves[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One cell per (serve, layer); each joined event adds to its serve's cells. */
static struct ab_cell *build_cells(struct ab_log *log)
{
    struct ab_cell *cells = calloc(log->n_asg ? log->n_asg : 1, sizeof *cells);
    if (!cells)
        return NULL;
    for (size_t s = 0; s < log->n_serves; s++) {
        const struct ab_serve *sv = &log->serves[s];
        for (size_t k = sv->first_asg; k < sv->first_asg + sv->n_asg; k++)
            cells[k] = (struct ab_cell){.layer = log->asg[k].layer,
                                        .arm = log->asg[k].arm,
                                        .user_h = sv->user_h,
                                        .requests = 1,
                                        .impressions = (double)sv->n_items};
    }
    qsort(log->serves, log->n_serves, sizeof *log->serves, cmp_serves);
    for (size_t e = 0; e < log->n_events; e++) {
        const struct ab_event *ev = &log->events[e];
        const struct ab_serve *sv = find_serve(log, ev->rid_h, ev->user_h);
        bool served = false;
        for (size_t i = 0; sv && i < sv->n_items && !served; i++)
            served = log->items[sv->first_item + i] == ev->item;
        if (!served) {
            log->events_unjoined++;
            continue;
        }
        log->events_joined++;
        for (size_t k = sv->first_asg; k < sv->first_asg + sv->n_asg; k++)
            cells[k].counts[ev->type]++;
    }
    qsort(cells, log->n_asg, sizeof *cells, cmp_cells);
    return cells;
}

static void add_user(struct ab_arm_stats *s, const struct ab_cell *u)
{
    double x = u->counts[CASCADE_EV_CLICK], y = u->impressions;
    s->users++;
    s->requests += u->requests;
    s->impressions += y;
    for (int t = 0; t < AB_TYPES; t++)
        s->counts[t] += u->counts[t];
    s->sx += x;
    s->sy += y;
    s->sxx += x * x;
    s->syy += y * y;
    s->sxy += x * y;
}

/* Reduce the sorted cells to one per user, then into the arm aggregates. */
static void aggregate(const struct ab_log *log, const struct ab_cell *cells, struct ab_result *res)
{
    for (size_t i = 0; i < log->n_asg;) {
        struct ab_cell u = cells[i];
        size_t j = i + 1;
        for (; j < log->n_asg && cmp_cells(&cells[j], &u) == 0; j++) {
            u.requests += cells[j].requests;
            u.impressions += cells[j].impressions;
            for (int t = 0; t < AB_TYPES; t++)
                u.counts[t] += cells[j].counts[t];
        }
        add_user(&res->arms[u.layer][u.arm], &u);
        i = j;
    }
}

/* ---- expected shares and SRM ---- */

static int set_expected(struct ab_log *log, struct ab_result *res, size_t li,
                        const struct cascade_exp_arm *arms, int n)
{
    struct ab_layer *l = &log->layers[li];
    for (int a = 0; a < n; a++) {
        long idx = ab_intern(&l->arms, arms[a].name, strlen(arms[a].name));
        if (idx < 0 || idx >= MAX_ARMS)
            return CASCADE_ENOMEM;
        res->arms[li][idx].expected_share = arms[a].share;
    }
    return 0;
}

/* A canary pseudo-layer (track:<stage>): shares weight / sum of weights of
 * the stage's endpoint group (orchestrator.stages.<stage>.endpoint). */
static int track_expected(struct ab_log *log, struct ab_result *res, size_t li,
                          const cascade_config *cfg)
{
    const char *name = log->layers[li].name;
    size_t plen = strlen(AB_TRACK_PREFIX);
    char path[AB_NAME_MAX + 64];
    if (strncmp(name, AB_TRACK_PREFIX, plen) != 0)
        return 0;
    snprintf(path, sizeof path, "orchestrator.stages.%s.endpoint", name + plen);
    const json_t *group = cascade_config_get(cfg, path), *t;
    struct cascade_exp_arm arms[8];
    double total = 0;
    size_t i, n = 0;
    json_array_foreach(group, i, t)
    {
        const json_t *track = json_object_get(t, "track"), *w = json_object_get(t, "weight");
        if (n == 8 || !json_is_string(track) || !json_is_number(w))
            return 0; /* not a group the orchestrator would take: no expectation */
        arms[n++] = (struct cascade_exp_arm){json_string_value(track), json_number_value(w)};
        total += json_number_value(w);
    }
    if (n == 0 || !(total > 0))
        return 0;
    for (size_t k = 0; k < n; k++)
        arms[k].share /= total;
    return set_expected(log, res, li, arms, (int)n);
}

/* Expected shares of every configured layer present in the log, and of the
 * holdout pseudo-layer. Arms the config has but the log lacks are added. */
static int load_expected(struct ab_log *log, struct ab_result *res, const char *path, char *err,
                         size_t errlen)
{
    int rc = 0;
    cascade_config *cfg = cascade_config_load(path, err, errlen);
    if (!cfg)
        return CASCADE_EINVAL;
    json_t *section = cascade_config_get(cfg, "experiments");
    cascade_experiments *e =
        cascade_experiments_create(json_is_null(section) ? NULL : section, err, errlen);
    if (!e) {
        cascade_config_destroy(cfg);
        return CASCADE_EINVAL;
    }
    struct cascade_exp_arm arms[MAX_ARMS];
    double holdout = -1;
    for (size_t li = 0; li < log->n_layers && rc == 0; li++) {
        int n = cascade_experiments_arms(e, log->layers[li].name, arms, MAX_ARMS);
        if (n < 0)
            continue;
        holdout = 0;
        for (int a = 0; a < n; a++)
            if (strcmp(arms[a].name, "holdout") == 0)
                holdout = arms[a].share;
        rc = set_expected(log, res, li, arms, n < MAX_ARMS ? n : MAX_ARMS);
    }
    for (size_t li = 0; li < log->n_layers && rc == 0 && holdout >= 0; li++) {
        if (strcmp(log->layers[li].name, AB_HOLDOUT_LAYER) != 0)
            continue;
        struct cascade_exp_arm pseudo[2] = {{"holdout", holdout}, {"everyone_else", 1 - holdout}};
        rc = set_expected(log, res, li, pseudo, 2);
    }
    for (size_t li = 0; li < log->n_layers && rc == 0; li++)
        rc = track_expected(log, res, li, cfg);
    if (rc)
        snprintf(err, errlen, "out of memory");
    cascade_experiments_destroy(e);
    cascade_config_destroy(cfg);
    return rc;
}

static struct ab_srm srm_test(const struct ab_layer *l, const struct ab_arm_stats *arms)
{
    struct ab_srm r = {0};
    double n = 0;
    int k = 0;
    bool any_expected = false;
    for (size_t a = 0; a < l->arms.n; a++)
        any_expected |= arms[a].expected_share >= 0;
    if (!any_expected) {
        r.note = "no expected shares: no --config, or a layer the config does not have";
        return r;
    }
    for (size_t a = 0; a < l->arms.n; a++) {
        if (arms[a].expected_share < 0 && arms[a].users > 0) {
            r.note = "the log has an arm the config does not have";
            return r;
        }
        n += arms[a].users;
        k += arms[a].expected_share > 0;
    }
    if (k < 2 || n == 0) {
        r.note = "fewer than two arms";
        return r;
    }
    for (size_t a = 0; a < l->arms.n; a++) {
        if (!(arms[a].expected_share > 0))
            continue;
        double expect = n * arms[a].expected_share;
        r.chi2 += (arms[a].users - expect) * (arms[a].users - expect) / expect;
    }
    r.df = k - 1;
    r.p = ab_chi2_p(r.chi2, r.df);
    r.computed = true;
    r.flagged = r.p < SRM_ALPHA;
    return r;
}

/* ---- comparisons ---- */

static long arm_index(const struct ab_layer *l, const char *name)
{
    for (size_t a = 0; a < l->arms.n; a++)
        if (strcmp(l->arms.v[a], name) == 0)
            return (long)a;
    return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The control arm of arm a in layer l, or -1 when a is a control itself or
 * has none: the reverse range of a launched experiment, the holdout for
 * everyone else, "stable" for a canary track, else "baseline". */
static long control_of(const struct ab_layer *l, size_t a)
{
    const char *name = l->arms.v[a];
    char reverse[AB_NAME_MAX + 16];
    if (strcmp(l->name, AB_HOLDOUT_LAYER) == 0)
        return strcmp(name, "everyone_else") == 0 ? arm_index(l, "holdout") : -1;
    if (strncmp(l->name, AB_TRACK_PREFIX, strlen(AB_TRACK_PREFIX)) == 0)
        return strcmp(name, "stable") != 0 ? arm_index(l, "stable") : -1;
    if (strcmp(name, "baseline") == 0 || strcmp(name, "holdout") == 0 ||
        ends_with(name, ":reverse"))
        return -1;
    snprintf(reverse, sizeof reverse, "%s:reverse", name);
    long r = arm_index(l, reverse);
    return r >= 0 ? r : arm_index(l, "baseline");
}

static struct ab_diff compare_ctr(const struct ab_arm_stats *c, const struct ab_arm_stats *t)
{
    double rc, vc, rt, vt;
    ab_ctr(c, &rc, &vc);
    ab_ctr(t, &rt, &vt);
    return ab_compare(rc, vc, rt, vt, true);
}

static struct ab_diff compare_clicks(const struct ab_arm_stats *c, const struct ab_arm_stats *t)
{
    double mc, vc, mt, vt;
    ab_per_user(c, c->sx, c->sxx, &mc, &vc);
    ab_per_user(t, t->sx, t->sxx, &mt, &vt);
    return ab_compare(mc, vc, mt, vt, true);
}

/* ---- output ---- */

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *diff_json(const struct ab_diff *d)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "control", num(d->control),
                     "treatment", num(d->treatment), "diff", num(d->diff), "relative", num(d->rel),
                     "se", num(d->se), "ci_low", num(d->lo), "ci_high", num(d->hi), "p", num(d->p));
}

static json_t *arm_json(const struct ab_layer *l, size_t a, const struct ab_arm_stats *arms,
                        double layer_users)
{
    const struct ab_arm_stats *s = &arms[a];
    double ctr, var, cpu, vcpu;
    ab_ctr(s, &ctr, &var);
    ab_per_user(s, s->sx, s->sxx, &cpu, &vcpu);
    json_t *beh = json_object();
    for (uint32_t t = 1; t < AB_TYPES; t++)
        json_object_set_new(beh, cascade_event_type_name(t), json_real(s->counts[t]));
    json_t *j =
        json_pack("{s:s, s:f, s:f, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o}", "arm", l->arms.v[a],
                  "users", s->users, "requests", s->requests, "impressions", s->impressions,
                  "clicks", s->counts[CASCADE_EV_CLICK], "behaviours", beh, "ctr", num(ctr),
                  "ctr_se", num(sqrt(var)), "clicks_per_user", num(cpu), "observed_share",
                  num(layer_users > 0 ? s->users / layer_users : NAN), "expected_share",
                  s->expected_share >= 0 ? json_real(s->expected_share) : json_null());
    long c = control_of(l, a);
    if (c >= 0) {
        struct ab_diff dc = compare_ctr(&arms[c], s), du = compare_clicks(&arms[c], s);
        json_object_set_new(j, "control", json_string(l->arms.v[c]));
        json_object_set_new(j, "ctr_vs_control", diff_json(&dc));
        json_object_set_new(j, "clicks_per_user_vs_control", diff_json(&du));
    }
    return j;
}

static double layer_users(const struct ab_layer *l, const struct ab_arm_stats *arms)
{
    double n = 0;
    for (size_t a = 0; a < l->arms.n; a++)
        n += arms[a].users;
    return n;
}

static int print_json(const struct ab_log *log, const struct ab_result *res, FILE *out)
{
    json_t *layers = json_array();
    for (size_t li = 0; li < log->n_layers; li++) {
        const struct ab_layer *l = &log->layers[li];
        const struct ab_srm *srm = &res->srm[li];
        double n = layer_users(l, res->arms[li]);
        json_t *arms = json_array();
        for (size_t a = 0; a < l->arms.n; a++)
            json_array_append_new(arms, arm_json(l, a, res->arms[li], n));
        json_t *jsrm = srm->computed ? json_pack("{s:f, s:f, s:o, s:b}", "chi2", srm->chi2, "df",
                                                 srm->df, "p", num(srm->p), "flagged", srm->flagged)
                                     : json_pack("{s:s}", "skipped", srm->note ? srm->note : "");
        json_array_append_new(
            layers, json_pack("{s:s, s:o, s:o}", "layer", l->name, "srm", jsrm, "arms", arms));
    }
    json_t *root = json_pack("{s:I, s:I, s:I, s:o}", "serves", (json_int_t)log->n_serves,
                             "events_joined", (json_int_t)log->events_joined, "events_unjoined",
                             (json_int_t)log->events_unjoined, "layers", layers);
    int rc = root ? json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) : -1;
    fputc('\n', out);
    json_decref(root);
    return rc == 0 ? 0 : CASCADE_ENOMEM;
}

static void print_diff(FILE *out, const char *what, const struct ab_diff *d)
{
    if (!d->valid) {
        fprintf(out, "%s: n/a (too few users or no variance)", what);
        return;
    }
    fprintf(out, "%s %+.6g (%+.2f%%) 95%% CI [%+.6g, %+.6g] p=%.4g", what, d->diff, 100 * d->rel,
            d->lo, d->hi, d->p);
}

static void print_table(const struct ab_log *log, const struct ab_result *res, FILE *out)
{
    fprintf(out, "%zu serves; %zu events joined to a served item, %zu not\n", log->n_serves,
            log->events_joined, log->events_unjoined);
    for (size_t li = 0; li < log->n_layers; li++) {
        const struct ab_layer *l = &log->layers[li];
        const struct ab_arm_stats *arms = res->arms[li];
        const struct ab_srm *srm = &res->srm[li];
        double n = layer_users(l, arms);
        fprintf(out, "\nlayer %s: ", l->name);
        if (srm->computed)
            fprintf(out, "SRM chi2=%.4g df=%.0f p=%.4g%s\n", srm->chi2, srm->df, srm->p,
                    srm->flagged ? "  ** SAMPLE RATIO MISMATCH (p < 0.001) **" : " ok");
        else
            fprintf(out, "SRM not computed (%s)\n", srm->note ? srm->note : "");
        fprintf(out, "  %-24s %8s %9s %11s %8s %7s %8s %7s %8s %10s %11s %8s %8s\n", "arm", "users",
                "requests", "impressions", "clicks", "likes", "collects", "shares", "follows",
                "ctr", "clicks/user", "obs%", "exp%");
        for (size_t a = 0; a < l->arms.n; a++) {
            const struct ab_arm_stats *s = &arms[a];
            double ctr, var, cpu, vcpu;
            ab_ctr(s, &ctr, &var);
            ab_per_user(s, s->sx, s->sxx, &cpu, &vcpu);
            fprintf(out,
                    "  %-24s %8.0f %9.0f %11.0f %8.0f %7.0f %8.0f %7.0f %8.0f %10.6f %11.4f "
                    "%8.2f ",
                    l->arms.v[a], s->users, s->requests, s->impressions,
                    s->counts[CASCADE_EV_CLICK], s->counts[CASCADE_EV_LIKE],
                    s->counts[CASCADE_EV_COLLECT], s->counts[CASCADE_EV_SHARE],
                    s->counts[CASCADE_EV_FOLLOW], ctr, cpu, n > 0 ? 100 * s->users / n : 0.0);
            if (s->expected_share >= 0)
                fprintf(out, "%8.2f\n", 100 * s->expected_share);
            else
                fprintf(out, "%8s\n", "-");
        }
        for (size_t a = 0; a < l->arms.n; a++) {
            long c = control_of(l, a);
            if (c < 0)
                continue;
            struct ab_diff dc = compare_ctr(&arms[c], &arms[a]);
            struct ab_diff du = compare_clicks(&arms[c], &arms[a]);
            fprintf(out, "  %s vs %s: ", l->arms.v[a], l->arms.v[c]);
            print_diff(out, "ctr", &dc);
            fprintf(out, "; ");
            print_diff(out, "clicks/user", &du);
            fputc('\n', out);
        }
    }
}

/* ---- entry point ---- */

static void result_free(struct ab_result *res, size_t n_layers)
{
    for (size_t i = 0; res->arms && i < n_layers; i++)
        free(res->arms[i]);
    free(res->arms);
    free(res->srm);
}

static int load(const struct cascade_ab_args *a, struct ab_log *log, char *err, size_t errlen)
{
    if (a->redis)
        return ab_load_redis(log, a->redis, a->ns, a->from_ms, a->to_ms, err, errlen);
    int rc = ab_load_tsv(log, a->serves_path, true, a->from_ms, a->to_ms, err, errlen);
    return rc ? rc : ab_load_tsv(log, a->events_path, false, a->from_ms, a->to_ms, err, errlen);
}

int cascade_ab_run(const struct cascade_ab_args *a, FILE *out, FILE *errf)
{
    struct ab_log log = {0};
    struct ab_result res = {0};
    struct ab_cell *cells = NULL;
    char err[1024] = "";
    int rc = load(a, &log, err, sizeof err);
    if (rc)
        goto out;
    rc = CASCADE_ENOMEM;
    snprintf(err, sizeof err, "out of memory");
    res.arms = calloc(log.n_layers + 1, sizeof *res.arms);
    res.srm = calloc(log.n_layers + 1, sizeof *res.srm);
    if (!res.arms || !res.srm)
        goto out;
    for (size_t i = 0; i < log.n_layers; i++) {
        if (!(res.arms[i] = calloc(MAX_ARMS, sizeof **res.arms)))
            goto out;
        for (size_t k = 0; k < MAX_ARMS; k++)
            res.arms[i][k].expected_share = -1;
        if (log.layers[i].arms.n > MAX_ARMS) {
            snprintf(err, sizeof err, "layer %s: more than %d arms", log.layers[i].name, MAX_ARMS);
            rc = CASCADE_EINVAL;
            goto out;
        }
    }
    if (!(cells = build_cells(&log)))
        goto out;
    aggregate(&log, cells, &res);
    if (a->config_path && (rc = load_expected(&log, &res, a->config_path, err, sizeof err)))
        goto out;
    for (size_t i = 0; i < log.n_layers; i++)
        res.srm[i] = srm_test(&log.layers[i], res.arms[i]);
    rc = 0;
    if (a->json)
        rc = print_json(&log, &res, out);
    else
        print_table(&log, &res, out);
out:
    if (rc)
        fprintf(errf, "cascade-ab: %s\n", err);
    free(cells);
    result_free(&res, log.n_layers);
    ab_log_free(&log);
    return rc ? CASCADE_AB_INPUT : CASCADE_AB_OK;
}
