/* Tests of the PreRank stage library against a private redis-server: the
 * score formula on a hand example, sort order and tie-break, keep from the
 * request / experiment / config, chunked record fetch, validation, Redis
 * failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "prerank.h"
#include "store.h"
#include "messages.h"
#include "support.h"

#define NS "t"
#define CONFIG                                                                                     \
    "{\"prerank\": {\"keep\": 3, \"weights\": {\"clicks\": 1, \"ctr\": 10, \"recall\": 2},"        \
    " \"ctr_prior\": {\"clicks\": 1, \"impressions\": 20}}}"

struct fixture {
    struct test_redis_fixture redis;
    cascade_prerank *prerank;
    cascade_arena *arena;
};

static cascade_prerank *make_prerank(cascade_redis_pool *pool, const char *json)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_prerank *p = cascade_prerank_create(cfg, pool, NS, NULL, NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!p)
        fail_msg("cascade_prerank_create: %s", err);
    return p;
}

static void put_item(cascade_redis *r, uint64_t id, uint32_t clicks, uint32_t impressions)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.has_stats = true;
    rec.stats.clicks = clicks;
    rec.stats.impressions = impressions;
    assert_int_equal(cascade_store_put_item(r, NS, &rec), 0);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    put_item(f.redis.conn, 1, 9, 80);   /* log1p(9) + 10·10/100 = 2.302585 + 1 */
    put_item(f.redis.conn, 2, 0, 0);    /* 10·1/20 = 0.5 */
    put_item(f.redis.conn, 3, 99, 980); /* log1p(99) + 10·100/1000 = 4.60517 + 1 */
    for (uint64_t id = 1000; id < 2200; id++)
        put_item(f.redis.conn, id, (uint32_t)(id - 1000), 5000);
    f.prerank = make_prerank(f.redis.pool, CONFIG);
    f.arena = cascade_arena_create(0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    cascade_prerank_destroy(f->prerank);
    test_redis_fixture_stop(&f->redis);
    return 0;
}

static Cascade__V1__PreRankRequest *request(cascade_arena *a, const char *uid, const uint64_t *ids,
                                            const float *recall, size_t n, uint32_t keep)
{
    Cascade__V1__PreRankRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__pre_rank_request__init(req);
    req->user = test_user_context(a, uid, 0);
    req->keep = keep;
    req->n_candidates = n;
    req->candidates = test_candidates(a, ids, n);
    for (size_t i = 0; recall && i < n; i++)
        req->candidates[i]->recall_score = recall[i];
    return req;
}

/* An experiment context with one layer setting key = value. */
static Cascade__V1__ExperimentContext *experiment(cascade_arena *a, const char *key,
                                                  const char *value)
{
    return test_experiment(a, "prerank", "exp", key, value);
}

static Cascade__V1__PreRankResponse *run_ok(struct fixture *f, Cascade__V1__PreRankRequest *req)
{
    char err[256] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    int rc = cascade_prerank_run(f->prerank, f->arena, INT64_MAX, req, &resp, err, sizeof err);
    if (rc != 0)
        fail_msg("prerank: %s", err);
    return resp;
}

static void test_scores_and_order(void **state)
{
    struct fixture *f = *state;
    const uint64_t ids[] = {2, 1, 3, 77}; /* 77 has no record */
    const float recall[] = {0.5f, 0.5f, 0.0f, 0.25f};
    Cascade__V1__PreRankResponse *resp = run_ok(f, request(f->arena, "u", ids, recall, 4, 4));
    assert_int_equal(resp->n_candidates, 4);
    assert_non_null(resp->model_version);
    /* 3: 4.60517 + 1 + 0 = 5.60517; 1: 2.302585 + 1 + 1 = 4.302585;
     * 2: 0 + 0.5 + 1 = 1.5; 77: 0 + 0.5 + 0.5 = 1.0. */
    const uint64_t want_id[] = {3, 1, 2, 77};
    const double want[] = {log1p(99) + 1.0, log1p(9) + 2.0, 1.5, 1.0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(resp->candidates[i]->item_id, want_id[i]);
        assert_float_equal(resp->candidates[i]->prerank_score, want[i], 1e-4);
    }
}

