/* The CF neighbour-list table (see cf_lists.h). */
#include "cf_lists.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

int cascade_cf_lists_alloc(struct cascade_cf_lists *l, size_t n, size_t k)
{
    memset(l, 0, sizeof(*l));
    l->n = n;
    l->k = k;
    l->count = calloc(n + 1, sizeof(uint32_t));
    l->nbr = malloc((n * k + 1) * sizeof(uint32_t));
    l->score = malloc((n * k + 1) * sizeof(float));
    if (!l->count || !l->nbr || !l->score) {
        cascade_cf_lists_free(l);
        return CASCADE_ENOMEM;
    }
    return 0;
}

void cascade_cf_lists_free(struct cascade_cf_lists *l)
{
    free(l->count);
    free(l->nbr);
    free(l->score);
    l->count = NULL;
    l->nbr = NULL;
    l->score = NULL;
}

size_t cascade_cf_lists_total(const struct cascade_cf_lists *l)
{
    size_t total = 0;
    for (size_t r = 0; r < l->n; r++)
        total += l->count[r];
    return total;
}

void cascade_cf_lists_set_row(struct cascade_cf_lists *l, size_t row, struct cascade_scored *cand,
                              size_t n)
{
    size_t kept = cascade_topk_select(cand, n, l->k);
    for (size_t a = 0; a < kept; a++) {
        l->nbr[row * l->k + a] = cand[a].idx;
        l->score[row * l->k + a] = (float)cand[a].score;
    }
    l->count[row] = (uint32_t)kept;
}
