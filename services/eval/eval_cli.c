/* cascade-eval (eval_cli.h): flags, then data -> split -> build -> evaluate
 * -> report, each step saying what it did on stderr. */
#include "eval_cli.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dataset.h"
#include "error.h"
#include "eval_build.h"
#include "eval_channels.h"
#include "eval_list_report.h"
#include "eval_peers.h"
#include "eval_served.h"
#include "eval_report.h"
#include "eval_run.h"
#include "eval_split.h"
#include "eval_tune.h"
#include "flags.h"
#include "recall.h"
#include "redis.h"
#include "store.h"
#include "train_twotower.h"
#include "clock.h"
#include "rpc.h"

#define ERR_LEN 1024
#define N_FLAGS 56
#define NS_MAX 64

struct eval_args {
    const char *data, *redis, *ns, *config, *channels, *merge, *ks, *json;
    size_t coverage_k;
    int threads;
    bool quiet, skip_build, force;
    struct cascade_eval_split_opts split;
    /* Weight tuning on a validation split (--tune-weights). */
    bool tune;
    double valid_frac;
    const char *valid_ns, *grid, *weights_out;
    size_t sweeps;
    char valid_ns_buf[NS_MAX + 16];
    /* The two-tower model trained with each build (when two_tower is evaluated). */
    const char *tt_base; /* models go to tt_base/<namespace> */
    struct cascade_train_twotower_opts tt;
    char tt_base_buf[PATH_MAX];
    /* The served-list report (--served, --peers) and its protocol flags. */
    const char *protocol, *train, *test;
    bool served, peers, explore_cost, keep_stack;
    size_t list_k;
    int port_base;
    const char *served_dir, *models, *target, *model_dir, *bin_dir, *stack_sh;
    char served_dir_buf[PATH_MAX], bin_dir_buf[PATH_MAX];
};

/* Everything a run holds, released in one place. */
struct eval_state {
    cascade_config *cfg;
    cascade_dataset *ds;
    struct cascade_eval_split split;
    cascade_redis *redis;
    cascade_redis_pool *pool;
    cascade_recall *recall;
    struct cascade_eval_result result;
    struct cascade_eval_run_opts run;
    struct cascade_eval_build_summary build;
    /* --tune-weights: the options, the outcome, the merge before tuning and
     * the test users' channel lists (for the untuned merge's row). */
    struct cascade_eval_tune_opts tune_opts;
    struct cascade_eval_tune_result tune;
    struct cascade_eval_merge_channel base[CASCADE_EVAL_MAX_CHANNELS];
    size_t n_base;
    struct cascade_eval_lists lists;
};

static const char description[] =
    "Measure recall quality offline: split the data per user by time (the last\n"
    "--test-frac of each user's interacted items held out), build every recall\n"
    "family on the train part into the Redis namespace --namespace (flushed first),\n"
    "run each channel for every test user through the Recall stage, remove the\n"
    "user's train items, and report recall@K, hit-rate@K, NDCG@K, catalogue\n"
    "coverage and time per user, for each channel and for the merged recall\n"
    "(--merge, else orchestrator.channels of --config, else equal weights).\n"
    "With --tune-weights the merge weights are first chosen on a validation split\n"
    "carved from the train part only (the last --valid-frac of each user's train\n"
    "items), built into --valid-namespace, and the test table reports that merge\n"
    "(\"merged\") next to the untuned one (\"merged_base\").\n"
    "When two_tower is evaluated, each build also trains the two-tower model on\n"
    "the same train part (--two-tower-*) into --two-tower-dir/<namespace>, and the\n"
    "channel serves that model.";

static struct cascade_flag flag(const char *name, enum cascade_flag_kind kind, void *dst,
                                const char *help, double min, double max)
{
    return (struct cascade_flag){name, kind, dst, help, min, max};
}

