/* Unit tests for cascade-build train-two-tower: on a two-community world the
 * trained towers rank a user's own community first (held-out recall@K far
 * above chance), runs are reproducible per seed, the published model,
 * id maps, item index and two-tower.latest agree with each other, and hard
 * negatives (ranker rejects, from a TSV or Redis) are drawn by the ratio and
 * never when excluded. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
#include "gate_record.h"
#include "store.h"
#include "support.h"
#include "train_twotower.h"
#include "twotower.h"
#include "vindex.h"

#define N_USERS 60
#define N_ITEMS 40 /* items 1..20 are community 0, 21..40 community 1 */

/* Each user clicks 12 random items of its community over time and is shown
 * (never clicks) 4 of the other community; a deterministic LCG drives it. */
static cascade_dataset *two_communities(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    for (int i = 1; i <= N_ITEMS; i++) {
        struct cascade_ds_item it = {.id = (uint64_t)i * 10,
                                     .author_id = i <= 20 ? 7 : 8,
                                     .category = i <= 20 ? 1 : 2,
                                     .created_at = 1000};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    uint64_t s = 12345;
    for (int u = 0; u < N_USERS; u++) {
        struct cascade_ds_user du = {.age = 20 + (uint32_t)u % 30, .gender = 1 + (uint32_t)u % 2};
        snprintf(du.id, sizeof(du.id), "u%d", u);
        assert_int_equal(cascade_dataset_add_user(ds, &du, NULL), 0);
    }
    for (int step = 0; step < 16; step++) {
        for (int u = 0; u < N_USERS; u++) {
            char uid[16];
            snprintf(uid, sizeof(uid), "u%d", u);
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int own = (int)((s >> 33) % 20) + 1 + (u % 2) * 20;
            int other = (int)((s >> 13) % 20) + 1 + (1 - u % 2) * 20;
            int64_t ts = 10000 + step * 1000 + u;
            uint64_t item = (uint64_t)(step < 12 ? own : other) * 10;
            assert_int_equal(cascade_dataset_add_event(ds, ts, uid, item, CASCADE_EV_IMPRESSION, 0),
                             0);
            if (step < 12)
                assert_int_equal(
                    cascade_dataset_add_event(ds, ts + 1, uid, item, CASCADE_EV_CLICK, 0), 0);
        }
    }
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    return ds;
}

static void small_opts(struct cascade_train_twotower_opts *o)
{
    cascade_train_twotower_defaults(o);
    o->epochs = 30;
    o->batch = 32;
    o->n_neg = 4;
    o->emb_dim = 8;
    o->hidden = 16;
    o->out_dim = 8;
    o->temperature = 0.1f;
    o->lr = 0.01f;
    o->holdout_frac = 0.2;
    o->eval_k = 10;
    o->quiet = true;
}

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(cascade_twotower_user_age_bucket(0), 0);
    assert_int_equal(cascade_twotower_user_age_bucket(17), 1);
    assert_int_equal(cascade_twotower_user_age_bucket(30), 3);
    assert_int_equal(cascade_twotower_user_age_bucket(80), CASCADE_TT_USER_AGE_BUCKETS - 1);
    assert_int_equal(cascade_twotower_item_age_bucket(0, 100), 0);
    assert_int_equal(cascade_twotower_item_age_bucket(100, 100 + 3600), 1);
    assert_int_equal(cascade_twotower_item_age_bucket(100, 100 + 3 * 86400), 2);
    assert_int_equal(cascade_twotower_item_age_bucket(100, 100 + 400 * 86400),
                     CASCADE_TT_ITEM_AGE_BUCKETS - 1);
}

/* Every objective learns the communities: recall@10 of the held-out clicks
 * (20 candidate items minus history, chance ≈ 10/30) well above chance. */
