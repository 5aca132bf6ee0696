/* Rank fusion formulas: how per-task predictions become one rank_score.
 * A table of {name, fn} selected by config rank.fusion.formula; the
 * foundation ships "weighted_sum", later formulas add a row each. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rank.h"

static const struct {
    const char *name;
    cascade_rank_fusion_fn fn;
} formulas[] = {
    {"weighted_sum", cascade_rank_fusion_weighted_sum},
};
#define N_FORMULAS (sizeof formulas / sizeof formulas[0])

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

int cascade_rank_fusion_weighted_sum(const struct cascade_rank_fusion_params *p,
                                     const Cascade__V1__TaskScores *const *tasks, size_t n,
                                     float *out, cascade_arena *arena)
{
    (void)arena;
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__TaskScores *t = tasks[i];
        out[i] = (float)(p->w_click * t->p_click + p->w_like * t->p_like +
                         p->w_collect * t->p_collect + p->w_share * t->p_share +
                         p->w_watch_time * t->watch_time_s + p->w_complete * t->p_complete);
    }
    return 0;
}
