/* Tests of the PreRank stage with a hashed-feature model against a private
 * redis-server: scores equal a hand recomputation from the stored records
 * (known and unknown users and items), the heuristic fallback says so in
 * model_version, and the model is reloaded when prerank-lr.latest changes
 * (a bad model keeps the current one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "arena.h"
#include "config.h"
#include "error.h"
#include "hashlr.h"
#include "latest_file.h"
#include "messages.h"
#include "prerank.h"
#include "prerank_features.h"
#include "store.h"
#include "support.h"

#define NS "t"
#define BITS 12
#define NOW 1700000000
#define N_ITEMS 20

struct fixture {
    struct test_redis_fixture redis;
    cascade_arena *arena;
    cascade_v1_UserRecord user;
    cascade_v1_ItemRecord items[N_ITEMS + 1]; /* items[i] has id i (1..N_ITEMS) */
    char dir[256];
};

static void make_records(struct fixture *f)
{
    cascade_v1_UserRecord *u = &f->user;
    *u = (cascade_v1_UserRecord)cascade_v1_UserRecord_init_zero;
    snprintf(u->user_id, sizeof u->user_id, "alice");
    u->age = 27;
    u->gender = 1;
    u->city = 3;
    u->clicks = 40;
    u->affinities_count = 2;
    u->affinities[0] = (cascade_v1_CategoryAffinity){.category = 2, .weight = 5};
    u->affinities[1] = (cascade_v1_CategoryAffinity){.category = 4, .weight = 1};
    assert_int_equal(cascade_store_put_user(f->redis.conn, NS, u), 0);
    for (uint64_t i = 1; i <= N_ITEMS; i++) {
        cascade_v1_ItemRecord *it = &f->items[i];
        *it = (cascade_v1_ItemRecord)cascade_v1_ItemRecord_init_zero;
        it->item_id = i;
        it->author_id = 100 + i % 4;
        it->category = (uint32_t)(i % 5);
        it->city = i % 2 ? 3 : 9;
        it->created_at_s = NOW - (int64_t)i * 3600;
        it->media_type = 1 + i % 2;
        it->has_stats = true;
        it->stats.clicks = (uint32_t)(i * 3);
        it->stats.impressions = (uint32_t)(i * 40);
        assert_int_equal(cascade_store_put_item(f->redis.conn, NS, it), 0);
    }
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0 || !test_tempdir(f.dir, sizeof f.dir))
        return -1;
    make_records(&f);
    f.arena = cascade_arena_create(0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    test_redis_fixture_stop(&f->redis);
    test_rmdir(f->dir);
    return 0;
}

/* A model trained a little on alice's items (label: category 2), so that its
 * weights are non-zero and differ between items; `salt` varies the labels. */
static cascade_hashlr *toy_model(const struct fixture *f, const char *spec, unsigned salt)
{
    struct cascade_hashlr_train_opts o;
    struct cascade_prerank_user pu;
    uint32_t idx[CASCADE_PRERANK_FEATURES];
    cascade_hashlr_train_defaults(&o);
    o.learning_rate = 0.2f;
    cascade_hashlr *m = cascade_hashlr_create(BITS, spec);
    assert_non_null(m);
    cascade_prerank_user_prepare(&f->user, NULL, &pu);
    for (int round = 0; round < 5; round++)
        for (uint64_t i = 1; i <= N_ITEMS; i++) {
            cascade_prerank_features(&pu, &f->items[i], NOW, BITS, idx);
            float y = (f->items[i].category + salt) % 5 == 2 ? 1.0f : 0.0f;
            cascade_hashlr_update(m, idx, CASCADE_PRERANK_FEATURES, y, &o);
        }
    return m;
}

/* Save m as dir/<version>.safetensors and point prerank-lr.latest at it. */
static void publish(const struct fixture *f, const cascade_hashlr *m, const char *version)
{
    char path[512], latest[512], name[128], err[512] = "";
    snprintf(name, sizeof name, "%s.safetensors", version);
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    snprintf(latest, sizeof latest, "%s/%s", f->dir, CASCADE_PRERANK_LATEST_FILE);
    if (cascade_hashlr_save(m, path, version, err, sizeof err) != 0 ||
        cascade_latest_write(latest, name, err, sizeof err) != 0)
        fail_msg("publish: %s", err);
}

