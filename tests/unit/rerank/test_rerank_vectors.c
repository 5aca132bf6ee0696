/* Tests of the item vectors ReRank loads (item_vectors.h): a two-tower item
 * index published in a model directory reaches the similarity terms of
 * both methods through the request path (candidates carry no embedding),
 * a newly published version replaces it, an unreadable one leaves the
 * current one serving, and a candidate's own embedding wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "config.h"
#include "item_vectors.h"
#include "latest_file.h"
#include "messages.h"
#include "rerank.h"
#include "rerank_test.h"
#include "support.h"
#include "vindex.h"

/* Publish version `version` with the vectors of items 100, 101, 102. */
static void publish(const char *dir, const char *version, const float *vecs)
{
    char path[600], err[512] = "";
    const uint64_t ids[3] = {100, 101, 102};
    struct cascade_vindex_opts o = {.nlist = 1};
    cascade_vindex *ix = cascade_vindex_build(vecs, ids, 3, 2, &o, err, sizeof err);
    assert_non_null(ix);
    snprintf(path, sizeof path, "%s/%s.items.safetensors", dir, version);
    assert_int_equal(cascade_vindex_save(ix, path, version, err, sizeof err), 0);
    cascade_vindex_destroy(ix);
    snprintf(path, sizeof path, "%s/two-tower.latest", dir);
    assert_int_equal(cascade_latest_write(path, version, err, sizeof err), 0);
}

/* Items 100, 101, 102 with rank scores 1, 0.5, 0 (distinct categories and
 * authors, no embeddings), count 2, method and its parameter from an experiment. */
static uint64_t second_pick(cascade_rerank *r, cascade_arena *a, const char *method,
                            const float *own)
{
    char err[256] = "";
    const float scores[3] = {1.0f, 0.5f, 0.0f};
    const uint32_t cats[3] = {1, 2, 3};
    const uint64_t authors[3] = {10, 11, 12};
    Cascade__V1__ReRankRequest *req = rerank_test_request(a, 2, scores, cats, authors, 3);
    for (size_t i = 0; own && i < 3; i++) {
        req->candidates[i]->attrs->embedding = (float *)own + 2 * i;
        req->candidates[i]->attrs->n_embedding = 2;
    }
    Cascade__V1__ExperimentContext *e = test_experiment(a, "rerank", "x", "rerank.method", method);
    /* a second param in the same layer: θ for DPP, λ for MMR */
    Cascade__V1__LayerAssignment *l = e->layers[0];
    Cascade__V1__LayerAssignment__ParamsEntry *p = cascade_arena_alloc(a, sizeof *p);
    cascade__v1__layer_assignment__params_entry__init(p);
    p->key = strcmp(method, "dpp") == 0 ? "rerank.dpp.theta" : "rerank.lambda";
    p->value = strcmp(method, "dpp") == 0 ? "0.3" : "0.5";
    Cascade__V1__LayerAssignment__ParamsEntry **ps =
        cascade_arena_calloc(a, l->n_params + 1, sizeof *ps);
    memcpy(ps, l->params, l->n_params * sizeof *ps);
    ps[l->n_params++] = p;
    l->params = ps;
    req->experiments = e;
    Cascade__V1__ReRankResponse *resp = NULL;
    assert_int_equal(cascade_rerank_run(r, a, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 100);
    return resp->candidates[1]->item_id;
}

static void test_published_vectors_reach_selection(void **state)
{
    (void)state;
    char dir[256], err[512] = "", path[600];
    assert_non_null(test_tempdir(dir, sizeof dir));
    cascade_arena *a = cascade_arena_create(0);
    cascade_config *cfg = cascade_config_parse(
        "{\"rerank\": {\"item_vectors\": {\"reload_ms\": 0}}}", "test", err, sizeof err);
    assert_non_null(cfg);

    /* No index published yet: relevance decides, 101 second. */
    cascade_rerank *r = cascade_rerank_create_dir(cfg, dir, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 101);
    assert_int_equal(second_pick(r, a, "mmr", NULL), 101);

    /* v1: 100 and 101 point the same way, 102 is orthogonal: both methods
     * now take 102 second (the arithmetic of test_rerank_dpp's
     * test_embedding_changes_selection). */
    const float v1[6] = {1, 0, 2, 0, 0, 3};
    publish(dir, "v1", v1);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 102);
    assert_int_equal(second_pick(r, a, "mmr", NULL), 102);

    /* The candidates' own embeddings (all orthogonal) win over the index. */
    const float own[6] = {1, 0, 0, 1, 0, -1};
    assert_int_equal(second_pick(r, a, "dpp", own), 101);

    /* v2: now 102 copies 100 and 101 is orthogonal: 101 second again. */
    const float v2[6] = {1, 0, 0, 1, 1, 0};
    publish(dir, "v2", v2);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 101);
    assert_int_equal(second_pick(r, a, "mmr", NULL), 101);

    /* v4 = v1's vectors again (102 second), then a version whose file is
     * corrupt: it is skipped and v4 keeps serving (without vectors it
     * would be 101). */
    publish(dir, "v4", v1);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 102);
    snprintf(path, sizeof path, "%s/v3.items.safetensors", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a safetensors file", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/two-tower.latest", dir);
    assert_int_equal(cascade_latest_write(path, "v3", err, sizeof err), 0);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 102);
    assert_int_equal(second_pick(r, a, "mmr", NULL), 102);
    cascade_rerank_destroy(r);

    /* v1 again, but item vectors disabled in config: relevance decides. */
    publish(dir, "v1", v1);
    cascade_config *off = cascade_config_parse(
        "{\"rerank\": {\"item_vectors\": {\"enabled\": false}}}", "test", err, sizeof err);
    assert_non_null(off);
    r = cascade_rerank_create_dir(off, dir, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(second_pick(r, a, "dpp", NULL), 101);
    cascade_rerank_destroy(r);
    cascade_config_destroy(off);
    cascade_config_destroy(cfg);
    cascade_arena_destroy(a);
    test_rmdir(dir);
}

