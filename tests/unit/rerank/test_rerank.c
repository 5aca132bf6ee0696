/* Tests of the ReRank stage library: MMR on plain arrays (λ = 1 is pure
 * relevance, λ = 0 spreads categories, a hand-computed example of the MMR
 * values), the similarity terms, and the request path (λ from an
 * experiment, validation). No Redis needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "messages.h"
#include "rerank.h"
#include "rerank_test.h"

static const struct cascade_mmr_opts default_opts = {
    .lambda = 0.7, .sim_category = 0.7, .sim_author = 0.3, .sim_embedding = 1.0};

struct fixture {
    cascade_arena *arena;
    cascade_rerank *rerank;
};

static int setup(void **state)
{
    static struct fixture f;
    char err[256] = "";
    f.arena = cascade_arena_create(0);
    f.rerank = cascade_rerank_create(NULL, err, sizeof err);
    *state = &f;
    return f.arena && f.rerank ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_rerank_destroy(f->rerank);
    cascade_arena_destroy(f->arena);
    return 0;
}

static void test_lambda_one_is_relevance_order(void **state)
{
    struct fixture *f = *state;
    struct cascade_mmr_item items[6];
    const float rel[] = {0.2f, 0.9f, 0.5f, 0.95f, 0.1f, 0.6f};
    for (size_t i = 0; i < 6; i++)
        items[i] = (struct cascade_mmr_item){.relevance = rel[i], .category = 1, .author_id = 7};
    struct cascade_mmr_opts o = default_opts;
    o.lambda = 1.0;
    size_t order[6], n = 0;
    float values[6];
    assert_int_equal(cascade_rerank_mmr(items, 6, 6, &o, f->arena, INT64_MAX, order, values, &n),
                     0);
    assert_int_equal(n, 6);
    const size_t want[] = {3, 1, 5, 2, 0, 4};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(order[i], want[i]);
    /* values are the normalised relevance: (x − 0.1) / 0.85 */
    assert_float_equal(values[0], 1.0f, 1e-6);
    assert_float_equal(values[5], 0.0f, 1e-6);
    assert_float_equal(values[1], (0.9 - 0.1) / 0.85, 1e-5);
}

static void test_lambda_zero_spreads_categories(void **state)
{
    struct fixture *f = *state;
    /* 12 items in relevance order, categories in blocks: 1 1 1 1 2 2 2 2 3 3 3 3. */
    struct cascade_mmr_item items[12];
    for (size_t i = 0; i < 12; i++)
        items[i] = (struct cascade_mmr_item){.relevance = 1.0f - 0.01f * (float)i,
                                             .category = (uint32_t)(1 + i / 4),
                                             .author_id = 100 + i};
    struct cascade_mmr_opts o = default_opts;
    o.lambda = 0.0;
    size_t order[3], n = 0;
    float values[3];
    assert_int_equal(cascade_rerank_mmr(items, 12, 3, &o, f->arena, INT64_MAX, order, values, &n),
                     0);
    assert_int_equal(n, 3);
    for (size_t t = 1; t < n; t++)
        assert_int_not_equal(items[order[t]].category, items[order[t - 1]].category);
    /* The three picks are the best of each category. */
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 4);
    assert_int_equal(order[2], 8);

    /* With λ = 1 on the same items the first three would all be category 1. */
    o.lambda = 1.0;
    assert_int_equal(cascade_rerank_mmr(items, 12, 3, &o, f->arena, INT64_MAX, order, values, &n),
                     0);
    for (size_t t = 0; t < 3; t++)
        assert_int_equal(items[order[t]].category, 1);
}

static void test_hand_example(void **state)
{
    struct fixture *f = *state;
    /* rel = 1, 0.9, 0 (scores 10, 9.1, 1); items 0 and 1 share category 1.
     * λ = 0.3:
     *  pick 1: 0.3·1 = 0.3 (item 0)
     *  pick 2: item 1: 0.3·0.9 − 0.7·0.7 = −0.22; item 2: 0 − 0.7·0 = 0 → item 2, 0
     *  pick 3: item 1: max sim to {0, 2} = 0.7 → −0.22 */
    struct cascade_mmr_item items[3] = {
        {.relevance = 10.0f, .category = 1, .author_id = 1},
        {.relevance = 9.1f, .category = 1, .author_id = 2},
        {.relevance = 1.0f, .category = 2, .author_id = 3},
    };
    struct cascade_mmr_opts o = default_opts;
    o.lambda = 0.3;
    size_t order[3], n = 0;
    float values[3];
    assert_int_equal(cascade_rerank_mmr(items, 3, 5, &o, f->arena, INT64_MAX, order, values, &n),
                     0);
    assert_int_equal(n, 3); /* count larger than n returns all */
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    assert_float_equal(values[0], 0.3f, 1e-6);
    assert_float_equal(values[1], 0.0f, 1e-6);
    assert_float_equal(values[2], -0.22f, 1e-6);
}

