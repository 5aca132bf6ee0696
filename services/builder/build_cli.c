/* cascade-build subcommands: flag tables per subcommand, the Redis
 * connection, and the summary lines. The jobs themselves live in load.c,
 * itemcf.c, train_rank.c and movielens.c. */
#include "build_cli.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "error.h"
#include "flags.h"
#include "itemcf.h"
#include "load.h"
#include "movielens.h"
#include "redis.h"
#include "store.h"
#include "train_rank.h"

#define MAX_FLAGS 48
#define ERR_LEN 1024

enum job { JOB_LOAD = 1, JOB_ITEMCF = 2, JOB_TRAIN = 4 };

/* Everything any subcommand can set; each subcommand exposes a subset. */
struct build_args {
    const char *data, *redis, *ns, *model_dir, *weights, *truth;
    bool quiet, flush;
    struct cascade_load_opts load;
    struct cascade_itemcf_opts itemcf;
    struct cascade_train_rank_opts train;
    int epochs;
    size_t batch_size;
    double learning_rate, l2;
    size_t pipeline;
};

struct flag_table {
    struct cascade_flag f[MAX_FLAGS];
    size_t n;
};

static void add(struct flag_table *t, struct cascade_flag f)
{
    if (t->n < MAX_FLAGS)
        t->f[t->n++] = f;
}

static void common_flags(struct flag_table *t, struct build_args *a, unsigned jobs)
{
    add(t,
        (struct cascade_flag){"data", CASCADE_FLAG_STRING, &a->data,
                              "directory with users.tsv, items.tsv, events.tsv; required", 0, 0});
    if (jobs != JOB_TRAIN)
        add(t, (struct cascade_flag){"redis", CASCADE_FLAG_STRING, &a->redis, "Redis HOST:PORT", 0,
                                     0});
    else
        add(t, (struct cascade_flag){
                   "redis", CASCADE_FLAG_STRING, &a->redis,
                   "Redis HOST:PORT; when given, the model is recorded in {ns}:meta", 0, 0});
    add(t, (struct cascade_flag){"namespace", CASCADE_FLAG_STRING, &a->ns, "Redis key namespace", 0,
                                 0});
    add(t, (struct cascade_flag){
               "weights", CASCADE_FLAG_STRING, &a->weights,
               "behaviour weights, e.g. click=1,like=2,collect=3,share=3,follow=4", 0, 0});
    if (jobs & (JOB_LOAD | JOB_ITEMCF))
        add(t, (struct cascade_flag){"pipeline", CASCADE_FLAG_SIZE, &a->pipeline,
                                     "Redis commands per round trip", 1, 1e6});
    add(t, (struct cascade_flag){"quiet", CASCADE_FLAG_BOOL, &a->quiet, "no progress lines", 0, 0});
}

static void load_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_load_opts *o = &a->load;
    add(t, (struct cascade_flag){"lastn", CASCADE_FLAG_SIZE, &o->lastn,
                                 "last-n list length per user", 1, 100000});
    add(t, (struct cascade_flag){"hot-size", CASCADE_FLAG_SIZE, &o->hot_size,
                                 "items in the hot list", 1, 1e7});
    add(t, (struct cascade_flag){"hot-half-life-days", CASCADE_FLAG_DOUBLE, &o->hot_half_life_days,
                                 "half-life of hot scores in days (0 = no decay)", 0, 3650});
    add(t, (struct cascade_flag){"as-of", CASCADE_FLAG_I64, &o->as_of,
                                 "reference time for decays, Unix s (0 = last event)", 0, 0});
    add(t, (struct cascade_flag){"flush", CASCADE_FLAG_BOOL, &a->flush,
                                 "delete every {namespace}:* key first", 0, 0});
}

static void itemcf_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_itemcf_opts *o = &a->itemcf;
    add(t, (struct cascade_flag){"top-k", CASCADE_FLAG_SIZE, &o->top_k,
                                 "neighbours per item (<= 200)", 1, 200});
    add(t, (struct cascade_flag){"max-items-per-user", CASCADE_FLAG_SIZE, &o->max_items_per_user,
                                 "most recent items per user used (0 = all)", 0, 1e7});
    add(t,
        (struct cascade_flag){"threads", CASCADE_FLAG_INT, &o->threads, "worker threads", 1, 64});
}