static size_t flag_table(struct cascade_flag *f, struct eval_args *a)
{
    size_t n = 0;
    f[n++] = flag("data", CASCADE_FLAG_STRING, &a->data,
                  "directory with users.tsv, items.tsv, events.tsv (required)", 0, 0);
    f[n++] = flag("redis", CASCADE_FLAG_STRING, &a->redis, "Redis HOST:PORT", 0, 0);
    f[n++] = flag("namespace", CASCADE_FLAG_STRING, &a->ns,
                  "private key namespace, flushed before the build", 0, 0);
    f[n++] = flag("config", CASCADE_FLAG_STRING, &a->config,
                  "config file: build.*, recall.*, orchestrator.channels", 0, 0);
    f[n++] = flag("channels", CASCADE_FLAG_STRING, &a->channels,
                  "channels to evaluate (default: every registered channel "
                  "but cache)",
                  0, 0);
    f[n++] = flag("merge", CASCADE_FLAG_STRING, &a->merge,
                  "merged recall as name=weight[:quota],... (default: "
                  "orchestrator.channels of --config, else equal weights)",
                  0, 0);
    f[n++] = flag("k", CASCADE_FLAG_STRING, &a->ks, "cut-offs K, ascending", 0, 0);
    f[n++] = flag("coverage-k", CASCADE_FLAG_SIZE, &a->coverage_k,
                  "K of the table's coverage column (one of --k)", 1, 100000);
    f[n++] = flag("test-frac", CASCADE_FLAG_DOUBLE, &a->split.test_frac,
                  "share of each user's interacted items held out", 0.01, 0.99);
    f[n++] = flag("min-interactions", CASCADE_FLAG_SIZE, &a->split.min_interactions,
                  "distinct interacted items a test user needs", 2, 1e9);
    f[n++] = flag("max-users", CASCADE_FLAG_SIZE, &a->split.max_users,
                  "evaluate a seeded sample of this many test users (0 = all)", 0, 1e12);
    f[n++] = flag("seed", CASCADE_FLAG_U64, &a->split.seed,
                  "order of equal-time interactions, the user sample, the tuning's "
                  "coordinate order",
                  0, 0);
    f[n++] = flag("threads", CASCADE_FLAG_INT, &a->threads, "threads of the CF builders", 1, 64);
    f[n++] = flag("json", CASCADE_FLAG_STRING, &a->json,
                  "also write the results as JSON to this file (- = stdout)", 0, 0);
    f[n++] = flag("skip-build", CASCADE_FLAG_BOOL, &a->skip_build,
                  "reuse the namespace built by an earlier run with the same "
                  "data and split",
                  0, 0);
    f[n++] = flag("force", CASCADE_FLAG_BOOL, &a->force,
                  "build even into a namespace cascade-eval did not create", 0, 0);
    f[n++] = flag("quiet", CASCADE_FLAG_BOOL, &a->quiet, "no progress lines", 0, 0);
    f[n++] = flag("tune-weights", CASCADE_FLAG_BOOL, &a->tune,
                  "choose the merge weights on a validation split of the train part", 0, 0);
    f[n++] = flag("valid-frac", CASCADE_FLAG_DOUBLE, &a->valid_frac,
                  "share of each user's train items that become validation positives", 0.01, 0.99);
    f[n++] = flag("valid-namespace", CASCADE_FLAG_STRING, &a->valid_ns,
                  "namespace of the validation build, flushed (default: NS-valid)", 0, 0);
    f[n++] = flag("tune-grid", CASCADE_FLAG_STRING, &a->grid,
                  "weights each channel may take, ascending (0 = left out)", 0, 0);
    f[n++] = flag("tune-sweeps", CASCADE_FLAG_SIZE, &a->sweeps,
                  "passes of the coordinate ascent over the channels", 1, 100);
    f[n++] = flag("weights-out", CASCADE_FLAG_STRING, &a->weights_out,
                  "write the chosen weights as an orchestrator.channels fragment", 0, 0);
    f[n++] = flag("two-tower-dir", CASCADE_FLAG_STRING, &a->tt_base,
                  "two-tower models go to DIR/<namespace> (default "
                  "$TMPDIR/cascade-eval-two-tower, /tmp/... without TMPDIR)",
                  0, 0);
    f[n++] = flag("two-tower-epochs", CASCADE_FLAG_SIZE, &a->tt.epochs,
                  "training epochs of the two-tower model", 1, 1000);
    f[n++] = flag("two-tower-negatives", CASCADE_FLAG_SIZE, &a->tt.n_neg,
                  "sampled negatives per example of the two-tower model", 0, 1000);
    f[n++] = flag("protocol", CASCADE_FLAG_STRING, &a->protocol,
                  "split: time (per user by time, --test-frac) or random (per user at random, "
                  "--train-share, --split-seed)",
                  0, 0);
    f[n++] = flag("split-seed", CASCADE_FLAG_U64, &a->split.split_seed,
                  "seed of the random protocol's shuffle", 0, 0);
    f[n++] =
        flag("train-share", CASCADE_FLAG_DOUBLE, &a->split.train_share,
             "random protocol: share of each user's interacted items kept in train", 0.01, 0.99);
    f[n++] = flag("train", CASCADE_FLAG_STRING, &a->train,
                  "a given split: the train data set (TSV directory; with --test, instead of "
                  "--data)",
                  0, 0);
    f[n++] = flag("test", CASCADE_FLAG_STRING, &a->test,
                  "a given split: the held-out data set (its interacted items are relevant)", 0, 0);
    f[n++] = flag("peers", CASCADE_FLAG_BOOL, &a->peers,
                  "report the served-list table's peers (popularity, ItemKNN, EASE) only", 0, 0);
    f[n++] = flag("served", CASCADE_FLAG_BOOL, &a->served,
                  "evaluate the list Recommend serves (build, train, stack) with the waterfall "
                  "and the peers",
                  0, 0);
    f[n++] = flag("list-k", CASCADE_FLAG_SIZE, &a->list_k,
                  "K of the served-list report (items asked for and scored)", 1, 200);
    f[n++] = flag("served-dir", CASCADE_FLAG_STRING, &a->served_dir,
                  "--served: work directory (train TSVs, stack data, served.log) (default "
                  "$TMPDIR/cascade-eval-served-<port-base>)",
                  0, 0);
    f[n++] = flag("port-base", CASCADE_FLAG_INT, &a->port_base,
                  "--served: port base of the stack started (orchestrator; stages +1..+5, redis "
                  "+9)",
                  1024, 64526);
    f[n++] = flag("train-models", CASCADE_FLAG_STRING, &a->models,
                  "--served: trainers run after cascade-build all (cascade-build train MODEL), "
                  "comma-separated; one whose data is not supported is skipped",
                  0, 0);
    f[n++] = flag("target", CASCADE_FLAG_STRING, &a->target,
                  "--served: use the running orchestrator HOST:PORT (with --redis, --namespace, "
                  "--model-dir) instead of starting a stack",
                  0, 0);
    f[n++] = flag("model-dir", CASCADE_FLAG_STRING, &a->model_dir,
                  "--served --target: the running services' model directory", 0, 0);
    f[n++] = flag("explore-cost", CASCADE_FLAG_BOOL, &a->explore_cost,
                  "--served: a second pass with exploration off (exposure filters cleared)", 0, 0);
    f[n++] = flag("keep-stack", CASCADE_FLAG_BOOL, &a->keep_stack,
                  "--served: leave the stack running at the end", 0, 0);
    f[n++] = flag("bin-dir", CASCADE_FLAG_STRING, &a->bin_dir,
                  "directory of the cascade-* binaries (default: cascade-eval's own)", 0, 0);
    f[n++] = flag("stack-script", CASCADE_FLAG_STRING, &a->stack_sh,
                  "scripts/stack.sh of the source tree", 0, 0);
    return n;
}

