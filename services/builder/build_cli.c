/* cascade-build subcommands: flag tables per subcommand, the Redis
 * connection, and the summary lines. The jobs themselves live in load.c,
 * itemcf.c, swing.c, usercf.c, ease_lists.c, lists.c, authors.c, train_rank.c and
 * movielens.c. */
#include "build_cli.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "authors.h"
#include "cf_config.h"
#include "cf_publish.h"
#include "config.h"
#include "dataset.h"
#include "ease.h"
#include "ease_lists.h"
#include "error.h"
#include "flags.h"
#include "itemcf.h"
#include "lists.h"
#include "load.h"
#include "movielens.h"
#include "online_items.h"
#include "redis.h"
#include "snapshot.h"
#include "store.h"
#include "swing.h"
#include "train_rank.h"
#include "train_mmoe.h"
#include "train_prerank.h"
#include "train_twotower.h"
#include "usercf.h"

#define MAX_FLAGS 72
#define ERR_LEN 1024

enum job {
    JOB_LOAD = 1,
    JOB_ITEMCF = 2,
    JOB_TRAIN = 4,
    JOB_SWING = 8,
    JOB_USERCF = 16,
    JOB_EASE = 32,
    JOB_LISTS = 1 << 8,
    JOB_AUTHORS = 1 << 9
};
#define JOB_CF (JOB_ITEMCF | JOB_SWING | JOB_USERCF | JOB_EASE)
#define JOB_REDIS_WRITERS (JOB_LOAD | JOB_CF | JOB_LISTS | JOB_AUTHORS)

/* Everything any subcommand can set; each subcommand exposes a subset. */
struct build_args {
    const char *data, *redis, *ns, *model_dir, *weights, *truth, *config;
    bool quiet, flush;
    bool cold; /* --no-warm-start */
    struct cascade_load_opts load;
    struct cascade_itemcf_opts itemcf;
    struct cascade_swing_opts swing;
    struct cascade_usercf_opts usercf;
    struct cascade_ease_lists_opts ease;
    struct cascade_lists_opts lists;
    struct cascade_authors_opts authors;
    struct cascade_train_rank_opts train;
    bool published; /* train-rank: the gate moved rank-lr.latest */
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
    if (jobs & JOB_REDIS_WRITERS)
        add(t, (struct cascade_flag){"pipeline", CASCADE_FLAG_SIZE, &a->pipeline,
                                     "Redis commands per round trip", 1, 1e6});
    add(t, (struct cascade_flag){"quiet", CASCADE_FLAG_BOOL, &a->quiet, "no progress lines", 0, 0});
}

static void load_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_load_opts *o = &a->load;
    add(t, (struct cascade_flag){"lastn", CASCADE_FLAG_SIZE, &o->lastn,
                                 "last-n list length per user", 1, 100000});
    add(t, (struct cascade_flag){"flush", CASCADE_FLAG_BOOL, &a->flush,
                                 "delete every {namespace}:* key first", 0, 0});
}

/* Flags of the lists and authors jobs; their defaults can come from --config
 * (build.hot.*, build.new.*, build.geo.*, build.city.*, build.authors.*). */
static void lists_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_lists_opts *o = &a->lists;
    add(t, (struct cascade_flag){"hot-size", CASCADE_FLAG_SIZE, &o->hot_size,
                                 "items in the hot list (build.hot.size)", 1, 1e7});
    add(t, (struct cascade_flag){"hot-half-life-days", CASCADE_FLAG_DOUBLE, &o->hot_half_life_days,
                                 "half-life of hot scores in days, 0 = no decay; unset = "
                                 "derived from the log's span (build.hot.half_life_days)",
                                 0, 3650});
    add(t, (struct cascade_flag){"hot-demo-size", CASCADE_FLAG_SIZE, &o->hot_demo_size,
                                 "items per demographic hot list, 0 = none (build.hot.demo_size)",
                                 0, 1e5});
    add(t, (struct cascade_flag){"hot-category-size", CASCADE_FLAG_SIZE, &o->hot_category_size,
                                 "items per category hot list, 0 = none (build.hot.category_size)",
                                 0, 1e5});
    add(t, (struct cascade_flag){"new-window-days", CASCADE_FLAG_DOUBLE, &o->new_window_days,
                                 "items created this many days before as-of are new; unset = "
                                 "derived from the log's span (build.new.window_days)",
                                 0, 3650});
    add(t, (struct cascade_flag){"geo-precision", CASCADE_FLAG_INT, &o->geo_precision,
                                 "geohash characters of a geo cell (build.geo.precision)", 1, 12});
    add(t, (struct cascade_flag){"geo-cap", CASCADE_FLAG_SIZE, &o->geo_cap,
                                 "newest items kept per geo cell (build.geo.cap)", 1, 1e6});
    add(t, (struct cascade_flag){"city-cap", CASCADE_FLAG_SIZE, &o->city_cap,
                                 "newest items kept per city (build.city.cap)", 1, 1e6});
}