static void test_learns_communities(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    const enum cascade_twotower_objective modes[] = {
        CASCADE_TWOTOWER_LISTWISE, CASCADE_TWOTOWER_POINTWISE, CASCADE_TWOTOWER_TRIPLET_HINGE,
        CASCADE_TWOTOWER_TRIPLET_LOG};
    for (size_t i = 0; i < 4; i++) {
        struct cascade_train_twotower_opts o;
        struct cascade_train_twotower_summary s;
        char err[256];
        small_opts(&o);
        o.mode = modes[i];
        int rc = cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err));
        if (rc != 0)
            fail_msg("mode %d: %s", (int)modes[i], err);
        /* one example per distinct (user, item) click; the latest 20% held out */
        assert_true(s.examples > N_USERS * 6 && s.examples <= N_USERS * 12);
        assert_int_equal(s.holdout, (size_t)llround((double)s.examples * 0.2));
        assert_true(s.eval_users > 0);
        print_message("mode %d: held-out recall@10 %.3f over %zu users\n", (int)modes[i],
                      s.recall_at_k, s.eval_users);
        if (s.recall_at_k < 0.6)
            fail_msg("mode %d: held-out recall@10 %.3f, expected >= 0.6", (int)modes[i],
                     s.recall_at_k);
    }
    cascade_dataset_destroy(ds);
}

static void test_seeded(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary a, b, c;
    char err[256];
    small_opts(&o);
    o.epochs = 3;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &a, NULL, err, sizeof(err)), 0);
    assert_int_equal(cascade_train_twotower_run(ds, &o, &b, NULL, err, sizeof(err)), 0);
    assert_true(a.final_loss == b.final_loss);
    assert_true(a.recall_at_k == b.recall_at_k);
    o.seed = 2;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &c, NULL, err, sizeof(err)), 0);
    assert_true(a.final_loss != c.final_loss);
    cascade_dataset_destroy(ds);
}

/* Largest absolute difference between the same-named parameters of a and b. */
static float max_param_diff(cascade_twotower *a, cascade_twotower *b)
{
    cascade_nn_params *pa = cascade_twotower_params(a), *pb = cascade_twotower_params(b);
    float worst = 0;
    for (size_t i = 0; i < cascade_nn_params_count(pa); i++) {
        const struct cascade_nn_param *x = cascade_nn_params_at(pa, i);
        const struct cascade_nn_param *y = cascade_nn_params_find(pb, x->name);
        assert_non_null(y);
        assert_int_equal(x->size, y->size);
        for (size_t k = 0; k < x->size; k++) {
            float d = fabsf(x->value[k] - y->value[k]);
            worst = d > worst ? d : worst;
        }
    }
    return worst;
}

/* Warm start: a second run starts from the published version (rows carried
 * over by id), --no-warm-start does not, and an id the previous version did
 * not know keeps its fresh row. */