static void test_lookup(void **state)
{
    (void)state;
    char dir[256];
    assert_non_null(test_tempdir(dir, sizeof dir));
    const float v[6] = {3, 4, 0, 2, 1, 0};
    publish(dir, "v1", v);
    cascade_rerank_vectors *vs = cascade_rerank_vectors_create(dir, 1000);
    assert_non_null(vs);
    const struct cascade_rerank_vecset *set = cascade_rerank_vectors_acquire(vs);
    assert_non_null(set);
    assert_string_equal(cascade_rerank_vectors_version(set), "v1");
    assert_int_equal(cascade_rerank_vectors_count(set), 3);
    size_t dim = 0;
    const float *x = cascade_rerank_vectors_find(set, 100, &dim);
    assert_non_null(x);
    assert_int_equal(dim, 2);
    assert_float_equal(x[0], 0.6f, 1e-6); /* unit length under the cosine metric */
    assert_float_equal(x[1], 0.8f, 1e-6);
    x = cascade_rerank_vectors_find(set, 101, &dim);
    assert_float_equal(x[1], 1.0f, 1e-6);
    assert_null(cascade_rerank_vectors_find(set, 99, &dim));
    assert_null(cascade_rerank_vectors_find(set, 103, &dim));
    cascade_rerank_vectors_release(vs, set);
    cascade_rerank_vectors_destroy(vs);
    /* No directory: nothing, never an error. */
    vs = cascade_rerank_vectors_create("/nonexistent/dir", 0);
    assert_null(cascade_rerank_vectors_acquire(vs));
    cascade_rerank_vectors_destroy(vs);
    cascade_rerank_vectors_destroy(NULL);
    test_rmdir(dir);
}

/* Many ids in no order (the index keeps them as published): each finds
 * its own row, through a map that grew many times, and absent ids find
 * nothing. Item k's vector is (1, k), so the row read back names k. */
static void test_lookup_many(void **state)
{
    (void)state;
    enum { N = 5000 };
    char dir[256], path[600], err[512] = "";
    static uint64_t ids[N];
    static float vecs[2 * N];
    assert_non_null(test_tempdir(dir, sizeof dir));
    for (size_t k = 0; k < N; k++) {
        ids[k] = 1000000007ULL * (k + 1) % 2147483647ULL; /* distinct, scrambled */
        vecs[2 * k] = 1.0f;
        vecs[2 * k + 1] = (float)k;
    }
    struct cascade_vindex_opts o = {.nlist = 1};
    cascade_vindex *ix = cascade_vindex_build(vecs, ids, N, 2, &o, err, sizeof err);
    assert_non_null(ix);
    snprintf(path, sizeof path, "%s/many.items.safetensors", dir);
    assert_int_equal(cascade_vindex_save(ix, path, "many", err, sizeof err), 0);
    cascade_vindex_destroy(ix);
    snprintf(path, sizeof path, "%s/two-tower.latest", dir);
    assert_int_equal(cascade_latest_write(path, "many", err, sizeof err), 0);

    cascade_rerank_vectors *vs = cascade_rerank_vectors_create(dir, 1000);
    const struct cascade_rerank_vecset *set = cascade_rerank_vectors_acquire(vs);
    assert_non_null(set);
    assert_int_equal(cascade_rerank_vectors_count(set), N);
    for (size_t k = 0; k < N; k++) {
        size_t dim = 0;
        const float *x = cascade_rerank_vectors_find(set, ids[k], &dim);
        assert_non_null(x);
        assert_int_equal(dim, 2);
        assert_float_equal(x[1] / x[0], (double)k, 1e-3 * (double)k + 1e-4);
    }
    size_t dim = 0;
    for (uint64_t absent = 0; absent < 64; absent++) { /* none of the ids is below 64 */
        for (size_t k = 0; k < N; k++)
            assert_true(ids[k] != absent);
        assert_null(cascade_rerank_vectors_find(set, absent, &dim));
    }
    cascade_rerank_vectors_release(vs, set);
    cascade_rerank_vectors_destroy(vs);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vectors_reach_selection),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_lookup_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