static void train_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_train_rank_opts *o = &a->train;
    add(t, (struct cascade_flag){"model-dir", CASCADE_FLAG_STRING, &a->model_dir,
                                 "where rank-lr-<time>.safetensors and rank-lr.latest go; required",
                                 0, 0});
    add(t,
        (struct cascade_flag){"epochs", CASCADE_FLAG_INT, &a->epochs, "training epochs", 1, 1000});
    add(t, (struct cascade_flag){"batch-size", CASCADE_FLAG_SIZE, &a->batch_size, "mini-batch size",
                                 1, 1 << 20});
    add(t, (struct cascade_flag){"learning-rate", CASCADE_FLAG_DOUBLE, &a->learning_rate,
                                 "Adam step size", 1e-7, 10});
    add(t, (struct cascade_flag){"l2", CASCADE_FLAG_DOUBLE, &a->l2, "L2 penalty", 0, 100});
    add(t, (struct cascade_flag){"seed", CASCADE_FLAG_U64, &o->lr.seed, "shuffling seed", 0, 0});
    add(t, (struct cascade_flag){"warmup-frac", CASCADE_FLAG_DOUBLE, &o->warmup_frac,
                                 "share of impressions that only build feature state", 0, 0.95});
    add(t, (struct cascade_flag){"holdout-frac", CASCADE_FLAG_DOUBLE, &o->holdout_frac,
                                 "share of examples (the latest) held out", 0.001, 0.9});
    add(t, (struct cascade_flag){
               "truth", CASCADE_FLAG_STRING, &a->truth,
               "truth.tsv for the oracle AUC (default DATA/truth.tsv when present)", 0, 0});
}

static void defaults(struct build_args *a)
{
    memset(a, 0, sizeof(*a));
    a->redis = "127.0.0.1:6379";
    a->ns = "cascade";
    cascade_load_defaults(&a->load);
    cascade_itemcf_defaults(&a->itemcf);
    cascade_train_rank_defaults(&a->train);
    a->epochs = a->train.lr.epochs;
    a->batch_size = a->train.lr.batch_size;
    a->learning_rate = a->train.lr.learning_rate;
    a->l2 = a->train.lr.l2;
    a->pipeline = a->load.pipeline;
}

/* Copy the shared flags into each job's options. */
static int finish_args(struct build_args *a, unsigned jobs, char *err, size_t errlen)
{
    struct cascade_behaviour_weights w;
    cascade_behaviour_weights_default(&w);
    if (a->weights && cascade_behaviour_weights_parse(&w, a->weights, err, errlen) != 0)
        return CASCADE_EINVAL;
    if (!a->data) {
        snprintf(err, errlen, "--data DIR is required");
        return CASCADE_EINVAL;
    }
    if ((jobs & JOB_TRAIN) && !a->model_dir) {
        snprintf(err, errlen, "--model-dir DIR is required");
        return CASCADE_EINVAL;
    }
    if (!a->ns[0] || strlen(a->ns) > 64 || strchr(a->ns, ' ')) {
        snprintf(err, errlen, "--namespace: expected 1 to 64 characters without spaces");
        return CASCADE_EINVAL;
    }
    a->load.weights = a->itemcf.weights = a->train.weights = w;
    a->load.ns = a->ns;
    a->load.flush = a->flush;
    a->load.pipeline = a->pipeline;
    a->load.quiet = a->itemcf.quiet = a->train.quiet = a->quiet;
    a->load.source = a->data;
    a->train.affinity_half_life_days = a->load.affinity_half_life_days;
    a->train.lr.epochs = a->epochs;
    a->train.lr.batch_size = a->batch_size;
    a->train.lr.learning_rate = (float)a->learning_rate;
    a->train.lr.l2 = (float)a->l2;
    a->train.model_dir = a->model_dir;
    return 0;
}

