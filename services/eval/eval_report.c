/* The table and the JSON document of cascade-eval (eval_report.h). Averages
 * are over the evaluated test users; coverage is over the whole catalogue. */
#include "eval_report.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "error.h"

static double mean(double sum, size_t n)
{
    return n ? sum / (double)n : 0.0;
}

static double ms_per_user(const struct cascade_eval_acc *a)
{
    return a->users ? (double)a->time_us / 1000.0 / (double)a->users : 0.0;
}

static void table_header(FILE *out, const struct cascade_eval_report *r)
{
    const struct cascade_eval_run_opts *o = r->run;
    char col[32];
    fprintf(out, "%-18s %8s", "channel", "cand");
    static const char *const metric[] = {"R", "HR", "NDCG"};
    for (size_t m = 0; m < 3; m++)
        for (size_t i = 0; i < o->n_ks; i++) {
            snprintf(col, sizeof col, "%s@%zu", metric[m], o->ks[i]);
            fprintf(out, " %8s", col);
        }
    snprintf(col, sizeof col, "cov@%zu", r->coverage_k);
    fprintf(out, " %8s %8s\n", col, "ms/user");
}

static void print_merge(FILE *out, const char *label, const struct cascade_eval_merge_channel *m,
                        size_t n)
{
    fprintf(out, "%s = ", label);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s (weight %g, quota %u)", i ? ", " : "", m[i].name, m[i].weight,
                m[i].quota);
    fprintf(out, "; capped at K\n");
}

/* The tuning in two lines: the validation split and the objective, then
 * every channel's weight before -> after. */
static void print_tuning(FILE *out, const struct cascade_eval_report *r)
{
    const struct cascade_eval_tune_result *t = r->tune;
    const struct cascade_eval_tune_opts *to = r->tune_opts;
    fprintf(out,
            "tuning: validation = last %g of each user's train items (%zu users, %zu items), "
            "objective = mean of recall@",
            to->valid_frac, t->valid_users, t->valid_items);
    for (size_t i = 0; i < r->run->n_ks; i++)
        fprintf(out, "%s%zu", i ? "," : "", r->run->ks[i]);
    fprintf(out, " on validation: %.4f before, %.4f after (%zu sweeps over the grid ",
            t->ascent.start_value, t->ascent.value, t->ascent.sweeps);
    for (size_t g = 0; g < to->n_grid; g++)
        fprintf(out, "%s%g", g ? "," : "", to->grid[g]);
    fprintf(out, ", seed %llu)\nweights before -> after:", (unsigned long long)to->seed);
    for (size_t i = 0; i < t->n; i++)
        fprintf(out, "%s %s %g -> %g%s", i ? "," : "", t->ch[i].name, t->ch[i].start,
                t->ch[i].weight, t->ch[i].signal ? "" : " (no candidates on validation)");
    fputc('\n', out);
}

void cascade_eval_report_table(FILE *out, const struct cascade_eval_report *r)
{
    const struct cascade_eval_result *res = r->result;
    const struct cascade_eval_run_opts *o = r->run;
    fprintf(out,
            "%zu test users, %zu held-out items; mean over users (cand = mean list length "
            "after removing train items)\n",
            r->split->n_users, r->split->test_items);
    table_header(out, r);
    for (size_t row = 0; row < res->n_rows; row++) {
        const struct cascade_eval_acc *a = &res->acc[row];
        fprintf(out, "%-18s %8.1f", res->names[row], mean((double)a->candidates, a->users));
        for (size_t i = 0; i < o->n_ks; i++)
            fprintf(out, " %8.4f", mean(a->recall[i], a->users));
        for (size_t i = 0; i < o->n_ks; i++)
            fprintf(out, " %8.4f", mean(a->hit[i], a->users));
        for (size_t i = 0; i < o->n_ks; i++)
            fprintf(out, " %8.4f", mean(a->ndcg[i], a->users));
        fprintf(out, " %8.4f %8.3f\n", cascade_eval_acc_coverage(a, r->coverage_k), ms_per_user(a));
    }
    if (o->n_merge > 0)
        print_merge(out, r->tune ? "merged (weights chosen on the validation split)" : "merged",
                    o->merge, o->n_merge);
    if (r->tune) {
        print_merge(out, "merged_base (before tuning)", r->base, r->n_base);
        print_tuning(out, r);
    }
}

