/* Unit tests of the MMoE ranker: whole-model gradients against finite
 * differences (with expert dropout and a watch-time task), learning a toy
 * two-task problem, gate statistics, watch-time serving, save/load. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "lr.h"
#include "mmoe.h"
#include "safetensors.h"
#include "test_nn_check.h"

#define H 2e-2f

static cascade_mmoe *make_model(size_t input_dim, size_t n_experts, size_t hidden, size_t tower,
                                const char *tasks, float dropout, uint64_t seed)
{
    struct cascade_mmoe_config c;
    char err[256] = "";
    cascade_mmoe_config_default(&c, input_dim);
    c.n_experts = n_experts;
    c.expert_hidden = hidden;
    c.tower_hidden = tower;
    c.expert_dropout = dropout;
    c.seed = seed;
    if (tasks)
        assert_int_equal(cascade_mmoe_config_set_tasks(&c, tasks, err, sizeof(err)), 0);
    cascade_mmoe *m = cascade_mmoe_create(&c, err, sizeof(err));
    if (!m)
        fail_msg("cascade_mmoe_create: %s", err);
    return m;
}

/* ---- gradient check ---- */

enum { GB = 6, GD = 5 };

struct gc {
    cascade_mmoe *m;
    cascade_mmoe_scratch *s;
    float x[GB * GD], labels[GB * 3], weights[GB * 3];
};

static double gc_loss(void *p)
{
    struct gc *g = p;
    return cascade_mmoe_loss(g->m, g->s, g->x, g->labels, g->weights, GB, true, NULL);
}

static void test_gradients(void **state)
{
    (void)state;
    struct gc g;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 7);
    struct cascade_mmoe_config c;
    char err[256];
    cascade_mmoe_config_default(&c, GD);
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click,watch_time,like", err, sizeof(err)),
                     0);
    c.n_experts = 3;
    c.expert_hidden = 4;
    c.tower_hidden = 3;
    c.expert_dropout = 0.3f;
    c.seed = 11;
    c.tasks[2].loss_weight = 0.5f; /* the loss weight must scale its gradient */
    g.m = cascade_mmoe_create(&c, err, sizeof(err));
    assert_non_null(g.m);
    g.s = cascade_mmoe_scratch_create(g.m, GB);
    assert_non_null(g.s);
    cascade_nn_params *ps = cascade_mmoe_params(g.m);
    /* Keep every ReLU input well away from its kink, so that a finite
     * difference step never crosses it: small hidden weights and hidden
     * biases of ±0.8 (half the units on, half off). */
    for (size_t i = 0; i < cascade_nn_params_count(ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(ps, i);
        bool hidden = strncmp(p->name, "experts.", 8) == 0 ||
                      (strncmp(p->name, "towers.", 7) == 0 && strstr(p->name, ".0."));
        if (!hidden)
            continue;
        if (strstr(p->name, "weight"))
            for (size_t k = 0; k < p->size; k++)
                p->value[k] *= 0.3f;
        else
            for (size_t k = 0; k < p->size; k++)
                p->value[k] = k % 2 ? -0.8f : 0.8f;
    }
    nn_fill(&rng, g.x, GB * GD, -1, 1);
    for (size_t b = 0; b < GB; b++) {
        g.labels[b * 3 + 0] = (float)(b % 2);
        g.labels[b * 3 + 1] = (float)(b * 3) + 0.5f; /* raw watch time */
        g.labels[b * 3 + 2] = (float)((b / 2) % 2);
        for (size_t t = 0; t < 3; t++)
            g.weights[b * 3 + t] = 1.0f;
    }
    g.weights[1 * 3 + 2] = 0.0f; /* a missing label */
    cascade_mmoe_draw_dropout(g.m, g.s, &rng, GB);

    double task_loss[3];
    double loss = cascade_mmoe_backward(g.m, g.s, g.x, g.labels, g.weights, GB, true, task_loss);
    assert_near(loss, gc_loss(&g), 1e-9);
    assert_near(loss, task_loss[0] + task_loss[1] + 0.5 * task_loss[2], 1e-9);
    /* Expert dropout changes the loss (the mask is really applied). */
    assert_true(
        fabs(cascade_mmoe_loss(g.m, g.s, g.x, g.labels, g.weights, GB, false, NULL) - loss) > 1e-6);
    for (size_t i = 0; i < cascade_nn_params_count(ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(ps, i);
        float *analytic = malloc(p->size * sizeof(float));
        memcpy(analytic, p->grad, p->size * sizeof(float));
        assert_true(nn_gradcheck(p->name, gc_loss, &g, p->value, p->size, analytic, H) <
                    NN_GRAD_TOL);
        free(analytic);
    }
    cascade_mmoe_scratch_destroy(g.s);
    cascade_mmoe_destroy(g.m);
}

/* ---- training helpers ---- */

static void train(cascade_mmoe *m, const float *x, const float *labels, size_t n, size_t epochs,
                  size_t batch, float lr, uint64_t seed)
{
    size_t D = cascade_mmoe_config(m)->input_dim, T = cascade_mmoe_config(m)->n_tasks;
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, batch);
    assert_non_null(s);
    struct cascade_nn_optim o;
    cascade_nn_optim_adam(&o, lr);
    struct cascade_rng rng;
    cascade_rng_seed(&rng, seed);
    for (size_t ep = 0; ep < epochs; ep++) {
        for (size_t start = 0; start < n; start += batch) {
            size_t b = n - start < batch ? n - start : batch;
            cascade_mmoe_draw_dropout(m, s, &rng, b);
            double l =
                cascade_mmoe_backward(m, s, x + start * D, labels + start * T, NULL, b, true, NULL);
            assert_false(isnan(l));
            assert_int_equal(cascade_nn_optim_step(&o, cascade_mmoe_params(m)), 0);
        }
    }
    cascade_mmoe_scratch_destroy(s);
}

