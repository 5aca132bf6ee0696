/* Warm start shared by the trainers of cascade-build (train rank, prerank,
 * mmoe, two-tower): find the version model-dir's ".latest" file names, let
 * the trainer copy what fits into its new model, and report on stderr
 * "<job>: warm start from <name>" or "<job>: not warm-starting from <name>:
 * <reason>" (a version that does not fit is skipped, never fatal). */
#ifndef CASCADE_BUILDER_TRAIN_WARM_H
#define CASCADE_BUILDER_TRAIN_WARM_H

#include <stdbool.h>
#include <stddef.h>

/* Copy the previous version (file name `name` in dir, at `path`) into the
 * trainer's new model. Returns 0 when copied (detail, may stay empty, is
 * printed after the name), CASCADE_ENOMEM to abort the training, anything
 * else when the version does not fit (err says why). */
typedef int (*cascade_train_warm_apply)(void *ctx, const char *dir, const char *name,
                                        const char *path, char *detail, size_t detaillen, char *err,
                                        size_t errlen);

/* With dir/latest naming a version: apply it. from receives its name when
 * applied, "" otherwise (no dir, nothing published, or it did not fit).
 * Returns 0, or CASCADE_ENOMEM from apply. */
int cascade_train_warm_start(const char *job, const char *dir, const char *latest, bool quiet,
                             cascade_train_warm_apply apply, void *ctx, char *from, size_t fromlen);

#endif
