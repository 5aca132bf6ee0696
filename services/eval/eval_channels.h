/* Which channels cascade-eval runs and how its merged row combines them:
 * the channel list (--channels, or every registered Recall channel but the
 * live-only "cache" and those the config disables), the merge (--merge
 * "itemcf=2:500,swing=1", or orchestrator.channels of the config, or equal
 * weights over every evaluated channel) and the K values (--k "50,100,200"). */
#ifndef CASCADE_EVAL_CHANNELS_H
#define CASCADE_EVAL_CHANNELS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eval_run.h"

/* Append channel `name` to o->channels unless it is there. 0 or CASCADE_EINVAL. */
int cascade_eval_channels_add(struct cascade_eval_run_opts *o, const char *name, char *err,
                              size_t errlen);

/* Parse a comma-separated list ("itemcf,swing") into o->channels. */
int cascade_eval_channels_parse(struct cascade_eval_run_opts *o, const char *list, char *err,
                                size_t errlen);

/* Every registered Recall channel except "cache" and those with
 * recall.channels.<name>.enabled = false in cfg (may be NULL). */
int cascade_eval_channels_default(struct cascade_eval_run_opts *o, const cascade_config *cfg,
                                  char *err, size_t errlen);

/* Parse "name=weight[:quota],..." into o->merge (quota defaults to
 * default_quota); each channel is added to o->channels if missing. */
int cascade_eval_merge_parse(struct cascade_eval_run_opts *o, const char *spec,
                             uint32_t default_quota, char *err, size_t errlen);

/* The orchestrator's channels (orchestrator.channels: name, weight, quota)
 * as the merge; each channel is added to o->channels if missing. */
int cascade_eval_merge_from_config(struct cascade_eval_run_opts *o, const cascade_config *cfg,
                                   char *err, size_t errlen);

/* Weight 1 and the given quota for every evaluated channel. */
void cascade_eval_merge_equal(struct cascade_eval_run_opts *o, uint32_t quota);

/* Parse "50,100,200" (1..8 ascending positive values) into o->ks. */
int cascade_eval_ks_parse(struct cascade_eval_run_opts *o, const char *list, char *err,
                          size_t errlen);

#endif