static void test_tie_break_by_item_id(void **state)
{
    struct fixture *f = *state;
    /* Unknown items with equal recall scores tie exactly. */
    const uint64_t ids[] = {905, 903, 904, 901};
    Cascade__V1__PreRankResponse *resp = run_ok(f, request(f->arena, "u", ids, NULL, 4, 10));
    assert_int_equal(resp->n_candidates, 4);
    const uint64_t want[] = {901, 903, 904, 905};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(resp->candidates[i]->item_id, want[i]);
}

static void test_keep_sources(void **state)
{
    struct fixture *f = *state;
    const uint64_t ids[] = {1, 2, 3, 1000, 1001};
    /* keep 0: config prerank.keep = 3 */
    Cascade__V1__PreRankResponse *resp = run_ok(f, request(f->arena, "u", ids, NULL, 5, 0));
    assert_int_equal(resp->n_candidates, 3);
    /* keep 0 + experiment prerank.keep = 1 */
    Cascade__V1__PreRankRequest *req = request(f->arena, "u", ids, NULL, 5, 0);
    req->experiments = experiment(f->arena, "prerank.keep", "1");
    resp = run_ok(f, req);
    assert_int_equal(resp->n_candidates, 1);
    assert_int_equal(resp->candidates[0]->item_id, 3);
    /* the request's own keep wins over the experiment */
    req = request(f->arena, "u", ids, NULL, 5, 2);
    req->experiments = experiment(f->arena, "prerank.keep", "1");
    resp = run_ok(f, req);
    assert_int_equal(resp->n_candidates, 2);
    /* Items 3 (clicks 99) and 2 (no clicks, recall 1): the config weights put
     * 3 first (5.605 vs 2.5); an experiment zeroing the clicks weight flips
     * them (1.0 vs 2.5). */
    req = request(f->arena, "u", (const uint64_t[]){3, 2}, (const float[]){0, 1}, 2, 2);
    resp = run_ok(f, req);
    assert_int_equal(resp->candidates[0]->item_id, 3);
    assert_float_equal(resp->candidates[0]->prerank_score, log1p(99) + 1.0, 1e-4);
    req = request(f->arena, "u", (const uint64_t[]){3, 2}, (const float[]){0, 1}, 2, 2);
    req->experiments = experiment(f->arena, "prerank.weights.clicks", "0");
    resp = run_ok(f, req);
    assert_int_equal(resp->candidates[0]->item_id, 2);
    assert_float_equal(resp->candidates[0]->prerank_score, 2.5, 1e-4);
    assert_float_equal(resp->candidates[1]->prerank_score, 1.0, 1e-4);
}

static void test_chunked_fetch(void **state)
{
    struct fixture *f = *state;
    /* 1200 candidates cross the 512-record MGET chunks; clicks = id − 1000,
     * so the order must be by id descending. */
    uint64_t ids[1200];
    for (size_t i = 0; i < 1200; i++)
        ids[i] = 1000 + (i * 7) % 1200; /* shuffled */
    Cascade__V1__PreRankResponse *resp = run_ok(f, request(f->arena, "u", ids, NULL, 1200, 1200));
    assert_int_equal(resp->n_candidates, 1200);
    for (size_t i = 0; i < 1200; i++)
        assert_int_equal(resp->candidates[i]->item_id, 2199 - i);
}