static void authors_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_authors_opts *o = &a->authors;
    add(t, (struct cascade_flag){"author-items-cap", CASCADE_FLAG_SIZE, &o->items_cap,
                                 "newest items kept per author (build.authors.items_cap)", 1, 1e6});
    add(t, (struct cascade_flag){"author-half-life-days", CASCADE_FLAG_DOUBLE, &o->half_life_days,
                                 "half-life of a user's interest in an author, 0 = no decay; "
                                 "unset = derived from the log's span "
                                 "(build.authors.half_life_days)",
                                 0, 3650});
    add(t, (struct cascade_flag){"interacted-top-k", CASCADE_FLAG_SIZE, &o->interacted_top_k,
                                 "authors per interacted list (build.authors.interacted_top_k)", 1,
                                 200});
    add(t,
        (struct cascade_flag){"similar-authors-top-k", CASCADE_FLAG_SIZE, &o->similar_top_k,
                              "similar authors per author (build.authors.similar_top_k)", 1, 200});
    add(t,
        (struct cascade_flag){"max-authors-per-user", CASCADE_FLAG_SIZE, &o->max_authors_per_user,
                              "strongest authors per user used for author similarity, 0 = all "
                              "(build.authors.max_authors_per_user)",
                              0, 1e6});
}

/* Flags of the CF jobs; their defaults can come from --config (build.itemcf.*,
 * build.swing.*, build.usercf.*). The history cap and threads are shared. */
static void cf_flags(struct flag_table *t, struct build_args *a, unsigned jobs)
{
    struct cascade_itemcf_opts *o = &a->itemcf;
    if (jobs & (JOB_ITEMCF | JOB_SWING | JOB_USERCF)) /* EASE reads whole histories */
        add(t,
            (struct cascade_flag){"max-items-per-user", CASCADE_FLAG_SIZE, &o->max_items_per_user,
                                  "most recent items per user used by ItemCF, Swing and UserCF, "
                                  "0 = all (build.itemcf.max_items_per_user)",
                                  0, 1e7});
    add(t,
        (struct cascade_flag){"threads", CASCADE_FLAG_INT, &o->threads, "worker threads", 1, 64});
    if (jobs & JOB_ITEMCF)
        add(t, (struct cascade_flag){"top-k", CASCADE_FLAG_SIZE, &o->top_k,
                                     "ItemCF neighbours per item (build.itemcf.top_k)", 1, 200});
}

static void swing_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_swing_opts *o = &a->swing;
    add(t, (struct cascade_flag){"swing-top-k", CASCADE_FLAG_SIZE, &o->top_k,
                                 "Swing neighbours per item (build.swing.top_k)", 1, 200});
    add(t, (struct cascade_flag){"swing-users-per-item", CASCADE_FLAG_SIZE, &o->max_users_per_item,
                                 "users sampled per item (build.swing.users_per_item)", 2, 2000});
    add(t,
        (struct cascade_flag){"swing-alpha", CASCADE_FLAG_DOUBLE, &o->alpha,
                              "alpha in w_u·w_v/(alpha + |I_u∩I_v|) (build.swing.alpha)", 0, 1e6});
    add(t, (struct cascade_flag){"swing-alpha1", CASCADE_FLAG_DOUBLE, &o->alpha1,
                                 "alpha1 in w_u = (|I_u| + alpha1)^-beta (build.swing.alpha1)", 0,
                                 1e6});
    add(t, (struct cascade_flag){"swing-beta", CASCADE_FLAG_DOUBLE, &o->beta,
                                 "beta in w_u = (|I_u| + alpha1)^-beta (build.swing.beta)", 0, 10});
    add(t, (struct cascade_flag){"swing-seed", CASCADE_FLAG_U64, &o->seed,
                                 "seed of the user samples (build.swing.seed)", 0, 0});
}