static void args_defaults(struct eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->redis = "127.0.0.1:6379";
    a->ns = "eval";
    a->ks = "50,100,200";
    a->coverage_k = 100;
    a->threads = 2;
    a->valid_frac = 0.2;
    a->grid = "0,0.25,0.5,1,2,4";
    a->sweeps = 3;
    cascade_eval_split_defaults(&a->split);
    cascade_train_twotower_defaults(&a->tt);
    a->protocol = "time";
    a->list_k = 10;
    a->port_base = 21050;
    a->models = CASCADE_EVAL_DEFAULT_MODELS;
    a->stack_sh = CASCADE_EVAL_STACK_SCRIPT;
}

/* Channels, merge and K values from the flags and the config. */
static int run_options(const struct eval_args *a, const cascade_config *cfg,
                       struct cascade_eval_run_opts *o, char *err, size_t errlen)
{
    int64_t max_quota;
    int rc;
    memset(o, 0, sizeof *o);
    o->quiet = a->quiet;
    if ((rc = cascade_eval_ks_parse(o, a->ks, err, errlen)) != 0)
        return rc;
    bool coverage_ok = false;
    for (size_t i = 0; i < o->n_ks; i++)
        coverage_ok |= o->ks[i] == a->coverage_k;
    if (!coverage_ok) {
        snprintf(err, errlen, "--coverage-k %zu: expected one of --k %s", a->coverage_k, a->ks);
        return CASCADE_EINVAL;
    }
    if ((rc = cascade_config_int(cfg, "recall.max_quota", 5000, 1, 1000000, &max_quota, err,
                                 errlen)) != 0)
        return rc;
    o->max_quota = (uint32_t)max_quota;
    rc = a->channels ? cascade_eval_channels_parse(o, a->channels, err, errlen)
                     : cascade_eval_channels_default(o, cfg, err, errlen);
    if (rc != 0)
        return rc;
    uint32_t max_k = (uint32_t)o->ks[o->n_ks - 1];
    if (a->merge)
        return cascade_eval_merge_parse(o, a->merge, max_k, err, errlen);
    if (cascade_config_get(cfg, "orchestrator.channels"))
        return cascade_eval_merge_from_config(o, cfg, err, errlen);
    cascade_eval_merge_equal(o, max_k);
    return 0;
}

/* --train/--test: the given split. */
static int read_given(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    cascade_dataset *train = NULL, *test = NULL;
    int rc = cascade_dataset_read(a->train, &train, err, errlen);
    if (rc == 0 && (rc = cascade_dataset_read(a->test, &test, err, errlen)) == 0)
        rc = cascade_eval_split_given(train, test, &a->split, &s->split, err, errlen);
    else
        cascade_dataset_destroy(train);
    cascade_dataset_destroy(test);
    if (rc == 0 && !a->quiet)
        fprintf(stderr,
                "split: given, train %s (%zu events), test %s: %zu users evaluated, %zu "
                "held-out items; %zu test users unknown to train, %zu test events dropped\n",
                a->train, s->split.train_events, a->test, s->split.n_users, s->split.test_items,
                s->split.unknown_users, s->split.dropped_events);
    if (rc == 0 && s->split.n_users == 0) {
        snprintf(err, errlen, "--test %s: no user of train has a held-out interaction there",
                 a->test);
        rc = CASCADE_EINVAL;
    }
    return rc;
}

