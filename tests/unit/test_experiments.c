/* Unit tests for common/experiments.c: deterministic layered assignment,
 * disjoint ranges, the global holdout, a launched experiment's reverse range,
 * config validation, and parameter lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "experiments.h"
#include "hash.h"

#define USERS 20000

static const char *const config_text =
    "{ \"buckets\": 1000, \"holdout\": [[0, 49]],"
    "  \"layers\": ["
    "    { \"name\": \"rank\", \"salt\": \"rank-2026\", \"experiments\": ["
    "        { \"name\": \"fusion_a\", \"ranges\": [[100, 199], [500, 549]],"
    "          \"params\": { \"rank.fusion.formula\": \"product\","
    "                        \"rank.fusion.rank_alpha\": 0.7, \"rank.fusion.rank_beta\": 3,"
    "                        \"rank.model\": true } },"
    "        { \"name\": \"fusion_b\", \"ranges\": [[200, 299]],"
    "          \"params\": { \"rank.fusion.formula\": \"sum\" } } ] },"
    "    { \"name\": \"rerank\", \"salt\": \"rerank-2026\", \"experiments\": ["
    "        { \"name\": \"mmr_07\", \"ranges\": [[0, 99]], \"params\": { \"rerank.lambda\": 0.7 } "
    "},"
    "        { \"name\": \"mmr_05\", \"launched\": true, \"reverse\": [[990, 999]],"
    "          \"params\": { \"rerank.lambda\": 0.5 } } ] } ] }";

static cascade_experiments *create_from(const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *cfg = json_loads(text, 0, &jerr);
    if (!cfg)
        fail_msg("test config does not parse: %s", jerr.text);
    cascade_experiments *e = cascade_experiments_create(cfg, err, errlen);
    json_decref(cfg);
    return e;
}

static int setup(void **state)
{
    char err[256];
    cascade_experiments *e = create_from(config_text, err, sizeof(err));
    if (!e)
        fprintf(stderr, "config rejected: %s\n", err);
    *state = e;
    return e ? 0 : -1;
}

static int teardown(void **state)
{
    cascade_experiments_destroy(*state);
    cascade_experiments_destroy(NULL);
    return 0;
}

static const char *param_of(const Cascade__V1__LayerAssignment *la, const char *key)
{
    for (size_t i = 0; i < la->n_params; i++) {
        if (strcmp(la->params[i]->key, key) == 0)
            return la->params[i]->value;
    }
    return NULL;
}

static void test_deterministic(void **state)
{
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__ExperimentContext *x, *y;
    for (int u = 0; u < 200; u++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "user%d", u);
        assert_int_equal(cascade_experiments_assign(*state, uid, a, &x), 0);
        assert_int_equal(cascade_experiments_assign(*state, uid, a, &y), 0);
        assert_int_equal(x->bucket_count, 1000);
        assert_int_equal(x->n_layers, 2);
        for (size_t l = 0; l < 2; l++) {
            assert_string_equal(x->layers[l]->layer, l == 0 ? "rank" : "rerank");
            assert_int_equal(x->layers[l]->bucket, y->layers[l]->bucket);
            assert_string_equal(x->layers[l]->experiment, y->layers[l]->experiment);
        }
        /* bucket = hash(user ‖ layer salt) mod B */
        assert_int_equal(x->layers[0]->bucket, cascade_hash_bucket(uid, "rank-2026", 1000));
        assert_int_equal(x->layers[1]->bucket, cascade_hash_bucket(uid, "rerank-2026", 1000));
        /* The context is a valid message: it packs and unpacks. */
        size_t len = cascade__v1__experiment_context__get_packed_size(x);
        uint8_t *buf = cascade_arena_alloc(a, len);
        cascade__v1__experiment_context__pack(x, buf);
        Cascade__V1__ExperimentContext *back =
            cascade__v1__experiment_context__unpack(cascade_arena_protobuf_allocator(a), len, buf);
        assert_non_null(back);
        assert_string_equal(back->layers[1]->experiment, x->layers[1]->experiment);
        cascade_arena_reset(a);
    }
    cascade_arena_destroy(a);
}