static void usercf_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_usercf_opts *o = &a->usercf;
    add(t, (struct cascade_flag){"usercf-top-k", CASCADE_FLAG_SIZE, &o->top_k,
                                 "similar users per user (build.usercf.top_k)", 1, 100});
    add(t, (struct cascade_flag){"usercf-users-per-item", CASCADE_FLAG_SIZE, &o->max_users_per_item,
                                 "users sampled per item, 0 = all (build.usercf.users_per_item)", 0,
                                 1e7});
    add(t, (struct cascade_flag){"usercf-seed", CASCADE_FLAG_U64, &o->seed,
                                 "seed of the user samples (build.usercf.seed)", 0, 0});
}

static void ease_flags(struct flag_table *t, struct build_args *a)
{
    struct cascade_ease_lists_opts *o = &a->ease;
    add(t,
        (struct cascade_flag){"lambda", CASCADE_FLAG_DOUBLE, &o->lambda,
                              "EASE L2 weight λ in (XᵀX + λI)⁻¹ (build.ease.lambda)", 1e-6, 1e9});
    add(t, (struct cascade_flag){"max-items", CASCADE_FLAG_SIZE, &o->max_items,
                                 "EASE item cap, most popular first; memory 4·n² bytes "
                                 "(build.ease.max_items)",
                                 1, CASCADE_EASE_MAX_ITEMS});
    add(t, (struct cascade_flag){"neighbours", CASCADE_FLAG_SIZE, &o->neighbours,
                                 "EASE neighbours published per item (build.ease.neighbours)", 1,
                                 200});
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
    add(t, (struct cascade_flag){"no-warm-start", CASCADE_FLAG_BOOL, &a->cold,
                                 "train from zero weights, not from model-dir's current version", 0,
                                 0});
    add(t, (struct cascade_flag)CASCADE_TRAIN_GATE_FLAG_FLOOR(&o->gate));
    add(t, (struct cascade_flag)CASCADE_TRAIN_GATE_FLAG_TOLERANCE(&o->gate));
    add(t, (struct cascade_flag)CASCADE_TRAIN_GATE_FLAG_FORCE(&o->gate));
}

static void defaults(struct build_args *a)
{
    memset(a, 0, sizeof(*a));
    a->redis = "127.0.0.1:6379";
    a->ns = "cascade";
    cascade_load_defaults(&a->load);
    cascade_itemcf_defaults(&a->itemcf);
    cascade_swing_defaults(&a->swing);
    cascade_usercf_defaults(&a->usercf);
    cascade_ease_lists_defaults(&a->ease);
    cascade_lists_defaults(&a->lists);
    cascade_authors_defaults(&a->authors);
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
    a->load.weights = a->train.weights = w;
    /* CF weights: build.itemcf.weights (or the defaults), then --weights on top. */
    if (a->weights &&
        cascade_behaviour_weights_parse(&a->itemcf.weights, a->weights, err, errlen) != 0)
        return CASCADE_EINVAL;
    a->swing.weights = a->usercf.weights = a->ease.weights = a->itemcf.weights;
    a->swing.max_items_per_user = a->usercf.max_items_per_user = a->itemcf.max_items_per_user;
    a->swing.threads = a->usercf.threads = a->ease.threads = a->itemcf.threads;
    a->swing.quiet = a->usercf.quiet = a->ease.quiet = a->quiet;
    a->lists.weights = a->authors.weights = w;
    a->load.ns = a->lists.ns = a->authors.ns = a->ns;
    a->lists.as_of = a->authors.as_of = a->load.as_of;
    a->lists.pipeline = a->authors.pipeline = a->pipeline;
    a->lists.quiet = a->authors.quiet = a->quiet;
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
    a->train.warm_start = !a->cold;
    return 0;
}