static void test_warm_start(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary a, b, c, d;
    cascade_twotower *ma = NULL, *mb = NULL, *mc = NULL;
    char err[512], dir[256];
    small_opts(&o);
    o.epochs = 3;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    o.model_dir = dir;
    /* Every version is published whatever its recall (the seed-7 model at a
     * learning rate of 1e-9 is no model): this tests the warm start, the
     * gate has its own tests (test_train_gate). */
    o.gate.force = true;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &a, &ma, err, sizeof(err)), 0);
    assert_string_equal(a.warm_from, "");
    /* Another seed and a learning rate too small to move: the weights are
     * the first version's, every embedding row found by id (60 users, 40
     * items in the item and history tables, 2 authors, 2 categories). */
    o.seed = 7;
    o.lr = 1e-9f;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &b, &mb, err, sizeof(err)), 0);
    assert_string_equal(b.warm_from, a.version);
    assert_int_equal(b.warm_rows_carried, N_USERS + 2 * N_ITEMS + 2 + 2);
    assert_int_equal(b.warm_rows_fresh, 0);
    assert_true(max_param_diff(ma, mb) < 1e-5f);
    /* Without warm start the other seed gives other weights. */
    o.warm_start = false;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &c, &mc, err, sizeof(err)), 0);
    assert_string_equal(c.warm_from, "");
    assert_true(max_param_diff(ma, mc) > 1e-3f);
    /* A new item (author 7, category 1) clicked once: its item and history
     * rows are fresh, everything else is carried over. */
    struct cascade_ds_item extra = {.id = 9990, .author_id = 7, .category = 1, .created_at = 1000};
    assert_int_equal(cascade_dataset_add_item(ds, &extra, NULL), 0);
    assert_int_equal(cascade_dataset_add_event(ds, 30000, "u0", 9990, CASCADE_EV_CLICK, 0), 0);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    o.warm_start = true;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &d, NULL, err, sizeof(err)), 0);
    assert_string_equal(d.warm_from, c.version);
    assert_int_equal(d.warm_rows_carried, N_USERS + 2 * N_ITEMS + 2 + 2);
    assert_int_equal(d.warm_rows_fresh, 2);
    /* Other widths: noted, fresh start, still trains. */
    o.emb_dim = 4;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &d, NULL, err, sizeof(err)), 0);
    assert_string_equal(d.warm_from, "");
    cascade_twotower_destroy(ma);
    cascade_twotower_destroy(mb);
    cascade_twotower_destroy(mc);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
}

static void read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* The published index holds every item's vector from the saved model; a
 * user of community 0 (history from community 0) finds community 0 first. */
static void test_publish(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary s;
    char err[512], dir[256], path[600], text[256];
    small_opts(&o);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    o.model_dir = dir;
    cascade_twotower *trained = NULL;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, &trained, err, sizeof(err)), 0);
    assert_non_null(trained);
    assert_true(strncmp(s.version, "two-tower-", 10) == 0);
    /* The exported index reports its IVF recall against exact search; on
     * this small catalogue the default nprobe probes every list. */
    assert_true(s.ivf_nlist > 0 && s.ivf_nprobe > 0 && s.ivf_nprobe <= s.ivf_nlist);
    if (s.ivf_nprobe == s.ivf_nlist)
        assert_true(s.ivf_recall == 1.0);
    assert_true(s.ivf_recall >= 0.95 && s.ivf_recall <= 1.0);
    snprintf(path, sizeof(path), "%s/two-tower.latest", dir);
    read_text(path, text, sizeof(text));
    assert_true(strncmp(text, s.version, strlen(s.version)) == 0);

    cascade_twotower *m = NULL;
    assert_int_equal(cascade_twotower_load(s.model_path, &m, err, sizeof(err)), 0);
    cascade_vindex *ix = cascade_vindex_load(s.items_path, err, sizeof(err));
    if (!ix)
        fail_msg("%s", err);
    assert_int_equal(cascade_vindex_size(ix), N_ITEMS);
    assert_int_equal(cascade_vindex_dim(ix), o.out_dim);
    assert_string_equal(cascade_vindex_version(ix), s.version);

    /* A user of community 0 with a community-0 history (item rows 1..3). */
    const uint32_t hist[] = {1, 2, 3};
    struct cascade_twotower_user u = {.user_id = 1, .history = hist, .n_history = 3};
    float uv[8], want[8];
    assert_int_equal(cascade_twotower_user_vectors(m, &u, 1, uv, err, sizeof(err)), 0);
    assert_int_equal(cascade_twotower_user_vectors(trained, &u, 1, want, err, sizeof(err)), 0);
    for (size_t i = 0; i < 8; i++)
        assert_true(uv[i] == want[i]); /* the saved model is the trained one */
    uint64_t ids[10];
    float scores[10];
    assert_int_equal(cascade_vindex_search_exact(ix, uv, 1, 8, 10, ids, scores, err, sizeof(err)),
                     0);
    size_t own = 0;
    for (size_t i = 0; i < 10; i++)
        own += ids[i] >= 10 && ids[i] <= 200;
    if (own < 8)
        fail_msg("only %zu of the top 10 are community-0 items", own);

    /* The maps name every item with its row. */
    FILE *f = fopen(s.maps_path, "r");
    assert_non_null(f);
    char line[256];
    size_t items = 0;
    bool found40 = false;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "item\t", 5) == 0)
            items++;
        if (strcmp(line, "item\t400\t40\n") == 0)
            found40 = true;
    }
    fclose(f);
    assert_int_equal(items, N_ITEMS);
    assert_true(found40);

    cascade_vindex_destroy(ix);
    cascade_twotower_destroy(m);
    cascade_twotower_destroy(trained);
    cascade_dataset_destroy(ds);
    test_rmdir(dir);
}

