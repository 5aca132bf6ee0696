/* Tests of the Rank stage library against a private redis-server and model
 * files in a temp dir: the CTR heuristic without a model, p_click equal to
 * sigmoid(w·x + b) recomputed here from the features, fusion weights,
 * attributes and order, model swaps (explicit and on the request path,
 * under concurrent requests), bad models kept out, and validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "rank_features.h"
#include "lr.h"
#include "rank.h"
#include "store.h"
#include "messages.h"
#include "support.h"

#define NS "t"
#define NOW ((int64_t)1750000000)
#define N_ITEMS 6

struct fixture {
    struct test_redis_fixture redis;
    char dir[256];
    cascade_arena *arena;
    cascade_v1_UserRecord user;
    cascade_v1_ItemRecord items[N_ITEMS];
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0 || !test_tempdir(f.dir, sizeof f.dir))
        return -1;
    f.arena = cascade_arena_create(0);

    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    snprintf(u.user_id, sizeof u.user_id, "u1");
    u.age = 30;
    u.city = 5;
    u.interests_count = 1;
    u.interests[0] = 3;
    u.affinities_count = 2;
    u.affinities[0] = (cascade_v1_CategoryAffinity){3, 5.0f};
    u.affinities[1] = (cascade_v1_CategoryAffinity){4, 1.0f};
    u.interactions = 12;
    u.impressions = 100;
    u.clicks = 12;
    f.user = u;
    if (cascade_store_put_user(f.redis.conn, NS, &u) != 0)
        return -1;
    for (size_t i = 0; i < N_ITEMS; i++) {
        cascade_v1_ItemRecord r = cascade_v1_ItemRecord_init_zero;
        r.item_id = 10 + i;
        r.author_id = 500 + i % 2;
        r.category = (uint32_t)(3 + i % 3);
        r.created_at_s = NOW - (int64_t)(i + 1) * 86400;
        r.city = i % 2 ? 5 : 6;
        r.media_type = i % 2 ? 2 : 1;
        r.duration_s = i % 2 ? 30.0f + (float)i : 0;
        r.has_stats = true;
        r.stats.impressions = 100 * (uint32_t)(i + 1);
        r.stats.clicks = 7 * (uint32_t)(i * i % 5 + 1);
        r.stats.likes = (uint32_t)i;
        r.stats.plays = r.stats.clicks;
        r.stats.play_seconds = 10.0f * (float)i;
        f.items[i] = r;
        if (cascade_store_put_item(f.redis.conn, NS, &r) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    test_redis_fixture_stop(&f->redis);
    if (f->dir[0])
        test_rmdir(f->dir);
    return 0;
}

static cascade_rank *make_rank(struct fixture *f, const char *dir, const char *json)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_rank *r = cascade_rank_create(cfg, f->redis.pool, NS, dir, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!r)
        fail_msg("cascade_rank_create: %s", err);
    return r;
}

/* Save an LR model with weights w_i = scale·(i − 7.5)/8 and bias b. */
static void save_model(const char *dir, const char *name, float scale, float b)
{
    char path[512], err[256] = "";
    float w[CASCADE_RANK_FEATURES];
    for (size_t i = 0; i < CASCADE_RANK_FEATURES; i++)
        w[i] = scale * ((float)i - 7.5f) / 8.0f;
    cascade_lr *m = cascade_lr_create(CASCADE_RANK_FEATURES);
    assert_non_null(m);
    cascade_lr_set_weights(m, w, b);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cascade_lr_save(m, path, name, err, sizeof err) != 0)
        fail_msg("save: %s", err);
    cascade_lr_destroy(m);
}

/* Point <dir>/rank-lr.latest at name (write a temp file, then rename). */
static void set_latest(const char *dir, const char *name)
{
    char tmp[512], path[512];
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
    snprintf(path, sizeof path, "%s/%s", dir, CASCADE_RANK_LATEST_FILE);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", name);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0);
}