static void expect_error(struct fixture *f, cascade_prerank *p, Cascade__V1__PreRankRequest *req,
                         int code, const char *message)
{
    char err[256] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    assert_int_equal(cascade_prerank_run(p, f->arena, INT64_MAX, req, &resp, err, sizeof err),
                     code);
    assert_string_equal(err, message);
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    const uint64_t ids[] = {1, 2, 3, 4};
    expect_error(f, f->prerank, request(f->arena, "", ids, NULL, 4, 0), CASCADE_EINVAL,
                 "user.user_id is empty");
    Cascade__V1__PreRankRequest *req = request(f->arena, "u", ids, NULL, 4, 0);
    req->user = NULL;
    expect_error(f, f->prerank, req, CASCADE_EINVAL, "user.user_id is empty");
    expect_error(f, f->prerank, request(f->arena, "u", ids, NULL, 4, 20001), CASCADE_EINVAL,
                 "keep 20001 out of range 1..20000 (0 = default 3)");
    req = request(f->arena, "u", ids, NULL, 4, 0);
    req->experiments = experiment(f->arena, "prerank.keep", "0");
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "experiment param prerank.keep=0 out of range 1..20000");
    req = request(f->arena, "u", ids, NULL, 4, 0);
    req->experiments = experiment(f->arena, "prerank.\xff", "1");
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "experiments.layers[0].params[0].key is not valid UTF-8");
    req = request(f->arena, "u", ids, NULL, 4, 0);
    req->user->geohash = "wx4g0ec1wx4g0e";
    expect_error(f, f->prerank, req, CASCADE_EINVAL, "user.geohash: 14 bytes, at most 12");
    cascade_prerank *small =
        make_prerank(f->redis.pool, "{\"prerank\": {\"max_candidates\": 3, \"keep\": 2}}");
    expect_error(f, small, request(f->arena, "u", ids, NULL, 4, 0), CASCADE_ETOOBIG,
                 "4 candidates exceed the limit of 3");
    cascade_prerank_destroy(small);

    char err[256] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    assert_int_equal(cascade_prerank_run(f->prerank, f->arena, cascade_now_ms() - 1,
                                         request(f->arena, "u", ids, NULL, 4, 0), &resp, err,
                                         sizeof err),
                     CASCADE_ETIMEDOUT);
}

/* The request of request() with its candidates as item_ids (and, when
 * recall is given, recall_scores) columns instead. */
static Cascade__V1__PreRankRequest *columns_request(cascade_arena *a, const char *uid,
                                                    const uint64_t *ids, const float *recall,
                                                    size_t n, uint32_t keep)
{
    Cascade__V1__PreRankRequest *req = request(a, uid, ids, NULL, 0, keep);
    req->item_ids = cascade_arena_calloc(a, n + 1, sizeof *req->item_ids);
    memcpy(req->item_ids, ids, n * sizeof *ids);
    req->n_item_ids = n;
    if (recall) {
        req->recall_scores = cascade_arena_calloc(a, n + 1, sizeof *req->recall_scores);
        memcpy(req->recall_scores, recall, n * sizeof *recall);
        req->n_recall_scores = n;
    }
    return req;
}

/* Candidates sent as columns get the scores and order they get as messages,
 * answered as scored_ids and scores (whatever scores_only says); without
 * recall_scores every recall score is 0. */
static void test_columns_match_candidates(void **state)
{
    struct fixture *f = *state;
    const uint64_t ids[] = {2, 1, 3, 77, 905, 903};
    const float recall[] = {0.5f, 0.5f, 0.0f, 0.25f, 0.0f, 0.0f};
    for (int with_recall = 0; with_recall < 2; with_recall++) {
        const float *r = with_recall ? recall : NULL;
        Cascade__V1__PreRankResponse *msgs = run_ok(f, request(f->arena, "u", ids, r, 6, 5));
        Cascade__V1__PreRankRequest *req = columns_request(f->arena, "u", ids, r, 6, 5);
        req->scores_only = with_recall; /* no effect on a columns answer */
        Cascade__V1__PreRankResponse *cols = run_ok(f, req);
        assert_int_equal(msgs->n_candidates, 5);
        assert_int_equal(msgs->n_scored_ids, 0);
        assert_int_equal(cols->n_candidates, 0);
        assert_int_equal(cols->n_scored_ids, 5);
        assert_int_equal(cols->n_scores, 5);
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(cols->scored_ids[i], msgs->candidates[i]->item_id);
            assert_float_equal(cols->scores[i], msgs->candidates[i]->prerank_score, 0);
        }
        assert_string_equal(cols->model_version, msgs->model_version);
    }
    /* The hand example of test_scores_and_order, through columns. */
    Cascade__V1__PreRankResponse *cols =
        run_ok(f, columns_request(f->arena, "u", ids, recall, 4, 4));
    const uint64_t want_id[] = {3, 1, 2, 77};
    const double want[] = {log1p(99) + 1.0, log1p(9) + 2.0, 1.5, 1.0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cols->scored_ids[i], want_id[i]);
        assert_float_equal(cols->scores[i], want[i], 1e-4);
    }
}

