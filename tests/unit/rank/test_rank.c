/* Tests of the Rank stage library against a private redis-server and model
 * files in a temp dir: the CTR heuristic without a model, p_click equal to
 * sigmoid(w·x + b) recomputed here from the features, fusion weights,
 * attributes and order, model swaps (explicit and on the request path,
 * under concurrent requests), bad models kept out, and validation; the MMoE
 * (every task, calibration, completion adjustment, swap from LR) and the
 * fusion formulas on hand examples; the model picked per request by the
 * experiment param rank.model among every kind published. */
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
#include "calibration.h"
#include "gbdt.h"
#include "latest_file.h"
#include "ltr_features.h"
#include "lr.h"
#include "metrics.h"
#include "mmoe.h"
#include "rank.h"
#include "rank_internal.h"
#include "safetensors.h"
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
    u.affinities[0] = (cascade_v1_CategoryAffinity){.category = 3, .weight = 5.0f};
    u.affinities[1] = (cascade_v1_CategoryAffinity){.category = 4, .weight = 1.0f};
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

static cascade_rank *make_rank_metrics(struct fixture *f, const char *dir, const char *json,
                                       cascade_metrics *metrics)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_rank *r = cascade_rank_create(cfg, f->redis.pool, NS, dir, metrics, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!r)
        fail_msg("cascade_rank_create: %s", err);
    return r;
}