/* p_click the test expects for item i under the model saved with (scale, b). */
static double expected_p(const struct fixture *f, size_t i, float scale, float b)
{
    float x[CASCADE_RANK_FEATURES];
    cascade_features_rank(&f->user, &f->items[i], NOW, x);
    double z = b;
    for (size_t k = 0; k < CASCADE_RANK_FEATURES; k++)
        z += (double)(scale * ((float)k - 7.5f) / 8.0f) * x[k];
    return 1.0 / (1.0 + exp(-z));
}

static Cascade__V1__RankRequest *request(cascade_arena *a, const char *uid, uint32_t keep, size_t n)
{
    Cascade__V1__RankRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__rank_request__init(req);
    uint64_t *ids = cascade_arena_calloc(a, n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = 10 + i; /* the items seeded by setup (more are unknown) */
    req->user = test_user_context(a, uid, NOW);
    req->keep = keep;
    req->n_candidates = n;
    req->candidates = test_candidates(a, ids, n);
    return req;
}

static Cascade__V1__RankResponse *run_ok(cascade_rank *r, cascade_arena *a,
                                         Cascade__V1__RankRequest *req)
{
    char err[256] = "";
    Cascade__V1__RankResponse *resp = NULL;
    int rc = cascade_rank_run(r, a, INT64_MAX, req, &resp, err, sizeof err);
    if (rc != 0)
        fail_msg("rank: %s", err);
    return resp;
}

/* Check every returned candidate against the model (scale, b) and fusion
 * weight w_click, and that the list is sorted. */
static void check_scores(const struct fixture *f, const Cascade__V1__RankResponse *resp,
                         float scale, float b, double w_click)
{
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        size_t idx = c->item_id - 10;
        double p = expected_p(f, idx, scale, b);
        assert_float_equal(c->tasks->p_click, p, 1e-5);
        assert_float_equal(c->rank_score, w_click * p, 1e-5);
        if (i > 0)
            assert_true(resp->candidates[i - 1]->rank_score >= c->rank_score);
    }
}

static void test_heuristic_without_model(void **state)
{
    struct fixture *f = *state;
    cascade_rank *r = make_rank(f, f->dir, "{}");
    char expect[512], buf[512];
    snprintf(expect, sizeof expect, "heuristic: no model in %s", f->dir);
    assert_string_equal(cascade_rank_model_version(r, buf, sizeof buf), expect);
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, expect);
    assert_int_equal(resp->n_candidates, N_ITEMS);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        const cascade_v1_ItemStats *s = &f->items[c->item_id - 10].stats;
        double p = (s->clicks + 1.0) / (s->impressions + 20.0);
        assert_float_equal(c->tasks->p_click, p, 1e-6);
        assert_float_equal(c->rank_score, p, 1e-6);
        if (i > 0)
            assert_true(resp->candidates[i - 1]->rank_score >= c->rank_score);
    }
    cascade_rank_destroy(r);
}

static void test_model_scores_and_attrs(void **state)
{
    struct fixture *f = *state;
    save_model(f->dir, "rank-lr-1.safetensors", 1.0f, -0.5f);
    set_latest(f->dir, "rank-lr-1.safetensors");
    cascade_rank *r =
        make_rank(f, f->dir, "{\"rank\": {\"fusion\": {\"weights\": {\"click\": 2}}}}");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    assert_int_equal(resp->n_candidates, N_ITEMS);
    check_scores(f, resp, 1.0f, -0.5f, 2.0);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        const cascade_v1_ItemRecord *rec = &f->items[c->item_id - 10];
        assert_non_null(c->attrs);
        assert_int_equal(c->attrs->author_id, rec->author_id);
        assert_int_equal(c->attrs->category, rec->category);
        assert_int_equal(c->attrs->created_at_s, rec->created_at_s);
        assert_int_equal(c->attrs->media_type, rec->media_type);
        assert_float_equal(c->attrs->duration_s, rec->duration_s, 0);
    }
    /* keep cuts the sorted list */
    resp = run_ok(r, f->arena, request(f->arena, "u1", 2, N_ITEMS));
    assert_int_equal(resp->n_candidates, 2);
    check_scores(f, resp, 1.0f, -0.5f, 2.0);
    cascade_rank_destroy(r);
}