static int read_data(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    if (a->train)
        return read_given(a, s, err, errlen);
    int rc = cascade_dataset_read(a->data, &s->ds, err, errlen);
    if (rc != 0)
        return rc;
    if (!a->quiet)
        fprintf(stderr, "data: %zu users, %zu items, %zu events from %s\n", s->ds->n_users,
                s->ds->n_items, s->ds->n_events, a->data);
    if ((rc = cascade_eval_split_run(s->ds, &a->split, &s->split, err, errlen)) != 0)
        return rc;
    const struct cascade_eval_split *sp = &s->split;
    if (!a->quiet)
        fprintf(stderr,
                "split: %zu users with >= %zu interacted items (%zu below), %zu evaluated, %zu "
                "held-out items; train %zu events, %zu dropped\n",
                sp->eligible, a->split.min_interactions, sp->below_min, sp->n_users, sp->test_items,
                sp->train_events, sp->dropped_events);
    if (sp->n_users == 0) {
        snprintf(err, errlen,
                 "no user has %zu or more interacted items: nothing to evaluate (lower "
                 "--min-interactions)",
                 a->split.min_interactions);
        return CASCADE_EINVAL;
    }
    /* Drop the full data set now: only the train part is needed from here. */
    cascade_dataset_destroy(s->ds);
    s->ds = NULL;
    return 0;
}

static int connect_redis(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    redisReply *rep = NULL;
    struct cascade_redis_tool_conn conn;
    struct cascade_redis_opts build;
    if (cascade_redis_tool_opts(a->redis, 60000, &conn, &build, err, errlen) != 0)
        return CASCADE_EINVAL;
    struct cascade_redis_opts serve = build;
    serve.command_timeout_ms = 5000;
    s->redis = cascade_redis_create(&build);
    s->pool = cascade_redis_pool_create(&serve);
    cascade_redis_tool_wipe(&conn);
    if (!s->redis || !s->pool) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    int rc = cascade_redis_command(s->redis, &rep, "PING");
    if (rc != 0)
        snprintf(err, errlen, "%s", cascade_redis_error(s->redis));
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* The {ns}:meta source field ("" when absent) into buf. */
static int meta_source(struct eval_state *s, const char *ns, char *buf, size_t len, char *err,
                       size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    int rc = cascade_redis_command(s->redis, &rep, "HGET %s source", cascade_key_meta(key, ns));
    buf[0] = '\0';
    if (rc != 0)
        snprintf(err, errlen, "%s", cascade_redis_error(s->redis));
    else if (rep->type == REDIS_REPLY_STRING)
        snprintf(buf, len, "%s", rep->str);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* What a namespace is built from, as recorded in {ns}:meta source: the data
 * (resolved path), the split (and for the validation build its fraction)
 * and the train event count, so --skip-build reuses only an exact match. */
static void source_of(const struct eval_args *a, const struct cascade_eval_split *split,
                      double valid_frac, char *buf, size_t len)
{
    char data[PATH_MAX], valid[64] = "";
    if (!realpath(a->data, data))
        snprintf(data, sizeof data, "%s", a->data);
    if (valid_frac > 0)
        snprintf(valid, sizeof valid, " valid_frac=%g", valid_frac);
    snprintf(buf, len,
             "cascade-eval data=%s test_frac=%g min_interactions=%zu seed=%llu%s train_events=%zu",
             data, a->split.test_frac, a->split.min_interactions, (unsigned long long)a->split.seed,
             valid, split->train_events);
}

/* Whether the two_tower channel is evaluated: then every build trains it. */
static bool two_tower_wanted(const struct cascade_eval_run_opts *o)
{
    for (size_t c = 0; c < o->n_channels; c++)
        if (strcmp(o->channels[c], "two_tower") == 0)
            return true;
    return false;
}

/* The model directory of namespace ns: --two-tower-dir/ns. */
static void two_tower_dir(const struct eval_args *a, const char *ns, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->tt_base, ns);
}

/* What a two-tower model was trained from: the namespace's source plus the
 * training flags, kept in <dir>/eval-source so --skip-build reuses only a
 * model of the same split and settings. */
static void two_tower_source(const struct eval_args *a, const char *source, char *buf, size_t len)
{
    snprintf(buf, len, "%s two_tower_epochs=%zu two_tower_negatives=%zu\n", source, a->tt.epochs,
             a->tt.n_neg);
}

static int two_tower_mark(const struct eval_args *a, const char *ns, const char *source, char *err,
                          size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], text[PATH_MAX + 512];
    two_tower_dir(a, ns, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/eval-source", dir);
    two_tower_source(a, source, text, sizeof text);
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
        return CASCADE_EIO;
    }
    return 0;
}

/* 0 when ns's two-tower directory holds a model of this source. */
static int two_tower_check(const struct eval_args *a, const char *ns, const char *source, char *err,
                           size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], want[PATH_MAX + 512], have[PATH_MAX + 512] = "";
    two_tower_dir(a, ns, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/eval-source", dir);
    two_tower_source(a, source, want, sizeof want);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = '\0';
        fclose(f);
    }
    if (strcmp(have, want) == 0)
        return 0;
    snprintf(err, errlen,
             "--skip-build: %.800s holds no two-tower model of this split and --two-tower-* "
             "settings; run without --skip-build",
             dir);
    return CASCADE_EINVAL;
}

