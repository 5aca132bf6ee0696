/* Unit tests for the vector index's persistence, input checks and config
 * (common/ml/vindex_io.c, vindex_config.c): a save/load round trip answers
 * identically, the file is plain safetensors, and bad inputs (dimension
 * mismatch, k > n, non-finite or zero vectors, corrupt files, bad config
 * values) are rejected with messages that say what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "rng.h"
#include "safetensors.h"
#include "support.h"
#include "vindex.h"

enum { N = 3000, D = 12, NQ = 40, K = 25 };

struct fixture {
    char dir[256], path[512];
    float *x, *q;
    uint64_t *ids;
    cascade_vindex *ix;
};

static float uniform(struct cascade_rng *r)
{
    return (float)(cascade_rng_uniform(r) * 2 - 1);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 7);
    f->x = malloc(sizeof(float) * N * D);
    f->q = malloc(sizeof(float) * NQ * D);
    f->ids = malloc(sizeof(uint64_t) * N);
    for (size_t i = 0; i < N * D; i++)
        f->x[i] = uniform(&rng) + (i % D == (i / D) % 5 ? 2.0f : 0.0f); /* 5 loose groups */
    for (size_t i = 0; i < NQ * D; i++)
        f->q[i] = uniform(&rng);
    for (size_t i = 0; i < N; i++)
        f->ids[i] = ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL; /* uses all 64 bits */
    struct cascade_vindex_opts o = {.nlist = 30, .nprobe = 4, .seed = 1};
    f->ix = cascade_vindex_build(f->x, f->ids, N, D, &o, err, sizeof(err));
    if (!f->ix || !test_tempdir(f->dir, sizeof(f->dir))) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/items.vindex", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_vindex_destroy(f->ix);
    test_rmdir(f->dir);
    free(f->x);
    free(f->q);
    free(f->ids);
    free(f);
    return 0;
}

/* ---- round trip ---- */

static bool is_known_id(const struct fixture *f, uint64_t id)
{
    for (size_t i = 0; i < N; i++) {
        if (f->ids[i] == id)
            return true;
    }
    return false;
}

static void search_both(const cascade_vindex *ix, const float *q, uint64_t *ids, float *scores)
{
    char err[256] = "";
    assert_int_equal(cascade_vindex_search(ix, q, NQ, D, K, 0, ids, scores, err, sizeof(err)), 0);
    assert_int_equal(cascade_vindex_search_exact(ix, q, NQ, D, K, ids + NQ * K, scores + NQ * K,
                                                 err, sizeof(err)),
                     0);
}

static void test_save_load_round_trip(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_int_equal(cascade_vindex_save(f->ix, f->path, "items-v7", err, sizeof(err)), 0);
    cascade_vindex *back = cascade_vindex_load(f->path, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(cascade_vindex_dim(back), D);
    assert_int_equal(cascade_vindex_size(back), N);
    assert_int_equal(cascade_vindex_nlist(back), 30);
    assert_int_equal(cascade_vindex_nprobe(back), 4);
    assert_int_equal(cascade_vindex_metric(back), CASCADE_VINDEX_COSINE);
    assert_string_equal(cascade_vindex_version(back), "items-v7");
    for (size_t l = 0; l < 30; l++)
        assert_int_equal(cascade_vindex_list_size(back, l), cascade_vindex_list_size(f->ix, l));
    static uint64_t a[2 * NQ * K], b[2 * NQ * K];
    static float sa[2 * NQ * K], sb[2 * NQ * K];
    search_both(f->ix, f->q, a, sa);
    search_both(back, f->q, b, sb);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_equal(sa, sb, sizeof(sa));
    /* The ids survived all 64 bits: every answer is one of ours. */
    for (size_t i = 0; i < 2 * NQ * K; i++)
        assert_true(is_known_id(f, b[i]));
    cascade_vindex_destroy(back);
}

/* Any safetensors reader sees the tensors and metadata the header documents. */
static void test_file_is_plain_safetensors(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_int_equal(cascade_vindex_save(f->ix, f->path, NULL, err, sizeof(err)), 0);
    cascade_safetensors *st = cascade_safetensors_read(f->path, err, sizeof(err));
    assert_non_null(st);
    assert_string_equal(cascade_safetensors_meta(st, "format"), "cascade.vindex");
    assert_string_equal(cascade_safetensors_meta(st, "dim"), "12");
    assert_string_equal(cascade_safetensors_meta(st, "nlist"), "30");
    assert_string_equal(cascade_safetensors_meta(st, "metric"), "cosine");
    const struct cascade_tensor *ids = cascade_safetensors_find(st, "ids");
    const struct cascade_tensor *v = cascade_safetensors_find(st, "vectors");
    assert_non_null(ids);
    assert_non_null(v);
    assert_int_equal(ids->shape[0], N);
    assert_int_equal(ids->shape[1], 2);
    assert_int_equal(v->shape[1], D);
    /* Stored vectors are unit length under the cosine metric. */
    double ss = 0;
    for (size_t j = 0; j < D; j++)
        ss += (double)v->data[j] * v->data[j];
    assert_true(fabs(ss - 1.0) < 1e-5);
    uint64_t first;
    memcpy(&first, ids->data, sizeof(first));
    assert_true(is_known_id(f, first) && first > UINT32_MAX);
    assert_int_equal(access(f->path, F_OK), 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* written via rename: no leftover */
    cascade_safetensors_destroy(st);
}

/* ---- corrupt files ---- */

static void assert_load_fails(const char *path, const char *needle)
{
    char err[256] = "";
    cascade_vindex *ix = cascade_vindex_load(path, err, sizeof(err));
    if (ix || !strstr(err, needle))
        fail_msg("loading %s: expected an error containing \"%s\", got \"%s\"", path, needle, err);
    assert_non_null(strstr(err, path));
}

static void test_corrupt_files_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", other[600];
    assert_int_equal(cascade_vindex_save(f->ix, f->path, "v1", err, sizeof(err)), 0);
    /* Truncated: the data ends early. */
    long size = 0;
    FILE *fp = fopen(f->path, "rb");
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(f->path, size / 2), 0);
    assert_load_fails(f->path, "truncated");
    /* A safetensors file that is not an index. */
    snprintf(other, sizeof(other), "%s/model.safetensors", f->dir);
    float w[3] = {1, 2, 3};
    struct cascade_tensor t = {.name = "weight", .ndim = 1, .shape = {3}, .data = w};
    assert_int_equal(cascade_safetensors_write(other, &t, 1, NULL, NULL, 0, err, sizeof(err)), 0);
    assert_load_fails(other, "not a vector index");
    /* Missing file. */
    snprintf(other, sizeof(other), "%s/absent.vindex", f->dir);
    assert_load_fails(other, "cannot open");
}