/* Walks many users and checks every assignment against the rules. */
static void test_ranges_holdout_and_reverse(void **state)
{
    cascade_arena *a = cascade_arena_create(0);
    int held = 0, seen_a = 0, seen_b = 0, seen_reverse = 0, seen_launched = 0, seen_mmr07 = 0;
    int seen_baseline = 0;
    for (int u = 0; u < USERS; u++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "u-%d", u);
        Cascade__V1__ExperimentContext *ctx;
        assert_int_equal(cascade_experiments_assign(*state, uid, a, &ctx), 0);
        const Cascade__V1__LayerAssignment *rank = ctx->layers[0], *rerank = ctx->layers[1];
        bool in_holdout = cascade_hash_bucket(uid, "holdout", 1000) < 50;
        if (in_holdout) {
            /* Held out of every layer at once, with no parameters. */
            held++;
            assert_string_equal(rank->experiment, "holdout");
            assert_string_equal(rerank->experiment, "holdout");
            assert_int_equal(rank->n_params + rerank->n_params, 0);
            cascade_arena_reset(a);
            continue;
        }
        uint32_t b = rank->bucket;
        if ((b >= 100 && b <= 199) || (b >= 500 && b <= 549)) {
            seen_a++;
            assert_string_equal(rank->experiment, "fusion_a");
            assert_string_equal(param_of(rank, "rank.fusion.formula"), "product");
            assert_string_equal(param_of(rank, "rank.fusion.rank_alpha"), "0.7");
            assert_string_equal(param_of(rank, "rank.fusion.rank_beta"), "3");
            assert_string_equal(param_of(rank, "rank.model"), "true");
        } else if (b >= 200 && b <= 299) {
            seen_b++;
            assert_string_equal(rank->experiment, "fusion_b");
            assert_string_equal(param_of(rank, "rank.fusion.formula"), "sum");
        } else {
            seen_baseline++;
            assert_string_equal(rank->experiment, "baseline");
            assert_int_equal(rank->n_params, 0);
        }
        b = rerank->bucket;
        if (b <= 99) {
            seen_mmr07++;
            assert_string_equal(rerank->experiment, "mmr_07");
            assert_true(cascade_exp_param_double(ctx, "rerank.lambda", -1) == 0.7);
        } else if (b >= 990) {
            seen_reverse++;
            assert_string_equal(rerank->experiment, "mmr_05:reverse");
            assert_int_equal(rerank->n_params, 0);
            assert_true(cascade_exp_param_double(ctx, "rerank.lambda", -1) == -1);
        } else {
            seen_launched++;
            assert_string_equal(rerank->experiment, "mmr_05");
            assert_true(cascade_exp_param_double(ctx, "rerank.lambda", -1) == 0.5);
        }
        cascade_arena_reset(a);
    }
    /* Every branch was exercised, in roughly the configured proportions. */
    assert_true(held > USERS * 0.04 && held < USERS * 0.06);
    assert_true(seen_a > 0 && seen_b > 0 && seen_baseline > 0);
    assert_true(seen_mmr07 > 0 && seen_reverse > 0 && seen_launched > 0);
    assert_true(seen_reverse < seen_mmr07); /* 10 buckets vs 100 */
    cascade_arena_destroy(a);
}

static void test_param_lookup(void **state)
{
    cascade_arena *a = cascade_arena_create(0);
    /* Find a user in fusion_a (and not held out). */
    Cascade__V1__ExperimentContext *ctx = NULL;
    char uid[32];
    for (int u = 0; u < USERS; u++) {
        snprintf(uid, sizeof(uid), "p%d", u);
        assert_int_equal(cascade_experiments_assign(*state, uid, a, &ctx), 0);
        if (strcmp(ctx->layers[0]->experiment, "fusion_a") == 0)
            break;
    }
    assert_string_equal(ctx->layers[0]->experiment, "fusion_a");
    assert_string_equal(cascade_exp_param(ctx, "rank.fusion.formula"), "product");
    assert_true(cascade_exp_param_double(ctx, "rank.fusion.rank_alpha", 0) == 0.7);
    /* not a number: */
    assert_true(cascade_exp_param_double(ctx, "rank.fusion.formula", 1.5) == 1.5);
    assert_null(cascade_exp_param(ctx, "rank.unknown"));
    assert_true(cascade_exp_param_double(ctx, "rank.unknown", 2.5) == 2.5);
    assert_null(cascade_exp_param(NULL, "rank.fusion.formula"));
    assert_true(cascade_exp_param_double(NULL, "rank.fusion.rank_alpha", 4.0) == 4.0);
    assert_int_equal(cascade_experiments_assign(*state, NULL, a, &ctx), CASCADE_EINVAL);
    cascade_arena_destroy(a);
}