cascade_redis *cascade_build_redis_connect(const char *addr, char *err, size_t errlen)
{
    struct cascade_redis_tool_conn conn;
    struct cascade_redis_opts ro;
    if (cascade_redis_tool_opts(addr, 60000, &conn, &ro, err, errlen) != 0)
        return NULL;
    cascade_redis *r = cascade_redis_create(&ro);
    cascade_redis_tool_wipe(&conn);
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
    printf("load: %zu items, %zu users (%zu last-n lists, %zu consumed sets, %zu follow sets with "
           "%zu follows); %zu commands in %.2fs (%.0f commands/s)%s\n",
           s.items, s.users, s.lastn_lists, s.consumed_sets, s.follow_sets, s.follows, s.commands,
           s.seconds, s.seconds > 0 ? (double)s.commands / s.seconds : 0.0,
           a->flush ? "; namespace flushed first" : "");
    printf("load: affinity half-life %.2f days%s\n", s.affinity_half_life_days,
           a->load.affinity_half_life_days < 0 ? " (derived from the log's span, docs/data.md)"
                                               : "");
    return 0;
}

/* Publish CF lists as a new generation of `family`, print the summary, free them. */
static int publish_cf(const cascade_dataset *ds, cascade_redis *r, struct build_args *a,
                      const char *family, const char *rows, struct cascade_cf_lists *l, char *err,
                      size_t errlen)
{
    struct cascade_cf_publish_opts po = {
        .ns = a->ns, .family = family, .pipeline = a->pipeline, .quiet = a->quiet};
    struct cascade_cf_publish_summary s;
    int rc = strcmp(family, "usercf") == 0
                 ? cascade_cf_publish_users(ds, l, r, &po, &s, err, errlen)
                 : cascade_cf_publish_items(ds, l, r, &po, &s, err, errlen);
    if (rc == 0) {
        char field[64], v[32];
        size_t total = cascade_cf_lists_total(l);
        printf("%s: %zu %s, %zu lists (mean length %.1f, top-k %zu), %zu pairs scored in %.2fs; "
               "generation %lld written and published in %.2fs\n",
               family, l->n, rows, s.written, s.written ? (double)total / (double)s.written : 0.0,
               l->k, l->pairs, l->seconds, (long long)s.gen, s.seconds);
        snprintf(field, sizeof(field), "%s_lists", family);
        snprintf(v, sizeof(v), "%zu", s.written);
        if ((rc = meta_set(r, a->ns, field, v)) != 0)
            snprintf(err, errlen, "%s", cascade_redis_error(r));
    }
    cascade_cf_lists_free(l);
    return rc;
}

static int run_itemcf(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                      size_t errlen)
{
    struct cascade_cf_lists l;
    int rc = cascade_itemcf_compute(ds, &a->itemcf, &l, err, errlen);
    return rc != 0 ? rc : publish_cf(ds, r, a, "itemcf", "items", &l, err, errlen);
}

static int run_swing(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                     size_t errlen)
{
    struct cascade_cf_lists l;
    int rc = cascade_swing_compute(ds, &a->swing, &l, err, errlen);
    return rc != 0 ? rc : publish_cf(ds, r, a, "swing", "items", &l, err, errlen);
}

static int run_usercf(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                      size_t errlen)
{
    struct cascade_cf_lists l;
    int rc = cascade_usercf_compute(ds, &a->usercf, &l, err, errlen);
    return rc != 0 ? rc : publish_cf(ds, r, a, "usercf", "users", &l, err, errlen);
}

static int run_ease(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                    size_t errlen)
{
    struct cascade_cf_lists l;
    size_t covered = 0;
    int rc = cascade_ease_lists_compute(ds, &a->ease, &l, &covered, err, errlen);
    if (rc != 0)
        return rc;
    printf("ease: model covers %zu of %zu items (lambda %g, cap %zu)\n", covered, ds->n_items,
           a->ease.lambda, a->ease.max_items);
    return publish_cf(ds, r, a, "ease", "items", &l, err, errlen);
}

