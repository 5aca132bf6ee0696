/* Flags of cascade-ltr / cascade-build train ltr, and the run's report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_cli.h"
#include "config.h"
#include "dataset.h"
#include "error.h"
#include "flags.h"
#include "ltr_train.h"
#include "redis.h"

#define EXIT_BAD_FLAGS 2
#define EXIT_UNSUPPORTED 3

struct ltr_args {
    const char *data, *redis, *ns, *config, *model_dir, *replay_dir, *split, *sets;
    bool no_two_tower, force, quiet;
    struct cascade_ltr_train_opts o;
};

static const char usage[] = "cascade-build train ltr --data DIR --model-dir DIR [flags]";
static const char description[] =
    "Train the learned rankers of PreRank and Rank (LambdaMART over the serving features,\n"
    "ltr-v2) on lists replayed through recall: the data is split again per user, recall\n"
    "artefacts are built from the earlier part into --replay-namespace (flushed), each\n"
    "user's merged candidates are labelled by its held-out items. Each model is published\n"
    "(<stage>-ltr.latest) only when it beats the order it replaces on validation users\n"
    "and is no worse than the published one; the decision is in <model>.gate.json.\n"
    "Exit status: 0 done (see the report for what was published), 1 failure, 2 bad flags,\n"
    "3 the data does not support a learned ranker.";

static int parse(int argc, char **argv, struct ltr_args *a, char *err, size_t errlen)
{
    struct cascade_ltr_train_opts *o = &a->o;
    struct cascade_flag flags[] = {
        {"data", CASCADE_FLAG_STRING, &a->data, "data directory (users/items/events.tsv)", 0, 0},
        {"model-dir", CASCADE_FLAG_STRING, &a->model_dir, "where the models are published", 0, 0},
        {"redis", CASCADE_FLAG_STRING, &a->redis, "Redis for the replay build (HOST:PORT)", 0, 0},
        {"replay-namespace", CASCADE_FLAG_STRING, &a->ns,
         "private namespace of the replay build (flushed)", 0, 0},
        {"replay-dir", CASCADE_FLAG_STRING, &a->replay_dir,
         "where the replay's two-tower model goes", 0, 0},
        {"config", CASCADE_FLAG_STRING, &a->config,
         "config with build.*, recall.*, orchestrator.* (the served mix)", 0, 0},
        {"set", CASCADE_FLAG_STRING, &a->sets, "config overrides path=value[;path=value...]", 0, 0},
        {"split", CASCADE_FLAG_STRING, &a->split, "replay hold-out: random or time", 0, 0},
        {"holdout-frac", CASCADE_FLAG_DOUBLE, &o->replay.holdout_frac,
         "share of each user's items held out in the replay", 0.01, 0.9},
        {"min-interactions", CASCADE_FLAG_SIZE, &o->replay.min_interactions,
         "interacted items a user needs to be replayed", 2, 1e9},
        {"max-users", CASCADE_FLAG_SIZE, &o->replay.max_users, "replay a sample (0 = all)", 0,
         1e12},
        {"seed", CASCADE_FLAG_U64, &o->replay.seed, "replay split and validation seed", 0, 0},
        {"folds", CASCADE_FLAG_SIZE, &o->replay.folds,
         "replays, each with its own split (seed, seed+1, ...): more lists", 1, 20},
        {"valid-frac", CASCADE_FLAG_DOUBLE, &o->valid_frac,
         "share of replayed users kept for validation", 0.05, 0.9},
        {"rank-list", CASCADE_FLAG_SIZE, &o->rank_list,
         "candidates the pre-ranker keeps for the ranker", 10, 100000},
        {"prerank-objective", CASCADE_FLAG_STRING, &o->prerank.objective,
         "xgboost objective of the pre-ranker", 0, 0},
        {"rank-objective", CASCADE_FLAG_STRING, &o->rank.objective,
         "xgboost objective of the ranker", 0, 0},
        {"prerank-rounds", CASCADE_FLAG_INT, &o->prerank.rounds, "most boosting rounds", 1, 5000},
        {"prerank-depth", CASCADE_FLAG_INT, &o->prerank.max_depth, "tree depth", 1, 16},
        {"rank-rounds", CASCADE_FLAG_INT, &o->rank.rounds, "most boosting rounds", 1, 5000},
        {"rank-depth", CASCADE_FLAG_INT, &o->rank.max_depth, "tree depth", 1, 16},
        {"eta", CASCADE_FLAG_DOUBLE, &o->rank.eta, "learning rate (both stages)", 1e-4, 1},
        {"patience", CASCADE_FLAG_INT, &o->rank.patience,
         "rounds without a better validation nDCG before stopping (both stages)", 1, 5000},
        {"threads", CASCADE_FLAG_INT, &o->replay.threads, "builder and booster threads", 1, 64},
        {"no-two-tower", CASCADE_FLAG_BOOL, &a->no_two_tower,
         "do not train the replay's two-tower model", 0, 0},
        {"margin-scale", CASCADE_FLAG_DOUBLE, &o->margin_scale,
         "the boosters start from this times the merged recall score (0 = from nothing)", 0, 1000},
        {"min-gain", CASCADE_FLAG_DOUBLE, &o->min_gain,
         "validation nDCG@10 a model must add to the order it replaces", 0, 1},
        {"force", CASCADE_FLAG_BOOL, &a->force, "publish even when the gate says no", 0, 0},
        {"quiet", CASCADE_FLAG_BOOL, &a->quiet, "no progress lines", 0, 0},
    };
    size_t n = sizeof flags / sizeof flags[0];
    int rc = cascade_flags_parse(argc, argv, 1, flags, n, err, errlen);
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(stdout, usage, description, flags, n);
        return rc;
    }
    if (rc)
        return rc;
    if (!a->data || !a->model_dir) {
        snprintf(err, errlen, "--data and --model-dir are required (see --help)");
        return CASCADE_EINVAL;
    }
    if (strcmp(a->split, "random") != 0 && strcmp(a->split, "time") != 0) {
        snprintf(err, errlen, "--split: expected random or time, got '%s'", a->split);
        return CASCADE_EINVAL;
    }
    o->replay.random_split = strcmp(a->split, "random") == 0;
    o->prerank.eta = o->rank.eta;
    o->prerank.patience = o->rank.patience;
    o->prerank.threads = o->rank.threads = o->replay.threads;
    o->prerank.seed = o->rank.seed = o->replay.seed;
    o->force = a->force;
    o->replay.quiet = a->quiet;
    o->replay.ns = a->ns;
    o->model_dir = a->model_dir;
    return 0;
}

/* The config file (or an empty one) with --set applied. */
static cascade_config *load_config(const struct ltr_args *a, char *err, size_t errlen)
{
    cascade_config *cfg =
        a->config ? cascade_config_load(a->config, err, errlen) : cascade_config_empty();
    char *sets = a->sets ? strdup(a->sets) : NULL, *save = NULL;
    if (!cfg || (a->sets && !sets)) {
        if (cfg && !err[0])
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (char *t = sets ? strtok_r(sets, ";", &save) : NULL; t; t = strtok_r(NULL, ";", &save))
        if (cascade_config_set(cfg, t, err, errlen) != 0)
            goto fail;
    free(sets);
    return cfg;
fail:
    free(sets);
    cascade_config_destroy(cfg);
    return NULL;
}

/* The Recall stage's connections for the replay (the address was checked
 * by the builder's connect). */
static cascade_redis_pool *pool_create(const char *addr)
{
    struct cascade_redis_tool_conn conn;
    struct cascade_redis_opts o;
    char err[600];
    if (cascade_redis_tool_opts(addr, 10000, &conn, &o, err, sizeof err) != 0)
        return NULL;
    cascade_redis_pool *pool = cascade_redis_pool_create(&o);
    cascade_redis_tool_wipe(&conn);
    return pool;
}

static void report(const struct cascade_ltr_train_summary *s)
{
    printf("train ltr: %zu replayed lists (%zu for validation), %zu candidates, %zu positives; "
           "replay %.1fs, training %.1fs\n",
           s->groups, s->valid_groups, s->rows, s->positives, s->replay_s, s->train_s);
    printf("validation nDCG@10: merged recall %.4f -> pre-rank %.4f (%d rounds); on the ranker's "
           "lists %.4f -> rank %.4f (%d rounds)\n",
           s->ndcg_recall, s->ndcg_prerank, s->prerank_rounds, s->ndcg_rank_base, s->ndcg_rank,
           s->rank_rounds);
    printf("best single channel on the same lists: %s %.4f\n", s->best_channel,
           s->best_channel_ndcg);
    printf("prerank: %s %s (%s)\n", s->prerank_version,
           s->prerank_published ? "published" : "NOT published", s->prerank_reason);
    printf("rank: %s %s (%s)\n", s->rank_version, s->rank_published ? "published" : "NOT published",
           s->rank_reason);
}

int cascade_ltr_main(int argc, char **argv)
{
    struct ltr_args a = {.redis = "127.0.0.1:6379", .ns = "ltr-replay", .split = "random"};
    struct cascade_ltr_train_summary s;
    char err[1024] = "", tt_dir[1024];
    cascade_dataset *ds = NULL;
    cascade_config *cfg = NULL;
    cascade_redis *r = NULL;
    cascade_redis_pool *pool = NULL;
    int status = 1;
    cascade_ltr_train_defaults(&a.o);
    int rc = parse(argc, argv, &a, err, sizeof err);
    if (rc == CASCADE_FLAGS_HELP)
        return 0;
    if (rc) {
        fprintf(stderr, "cascade-build train ltr: %s\n", err);
        return EXIT_BAD_FLAGS;
    }
    if (!a.no_two_tower) {
        const char *tmp = getenv("TMPDIR");
        snprintf(tt_dir, sizeof tt_dir, "%s/%s",
                 a.replay_dir ? a.replay_dir
                 : tmp        ? tmp
                              : "/tmp",
                 a.replay_dir ? "two-tower" : "cascade-ltr-replay-two-tower");
        a.o.replay.two_tower_dir = tt_dir;
    }
    if (!(cfg = load_config(&a, err, sizeof err)) ||
        cascade_dataset_read(a.data, &ds, err, sizeof err) != 0 ||
        cascade_mkdir_p(a.model_dir, err, sizeof err) != 0 ||
        (a.o.replay.two_tower_dir && cascade_mkdir_p(tt_dir, err, sizeof err) != 0) ||
        !(r = cascade_build_redis_connect(a.redis, err, sizeof err)))
        goto out;
    if (!(pool = pool_create(a.redis))) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    a.o.replay.cfg = cfg;
    rc = cascade_ltr_train_run(ds, r, pool, &a.o, &s, err, sizeof err);
    if (rc == 0) {
        report(&s);
        status = 0;
    } else if (rc == CASCADE_EDATA) {
        status = EXIT_UNSUPPORTED;
    }
out:
    if (status != 0)
        fprintf(stderr, "cascade-build train ltr: %s\n", err[0] ? err : "failed");
    cascade_redis_pool_destroy(pool);
    cascade_redis_destroy(r);
    cascade_dataset_destroy(ds);
    cascade_config_destroy(cfg);
    return status;
}
