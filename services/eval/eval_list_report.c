/* The served-list report (eval_list_report.h): rows gathered from the peers
 * and the served passes, printed as a table or a JSON document. */
#include "eval_list_report.h"

#include <string.h>

#include "eval_report.h"

/* One printed row. */
struct list_row {
    const char *name, *note;
    const struct cascade_eval_list_acc *acc; /* NULL: not measured */
    size_t missing;                          /* answers without this stage's ids */
};

static size_t gather(const struct cascade_eval_list_report *r, struct list_row *rows)
{
    size_t n = 0;
    for (int p = 0; r->peers && p < CASCADE_EVAL_N_PEERS; p++)
        rows[n++] = (struct list_row){cascade_eval_peer_names[p], r->peers->note[p],
                                      r->peers->built[p] ? &r->peers->acc[p] : NULL, 0};
    for (int s = 0; r->served && s < CASCADE_EVAL_N_STAGES; s++)
        rows[n++] = (struct list_row){cascade_eval_stage_names[s], "", &r->served->with.acc[s],
                                      r->served->with.missing[s]};
    if (r->served && r->served->has_without)
        rows[n++] = (struct list_row){"served_no_explore", "orchestrator.exploration.new_share=0",
                                      &r->served->without.acc[CASCADE_EVAL_STAGE_SERVED], 0};
    return n;
}

static const char *protocol_name(const struct cascade_eval_split_opts *o)
{
    return o->protocol == CASCADE_EVAL_PROTOCOL_RANDOM ? "random" : "time";
}

void cascade_eval_list_report_table(FILE *out, const struct cascade_eval_list_report *r)
{
    struct list_row rows[CASCADE_EVAL_N_PEERS + CASCADE_EVAL_N_STAGES + 1];
    size_t n = gather(r, rows), k = r->k;
    fprintf(out,
            "%zu test users, %zu held-out items; K = %zu, train items removed from every list\n",
            r->split->n_users, r->split->test_items, k);
    fprintf(out, "%-18s %8s %8s %8s %8s %8s %8s  %s\n", "row", "P@K", "R@K", "nDCG@K", "MAP@K",
            "cov@K", "popbias", "note");
    for (size_t i = 0; i < n; i++) {
        struct cascade_eval_list_scores sc;
        if (!rows[i].acc) {
            fprintf(out, "%-18s %8s %8s %8s %8s %8s %8s  %s\n", rows[i].name, "-", "-", "-", "-",
                    "-", "-", rows[i].note);
            continue;
        }
        cascade_eval_list_acc_scores(rows[i].acc, &sc);
        fprintf(out, "%-18s %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f  %s", rows[i].name, sc.precision,
                sc.recall, sc.ndcg, sc.map, sc.coverage, sc.pop_bias, rows[i].note);
        if (rows[i].missing)
            fprintf(out, "%sstage absent for %zu users (previous order kept)",
                    rows[i].note[0] ? "; " : "", rows[i].missing);
        fputc('\n', out);
    }
    const struct cascade_eval_served_result *s = r->served;
    if (s)
        fprintf(out,
                "served: %zu failed, %zu degraded answers; models trained: %s; skipped: %s; build "
                "%.1fs, train %.1fs, Recommend pass %.1fs%s\n",
                s->with.failed, s->with.degraded, s->trained[0] ? s->trained : "none",
                s->skipped[0] ? s->skipped : "none", s->build_s, s->train_s, s->with.seconds,
                s->has_without ? " (+ exploration-off pass)" : "");
    fprintf(out, "protocol %s; eval wall time %.1fs\n", protocol_name(r->split_opts), r->seconds);
}

static json_t *row_json(const struct list_row *row)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(row->name));
    json_object_set_new(o, "note", json_string(row->note));
    if (!row->acc) {
        json_object_set_new(o, "built", json_false());
        return o;
    }
    struct cascade_eval_list_scores sc;
    cascade_eval_list_acc_scores(row->acc, &sc);
    json_object_set_new(o, "built", json_true());
    json_object_set_new(o, "precision", json_real(sc.precision));
    json_object_set_new(o, "recall", json_real(sc.recall));
    json_object_set_new(o, "ndcg", json_real(sc.ndcg));
    json_object_set_new(o, "map", json_real(sc.map));
    json_object_set_new(o, "coverage", json_real(sc.coverage));
    json_object_set_new(o, "popularity_bias", json_real(sc.pop_bias));
    json_object_set_new(o, "users", json_integer((json_int_t)sc.users));
    json_object_set_new(o, "empty", json_integer((json_int_t)sc.empty));
    json_object_set_new(o, "stage_absent", json_integer((json_int_t)row->missing));
    return o;
}

static json_t *split_json(const struct cascade_eval_list_report *r)
{
    const struct cascade_eval_split_opts *o = r->split_opts;
    json_t *s = json_object();
    json_object_set_new(s, "protocol", json_string(protocol_name(o)));
    json_object_set_new(s, "train_share", json_real(o->train_share));
    json_object_set_new(s, "split_seed", json_integer((json_int_t)o->split_seed));
    json_object_set_new(s, "test_frac", json_real(o->test_frac));
    json_object_set_new(s, "min_interactions", json_integer((json_int_t)o->min_interactions));
    json_object_set_new(s, "users", json_integer((json_int_t)r->split->n_users));
    json_object_set_new(s, "test_items", json_integer((json_int_t)r->split->test_items));
    json_object_set_new(s, "train_events", json_integer((json_int_t)r->split->train_events));
    return s;
}

int cascade_eval_list_report_json(const char *path, const struct cascade_eval_list_report *r,
                                  char *err, size_t errlen)
{
    struct list_row rows[CASCADE_EVAL_N_PEERS + CASCADE_EVAL_N_STAGES + 1];
    size_t n = gather(r, rows);
    json_t *doc = json_object(), *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, row_json(&rows[i]));
    json_object_set_new(doc, "data", json_string(r->data ? r->data : ""));
    json_object_set_new(doc, "k", json_integer((json_int_t)r->k));
    json_object_set_new(doc, "split", split_json(r));
    json_object_set_new(doc, "rows", arr);
    if (r->served) {
        const struct cascade_eval_served_result *s = r->served;
        json_t *sv = json_object();
        json_object_set_new(sv, "trained", json_string(s->trained));
        json_object_set_new(sv, "skipped", json_string(s->skipped));
        json_object_set_new(sv, "failed", json_integer((json_int_t)s->with.failed));
        json_object_set_new(sv, "degraded", json_integer((json_int_t)s->with.degraded));
        json_object_set_new(sv, "build_seconds", json_real(s->build_s));
        json_object_set_new(sv, "train_seconds", json_real(s->train_s));
        json_object_set_new(sv, "pass_seconds", json_real(s->with.seconds));
        json_object_set_new(doc, "served", sv);
    }
    json_object_set_new(doc, "seconds", json_real(r->seconds));
    return cascade_eval_json_write(path, doc, err, errlen);
}