static cascade_prerank *make_prerank(struct fixture *f, const char *json, const char *dir)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_prerank *p = cascade_prerank_create(cfg, f->redis.pool, NS, dir, NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!p)
        fail_msg("cascade_prerank_create: %s", err);
    return p;
}

static Cascade__V1__PreRankResponse *run_arm(struct fixture *f, cascade_prerank *p, const char *uid,
                                             const uint64_t *ids, size_t n, const char *version);

static Cascade__V1__PreRankResponse *run(struct fixture *f, cascade_prerank *p, const char *uid,
                                         const uint64_t *ids, size_t n)
{
    return run_arm(f, p, uid, ids, n, NULL);
}

/* run with the experiment param prerank.model_version = version (NULL: none). */
static Cascade__V1__PreRankResponse *run_arm(struct fixture *f, cascade_prerank *p, const char *uid,
                                             const uint64_t *ids, size_t n, const char *version)
{
    char err[256] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    Cascade__V1__PreRankRequest *req = cascade_arena_alloc(f->arena, sizeof *req);
    cascade__v1__pre_rank_request__init(req);
    req->user = test_user_context(f->arena, uid, NOW);
    req->keep = (uint32_t)n;
    req->n_candidates = n;
    req->candidates = test_candidates(f->arena, ids, n);
    if (version)
        req->experiments =
            test_experiment(f->arena, "prerank", "arm", "prerank.model_version", version);
    if (cascade_prerank_run(p, f->arena, INT64_MAX, req, &resp, err, sizeof err) != 0)
        fail_msg("prerank: %s", err);
    assert_int_equal(resp->n_candidates, n);
    return resp;
}

/* What the model should give candidate id for user record u (NULL = unknown). */
static float hand_score(const struct fixture *f, const cascade_hashlr *m,
                        const cascade_v1_UserRecord *u, const char *uid, uint64_t id)
{
    struct cascade_prerank_user pu;
    uint32_t idx[CASCADE_PRERANK_FEATURES];
    cascade_v1_ItemRecord unknown = cascade_v1_ItemRecord_init_zero;
    unknown.item_id = id;
    cascade_prerank_user_prepare(u, uid, &pu);
    cascade_prerank_features(&pu, id <= N_ITEMS ? &f->items[id] : &unknown, NOW, BITS, idx);
    return cascade_hashlr_predict(m, idx, CASCADE_PRERANK_FEATURES);
}

static void check_scores(struct fixture *f, cascade_prerank *p, const cascade_hashlr *m,
                         const cascade_v1_UserRecord *u, const char *uid)
{
    uint64_t ids[N_ITEMS + 1];
    for (size_t i = 0; i < N_ITEMS; i++)
        ids[i] = i + 1;
    ids[N_ITEMS] = 777; /* no record */
    Cascade__V1__PreRankResponse *resp = run(f, p, uid, ids, N_ITEMS + 1);
    float distinct = resp->candidates[0]->prerank_score;
    bool varied = false;
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        assert_float_equal(c->prerank_score, hand_score(f, m, u, uid, c->item_id), 1e-7);
        if (i > 0)
            assert_true(resp->candidates[i - 1]->prerank_score >= c->prerank_score);
        varied |= c->prerank_score != distinct;
    }
    assert_true(varied); /* the model does tell the items apart */
}

static void test_model_scores_match_hand_recomputation(void **state)
{
    struct fixture *f = *state;
    cascade_hashlr *m = toy_model(f, CASCADE_PRERANK_SPEC, 0);
    publish(f, m, "prerank-lr-one");
    cascade_prerank *p = make_prerank(f, "{}", f->dir);
    char v[256];
    assert_string_equal(cascade_prerank_model_version(p, v, sizeof v), "prerank-lr-one");
    check_scores(f, p, m, &f->user, "alice");
    /* A user without a record: anonymous crosses named by the request's id. */
    check_scores(f, p, m, NULL, "nobody");
    const uint64_t one[] = {3};
    assert_string_equal(run(f, p, "alice", one, 1)->model_version, "prerank-lr-one");
    cascade_prerank_destroy(p);
    cascade_hashlr_destroy(m);
}

