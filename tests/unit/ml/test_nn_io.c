/* Unit tests for parameter sets and their safetensors persistence in
 * common/ml/nn: save → load gives bit-identical outputs, loads are all or
 * nothing, and a missing tensor or a shape mismatch is rejected with a
 * message naming the tensor, the file and both shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "nn.h"
#include "support.h"
#include "test_nn_check.h"

struct fixture {
    char dir[256];
    char path[512];
};

static int setup(void **state)
{
    static struct fixture f;
    if (!test_tempdir(f.dir, sizeof(f.dir)))
        return -1;
    snprintf(f.path, sizeof(f.path), "%s/model.safetensors", f.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    test_rmdir(f->dir);
    return 0;
}

/* An embedding bag feeding a 4 → hidden → 1 MLP, like a small tower. */
struct model {
    cascade_nn_params *ps;
    struct cascade_nn_embedding emb;
    struct cascade_nn_dense fc1, fc2;
};

static void model_init(struct model *m, uint64_t seed, size_t hidden)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, seed);
    m->ps = cascade_nn_params_create();
    char err[256] = "";
    assert_int_equal(cascade_nn_embedding_init(&m->emb, m->ps, "item_emb", 20, 4,
                                               CASCADE_NN_POOL_MEAN, 0.3f, &rng, err, sizeof(err)),
                     0);
    assert_int_equal(cascade_nn_dense_init(&m->fc1, m->ps, "tower.0", 4, hidden,
                                           CASCADE_NN_INIT_HE_UNIFORM, &rng, err, sizeof(err)),
                     0);
    assert_int_equal(cascade_nn_dense_init(&m->fc2, m->ps, "tower.2", hidden, 1,
                                           CASCADE_NN_INIT_XAVIER_UNIFORM, &rng, err, sizeof(err)),
                     0);
    nn_fill(&rng, m->fc1.bias->value, hidden, -0.1f, 0.1f);
}

static void model_forward(const struct model *m, float out[3])
{
    static const size_t offsets[4] = {0, 2, 3, 6};
    static const uint32_t ids[6] = {1, 19, 4, 0, 7, 7};
    struct cascade_nn_bags bags = {.batch = 3, .offsets = offsets, .ids = ids};
    float e[3 * 4], h[3 * 16];
    assert_int_equal(cascade_nn_embedding_forward(&m->emb, &bags, e), 0);
    assert_int_equal(cascade_nn_dense_forward(&m->fc1, e, 3, h), 0);
    cascade_nn_relu_forward(h, 3 * m->fc1.out, h);
    assert_int_equal(cascade_nn_dense_forward(&m->fc2, h, 3, out), 0);
}

static void test_roundtrip_identical_outputs(void **state)
{
    struct fixture *f = *state;
    struct model a, b;
    model_init(&a, 1, 16);
    model_init(&b, 2, 16); /* other weights, same architecture */
    float out_a[3], out_b[3];
    model_forward(&a, out_a);
    model_forward(&b, out_b);
    assert_memory_not_equal(out_a, out_b, sizeof(out_a));

    char err[256] = "";
    const char *keys[1] = {"version"}, *values[1] = {"20240601-1"};
    assert_int_equal(cascade_nn_params_save(a.ps, f->path, keys, values, 1, err, sizeof(err)), 0);
    assert_int_equal(cascade_nn_params_load(b.ps, f->path, err, sizeof(err)), 0);
    model_forward(&b, out_b);
    assert_memory_equal(out_a, out_b, sizeof(out_a));
    for (size_t i = 0; i < cascade_nn_params_count(a.ps); i++) {
        const struct cascade_nn_param *pa = cascade_nn_params_at(a.ps, i);
        assert_memory_equal(pa->value, cascade_nn_params_find(b.ps, pa->name)->value,
                            pa->size * sizeof(float));
    }

    /* The file holds the torch names and shapes, and the metadata. */
    cascade_safetensors *st = cascade_safetensors_read(f->path, err, sizeof(err));
    assert_non_null(st);
    const struct cascade_tensor *w = cascade_safetensors_find(st, "tower.0.weight");
    assert_non_null(w);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 16); /* [out, in] */
    assert_int_equal(w->shape[1], 4);
    const struct cascade_tensor *bias = cascade_safetensors_find(st, "tower.2.bias");
    assert_non_null(bias);
    assert_int_equal(bias->ndim, 1);
    assert_non_null(cascade_safetensors_find(st, "item_emb.weight"));
    assert_string_equal(cascade_safetensors_meta(st, "version"), "20240601-1");
    cascade_safetensors_destroy(st);
    cascade_nn_params_destroy(a.ps);
    cascade_nn_params_destroy(b.ps);
}

static void test_shape_mismatch_rejected(void **state)
{
    struct fixture *f = *state;
    struct model a, wide;
    model_init(&a, 1, 8);
    model_init(&wide, 3, 16);
    char err[256] = "";
    assert_int_equal(cascade_nn_params_save(a.ps, f->path, NULL, NULL, 0, err, sizeof(err)), 0);
    float before[3], after[3];
    model_forward(&wide, before);
    assert_int_equal(cascade_nn_params_load(wide.ps, f->path, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "tensor 'tower.0.weight' has shape [8, 4], the model expects "
                                "[16, 4]"));
    /* All or nothing: item_emb.weight matched but was not copied either. */
    model_forward(&wide, after);
    assert_memory_equal(before, after, sizeof(before));
    cascade_nn_params_destroy(a.ps);
    cascade_nn_params_destroy(wide.ps);
}

