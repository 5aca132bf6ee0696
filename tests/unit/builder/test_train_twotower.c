/* Unit tests for cascade-build train-two-tower: on a two-community world the
 * trained towers rank a user's own community first (held-out recall@K far
 * above chance), runs are reproducible per seed, and the published model,
 * id maps, item index and two-tower.latest agree with each other. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
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
    assert_int_equal(cascade_tt_user_age_bucket(0), 0);
    assert_int_equal(cascade_tt_user_age_bucket(17), 1);
    assert_int_equal(cascade_tt_user_age_bucket(30), 3);
    assert_int_equal(cascade_tt_user_age_bucket(80), CASCADE_TT_USER_AGE_BUCKETS - 1);
    assert_int_equal(cascade_tt_item_age_bucket(0, 100), 0);
    assert_int_equal(cascade_tt_item_age_bucket(100, 100 + 3600), 1);
    assert_int_equal(cascade_tt_item_age_bucket(100, 100 + 3 * 86400), 2);
    assert_int_equal(cascade_tt_item_age_bucket(100, 100 + 400 * 86400),
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
    assert_int_equal(cascade_train_twotower_run(ds, &o, &s, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "no positive events"));
    cascade_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets), cmocka_unit_test(test_learns_communities),
        cmocka_unit_test(test_seeded),  cmocka_unit_test(test_publish),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
