/* Unit tests for the trainers' model gate (train_gate.h): the decision in
 * both metric directions, the gate record, a positives-only log refused
 * with exit status 3 and nothing published, and on a generated world: a
 * model trained on shuffled labels is refused next to a good published one
 * (.latest does not move, the record says why), a better one is published,
 * and --force overrides; and the publish step every trainer shares, with a
 * stand-in model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "build_cli.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "gate_record.h"
#include "latest_file.h"
#include "rng.h"
#include "support.h"
#include "train_gate.h"
#include "train_rank.h"

static struct cascade_train_gate auc_gate(double value, bool has_current, double current)
{
    struct cascade_train_gate g = {.job = "test",
                                   .kind = "rank-lr",
                                   .metric = "auc",
                                   .higher_is_better = true,
                                   .floor = CASCADE_TRAIN_GATE_AUC_FLOOR,
                                   .tolerance = CASCADE_TRAIN_GATE_TOLERANCE,
                                   .holdout = 1000,
                                   .value = value,
                                   .has_current = has_current,
                                   .current_value = current,
                                   .current = has_current ? "rank-lr-old.safetensors" : NULL};
    return g;
}

static void test_decide(void **state)
{
    (void)state;
    struct cascade_train_gate_decision d;
    struct cascade_train_gate g = auc_gate(0.70, false, NAN);
    cascade_train_gate_decide(&g, &d);
    assert_true(d.publish);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_PASSED);

    g = auc_gate(0.50, false, NAN); /* chance: below the 0.52 floor */
    cascade_train_gate_decide(&g, &d);
    assert_false(d.publish);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_BELOW_FLOOR);
    assert_non_null(strstr(d.message, "does not support"));
    g = auc_gate(NAN, false, NAN); /* undefined metric (one class held out) */
    cascade_train_gate_decide(&g, &d);
    assert_false(d.publish);

    g = auc_gate(0.70, true, 0.72); /* worse by more than the tolerance */
    cascade_train_gate_decide(&g, &d);
    assert_false(d.publish);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_WORSE);
    assert_non_null(strstr(d.message, "rank-lr-old.safetensors"));
    g = auc_gate(0.718, true, 0.72); /* within it */
    cascade_train_gate_decide(&g, &d);
    assert_true(d.publish);
    g = auc_gate(0.70, true, NAN); /* the published model could not be evaluated */
    g.has_current = false;
    cascade_train_gate_decide(&g, &d);
    assert_true(d.publish);

    g = auc_gate(0.70, true, 0.80);
    g.force = true;
    cascade_train_gate_decide(&g, &d);
    assert_true(d.publish && d.forced);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_WORSE);

    /* A lower-is-better metric (a loss), and nDCG@10 with its own floor. */
    struct cascade_train_gate loss = {.job = "t",
                                      .kind = "k",
                                      .metric = "logloss",
                                      .higher_is_better = false,
                                      .floor = 0.69,
                                      .tolerance = 0.001,
                                      .value = 0.30,
                                      .has_current = true,
                                      .current_value = 0.25,
                                      .current = "old"};
    cascade_train_gate_decide(&loss, &d);
    assert_false(d.publish);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_WORSE);
    loss.value = 0.2505;
    cascade_train_gate_decide(&loss, &d);
    assert_true(d.publish);
    loss.value = 0.70;
    loss.has_current = false;
    cascade_train_gate_decide(&loss, &d);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_BELOW_FLOOR);
    struct cascade_train_gate ndcg = {.job = "t",
                                      .kind = "rank-lambdamart",
                                      .metric = "ndcg@10",
                                      .higher_is_better = true,
                                      .floor = 0.30,
                                      .value = 0.41,
                                      .has_current = true,
                                      .current_value = 0.40,
                                      .current = "old"};
    cascade_train_gate_decide(&ndcg, &d);
    assert_true(d.publish && !d.forced);

    assert_int_equal(cascade_train_gate_exit_status(0, true), CASCADE_BUILD_EXIT_OK);
    assert_int_equal(cascade_train_gate_exit_status(0, false), CASCADE_BUILD_EXIT_REFUSED);
    assert_int_equal(cascade_train_gate_exit_status(CASCADE_EDATA, false), CASCADE_BUILD_EXIT_DATA);
    assert_int_equal(cascade_train_gate_exit_status(CASCADE_EIO, false),
                     CASCADE_BUILD_EXIT_FAILURE);
}

