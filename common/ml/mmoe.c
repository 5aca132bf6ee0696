/* MMoE model: configuration, parameters, the batched forward pass shared by
 * inference and training, the multi-task loss and its backward pass.
 * Persistence and gate statistics live in mmoe_io.c. */
#include "mmoe.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mmoe_internal.h"

void cascade__mmoe_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *const default_tasks[] = {"click", "like",       "collect",
                                            "share", "watch_time", "complete"};

void cascade_mmoe_config_default(struct cascade_mmoe_config *c, size_t input_dim)
{
    memset(c, 0, sizeof(*c));
    c->input_dim = input_dim;
    c->n_experts = 4;
    c->expert_hidden = 32;
    c->tower_hidden = 16;
    c->expert_dropout = 0.1f;
    c->seed = 1;
    c->n_tasks = sizeof(default_tasks) / sizeof(default_tasks[0]);
    for (size_t t = 0; t < c->n_tasks; t++) {
        snprintf(c->tasks[t].name, sizeof(c->tasks[t].name), "%s", default_tasks[t]);
        c->tasks[t].kind = strcmp(default_tasks[t], "watch_time") == 0 ? CASCADE_MMOE_WATCH_TIME
                                                                       : CASCADE_MMOE_BINARY;
        c->tasks[t].loss_weight = 1.0f;
    }
}

int cascade_mmoe_config_set_tasks(struct cascade_mmoe_config *c, const char *csv, char *err,
                                  size_t errlen)
{
    struct cascade_mmoe_task tasks[CASCADE_MMOE_MAX_TASKS];
    size_t n = 0;
    const char *p = csv;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= CASCADE_MMOE_TASK_NAME_MAX) {
            cascade__mmoe_err(err, errlen,
                              "task list '%s': empty name or a name of %d characters or more", csv,
                              CASCADE_MMOE_TASK_NAME_MAX);
            return CASCADE_EINVAL;
        }
        if (n == CASCADE_MMOE_MAX_TASKS) {
            cascade__mmoe_err(err, errlen, "task list '%s': more than %d tasks", csv,
                              CASCADE_MMOE_MAX_TASKS);
            return CASCADE_EINVAL;
        }
        memset(&tasks[n], 0, sizeof(tasks[n]));
        memcpy(tasks[n].name, p, len);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(tasks[i].name, tasks[n].name) == 0) {
                cascade__mmoe_err(err, errlen, "task list '%s': task '%s' appears twice", csv,
                                  tasks[n].name);
                return CASCADE_EINVAL;
            }
        }
        tasks[n].kind = strcmp(tasks[n].name, "watch_time") == 0 ? CASCADE_MMOE_WATCH_TIME
                                                                 : CASCADE_MMOE_BINARY;
        tasks[n].loss_weight = 1.0f;
        n++;
        p = end ? end + 1 : NULL;
    }
    if (n == 0) {
        cascade__mmoe_err(err, errlen, "task list is empty: name at least one task");
        return CASCADE_EINVAL;
    }
    memcpy(c->tasks, tasks, n * sizeof(tasks[0]));
    c->n_tasks = n;
    return 0;
}

static int check_config(const struct cascade_mmoe_config *c, char *err, size_t errlen)
{
    if (c->input_dim == 0 || c->expert_hidden == 0 || c->tower_hidden == 0) {
        cascade__mmoe_err(err, errlen,
                          "mmoe: input_dim, expert_hidden and tower_hidden must be > 0");
        return CASCADE_EINVAL;
    }
    if (c->n_experts == 0 || c->n_experts > CASCADE_MMOE_MAX_EXPERTS) {
        cascade__mmoe_err(err, errlen, "mmoe: n_experts %zu is outside 1..%d", c->n_experts,
                          CASCADE_MMOE_MAX_EXPERTS);
        return CASCADE_EINVAL;
    }
    if (c->n_tasks == 0 || c->n_tasks > CASCADE_MMOE_MAX_TASKS) {
        cascade__mmoe_err(err, errlen, "mmoe: n_tasks %zu is outside 1..%d", c->n_tasks,
                          CASCADE_MMOE_MAX_TASKS);
        return CASCADE_EINVAL;
    }
    if (!(c->expert_dropout >= 0.0f && c->expert_dropout < 1.0f)) {
        cascade__mmoe_err(err, errlen, "mmoe: expert_dropout %g is outside [0, 1)",
                          (double)c->expert_dropout);
        return CASCADE_EINVAL;
    }
    return 0;
}