/* Column t of a [n, T] matrix. */
static void column(const float *a, size_t n, size_t T, size_t t, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i * T + t];
}

/* ---- a toy two-task problem ---- */

enum { TD = 8, TN = 4000, TTEST = 2000 };

static void toy_data(struct cascade_rng *rng, float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nn_fill(rng, x + i * TD, TD, -1, 1);
        const float *r = x + i * TD;
        y[i * 2 + 0] = r[0] + r[1] > 0 ? 1.0f : 0.0f; /* linear */
        y[i * 2 + 1] = r[2] * r[3] > 0 ? 1.0f : 0.0f; /* XOR-like: needs the hidden layers */
    }
}

static void test_learns_two_tasks(void **state)
{
    (void)state;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 3);
    float *x = malloc(sizeof(float) * (TN + TTEST) * TD);
    float *y = malloc(sizeof(float) * (TN + TTEST) * 2);
    float *p = malloc(sizeof(float) * TTEST * 2);
    float *col_p = malloc(sizeof(float) * TTEST), *col_y = malloc(sizeof(float) * TTEST);
    toy_data(&rng, x, y, TN + TTEST);
    cascade_mmoe *m = make_model(TD, 4, 16, 8, "click,like", 0.1f, 5);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 256);
    assert_int_equal(cascade_mmoe_predict(m, s, x + TN * TD, TTEST, p), 0);
    column(p, TTEST, 2, 1, col_p);
    column(y + TN * 2, TTEST, 2, 1, col_y);
    double auc_before = cascade_auc(col_p, col_y, TTEST);

    train(m, x, y, TN, 30, 64, 0.01f, 9);
    assert_int_equal(cascade_mmoe_predict(m, s, x + TN * TD, TTEST, p), 0);
    for (size_t t = 0; t < 2; t++) {
        column(p, TTEST, 2, t, col_p);
        column(y + TN * 2, TTEST, 2, t, col_y);
        double auc = cascade_auc(col_p, col_y, TTEST);
        if (getenv("MMOE_VERBOSE"))
            fprintf(stderr, "task %zu held-out AUC %.4f (task 1 untrained: %.4f)\n", t, auc,
                    auc_before);
        assert_true(auc > 0.9);
    }
    assert_true(auc_before < 0.75);

    /* Gate spread: weights are distributions, entropy within [0, log E]. */
    double w[2 * 4], h[2];
    assert_int_equal(cascade_mmoe_gate_stats(m, s, x + TN * TD, TTEST, w, h), 0);
    for (size_t t = 0; t < 2; t++) {
        double sum = 0;
        for (size_t e = 0; e < 4; e++) {
            assert_true(w[t * 4 + e] >= 0.0);
            sum += w[t * 4 + e];
        }
        assert_near(sum, 1.0, 1e-5);
        assert_true(h[t] >= 0.0 && h[t] <= log(4.0) + 1e-9);
    }
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
    free(x);
    free(y);
    free(p);
    free(col_p);
    free(col_y);
}