static int run_lists(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                     size_t errlen)
{
    struct cascade_lists_summary s;
    int rc = cascade_lists_run(ds, r, &a->lists, &s, err, errlen);
    if (rc != 0)
        return rc;
    printf("lists: hot %zu items (gen %lld) + %zu demographic lists (%zu items) + %zu category "
           "lists (%zu items); new %zu items "
           "(gen %lld); geo %zu cells, %zu items, %zu without a cell (gen %lld); city %zu cities, "
           "%zu items (gen %lld); %zu commands in %.2fs\n",
           s.hot, (long long)s.gen_hot, s.demo_lists, s.demo_items, s.category_lists,
           s.category_items, s.new_items, (long long)s.gen_new, s.geo_cells, s.geo_items,
           s.geo_skipped, (long long)s.gen_geo, s.cities, s.city_items, (long long)s.gen_city,
           s.commands, s.seconds);
    printf("lists: log span %.1f days; hot half-life %.2f days, new window %.2f days%s\n",
           s.span_days, s.hot_half_life_days, s.new_window_days,
           a->lists.hot_half_life_days < 0 || a->lists.new_window_days < 0
               ? " (unset ones derived from the span, docs/data.md)"
               : "");
    return 0;
}

static int run_authors(const cascade_dataset *ds, cascade_redis *r, struct build_args *a, char *err,
                       size_t errlen)
{
    struct cascade_authors_summary s;
    int rc = cascade_authors_run(ds, r, &a->authors, &s, err, errlen);
    if (rc != 0)
        return rc;
    printf("authors: %zu authors, %zu item lists (%zu items), %zu interacted-author lists, %zu "
           "similar-author lists (%zu pairs scored); gen %lld, %zu commands in %.2fs\n",
           s.authors, s.item_lists, s.items, s.interacted_lists, s.similar_lists, s.pairs,
           (long long)s.gen, s.commands, s.seconds);
    printf("authors: interest half-life %.2f days%s\n", s.half_life_days,
           a->authors.half_life_days < 0 ? " (derived from the log's span, docs/data.md)" : "");
    return 0;
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
    printf("train-rank: model %s (version %s), %s: %s\n", s.model_path, s.version,
           s.gate.publish ? "rank-lr.latest updated" : "not published", s.gate.message);
    a->published = s.gate.publish;
    if (r && s.gate.publish) {
        char auc[32];
        snprintf(auc, sizeof(auc), "%.6f", s.auc);
        if ((rc = meta_set(r, a->ns, "rank_model", s.version)) == 0)
            rc = meta_set(r, a->ns, "rank_auc", auc);
        if (rc != 0)
            snprintf(err, errlen, "%s", cascade_redis_error(r));
    }
    return rc;
}

/* err = "<step>: <err>". The trainers do not name themselves: the command
 * line does, and in a pipeline of steps this names the step. */
static void prefix_step(char *err, size_t errlen, const char *step)
{
    size_t n = strlen(step) + 2, len = strnlen(err, errlen);
    if (errlen <= n)
        return;
    if (len > errlen - 1 - n)
        len = errlen - 1 - n; /* the end of the message gives way */
    memmove(err + n, err, len);
    err[n + len] = '\0';
    memcpy(err, step, n - 2);
    memcpy(err + n - 2, ": ", 2);
}