static void test_model_swap(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    save_model(f->dir, "rank-lr-1.safetensors", 1.0f, -0.5f);
    set_latest(f->dir, "rank-lr-1.safetensors");
    cascade_rank *r = make_rank(f, f->dir, "{}");
    check_scores(f, run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS)), 1.0f, -0.5f, 1.0);

    /* A new model: reload notices the changed .latest and swaps. */
    save_model(f->dir, "rank-lr-2.safetensors", -2.0f, 0.25f);
    set_latest(f->dir, "rank-lr-2.safetensors");
    assert_int_equal(cascade_rank_reload(r, false, err, sizeof err), 0);
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-2.safetensors");
    check_scores(f, resp, -2.0f, 0.25f, 1.0);

    /* A .latest naming a missing file: reload fails, model 2 stays. */
    set_latest(f->dir, "rank-lr-404.safetensors");
    assert_int_not_equal(cascade_rank_reload(r, false, err, sizeof err), 0);
    assert_non_null(strstr(err, "rank-lr-404.safetensors"));
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-2.safetensors");

    /* A model of the wrong width is refused too. */
    char path[512];
    snprintf(path, sizeof path, "%s/rank-lr-narrow.safetensors", f->dir);
    cascade_lr *narrow = cascade_lr_create(3);
    assert_int_equal(cascade_lr_save(narrow, path, "narrow", err, sizeof err), 0);
    cascade_lr_destroy(narrow);
    set_latest(f->dir, "rank-lr-narrow.safetensors");
    assert_int_equal(cascade_rank_reload(r, false, err, sizeof err), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "3 inputs"));
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-2.safetensors");
    cascade_rank_destroy(r);
}

static void test_reload_on_request_path(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/reqpath", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* reload_interval_ms 0: every request checks .latest. Starts without a model. */
    cascade_rank *r = make_rank(f, sub, "{\"rank\": {\"reload_interval_ms\": 0}}");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_non_null(strstr(resp->model_version, "heuristic"));
    save_model(sub, "rank-lr-7.safetensors", 0.5f, 0.0f);
    set_latest(sub, "rank-lr-7.safetensors");
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-7.safetensors");
    check_scores(f, resp, 0.5f, 0.0f, 1.0);
    cascade_rank_destroy(r);
}

struct worker {
    struct fixture *f;
    cascade_rank *r;
    int failures;
    int unknown_versions;
};

static void *request_loop(void *arg)
{
    struct worker *w = arg;
    cascade_arena *a = cascade_arena_create(0);
    for (int i = 0; i < 200; i++) {
        char err[256];
        Cascade__V1__RankResponse *resp = NULL;
        if (cascade_rank_run(w->r, a, INT64_MAX, request(a, "u1", 0, N_ITEMS), &resp, err,
                             sizeof err) != 0)
            w->failures++;
        else if (strcmp(resp->model_version, "rank-lr-1.safetensors") != 0 &&
                 strcmp(resp->model_version, "rank-lr-2.safetensors") != 0)
            w->unknown_versions++;
        cascade_arena_reset(a);
    }
    cascade_arena_destroy(a);
    return NULL;
}

/* Requests on two threads while the main thread swaps models back and forth:
 * none fails, each sees one of the two models. */