static void test_training_is_deterministic(void **state)
{
    (void)state;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 4);
    enum { N = 300 };
    float x[N * TD], y[N * 2], p1[N * 2], p2[N * 2];
    toy_data(&rng, x, y, N);
    cascade_mmoe *a = make_model(TD, 3, 8, 4, "click,like", 0.2f, 5);
    cascade_mmoe *b = make_model(TD, 3, 8, 4, "click,like", 0.2f, 5);
    train(a, x, y, N, 2, 32, 0.01f, 9);
    train(b, x, y, N, 2, 32, 0.01f, 9);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(a, 64);
    assert_int_equal(cascade_mmoe_predict(a, s, x, N, p1), 0);
    assert_int_equal(cascade_mmoe_predict(b, s, x, N, p2), 0);
    assert_memory_equal(p1, p2, sizeof(p1));
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(a);
    cascade_mmoe_destroy(b);
}

/* ---- gate statistics on hand-set gates ---- */

static void test_gate_stats(void **state)
{
    (void)state;
    cascade_mmoe *m = make_model(3, 4, 4, 2, "click,like", 0.0f, 1);
    cascade_nn_params *ps = cascade_mmoe_params(m);
    struct cascade_nn_param *w0 = cascade_nn_params_find(ps, "gates.0.weight");
    struct cascade_nn_param *b0 = cascade_nn_params_find(ps, "gates.0.bias");
    struct cascade_nn_param *w1 = cascade_nn_params_find(ps, "gates.1.weight");
    assert_non_null(w0);
    assert_non_null(b0);
    assert_non_null(w1);
    memset(w0->value, 0, w0->size * sizeof(float)); /* task 0: polarised onto expert 2 */
    b0->value[2] = 40.0f;
    memset(w1->value, 0, w1->size * sizeof(float)); /* task 1: uniform */
    float x[10 * 3];
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 2);
    nn_fill(&rng, x, 30, -1, 1);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 4); /* chunks of 4 */
    double w[2 * 4], h[2];
    assert_int_equal(cascade_mmoe_gate_stats(m, s, x, 10, w, h), 0);
    assert_near(w[2], 1.0, 1e-6);
    assert_near(w[0] + w[1] + w[3], 0.0, 1e-6);
    assert_near(h[0], 0.0, 1e-6);
    for (size_t e = 0; e < 4; e++)
        assert_near(w[4 + e], 0.25, 1e-6);
    assert_near(h[1], log(4.0), 1e-6);
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
}

/* ---- watch time: y = t/(1+t), served exp(z) ---- */

static void test_watch_time_serving(void **state)
{
    (void)state;
    /* Two groups (x0 = -1 or 1) with constant watch times 2 s and 30 s. */
    enum { N = 512 };
    const float t_of[2] = {2.0f, 30.0f};
    float x[N * 2], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i * 2 + 0] = i % 2 ? 1.0f : -1.0f;
        x[i * 2 + 1] = 1.0f;
        y[i] = t_of[i % 2];
    }
    cascade_mmoe *m = make_model(2, 3, 16, 8, "watch_time", 0.0f, 3);
    assert_int_equal(cascade_mmoe_config(m)->tasks[0].kind, CASCADE_MMOE_WATCH_TIME);
    train(m, x, y, N, 100, 64, 0.005f, 1);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 8);
    float served[2];
    assert_int_equal(cascade_mmoe_predict(m, s, x, 2, served), 0);
    if (getenv("MMOE_VERBOSE"))
        fprintf(stderr, "served watch time %.3f (t=2) %.3f (t=30)\n", served[0], served[1]);
    assert_near(served[0], 2.0, 2.0 * 0.03);
    assert_near(served[1], 30.0, 30.0 * 0.03);
    /* The transforms themselves. */
    assert_near(cascade_mmoe_target(CASCADE_MMOE_WATCH_TIME, 3.0f), 0.75, 1e-7);
    assert_near(cascade_mmoe_target(CASCADE_MMOE_BINARY, 1.0f), 1.0, 0);
    assert_near(cascade_mmoe_serve(CASCADE_MMOE_WATCH_TIME, logf(3.0f)), 3.0, 1e-6);
    assert_near(cascade_mmoe_serve(CASCADE_MMOE_BINARY, 0.0f), 0.5, 1e-7);
    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_destroy(m);
}