static void test_check_labels(void **state)
{
    (void)state;
    float y[200];
    char err[512];
    for (size_t i = 0; i < 200; i++)
        y[i] = 1;
    assert_int_equal(cascade_train_gate_check_labels(y, 150, 200, err, sizeof err), CASCADE_EDATA);
    assert_non_null(strstr(err, "has label 1"));
    for (size_t i = 0; i < 200; i++)
        y[i] = (float)(i % 3 == 0);
    assert_int_equal(cascade_train_gate_check_labels(y, 150, 200, err, sizeof err), 0);
    /* Only 5 held-out negatives: too few to measure an AUC. */
    for (size_t i = 150; i < 200; i++)
        y[i] = i < 155 ? 0.0f : 1.0f;
    assert_int_equal(cascade_train_gate_check_labels(y, 150, 200, err, sizeof err), CASCADE_EDATA);
    assert_non_null(strstr(err, "5 negatives"));
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    char dir[256], model[400], path[500], err[512], line[1024];
    assert_non_null(test_tempdir(dir, sizeof dir));
    snprintf(model, sizeof model, "%s/m-1.safetensors", dir);
    snprintf(path, sizeof path, "%s%s", model, CASCADE_GATE_RECORD_SUFFIX);
    cascade_gate_record_describe(model, line, sizeof line);
    assert_string_equal(line, "no gate record");
    struct cascade_gate_record r = {.model = "m-1.safetensors",
                                    .version = "m-1",
                                    .kind = "rank-lr",
                                    .metric = "auc",
                                    .higher_is_better = true,
                                    .holdout = 321,
                                    .value = 0.71,
                                    .floor = 0.52,
                                    .tolerance = 0.005,
                                    .has_current = true,
                                    .current_value = 0.7,
                                    .current_version = "m-0.safetensors",
                                    .decision = CASCADE_GATE_PUBLISHED,
                                    .reason = CASCADE_GATE_REASON_PASSED,
                                    .message = "ok",
                                    .decided_at = 1700000000};
    assert_int_equal(cascade_gate_record_write(path, &r, err, sizeof err), 0);
    struct cascade_gate_record b;
    assert_int_equal(cascade_gate_record_read(path, &b, err, sizeof err), 0);
    assert_string_equal(b.model, r.model);
    assert_string_equal(b.current_version, r.current_version);
    assert_string_equal(b.decision, r.decision);
    assert_true(b.higher_is_better && b.has_current);
    assert_int_equal(b.holdout, 321);
    assert_true(fabs(b.value - 0.71) < 1e-9 && fabs(b.current_value - 0.7) < 1e-9);
    cascade_gate_record_describe(model, line, sizeof line);
    assert_non_null(strstr(line, "published"));
    assert_non_null(strstr(line, "auc 0.7100"));
    assert_non_null(strstr(line, "m-0.safetensors"));
    /* NAN values are JSON null and read back as NAN. */
    r.has_current = false;
    r.value = NAN;
    assert_int_equal(cascade_gate_record_write(path, &r, err, sizeof err), 0);
    assert_int_equal(cascade_gate_record_read(path, &b, err, sizeof err), 0);
    assert_true(isnan(b.value) && !b.has_current);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": 1}", f);
    fclose(f);
    assert_int_equal(cascade_gate_record_read(path, &b, err, sizeof err), CASCADE_EFORMAT);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int build(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
                 const char *a6, const char *a7)
{
    const char *argv[] = {"cascade-build", a1, a2, a3, a4, a5, a6, a7, NULL};
    int argc = 1;
    while (argv[argc])
        argc++;
    return cascade_build_main(argc, (char **)argv);
}

