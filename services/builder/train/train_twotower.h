/* cascade-build train-two-tower: the two-tower retrieval model (common/ml/twotower.h)
 * trained on the event log (interest events are positives, exposed-but-unclicked
 * items only exclusions, items the ranker cut optional hard negatives), evaluated by held-out
 * recall@K on a time split, and exported as model + id maps + an item-vector index
 * (common/ml/vindex.h). */
#ifndef CASCADE_BUILDER_TRAIN_TWOTOWER_H
#define CASCADE_BUILDER_TRAIN_TWOTOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "train_gate.h"
#include "tt_hardneg.h"
#include "twotower.h"
#include "twotower_maps.h"

/* Bucket counts of the profile / item-age features (row 0 = unknown). */
#define CASCADE_TT_USER_AGE_BUCKETS 7
#define CASCADE_TT_GENDERS 4
#define CASCADE_TT_ITEM_AGE_BUCKETS 6

struct cascade_train_twotower_opts {
    enum cascade_twotower_objective mode; /* default listwise */
    size_t epochs, batch;                 /* default 3, 256 */
    size_t n_neg;                         /* sampled negatives per example, default 4 */
    size_t last_n;                        /* history items pooled by the user tower, default 20 */
    float lr;                             /* Adam, default 0.005 */
    size_t emb_dim, hidden, out_dim;      /* default 16, 64, 32 */
    float temperature;                    /* default 0.05 */
    double holdout_frac;                  /* latest share of positives held out, default 0.1 */
    size_t eval_k;                        /* recall@K, default 100 */
    size_t eval_users;                    /* at most this many held-out users, default 2000 */
    struct cascade_behaviour_weights weights; /* > 0 marks a positive event type */
    uint64_t seed;                            /* default 1 */
    const char *model_dir;                    /* NULL = do not save */
    bool warm_start; /* start from model_dir's current version (default true) */
    /* Incremental update (docs/closed-loop.md): start from model_dir's
     * published version (required; its widths and temperature replace the
     * ones above), train only the id embedding tables (cascade_tt_freeze_dense)
     * on the positives newer than since_ts, in time order without shuffling,
     * and hold out the newest holdout_frac of those for the gate. since_ts 0 =
     * the published version's ref_ts (the newest event it was trained on). */
    bool incremental;
    int64_t since_ts;
    bool quiet;
    /* Hard negatives (items the ranker cut, tt_hardneg.h; finished, borrowed):
     * round(n_neg·hard_ratio) of each example's sampled negatives come from
     * its user's candidates when it has any. NULL / 0 = easy negatives only. */
    const struct cascade_tt_hardneg *hard;
    double hard_ratio; /* in [0, 1], default 0 */
    /* On the held-out recall@K; floor default 0: the gate uses at least
     * chance, eval_k / items. */
    struct cascade_train_gate_opts gate;
};

struct cascade_train_twotower_summary {
    size_t examples, train, holdout; /* positive (user, item) pairs */
    size_t eval_users;
    double recall_at_k; /* held-out recall@eval_k (exact scan, history excluded) */
    double final_loss;  /* mean training loss of the last epoch */
    /* The exported index: IVF recall@100 against exact at its default nprobe,
     * queried with up to 1000 users' vectors (0 when not saved). */
    double ivf_recall;
    size_t ivf_nlist, ivf_nprobe;
    char version[128]; /* "two-tower-<UTC>", "" when not saved */
    char model_path[1024], items_path[1024], maps_path[1024];
    double seconds;
    size_t hard_users; /* training users with at least one usable hard candidate */
    size_t hard_drawn; /* hard negatives drawn, over all epochs */
    /* Warm start: the version started from ("" = fresh initialisation), the
     * embedding rows carried over by id and those of ids it did not know. */
    char warm_from[128];
    size_t warm_rows_carried, warm_rows_fresh;
    /* Incremental: the positives after since_ts (new = trained + held out)
     * and the parameters kept frozen. */
    int64_t since_ts;
    size_t new_examples, frozen_params;
    /* With model_dir: the gate's decision (publish: two-tower.latest moved). */
    struct cascade_train_gate_decision gate;
};

void cascade_train_twotower_defaults(struct cascade_train_twotower_opts *o);

/* The towers' feature buckets: cascade_twotower_{user,item}_age_bucket
 * (common/ml/twotower_maps.h), shared with the recall channel. */

/* Build the examples, train with per-epoch progress on stderr, evaluate on
 * the held-out split and (with model_dir) save the version and let the gate
 * decide whether two-tower.latest moves (sum->gate; CASCADE_EDATA when the
 * data has no held-out positives or recall@K is not above the floor). *model (may be NULL)
 * receives the trained model, which the caller destroys. */
int cascade_train_twotower_run(const cascade_dataset *ds,
                               const struct cascade_train_twotower_opts *o,
                               struct cascade_train_twotower_summary *sum, cascade_twotower **model,
                               char *err, size_t errlen);

/* The `cascade-build train-two-tower` subcommand: argv[2..] are its flags.
 * Returns a CASCADE_BUILD_EXIT_* code (build_cli.h). */
int cascade_train_twotower_command(int argc, char **argv);

#endif