static cascade_rank *make_rank(struct fixture *f, const char *dir, const char *json)
{
    return make_rank_metrics(f, dir, json, NULL);
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

/* Point <dir>/<file> at name (write a temp file, then rename). */
static void set_latest_file(const char *dir, const char *file, const char *name)
{
    char tmp[512], path[512];
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", name);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0);
}

/* Point <dir>/rank-lr.latest at name. */
static void set_latest(const char *dir, const char *name)
{
    set_latest_file(dir, CASCADE_RANK_LATEST_FILE, name);
}

/* Make <temp dir>/<leaf> (path into sub) with the LR of (1.0, -0.5) published
 * as rank-lr-1.safetensors. */
static void lr_dir(struct fixture *f, const char *leaf, char *sub, size_t len)
{
    snprintf(sub, len, "%s/%s", f->dir, leaf);
    assert_int_equal(mkdir(sub, 0700), 0);
    save_model(sub, "rank-lr-1.safetensors", 1.0f, -0.5f);
    set_latest(sub, "rank-lr-1.safetensors");
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
    const char *v1, *v2; /* the versions a response may carry */
    int mixed;           /* MMoE versions whose scores lack a watch time */
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
        else if (strcmp(resp->model_version, w->v1) != 0 && strcmp(resp->model_version, w->v2) != 0)
            w->unknown_versions++;
        else if (strncmp(resp->model_version, "rank-mmoe-", 10) == 0)
            for (size_t k = 0; k < resp->n_candidates; k++)
                w->mixed += !(resp->candidates[k]->tasks->watch_time_s > 0);
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
    struct worker w[2] = {{f, r, 0, 0, "rank-lr-1.safetensors", "rank-lr-2.safetensors", 0},
                          {f, r, 0, 0, "rank-lr-1.safetensors", "rank-lr-2.safetensors", 0}};
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

static void save_mmoe(const char *dir, const char *name, uint64_t seed, const char *alpha,
                      const char *buckets);

/* The same with MMoE models: two versions swapped under two request
 * threads; no request fails, and each sees a whole MMoE (every task). */
static void test_mmoe_swap_under_load(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", sub[512];
    snprintf(sub, sizeof sub, "%s/mmoeload", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    save_mmoe(sub, "rank-mmoe-2.safetensors", 12, "0.5", "30:0.4,inf:0.2");
    save_mmoe(sub, "rank-mmoe-1.safetensors", 11, "1", "");
    cascade_rank *r = make_rank(f, sub, "{\"rank\": {\"reload_interval_ms\": 0}}");
    struct worker w[2] = {{f, r, 0, 0, "rank-mmoe-1.safetensors", "rank-mmoe-2.safetensors", 0},
                          {f, r, 0, 0, "rank-mmoe-1.safetensors", "rank-mmoe-2.safetensors", 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, request_loop, &w[i]), 0);
    for (int i = 0; i < 100; i++) {
        set_latest_file(sub, CASCADE_RANK_MMOE_LATEST_FILE,
                        i % 2 ? "rank-mmoe-1.safetensors" : "rank-mmoe-2.safetensors");
        assert_int_equal(cascade_rank_reload(r, true, err, sizeof err), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(w[i].unknown_versions, 0);
        assert_int_equal(w[i].mixed, 0);
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
    /* Bounds (common/request.h): a channel hit's name must be UTF-8. */
    Cascade__V1__RankRequest *bad = request(f->arena, "u1", 0, 2);
    Cascade__V1__ChannelHit *hit = cascade_arena_alloc(f->arena, sizeof *hit);
    cascade__v1__channel_hit__init(hit);
    hit->channel = "hot\xed\xa0\x80"; /* a surrogate */
    bad->candidates[1]->channels = cascade_arena_calloc(f->arena, 1, sizeof *hit);
    bad->candidates[1]->channels[0] = hit;
    bad->candidates[1]->n_channels = 1;
    expect_error(f, r, bad, CASCADE_EINVAL, "candidates[1].channels[0].channel is not valid UTF-8");
    bad = request(f->arena, "u1\xff", 0, 2);
    expect_error(f, r, bad, CASCADE_EINVAL, "user.user_id is not valid UTF-8");
    char err[256] = "";
    Cascade__V1__RankResponse *resp = NULL;
    assert_int_equal(cascade_rank_run(r, f->arena, cascade_now_ms() - 1,
                                      request(f->arena, "u1", 0, 2), &resp, err, sizeof err),
                     CASCADE_ETIMEDOUT);
    cascade_rank_destroy(r);

    cascade_config *cfg = cascade_config_parse("{\"rank\": {\"fusion\": {\"formula\": \"magic\"}}}",
                                               "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_rank_create(cfg, f->redis.pool, NS, f->dir, NULL, err, sizeof err));
    assert_non_null(strstr(err, "unknown formula \"magic\" (known: weighted_sum, click_boost, "
                                "rank_based, product)"));
    cascade_config_destroy(cfg);
    cfg = cascade_config_parse("{\"rank\": {\"model\": \"gbdt\"}}", "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_rank_create(cfg, f->redis.pool, NS, f->dir, NULL, err, sizeof err));
    assert_non_null(strstr(err, "rank.model: unknown model \"gbdt\""));
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
    cascade_rank *r = cascade_rank_create(NULL, dead, NS, f->dir, NULL, err, sizeof err);
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

/* ------------------------------------------------------------------ MMoE */

/* Save a seeded MMoE of the rank features as <dir>/<name>, with train-mmoe's
 * extra metadata (neg_sample_rate, complete_rate_by_duration), and point
 * rank-mmoe.latest at it. */
static void save_mmoe(const char *dir, const char *name, uint64_t seed, const char *alpha,
                      const char *buckets)
{
    char err[256] = "", path[512], tmp[512];
    struct cascade_mmoe_config c;
    cascade_mmoe_config_default(&c, CASCADE_RANK_FEATURES);
    c.seed = seed;
    cascade_mmoe *m = cascade_mmoe_create(&c, err, sizeof err);
    assert_non_null(m);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/plain.safetensors", dir);
    assert_int_equal(cascade_mmoe_save(m, tmp, name, err, sizeof err), 0);
    /* rewrite with the extra keys */
    cascade_safetensors *st = cascade_safetensors_read(tmp, err, sizeof err);
    assert_non_null(st);
    static const char *const keys[] = {"format",
                                       "input_dim",
                                       "n_experts",
                                       "expert_hidden",
                                       "tower_hidden",
                                       "tasks",
                                       "expert_dropout",
                                       "seed",
                                       "version",
                                       "neg_sample_rate",
                                       "complete_rate_by_duration"};
    const char *vals[11];
    for (size_t k = 0; k < 9; k++)
        vals[k] = cascade_safetensors_meta(st, keys[k]);
    vals[9] = alpha;
    vals[10] = buckets;
    cascade_nn_params *ps = cascade_mmoe_params(m);
    size_t n = cascade_nn_params_count(ps);
    struct cascade_tensor t[128];
    assert_true(n <= 128);
    for (size_t i = 0; i < n; i++)
        t[i] = *cascade_safetensors_find(st, cascade_nn_params_at(ps, i)->name);
    assert_int_equal(cascade_safetensors_write(path, t, n, keys, vals, 11, err, sizeof err), 0);
    cascade_safetensors_destroy(st);
    cascade_mmoe_destroy(m);
    set_latest_file(dir, CASCADE_RANK_MMOE_LATEST_FILE, name);
}

/* Check every task of resp against a model created with seed (served values
 * recomputed here), p_click calibrated with alpha. */
static void check_mmoe(const struct fixture *f, const Cascade__V1__RankResponse *resp,
                       uint64_t seed, double alpha)
{
    char err[256];
    struct cascade_mmoe_config c;
    cascade_mmoe_config_default(&c, CASCADE_RANK_FEATURES);
    c.seed = seed;
    cascade_mmoe *m = cascade_mmoe_create(&c, err, sizeof err);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 1);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *cand = resp->candidates[i];
        float x[CASCADE_RANK_FEATURES], z[6], out[6];
        cascade_features_rank(&f->user, &f->items[cand->item_id - 10], NOW, x);
        assert_int_equal(cascade_mmoe_logits(m, s, x, 1, z), 0);
        assert_int_equal(cascade_mmoe_predict(m, s, x, 1, out), 0);
        double q = 1 / (1 + exp(-z[0]));
        assert_float_equal(cand->tasks->p_click, alpha * q / (1 - q + alpha * q), 1e-5);
        assert_float_equal(cand->tasks->p_like, 1 / (1 + exp(-z[1])), 1e-5);
        assert_float_equal(cand->tasks->p_collect, out[2], 1e-5);
        assert_float_equal(cand->tasks->p_share, out[3], 1e-5);
        assert_float_equal(cand->tasks->watch_time_s, exp(z[4]), 1e-4);
        assert_float_equal(cand->tasks->p_complete, 1 / (1 + exp(-z[5])), 1e-5);
    }
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
}

static void test_mmoe_serves_every_task(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    lr_dir(f, "mmoe", sub, sizeof sub);
    save_mmoe(sub, "rank-mmoe-1.safetensors", 3, "0.25", "32:0.5,inf:0.25");
    /* auto prefers the MMoE; fuse p_click + p_complete / f(duration) */
    cascade_rank *r = make_rank(
        f, sub, "{\"rank\": {\"fusion\": {\"weights\": {\"click\": 1, \"complete\": 1}}}}");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-mmoe-1.safetensors");
    assert_int_equal(resp->n_candidates, N_ITEMS);
    check_mmoe(f, resp, 3, 0.25);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        double d = f->items[c->item_id - 10].duration_s, fd = d < 32 ? 0.5 : 0.25;
        assert_float_equal(c->rank_score, c->tasks->p_click + c->tasks->p_complete / fd, 1e-5);
        if (i > 0)
            assert_true(resp->candidates[i - 1]->rank_score >= c->rank_score);
    }
    cascade_rank_destroy(r);
    /* rank.model = lr ignores the MMoE; heuristic ignores both */
    r = make_rank(f, sub, "{\"rank\": {\"model\": \"lr\"}}");
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    check_scores(f, resp, 1.0f, -0.5f, 1.0);
    cascade_rank_destroy(r);
    r = make_rank(f, sub, "{\"rank\": {\"model\": \"heuristic\"}}");
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_non_null(strstr(resp->model_version, "heuristic"));
    cascade_rank_destroy(r);
}

/* The request of request() with its candidates as item_ids columns
 * (recall_scores i / 10) instead. */
static Cascade__V1__RankRequest *columns_request(cascade_arena *a, const char *uid, uint32_t keep,
                                                 size_t n)
{
    Cascade__V1__RankRequest *req = request(a, uid, keep, 0);
    req->item_ids = cascade_arena_calloc(a, n + 1, sizeof *req->item_ids);
    req->recall_scores = cascade_arena_calloc(a, n + 1, sizeof *req->recall_scores);
    for (size_t i = 0; i < n; i++) {
        req->item_ids[i] = 10 + i;
        req->recall_scores[i] = (float)i / 10;
    }
    req->n_item_ids = req->n_recall_scores = n;
    return req;
}

/* Candidates sent as columns get, as RankResponse columns, the ids, order,
 * rank scores, six task scores and attributes they get as messages (the
 * MMoE: every task set; two ids without a record: attributes 0). */
static void test_columns_match_candidates(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    lr_dir(f, "mmoe-columns", sub, sizeof sub);
    save_mmoe(sub, "rank-mmoe-1.safetensors", 3, "0.25", "32:0.5,inf:0.25");
    cascade_rank *r = make_rank(
        f, sub, "{\"rank\": {\"fusion\": {\"weights\": {\"click\": 1, \"complete\": 1}}}}");
    for (uint32_t keep = 0; keep <= 3; keep += 3) {
        const size_t n = N_ITEMS + 2;
        Cascade__V1__RankRequest *mreq = request(f->arena, "u1", keep, n);
        for (size_t i = 0; i < n; i++)
            mreq->candidates[i]->recall_score = (float)i / 10;
        Cascade__V1__RankResponse *msgs = run_ok(r, f->arena, mreq);
        Cascade__V1__RankRequest *creq = columns_request(f->arena, "u1", keep, n);
        creq->scores_only = true; /* no effect on a columns answer */
        Cascade__V1__RankResponse *cols = run_ok(r, f->arena, creq);
        size_t k = keep ? keep : n;
        assert_int_equal(msgs->n_candidates, k);
        assert_int_equal(cols->n_candidates, 0);
        assert_int_equal(cols->n_scored_ids, k);
        assert_int_equal(cols->n_rank_scores, k);
        assert_int_equal(cols->n_task_scores, 6 * k);
        assert_int_equal(cols->n_author_ids, k);
        assert_int_equal(cols->n_categories, k);
        assert_int_equal(cols->n_created_at_s, k);
        assert_int_equal(cols->n_media_types, k);
        assert_int_equal(cols->n_durations_s, k);
        assert_string_equal(cols->model_version, msgs->model_version);
        for (size_t i = 0; i < k; i++) {
            const Cascade__V1__Candidate *c = msgs->candidates[i];
            const float *t = cols->task_scores + 6 * i;
            assert_int_equal(cols->scored_ids[i], c->item_id);
            assert_float_equal(cols->rank_scores[i], c->rank_score, 0);
            assert_float_equal(t[0], c->tasks->p_click, 0);
            assert_float_equal(t[1], c->tasks->p_like, 0);
            assert_float_equal(t[2], c->tasks->p_collect, 0);
            assert_float_equal(t[3], c->tasks->p_share, 0);
            assert_float_equal(t[4], c->tasks->watch_time_s, 0);
            assert_float_equal(t[5], c->tasks->p_complete, 0);
            assert_int_equal(cols->author_ids[i], c->attrs->author_id);
            assert_int_equal(cols->categories[i], c->attrs->category);
            assert_int_equal(cols->created_at_s[i], c->attrs->created_at_s);
            assert_int_equal(cols->media_types[i], c->attrs->media_type);
            assert_float_equal(cols->durations_s[i], c->attrs->duration_s, 0);
        }
    }
    cascade_rank_destroy(r);
}

/* Columns are refused as candidates are, with the field named. */
static void test_columns_validation(void **state)
{
    struct fixture *f = *state;
    cascade_rank *r = make_rank(f, f->dir, "{\"rank\": {\"max_candidates\": 4}}");
    Cascade__V1__RankRequest *req = columns_request(f->arena, "u1", 0, 2);
    req->candidates = request(f->arena, "u1", 0, 1)->candidates;
    req->n_candidates = 1;
    expect_error(f, r, req, CASCADE_EINVAL, "item_ids and candidates are both set; send one");
    req = columns_request(f->arena, "u1", 0, 3);
    req->n_recall_scores = 2;
    expect_error(f, r, req, CASCADE_EINVAL,
                 "recall_scores: 2 entries for 3 item_ids (send none or one per id)");
    expect_error(f, r, columns_request(f->arena, "u1", 0, 5), CASCADE_ETOOBIG,
                 "5 item_ids exceed the limit of 4");
    expect_error(f, r, columns_request(f->arena, "", 0, 2), CASCADE_EINVAL,
                 "user.user_id is empty");
    expect_error(f, r, columns_request(f->arena, "u1", 5, 2), CASCADE_EINVAL,
                 "keep 5 out of range 0..4 (0 = all)");
    cascade_rank_destroy(r);
}

/* The MMoE's scratch is kept between requests: a request of 300
 * candidates (two forward chunks), one of N_ITEMS, then the first again
 * through the same pooled buffers give the first answer bit for bit, and
 * every candidate's p_click is the model's (a fresh scratch, one row). */
static void test_mmoe_scratch_reused_across_requests(void **state)
{
    struct fixture *f = *state;
    char sub[512], err[256] = "";
    enum { BIG = 300 };
    lr_dir(f, "mmoepool", sub, sizeof sub);
    save_mmoe(sub, "rank-mmoe-1.safetensors", 9, "1", "");
    cascade_rank *r = make_rank(f, sub, "{}");
    float first[BIG][6];
    uint64_t first_id[BIG];
    for (int round = 0; round < 3; round++) {
        size_t n = round == 1 ? N_ITEMS : BIG;
        Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, n));
        assert_string_equal(resp->model_version, "rank-mmoe-1.safetensors");
        assert_int_equal(resp->n_candidates, n);
        for (size_t i = 0; round != 1 && i < n; i++) {
            const Cascade__V1__TaskScores *t = resp->candidates[i]->tasks;
            float v[6] = {t->p_click, t->p_like,       t->p_collect,
                          t->p_share, t->watch_time_s, t->p_complete};
            if (round == 0) {
                memcpy(first[i], v, sizeof v);
                first_id[i] = resp->candidates[i]->item_id;
            } else {
                assert_int_equal(resp->candidates[i]->item_id, first_id[i]);
                assert_memory_equal(v, first[i], sizeof v);
            }
        }
    }
    struct cascade_mmoe_config c;
    cascade_mmoe_config_default(&c, CASCADE_RANK_FEATURES);
    c.seed = 9;
    cascade_mmoe *m = cascade_mmoe_create(&c, err, sizeof err);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 1);
    assert_non_null(s);
    for (size_t i = 0; i < BIG; i++) {
        cascade_v1_ItemRecord unknown = cascade_v1_ItemRecord_init_zero;
        uint64_t id = first_id[i];
        unknown.item_id = id;
        float x[CASCADE_RANK_FEATURES], out[6];
        cascade_features_rank(&f->user, id - 10 < N_ITEMS ? &f->items[id - 10] : &unknown, NOW, x);
        assert_int_equal(cascade_mmoe_predict(m, s, x, 1, out), 0);
        assert_float_equal(first[i][0], out[0], 1e-5);
    }
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
    cascade_rank_destroy(r);
}

/* The scratch pool hands a scratch to one request at a time: two taken
 * together differ, given back they are taken again (not new ones), and the
 * pool keeps at most CASCADE_RANK__SCRATCH_POOL. */
static void test_mmoe_scratch_pool(void **state)
{
    struct fixture *f = *state;
    char sub[512], err[256] = "";
    lr_dir(f, "mmoepool2", sub, sizeof sub);
    save_mmoe(sub, "rank-mmoe-1.safetensors", 4, "1", "");
    cascade_rank *r = make_rank(f, sub, "{}");
    struct cascade_rank__model *m = NULL;
    assert_int_equal(cascade_rank__model_load(r, "rank-mmoe-1.safetensors", CASCADE_RANK__KIND_MMOE,
                                              &m, err, sizeof err),
                     0);
    enum { N = CASCADE_RANK__SCRATCH_POOL + 1 };
    cascade_mmoe_scratch *s[N];
    for (size_t i = 0; i < N; i++) {
        s[i] = cascade_rank__scratch_take(m);
        assert_non_null(s[i]);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(s[i], s[j]);
    }
    for (size_t i = 0; i < N; i++)
        cascade_rank__scratch_give(m, s[i]);
    assert_int_equal(m->n_scratch, CASCADE_RANK__SCRATCH_POOL);
    cascade_mmoe_scratch *a = cascade_rank__scratch_take(m), *b = cascade_rank__scratch_take(m);
    assert_ptr_not_equal(a, b);
    bool a_kept = false, b_kept = false;
    for (size_t i = 0; i < CASCADE_RANK__SCRATCH_POOL; i++) {
        a_kept = a_kept || a == s[i];
        b_kept = b_kept || b == s[i];
    }
    assert_true(a_kept && b_kept);
    cascade_rank__scratch_give(m, a);
    cascade_rank__scratch_give(m, b);
    cascade_rank__scratch_give(m, NULL);
    cascade_rank__model_release(m); /* frees the pooled scratch (ASan: no leak) */
    cascade_rank_destroy(r);
}

static void test_mmoe_hot_swap(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    lr_dir(f, "mmoeswap", sub, sizeof sub);
    cascade_rank *r = make_rank(f, sub, "{\"rank\": {\"reload_interval_ms\": 0}}");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    /* an MMoE appears: the next request serves it, no restart */
    save_mmoe(sub, "rank-mmoe-a.safetensors", 5, "1", "");
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-mmoe-a.safetensors");
    check_mmoe(f, resp, 5, 1.0);
    /* a newer MMoE replaces it */
    save_mmoe(sub, "rank-mmoe-b.safetensors", 6, "0.5", "");
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-mmoe-b.safetensors");
    check_mmoe(f, resp, 6, 0.5);
    /* a broken one is refused and b stays */
    char err[256] = "";
    save_mmoe(sub, "rank-mmoe-c.safetensors", 7, "2.5", "");
    assert_int_equal(cascade_rank_reload(r, false, err, sizeof err), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "neg_sample_rate"));
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-mmoe-b.safetensors");
    cascade_rank_destroy(r);
}

/* Three candidates with hand-picked predictions. */
static void fusion_inputs(Cascade__V1__TaskScores t[3], const Cascade__V1__TaskScores *ptr[3])
{
    const float click[3] = {0.5f, 0.2f, 0.1f}, like[3] = {0.1f, 0.4f, 0.2f};
    const float watch[3] = {10, 40, 20};
    for (int i = 0; i < 3; i++) {
        cascade__v1__task_scores__init(&t[i]);
        t[i].p_click = click[i];
        t[i].p_like = like[i];
        t[i].watch_time_s = watch[i];
        ptr[i] = &t[i];
    }
}

static void test_fusion_formulas(void **state)
{
    (void)state;
    Cascade__V1__TaskScores t[3];
    const Cascade__V1__TaskScores *tasks[3];
    float out[3];
    fusion_inputs(t, tasks);
    struct cascade_rank_fusion_params p = {
        .w_click = 1, .w_like = 2, .w_watch_time = 0.1, .rank_alpha = 1, .rank_beta = 1};
    assert_ptr_equal(cascade_rank_fusion_find("click_boost"), cascade_rank_fusion_click_boost);
    assert_ptr_equal(cascade_rank_fusion_find("rank_based"), cascade_rank_fusion_rank_based);
    assert_ptr_equal(cascade_rank_fusion_find("product"), cascade_rank_fusion_product);
    assert_non_null(strstr(cascade_rank_fusion_list(), "rank_based"));

    /* click_boost: 0.5·(1 + 2·0.1 + 0.1·10) = 1.1; 0.2·(1 + 0.8 + 4) = 1.16; 0.1·(1 + 0.4 + 2) =
     * 0.34 */
    assert_int_equal(cascade_rank_fusion_click_boost(&p, tasks, 3, out, NULL), 0);
    assert_float_equal(out[0], 1.1, 1e-5);
    assert_float_equal(out[1], 1.16, 1e-5);
    assert_float_equal(out[2], 0.34, 1e-5);

    /* rank_based, α 1, β 1: click ranks 1,2,3; like 3,1,2; watch 3,1,2.
     * item 0: 1/2 + 2/4 + 0.1/4 = 1.025; item 1: 1/3 + 2/2 + 0.1/2 = 1.38333;
     * item 2: 1/4 + 2/3 + 0.1/3 = 0.95 */
    assert_int_equal(cascade_rank_fusion_rank_based(&p, tasks, 3, out, NULL), 0);
    assert_float_equal(out[0], 1.025, 1e-5);
    assert_float_equal(out[1], 1.0 / 3 + 1.0 + 0.05, 1e-5);
    assert_float_equal(out[2], 0.25 + 2.0 / 3 + 0.1 / 3, 1e-5);
    /* α 2, β 0 with the arena path; ties share the better rank */
    t[2].p_click = 0.2f;
    p.rank_alpha = 2;
    p.rank_beta = 0;
    p.w_like = 0;
    p.w_watch_time = 0;
    cascade_arena *a = cascade_arena_create(0);
    assert_int_equal(cascade_rank_fusion_rank_based(&p, tasks, 3, out, a), 0);
    assert_float_equal(out[0], 1.0, 1e-6);
    assert_float_equal(out[1], 0.25, 1e-6);
    assert_float_equal(out[2], 0.25, 1e-6);
    cascade_arena_destroy(a);

    /* product: p_click^1 · p_like^0.5 (watch time weight 0 is skipped) */
    fusion_inputs(t, tasks);
    struct cascade_rank_fusion_params q = {.w_click = 1, .w_like = 0.5};
    assert_int_equal(cascade_rank_fusion_product(&q, tasks, 3, out, NULL), 0);
    assert_float_equal(out[0], 0.5 * sqrt(0.1), 1e-5);
    assert_float_equal(out[1], 0.2 * sqrt(0.4), 1e-5);
    assert_float_equal(out[2], 0.1 * sqrt(0.2), 1e-5);
}

/* Give req an experiment context whose one layer sets key = value (arena memory). */
static void set_experiment_param(cascade_arena *a, Cascade__V1__RankRequest *req, const char *key,
                                 const char *value)
{
    Cascade__V1__ExperimentContext *exp = cascade_arena_alloc(a, sizeof *exp);
    Cascade__V1__LayerAssignment *la = cascade_arena_alloc(a, sizeof *la);
    Cascade__V1__LayerAssignment__ParamsEntry *pe = cascade_arena_alloc(a, sizeof *pe);
    Cascade__V1__LayerAssignment **las = cascade_arena_alloc(a, sizeof *las);
    Cascade__V1__LayerAssignment__ParamsEntry **pes = cascade_arena_alloc(a, sizeof *pes);
    assert_true(exp && la && pe && las && pes);
    cascade__v1__experiment_context__init(exp);
    cascade__v1__layer_assignment__init(la);
    cascade__v1__layer_assignment__params_entry__init(pe);
    pe->key = (char *)key;
    pe->value = (char *)value;
    pes[0] = pe;
    la->n_params = 1;
    la->params = pes;
    las[0] = la;
    exp->n_layers = 1;
    exp->layers = las;
    req->experiments = exp;
}

/* The experiment param rank.fusion.formula overrides the configured one. */
static void test_fusion_formula_experiment(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    lr_dir(f, "expfusion", sub, sizeof sub);
    cascade_rank *r = make_rank(f, sub, "{\"rank\": {\"fusion\": {\"weights\": {\"click\": 2}}}}");
    Cascade__V1__RankRequest *req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.fusion.formula", "product");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, req);
    for (size_t i = 0; i < resp->n_candidates; i++) /* p_click^2 instead of 2·p_click */
        assert_float_equal(resp->candidates[i]->rank_score,
                           pow(resp->candidates[i]->tasks->p_click, 2), 1e-5);
    cascade_rank_destroy(r);
}

/* ------------------------------------------------------------------ model per experiment */

/* Save a learned ranker of one single-leaf tree (score base 0.5 + leaf, the
 * same for every candidate) as <dir>/<name> and point rank-ltr.latest at it. */
static void save_ltr(const char *dir, const char *name, double leaf)
{
    char json[1024], path[512], err[256] = "";
    snprintf(json, sizeof json,
             "{\"learner\": {\"learner_model_param\": {\"base_score\": \"5E-1\", "
             "\"num_feature\": \"%d\"}, \"gradient_booster\": {\"model\": {\"trees\": ["
             "{\"left_children\": [-1], \"right_children\": [-1], \"split_indices\": [0], "
             "\"split_conditions\": [%g], \"default_left\": [0]}]}}}}",
             CASCADE_LTR_FEATURES, leaf);
    cascade_gbdt *m =
        cascade_gbdt_from_xgboost_json(json, strlen(json), CASCADE_LTR_FEATURES, err, sizeof err);
    if (!m)
        fail_msg("from_xgboost_json: %s", err);
    const char *keys[] = {"features"}, *vals[] = {CASCADE_LTR_SPEC};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(cascade_gbdt_save(m, path, keys, vals, 1, err, sizeof err), 0);
    cascade_gbdt_destroy(m);
    snprintf(path, sizeof path, "%s/%s", dir, CASCADE_RANK_LTR_LATEST_FILE);
    assert_int_equal(cascade_latest_write(path, name, err, sizeof err), 0);
}

/* Run a request whose experiment sets rank.model = model (NULL: no experiment). */
static Cascade__V1__RankResponse *run_with_model(struct fixture *f, cascade_rank *r,
                                                 const char *model)
{
    Cascade__V1__RankRequest *req = request(f->arena, "u1", 0, N_ITEMS);
    if (model)
        set_experiment_param(f->arena, req, "rank.model", model);
    return run_ok(r, f->arena, req);
}

/* Every candidate carries the learned ranker's score 0.5 + leaf and no task prediction. */
static void check_ltr(const Cascade__V1__RankResponse *resp, const char *version, double leaf)
{
    assert_string_equal(resp->model_version, version);
    assert_int_equal(resp->n_candidates, N_ITEMS);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        assert_float_equal(resp->candidates[i]->rank_score, 0.5 + leaf, 1e-6);
        assert_float_equal(resp->candidates[i]->tasks->p_click, 0, 0);
    }
}

