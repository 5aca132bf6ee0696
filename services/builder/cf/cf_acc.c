/* The collaborative-filtering scratch accumulator (cf_acc.h): allocation and
 * the per-row reset; touching and adding are inline in the header. */
#include "cf_acc.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

int cascade_cf_acc_init(struct cascade_cf_acc *a, size_t keys)
{
    memset(a, 0, sizeof *a);
    size_t n = keys + 1;
    a->slot = malloc(n * sizeof *a->slot);
    a->touched = malloc(n * sizeof *a->touched);
    a->sum = malloc(n * sizeof *a->sum);
    a->count = malloc(n * sizeof *a->count);
    a->cand = malloc(n * sizeof *a->cand);
    if (!a->slot || !a->touched || !a->sum || !a->count || !a->cand) {
        cascade_cf_acc_free(a);
        return CASCADE_ENOMEM;
    }
    memset(a->slot, 0xff, n * sizeof *a->slot);
    return 0;
}

void cascade_cf_acc_free(struct cascade_cf_acc *a)
{
    if (!a)
        return;
    free(a->slot);
    free(a->touched);
    free(a->sum);
    free(a->count);
    free(a->cand);
    memset(a, 0, sizeof *a);
}

void cascade_cf_acc_reset(struct cascade_cf_acc *a)
{
    for (size_t t = 0; t < a->n; t++)
        a->slot[a->touched[t]] = -1;
    a->n = 0;
}