/* ---- configuration ---- */

static void test_config(void **state)
{
    (void)state;
    struct cascade_mmoe_config c;
    char err[256];
    cascade_mmoe_config_default(&c, 10);
    assert_int_equal(c.n_tasks, 6);
    const char *names[] = {"click", "like", "collect", "share", "watch_time", "complete"};
    for (size_t t = 0; t < 6; t++) {
        assert_string_equal(c.tasks[t].name, names[t]);
        assert_int_equal(c.tasks[t].kind, t == 4 ? CASCADE_MMOE_WATCH_TIME : CASCADE_MMOE_BINARY);
    }
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click,watch_time", err, sizeof(err)), 0);
    assert_int_equal(c.n_tasks, 2);
    assert_int_equal(c.tasks[1].kind, CASCADE_MMOE_WATCH_TIME);
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click,,like", err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_mmoe_config_set_tasks(&c, "click,click", err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(c.n_tasks, 2); /* unchanged on error */
    c.expert_dropout = 1.0f;
    assert_null(cascade_mmoe_create(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "expert_dropout"));
    c.expert_dropout = 0.1f;
    c.n_experts = 0;
    assert_null(cascade_mmoe_create(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "n_experts"));
}

/* ---- persistence ---- */

static void test_save_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_mmoe_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], bad[256], err[256];
    snprintf(path, sizeof(path), "%s/rank-mmoe.safetensors", dir);
    snprintf(bad, sizeof(bad), "%s/other.safetensors", dir);
    cascade_mmoe *m = make_model(6, 3, 5, 4, "click,watch_time,share", 0.1f, 8);
    assert_int_equal(cascade_mmoe_save(m, path, "v42", err, sizeof(err)), 0);

    /* torch state_dict names and [out, in] shapes. */
    cascade_safetensors *st = cascade_safetensors_read(path, err, sizeof(err));
    assert_non_null(st);
    const struct cascade_tensor *t = cascade_safetensors_find(st, "experts.2.0.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 5);
    assert_int_equal(t->shape[1], 6);
    t = cascade_safetensors_find(st, "gates.1.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 3);
    t = cascade_safetensors_find(st, "towers.2.2.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 1);
    assert_int_equal(t->shape[1], 4);
    assert_non_null(cascade_safetensors_find(st, "towers.0.0.bias"));
    assert_string_equal(cascade_safetensors_meta(st, "version"), "v42");
    cascade_safetensors_destroy(st);

    cascade_mmoe *l = cascade_mmoe_load(path, err, sizeof(err));
    if (!l)
        fail_msg("load: %s", err);
    const struct cascade_mmoe_config *c = cascade_mmoe_config(l);
    assert_int_equal(c->n_tasks, 3);
    assert_string_equal(c->tasks[1].name, "watch_time");
    assert_int_equal(c->tasks[1].kind, CASCADE_MMOE_WATCH_TIME);
    assert_int_equal(cascade_mmoe_task_index(l, "share"), 2);
    assert_int_equal(cascade_mmoe_task_index(l, "nope"), -1);
    float x[7 * 6], p1[7 * 3], p2[7 * 3];
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 1);
    nn_fill(&rng, x, sizeof(x) / sizeof(x[0]), -1, 1);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 3);
    assert_int_equal(cascade_mmoe_predict(m, s, x, 7, p1), 0);
    cascade_mmoe_scratch *s2 = cascade_mmoe_scratch_create(l, 16);
    assert_int_equal(cascade_mmoe_predict(l, s2, x, 7, p2), 0);
    for (size_t i = 0; i < 21; i++)
        assert_near(p1[i], p2[i], 1e-6);

    /* A safetensors file that is not an MMoE is refused with a reason. */
    struct cascade_nn_params *ps = cascade_nn_params_create();
    assert_non_null(cascade_nn_params_add(ps, "w", 1, (size_t[]){3}, 0, err, sizeof(err)));
    assert_int_equal(cascade_nn_params_save(ps, bad, NULL, NULL, 0, err, sizeof(err)), 0);
    assert_null(cascade_mmoe_load(bad, err, sizeof(err)));
    assert_non_null(strstr(err, "not an MMoE model"));
    assert_null(cascade_mmoe_load("/nonexistent/x.safetensors", err, sizeof(err)));
    cascade_nn_params_destroy(ps);

    cascade_mmoe_scratch_destroy(s);
    cascade_mmoe_scratch_destroy(s2);
    cascade_mmoe_destroy(m);
    cascade_mmoe_destroy(l);
    unlink(path);
    unlink(bad);
    rmdir(dir);
    cascade_mmoe_destroy(NULL);
    cascade_mmoe_scratch_destroy(NULL);
}