static void test_rejects(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary s;
    char err[256];
    small_opts(&o);
    o.mode = CASCADE_TWOTOWER_TRIPLET_HINGE;
    o.n_neg = 0;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "--negatives"));
    small_opts(&o);
    memset(&o.weights, 0, sizeof(o.weights)); /* nothing is a positive */
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), CASCADE_EDATA);
    assert_non_null(strstr(err, "no positive events"));
    cascade_dataset_destroy(ds);
}

/* ------------------------------------------------------------ incremental */

#define TT_BASE_LAST_TS 25059 /* the newest event of two_communities() */

/* New items 41..46 (ids 410..460, author 9, category 3), and four clicks of
 * them by every community-0 user after the base data, one per round. */
static void add_new_item_clicks(cascade_dataset *ds)
{
    for (int i = 41; i <= 46; i++) {
        struct cascade_ds_item it = {
            .id = (uint64_t)i * 10, .author_id = 9, .category = 3, .created_at = 29000};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    for (int k = 0; k < 4; k++)
        for (int u = 0; u < N_USERS; u += 2) {
            char uid[16];
            snprintf(uid, sizeof(uid), "u%d", u);
            uint64_t item = (uint64_t)(41 + (u / 2 + k) % 6) * 10;
            assert_int_equal(
                cascade_dataset_add_event(ds, 30000 + k * 100 + u, uid, item, CASCADE_EV_CLICK, 0),
                0);
        }
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
}

/* Interest drift against the held-out data: every community-0 user first
 * clicks five community-1 items, then (the newest, held out) two community-0
 * items it had not clicked. Training on the first part pulls the users away
 * from what they click last. */
static void add_drift_clicks(cascade_dataset *ds)
{
    for (int u = 0; u < N_USERS; u += 2) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%d", u);
        for (int k = 0; k < 5; k++)
            assert_int_equal(cascade_dataset_add_event(ds, 30000 + k * 100 + u, uid,
                                                       (uint64_t)(21 + k * 3) * 10,
                                                       CASCADE_EV_CLICK, 0),
                             0);
        /* Two community-0 items the user never clicked before the base's end. */
        size_t n_clicked = 0;
        uint64_t fresh[2];
        for (int i = 1; i <= 20 && n_clicked < 2; i++) {
            bool clicked = false;
            for (size_t e = 0; e < ds->n_events && !clicked; e++)
                clicked = ds->events[e].type == CASCADE_EV_CLICK &&
                          strcmp(ds->users[ds->events[e].user].id, uid) == 0 &&
                          ds->items[ds->events[e].item].id == (uint64_t)i * 10;
            if (!clicked)
                fresh[n_clicked++] = (uint64_t)i * 10;
        }
        assert_int_equal(n_clicked, 2);
        for (size_t k = 0; k < 2; k++)
            assert_int_equal(cascade_dataset_add_event(ds, 40000 + (int64_t)k * 100 + u, uid,
                                                       fresh[k], CASCADE_EV_CLICK, 0),
                             0);
    }
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
}

static bool rows_equal(const struct cascade_nn_param *a, const struct cascade_nn_param *b,
                       size_t row)
{
    return memcmp(a->value + row * a->cols, b->value + row * b->cols, a->cols * sizeof(float)) == 0;
}