/* Write an index-like file whose parts can be tampered with. */
static void write_tampered(const char *path, const char *nlist_meta, uint64_t last_offset,
                           float centroid0)
{
    float centroids[2 * 2] = {centroid0, 0, 0, 1}, vectors[3 * 2] = {1, 0, 1, 0, 0, 1};
    uint64_t ids[3] = {10, 11, 12}, offsets[3] = {0, 2, last_offset};
    struct cascade_tensor t[4] = {
        {.name = "centroids", .ndim = 2, .shape = {2, 2}, .data = centroids},
        {.name = "vectors", .ndim = 2, .shape = {3, 2}, .data = vectors},
        {.name = "ids", .ndim = 2, .shape = {3, 2}, .data = (const float *)(const void *)ids},
        {.name = "list_offsets",
         .ndim = 2,
         .shape = {3, 2},
         .data = (const float *)(const void *)offsets},
    };
    const char *keys[] = {"format", "format_version", "metric", "dim", "n", "nlist", "nprobe"};
    const char *values[] = {"cascade.vindex", "1", "cosine", "2", "3", nlist_meta, "1"};
    char err[256] = "";
    assert_int_equal(cascade_safetensors_write(path, t, 4, keys, values, 7, err, sizeof(err)), 0);
}

static void test_inconsistent_files_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    write_tampered(f->path, "2", 3, 1.0f);
    cascade_vindex *ok = cascade_vindex_load(f->path, err, sizeof(err));
    assert_non_null(ok); /* the untampered file loads */
    assert_int_equal(cascade_vindex_list_size(ok, 0), 2);
    cascade_vindex_destroy(ok);
    write_tampered(f->path, "2", 5, 1.0f);
    assert_load_fails(f->path, "list_offsets");
    write_tampered(f->path, "3", 3, 1.0f);
    assert_load_fails(f->path, "\"centroids\" has the wrong shape");
    write_tampered(f->path, "two", 3, 1.0f);
    assert_load_fails(f->path, "metadata \"nlist\"");
    write_tampered(f->path, "2", 3, NAN);
    assert_load_fails(f->path, "non-finite");
}

/* ---- bad inputs ---- */

static void assert_err_has(const char *err, const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("expected an error containing \"%s\", got \"%s\"", needle, err);
}