static int add_layers(cascade_mmoe *m, struct cascade_rng *rng, char *err, size_t errlen)
{
    const struct cascade_mmoe_config *c = &m->cfg;
    char name[64];
    int rc = 0;
    for (size_t e = 0; e < c->n_experts && rc == 0; e++) {
        snprintf(name, sizeof(name), "experts.%zu.0", e);
        rc = cascade_nn_dense_init(&m->experts[e], m->ps, name, c->input_dim, c->expert_hidden,
                                   CASCADE_NN_INIT_HE_UNIFORM, rng, err, errlen);
    }
    for (size_t t = 0; t < c->n_tasks && rc == 0; t++) {
        snprintf(name, sizeof(name), "gates.%zu", t);
        rc = cascade_nn_dense_init(&m->gates[t], m->ps, name, c->input_dim, c->n_experts,
                                   CASCADE_NN_INIT_XAVIER_UNIFORM, rng, err, errlen);
    }
    for (size_t t = 0; t < c->n_tasks && rc == 0; t++) {
        snprintf(name, sizeof(name), "towers.%zu.0", t);
        rc = cascade_nn_dense_init(&m->tower_hidden[t], m->ps, name, c->expert_hidden,
                                   c->tower_hidden, CASCADE_NN_INIT_HE_UNIFORM, rng, err, errlen);
        if (rc == 0) {
            snprintf(name, sizeof(name), "towers.%zu.2", t);
            rc = cascade_nn_dense_init(&m->tower_out[t], m->ps, name, c->tower_hidden, 1,
                                       CASCADE_NN_INIT_XAVIER_UNIFORM, rng, err, errlen);
        }
    }
    return rc;
}

cascade_mmoe *cascade_mmoe_create(const struct cascade_mmoe_config *c, char *err, size_t errlen)
{
    if (check_config(c, err, errlen) != 0)
        return NULL;
    cascade_mmoe *m = calloc(1, sizeof(*m));
    if (!m) {
        cascade__mmoe_err(err, errlen, "mmoe: out of memory");
        return NULL;
    }
    m->cfg = *c;
    m->ps = cascade_nn_params_create();
    if (!m->ps) {
        cascade__mmoe_err(err, errlen, "mmoe: out of memory");
        goto fail;
    }
    struct cascade_rng rng;
    cascade_rng_seed(&rng, c->seed);
    if (add_layers(m, &rng, err, errlen) != 0)
        goto fail;
    return m;
fail:
    cascade_mmoe_destroy(m);
    return NULL;
}

void cascade_mmoe_destroy(cascade_mmoe *m)
{
    if (!m)
        return;
    cascade_nn_params_destroy(m->ps);
    free(m);
}

const struct cascade_mmoe_config *cascade_mmoe_config(const cascade_mmoe *m)
{
    return &m->cfg;
}

cascade_nn_params *cascade_mmoe_params(cascade_mmoe *m)
{
    return m->ps;
}

int cascade_mmoe_task_index(const cascade_mmoe *m, const char *name)
{
    for (size_t t = 0; t < m->cfg.n_tasks; t++)
        if (strcmp(m->cfg.tasks[t].name, name) == 0)
            return (int)t;
    return -1;
}

/* ---- scratch ---- */

cascade_mmoe_scratch *cascade_mmoe_scratch_create(const cascade_mmoe *m, size_t max_batch)
{
    if (max_batch == 0)
        return NULL;
    const struct cascade_mmoe_config *c = &m->cfg;
    size_t B = max_batch, E = c->n_experts, H = c->expert_hidden, TH = c->tower_hidden,
           T = c->n_tasks;
    cascade_mmoe_scratch *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->max_batch = B;
    s->stacked = calloc(B * E * H, sizeof(float));
    s->dstacked = calloc(B * E * H, sizeof(float));
    s->dstacked_t = calloc(B * E * H, sizeof(float));
    s->tmp = calloc(B * H, sizeof(float));
    s->tmp2 = calloc(B * H, sizeof(float));
    s->keep = calloc(B * E, 1);
    s->gate = calloc(T * B * E, sizeof(float));
    s->mix = calloc(T * B * H, sizeof(float));
    s->hid = calloc(T * B * TH, sizeof(float));
    s->z = calloc(T * B, sizeof(float));
    s->dz = calloc(B, sizeof(float));
    s->dhid = calloc(B * TH, sizeof(float));
    s->dg = calloc(B * E, sizeof(float));
    s->target = calloc(B, sizeof(float));
    s->weight = calloc(B, sizeof(float));
    if (!s->stacked || !s->dstacked || !s->dstacked_t || !s->tmp || !s->tmp2 || !s->keep ||
        !s->gate || !s->mix || !s->hid || !s->z || !s->dz || !s->dhid || !s->dg || !s->target ||
        !s->weight) {
        cascade_mmoe_scratch_destroy(s);
        return NULL;
    }
    memset(s->keep, 1, B * E);
    return s;
}