static int run_jobs(unsigned jobs, struct build_args *a, char *err, size_t errlen)
{
    cascade_snapshot snap = {0};
    struct cascade_ds_partition_limits limits;
    cascade_dataset *ds = NULL;
    cascade_redis *r = NULL;
    int rc;
    bool need_redis = (jobs & JOB_REDIS_WRITERS) || a->redis;
    if (need_redis && !(r = cascade_build_redis_connect(a->redis, err, errlen)))
        return CASCADE_EUNAVAILABLE;
    /* Items put online (PutItems) join the data before it is read, so every
     * job below sees them as if they were in items.tsv. */
    size_t online = 0;
    if (r && (rc = cascade_online_items_export(r, a->ns, a->data, &online, err, errlen)) != 0)
        goto out;
    if (online && !a->quiet)
        fprintf(stderr, "data: %zu items added online exported from %s:items:online to %s/%s\n",
                online, a->ns, a->data, CASCADE_DS_ONLINE_ITEMS);
    /* load pairs its records with a snapshot of the online counters and
     * reads the partitions up to it (snapshot.h); the other jobs of the run
     * read the same data. */
    if ((jobs & JOB_LOAD) &&
        (rc = cascade_snapshot_take(r, a->ns, a->data, &snap, err, errlen)) != 0)
        goto out;
    if ((rc = cascade_dataset_read_until(a->data, cascade_snapshot_limits(&snap, &limits), &ds, err,
                                         errlen)) != 0)
        goto out;
    if ((jobs & JOB_LOAD) && !a->quiet)
        fprintf(stderr,
                "data: snapshot of the online counters: %zu items with counters, %zu partitions "
                "with a committed length, %zu without (read to their size at the snapshot)%s\n",
                snap.n_items, snap.n_dates - snap.n_uncommitted, snap.n_uncommitted,
                snap.consumer ? "" : " (no consumer)");
    a->load.snapshot = (jobs & JOB_LOAD) ? &snap : NULL;
    if (!a->quiet)
        fprintf(stderr, "data: %zu users, %zu items, %zu events from %s\n", ds->n_users,
                ds->n_items, ds->n_events, a->data);
    if (ds->partitions && !a->quiet)
        fprintf(stderr, "data: events include %zu day partitions from %s/events\n", ds->partitions,
                a->data);
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
    if ((jobs & JOB_SWING) && (rc = run_swing(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_USERCF) && (rc = run_usercf(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_EASE) && (rc = run_ease(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_LISTS) && (rc = run_lists(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_AUTHORS) && (rc = run_authors(ds, r, a, err, errlen)) != 0)
        goto out;
    if ((jobs & JOB_TRAIN) && (rc = run_train(ds, r, a, err, errlen)) != 0) {
        if (jobs != JOB_TRAIN) /* `all`: name the step that failed */
            prefix_step(err, errlen, "train-rank");
        goto out;
    }
out:
    a->load.snapshot = NULL;
    cascade_snapshot_free(&snap);
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
            "with category\naffinities, last-n lists, consumed sets, followed-author sets, "
            "{ns}:meta.";
        return "cascade-build load --data DIR [--redis HOST:PORT] [flags]";
    case JOB_ITEMCF:
        *desc = "Compute ItemCF neighbour lists (cosine over behaviour-weighted user vectors) and "
                "publish them as\na new generation {ns}:itemcf@{gen}:{item_id}.";
        return "cascade-build itemcf --data DIR [--redis HOST:PORT] [flags]";
    case JOB_SWING:
        *desc = "Compute Swing neighbour lists (user pairs sharing two items, discounted by how "
                "much the pair\nshares anyway) and publish them as a new generation "
                "{ns}:swing@{gen}:{item_id}.";
        return "cascade-build swing --data DIR [--redis HOST:PORT] [flags]";
    case JOB_USERCF:
        *desc = "Compute UserCF similar-user lists (shared items, hot items down-weighted) and "
                "publish them as\na new generation {ns}:usercf@{gen}:{user_id}.";
        return "cascade-build usercf --data DIR [--redis HOST:PORT] [flags]";
    case JOB_EASE:
        *desc = "Compute the EASE item-item model (closed form over the max-items most popular "
                "items, binary\ninteractions) and publish each item's best weights as a new "
                "generation {ns}:ease@{gen}:{item_id}.";
        return "cascade-build ease --data DIR [--redis HOST:PORT] [flags]";
    case JOB_LISTS:
        *desc = "Build and publish the hot (and demographic hot), new, geo-cell and city item "
                "lists, each as a\nnew generation of its family ({ns}:hot@{gen}, "
                "{ns}:new@{gen}, {ns}:geo@{gen}:{cell}, {ns}:city@{gen}:{city}).";
        return "cascade-build lists --data DIR [--redis HOST:PORT] [flags]";
    case JOB_AUTHORS:
        *desc = "Build and publish the authors family: author -> items (newest first), user -> "
                "interacted authors\n(time-decayed), author -> similar authors (author-level "
                "ItemCF).";
        return "cascade-build authors --data DIR [--redis HOST:PORT] [flags]";
    case JOB_TRAIN:
        *desc = "Train the ranking logistic regression on the event log (point-in-time features, "
                "time-split\nheld-out set) and publish model-dir/rank-lr-<time>.safetensors + "
                "rank-lr.latest." CASCADE_TRAIN_GATE_HELP;
        return "cascade-build train-rank --data DIR --model-dir DIR [flags]";
    default:
        *desc = "load, itemcf, swing, usercf, ease, lists, authors, then train-rank, reading the "
                "data once.\nThe exit status is train-rank's: 3 when the data does not support the "
                "ranking model, 4 when\nthe gate refused it (the Redis jobs are done in both "
                "cases).";
        return "cascade-build all --data DIR --model-dir DIR [--redis HOST:PORT] [flags]";
    }
}

/* --config FILE (looked up before the flags are parsed, so that flags given
 * on the command line override it): the build.* section sets the defaults
 * of the lists and authors flags. */
static int apply_config(int argc, char **argv, struct build_args *a, char *err, size_t errlen)
{
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    if (!path)
        return 0;
    cascade_config *c = cascade_config_load(path, err, errlen);
    if (!c)
        return CASCADE_EINVAL;
    int rc = cascade_lists_config(c, &a->lists, err, errlen);
    if (rc == 0)
        rc = cascade_authors_config(c, &a->authors, err, errlen);
    if (rc == 0)
        rc = cascade_cf_config(c, &a->itemcf, &a->swing, &a->usercf, err, errlen);
    if (rc == 0)
        rc = cascade_cf_config_ease(c, &a->ease, err, errlen);
    cascade_config_destroy(c);
    return rc;
}

static int job_command(unsigned jobs, int argc, char **argv)
{
    struct build_args a;
    struct flag_table t = {.n = 0};
    char err[ERR_LEN];
    const char *desc;
    int rc;
    defaults(&a);
    if (jobs == JOB_TRAIN)
        a.redis = NULL; /* optional for train-rank */
    common_flags(&t, &a, jobs);
    if (jobs & JOB_LOAD)
        load_flags(&t, &a);
    if (jobs & (JOB_LOAD | JOB_LISTS | JOB_AUTHORS))
        add(&t, (struct cascade_flag){"as-of", CASCADE_FLAG_I64, &a.load.as_of,
                                      "reference time for decays and windows, Unix s (0 = last "
                                      "event)",
                                      0, 0});
    if (jobs & (JOB_LISTS | JOB_AUTHORS | JOB_CF)) {
        add(&t, (struct cascade_flag){"config", CASCADE_FLAG_STRING, &a.config,
                                      "JSON config whose build.* section sets defaults for these "
                                      "flags",
                                      0, 0});
        if ((rc = apply_config(argc, argv, &a, err, sizeof(err))) != 0) {
            fprintf(stderr, "cascade-build %s: %s\n", argv[1], err);
            return CASCADE_BUILD_EXIT_USAGE;
        }
    }
    if (jobs & JOB_LISTS)
        lists_flags(&t, &a);
    if (jobs & JOB_AUTHORS)
        authors_flags(&t, &a);
    if (jobs & (JOB_LOAD | JOB_TRAIN))
        add(&t, (struct cascade_flag){
                    "affinity-half-life-days", CASCADE_FLAG_DOUBLE, &a.load.affinity_half_life_days,
                    "half-life of user category affinities in days (0 = none; unset = "
                    "derived from the log's span)",
                    0, 3650});
    if (jobs & JOB_CF)
        cf_flags(&t, &a, jobs);
    if (jobs & JOB_SWING)
        swing_flags(&t, &a);
    if (jobs & JOB_USERCF)
        usercf_flags(&t, &a);
    if (jobs & JOB_EASE)
        ease_flags(&t, &a);
    if (jobs & JOB_TRAIN)
        train_flags(&t, &a);
    rc = cascade_flags_parse(argc, argv, 2, t.f, t.n, err, sizeof(err));
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
        /* A step named like the command ("itemcf: ..." from cascade-build
         * itemcf): name it once. */
        size_t n = strlen(argv[1]);
        bool prefixed = strncmp(err, argv[1], n) == 0 && strncmp(err + n, ": ", 2) == 0;
        fprintf(stderr, "cascade-build %s: %s\n", argv[1], prefixed ? err + n + 2 : err);
    }
    if (jobs & JOB_TRAIN)
        return cascade_train_gate_exit_status(rc, a.published);
    return rc != 0 ? CASCADE_BUILD_EXIT_FAILURE : CASCADE_BUILD_EXIT_OK;
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
    fprintf(out,
            "usage: cascade-build <command> [flags]\n\n"
            "Offline jobs of Cascade. Commands:\n"
            "  load              load users, items and events (TSVs) into Redis\n"
            "  itemcf            build ItemCF neighbour lists into Redis\n"
            "  swing             build Swing neighbour lists into Redis\n"
            "  usercf            build UserCF similar-user lists into Redis\n"
            "  ease              build EASE neighbour lists into Redis\n"
            "  lists             build the hot, new, geo and city item lists into Redis\n"
            "  authors           build author item lists, interacted and similar authors\n"
            "  train-rank        train the ranking model and publish it to a model directory\n"
            "  train-mmoe        train the MMoE multi-task ranker and publish it\n"
            "  train-prerank     train the pre-rank hashed-feature model and publish it\n"
            "  train-two-tower   train the two-tower retrieval model, export its item index\n"
            "  train-ltr         train the learned pre-ranker and ranker on replayed recall\n"
            "  train MODEL       the same as train-MODEL (rank, mmoe, prerank, two-tower, ltr)\n"
            "  all               load + itemcf + swing + usercf + ease + lists + authors + "
            "train-rank\n"
            "  import-movielens  convert MovieLens files into the TSV format\n\n"
            "Run 'cascade-build <command> --help' for a command's flags. Data formats: "
            "docs/data.md.\n");
}

/* `cascade-build train MODEL [flags]`: the train-MODEL command with the same
 * flags (argv without the MODEL word). */
static int train_command(int argc, char **argv)
{
    static const char *const models[] = {"rank", "mmoe", "prerank", "two-tower"};
    const char *model = argc > 2 ? argv[2] : NULL;
    bool known = false;
    for (size_t i = 0; model && i < sizeof(models) / sizeof(models[0]); i++)
        known |= strcmp(model, models[i]) == 0;
    if (!known) {
        fprintf(stderr, "cascade-build train: %s%s%s; models: rank, mmoe, prerank, two-tower\n",
                model ? "unknown model '" : "missing MODEL", model ? model : "", model ? "'" : "");
        return CASCADE_BUILD_EXIT_USAGE;
    }
    char name[32];
    snprintf(name, sizeof(name), "train-%s", model);
    char **sub = malloc((size_t)argc * sizeof(*sub));
    if (!sub) {
        fprintf(stderr, "cascade-build train: out of memory\n");
        return CASCADE_BUILD_EXIT_FAILURE;
    }
    sub[0] = argv[0];
    sub[1] = name;
    for (int i = 3; i < argc; i++)
        sub[i - 1] = argv[i];
    int rc = cascade_build_main(argc - 1, sub);
    free(sub);
    return rc;
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
    if (strcmp(cmd, "swing") == 0)
        return job_command(JOB_SWING, argc, argv);
    if (strcmp(cmd, "usercf") == 0)
        return job_command(JOB_USERCF, argc, argv);
    if (strcmp(cmd, "ease") == 0)
        return job_command(JOB_EASE, argc, argv);
    if (strcmp(cmd, "lists") == 0)
        return job_command(JOB_LISTS, argc, argv);
    if (strcmp(cmd, "authors") == 0)
        return job_command(JOB_AUTHORS, argc, argv);
    if (strcmp(cmd, "train-rank") == 0)
        return job_command(JOB_TRAIN, argc, argv);
    if (strcmp(cmd, "train-mmoe") == 0)
        return cascade_train_mmoe_command(argc, argv);
    if (strcmp(cmd, "train-prerank") == 0)
        return cascade_train_prerank_command(argc, argv);
    if (strcmp(cmd, "train-two-tower") == 0)
        return cascade_train_twotower_command(argc, argv);
    if (strcmp(cmd, "train") == 0)
        return train_command(argc, argv);
    if (strcmp(cmd, "all") == 0)
        return job_command(JOB_LOAD | JOB_CF | JOB_LISTS | JOB_AUTHORS | JOB_TRAIN, argc, argv);
    if (strcmp(cmd, "import-movielens") == 0)
        return import_command(argc, argv);
    fprintf(stderr, "cascade-build: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CASCADE_BUILD_EXIT_USAGE;
}
