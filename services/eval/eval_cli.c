/* cascade-eval (eval_cli.h): flags, then data -> split -> build -> evaluate
 * -> report, each step saying what it did on stderr. */
#include "eval_cli.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dataset.h"
#include "error.h"
#include "eval_build.h"
#include "eval_channels.h"
#include "eval_report.h"
#include "eval_run.h"
#include "eval_split.h"
#include "flags.h"
#include "recall.h"
#include "redis.h"
#include "store.h"

#define ERR_LEN 1024
#define N_FLAGS 20

struct eval_args {
    const char *data, *redis, *ns, *config, *channels, *merge, *ks, *json;
    size_t coverage_k;
    int threads;
    bool quiet, skip_build, force;
    struct cascade_eval_split_opts split;
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
    char source[PATH_MAX + 256]; /* {ns}:meta source: what the namespace was built from */
};

static const char description[] =
    "Measure recall quality offline: split the data per user by time (the last\n"
    "--test-frac of each user's interacted items held out), build every recall\n"
    "family on the train part into the Redis namespace --namespace (flushed first),\n"
    "run each channel for every test user through the Recall stage, remove the\n"
    "user's train items, and report recall@K, hit-rate@K, NDCG@K, catalogue\n"
    "coverage and time per user, for each channel and for the merged recall\n"
    "(--merge, else orchestrator.channels of --config, else equal weights).";

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
                  "order of equal-time interactions and the user sample", 0, 0);
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
    cascade_eval_split_defaults(&a->split);
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

static int read_data(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
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
    char host[256];
    int port;
    redisReply *rep = NULL;
    if (cascade_redis_parse_addr(a->redis, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "--redis: expected HOST:PORT, got '%s'", a->redis);
        return CASCADE_EINVAL;
    }
    struct cascade_redis_opts build = {
        .host = host, .port = port, .connect_timeout_ms = 2000, .command_timeout_ms = 60000};
    struct cascade_redis_opts serve = {
        .host = host, .port = port, .connect_timeout_ms = 2000, .command_timeout_ms = 5000};
    if (!(s->redis = cascade_redis_create(&build)) ||
        !(s->pool = cascade_redis_pool_create(&serve))) {
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

/* Build into the namespace, or check that --skip-build may reuse it. The
 * build flushes the namespace, so refuse one that cascade-eval did not make. */
static int build_or_reuse(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    char current[PATH_MAX + 256];
    int rc = meta_source(s, a->ns, current, sizeof current, err, errlen);
    if (rc != 0)
        return rc;
    char data[PATH_MAX];
    if (!realpath(a->data, data))
        snprintf(data, sizeof data, "%s", a->data);
    snprintf(s->source, sizeof s->source,
             "cascade-eval data=%s test_frac=%g min_interactions=%zu seed=%llu train_events=%zu",
             data, a->split.test_frac, a->split.min_interactions, (unsigned long long)a->split.seed,
             s->split.train_events);
    if (a->skip_build) {
        if (strcmp(current, s->source) != 0) {
            snprintf(err, errlen,
                     "--skip-build: namespace '%s' holds \"%.300s\", not this split (\"%.300s\"); run "
                     "without --skip-build",
                     a->ns, current[0] ? current : "nothing", s->source);
            return CASCADE_EINVAL;
        }
        s->build.as_of = cascade_dataset_last_ts(s->split.train);
        return 0;
    }
    if (current[0] && strncmp(current, "cascade-eval ", 13) != 0 && !a->force) {
        snprintf(err, errlen,
                 "namespace '%s' was built by \"%s\", not by cascade-eval, and the build flushes "
                 "it: pick another --namespace (or pass --force)",
                 a->ns, current);
        return CASCADE_EINVAL;
    }
    struct cascade_eval_build_opts bo = {
        .ns = a->ns, .cfg = s->cfg, .threads = a->threads, .source = s->source, .quiet = a->quiet};
    if ((rc = cascade_eval_build_run(s->split.train, s->redis, &bo, &s->build, err, errlen)) != 0)
        return rc;
    if (!a->quiet)
        fprintf(stderr,
                "build: namespace '%s' in %.1fs (load %.1fs, lists %.1fs, authors %.1fs, itemcf "
                "%.1fs, swing %.1fs, usercf %.1fs); %zu itemcf, %zu swing, %zu usercf lists\n",
                a->ns, s->build.total_s, s->build.load_s, s->build.lists_s, s->build.authors_s,
                s->build.itemcf_s, s->build.swing_s, s->build.usercf_s, s->build.itemcf_lists,
                s->build.swing_lists, s->build.usercf_lists);
    return 0;
}

static int evaluate(const struct eval_args *a, struct eval_state *s, char *err, size_t errlen)
{
    s->recall = cascade_recall_create(s->cfg, s->pool, a->ns, NULL, err, errlen);
    if (!s->recall)
        return CASCADE_EINVAL;
    s->run.request_time_s = s->build.as_of;
    int rc = cascade_eval_run(s->recall, &s->split, &s->run, &s->result, err, errlen);
    if (rc != 0)
        return rc;
    struct cascade_eval_report rep = {.data = a->data,
                                      .split_opts = &a->split,
                                      .split = &s->split,
                                      .build = a->skip_build ? NULL : &s->build,
                                      .run = &s->run,
                                      .result = &s->result,
                                      .coverage_k = a->coverage_k};
    cascade_eval_report_table(stdout, &rep);
    fflush(stdout);
    if (a->json)
        rc = cascade_eval_report_json(a->json, &rep, err, errlen);
    return rc;
}

static void state_free(struct eval_state *s)
{
    cascade_eval_result_free(&s->result);
    cascade_recall_destroy(s->recall);
    cascade_redis_pool_destroy(s->pool);
    cascade_redis_destroy(s->redis);
    cascade_eval_split_free(&s->split);
    cascade_dataset_destroy(s->ds);
    cascade_config_destroy(s->cfg);
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
    if (rc == 0 && !a->data) {
        snprintf(err, errlen, "--data DIR is required");
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && (!a->ns[0] || strlen(a->ns) > 64 || strpbrk(a->ns, " :"))) {
        snprintf(err, errlen, "--namespace: expected 1 to 64 characters without spaces or ':'");
        rc = CASCADE_EINVAL;
    }
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
    if (read_data(&a, &s, err, sizeof err) != 0 || connect_redis(&a, &s, err, sizeof err) != 0 ||
        build_or_reuse(&a, &s, err, sizeof err) != 0 || evaluate(&a, &s, err, sizeof err) != 0) {
        fprintf(stderr, "cascade-eval: %s\n", err);
        goto out;
    }
    code = CASCADE_EVAL_EXIT_OK;
out:
    state_free(&s);
    return code;
}