/* Build split's train part into ns, or check that --skip-build may reuse it.
 * The build flushes the namespace, so refuse one that cascade-eval did not
 * make. valid_frac > 0 marks the validation build. */
static int prepare_namespace(const struct eval_args *a, struct eval_state *s, const char *ns,
                             const struct cascade_eval_split *split, double valid_frac,
                             struct cascade_eval_build_summary *build, char *err, size_t errlen)
{
    char current[PATH_MAX + 256], source[PATH_MAX + 256];
    int rc = meta_source(s, ns, current, sizeof current, err, errlen);
    if (rc != 0)
        return rc;
    source_of(a, split, valid_frac, source, sizeof source);
    memset(build, 0, sizeof *build);
    if (a->skip_build) {
        if (strcmp(current, source) != 0) {
            snprintf(
                err, errlen,
                "--skip-build: namespace '%s' holds \"%.300s\", not this split (\"%.300s\"); run "
                "without --skip-build",
                ns, current[0] ? current : "nothing", source);
            return CASCADE_EINVAL;
        }
        build->as_of = cascade_dataset_last_ts(split->train);
        return two_tower_wanted(&s->run) ? two_tower_check(a, ns, source, err, errlen) : 0;
    }
    if (current[0] && strncmp(current, "cascade-eval ", 13) != 0 && !a->force) {
        snprintf(err, errlen,
                 "namespace '%s' was built by \"%.300s\", not by cascade-eval, and the build "
                 "flushes "
                 "it: pick another --%snamespace (or pass --force)",
                 ns, current, valid_frac > 0 ? "valid-" : "");
        return CASCADE_EINVAL;
    }
    char tt_dir[PATH_MAX];
    two_tower_dir(a, ns, tt_dir, sizeof tt_dir);
    struct cascade_eval_build_opts bo = {.ns = ns,
                                         .cfg = s->cfg,
                                         .threads = a->threads,
                                         .source = source,
                                         .quiet = a->quiet,
                                         .two_tower_dir = two_tower_wanted(&s->run) ? tt_dir : NULL,
                                         .two_tower = &a->tt};
    if ((rc = cascade_eval_build_run(split->train, s->redis, &bo, build, err, errlen)) != 0 ||
        (bo.two_tower_dir && (rc = two_tower_mark(a, ns, source, err, errlen)) != 0))
        return rc;
    if (!a->quiet)
        fprintf(stderr,
                "build: namespace '%s' in %.1fs (load %.1fs, lists %.1fs, authors %.1fs, itemcf "
                "%.1fs, swing %.1fs, usercf %.1fs, ease %.1fs); %zu itemcf, %zu swing, %zu "
                "usercf, %zu ease lists\n",
                ns, build->total_s, build->load_s, build->lists_s, build->authors_s,
                build->itemcf_s, build->swing_s, build->usercf_s, build->ease_s,
                build->itemcf_lists, build->swing_lists, build->usercf_lists, build->ease_lists);
    if (!a->quiet && bo.two_tower_dir)
        fprintf(stderr, "build: two-tower %s in %.1fs (%zu positives, final loss %.4f) in %s\n",
                build->two_tower_version, build->two_tower_s, build->two_tower_examples,
                build->two_tower_loss, tt_dir);
    return 0;
}

/* The Recall stage of namespace ns serves ns's two-tower model: the config
 * (an empty one when none was given) points the channel's model_dir there. */
static int point_two_tower(const struct eval_args *a, struct eval_state *s, const char *ns,
                           char *err, size_t errlen)
{
    char dir[PATH_MAX], set[PATH_MAX + 64];
    if (!two_tower_wanted(&s->run))
        return 0;
    if (!s->cfg && !(s->cfg = cascade_config_empty())) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    two_tower_dir(a, ns, dir, sizeof dir);
    snprintf(set, sizeof set, "recall.channels.two_tower.model_dir=%s", dir);
    return cascade_config_set(s->cfg, set, err, errlen);
}

static void print_tuning(const struct cascade_eval_tune_result *t)
{
    fprintf(stderr,
            "tune: objective (mean recall@K on validation) %.4f -> %.4f in %zu sweeps, "
            "%zu merges, %.1fs; weights:",
            t->ascent.start_value, t->ascent.value, t->ascent.sweeps, t->ascent.evaluations,
            t->seconds);
    for (size_t i = 0; i < t->n; i++)
        fprintf(stderr, " %s %g->%g%s", t->ch[i].name, t->ch[i].start, t->ch[i].weight,
                t->ch[i].signal ? "" : " (no signal)");
    fputc('\n', stderr);
}

/* --weights-out, with a word about the exploration channel when it stays. */
static int write_weights(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    const char *kept = NULL;
    int rc = cascade_eval_tune_write_fragment(a->weights_out, &s->tune, s->cfg, &kept, err, errlen);
    if (rc == 0 && !a->quiet)
        fprintf(stderr, "weights: %s written%s%s%s\n", a->weights_out, kept ? "; " : "",
                kept ? kept : "",
                kept ? " stays enabled at weight 0: it is the orchestrator's exploration channel "
                       "(its hits fill the exploration slots)"
                     : "");
    return rc;
}