/* Connect and PING, so a wrong address fails before any work is done. */
static cascade_redis *connect_redis(const char *addr, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (cascade_redis_parse_addr(addr, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "--redis: expected HOST:PORT, got '%s'", addr);
        return NULL;
    }
    struct cascade_redis_opts ro = {
        .host = host, .port = port, .connect_timeout_ms = 2000, .command_timeout_ms = 60000};
    cascade_redis *r = cascade_redis_create(&ro);
    redisReply *rep = NULL;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (cascade_redis_command(r, &rep, "PING") != 0) {
        snprintf(err, errlen, "%s", cascade_redis_error(r));
        cascade_redis_destroy(r);
        return NULL;
    }
    freeReplyObject(rep);
    return r;
}

static int meta_set(cascade_redis *r, const char *ns, const char *field, const char *value)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    int rc =
        cascade_redis_command(r, &rep, "HSET %s %s %s", cascade_key_meta(key, ns), field, value);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static int run_load(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                    size_t errlen)
{
    struct cascade_load_summary s;
    int rc = cascade_load_run(ds, r, &a->load, &s, err, errlen);
    if (rc != 0)
        return rc;
    printf("load: %zu items, %zu users (%zu last-n lists, %zu consumed sets), %zu authors, %zu "
           "cities, hot list %zu; %zu commands in %.2fs (%.0f commands/s)%s\n",
           s.items, s.users, s.lastn_lists, s.consumed_sets, s.authors, s.cities, s.hot, s.commands,
           s.seconds, s.seconds > 0 ? (double)s.commands / s.seconds : 0.0,
           a->flush ? "; namespace flushed first" : "");
    return 0;
}

static int run_itemcf(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                      size_t errlen)
{
    struct cascade_itemcf_result res;
    size_t written = 0, total = 0;
    int rc = cascade_itemcf_compute(ds, &a->itemcf, &res, err, errlen);
    if (rc != 0)
        return rc;
    rc = cascade_itemcf_store(ds, &res, r, a->ns, a->pipeline, a->quiet, &written, err, errlen);
    for (size_t i = 0; i < res.n_items; i++)
        total += res.count[i];
    if (rc == 0) {
        char v[32];
        printf("itemcf: %zu items, %zu neighbour lists written (mean length %.1f, top-k %zu), "
               "%zu co-occurring pairs scored in %.2fs\n",
               res.n_items, written, written ? (double)total / (double)written : 0.0, res.k,
               res.pairs, res.seconds);
        snprintf(v, sizeof(v), "%zu", written);
        rc = meta_set(r, a->ns, "itemcf_lists", v);
        if (rc != 0)
            snprintf(err, errlen, "%s", cascade_redis_error(r));
    }
    cascade_itemcf_result_free(&res);
    return rc;
}

static int run_train(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                     size_t errlen)
{
    struct cascade_train_rank_summary s;
    char truth[4096];
    struct stat st;
    if (a->truth) {
        a->train.truth_path = a->truth;
    } else {
        snprintf(truth, sizeof(truth), "%s/truth.tsv", a->data);
        a->train.truth_path = stat(truth, &st) == 0 ? truth : NULL;
    }
    int rc = cascade_train_rank_run(ds, &a->train, &s, NULL, err, errlen);
    if (rc != 0)
        return rc;
    printf("train-rank: %zu examples (%zu train, %zu held out); held-out AUC %.4f", s.examples,
           s.train, s.holdout, s.auc);
    if (!isnan(s.oracle_auc))
        printf(" (oracle %.4f)", s.oracle_auc);
    printf(", logloss %.4f (constant %.4f); %.2fs\n", s.logloss, s.base_logloss, s.seconds);
    printf("train-rank: model %s (version %s)\n", s.model_path, s.version);
    if (r) {
        char auc[32];
        snprintf(auc, sizeof(auc), "%.6f", s.auc);
        if ((rc = meta_set(r, a->ns, "rank_model", s.version)) == 0)
            rc = meta_set(r, a->ns, "rank_auc", auc);
        if (rc != 0)
            snprintf(err, errlen, "%s", cascade_redis_error(r));
    }
    return rc;
}