static void test_no_config(void **state)
{
    (void)state;
    char err[128];
    cascade_experiments *e = cascade_experiments_create(NULL, err, sizeof(err));
    assert_non_null(e);
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__ExperimentContext *ctx;
    assert_int_equal(cascade_experiments_assign(e, "anyone", a, &ctx), 0);
    assert_int_equal(ctx->bucket_count, 1000);
    assert_int_equal(ctx->n_layers, 0);
    cascade_arena_destroy(a);
    cascade_experiments_destroy(e);
}

static void expect_rejected(const char *text, const char *reason)
{
    char err[512] = "";
    cascade_experiments *e = create_from(text, err, sizeof(err));
    if (e) {
        cascade_experiments_destroy(e);
        fail_msg("config accepted, expected \"%s\"", reason);
    }
    if (!strstr(err, reason))
        fail_msg("expected \"%s\" in \"%s\"", reason, err);
}

static void test_invalid_configs(void **state)
{
    (void)state;
    expect_rejected(
        "{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
        "{\"name\": \"a\", \"ranges\": [[0, 100]]},"
        "{\"name\": \"b\", \"ranges\": [[100, 200]]}]}]}",
        "layer \"rank\" experiment \"b\": bucket 100 is already taken by experiment \"a\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"a\", \"ranges\": [[0, 10]]},"
                    "{\"name\": \"l\", \"launched\": true, \"reverse\": [[5, 6]]}]}]}",
                    "experiment \"l\": bucket 5 is already taken by experiment \"a\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"a\", \"ranges\": [[990, 1000]]}]}]}",
                    "range [990, 1000] is not inside [0, 999]");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"salt\": \"s\"},"
                    "{\"name\": \"rerank\", \"salt\": \"s\"}]}",
                    "layer \"rerank\": name or salt \"s\" already used by layer \"rank\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\"}, {\"name\": \"rank\"}]}",
                    "already used by layer \"rank\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"a\", \"launched\": true},"
                    "{\"name\": \"b\", \"launched\": true}]}]}",
                    "layer already has launched experiment \"a\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"a\", \"ranges\": [[1, 2]], \"reverse\": [[3, 4]]}]}]}",
                    "\"reverse\" only applies to a launched experiment");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"a\", \"ranges\": [[1, 2]], \"params\": "
                    "{\"rank.model\": [1]}}]}]}",
                    "param \"rank.model\" must be a number, string or boolean");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
                    "{\"name\": \"baseline\", \"ranges\": [[1, 2]]}]}]}",
                    "needs a \"name\"");
    expect_rejected("{\"layers\": [{\"name\": \"rank\", \"experiments\": [{\"name\": \"a\"}]}]}",
                    "experiment \"a\": needs \"ranges\"");
    expect_rejected("{\"buckets\": 0}", "\"buckets\" must be an integer");
    expect_rejected("{\"holdout\": [[5]]}", "holdout: range 0: expected [first, last]");
}

/* A config whose assignment the stages would refuse (common/request.h
 * limits) is refused at start-up instead of degrading every request. */