/* {"50": v, "100": v, ...} from sums[] averaged over users. */
static json_t *per_k(const struct cascade_eval_acc *a, const double *sums)
{
    json_t *o = json_object();
    char key[32];
    for (size_t i = 0; o && i < a->n_ks; i++) {
        snprintf(key, sizeof key, "%zu", a->ks[i]);
        json_object_set_new(o, key, json_real(mean(sums[i], a->users)));
    }
    return o;
}

static json_t *row_json(const struct cascade_eval_result *res, size_t row)
{
    const struct cascade_eval_acc *a = &res->acc[row];
    json_t *cov = json_object(), *o = json_object();
    char key[32];
    for (size_t i = 0; cov && i < a->n_ks; i++) {
        snprintf(key, sizeof key, "%zu", a->ks[i]);
        json_object_set_new(cov, key, json_real(cascade_eval_acc_coverage(a, a->ks[i])));
    }
    json_object_set_new(o, "name", json_string(res->names[row]));
    json_object_set_new(o, "users", json_integer((json_int_t)a->users));
    json_object_set_new(o, "mean_candidates", json_real(mean((double)a->candidates, a->users)));
    json_object_set_new(o, "empty_lists", json_integer((json_int_t)a->empty));
    json_object_set_new(o, "recall", per_k(a, a->recall));
    json_object_set_new(o, "hit_rate", per_k(a, a->hit));
    json_object_set_new(o, "ndcg", per_k(a, a->ndcg));
    json_object_set_new(o, "coverage", cov);
    json_object_set_new(o, "ms_per_user", json_real(ms_per_user(a)));
    return o;
}

static json_t *split_json(const struct cascade_eval_report *r)
{
    const struct cascade_eval_split *s = r->split;
    const struct cascade_eval_split_opts *so = r->split_opts;
    json_t *o = json_object();
    json_object_set_new(o, "test_frac", json_real(so->test_frac));
    json_object_set_new(o, "min_interactions", json_integer((json_int_t)so->min_interactions));
    json_object_set_new(o, "max_users", json_integer((json_int_t)so->max_users));
    json_object_set_new(o, "seed", json_integer((json_int_t)so->seed));
    json_object_set_new(o, "eligible_users", json_integer((json_int_t)s->eligible));
    json_object_set_new(o, "test_users", json_integer((json_int_t)s->n_users));
    json_object_set_new(o, "below_min_users", json_integer((json_int_t)s->below_min));
    json_object_set_new(o, "test_items", json_integer((json_int_t)s->test_items));
    json_object_set_new(o, "train_events", json_integer((json_int_t)s->train_events));
    json_object_set_new(o, "dropped_events", json_integer((json_int_t)s->dropped_events));
    return o;
}

static json_t *build_json(const struct cascade_eval_build_summary *b)
{
    if (!b)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "as_of", json_integer((json_int_t)b->as_of));
    json_object_set_new(o, "itemcf_lists", json_integer((json_int_t)b->itemcf_lists));
    json_object_set_new(o, "swing_lists", json_integer((json_int_t)b->swing_lists));
    json_object_set_new(o, "usercf_lists", json_integer((json_int_t)b->usercf_lists));
    json_object_set_new(o, "ease_lists", json_integer((json_int_t)b->ease_lists));
    json_object_set_new(o, "seconds", json_real(b->total_s));
    if (b->two_tower_examples > 0) {
        json_t *t = json_object();
        json_object_set_new(t, "version", json_string(b->two_tower_version));
        json_object_set_new(t, "examples", json_integer((json_int_t)b->two_tower_examples));
        json_object_set_new(t, "final_loss", json_real(b->two_tower_loss));
        json_object_set_new(t, "seconds", json_real(b->two_tower_s));
        json_object_set_new(o, "two_tower", t);
    }
    return o;
}

static json_t *merge_list_json(const struct cascade_eval_merge_channel *m, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(m[i].name));
        json_object_set_new(c, "weight", json_real(m[i].weight));
        json_object_set_new(c, "quota", json_integer(m[i].quota));
        json_array_append_new(a, c);
    }
    return a;
}

