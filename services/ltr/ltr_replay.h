/* Training lists for the learned rankers by replaying recall (issue 8:
 * positive-only logs). The caller's data (the train part of whatever it will
 * be judged on) is split again per user (eval_split.h): recall artefacts are
 * built from the earlier part only, into a private replay namespace; every
 * user with held-out items then gets the candidates the orchestrator would
 * have merged for it (the same channels, quotas, weights and merge, minus the
 * user's replay-train items as the Filter would drop them), each candidate
 * described by the serving features (ltr_features.h, records read from the
 * replay namespace exactly as the services read them) and labelled 1 when it
 * is one of the user's held-out items. */
#ifndef CASCADE_LTR_REPLAY_H
#define CASCADE_LTR_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "eval_split.h"
#include "redis.h"

struct cascade_ltr_replay_opts {
    cascade_config *cfg;       /* build.*, recall.*, orchestrator.* (borrowed); its
                                * recall.channels.two_tower.model_dir is pointed at two_tower_dir */
    const char *ns;            /* replay namespace, flushed (borrowed) */
    const char *two_tower_dir; /* the replay's two-tower model goes here; NULL = none */
    double holdout_frac;       /* share of each user's items held out, default 0.25 */
    bool random_split;         /* per-user random hold-out (else the latest items), default true */
    size_t min_interactions;   /* users with fewer interacted items are not replayed, default 5 */
    size_t max_users;          /* replay a seeded sample of users; 0 = all */
    size_t max_list;           /* candidates kept per user (0 = orchestrator merge_max) */
    uint64_t seed;             /* split seed, default 42 */
    size_t folds;              /* replays with seeds seed, seed+1, ...; default 1 */
    int threads;               /* builder threads, default 2 */
    /* A replay whose lists could outgrow this is refused before it builds
     * anything, with the --max-users that fits in the message: users ×
     * candidates per list × CASCADE_LTR_REPLAY_ROW_BYTES (every list full).
     * 0 = half the machine's physical memory. */
    size_t memory_bytes;
    bool quiet;
};

/* Bytes a replayed candidate costs at the peak of train ltr: its feature row,
 * label and item id in the lists (220) and xgboost's copy of the row with its
 * histogram index and gradients (measured ≈ 330 at 100k users; docs/load.md). */
#define CASCADE_LTR_REPLAY_ROW_BYTES 550

/* The replayed lists: group g is rows [off[g], off[g+1]) of X (row-major,
 * CASCADE_LTR_FEATURES wide) and y, in the merged recall order. */
struct cascade_ltr_lists {
    size_t n_groups, n_rows;
    size_t *off;
    float *X, *y;
    uint64_t *item;   /* row → item id (diagnostics and the parity test) */
    uint32_t *user;   /* group → dataset user index */
    size_t positives; /* rows with y = 1 */
    size_t held_out;  /* held-out (user, item) pairs of the replayed users */
    int64_t as_of;    /* the replay build's reference time */
    double build_s, replay_s;
};

void cascade_ltr_replay_defaults(struct cascade_ltr_replay_opts *o);

/* The split options the replay uses for o: the random protocol (each user's
 * items shuffled, holdout_frac held out) or the time split, with o's seed
 * and minimum. Exposed so tests can make the same split. */
void cascade_ltr_replay_split_opts(const struct cascade_ltr_replay_opts *o,
                                   struct cascade_eval_split_opts *so);

/* Split ds, build into o->ns through r (a connection for the builders) and
 * pool (for the Recall stage), replay and fill *out (free with
 * cascade_ltr_lists_free). Groups without a single positive are dropped
 * (they carry no ranking signal). Returns 0, CASCADE_EDATA when the
 * data gives no list to learn from, or another negative code with err. */
int cascade_ltr_replay_run(const cascade_dataset *ds, cascade_redis *r, cascade_redis_pool *pool,
                           const struct cascade_ltr_replay_opts *o, struct cascade_ltr_lists *out,
                           char *err, size_t errlen);

/* Reorder l's groups in place so that those with first[g] set come first
 * and the others after them, each part in its earlier order (rows, labels,
 * items, offsets and users move together); first[] is reordered with the
 * groups and *n_first set to their count. Moving rows in place instead of
 * copying the two parts out keeps a second copy of every feature row (the
 * largest buffer of train ltr) from being made. Returns 0 or CASCADE_ENOMEM
 * (l unchanged). Not thread-safe on the same l. */
int cascade_ltr_lists_partition(struct cascade_ltr_lists *l, bool *first, size_t *n_first);

void cascade_ltr_lists_free(struct cascade_ltr_lists *l); /* safe on zeroed */

#endif