/* The published full model A, then --incremental runs from it: a drift
 * run whose held-out recall on the newest events falls below A's is
 * refused (two-tower.latest stays), a run on clicks of new items beats A on
 * the newest events and is published; its dense layers are A's bit for bit,
 * only the id embeddings of users and items in the new events moved. */
static void test_incremental(void **state)
{
    (void)state;
    cascade_dataset *base = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary a, bad, good;
    struct cascade_gate_record rec;
    cascade_twotower *ma = NULL, *mi = NULL, *fresh = NULL;
    char err[1024], dir[256], path[700], text[1200];
    small_opts(&o);
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    o.model_dir = dir;
    o.gate.force = true; /* the base model only has to exist */
    assert_int_equal(cascade_train_twotower_run(base, &o, &a, &ma, err, sizeof(err)), 0);
    cascade_dataset_destroy(base);
    snprintf(path, sizeof(path), "%s/two-tower.latest", dir);

    /* Nothing published in another directory: a readable refusal. */
    struct cascade_train_twotower_opts none = o;
    char empty[256];
    assert_non_null(test_tempdir(empty, sizeof(empty)));
    none.model_dir = empty;
    none.incremental = true;
    cascade_dataset *ds = two_communities();
    assert_int_equal(cascade_train_twotower_run(ds, &none, &bad, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "needs a published two-tower version"));
    /* No events after the published version's newest: nothing to update. */
    o.gate.force = false;
    o.incremental = true;
    o.emb_dim = 4; /* ignored: the published widths are used */
    assert_int_equal(cascade_train_twotower_run(ds, &o, &bad, NULL, err, sizeof(err)),
                     CASCADE_EDATA);
    assert_non_null(strstr(err, "nothing to update"));
    cascade_dataset_destroy(ds);

    /* Drift: worse than A on the newest events, refused. */
    ds = two_communities();
    add_drift_clicks(ds);
    o.epochs = 1;
    o.holdout_frac = 2.0 / 7.0; /* the two last clicks of each user */
    int rc = cascade_train_twotower_run(ds, &o, &bad, NULL, err, sizeof(err));
    if (rc != 0)
        fail_msg("drift run: %d %s", rc, err);
    assert_int_equal(bad.since_ts, TT_BASE_LAST_TS);
    assert_int_equal(bad.new_examples, 7 * N_USERS / 2);
    assert_int_equal(bad.holdout, 2 * N_USERS / 2);
    assert_false(bad.gate.publish);
    snprintf(text, sizeof(text), "%s.gate.json", bad.model_path);
    assert_int_equal(cascade_gate_record_read(text, &rec, err, sizeof(err)), 0);
    print_message("drift: recall@10 %.3f, published %.3f\n", rec.value, rec.current_value);
    assert_true(rec.has_current && rec.value < rec.current_value - o.gate.tolerance);
    read_text(path, text, sizeof(text));
    assert_true(strncmp(text, a.version, strlen(a.version)) == 0);
    cascade_dataset_destroy(ds);

    /* New items: better than A on the newest events, published. */
    ds = two_communities();
    add_new_item_clicks(ds);
    o.epochs = 5;
    o.holdout_frac = 0.25; /* the fourth click of each user */
    assert_int_equal(cascade_train_twotower_run(ds, &o, &good, &mi, err, sizeof(err)), 0);
    assert_string_equal(good.warm_from, a.version);
    assert_int_equal(good.new_examples, 4 * N_USERS / 2);
    snprintf(text, sizeof(text), "%s.gate.json", good.model_path);
    assert_int_equal(cascade_gate_record_read(text, &rec, err, sizeof(err)), 0);
    print_message("new items: recall@10 %.3f, published %.3f\n", rec.value, rec.current_value);
    assert_true(good.gate.publish);
    assert_true(rec.has_current && rec.value > rec.current_value);
    read_text(path, text, sizeof(text));
    assert_true(strncmp(text, good.version, strlen(good.version)) == 0);

    /* Dense layers and bucket tables frozen, bit-identical to A; only the
     * id tables train. */
    cascade_nn_params *pa = cascade_twotower_params(ma), *pi = cascade_twotower_params(mi);
    size_t frozen = 0;
    for (size_t i = 0; i < cascade_nn_params_count(pi); i++) {
        const struct cascade_nn_param *x = cascade_nn_params_at(pi, i);
        bool id_table = strstr(x->name, "user_id") || strstr(x->name, "item_id") ||
                        strstr(x->name, "history") || strstr(x->name, "author") ||
                        strstr(x->name, "category") || strstr(x->name, "city");
        if (id_table) {
            assert_false(x->frozen);
            continue;
        }
        const struct cascade_nn_param *y = cascade_nn_params_find(pa, x->name);
        assert_non_null(y);
        assert_int_equal(x->size, y->size);
        if (memcmp(x->value, y->value, x->size * sizeof(float)) != 0)
            fail_msg("%s changed in an incremental update", x->name);
        assert_true(x->frozen);
        frozen++;
    }
    assert_true(frozen >= 4); /* fc1/fc2 weight and bias of both towers at least */
    assert_int_equal(good.frozen_params, frozen);
    /* Users: rows 1..60 in both; those who clicked moved, the others did not. */
    const struct cascade_nn_param *ua = cascade_nn_params_find(pa, "user.user_id.weight");
    const struct cascade_nn_param *ui = cascade_nn_params_find(pi, "user.user_id.weight");
    for (size_t u = 0; u < N_USERS; u++)
        assert_true(rows_equal(ua, ui, u + 1) == (u % 2 == 1));
    /* New items (rows 41..46) moved from their fresh initialisation. */
    struct cascade_twotower_config cfg = *cascade_twotower_config_get(mi);
    assert_int_equal(cascade_twotower_create(&cfg, &fresh, err, sizeof(err)), 0);
    const struct cascade_nn_param *it0 =
        cascade_nn_params_find(cascade_twotower_params(fresh), "item.item_id.weight");
    const struct cascade_nn_param *iti = cascade_nn_params_find(pi, "item.item_id.weight");
    for (size_t r = 41; r <= 46; r++)
        assert_false(rows_equal(it0, iti, r));

    cascade_twotower_destroy(fresh);
    cascade_twotower_destroy(ma);
    cascade_twotower_destroy(mi);
    cascade_dataset_destroy(ds);
    test_rmdir(empty);
    test_rmdir(dir);
}

