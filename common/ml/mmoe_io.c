/* MMoE persistence (safetensors with the configuration in the metadata, so a
 * file is self-describing) and the gate-spread report used after training to
 * spot gates polarised onto a single expert. */
#include "mmoe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mmoe_internal.h"
#include "safetensors.h"

int cascade_mmoe_gate_stats(const cascade_mmoe *m, cascade_mmoe_scratch *s, const float *x,
                            size_t n, double *mean_weight, double *entropy)
{
    size_t T = m->cfg.n_tasks, E = m->cfg.n_experts, D = m->cfg.input_dim;
    if (n == 0)
        return CASCADE_EINVAL;
    double w[CASCADE_MMOE_MAX_TASKS * CASCADE_MMOE_MAX_EXPERTS] = {0};
    double h[CASCADE_MMOE_MAX_TASKS] = {0};
    for (size_t start = 0; start < n; start += s->max_batch) {
        size_t batch = n - start < s->max_batch ? n - start : s->max_batch;
        int rc = cascade__mmoe_forward(m, s, x + start * D, batch, NULL);
        if (rc != 0)
            return rc;
        for (size_t t = 0; t < T; t++) {
            const float *g = s->gate + t * s->max_batch * E;
            for (size_t b = 0; b < batch; b++) {
                for (size_t e = 0; e < E; e++) {
                    double p = g[b * E + e];
                    w[t * E + e] += p;
                    if (p > 0.0)
                        h[t] -= p * log(p);
                }
            }
        }
    }
    for (size_t t = 0; t < T; t++) {
        if (entropy)
            entropy[t] = h[t] / (double)n;
        for (size_t e = 0; e < E && mean_weight; e++)
            mean_weight[t * E + e] = w[t * E + e] / (double)n;
    }
    return 0;
}

/* "click:binary:1,watch_time:watch_time:1" */
static void tasks_to_string(const struct cascade_mmoe_config *c, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t t = 0; t < c->n_tasks && used < len; t++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s:%s:%.9g", t ? "," : "", c->tasks[t].name,
                             c->tasks[t].kind == CASCADE_MMOE_WATCH_TIME ? "watch_time" : "binary",
                             (double)c->tasks[t].loss_weight);
}

static int tasks_from_string(struct cascade_mmoe_config *c, const char *str)
{
    char buf[CASCADE_MMOE_MAX_TASKS * (CASCADE_MMOE_TASK_NAME_MAX + 32)];
    if (strlen(str) >= sizeof(buf))
        return CASCADE_EFORMAT;
    strcpy(buf, str);
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *kind = strchr(tok, ':');
        char *weight = kind ? strchr(kind + 1, ':') : NULL;
        if (!kind || !weight || n == CASCADE_MMOE_MAX_TASKS ||
            (size_t)(kind - tok) >= CASCADE_MMOE_TASK_NAME_MAX || kind == tok)
            return CASCADE_EFORMAT;
        *kind++ = '\0';
        *weight++ = '\0';
        struct cascade_mmoe_task *task = &c->tasks[n++];
        memset(task, 0, sizeof(*task));
        strcpy(task->name, tok);
        if (strcmp(kind, "watch_time") == 0)
            task->kind = CASCADE_MMOE_WATCH_TIME;
        else if (strcmp(kind, "binary") == 0)
            task->kind = CASCADE_MMOE_BINARY;
        else
            return CASCADE_EFORMAT;
        char *end;
        task->loss_weight = strtof(weight, &end);
        if (end == weight || *end)
            return CASCADE_EFORMAT;
    }
    c->n_tasks = n;
    return n ? 0 : CASCADE_EFORMAT;
}

int cascade_mmoe_save(const cascade_mmoe *m, const char *path, const char *version, char *err,
                      size_t errlen)
{
    const struct cascade_mmoe_config *c = &m->cfg;
    char dims[4][32], dropout[32], seed[32];
    char tasks[CASCADE_MMOE_MAX_TASKS * (CASCADE_MMOE_TASK_NAME_MAX + 32)];
    snprintf(dims[0], sizeof(dims[0]), "%zu", c->input_dim);
    snprintf(dims[1], sizeof(dims[1]), "%zu", c->n_experts);
    snprintf(dims[2], sizeof(dims[2]), "%zu", c->expert_hidden);
    snprintf(dims[3], sizeof(dims[3]), "%zu", c->tower_hidden);
    snprintf(dropout, sizeof(dropout), "%.9g", (double)c->expert_dropout);
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)c->seed);
    tasks_to_string(c, tasks, sizeof(tasks));
    const char *keys[] = {"format", "input_dim",      "n_experts", "expert_hidden", "tower_hidden",
                          "tasks",  "expert_dropout", "seed",      "version"};
    const char *values[] = {"cascade-mmoe-1", dims[0], dims[1],
                            dims[2],          dims[3], tasks,
                            dropout,          seed,    version ? version : ""};
    return cascade_nn_params_save(m->ps, path, keys, values, sizeof(keys) / sizeof(keys[0]), err,
                                  errlen);
}

static int meta_size(const cascade_safetensors *st, const char *key, size_t *out)
{
    const char *v = cascade_safetensors_meta(st, key);
    if (!v || !*v)
        return CASCADE_EFORMAT;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end)
        return CASCADE_EFORMAT;
    *out = (size_t)n;
    return 0;
}

/* The configuration stored in st's metadata. */
static int config_from_meta(const cascade_safetensors *st, const char *path,
                            struct cascade_mmoe_config *c, char *err, size_t errlen)
{
    cascade_mmoe_config_default(c, 1);
    const char *format = cascade_safetensors_meta(st, "format");
    const char *tasks = cascade_safetensors_meta(st, "tasks");
    const char *dropout = cascade_safetensors_meta(st, "expert_dropout");
    if (!format || strcmp(format, "cascade-mmoe-1") != 0 || !tasks ||
        meta_size(st, "input_dim", &c->input_dim) != 0 ||
        meta_size(st, "n_experts", &c->n_experts) != 0 ||
        meta_size(st, "expert_hidden", &c->expert_hidden) != 0 ||
        meta_size(st, "tower_hidden", &c->tower_hidden) != 0 || tasks_from_string(c, tasks) != 0) {
        cascade__mmoe_err(err, errlen,
                          "%s: not an MMoE model (metadata needs format=cascade-mmoe-1, "
                          "input_dim, n_experts, expert_hidden, tower_hidden and tasks)",
                          path);
        return CASCADE_EFORMAT;
    }
    if (dropout)
        c->expert_dropout = strtof(dropout, NULL);
    return 0;
}

cascade_mmoe *cascade_mmoe_load(const char *path, char *err, size_t errlen)
{
    cascade_mmoe *m = NULL;
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return NULL;
    struct cascade_mmoe_config c;
    if (config_from_meta(st, path, &c, err, errlen) != 0)
        goto out;
    m = cascade_mmoe_create(&c, err, errlen);
    if (m && cascade_nn_params_load_from(m->ps, st, path, err, errlen) != 0) {
        cascade_mmoe_destroy(m);
        m = NULL;
    }
out:
    cascade_safetensors_destroy(st);
    return m;
}