/* The validation split of the train part, its build, every channel's lists
 * for the validation users and the weights chosen on them; on success the
 * run's merge is the chosen one and s->base the merge before tuning. */
static int tune_on_validation(const struct eval_args *a, struct eval_state *s, char *err,
                              size_t errlen)
{
    struct cascade_eval_split inner = {0};
    struct cascade_eval_build_summary vb;
    struct cascade_eval_lists lists = {0};
    struct cascade_eval_result vres = {0};
    struct cascade_eval_run_opts ro = s->run;
    cascade_recall *recall = NULL;
    int rc =
        cascade_eval_split_validation(&s->split, &a->split, a->valid_frac, &inner, err, errlen);
    if (rc != 0)
        goto out;
    if (!a->quiet)
        fprintf(stderr,
                "validation split: %zu users with >= %zu train items, %zu evaluated, %zu "
                "validation items; validation train %zu events\n",
                inner.eligible, a->split.min_interactions, inner.n_users, inner.test_items,
                inner.train_events);
    if (inner.n_users == 0) {
        snprintf(err, errlen,
                 "validation split: no user has %zu or more interacted items in its train part "
                 "(lower --min-interactions)",
                 a->split.min_interactions);
        rc = CASCADE_EINVAL;
        goto out;
    }
    if ((rc = prepare_namespace(a, s, a->valid_ns, &inner, a->valid_frac, &vb, err, errlen)) != 0)
        goto out;
    if ((rc = point_two_tower(a, s, a->valid_ns, err, errlen)) != 0)
        goto out;
    if (!(recall = cascade_recall_create(s->cfg, s->pool, a->valid_ns, NULL, err, errlen))) {
        rc = CASCADE_EINVAL;
        goto out;
    }
    ro.n_merge = 0;
    ro.capture = &lists;
    ro.label = "valid";
    ro.request_time_s = vb.as_of;
    if ((rc = cascade_eval_run(recall, &inner, &ro, &vres, err, errlen)) != 0 ||
        (rc = cascade_eval_tune_weights(&lists, ro.ks, ro.n_ks, s->run.merge, s->run.n_merge,
                                        &s->tune_opts, &s->tune, err, errlen)) != 0)
        goto out;
    if (!a->quiet)
        print_tuning(&s->tune);
    memcpy(s->base, s->run.merge, sizeof s->base);
    s->n_base = s->run.n_merge;
    s->run.n_merge = cascade_eval_tune_merge(&s->tune, s->run.merge);
    if (s->run.n_merge == 0) {
        snprintf(err, errlen, "tuning left every channel at weight 0: nothing to merge");
        rc = CASCADE_EINVAL;
        goto out;
    }
    if (a->weights_out)
        rc = write_weights(a, s, err, errlen);
out:
    cascade_eval_result_free(&vres);
    cascade_eval_lists_free(&lists);
    cascade_recall_destroy(recall);
    cascade_eval_split_free(&inner);
    return rc;
}

/* The untuned merge of the test users' lists, as the row "merged_base". */
static int base_row(struct eval_state *s, char *err, size_t errlen)
{
    struct cascade_eval_acc *acc = NULL;
    int rc = cascade_eval_result_add_row(&s->result, "merged_base", &acc);
    if (rc != 0) {
        snprintf(err, errlen, "merged_base row: %s", cascade_strerror(rc));
        return rc;
    }
    return cascade_eval_lists_merge(&s->lists, s->base, s->n_base, s->run.ks[s->run.n_ks - 1], acc,
                                    err, errlen);
}

static int evaluate(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    int rc = point_two_tower(a, s, a->ns, err, errlen);
    if (rc != 0)
        return rc;
    s->recall = cascade_recall_create(s->cfg, s->pool, a->ns, NULL, err, errlen);
    if (!s->recall)
        return CASCADE_EINVAL;
    s->run.request_time_s = s->build.as_of;
    s->run.capture = a->tune ? &s->lists : NULL;
    rc = cascade_eval_run(s->recall, &s->split, &s->run, &s->result, err, errlen);
    if (rc != 0 || (a->tune && (rc = base_row(s, err, errlen)) != 0))
        return rc;
    struct cascade_eval_report rep = {.data = a->data,
                                      .split_opts = &a->split,
                                      .split = &s->split,
                                      .build = a->skip_build ? NULL : &s->build,
                                      .run = &s->run,
                                      .result = &s->result,
                                      .coverage_k = a->coverage_k,
                                      .tune = a->tune ? &s->tune : NULL,
                                      .tune_opts = a->tune ? &s->tune_opts : NULL,
                                      .base = s->base,
                                      .n_base = s->n_base};
    cascade_eval_report_table(stdout, &rep);
    fflush(stdout);
    if (a->json)
        rc = cascade_eval_report_json(a->json, &rep, err, errlen);
    return rc;
}

static void state_free(struct eval_state *s)
{
    cascade_eval_result_free(&s->result);
    cascade_eval_lists_free(&s->lists);
    cascade_recall_destroy(s->recall);
    cascade_redis_pool_destroy(s->pool);
    cascade_redis_destroy(s->redis);
    cascade_eval_split_free(&s->split);
    cascade_dataset_destroy(s->ds);
    cascade_config_destroy(s->cfg);
}