/* ------------------------------------------------------------ hard negatives */

/* Hard candidates as pairs: every item each user saw or clicked (all
 * excluded: exposures and positives), plus with `others` every item of the
 * other community (never clicked; with holdout 0 only the shown ones are
 * excluded). */
static void hard_pairs(const cascade_dataset *ds, bool others, struct cascade_tt_hardneg *h)
{
    char path[64];
    memset(h, 0, sizeof(*h));
    snprintf(path, sizeof(path), "/tmp/tt_hard_%d.tsv", (int)getpid());
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    for (size_t e = 0; e < ds->n_events; e++)
        fprintf(out, "%s\t%llu\n", ds->users[ds->events[e].user].id,
                (unsigned long long)ds->items[ds->events[e].item].id);
    for (int u = 0; others && u < N_USERS; u++)
        for (int i = 1; i <= 20; i++)
            fprintf(out, "u%d\t%d\n", u, (i + (1 - u % 2) * 20) * 10);
    fclose(out);
    char err[256];
    assert_int_equal(cascade_tt_hardneg_read_file(h, ds, path, err, sizeof(err)), 0);
    assert_int_equal(cascade_tt_hardneg_finish(h, ds), 0);
    remove(path);
}

/* With hard_ratio 0.25 and 4 negatives, each example draws one hard negative
 * whenever its user has an eligible candidate; candidates that are the
 * user's exposures or positives are never drawn. */
