/* The scratch accumulator of the collaborative-filtering builders (ItemCF,
 * UserCF, Swing): one row's sparse sums over keys 0..n-1 (items or users),
 * with the keys touched in first-touch order, so a row costs what it touches
 * and not n. One per worker thread (cf_run.h); not thread-safe. */
#ifndef CASCADE_BUILDER_CF_ACC_H
#define CASCADE_BUILDER_CF_ACC_H

#include <stddef.h>
#include <stdint.h>

#include "topk.h"

struct cascade_cf_acc {
    int32_t *slot;               /* key -> position in touched, -1 when untouched */
    uint32_t *touched;           /* the keys touched this row, first touch first */
    double *sum;                 /* per position: the sum of the weights added */
    uint32_t *count;             /* per position: how many additions */
    size_t n;                    /* keys touched this row */
    struct cascade_scored *cand; /* room for one candidate per key (the row's output) */
};

/* Allocate an empty accumulator for keys 0..keys-1 (and keys itself, a spare).
 * 0 or CASCADE_ENOMEM (then nothing is held: cascade_cf_acc_free is still
 * safe). Free with cascade_cf_acc_free. */
int cascade_cf_acc_init(struct cascade_cf_acc *a, size_t keys);

/* Free what init allocated; NULL-safe, and safe on a zeroed struct. */
void cascade_cf_acc_free(struct cascade_cf_acc *a);

/* The position of key in touched, adding it (sum 0, count 0) on first touch. */
static inline size_t cascade_cf_acc_touch(struct cascade_cf_acc *a, uint32_t key)
{
    if (a->slot[key] < 0) {
        a->slot[key] = (int32_t)a->n;
        a->touched[a->n] = key;
        a->sum[a->n] = 0;
        a->count[a->n] = 0;
        a->n++;
    }
    return (size_t)a->slot[key];
}

/* sum[key] += w, count[key] += 1. */
static inline void cascade_cf_acc_add(struct cascade_cf_acc *a, uint32_t key, double w)
{
    size_t p = cascade_cf_acc_touch(a, key);
    a->sum[p] += w;
    a->count[p]++;
}

/* Forget this row's keys (costs the keys touched, not n). */
void cascade_cf_acc_reset(struct cascade_cf_acc *a);

#endif