static void test_similarity_terms(void **state)
{
    (void)state;
    const float e1[] = {1, 0}, e2[] = {0.6f, 0.8f}, e3[] = {1, 0, 0};
    struct cascade_mmr_item a = {.category = 5, .author_id = 9, .embedding = e1, .dim = 2};
    struct cascade_mmr_item b = {.category = 5, .author_id = 9, .embedding = e2, .dim = 2};
    struct cascade_mmr_item c = {.category = 6, .author_id = 9, .embedding = e3, .dim = 3};
    struct cascade_mmr_item unknown = {0};
    assert_float_equal(cascade_rerank_similarity(&default_opts, &a, &b), 0.7 + 0.3 + 0.6, 1e-6);
    /* different dims: no cosine term; only the author matches */
    assert_float_equal(cascade_rerank_similarity(&default_opts, &a, &c), 0.3, 1e-6);
    /* unknown (0) category and author never match */
    assert_float_equal(cascade_rerank_similarity(&default_opts, &unknown, &unknown), 0.0, 0);
}

/* ------------------------------------------------------------------ request path */

static Cascade__V1__ReRankRequest *request(cascade_arena *a, const char *uid, uint32_t count,
                                           const float *scores, const uint32_t *cats, size_t n)
{
    static const uint32_t none[5002];
    uint64_t *authors = cascade_arena_calloc(a, n + 1, sizeof *authors);
    for (size_t i = 0; i < n; i++)
        authors[i] = 1000 + i;
    Cascade__V1__ReRankRequest *req =
        rerank_test_request(a, count, scores, cats ? cats : none, authors, n);
    req->user = test_user_context(a, uid, 0);
    for (size_t i = 0; !cats && i < n; i++)
        req->candidates[i]->attrs = NULL; /* no attrs at all */
    return req;
}

static Cascade__V1__ExperimentContext *lambda_experiment(cascade_arena *a, const char *value)
{
    return test_experiment(a, "rerank", "mmr", "rerank.lambda", value);
}