/* Expert dropout against gate polarisation: the same model trained with
 * experts dropped at rate 0.5 ends with markedly flatter gates. */
static void test_expert_dropout_spreads_gates(void **state)
{
    (void)state;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 3);
    float *x = malloc(sizeof(float) * TN * TD), *y = malloc(sizeof(float) * TN * 2);
    toy_data(&rng, x, y, TN);
    double h[2][2];
    const float rates[2] = {0.0f, 0.5f};
    for (size_t k = 0; k < 2; k++) {
        cascade_mmoe *m = make_model(TD, 4, 16, 8, "click,like", rates[k], 5);
        train(m, x, y, TN, 30, 64, 0.01f, 9);
        cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 256);
        assert_int_equal(cascade_mmoe_gate_stats(m, s, x, TN, NULL, h[k]), 0);
        if (getenv("MMOE_VERBOSE"))
            fprintf(stderr, "expert dropout %.1f: gate entropy %.3f %.3f (uniform %.3f)\n",
                    (double)rates[k], h[k][0], h[k][1], log(4.0));
        cascade_mmoe_scratch_destroy(s);
        cascade_mmoe_destroy(m);
    }
    for (size_t t = 0; t < 2; t++)
        assert_true(h[1][t] > h[0][t] + 0.2);
    free(x);
    free(y);
}

/* ---- concurrent inference on one const model ---- */

enum { CN = 300, CTHREADS = 4 };

struct infer_job {
    const cascade_mmoe *m;
    const float *x;
    float out[CN * 3];
    int rc;
};

static void *infer_thread(void *arg)
{
    struct infer_job *j = arg;
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(j->m, 64);
    j->rc = s ? 0 : -1;
    for (int rep = 0; rep < 20 && j->rc == 0; rep++)
        j->rc = cascade_mmoe_predict(j->m, s, j->x, CN, j->out);
    cascade_mmoe_scratch_destroy(s);
    return NULL;
}

static void test_concurrent_inference(void **state)
{
    (void)state;
    cascade_mmoe *m = make_model(7, 4, 16, 8, "click,watch_time,like", 0.1f, 12);
    static float x[CN * 7], ref[CN * 3];
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 5);
    nn_fill(&rng, x, CN * 7, -1, 1);
    cascade_mmoe_scratch *s = cascade_mmoe_scratch_create(m, 64);
    assert_int_equal(cascade_mmoe_predict(m, s, x, CN, ref), 0);
    cascade_mmoe_scratch_destroy(s);
    static struct infer_job jobs[CTHREADS];
    pthread_t th[CTHREADS];
    for (size_t i = 0; i < CTHREADS; i++) {
        jobs[i].m = m;
        jobs[i].x = x;
        assert_int_equal(pthread_create(&th[i], NULL, infer_thread, &jobs[i]), 0);
    }
    for (size_t i = 0; i < CTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].rc, 0);
        assert_memory_equal(jobs[i].out, ref, sizeof(ref));
    }
    cascade_mmoe_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_gate_stats),
        cmocka_unit_test(test_watch_time_serving),
        cmocka_unit_test(test_learns_two_tasks),
        cmocka_unit_test(test_training_is_deterministic),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_expert_dropout_spreads_gates),
        cmocka_unit_test(test_concurrent_inference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
