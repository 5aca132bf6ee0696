/* EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW
 * 2019): a linear item-item model with the closed form
 *     P = (XᵀX + λI)⁻¹,   B = I − P·diag(1/diag(P)),   diag(B) = 0
 * over a binary user × item matrix X. A user's score for item i is
 * Σ_{j ∈ history} B[j][i]. The solve is dense (Cholesky through the LAPACK
 * that OpenBLAS ships), so the model covers at most `max_items` items: the
 * most interacted-with ones (items nobody interacted with are never
 * covered); the rest get no scores. A built model is immutable and safe to
 * share between threads.
 *
 * Cost: the Gram matrix XᵀX is accumulated sparsely, user by user, straight
 * into the dense n×n float matrix (O(Σ_u n_u²) additions, no user×item
 * matrix); the solve is O(n³) and the model holds 4n² bytes (B overwrites
 * the Gram matrix, so that is also the peak). */
#ifndef CASCADE_EASE_H
#define CASCADE_EASE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_ease cascade_ease;

/* Largest item cap accepted: 40000 items are a 6.4 GB matrix, and LAPACK's
 * 32-bit integers index it safely. */
#define CASCADE_EASE_MAX_ITEMS 40000

/* User rows of the binary interaction matrix as CSR: the items of user u are
 * item[off[u] .. off[u+1]) (indices < n_items; repeats are counted once). */
struct cascade_ease_input {
    size_t n_users, n_items;
    const size_t *off; /* n_users + 1 */
    const uint32_t *item;
};

struct cascade_ease_opts {
    double lambda;    /* L2 weight λ (> 0); default 250 */
    size_t max_items; /* item cap (most popular first), at most CASCADE_EASE_MAX_ITEMS;
                         default 12000 (a 576 MB float solve) */
    /* Progress (may be NULL): called with a phase name ("gram", "cholesky",
     * "inverse", "weights") when it starts. */
    void (*on_phase)(void *ud, const char *phase);
    void *ud;
};

/* Defaults above. */
void cascade_ease_opts_default(struct cascade_ease_opts *o);

/* Build the model. NULL on failure with a readable message in err
 * (out of memory, λ not positive, max_items 0 or above the bound, no
 * interactions at all, matrix not positive definite). Borrows in and opts
 * for the call only. Caller destroys. */
cascade_ease *cascade_ease_build(const struct cascade_ease_input *in,
                                 const struct cascade_ease_opts *opts, char *err, size_t errlen);
void cascade_ease_destroy(cascade_ease *m); /* NULL-safe */

/* Number of items the model covers (<= max_items) and whether input item
 * index i is one of them. */
size_t cascade_ease_n_covered(const cascade_ease *m);
int cascade_ease_covers(const cascade_ease *m, uint32_t item);

/* Score every input item for a history of n input item indices (repeats,
 * out-of-range and uncovered items ignored): out[i] = Σ_j B[j][i] for the
 * n_items of the input (0 for uncovered items; history items keep their
 * score, callers exclude what they must). out has n_items entries.
 * Returns 0, or CASCADE_ENOMEM (out untouched) when its O(n + covered)
 * scratch cannot be allocated: an int, not void as first drafted, so that a
 * failed allocation is reported rather than read as all-zero scores. */
int cascade_ease_score(const cascade_ease *m, const uint32_t *history, size_t n, float *out);

/* The k weights B[j][i] (i ≠ j, nonzero) of covered item j with the largest
 * magnitude, as input item indices and signed weights (k slots each; slots
 * past the count may be overwritten), largest |B| first (ties: lower index
 * first); returns how many were
 * written (0 for an uncovered or out-of-range item), or CASCADE_ENOMEM when
 * the k-slot scratch of the selection cannot be allocated (a signed return
 * for the same reason as cascade_ease_score). */
long cascade_ease_neighbours(const cascade_ease *m, uint32_t j, size_t k, uint32_t *items,
                             float *weights);

#endif