static void test_bad_search_inputs(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    uint64_t ids[N];
    float scores[N], q[D + 1] = {0};
    assert_int_equal(cascade_vindex_search(f->ix, q, 1, D + 1, 5, 0, ids, scores, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_err_has(err, "query dimension 13 does not match the index's 12");
    assert_int_equal(
        cascade_vindex_search_exact(f->ix, q, 1, D, N + 1, ids, scores, err, sizeof(err)),
        CASCADE_EINVAL);
    assert_err_has(err, "k = 3001 must be in 1..3000");
    assert_int_equal(cascade_vindex_search(f->ix, q, 1, D, 0, 0, ids, scores, err, sizeof(err)),
                     CASCADE_EINVAL);
    q[3] = NAN;
    assert_int_equal(cascade_vindex_search(f->ix, q, 1, D, 5, 0, ids, scores, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_err_has(err, "non-finite");
}

static void test_bad_build_inputs(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct cascade_vindex_opts o = {.nlist = 11};
    assert_null(cascade_vindex_build(f->x, f->ids, 10, D, &o, err, sizeof(err)));
    assert_err_has(err, "nlist = 11 exceeds the 10 items");
    assert_null(cascade_vindex_build(f->x, f->ids, 0, D, NULL, err, sizeof(err)));
    assert_err_has(err, "n ≥ 1");
    float x[2 * D] = {0};
    uint64_t ids[2] = {5, 6};
    x[0] = 1;
    assert_null(cascade_vindex_build(x, ids, 2, D, NULL, err, sizeof(err)));
    assert_err_has(err, "vector 1 (id 6) is zero");
    struct cascade_vindex_opts ip = {.metric = CASCADE_VINDEX_IP};
    cascade_vindex *ok = cascade_vindex_build(x, ids, 2, D, &ip, err, sizeof(err));
    assert_non_null(ok); /* a zero vector is fine for inner product */
    cascade_vindex_destroy(ok);
    x[D + 2] = INFINITY;
    assert_null(cascade_vindex_build(x, ids, 2, D, &ip, err, sizeof(err)));
    assert_err_has(err, "vector 1 (id 6) has a non-finite value at 2");
    /* A training sample smaller than nlist. */
    struct cascade_vindex_opts small = {.nlist = 50, .train_sample = 40};
    assert_null(cascade_vindex_build(f->x, f->ids, N, D, &small, err, sizeof(err)));
    assert_err_has(err, "raise train_sample");
}

static void test_bad_kmeans_inputs(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    float c[20 * D];
    assert_int_equal(cascade_vindex_kmeans(f->x, 10, D, 20, NULL, c, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_err_has(err, "k = 20 clusters but only 10 points");
    assert_int_equal(cascade_vindex_kmeans(f->x, 10, D, 0, NULL, c, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_vindex_kmeans(f->x, 10, 0, 2, NULL, c, NULL, err, sizeof(err)),
                     CASCADE_EINVAL);
}

/* ---- config ---- */

static void test_config_keys(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_config *c =
        cascade_config_parse("{\"vindex\": {\"nlist\": 512, \"nprobe\": 24, \"kmeans_iters\": 8, "
                             "\"train_sample\": 40000, \"metric\": \"ip\", \"seed\": 3}, "
                             "\"two_tower\": {\"index\": {\"nprobe\": 7}}}",
                             "test.json", err, sizeof(err));
    assert_non_null(c);
    struct cascade_vindex_opts o = {0};
    assert_int_equal(cascade_vindex_opts_from_config(c, NULL, &o, err, sizeof(err)), 0);
    assert_int_equal(o.nlist, 512);
    assert_int_equal(o.nprobe, 24);
    assert_int_equal(o.kmeans_iters, 8);
    assert_int_equal(o.train_sample, 40000);
    assert_int_equal(o.metric, CASCADE_VINDEX_IP);
    assert_int_equal(o.seed, 3);
    struct cascade_vindex_opts p = {0};
    assert_int_equal(cascade_vindex_opts_from_config(c, "two_tower.index", &p, err, sizeof(err)),
                     0);
    assert_int_equal(p.nprobe, 7);
    assert_int_equal(p.nlist, 0); /* absent: automatic */
    assert_int_equal(p.metric, CASCADE_VINDEX_COSINE);
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"vindex\": {\"nprobe\": -1}}", "bad.json", err, sizeof(err));
    assert_int_equal(cascade_vindex_opts_from_config(c, NULL, &o, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_err_has(err, "vindex.nprobe");
    cascade_config_destroy(c);
    c = cascade_config_parse("{\"vindex\": {\"metric\": \"l2\"}}", "bad.json", err, sizeof(err));
    assert_int_equal(cascade_vindex_opts_from_config(c, NULL, &o, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_err_has(err, "vindex.metric: expected \"cosine\" or \"ip\", got \"l2\"");
    cascade_config_destroy(c);
    struct cascade_vindex_opts none = {0};
    assert_int_equal(cascade_vindex_opts_from_config(NULL, NULL, &none, err, sizeof(err)), 0);
    assert_int_equal(none.nlist, 0);
}

static void test_destroy_null(void **state)
{
    (void)state;
    cascade_vindex_destroy(NULL);
    assert_int_equal(cascade_vindex_size(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_is_plain_safetensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inconsistent_files_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_search_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_build_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_kmeans_inputs, setup, teardown),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