/* The requests counted under cascade_rank_requests_by_model_total{model}. */
static double scored_by(cascade_metrics *m, const char *model)
{
    cascade_metric_family *fam =
        cascade_metrics_counter(m, "cascade_rank_requests_by_model_total",
                                "Rank requests by the kind of model that scored them "
                                "(heuristic: no model).",
                                "model");
    assert_non_null(fam);
    return cascade_metric_value(cascade_metric_get(fam, &model));
}

/* With a learned ranker and an LR published, the configured choice (auto:
 * the learned ranker) scores requests without the param; rank.model = lr
 * scores with the LR; a kind not published or an unknown name falls back; a
 * new LR pointer is picked up while the learned ranker stays the default. */
static void test_model_per_experiment(void **state)
{
    struct fixture *f = *state;
    char sub[512], buf[512];
    lr_dir(f, "expmodel", sub, sizeof sub);
    save_ltr(sub, "rank-ltr-1.safetensors", 0.7);
    cascade_metrics *metrics = cascade_metrics_create();
    assert_non_null(metrics);
    cascade_rank *r = make_rank_metrics(f, sub, "{\"rank\": {\"reload_interval_ms\": 0}}", metrics);
    assert_string_equal(cascade_rank_model_version(r, buf, sizeof buf), "rank-ltr-1.safetensors");

    check_ltr(run_with_model(f, r, NULL), "rank-ltr-1.safetensors", 0.7);
    Cascade__V1__RankResponse *resp = run_with_model(f, r, "lr");
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    check_scores(f, resp, 1.0f, -0.5f, 1.0);
    /* no MMoE published, a name no kind has: the configured choice scores */
    check_ltr(run_with_model(f, r, "mmoe"), "rank-ltr-1.safetensors", 0.7);
    check_ltr(run_with_model(f, r, "gbdt"), "rank-ltr-1.safetensors", 0.7);
    check_ltr(run_with_model(f, r, "auto"), "rank-ltr-1.safetensors", 0.7);
    resp = run_with_model(f, r, "heuristic");
    assert_non_null(strstr(resp->model_version, "heuristic"));
    assert_float_equal(resp->candidates[0]->tasks->p_click,
                       (f->items[resp->candidates[0]->item_id - 10].stats.clicks + 1.0) /
                           (f->items[resp->candidates[0]->item_id - 10].stats.impressions + 20.0),
                       1e-6);

    /* A new LR: the next request that asks for it gets it; the default is unchanged. */
    save_model(sub, "rank-lr-2.safetensors", -2.0f, 0.25f);
    set_latest(sub, "rank-lr-2.safetensors");
    resp = run_with_model(f, r, "lr");
    assert_string_equal(resp->model_version, "rank-lr-2.safetensors");
    check_scores(f, resp, -2.0f, 0.25f, 1.0);
    check_ltr(run_with_model(f, r, NULL), "rank-ltr-1.safetensors", 0.7);

    /* requests per kind used: ltr 5 (default, mmoe, gbdt, auto, default), lr 2, heuristic 1 */
    assert_float_equal(scored_by(metrics, "ltr"), 5, 0);
    assert_float_equal(scored_by(metrics, "lr"), 2, 0);
    assert_float_equal(scored_by(metrics, "mmoe"), 0, 0);
    assert_float_equal(scored_by(metrics, "heuristic"), 1, 0);
    cascade_rank_destroy(r);
    cascade_metrics_destroy(metrics);
}