static int run_jobs(unsigned jobs, struct build_args *a, char *err, size_t errlen)
{
    cascade_dataset *ds = NULL;
    cascade_redis *r = NULL;
    int rc;
    bool need_redis = (jobs & (JOB_LOAD | JOB_ITEMCF)) || a->redis;
    if (need_redis && !(r = connect_redis(a->redis, err, errlen)))
        return CASCADE_EUNAVAILABLE;
    if ((rc = cascade_dataset_read(a->data, &ds, err, errlen)) != 0)
        goto out;
    if (!a->quiet)
        fprintf(stderr, "data: %zu users, %zu items, %zu events from %s\n", ds->n_users,
                ds->n_items, ds->n_events, a->data);
    if (ds->implicit_users && !a->quiet)
        fprintf(stderr, "data: %zu users appear only in events.tsv (added with empty profiles)\n",
                ds->implicit_users);
    if (ds->unknown_item_events && !a->quiet)
        fprintf(stderr, "data: warning: %zu events name items missing from items.tsv (skipped)\n",
                ds->unknown_item_events);
    if ((jobs & JOB_LOAD) && (rc = run_load(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_ITEMCF) && (rc = run_itemcf(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_TRAIN) && (rc = run_train(ds, r, a, err, errlen)) != 0)
        goto out;
out:
    cascade_dataset_destroy(ds);
    cascade_redis_destroy(r);
    return rc;
}

static const char *job_usage(unsigned jobs, const char **desc)
{
    switch (jobs) {
    case JOB_LOAD:
        *desc =
            "Load users, items and events into Redis: item records with statistics, user records "
            "with category\naffinities, last-n lists, consumed sets, author/city item indexes, "
            "the hot list, {ns}:meta.";
        return "cascade-build load --data DIR [--redis HOST:PORT] [flags]";
    case JOB_ITEMCF:
        *desc = "Compute ItemCF neighbour lists (cosine over behaviour-weighted user vectors) and "
                "store them at\n{ns}:i2i:itemcf:{id}.";
        return "cascade-build itemcf --data DIR [--redis HOST:PORT] [flags]";
    case JOB_TRAIN:
        *desc = "Train the ranking logistic regression on the event log (point-in-time features, "
                "time-split\nheld-out set) and publish model-dir/rank-lr-<time>.safetensors + "
                "rank-lr.latest.";
        return "cascade-build train-rank --data DIR --model-dir DIR [flags]";
    default:
        *desc = "load, then itemcf, then train-rank, reading the data once.";
        return "cascade-build all --data DIR --model-dir DIR [--redis HOST:PORT] [flags]";
    }
}

static int job_command(unsigned jobs, int argc, char **argv)
{
    struct build_args a;
    struct flag_table t = {.n = 0};
    char err[ERR_LEN];
    const char *desc;
    defaults(&a);
    if (jobs == JOB_TRAIN)
        a.redis = NULL; /* optional for train-rank */
    common_flags(&t, &a, jobs);
    if (jobs & JOB_LOAD)
        load_flags(&t, &a);
    if (jobs & (JOB_LOAD | JOB_TRAIN))
        add(&t, (struct cascade_flag){
                    "affinity-half-life-days", CASCADE_FLAG_DOUBLE, &a.load.affinity_half_life_days,
                    "half-life of user category affinities in days (0 = none)", 0, 3650});
    if (jobs & JOB_ITEMCF)
        itemcf_flags(&t, &a);
    if (jobs & JOB_TRAIN)
        train_flags(&t, &a);
    int rc = cascade_flags_parse(argc, argv, 2, t.f, t.n, err, sizeof(err));
    if (rc == CASCADE_FLAGS_HELP) {
        const char *usage = job_usage(jobs, &desc);
        cascade_flags_usage(stdout, usage, desc, t.f, t.n);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (rc == 0)
        rc = finish_args(&a, jobs, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "cascade-build %s: %s\n", argv[1], err);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    rc = run_jobs(jobs, &a, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "cascade-build %s: %s\n", argv[1], err);
        return CASCADE_BUILD_EXIT_FAILURE;
    }
    return CASCADE_BUILD_EXIT_OK;
}

static int import_command(int argc, char **argv)
{
    const char *format = NULL, *in = NULL, *out = NULL;
    enum cascade_ml_format fmt;
    struct cascade_import_summary s;
    char err[ERR_LEN];
    const struct cascade_flag flags[] = {
        {"format", CASCADE_FLAG_STRING, &format, "latest-small or 100k; required", 0, 0},
        {"in", CASCADE_FLAG_STRING, &in, "directory of the MovieLens files; required", 0, 0},
        {"out", CASCADE_FLAG_STRING, &out, "output directory for the TSVs (created); required", 0,
         0},
    };
    size_t n = sizeof(flags) / sizeof(flags[0]);
    int rc = cascade_flags_parse(argc, argv, 2, flags, n, err, sizeof(err));
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(
            stdout, "cascade-build import-movielens --format latest-small|100k --in DIR --out DIR",
            "Convert MovieLens (ml-latest-small: movies.csv, ratings.csv; ml-100k: "
            "u.item, u.user, u.data)\ninto users.tsv, items.tsv, events.tsv. Each "
            "rating is an impression + click, rating >= 4 also a like.",
            flags, n);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (rc == 0 && (!format || !in || !out)) {
        snprintf(err, sizeof(err), "--format, --in and --out are required");
        rc = CASCADE_EINVAL;
    }
    if (rc == 0 && cascade_movielens_parse_format(format, &fmt) != 0) {
        snprintf(err, sizeof(err), "--format: expected latest-small or 100k, got '%s'", format);
        rc = CASCADE_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "cascade-build import-movielens: %s\n", err);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    if ((rc = cascade_movielens_import(fmt, in, out, &s, err, sizeof(err))) != 0) {
        fprintf(stderr, "cascade-build import-movielens: %s\n", err);
        return CASCADE_BUILD_EXIT_FAILURE;
    }
    printf(
        "import-movielens: %zu users, %zu items, %zu ratings -> %zu events (%zu likes)%s -> %s\n",
        s.users, s.items, s.ratings, s.events, s.likes,
        s.skipped_ratings ? " (some ratings of unknown movies skipped)" : "", out);
    if (s.skipped_ratings)
        printf("import-movielens: skipped %zu ratings of movies missing from the movie file\n",
               s.skipped_ratings);
    return CASCADE_BUILD_EXIT_OK;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cascade-build <command> [flags]\n\n"
                 "Offline jobs of Cascade. Commands:\n"
                 "  load              load users, items and events (TSVs) into Redis\n"
                 "  itemcf            build ItemCF neighbour lists into Redis\n"
                 "  train-rank        train the ranking model and publish it to a model directory\n"
                 "  all               load + itemcf + train-rank\n"
                 "  import-movielens  convert MovieLens files into the TSV format\n\n"
                 "Run 'cascade-build <command> --help' for a command's flags. Data formats: "
                 "docs/data.md.\n");
}

int cascade_build_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CASCADE_BUILD_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CASCADE_BUILD_EXIT_OK;
    }
    if (strcmp(cmd, "load") == 0)
        return job_command(JOB_LOAD, argc, argv);
    if (strcmp(cmd, "itemcf") == 0)
        return job_command(JOB_ITEMCF, argc, argv);
    if (strcmp(cmd, "train-rank") == 0)
        return job_command(JOB_TRAIN, argc, argv);
    if (strcmp(cmd, "all") == 0)
        return job_command(JOB_LOAD | JOB_ITEMCF | JOB_TRAIN, argc, argv);
    if (strcmp(cmd, "import-movielens") == 0)
        return import_command(argc, argv);
    fprintf(stderr, "cascade-build: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CASCADE_BUILD_EXIT_USAGE;
}