static bool ns_ok(const char *ns)
{
    return ns[0] && strlen(ns) <= NS_MAX && !strpbrk(ns, " :");
}

/* --namespace, and --valid-namespace (default NS-valid) when tuning. */
static int check_namespaces(struct eval_args *a, char *err, size_t errlen)
{
    if (!ns_ok(a->ns)) {
        snprintf(err, errlen, "--namespace: expected 1 to %d characters without spaces or ':'",
                 NS_MAX);
        return CASCADE_EINVAL;
    }
    if (!a->tt_base) {
        const char *tmp = getenv("TMPDIR");
        snprintf(a->tt_base_buf, sizeof a->tt_base_buf, "%s/cascade-eval-two-tower",
                 tmp && tmp[0] ? tmp : "/tmp");
        a->tt_base = a->tt_base_buf;
    }
    if (!a->valid_ns) {
        snprintf(a->valid_ns_buf, sizeof a->valid_ns_buf, "%s-valid", a->ns);
        a->valid_ns = a->valid_ns_buf;
    }
    if (!ns_ok(a->valid_ns) || strcmp(a->valid_ns, a->ns) == 0) {
        snprintf(err, errlen,
                 "--valid-namespace '%s': expected 1 to %d characters without spaces or ':', "
                 "other than --namespace",
                 a->valid_ns, NS_MAX);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* The tuning flags: only with --tune-weights; the grid parsed. */
static int tune_options(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    struct cascade_eval_tune_opts *t = &s->tune_opts;
    if (!a->tune) {
        if (a->weights_out) {
            snprintf(err, errlen, "--weights-out needs --tune-weights");
            return CASCADE_EINVAL;
        }
        return 0;
    }
    t->max_sweeps = a->sweeps;
    t->seed = a->split.seed;
    t->valid_frac = a->valid_frac;
    return cascade_eval_grid_parse(a->grid, t->grid, &t->n_grid, err, errlen);
}

/* The protocol, given-split and served-list flags; the paths they default to. */
static int check_list_flags(struct eval_args *a, char *err, size_t errlen)
{
    if (strcmp(a->protocol, "random") == 0)
        a->split.protocol = CASCADE_EVAL_PROTOCOL_RANDOM;
    else if (strcmp(a->protocol, "time") != 0)
        return snprintf(err, errlen, "--protocol: expected time or random, got '%s'", a->protocol),
               CASCADE_EINVAL;
    if (!a->train != !a->test)
        return snprintf(err, errlen, "--train and --test go together"), CASCADE_EINVAL;
    if (!a->data == !a->train)
        return snprintf(err, errlen, "either --data DIR or --train DIR --test DIR is required"),
               CASCADE_EINVAL;
    if (a->train && (a->tune || a->skip_build))
        return snprintf(err, errlen, "--train/--test: --tune-weights and --skip-build need --data"),
               CASCADE_EINVAL;
    if (!a->served && (a->target || a->explore_cost || a->keep_stack || a->model_dir))
        return snprintf(err, errlen,
                        "--target, --model-dir, --explore-cost and --keep-stack need "
                        "--served"),
               CASCADE_EINVAL;
    if (a->target && (!a->model_dir || strcmp(a->redis, "127.0.0.1:6379") == 0))
        return snprintf(err, errlen,
                        "--target needs --redis and --model-dir of that stack (and "
                        "--namespace)"),
               CASCADE_EINVAL;
    if (a->target && a->explore_cost)
        return snprintf(err, errlen,
                        "--explore-cost restarts the orchestrator: it needs the stack "
                        "cascade-eval starts (no --target)"),
               CASCADE_EINVAL;
    if (a->served && !a->config)
        return snprintf(err, errlen, "--served needs --config (the stack's config)"),
               CASCADE_EINVAL;
    if (!a->served_dir) {
        const char *tmp = getenv("TMPDIR");
        snprintf(a->served_dir_buf, sizeof a->served_dir_buf, "%s/cascade-eval-served-%d",
                 tmp && tmp[0] ? tmp : "/tmp", a->port_base);
        a->served_dir = a->served_dir_buf;
    }
    if (!a->bin_dir) {
        ssize_t n = readlink("/proc/self/exe", a->bin_dir_buf, sizeof a->bin_dir_buf - 1);
        char *slash = n > 0 ? (a->bin_dir_buf[n] = '\0', strrchr(a->bin_dir_buf, '/')) : NULL;
        if (!slash)
            return snprintf(err, errlen, "cannot tell where cascade-eval lives: pass --bin-dir"),
                   CASCADE_EINVAL;
        *slash = '\0';
        a->bin_dir = a->bin_dir_buf;
    }
    return 0;
}

/* Parse the flags and options; returns an exit code, or -1 to go on. */
static int parse(int argc, char **argv, struct eval_args *a, struct eval_state *s, char *err,
                 size_t errlen)
{
    struct cascade_flag flags[N_FLAGS];
    size_t n = flag_table(flags, a);
    int rc = cascade_flags_parse(argc, argv, 1, flags, n, err, errlen);
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(stdout, "cascade-eval --data DIR [flags]", description, flags, n);
        return CASCADE_EVAL_EXIT_OK;
    }
    if (rc == 0)
        rc = check_list_flags(a, err, errlen);
    if (rc == 0)
        rc = check_namespaces(a, err, errlen);
    if (rc == 0)
        rc = tune_options(a, s, err, errlen);
    if (rc == 0 && a->config && !(s->cfg = cascade_config_load(a->config, err, errlen)))
        rc = CASCADE_EINVAL;
    if (rc == 0)
        rc = run_options(a, s->cfg, &s->run, err, errlen);
    if (rc != 0) {
        fprintf(stderr, "cascade-eval: %s (see --help)\n", err);
        return CASCADE_EVAL_EXIT_USAGE;
    }
    return -1;
}

/* The served-list report: peers on the train part, then (--served) the
 * list Recommend serves and its waterfall. */
static int list_report(const struct eval_args *a, struct eval_state *s, int64_t start_ms, char *err,
                       size_t errlen)
{
    struct cascade_eval_matrix m = {0};
    struct cascade_eval_peers peers = {0};
    struct cascade_eval_served_result served = {0};
    struct cascade_eval_peers_opts po;
    double *pct = NULL;
    int rc = cascade_eval_matrix_build(s->split.train, &a->split.weights, &m);
    if (rc == 0 && !(pct = malloc((m.n_items ? m.n_items : 1) * sizeof *pct)))
        rc = CASCADE_ENOMEM;
    if (rc == 0)
        rc = cascade_eval_popularity_percentiles(m.count, m.n_items, pct);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory (%zu items)", s->split.train->n_items);
        goto out;
    }
    cascade_eval_peers_defaults(&po);
    po.k = a->list_k;
    po.quiet = a->quiet;
    if ((rc = cascade_eval_peers_run(&s->split, &m, pct, &po, &peers, err, errlen)) != 0)
        goto out;
    if (a->served) {
        const char *ns = a->ns;
        if (!a->target && (rc = cascade_config_string(s->cfg, "redis.namespace", "cascade", &ns,
                                                      err, errlen)) != 0)
            goto out;
        struct cascade_eval_served_opts so = {.config = a->config,
                                              .work_dir = a->served_dir,
                                              .bin_dir = a->bin_dir,
                                              .stack_sh = a->stack_sh,
                                              .port_base = a->port_base,
                                              .models = a->models,
                                              .target = a->target,
                                              .redis = a->redis,
                                              .ns = ns,
                                              .model_dir = a->model_dir,
                                              .explore_cost = a->explore_cost,
                                              .keep_stack = a->keep_stack,
                                              .k = a->list_k,
                                              .timeout_ms = 5000,
                                              .quiet = a->quiet};
        cascade_rpc_init();
        rc = cascade_eval_served_run(&s->split, pct, &so, &served, err, errlen);
        cascade_rpc_shutdown();
        if (rc != 0)
            goto out;
    }
    struct cascade_eval_list_report rep = {.data = a->data ? a->data : a->train,
                                           .split_opts = &a->split,
                                           .split = &s->split,
                                           .k = a->list_k,
                                           .peers = &peers,
                                           .served = a->served ? &served : NULL,
                                           .seconds =
                                               (double)(cascade_now_ms() - start_ms) / 1000.0};
    cascade_eval_list_report_table(stdout, &rep);
    fflush(stdout);
    if (a->json)
        rc = cascade_eval_list_report_json(a->json, &rep, err, errlen);
out:
    cascade_eval_served_free(&served);
    cascade_eval_peers_free(&peers);
    cascade_eval_matrix_free(&m);
    free(pct);
    return rc;
}