/* A configured choice other than auto still loads every kind for experiments:
 * rank.model = lr serves the LR and lets an experiment ask for the learned
 * ranker; rank.model = heuristic serves no model unless an experiment asks. */
static void test_model_experiment_over_fixed_choice(void **state)
{
    struct fixture *f = *state;
    char sub[512];
    lr_dir(f, "expfixed", sub, sizeof sub);
    save_ltr(sub, "rank-ltr-1.safetensors", 0.25);
    cascade_rank *r = make_rank(f, sub, "{\"rank\": {\"model\": \"lr\"}}");
    Cascade__V1__RankResponse *resp = run_with_model(f, r, NULL);
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    check_scores(f, resp, 1.0f, -0.5f, 1.0);
    check_ltr(run_with_model(f, r, "ltr"), "rank-ltr-1.safetensors", 0.25);
    /* auto in the experiment is the first kind loaded: the learned ranker */
    check_ltr(run_with_model(f, r, "auto"), "rank-ltr-1.safetensors", 0.25);
    cascade_rank_destroy(r);

    r = make_rank(f, sub, "{\"rank\": {\"model\": \"heuristic\"}}");
    assert_non_null(strstr(run_with_model(f, r, NULL)->model_version, "heuristic"));
    assert_non_null(strstr(run_with_model(f, r, "mmoe")->model_version, "heuristic"));
    resp = run_with_model(f, r, "lr");
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    check_scores(f, resp, 1.0f, -0.5f, 1.0);
    cascade_rank_destroy(r);
}