void cascade_mmoe_scratch_destroy(cascade_mmoe_scratch *s)
{
    if (!s)
        return;
    free(s->stacked);
    free(s->dstacked);
    free(s->dstacked_t);
    free(s->tmp);
    free(s->tmp2);
    free(s->keep);
    free(s->gate);
    free(s->mix);
    free(s->hid);
    free(s->z);
    free(s->dz);
    free(s->dhid);
    free(s->dg);
    free(s->target);
    free(s->weight);
    free(s);
}

/* ---- forward ---- */

int cascade__mmoe_forward(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                          size_t batch, const uint8_t *keep)
{
    const struct cascade_mmoe_config *c = &m->cfg;
    size_t E = c->n_experts, H = c->expert_hidden, TH = c->tower_hidden;
    if (batch == 0 || batch > s->max_batch)
        return CASCADE_EINVAL;
    for (size_t e = 0; e < E; e++) {
        if (cascade_nn_dense_forward(&m->experts[e], x, batch, s->tmp) != 0)
            return CASCADE_EINVAL;
        cascade_nn_relu_forward(s->tmp, batch * H, s->tmp);
        for (size_t b = 0; b < batch; b++) /* torch.stack(dim=1): [batch, E, H] */
            memcpy(s->stacked + (b * E + e) * H, s->tmp + b * H, H * sizeof(float));
    }
    for (size_t t = 0; t < c->n_tasks; t++) {
        float *g = s->gate + t * s->max_batch * E;
        float *mix = s->mix + t * s->max_batch * H;
        float *hid = s->hid + t * s->max_batch * TH;
        if (cascade_nn_dense_forward(&m->gates[t], x, batch, g) != 0)
            return CASCADE_EINVAL;
        cascade_nn_softmax_forward(g, keep, batch, E, g);
        cascade_nn_mixture_forward(g, s->stacked, batch, E, H, mix);
        if (cascade_nn_dense_forward(&m->tower_hidden[t], mix, batch, hid) != 0)
            return CASCADE_EINVAL;
        cascade_nn_relu_forward(hid, batch * TH, hid);
        if (cascade_nn_dense_forward(&m->tower_out[t], hid, batch, s->z + t * s->max_batch) != 0)
            return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_mmoe_logits(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x, size_t n,
                        float *z)
{
    size_t T = m->cfg.n_tasks, D = m->cfg.input_dim;
    for (size_t start = 0; start < n; start += s->max_batch) {
        size_t batch = n - start < s->max_batch ? n - start : s->max_batch;
        int rc = cascade__mmoe_forward(m, s, x + start * D, batch, NULL);
        if (rc != 0)
            return rc;
        for (size_t b = 0; b < batch; b++)
            for (size_t t = 0; t < T; t++)
                z[(start + b) * T + t] = s->z[t * s->max_batch + b];
    }
    return 0;
}

float cascade_mmoe_serve(enum cascade_mmoe_task_kind kind, float z)
{
    if (kind == CASCADE_MMOE_WATCH_TIME)
        return expf(z);
    float y;
    cascade_nn_sigmoid_forward(&z, 1, &y);
    return y;
}

float cascade_mmoe_target(enum cascade_mmoe_task_kind kind, float label)
{
    if (kind == CASCADE_MMOE_WATCH_TIME)
        return label > 0.0f ? label / (1.0f + label) : 0.0f;
    return label;
}

int cascade_mmoe_predict(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x, size_t n,
                         float *out)
{
    int rc = cascade_mmoe_logits(m, s, x, n, out);
    if (rc != 0)
        return rc;
    size_t T = m->cfg.n_tasks;
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < T; t++)
            out[i * T + t] = cascade_mmoe_serve(m->cfg.tasks[t].kind, out[i * T + t]);
    return 0;
}

void cascade_mmoe_draw_dropout(const cascade_mmoe *m, cascade_mmoe_scratch *s,
                               struct cascade_rng *rng, size_t batch)
{
    size_t E = m->cfg.n_experts;
    if (batch > s->max_batch)
        batch = s->max_batch;
    if (m->cfg.expert_dropout <= 0.0f)
        memset(s->keep, 1, batch * E);
    else
        cascade_nn_expert_dropout_mask(rng, m->cfg.expert_dropout, batch, E, s->keep);
}

/* ---- loss and backward ---- */

/* Targets and weights of task t for the batch into s->target / s->weight. */
static void task_labels(const cascade_mmoe *m, cascade_mmoe_scratch *s, size_t t,
                        const float *labels, const float *weights, size_t batch)
{
    size_t T = m->cfg.n_tasks;
    for (size_t b = 0; b < batch; b++) {
        s->target[b] = cascade_mmoe_target(m->cfg.tasks[t].kind, labels[b * T + t]);
        s->weight[b] = weights ? weights[b * T + t] : 1.0f;
    }
}

double cascade_mmoe_loss(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                         const float *labels, const float *weights, size_t batch, bool use_dropout,
                         double *task_loss)
{
    if (cascade__mmoe_forward(m, s, x, batch, use_dropout ? s->keep : NULL) != 0)
        return NAN;
    double total = 0.0;
    for (size_t t = 0; t < m->cfg.n_tasks; t++) {
        task_labels(m, s, t, labels, weights, batch);
        double l =
            cascade_nn_bce_logits(s->z + t * s->max_batch, s->target, s->weight, batch, NULL);
        if (task_loss)
            task_loss[t] = l;
        total += m->cfg.tasks[t].loss_weight * l;
    }
    return total;
}

/* Backward through tower t and gate t: accumulates the tower and gate
 * gradients and adds the gradient of the stacked expert outputs to
 * s->dstacked. s->dz holds dloss/dz of the task. */
static int task_backward(cascade_mmoe *m, cascade_mmoe_scratch *s, size_t t, const float *x,
                         size_t batch)
{
    const struct cascade_mmoe_config *c = &m->cfg;
    size_t E = c->n_experts, H = c->expert_hidden, TH = c->tower_hidden;
    const float *g = s->gate + t * s->max_batch * E;
    const float *mix = s->mix + t * s->max_batch * H;
    const float *hid = s->hid + t * s->max_batch * TH;
    float *dmix = s->tmp2;
    if (cascade_nn_dense_backward(&m->tower_out[t], hid, s->dz, batch, s->dhid) != 0)
        return CASCADE_EINVAL;
    cascade_nn_relu_backward(hid, s->dhid, batch * TH, s->dhid);
    if (cascade_nn_dense_backward(&m->tower_hidden[t], mix, s->dhid, batch, dmix) != 0)
        return CASCADE_EINVAL;
    cascade_nn_mixture_backward(g, s->stacked, dmix, batch, E, H, s->dg, s->dstacked_t);
    for (size_t i = 0; i < batch * E * H; i++)
        s->dstacked[i] += s->dstacked_t[i];
    /* Dropped experts have g = 0, so the softmax backward gives them 0 too. */
    cascade_nn_softmax_backward(g, s->dg, batch, E, s->dg);
    if (cascade_nn_dense_backward(&m->gates[t], x, s->dg, batch, NULL) != 0)
        return CASCADE_EINVAL;
    return 0;
}

static int experts_backward(cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x, size_t batch)
{
    size_t E = m->cfg.n_experts, H = m->cfg.expert_hidden;
    for (size_t e = 0; e < E; e++) {
        for (size_t b = 0; b < batch; b++) {
            memcpy(s->tmp + b * H, s->stacked + (b * E + e) * H, H * sizeof(float));
            memcpy(s->tmp2 + b * H, s->dstacked + (b * E + e) * H, H * sizeof(float));
        }
        cascade_nn_relu_backward(s->tmp, s->tmp2, batch * H, s->tmp2);
        if (cascade_nn_dense_backward(&m->experts[e], x, s->tmp2, batch, NULL) != 0)
            return CASCADE_EINVAL;
    }
    return 0;
}

double cascade_mmoe_backward(cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                             const float *labels, const float *weights, size_t batch,
                             bool use_dropout, double *task_loss)
{
    if (cascade__mmoe_forward(m, s, x, batch, use_dropout ? s->keep : NULL) != 0)
        return NAN;
    const struct cascade_mmoe_config *c = &m->cfg;
    memset(s->dstacked, 0, batch * c->n_experts * c->expert_hidden * sizeof(float));
    double total = 0.0;
    for (size_t t = 0; t < c->n_tasks; t++) {
        task_labels(m, s, t, labels, weights, batch);
        double l =
            cascade_nn_bce_logits(s->z + t * s->max_batch, s->target, s->weight, batch, s->dz);
        if (task_loss)
            task_loss[t] = l;
        float lw = c->tasks[t].loss_weight;
        total += lw * l;
        for (size_t b = 0; b < batch; b++)
            s->dz[b] *= lw;
        if (task_backward(m, s, t, x, batch) != 0)
            return NAN;
    }
    if (experts_backward(m, s, x, batch) != 0)
        return NAN;
    return total;
}