static void test_fallback_without_model(void **state)
{
    struct fixture *f = *state;
    char empty[256];
    assert_non_null(test_tempdir(empty, sizeof empty));
    cascade_prerank *with_dir = make_prerank(f, "{}", empty);
    cascade_prerank *no_dir = make_prerank(f, "{}", NULL);
    const uint64_t ids[] = {4, 9};
    struct cascade_prerank_weights w;
    cascade_prerank_weights_default(&w);
    Cascade__V1__PreRankResponse *resp = run(f, with_dir, "alice", ids, 2);
    assert_non_null(strstr(resp->model_version, "prerank-heuristic-v1"));
    assert_non_null(strstr(resp->model_version, "no model in"));
    assert_non_null(strstr(resp->model_version, empty));
    /* Heuristic scores: item 9 has more clicks at the same CTR. */
    assert_int_equal(resp->candidates[0]->item_id, 9);
    assert_float_equal(resp->candidates[0]->prerank_score,
                       cascade_prerank_score(&w, &f->items[9].stats, 0), 1e-6);
    assert_string_equal(run(f, no_dir, "alice", ids, 2)->model_version, "prerank-heuristic-v1");
    cascade_prerank_destroy(with_dir);
    cascade_prerank_destroy(no_dir);
    test_rmdir(empty);
}

static void test_reload_on_change(void **state)
{
    struct fixture *f = *state;
    char v[256], err[512];
    cascade_hashlr *m1 = toy_model(f, CASCADE_PRERANK_SPEC, 0);
    cascade_hashlr *m2 = toy_model(f, CASCADE_PRERANK_SPEC, 2);
    cascade_hashlr *alien = toy_model(f, "other-spec-v9", 0);
    publish(f, m1, "prerank-lr-a");
    /* reload_interval_ms 0: every request checks the pointer file. */
    cascade_prerank *p = make_prerank(f, "{\"prerank\": {\"reload_interval_ms\": 0}}", f->dir);
    assert_string_equal(cascade_prerank_model_version(p, v, sizeof v), "prerank-lr-a");
    publish(f, m2, "prerank-lr-b");
    const uint64_t ids[] = {1, 2, 3};
    assert_string_equal(run(f, p, "alice", ids, 3)->model_version, "prerank-lr-b");
    check_scores(f, p, m2, &f->user, "alice");
    /* A model with other features is refused; the current one stays. */
    publish(f, alien, "prerank-lr-c");
    assert_int_equal(cascade_prerank_reload(p, false, err, sizeof err), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "other-spec-v9"));
    assert_string_equal(cascade_prerank_model_version(p, v, sizeof v), "prerank-lr-b");
    /* A pointer to a missing file: an error, the current model stays. */
    char latest[512];
    snprintf(latest, sizeof latest, "%s/%s", f->dir, CASCADE_PRERANK_LATEST_FILE);
    assert_int_equal(cascade_latest_write(latest, "gone.safetensors", err, sizeof err), 0);
    assert_int_not_equal(cascade_prerank_reload(p, false, err, sizeof err), 0);
    assert_string_equal(run(f, p, "alice", ids, 3)->model_version, "prerank-lr-b");
    cascade_prerank_destroy(p);
    cascade_hashlr_destroy(m1);
    cascade_hashlr_destroy(m2);
    cascade_hashlr_destroy(alien);
}

/* Save m as dir/<version>.safetensors without touching prerank-lr.latest. */
static void save_version(const struct fixture *f, const cascade_hashlr *m, const char *version)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s.safetensors", f->dir, version);
    if (cascade_hashlr_save(m, path, version, err, sizeof err) != 0)
        fail_msg("save: %s", err);
}

static cascade_config *version_config(const char *experiment, const char *file)
{
    char json[512], err[256] = "";
    snprintf(json, sizeof json,
             "{\"experiments\": {\"layers\": [{\"name\": \"prerank\", \"experiments\": ["
             "{\"name\": \"%s\", \"ranges\": [[0, 9]], \"params\": "
             "{\"prerank.model_version\": \"%s\"}}]}]}}",
             experiment, file);
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    return cfg;
}