static void test_missing_tensor_rejected(void **state)
{
    struct fixture *f = *state;
    struct model a;
    model_init(&a, 1, 8);
    char err[256] = "";
    assert_int_equal(cascade_nn_params_save(a.ps, f->path, NULL, NULL, 0, err, sizeof(err)), 0);
    /* A model with one more parameter than the file: named in the error. */
    assert_non_null(
        cascade_nn_params_add(a.ps, "gates.0.weight", 2, (size_t[]){4, 4}, 0, err, sizeof(err)));
    assert_int_equal(cascade_nn_params_load(a.ps, f->path, err, sizeof(err)), CASCADE_ENOTFOUND);
    assert_non_null(strstr(err, "tensor 'gates.0.weight' is missing"));

    /* Extra tensors in the file are fine (e.g. torch buffers): a subset loads. */
    cascade_nn_params *sub = cascade_nn_params_create();
    struct cascade_nn_param *p =
        cascade_nn_params_add(sub, "tower.2.bias", 1, (size_t[]){1}, 0, err, sizeof(err));
    assert_int_equal(cascade_nn_params_load(sub, f->path, err, sizeof(err)), 0);
    assert_memory_equal(p->value, a.fc2.bias->value, sizeof(float));
    cascade_nn_params_destroy(sub);

    /* A vector where the file has a matrix is a shape mismatch too. */
    sub = cascade_nn_params_create();
    cascade_nn_params_add(sub, "tower.2.weight", 1, (size_t[]){8}, 0, err, sizeof(err));
    assert_int_equal(cascade_nn_params_load(sub, f->path, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "has shape [1, 8], the model expects [8]"));
    cascade_nn_params_destroy(sub);
    cascade_nn_params_destroy(a.ps);
}

static void test_unreadable_files(void **state)
{
    struct fixture *f = *state;
    cascade_nn_params *ps = cascade_nn_params_create();
    cascade_nn_params_add(ps, "w", 1, (size_t[]){2}, 0, NULL, 0);
    char err[256] = "", path[600];
    snprintf(path, sizeof(path), "%s/absent.safetensors", f->dir);
    assert_int_equal(cascade_nn_params_load(ps, path, err, sizeof(err)), CASCADE_ENOTFOUND);
    assert_non_null(strstr(err, "absent.safetensors"));
    FILE *fp = fopen(f->path, "wb");
    fputs("not a model", fp);
    fclose(fp);
    assert_int_equal(cascade_nn_params_load(ps, f->path, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, f->path));
    cascade_nn_params_destroy(ps);
}

/* Forward passes over a model nobody trains share nothing mutable: threads
 * running them at once all get the single-threaded answer, bit for bit. */
struct infer_job {
    const struct model *m;
    const float *want;
    int mismatches;
};

static void *infer_thread(void *arg)
{
    struct infer_job *job = arg;
    for (int i = 0; i < 300; i++) {
        float out[3];
        model_forward(job->m, out);
        job->mismatches += memcmp(out, job->want, sizeof(out)) != 0;
    }
    return NULL;
}

static void test_concurrent_inference(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 5, 16);
    float want[3];
    model_forward(&m, want);
    pthread_t threads[4];
    struct infer_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (struct infer_job){.m = &m, .want = want};
        assert_int_equal(pthread_create(&threads[t], NULL, infer_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(jobs[t].mismatches, 0);
    }
    cascade_nn_params_destroy(m.ps);
}

static void test_params_add_errors(void **state)
{
    (void)state;
    cascade_nn_params *ps = cascade_nn_params_create();
    char err[256] = "";
    assert_non_null(cascade_nn_params_add(ps, "w", 2, (size_t[]){2, 3}, 0, err, sizeof(err)));
    assert_null(cascade_nn_params_add(ps, "w", 1, (size_t[]){2}, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "'w': name already used"));
    assert_null(cascade_nn_params_add(ps, "x", 3, (size_t[]){2, 2, 2}, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "1-D or 2-D"));
    assert_null(cascade_nn_params_add(ps, "y", 2, (size_t[]){0, 2}, 0, err, sizeof(err)));
    assert_null(
        cascade_nn_params_add(ps, "z", 2, (size_t[]){SIZE_MAX / 2, 4}, 0, err, sizeof(err)));
    assert_null(cascade_nn_params_add(ps, "", 1, (size_t[]){1}, 0, err, sizeof(err)));
    assert_int_equal(cascade_nn_params_count(ps), 1);
    assert_int_equal(cascade_nn_params_numel(ps), 6);
    assert_null(cascade_nn_params_at(ps, 1));
    /* Many parameters: pointers stay valid while the set grows. */
    struct cascade_nn_param *first = cascade_nn_params_find(ps, "w");
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p.%d", i);
        assert_non_null(cascade_nn_params_add(ps, name, 1, (size_t[]){1}, 0, err, sizeof(err)));
    }
    assert_ptr_equal(cascade_nn_params_find(ps, "w"), first);
    assert_string_equal(cascade_nn_params_at(ps, 100)->name, "p.99");
    cascade_nn_params_destroy(ps);
    cascade_nn_params_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_identical_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shape_mismatch_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_tensor_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_files, setup, teardown),
        cmocka_unit_test(test_concurrent_inference),
        cmocka_unit_test(test_params_add_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