static void test_hard_negatives_drawn(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary s;
    struct cascade_tt_hardneg h;
    char err[256];
    small_opts(&o);
    o.epochs = 2;
    o.holdout_frac = 0; /* every exposure precedes the split: all are exclusions */
    o.hard_ratio = 0.25;

    hard_pairs(ds, false, &h);
    o.hard = &h;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(s.hard_users, 0);
    assert_int_equal(s.hard_drawn, 0);
    cascade_tt_hardneg_free(&h);

    hard_pairs(ds, true, &h);
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(s.hard_users, N_USERS);
    assert_int_equal(s.hard_drawn, o.epochs * s.train);
    /* Ratio 0, or no candidates: easy negatives only, as before. */
    o.hard_ratio = 0;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(s.hard_drawn, 0);
    o.hard = NULL;
    o.hard_ratio = 0.25;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(s.hard_drawn, 0);
    o.hard = &h;
    o.hard_ratio = 1.5;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "--hard-ratio"));
    cascade_tt_hardneg_free(&h);
    cascade_dataset_destroy(ds);
}

static void write_text(const char *path, const char *text);

/* A user whose exclusions hold every clicked item leaves the easy sampler
 * nothing: its one hard negative, an item nobody clicked (q = 0), fills the
 * remaining slots with its own log q, so the loss stays finite. */
static void test_hard_negatives_short_draw(void **state)
{
    (void)state;
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_train_twotower_opts o;
    struct cascade_train_twotower_summary s;
    struct cascade_tt_hardneg h = {0};
    char path[64], err[256];
    assert_non_null(ds);
    for (uint64_t i = 1; i <= 5; i++) {
        struct cascade_ds_item it = {.id = i, .author_id = 1, .category = 1, .created_at = 1};
        assert_int_equal(cascade_dataset_add_item(ds, &it, NULL), 0);
    }
    struct cascade_ds_user u = {.id = "a"};
    assert_int_equal(cascade_dataset_add_user(ds, &u, NULL), 0);
    for (uint64_t i = 1; i <= 4; i++)
        assert_int_equal(
            cascade_dataset_add_event(ds, 100 + (int64_t)i, "a", i, CASCADE_EV_CLICK, 0), 0);
    assert_int_equal(cascade_dataset_sort_events(ds), 0);
    snprintf(path, sizeof(path), "/tmp/tt_hardshort_%d.tsv", (int)getpid());
    write_text(path, "a\t5\n");
    assert_int_equal(cascade_tt_hardneg_read_file(&h, ds, path, err, sizeof(err)), 0);
    assert_int_equal(cascade_tt_hardneg_finish(&h, ds), 0);
    remove(path);
    small_opts(&o);
    o.epochs = 2;
    o.holdout_frac = 0;
    o.hard = &h;
    o.hard_ratio = 0.25;
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)), 0);
    assert_int_equal(s.hard_drawn, o.epochs * 4);
    assert_true(isfinite(s.final_loss));
    cascade_tt_hardneg_free(&h);
    cascade_dataset_destroy(ds);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The TSV reader: comments and blank lines skipped, unknown users and items
 * counted, duplicates merged; a malformed line names file and line. */