static void test_request_limits(void **state)
{
    (void)state;
    char text[4096], big[300];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(text, sizeof text, "{\"layers\": [{\"name\": \"%.129s\"}]}", big);
    expect_rejected(text, "layer 0: name longer than 128 bytes");
    snprintf(text, sizeof text,
             "{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
             "{\"name\": \"%.121s\", \"ranges\": [[1, 2]]}]}]}",
             big);
    expect_rejected(text, "experiment 0: name longer than 120 bytes");
    snprintf(text, sizeof text,
             "{\"layers\": [{\"name\": \"rank\", \"experiments\": ["
             "{\"name\": \"a\", \"ranges\": [[1, 2]], \"params\": {\"rank.model\": "
             "\"%.257s\"}}]}]}",
             big);
    expect_rejected(text, "value longer than 256 bytes");
    size_t off = (size_t)snprintf(text, sizeof text, "{\"layers\": [");
    for (int i = 0; i < 33; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "%s{\"name\": \"l%d\"}",
                                i ? "," : "", i);
    snprintf(text + off, sizeof text - off, "]}");
    expect_rejected(text, "33 layers, at most 32");
}

/* Every configured parameter key is checked against the registry
 * (common/exp_registry.c): an unknown key, a key of another stage set in a
 * stage's layer, and one key set by two layers are config errors. */
static void test_param_validation(void **state)
{
    (void)state;
    expect_rejected("{\"layers\": [{\"name\": \"rerank\", \"experiments\": ["
                    "{\"name\": \"typo\", \"ranges\": [[1, 2]], \"params\": "
                    "{\"rerank.lamda\": 0.5}}]}]}",
                    "layer \"rerank\" experiment \"typo\": unknown parameter \"rerank.lamda\" "
                    "(known for layer rerank: rerank.lambda");
    expect_rejected("{\"layers\": [{\"name\": \"recall\", \"experiments\": ["
                    "{\"name\": \"w\", \"ranges\": [[1, 2]], \"params\": "
                    "{\"recall.weight.\": 2}}]}]}",
                    "unknown parameter \"recall.weight.\"");
    expect_rejected("{\"layers\": [{\"name\": \"rerank\", \"experiments\": ["
                    "{\"name\": \"m\", \"ranges\": [[1, 2]], \"params\": "
                    "{\"rank.model\": \"lr\"}}]}]}",
                    "experiment \"m\": parameter \"rank.model\" belongs to stage \"rank\", not "
                    "to layer \"rerank\"");
    expect_rejected("{\"layers\": ["
                    "{\"name\": \"rerank\", \"experiments\": [{\"name\": \"a\", \"ranges\": "
                    "[[1, 2]], \"params\": {\"rerank.lambda\": 0.5}}]},"
                    "{\"name\": \"explore\", \"experiments\": [{\"name\": \"b\", \"ranges\": "
                    "[[1, 2]]}, {\"name\": \"c\", \"ranges\": [[5, 6]], \"params\": "
                    "{\"rerank.lambda\": 0.9}}]}]}",
                    "parameter \"rerank.lambda\" is set by layer \"rerank\" (experiment \"a\") "
                    "and by layer \"explore\" (experiment \"c\")");

    /* Accepted: a channel-suffixed key in its stage's layer, experiments of
     * one layer sharing a key, and a cross-stage layer setting another
     * stage's key that no other layer sets. */
    char err[512] = "";
    cascade_experiments *e = create_from(
        "{\"layers\": ["
        "{\"name\": \"recall\", \"experiments\": ["
        "{\"name\": \"a\", \"ranges\": [[1, 2]], \"params\": {\"recall.weight.itemcf\": 2}},"
        "{\"name\": \"b\", \"ranges\": [[3, 4]], \"params\": {\"recall.weight.itemcf\": 3,"
        " \"orchestrator.merge_max\": 500}}]},"
        "{\"name\": \"explore\", \"experiments\": [{\"name\": \"x\", \"ranges\": [[1, 2]],"
        " \"params\": {\"exploration.share\": 0.1, \"rank.model\": \"lr\"}}]}]}",
        err, sizeof err);
    if (!e)
        fail_msg("valid config rejected: %s", err);
    cascade_experiments_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),    cmocka_unit_test(test_ranges_holdout_and_reverse),
        cmocka_unit_test(test_param_lookup),     cmocka_unit_test(test_no_config),
        cmocka_unit_test(test_invalid_configs),  cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_param_validation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