/* MovieLens ratings: every rating is an impression and a click, so every
 * ranking label is 1. Each trainer of click labels says so with exit 3 and
 * publishes nothing. */
static void test_positives_only_log_exits_3(void **state)
{
    (void)state;
    char in[256], out[256], models[256], path[600];
    assert_non_null(test_tempdir(in, sizeof in));
    assert_non_null(test_tempdir(out, sizeof out));
    assert_non_null(test_tempdir(models, sizeof models));
    char *movies = malloc(64 * 1024), *ratings = malloc(1024 * 1024);
    size_t nm = 0, nr = 0;
    nm += (size_t)sprintf(movies + nm, "movieId,title,genres\n");
    for (int m = 1; m <= 60; m++)
        nm += (size_t)sprintf(movies + nm, "%d,Movie %d (2000),%s\n", m, m,
                              m % 2 ? "Comedy" : "Drama|Action");
    nr += (size_t)sprintf(ratings + nr, "userId,movieId,rating,timestamp\n");
    for (int u = 1; u <= 100; u++)
        for (int k = 0; k < 20; k++)
            nr += (size_t)sprintf(ratings + nr, "%d,%d,%.1f,%d\n", u, 1 + (u * 7 + k * 3) % 60,
                                  1.0 + (u + k) % 5, 1500000000 + u * 1000 + k * 37);
    write_file(in, "movies.csv", movies);
    write_file(in, "ratings.csv", ratings);
    free(movies);
    free(ratings);
    assert_int_equal(
        build("import-movielens", "--format", "latest-small", "--in", in, "--out", out),
        CASCADE_BUILD_EXIT_OK);
    const char *jobs[] = {"train-rank", "train-prerank", "train-mmoe"};
    for (size_t j = 0; j < 3; j++)
        assert_int_equal(build(jobs[j], "--data", out, "--model-dir", models, "--quiet", NULL),
                         CASCADE_BUILD_EXIT_DATA);
    const char *latest[] = {"rank-lr.latest", "prerank-lr.latest", "rank-mmoe.latest"};
    for (size_t j = 0; j < 3; j++) {
        snprintf(path, sizeof path, "%s/%s", models, latest[j]);
        assert_int_equal(access(path, F_OK), -1);
    }
    /* A trainer's error names the command once: the command line adds
     * "cascade-build train-mmoe: ", the trainer does not name itself. */
    char said[1024];
    snprintf(path, sizeof path, "%s/stderr.txt", models);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *capture = fopen(path, "w");
    assert_non_null(capture);
    assert_int_not_equal(dup2(fileno(capture), STDERR_FILENO), -1);
    int rc = build("train-mmoe", "--data", out, "--model-dir", models, "--quiet", NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(capture);
    assert_int_equal(rc, CASCADE_BUILD_EXIT_DATA);
    capture = fopen(path, "r");
    assert_non_null(capture);
    size_t n = fread(said, 1, sizeof said - 1, capture);
    fclose(capture);
    said[n] = '\0';
    assert_non_null(
        strstr(said, "cascade-build train-mmoe: every one of the 1260 training examples"));
    assert_null(strstr(said, "train-mmoe: train-mmoe"));
}

/* Name in dir/rank-lr.latest. */
static void latest_name(const char *dir, char *name, size_t len)
{
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/rank-lr.latest", dir);
    assert_int_equal(cascade_latest_read(path, name, len, err, sizeof err), 0);
}

static void read_record(const char *model_path, struct cascade_gate_record *r)
{
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s%s", model_path, CASCADE_GATE_RECORD_SUFFIX);
    if (cascade_gate_record_read(path, r, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* Fit on ex with the training labels permuted (the held-out ones intact). */
static int fit_shuffled(const cascade_dataset *ds, struct cascade_rank_examples *ex,
                        const struct cascade_train_rank_opts *o,
                        struct cascade_train_rank_summary *s, char *err, size_t errlen)
{
    float *saved = malloc(ex->n_train * sizeof(float));
    memcpy(saved, ex->y, ex->n_train * sizeof(float));
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 42);
    for (size_t i = ex->n_train; i > 1; i--) {
        size_t j = (size_t)cascade_rng_below(&rng, i);
        float t = ex->y[i - 1];
        ex->y[i - 1] = ex->y[j];
        ex->y[j] = t;
    }
    int rc = cascade_train_rank_fit(ds, ex, o, s, NULL, err, errlen);
    memcpy(ex->y, saved, ex->n_train * sizeof(float));
    free(saved);
    return rc;
}

static void test_rank_gate_on_generated_world(void **state)
{
    (void)state;
    struct cascade_datagen_opts g;
    struct cascade_train_rank_opts o;
    struct cascade_train_rank_summary bad, good, worse, forced;
    struct cascade_rank_examples ex;
    struct cascade_gate_record r;
    cascade_dataset *ds = NULL;
    char dir[256], err[1024], name[256];
    cascade_datagen_defaults(&g);
    g.users = 2000;
    g.items = 400;
    g.events = 40000;
    g.end_ts = 1764547200;
    g.quiet = true;
    assert_int_equal(cascade_datagen_generate(&g, &ds, NULL, NULL, err, sizeof err), 0);
    assert_non_null(test_tempdir(dir, sizeof dir));
    cascade_train_rank_defaults(&o);
    o.quiet = true;
    o.model_dir = dir;
    o.warm_start = false;
    assert_int_equal(cascade_rank_examples_build(ds, &o, &ex, err, sizeof err), 0);

    /* Shuffled labels with no floor and nothing published: published. */
    struct cascade_train_rank_opts nofloor = o;
    nofloor.gate.floor = 0;
    assert_int_equal(fit_shuffled(ds, &ex, &nofloor, &bad, err, sizeof err), 0);
    assert_true(bad.gate.publish);
    assert_true(bad.auc < 0.6);

    /* A model of the real labels beats it: published, and the record has both. */
    assert_int_equal(cascade_train_rank_fit(ds, &ex, &o, &good, NULL, err, sizeof err), 0);
    assert_true(good.gate.publish);
    assert_true(good.auc > bad.auc + 0.1);
    latest_name(dir, name, sizeof name);
    assert_non_null(strstr(good.model_path, name));
    read_record(good.model_path, &r);
    assert_string_equal(r.decision, CASCADE_GATE_PUBLISHED);
    assert_true(r.has_current);
    assert_non_null(strstr(bad.model_path, r.current_version));
    assert_true(fabs(r.current_value - bad.auc) < 1e-6); /* re-measured on the same rows */
    assert_true(fabs(r.value - good.auc) < 1e-6);

    /* Shuffled labels again, now next to the good model: refused, kept on
     * disk, .latest unchanged, and the record says why. */
    assert_int_equal(fit_shuffled(ds, &ex, &nofloor, &worse, err, sizeof err), 0);
    assert_false(worse.gate.publish);
    assert_string_equal(worse.gate.reason, CASCADE_GATE_REASON_WORSE);
    assert_int_equal(access(worse.model_path, F_OK), 0);
    char after[256];
    latest_name(dir, after, sizeof after);
    assert_string_equal(after, name);
    read_record(worse.model_path, &r);
    assert_string_equal(r.decision, CASCADE_GATE_REFUSED);
    assert_string_equal(r.reason, CASCADE_GATE_REASON_WORSE);
    assert_string_equal(r.current_version, name);
    assert_true(r.value < r.current_value - r.tolerance);

    /* With the default floor the same model is refused as unsupported. */
    struct cascade_train_rank_summary low;
    int rc = fit_shuffled(ds, &ex, &o, &low, err, sizeof err);
    assert_int_equal(rc, isnan(low.auc) || low.auc <= o.gate.floor ? CASCADE_EDATA : 0);
    assert_false(low.gate.publish);

    /* --force publishes it anyway, and says so. */
    nofloor.gate.force = true;
    assert_int_equal(fit_shuffled(ds, &ex, &nofloor, &forced, err, sizeof err), 0);
    assert_true(forced.gate.publish && forced.gate.forced);
    latest_name(dir, after, sizeof after);
    assert_non_null(strstr(forced.model_path, after));
    read_record(forced.model_path, &r);
    assert_string_equal(r.decision, CASCADE_GATE_FORCED);
    cascade_rank_examples_free(&ex);
    cascade_dataset_destroy(ds);
}

/* cascade_train_gate_init takes the flags' floor, tolerance and force and
 * starts with nothing published. */
static void test_init(void **state)
{
    (void)state;
    struct cascade_train_gate_opts o;
    struct cascade_train_gate g;
    cascade_train_gate_defaults(&o);
    o.floor = 0.6;
    o.tolerance = 0.01;
    o.force = true;
    cascade_train_gate_init(&g, "train-x", "x-lr", "auc", &o, 123, 0.75);
    assert_string_equal(g.job, "train-x");
    assert_string_equal(g.kind, "x-lr");
    assert_string_equal(g.metric, "auc");
    assert_true(g.higher_is_better);
    assert_true(g.floor == 0.6 && g.tolerance == 0.01 && g.force);
    assert_int_equal(g.holdout, 123);
    assert_true(g.value == 0.75);
    assert_false(g.has_current);
    assert_null(g.current);
    assert_null(g.current_note);
}

/* A stand-in model for cascade_train_gate_publish: its file holds its
 * held-out metric as text, so the eval callback really reads the published
 * file, and the save callback can be told to fail. */
struct fake_model {
    double value; /* what save writes */
    int save_rc;  /* 0, or the error save returns */
    int eval_rc;  /* 0, or the error eval returns */
    int saves, evals;
};

static int fake_save(void *ctx, const char *path, const char *version, char *err, size_t errlen)
{
    struct fake_model *f = ctx;
    f->saves++;
    if (f->save_rc != 0) {
        snprintf(err, errlen, "fake save of %s refused", version);
        return f->save_rc;
    }
    FILE *fp = fopen(path, "w");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot write", path);
        return CASCADE_EIO;
    }
    fprintf(fp, "%.6f\n", f->value);
    fclose(fp);
    return 0;
}

static int fake_eval(void *ctx, const char *path, double *value, char *err, size_t errlen)
{
    struct fake_model *f = ctx;
    f->evals++;
    if (f->eval_rc != 0)
        return f->eval_rc;
    FILE *fp = fopen(path, "r");
    int n = fp ? fscanf(fp, "%lf", value) : 0;
    if (fp)
        fclose(fp);
    if (n != 1) {
        snprintf(err, errlen, "%s: no value", path);
        return CASCADE_EFORMAT;
    }
    return 0;
}

/* Contents of dir/latest into name; CASCADE_ENOTFOUND when it is missing. */
static int read_latest(const char *dir, const char *latest, char *name, size_t len)
{
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, latest);
    return cascade_latest_read(path, name, len, err, sizeof err);
}

/* The shared publish step: a first model is published under "<kind>-<time>"
 * with its record; a worse one is saved, measured against the first (read
 * back through eval) and refused without moving .latest; a failing save or
 * an out-of-memory eval stops before anything is decided; a model of
 * several files puts its version, not a file name, in .latest. */
static void test_publish(void **state)
{
    (void)state;
    char root[256], dir[400], path[1024], version[128], name[1200], first[256], err[512];
    struct cascade_train_gate_decision d;
    struct cascade_gate_record r;
    struct fake_model f = {.value = 0.80};
    assert_non_null(test_tempdir(root, sizeof root));
    snprintf(dir, sizeof dir, "%s/models", root); /* created by publish */
    struct cascade_train_gate g = auc_gate(0.80, false, NAN);
    struct cascade_train_gate_target t = {.dir = dir,
                                          .latest = "rank-lr.latest",
                                          .eval = fake_eval,
                                          .save = fake_save,
                                          .ctx = &f,
                                          .quiet = true};

    /* Nothing published: eval is not called, the model is saved and published. */
    assert_int_equal(cascade_train_gate_publish(&g, &t, path, sizeof path, version, sizeof version,
                                                &d, err, sizeof err),
                     0);
    assert_true(d.publish);
    assert_int_equal(f.evals, 0);
    assert_int_equal(f.saves, 1);
    assert_int_equal(strncmp(version, "rank-lr-", 8), 0);
    snprintf(first, sizeof first, "%s.safetensors", version);
    snprintf(name, sizeof name, "%s/%s", dir, first);
    assert_string_equal(path, name);
    assert_int_equal(read_latest(dir, "rank-lr.latest", name, sizeof name), 0);
    assert_string_equal(name, first);
    read_record(path, &r);
    assert_string_equal(r.decision, CASCADE_GATE_PUBLISHED);
    assert_string_equal(r.version, version);
    assert_false(r.has_current);

    /* A worse model: the published one is read back at 0.80, this one is
     * 0.60, so it is kept on disk and refused; g itself is not written. */
    f.value = 0.60;
    g.value = 0.60;
    assert_int_equal(cascade_train_gate_publish(&g, &t, path, sizeof path, version, sizeof version,
                                                &d, err, sizeof err),
                     0);
    assert_false(d.publish);
    assert_string_equal(d.reason, CASCADE_GATE_REASON_WORSE);
    assert_int_equal(f.evals, 1);
    assert_null(g.current);
    assert_false(g.has_current);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(read_latest(dir, "rank-lr.latest", name, sizeof name), 0);
    assert_string_equal(name, first);
    read_record(path, &r);
    assert_string_equal(r.decision, CASCADE_GATE_REFUSED);
    assert_string_equal(r.current_version, first);
    assert_true(r.has_current);
    assert_true(fabs(r.current_value - 0.80) < 1e-9);

    /* A failing save: its error, no record, .latest unchanged. */
    f.save_rc = CASCADE_EIO;
    g.value = 0.90;
    assert_int_equal(cascade_train_gate_publish(&g, &t, path, sizeof path, version, sizeof version,
                                                &d, err, sizeof err),
                     CASCADE_EIO);
    assert_non_null(strstr(err, "fake save of rank-lr-"));
    snprintf(name, sizeof name, "%s%s", path, CASCADE_GATE_RECORD_SUFFIX);
    assert_int_equal(access(name, F_OK), -1);
    assert_int_equal(read_latest(dir, "rank-lr.latest", name, sizeof name), 0);
    assert_string_equal(name, first);

    /* Out of memory measuring the published model: nothing is saved. */
    f.save_rc = 0;
    f.eval_rc = CASCADE_ENOMEM;
    int saves = f.saves;
    assert_int_equal(cascade_train_gate_publish(&g, &t, path, sizeof path, version, sizeof version,
                                                &d, err, sizeof err),
                     CASCADE_ENOMEM);
    assert_int_equal(f.saves, saves);

    /* A model of several files: .latest names the version. */
    f.eval_rc = 0;
    t.latest = "two-tower.latest";
    t.latest_names_version = true;
    g.kind = "two-tower";
    assert_int_equal(cascade_train_gate_publish(&g, &t, path, sizeof path, version, sizeof version,
                                                &d, err, sizeof err),
                     0);
    assert_true(d.publish);
    assert_int_equal(strncmp(version, "two-tower-", 10), 0);
    assert_int_equal(read_latest(dir, "two-tower.latest", name, sizeof name), 0);
    assert_string_equal(name, version);
    test_rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_check_labels),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_positives_only_log_exits_3),
        cmocka_unit_test(test_rank_gate_on_generated_world),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_publish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