static void test_hard_file(void **state)
{
    (void)state;
    cascade_dataset *ds = two_communities();
    struct cascade_tt_hardneg h = {0};
    char path[64], err[256];
    size_t n;
    snprintf(path, sizeof(path), "/tmp/tt_hardfile_%d.tsv", (int)getpid());
    write_text(path, "# user\titem\n\nu1\t250\nu1\t250\nu1\t260\r\nnobody\t10\nu2\t999\n");
    assert_int_equal(cascade_tt_hardneg_read_file(&h, ds, path, err, sizeof(err)), 0);
    assert_int_equal(h.read, 5);
    assert_int_equal(h.unknown_users, 1);
    assert_int_equal(h.unknown_items, 1);
    assert_int_equal(cascade_tt_hardneg_finish(&h, ds), 0);
    long u1 = cascade_dataset_find_user(ds, "u1");
    const uint32_t *rows = cascade_tt_hardneg_of(&h, (uint32_t)u1, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ds->items[rows[0] - 1].id, 250);
    assert_int_equal(ds->items[rows[1] - 1].id, 260);
    assert_null(cascade_tt_hardneg_of(&h, (uint32_t)cascade_dataset_find_user(ds, "u2"), &n));
    cascade_tt_hardneg_free(&h);

    static const char *bad[] = {"u1\t10\nu1 10\n", "u1\t10\nu1\tten\n", "u1\t10\nu1\t0\n",
                                "u1\t10\nu1\t10\t3\n", "u1\t10\n\t10\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[96];
        write_text(path, bad[i]);
        assert_int_equal(cascade_tt_hardneg_read_file(&h, ds, path, err, sizeof(err)),
                         CASCADE_EINVAL);
        snprintf(want, sizeof(want), "%s:2: expected user_id<TAB>item_id", path);
        assert_non_null(strstr(err, want));
        cascade_tt_hardneg_free(&h);
    }
    remove(path);
    assert_int_equal(cascade_tt_hardneg_read_file(&h, ds, path, err, sizeof(err)), CASCADE_EIO);
    cascade_dataset_destroy(ds);
}

static void lpush(cascade_redis *r, const char *user, const char *value)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "LPUSH %s %s",
                                           cascade_key_user_hardneg(key, "t", user), value),
                     0);
    freeReplyObject(rep);
}

/* The Redis reader: every user's list, pipelined in batches (batch 7 over 60
 * users), unknown items counted; a bad element names the key and index. */
static void test_hard_redis(void **state)
{
    (void)state;
    struct test_redis_fixture fx;
    assert_int_equal(test_redis_fixture_start(&fx), 0);
    cascade_dataset *ds = two_communities();
    struct cascade_tt_hardneg h = {0};
    char err[256];
    size_t n;
    lpush(fx.conn, "u3", "300");
    lpush(fx.conn, "u3", "310");
    lpush(fx.conn, "u59", "12345");
    lpush(fx.conn, "u59", "20");
    assert_int_equal(cascade_tt_hardneg_read_redis(&h, ds, fx.conn, "t", 7, err, sizeof(err)), 0);
    assert_int_equal(h.read, 4);
    assert_int_equal(h.unknown_items, 1);
    assert_int_equal(cascade_tt_hardneg_finish(&h, ds), 0);
    assert_non_null(cascade_tt_hardneg_of(&h, (uint32_t)cascade_dataset_find_user(ds, "u3"), &n));
    assert_int_equal(n, 2);
    const uint32_t *rows =
        cascade_tt_hardneg_of(&h, (uint32_t)cascade_dataset_find_user(ds, "u59"), &n);
    assert_int_equal(n, 1);
    assert_int_equal(ds->items[rows[0] - 1].id, 20);
    cascade_tt_hardneg_free(&h);

    lpush(fx.conn, "u4", "oops");
    lpush(fx.conn, "u4", "40");
    assert_int_equal(cascade_tt_hardneg_read_redis(&h, ds, fx.conn, "t", 7, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "t:user:u4:hardneg[1]: not an item id"));
    cascade_tt_hardneg_free(&h);
    /* The connection stayed in step: the next command works. */
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx.conn, &rep, "PING"), 0);
    freeReplyObject(rep);
    cascade_dataset_destroy(ds);
    test_redis_fixture_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_learns_communities),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_warm_start),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_hard_negatives_drawn),
        cmocka_unit_test(test_hard_negatives_short_draw),
        cmocka_unit_test(test_hard_file),
        cmocka_unit_test(test_hard_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