/* A model version per experiment arm: the files the experiments name in
 * prerank.model_version stay loaded beside prerank-lr.latest; a request of
 * that arm is scored with its version (scores equal the hand recomputation
 * with that model), any other with the latest; a reload changes the set; a
 * file that does not load is a config error and changes nothing. */
static void test_model_version_per_arm(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    cascade_hashlr *m1 = toy_model(f, CASCADE_PRERANK_SPEC, 0);
    cascade_hashlr *m2 = toy_model(f, CASCADE_PRERANK_SPEC, 2);
    cascade_hashlr *m3 = toy_model(f, CASCADE_PRERANK_SPEC, 5);
    publish(f, m1, "prerank-lr-v1");
    save_version(f, m2, "prerank-lr-v2");
    save_version(f, m3, "prerank-lr-v3");
    cascade_config *cfg = version_config("v2", "prerank-lr-v2.safetensors");
    cascade_prerank *p =
        cascade_prerank_create(cfg, f->redis.pool, NS, f->dir, NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!p)
        fail_msg("create: %s", err);
    uint64_t ids[N_ITEMS];
    for (size_t i = 0; i < N_ITEMS; i++)
        ids[i] = i + 1;
    Cascade__V1__PreRankResponse *resp =
        run_arm(f, p, "alice", ids, N_ITEMS, "prerank-lr-v2.safetensors");
    assert_string_equal(resp->model_version, "prerank-lr-v2");
    for (size_t i = 0; i < resp->n_candidates; i++)
        assert_float_equal(resp->candidates[i]->prerank_score,
                           hand_score(f, m2, &f->user, "alice", resp->candidates[i]->item_id),
                           1e-7);
    assert_string_equal(run(f, p, "alice", ids, N_ITEMS)->model_version, "prerank-lr-v1");
    check_scores(f, p, m1, &f->user, "alice");
    /* A version no experiment names is not loaded on demand. */
    assert_string_equal(
        run_arm(f, p, "alice", ids, N_ITEMS, "prerank-lr-v3.safetensors")->model_version,
        "prerank-lr-v1");

    /* Reload: version 3 joins, version 2 leaves. */
    cfg = version_config("v3", "prerank-lr-v3.safetensors");
    assert_int_equal(cascade_prerank_pin_versions(p, cfg, err, sizeof err), 0);
    cascade_config_destroy(cfg);
    assert_string_equal(
        run_arm(f, p, "alice", ids, N_ITEMS, "prerank-lr-v3.safetensors")->model_version,
        "prerank-lr-v3");
    assert_string_equal(
        run_arm(f, p, "alice", ids, N_ITEMS, "prerank-lr-v2.safetensors")->model_version,
        "prerank-lr-v1");

    /* A missing file or a name of no kind: refused, the set unchanged. */
    cfg = version_config("gone", "prerank-lr-404.safetensors");
    assert_int_equal(cascade_prerank_pin_versions(p, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "layer \"prerank\" experiment \"gone\": prerank.model_version "
                                "\"prerank-lr-404.safetensors\""));
    cascade_config_destroy(cfg);
    cfg = version_config("odd", "../prerank-lr-v1.safetensors");
    assert_int_equal(cascade_prerank_pin_versions(p, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "must be a file name in the model directory"));
    cascade_config_destroy(cfg);
    assert_string_equal(
        run_arm(f, p, "alice", ids, N_ITEMS, "prerank-lr-v3.safetensors")->model_version,
        "prerank-lr-v3");
    /* At create, a version that does not load refuses the config. */
    cfg = version_config("gone", "prerank-lr-404.safetensors");
    assert_null(cascade_prerank_create(cfg, f->redis.pool, NS, f->dir, NULL, err, sizeof err));
    assert_non_null(strstr(err, "prerank-lr-404.safetensors"));
    cascade_config_destroy(cfg);
    cascade_prerank_destroy(p);
    cascade_hashlr_destroy(m1);
    cascade_hashlr_destroy(m2);
    cascade_hashlr_destroy(m3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_scores_match_hand_recomputation),
        cmocka_unit_test(test_fallback_without_model),
        cmocka_unit_test(test_reload_on_change),
        cmocka_unit_test(test_model_version_per_arm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