static void test_swap_under_load(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    save_model(f->dir, "rank-lr-1.safetensors", 1.0f, -0.5f);
    save_model(f->dir, "rank-lr-2.safetensors", -2.0f, 0.25f);
    set_latest(f->dir, "rank-lr-1.safetensors");
    cascade_rank *r = make_rank(f, f->dir, "{\"rank\": {\"reload_interval_ms\": 0}}");
    struct worker w[2] = {{f, r, 0, 0}, {f, r, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, request_loop, &w[i]), 0);
    for (int i = 0; i < 100; i++) {
        set_latest(f->dir, i % 2 ? "rank-lr-1.safetensors" : "rank-lr-2.safetensors");
        assert_int_equal(cascade_rank_reload(r, true, err, sizeof err), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(w[i].unknown_versions, 0);
    }
    cascade_rank_destroy(r);
}

static void expect_error(struct fixture *f, cascade_rank *r, Cascade__V1__RankRequest *req,
                         int code, const char *message)
{
    char err[256] = "";
    Cascade__V1__RankResponse *resp = NULL;
    assert_int_equal(cascade_rank_run(r, f->arena, INT64_MAX, req, &resp, err, sizeof err), code);
    assert_string_equal(err, message);
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    cascade_rank *r = make_rank(f, f->dir, "{\"rank\": {\"max_candidates\": 4}}");
    expect_error(f, r, request(f->arena, "", 0, 2), CASCADE_EINVAL, "user.user_id is empty");
    expect_error(f, r, request(f->arena, NULL, 0, 2), CASCADE_EINVAL, "user.user_id is empty");
    expect_error(f, r, request(f->arena, "u1", 0, 5), CASCADE_ETOOBIG,
                 "5 candidates exceed the limit of 4");
    expect_error(f, r, request(f->arena, "u1", 5, 2), CASCADE_EINVAL,
                 "keep 5 out of range 0..4 (0 = all)");
    char err[256] = "";
    Cascade__V1__RankResponse *resp = NULL;
    assert_int_equal(cascade_rank_run(r, f->arena, cascade_now_ms() - 1,
                                      request(f->arena, "u1", 0, 2), &resp, err, sizeof err),
                     CASCADE_ETIMEDOUT);
    cascade_rank_destroy(r);

    cascade_config *cfg = cascade_config_parse("{\"rank\": {\"fusion\": {\"formula\": \"magic\"}}}",
                                               "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_rank_create(cfg, f->redis.pool, NS, f->dir, err, sizeof err));
    assert_non_null(strstr(err, "unknown formula \"magic\" (known: weighted_sum)"));
    cascade_config_destroy(cfg);
}

static void test_unknown_user_and_item(void **state)
{
    struct fixture *f = *state;
    cascade_rank *r = make_rank(f, f->dir, "{}");
    Cascade__V1__RankRequest *req = request(f->arena, "stranger", 0, 2);
    req->candidates[1]->item_id = 99999; /* no record */
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, req);
    assert_int_equal(resp->n_candidates, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_true(isfinite(resp->candidates[i]->rank_score));
        assert_non_null(resp->candidates[i]->attrs);
    }
    cascade_rank_destroy(r);
}

static void test_redis_down_is_unavailable(void **state)
{
    struct fixture *f = *state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    char err[256] = "";
    cascade_rank *r = cascade_rank_create(NULL, dead, NS, f->dir, err, sizeof err);
    assert_non_null(r);
    Cascade__V1__RankResponse *resp = NULL;
    assert_int_equal(cascade_rank_run(r, f->arena, INT64_MAX, request(f->arena, "u1", 0, 2), &resp,
                                      err, sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "127.0.0.1"));
    cascade_rank_destroy(r);
    cascade_redis_pool_destroy(dead);
}

static void test_fusion_table(void **state)
{
    (void)state;
    assert_ptr_equal(cascade_rank_fusion_find("weighted_sum"), cascade_rank_fusion_weighted_sum);
    assert_null(cascade_rank_fusion_find("nope"));
    struct cascade_rank_fusion_params p = {.w_click = 1, .w_like = 2, .w_watch_time = 0.1};
    Cascade__V1__TaskScores t = CASCADE__V1__TASK_SCORES__INIT;
    t.p_click = 0.5f;
    t.p_like = 0.25f;
    t.watch_time_s = 10;
    const Cascade__V1__TaskScores *tasks[] = {&t};
    float out[1];
    assert_int_equal(cascade_rank_fusion_weighted_sum(&p, tasks, 1, out, NULL), 0);
    assert_float_equal(out[0], 0.5 + 0.5 + 1.0, 1e-6);
    size_t n = 0;
    assert_string_equal(cascade_rank_methods(&n)[0].path, "/cascade.v1.Rank/Score");
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heuristic_without_model),
        cmocka_unit_test(test_model_scores_and_attrs),
        cmocka_unit_test(test_model_swap),
        cmocka_unit_test(test_reload_on_request_path),
        cmocka_unit_test(test_swap_under_load),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_unknown_user_and_item),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_fusion_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