static void test_run_lambda_from_experiment(void **state)
{
    struct fixture *f = *state;
    const float scores[] = {1.0f, 0.99f, 0.98f, 0.5f};
    const uint32_t cats[] = {1, 1, 1, 2};
    char err[256] = "";
    Cascade__V1__ReRankResponse *resp = NULL;
    /* rel = (x − 0.5) / 0.5 = 1, 0.98, 0.96, 0. Config λ = 0.7: after item
     * 100, item 101 scores 0.7·0.98 − 0.3·0.7 = 0.476 and item 103 scores 0. */
    assert_int_equal(cascade_rerank_run(f->rerank, f->arena, INT64_MAX,
                                        request(f->arena, "u", 2, scores, cats, 4), &resp, err,
                                        sizeof err),
                     0);
    assert_int_equal(resp->candidates[0]->item_id, 100);
    assert_float_equal(resp->candidates[0]->rerank_score, 0.7f, 1e-6);
    assert_int_equal(resp->candidates[1]->item_id, 101);
    assert_float_equal(resp->candidates[1]->rerank_score, 0.476f, 1e-5);

    Cascade__V1__ReRankRequest *req = request(f->arena, "u", 2, scores, cats, 4);
    req->experiments = lambda_experiment(f->arena, "1");
    assert_int_equal(
        cascade_rerank_run(f->rerank, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 100);
    assert_int_equal(resp->candidates[1]->item_id, 101); /* λ = 1: pure relevance */

    req = request(f->arena, "u", 2, scores, cats, 4);
    req->experiments = lambda_experiment(f->arena, "0");
    assert_int_equal(
        cascade_rerank_run(f->rerank, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->candidates[0]->item_id, 100);
    assert_int_equal(resp->candidates[1]->item_id, 103); /* λ = 0: the other category */
    assert_float_equal(resp->candidates[1]->rerank_score, 0.0f, 1e-6);
    assert_float_equal(resp->candidates[0]->rerank_score, 0.0f, 1e-6);

    /* No attrs at all: MMR has only relevance to go on. */
    req = request(f->arena, "u", 10, scores, NULL, 4);
    assert_int_equal(
        cascade_rerank_run(f->rerank, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(resp->candidates[i]->item_id, 100 + i);
}

static void expect_error(struct fixture *f, Cascade__V1__ReRankRequest *req, int code,
                         const char *message)
{
    char err[256] = "";
    Cascade__V1__ReRankResponse *resp = NULL;
    assert_int_equal(
        cascade_rerank_run(f->rerank, f->arena, INT64_MAX, req, &resp, err, sizeof err), code);
    assert_string_equal(err, message);
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    const float scores[] = {1, 2};
    expect_error(f, request(f->arena, "", 1, scores, NULL, 2), CASCADE_EINVAL,
                 "user.user_id is empty");
    expect_error(f, request(f->arena, NULL, 1, scores, NULL, 2), CASCADE_EINVAL,
                 "user.user_id is empty");
    expect_error(f, request(f->arena, "u", 0, scores, NULL, 2), CASCADE_EINVAL,
                 "count 0 out of range 1..1000");
    expect_error(f, request(f->arena, "u", 1001, scores, NULL, 2), CASCADE_EINVAL,
                 "count 1001 out of range 1..1000");
    Cascade__V1__ReRankRequest *req = request(f->arena, "u", 1, scores, NULL, 2);
    req->experiments = lambda_experiment(f->arena, "1.5");
    expect_error(f, req, CASCADE_EINVAL, "experiment param rerank.lambda=1.5 out of range [0, 1]");

    /* Bounds (common/request.h): an experiment value, an embedding. */
    static char long_value[301];
    memset(long_value, '0', 300);
    req = request(f->arena, "u", 1, scores, NULL, 2);
    req->experiments = lambda_experiment(f->arena, long_value);
    expect_error(f, req, CASCADE_EINVAL,
                 "experiments.layers[0].params[0].value: 300 bytes, at most 256");
    static float emb[1025];
    req = request(f->arena, "u", 1, scores, NULL, 2);
    req->candidates[1]->attrs = cascade_arena_alloc(f->arena, sizeof *req->candidates[1]->attrs);
    cascade__v1__item_attributes__init(req->candidates[1]->attrs);
    req->candidates[1]->attrs->embedding = emb;
    req->candidates[1]->attrs->n_embedding = 1025;
    expect_error(f, req, CASCADE_EINVAL,
                 "candidates[1].attrs.embedding: 1025 floats, at most 1024");

    static float many[5001];
    expect_error(f, request(f->arena, "u", 10, many, NULL, 5001), CASCADE_ETOOBIG,
                 "5001 candidates exceed the limit of 5000");

    char err[256] = "";
    cascade_config *cfg =
        cascade_config_parse("{\"rerank\": {\"lambda\": 1.5}}", "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_rerank_create(cfg, err, sizeof err));
    assert_non_null(strstr(err, "rerank.lambda"));
    cascade_config_destroy(cfg);
}

static void test_deadline(void **state)
{
    struct fixture *f = *state;
    static struct cascade_mmr_item items[64];
    size_t order[64], n = 0;
    float values[64];
    assert_int_equal(cascade_rerank_mmr(items, 64, 64, &default_opts, f->arena,
                                        cascade_now_ms() - 1, order, values, &n),
                     CASCADE_ETIMEDOUT);
    assert_true(n < 64);
}

static void test_methods(void **state)
{
    (void)state;
    size_t n = 0;
    const struct cascade_rpc_method *m = cascade_rerank_methods(&n);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].path, "/cascade.v1.ReRank/ReRank");
    assert_ptr_equal(m[0].response_type, &cascade__v1__re_rank_response__descriptor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lambda_one_is_relevance_order),
        cmocka_unit_test(test_lambda_zero_spreads_categories),
        cmocka_unit_test(test_hand_example),
        cmocka_unit_test(test_similarity_terms),
        cmocka_unit_test(test_run_lambda_from_experiment),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