int cascade_eval_main(int argc, char **argv)
{
    struct eval_args a;
    struct eval_state s;
    char err[ERR_LEN] = "";
    memset(&s, 0, sizeof s);
    args_defaults(&a);
    int code = parse(argc, argv, &a, &s, err, sizeof err);
    if (code >= 0)
        goto out;
    code = CASCADE_EVAL_EXIT_FAILURE;
    int64_t start_ms = cascade_now_ms();
    if ((a.served || a.peers)) {
        if (read_data(&a, &s, err, sizeof err) != 0 ||
            list_report(&a, &s, start_ms, err, sizeof err) != 0) {
            fprintf(stderr, "cascade-eval: %s\n", err);
            goto out;
        }
        code = CASCADE_EVAL_EXIT_OK;
        goto out;
    }
    if (read_data(&a, &s, err, sizeof err) != 0 || connect_redis(&a, &s, err, sizeof err) != 0 ||
        (a.tune && tune_on_validation(&a, &s, err, sizeof err) != 0) ||
        prepare_namespace(&a, &s, a.ns, &s.split, 0, &s.build, err, sizeof err) != 0 ||
        evaluate(&a, &s, err, sizeof err) != 0) {
        fprintf(stderr, "cascade-eval: %s\n", err);
        goto out;
    }
    code = CASCADE_EVAL_EXIT_OK;
out:
    state_free(&s);
    return code;
}