/* Columns are refused as candidates are, with the field named. */
static void test_columns_validation(void **state)
{
    struct fixture *f = *state;
    const uint64_t ids[] = {1, 2, 3, 4};
    const float recall[] = {1, 2, 3, 4};
    Cascade__V1__PreRankRequest *req = columns_request(f->arena, "u", ids, NULL, 4, 0);
    req->candidates = test_candidates(f->arena, ids, 1);
    req->n_candidates = 1;
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "item_ids and candidates are both set; send one");
    req = columns_request(f->arena, "u", ids, recall, 4, 0);
    req->n_recall_scores = 3;
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "recall_scores: 3 entries for 4 item_ids (send none or one per id)");
    req = request(f->arena, "u", ids, NULL, 4, 0);
    req->recall_scores = (float *)recall;
    req->n_recall_scores = 4;
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "recall_scores: 4 entries for 0 item_ids (send none or one per id)");
    /* recall_signals describe the ids. */
    req = columns_request(f->arena, "u", ids, NULL, 4, 0);
    req->recall_signals = cascade_arena_alloc(f->arena, sizeof *req->recall_signals);
    cascade__v1__recall_signals__init(req->recall_signals);
    req->recall_signals->hit_count = (uint32_t[]){0, 0, 0};
    req->recall_signals->n_hit_count = 3;
    expect_error(f, f->prerank, req, CASCADE_EINVAL,
                 "recall_signals.hit_count: 3 entries for 4 candidates");
    req = columns_request(f->arena, "", ids, NULL, 4, 0);
    expect_error(f, f->prerank, req, CASCADE_EINVAL, "user.user_id is empty");
    cascade_prerank *small =
        make_prerank(f->redis.pool, "{\"prerank\": {\"max_candidates\": 3, \"keep\": 2}}");
    expect_error(f, small, columns_request(f->arena, "u", ids, recall, 4, 0), CASCADE_ETOOBIG,
                 "4 item_ids exceed the limit of 3");
    cascade_prerank_destroy(small);
}

static void test_redis_down_is_unavailable(void **state)
{
    struct fixture *f = *state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_prerank *p = make_prerank(dead, "{}");
    char err[256] = "";
    Cascade__V1__PreRankResponse *resp = NULL;
    assert_int_equal(cascade_prerank_run(p, f->arena, INT64_MAX,
                                         request(f->arena, "u", (const uint64_t[]){1}, NULL, 1, 0),
                                         &resp, err, sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "127.0.0.1"));
    cascade_prerank_destroy(p);
    cascade_redis_pool_destroy(dead);
}

static void test_methods(void **state)
{
    (void)state;
    size_t n = 0;
    const struct cascade_rpc_method *m = cascade_prerank_methods(&n);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].path, "/cascade.v1.PreRank/Score");
    assert_ptr_equal(m[0].request_type, &cascade__v1__pre_rank_request__descriptor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_and_order),
        cmocka_unit_test(test_tie_break_by_item_id),
        cmocka_unit_test(test_keep_sources),
        cmocka_unit_test(test_chunked_fetch),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_columns_match_candidates),
        cmocka_unit_test(test_columns_validation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
