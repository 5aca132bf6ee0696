/* Building every recall family on the train part of an evaluation split,
 * with the builder's own jobs (services/builder): load (records, last-n,
 * consumed, follows; the namespace is flushed first), lists (hot, new, geo,
 * city), authors, ItemCF, Swing, UserCF and EASE, each published as a generation
 * under the evaluation's private namespace, and (when asked) the two-tower
 * model trained on the same train part and published into a model directory.
 * Options come from the "build" section of a config when one is given, else
 * the builder's defaults. */
#ifndef CASCADE_EVAL_BUILD_H
#define CASCADE_EVAL_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "redis.h"
#include "train_twotower.h"

struct cascade_eval_build_opts {
    const char *ns;            /* namespace to build into (flushed first), borrowed */
    const cascade_config *cfg; /* build.* options; NULL = builder defaults */
    int threads;               /* CF worker threads, default 2 */
    const char *source;        /* recorded as {ns}:meta source, borrowed; may be NULL */
    bool quiet;                /* no progress lines */
    /* Train the two-tower model on the train part and publish it here
     * (cascade-build train-two-tower's files); NULL = no two-tower model. */
    const char *two_tower_dir;
    /* Its options (NULL = train-two-tower's defaults). model_dir and quiet
     * are replaced, and holdout_frac is forced to 0: the evaluation's own
     * held-out part measures the model, so every train event trains it. */
    const struct cascade_train_twotower_opts *two_tower;
};

struct cascade_eval_build_summary {
    int64_t as_of; /* reference time of the build: the last train event */
    size_t itemcf_lists, swing_lists, usercf_lists, ease_lists;
    double load_s, lists_s, authors_s, itemcf_s, swing_s, usercf_s, ease_s, total_s;
    size_t two_tower_examples; /* positives the two-tower trained on; 0 = not trained */
    double two_tower_s, two_tower_loss;
    char two_tower_version[128];
};

/* Build everything from train through r (borrowed). Returns 0 or a negative
 * code with err naming the job that failed ("itemcf: ..."). */
int cascade_eval_build_run(const cascade_dataset *train, cascade_redis *r,
                           const struct cascade_eval_build_opts *o,
                           struct cascade_eval_build_summary *s, char *err, size_t errlen);

#endif