static json_t *tuning_json(const struct cascade_eval_report *r)
{
    const struct cascade_eval_tune_result *t = r->tune;
    const struct cascade_eval_tune_opts *to = r->tune_opts;
    if (!t)
        return json_null();
    json_t *o = json_object(), *grid = json_array(), *ch = json_array();
    for (size_t g = 0; g < to->n_grid; g++)
        json_array_append_new(grid, json_real(to->grid[g]));
    for (size_t i = 0; i < t->n; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(t->ch[i].name));
        json_object_set_new(c, "start", json_real(t->ch[i].start));
        json_object_set_new(c, "weight", json_real(t->ch[i].weight));
        json_object_set_new(c, "quota", json_integer(t->ch[i].quota));
        json_object_set_new(c, "in_base", json_boolean(t->ch[i].in_base));
        json_object_set_new(c, "signal", json_boolean(t->ch[i].signal));
        json_array_append_new(ch, c);
    }
    json_object_set_new(o, "valid_frac", json_real(to->valid_frac));
    json_object_set_new(o, "grid", grid);
    json_object_set_new(o, "max_sweeps", json_integer((json_int_t)to->max_sweeps));
    json_object_set_new(o, "seed", json_integer((json_int_t)to->seed));
    json_object_set_new(o, "valid_users", json_integer((json_int_t)t->valid_users));
    json_object_set_new(o, "valid_items", json_integer((json_int_t)t->valid_items));
    json_object_set_new(o, "valid_train_events", json_integer((json_int_t)t->valid_train_events));
    json_object_set_new(o, "objective_before", json_real(t->ascent.start_value));
    json_object_set_new(o, "objective_after", json_real(t->ascent.value));
    json_object_set_new(o, "sweeps", json_integer((json_int_t)t->ascent.sweeps));
    json_object_set_new(o, "merges", json_integer((json_int_t)t->ascent.evaluations));
    json_object_set_new(o, "seconds", json_real(t->seconds));
    json_object_set_new(o, "channels", ch);
    json_object_set_new(o, "merge_base", merge_list_json(r->base, r->n_base));
    return o;
}

static json_t *report_json(const struct cascade_eval_report *r)
{
    json_t *doc = json_object(), *ks = json_array(), *rows = json_array();
    for (size_t i = 0; i < r->run->n_ks; i++)
        json_array_append_new(ks, json_integer((json_int_t)r->run->ks[i]));
    for (size_t row = 0; row < r->result->n_rows; row++)
        json_array_append_new(rows, row_json(r->result, row));
    json_object_set_new(doc, "data", json_string(r->data ? r->data : ""));
    json_object_set_new(doc, "ks", ks);
    json_object_set_new(doc, "split", split_json(r));
    json_object_set_new(doc, "build", build_json(r->build));
    json_object_set_new(doc, "merge", merge_list_json(r->run->merge, r->run->n_merge));
    json_object_set_new(doc, "tuning", tuning_json(r));
    json_object_set_new(doc, "rows", rows);
    json_object_set_new(doc, "seconds", json_real(r->result->seconds));
    return doc;
}

int cascade_eval_report_json(const char *path, const struct cascade_eval_report *r, char *err,
                             size_t errlen)
{
    return cascade_eval_json_write(path, report_json(r), err, errlen);
}

int cascade_eval_json_write(const char *path, json_t *doc, char *err, size_t errlen)
{
    int rc = 0;
    if (!doc) {
        snprintf(err, errlen, "%s: out of memory building the JSON report", path);
        return CASCADE_ENOMEM;
    }
    size_t flags = JSON_INDENT(2) | JSON_REAL_PRECISION(6);
    if (strcmp(path, "-") == 0) {
        if (json_dumpf(doc, stdout, flags) != 0 || fputc('\n', stdout) == EOF)
            rc = CASCADE_EIO;
    } else if (json_dump_file(doc, path, flags) != 0) {
        rc = CASCADE_EIO;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot write the JSON report: %s", path, strerror(errno));
    json_decref(doc);
    return rc;
}