/* A model version per experiment arm: the files the experiments name in
 * rank.model_version stay loaded beside rank-lr.latest; a request of that
 * arm is scored with its version, any other with the latest; a reload
 * changes the set; a file that does not load is a config error. */
static void test_model_version_per_arm(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    save_model(f->dir, "rank-lr-1.safetensors", 1.0f, -0.5f);
    save_model(f->dir, "rank-lr-2.safetensors", -2.0f, 0.25f);
    save_model(f->dir, "rank-lr-3.safetensors", 0.5f, 0.0f);
    set_latest(f->dir, "rank-lr-1.safetensors");
    cascade_rank *r =
        make_rank(f, f->dir,
                  "{\"experiments\": {\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                  "{\"name\": \"v2\", \"ranges\": [[0, 9]], \"params\": "
                  "{\"rank.model_version\": \"rank-lr-2.safetensors\"}}]}]}}");
    Cascade__V1__RankRequest *req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.model_version", "rank-lr-2.safetensors");
    Cascade__V1__RankResponse *resp = run_ok(r, f->arena, req);
    assert_string_equal(resp->model_version, "rank-lr-2.safetensors");
    check_scores(f, resp, -2.0f, 0.25f, 1.0);
    resp = run_ok(r, f->arena, request(f->arena, "u1", 0, N_ITEMS));
    assert_string_equal(resp->model_version, "rank-lr-1.safetensors");
    check_scores(f, resp, 1.0f, -0.5f, 1.0);
    /* A version no experiment names is not loaded on demand. */
    req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.model_version", "rank-lr-3.safetensors");
    assert_string_equal(run_ok(r, f->arena, req)->model_version, "rank-lr-1.safetensors");

    /* Reload: version 3 joins, version 2 leaves. */
    cascade_config *cfg = cascade_config_parse(
        "{\"experiments\": {\"layers\": [{\"name\": \"rank\", \"experiments\": ["
        "{\"name\": \"v3\", \"ranges\": [[0, 9]], \"params\": "
        "{\"rank.model_version\": \"rank-lr-3.safetensors\"}}]}]}}",
        "reload", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cascade_rank_pin_versions(r, cfg, err, sizeof err), 0);
    cascade_config_destroy(cfg);
    req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.model_version", "rank-lr-3.safetensors");
    resp = run_ok(r, f->arena, req);
    assert_string_equal(resp->model_version, "rank-lr-3.safetensors");
    check_scores(f, resp, 0.5f, 0.0f, 1.0);
    req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.model_version", "rank-lr-2.safetensors");
    assert_string_equal(run_ok(r, f->arena, req)->model_version, "rank-lr-1.safetensors");

    /* A missing file or a name of no kind: refused, the set unchanged. */
    cfg = cascade_config_parse(
        "{\"experiments\": {\"layers\": [{\"name\": \"rank\", \"experiments\": ["
        "{\"name\": \"gone\", \"ranges\": [[0, 9]], \"params\": "
        "{\"rank.model_version\": \"rank-lr-404.safetensors\"}}]}]}}",
        "reload", err, sizeof err);
    assert_int_equal(cascade_rank_pin_versions(r, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "layer \"rank\" experiment \"gone\": rank.model_version "
                                "\"rank-lr-404.safetensors\""));
    cascade_config_destroy(cfg);
    cfg = cascade_config_parse(
        "{\"experiments\": {\"layers\": [{\"name\": \"rank\", \"experiments\": ["
        "{\"name\": \"odd\", \"ranges\": [[0, 9]], \"params\": "
        "{\"rank.model_version\": \"../rank-lr-1.safetensors\"}}]}]}}",
        "reload", err, sizeof err);
    assert_int_equal(cascade_rank_pin_versions(r, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "must be a file name in the model directory"));
    cascade_config_destroy(cfg);
    req = request(f->arena, "u1", 0, N_ITEMS);
    set_experiment_param(f->arena, req, "rank.model_version", "rank-lr-3.safetensors");
    assert_string_equal(run_ok(r, f->arena, req)->model_version, "rank-lr-3.safetensors");
    cascade_rank_destroy(r);
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
        cmocka_unit_test(test_columns_match_candidates),
        cmocka_unit_test(test_columns_validation),
        cmocka_unit_test(test_unknown_user_and_item),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_fusion_table),
        cmocka_unit_test(test_mmoe_serves_every_task),
        cmocka_unit_test(test_mmoe_hot_swap),
        cmocka_unit_test(test_mmoe_swap_under_load),
        cmocka_unit_test(test_fusion_formulas),
        cmocka_unit_test(test_fusion_formula_experiment),
        cmocka_unit_test(test_model_per_experiment),
        cmocka_unit_test(test_model_experiment_over_fixed_choice),
        cmocka_unit_test(test_model_version_per_arm),
        cmocka_unit_test(test_mmoe_scratch_reused_across_requests),
        cmocka_unit_test(test_mmoe_scratch_pool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
