/* The peers of the served-list report (docs/eval.md), computed on the train
 * part of a split and scored like the served list (train items removed, top
 * K): popularity (train interaction counts), ItemKNN (cosine between items on
 * the binary train matrix, full neighbourhood) and EASE (common/ml/ease.h,
 * λ = 250 by default). Single-threaded; nothing is shared. */
#ifndef CASCADE_EVAL_PEERS_H
#define CASCADE_EVAL_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval_metrics.h"
#include "eval_split.h"
#include "topk.h"

enum {
    CASCADE_EVAL_PEER_POPULARITY,
    CASCADE_EVAL_PEER_ITEMKNN,
    CASCADE_EVAL_PEER_EASE,
    CASCADE_EVAL_N_PEERS
};

/* Row names: "popularity", "itemknn", "ease". */
extern const char *const cascade_eval_peer_names[CASCADE_EVAL_N_PEERS];

/* The binary train matrix: user u (train dataset index) interacted with
 * items item[off[u] .. off[u+1]) (sorted, distinct), and per item the number
 * of such users (count). Free with cascade_eval_matrix_free. */
struct cascade_eval_matrix {
    size_t n_users, n_items;
    size_t *off;
    uint32_t *item;
    uint32_t *count;
};

/* The binary matrix of train's events whose behaviour weight is > 0.
 * Returns 0 or CASCADE_ENOMEM. */
int cascade_eval_matrix_build(const cascade_dataset *train,
                              const struct cascade_behaviour_weights *w,
                              struct cascade_eval_matrix *m);
void cascade_eval_matrix_free(struct cascade_eval_matrix *m); /* zeroed or freed: no-op */

struct cascade_eval_peers_opts {
    size_t k;              /* list length, default 10 */
    double ease_lambda;    /* default 250 */
    size_t ease_max_items; /* 0 = common/ml/ease.h's default */
    bool quiet;
};

void cascade_eval_peers_defaults(struct cascade_eval_peers_opts *o);

struct cascade_eval_peers {
    struct cascade_eval_list_acc acc[CASCADE_EVAL_N_PEERS];
    bool built[CASCADE_EVAL_N_PEERS];     /* false: the row has no scores */
    char note[CASCADE_EVAL_N_PEERS][256]; /* why a peer was not built, or its settings */
    double seconds[CASCADE_EVAL_N_PEERS];
};

/* Every peer on split (its train part, m its matrix) for every test user;
 * pct (borrowed) gives the popularity-bias column. A peer that cannot be
 * built (EASE before common/ml/ease.c lands, or a failed solve) is left
 * unbuilt with a note. Returns 0 or a negative code with err set. Free with
 * cascade_eval_peers_free (also after a failure). */
int cascade_eval_peers_run(const struct cascade_eval_split *split,
                           const struct cascade_eval_matrix *m, const double *pct,
                           const struct cascade_eval_peers_opts *o, struct cascade_eval_peers *p,
                           char *err, size_t errlen);
void cascade_eval_peers_free(struct cascade_eval_peers *p);

/* The k best of scores[0..n_items) (higher first, then lower index) among
 * items not in seen[0..n_seen) (sorted) with a score > floor, into out;
 * returns how many. scratch holds n_items entries. */
size_t cascade_eval_top_unseen(const float *scores, size_t n_items, const uint32_t *seen,
                               size_t n_seen, float floor, size_t k, uint32_t *out,
                               struct cascade_scored *scratch);

#endif
