/* Rank fusion formulas: how per-task predictions become one rank_score.
 * A table of {name, fn} selected by config rank.fusion.formula or the
 * experiment param of the same name (SPEC §5): weighted_sum, click_boost,
 * rank_based and product. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rank.h"

static const struct {
    const char *name;
    cascade_rank_fusion_fn fn;
} formulas[] = {
    {"weighted_sum", cascade_rank_fusion_weighted_sum},
    {"click_boost", cascade_rank_fusion_click_boost},
    {"rank_based", cascade_rank_fusion_rank_based},
    {"product", cascade_rank_fusion_product},
};
#define N_FORMULAS (sizeof formulas / sizeof formulas[0])
#define N_TASKS 6

cascade_rank_fusion_fn cascade_rank_fusion_find(const char *name)
{
    for (size_t i = 0; i < N_FORMULAS; i++)
        if (strcmp(formulas[i].name, name) == 0)
            return formulas[i].fn;
    return NULL;
}

static char formula_list[256];
static pthread_once_t formula_list_once = PTHREAD_ONCE_INIT;

static void formula_list_build(void)
{
    size_t off = 0;
    for (size_t i = 0; i < N_FORMULAS && off < sizeof formula_list; i++)
        off += (size_t)snprintf(formula_list + off, sizeof formula_list - off, "%s%s",
                                i ? ", " : "", formulas[i].name);
}

const char *cascade_rank_fusion_list(void)
{
    pthread_once(&formula_list_once, formula_list_build);
    return formula_list;
}

/* The six task values of t and their weights, in a fixed order: click, like,
 * collect, share, watch_time, complete. */
static void task_values(const Cascade__V1__TaskScores *t, double v[N_TASKS])
{
    v[0] = t->p_click;
    v[1] = t->p_like;
    v[2] = t->p_collect;
    v[3] = t->p_share;
    v[4] = t->watch_time_s;
    v[5] = t->p_complete;
}

static void task_weights(const struct cascade_rank_fusion_params *p, double w[N_TASKS])
{
    w[0] = p->w_click;
    w[1] = p->w_like;
    w[2] = p->w_collect;
    w[3] = p->w_share;
    w[4] = p->w_watch_time;
    w[5] = p->w_complete;
}

int cascade_rank_fusion_weighted_sum(const struct cascade_rank_fusion_params *p,
                                     const Cascade__V1__TaskScores *const *tasks, size_t n,
                                     float *out, cascade_arena *arena)
{
    double w[N_TASKS], v[N_TASKS];
    (void)arena;
    task_weights(p, w);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        task_values(tasks[i], v);
        for (int k = 0; k < N_TASKS; k++)
            s += w[k] * v[k];
        out[i] = (float)s;
    }
    return 0;
}

int cascade_rank_fusion_click_boost(const struct cascade_rank_fusion_params *p,
                                    const Cascade__V1__TaskScores *const *tasks, size_t n,
                                    float *out, cascade_arena *arena)
{
    double w[N_TASKS], v[N_TASKS];
    (void)arena;
    task_weights(p, w);
    for (size_t i = 0; i < n; i++) {
        double s = 1;
        task_values(tasks[i], v);
        for (int k = 1; k < N_TASKS; k++)
            s += w[k] * v[k];
        out[i] = (float)(v[0] * s);
    }
    return 0;
}

/* Sort helper for rank_based: indices ordered by value descending, ties by index. */
static _Thread_local const double *sort_values;

static int cmp_desc(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = sort_values[i], y = sort_values[j];
    if (x != y)
        return x > y ? -1 : 1;
    return i < j ? -1 : i > j;
}

int cascade_rank_fusion_rank_based(const struct cascade_rank_fusion_params *p,
                                   const Cascade__V1__TaskScores *const *tasks, size_t n,
                                   float *out, cascade_arena *arena)
{
    double w[N_TASKS], v[N_TASKS];
    if (n == 0)
        return 0;
    double *vals = arena ? cascade_arena_calloc(arena, n, sizeof *vals) : calloc(n, sizeof *vals);
    size_t *order =
        arena ? cascade_arena_calloc(arena, n, sizeof *order) : calloc(n, sizeof *order);
    double *acc = arena ? cascade_arena_calloc(arena, n, sizeof *acc) : calloc(n, sizeof *acc);
    int rc = CASCADE_ENOMEM;
    if (!vals || !order || !acc)
        goto out;
    task_weights(p, w);
    for (int k = 0; k < N_TASKS; k++) {
        if (w[k] == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            task_values(tasks[i], v);
            vals[i] = v[k];
            order[i] = i;
        }
        sort_values = vals;
        qsort(order, n, sizeof *order, cmp_desc);
        /* rank 1 is the best; equal values share the better rank */
        size_t rank = 1;
        for (size_t r = 0; r < n; r++) {
            if (r > 0 && vals[order[r]] != vals[order[r - 1]])
                rank = r + 1;
            acc[order[r]] += w[k] / (pow((double)rank, p->rank_alpha) + p->rank_beta);
        }
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (float)acc[i];
    rc = 0;
out:
    if (!arena) {
        free(vals);
        free(order);
        free(acc);
    }
    return rc;
}

int cascade_rank_fusion_product(const struct cascade_rank_fusion_params *p,
                                const Cascade__V1__TaskScores *const *tasks, size_t n, float *out,
                                cascade_arena *arena)
{
    double w[N_TASKS], v[N_TASKS];
    (void)arena;
    task_weights(p, w);
    for (size_t i = 0; i < n; i++) {
        double s = 0; /* in logs: Σ w_k log p_k */
        task_values(tasks[i], v);
        for (int k = 0; k < N_TASKS; k++)
            if (w[k] != 0)
                s += w[k] * log(v[k] > 1e-6 ? v[k] : 1e-6);
        out[i] = (float)exp(s);
    }
    return 0;
}
