/* EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW
 * 2019): a linear item-item model with the closed form
 *     P = (XᵀX + λI)⁻¹,   B = I − P·diag(1/diag(P)),   diag(B) = 0
 * over a binary user × item matrix X. A user's score for item i is
 * Σ_{j ∈ history} B[j][i]. The solve is dense (Cholesky through the LAPACK
 * that OpenBLAS ships), so the model covers at most `max_items` items: the
 * most interacted-with ones; the rest get no scores. A built model is
 * immutable and safe to share between threads. */
#ifndef CASCADE_EASE_H
#define CASCADE_EASE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_ease cascade_ease;

/* User rows of the binary interaction matrix as CSR: the items of user u are
 * item[off[u] .. off[u+1]) (indices < n_items; repeats are counted once). */
struct cascade_ease_input {
    size_t n_users, n_items;
    const size_t *off;   /* n_users + 1 */
    const uint32_t *item;
};

struct cascade_ease_opts {
    double lambda;    /* L2 weight λ (> 0); default 250 */
    size_t max_items; /* item cap (most popular first); default 12000 (a 576 MB float solve) */
    /* Progress (may be NULL): called with a phase name ("gram", "cholesky",
     * "inverse", "weights") when it starts. */
    void (*on_phase)(void *ud, const char *phase);
    void *ud;
};

/* Defaults above. */
void cascade_ease_opts_default(struct cascade_ease_opts *o);

/* Build the model. NULL on failure with a readable message in err
 * (out of memory, λ not positive, matrix not positive definite). Caller
 * destroys. */
cascade_ease *cascade_ease_build(const struct cascade_ease_input *in,
                                 const struct cascade_ease_opts *opts, char *err, size_t errlen);
void cascade_ease_destroy(cascade_ease *m); /* NULL-safe */

/* Number of items the model covers (<= max_items) and whether input item
 * index i is one of them. */
size_t cascade_ease_n_covered(const cascade_ease *m);
int cascade_ease_covers(const cascade_ease *m, uint32_t item);

/* Score every input item for a history of n input item indices (repeats and
 * uncovered items ignored): out[i] = Σ_j B[j][i] for the n_items of the input
 * (0 for uncovered items; history items keep their score, callers exclude
 * what they must). out has n_items entries. */
void cascade_ease_score(const cascade_ease *m, const uint32_t *history, size_t n, float *out);

/* The k largest B[j][i] (i ≠ j, > 0) of covered item j as input item indices
 * and weights, best first; returns how many were written (0 for an uncovered
 * item). */
size_t cascade_ease_neighbours(const cascade_ease *m, uint32_t j, size_t k, uint32_t *items,
                               float *weights);

#endif
